"""The model registry: the model package group the pipeline registers each gated model in."""

from __future__ import annotations

from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


class ModelRegistry(Construct):
    """One SageMaker model package group named ``group_name``."""

    def __init__(self, scope: Construct, id_: str, *, group_name: str) -> None:
        super().__init__(scope, id_)
        # "Default" is left out of logical ids: the group keeps the id of this construct, as it
        # had before it moved in here (a new id would replace the group and its versions).
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "Default",
            model_package_group_name=group_name,
            model_package_group_description="Freight price models (gated by the pipeline)",
        )
        self.group_name = group_name
