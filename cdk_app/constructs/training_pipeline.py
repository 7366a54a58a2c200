"""The SageMaker pipeline: the SDK's definition with the project image's URI token swapped in."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Fn
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_app.constructs.model_registry import ModelRegistry
from cdk_app.constructs.pipeline_execution_role import PipelineExecutionRole
from cdk_app.constructs.project_image import ProjectImage
from pipelines.config import pipeline_config
from pipelines.definition import definition_json
from stages.config import StageConfig

# The definition is built by the SDK with plain strings; the image URI is a CDK token, so a
# placeholder stands in for it and is swapped for the token in the JSON text.
IMAGE_PLACEHOLDER = (
    "111111111111.dkr.ecr.eu-central-1.amazonaws.com/freight-pricing:synth-placeholder"
)


def substitute(text: str, placeholder: str, token: str) -> str:
    """``text`` with every ``placeholder`` replaced by ``token`` (an Fn::Join when needed)."""
    parts = text.split(placeholder)
    if len(parts) == 1:
        return text
    joined: list[str] = []
    for index, part in enumerate(parts):
        if index:
            joined.append(token)
        joined.append(part)
    return Fn.join("", joined)


@dataclass(frozen=True, kw_only=True)
class TrainingPipelineProps:
    """The stage, the commit being deployed, and the constructs the pipeline runs with."""

    config: StageConfig
    code_version: str
    role: PipelineExecutionRole
    image: ProjectImage
    registry: ModelRegistry


class TrainingPipeline(Construct):
    """The stage's pipeline: prepare, baseline, train, evaluate, gate, register."""

    def __init__(self, scope: Construct, id_: str, *, props: TrainingPipelineProps) -> None:
        super().__init__(scope, id_)
        config = props.config
        names = config.names
        definition = definition_json(
            pipeline_config(
                names,
                region=config.region,
                account=config.account,
                image_uri=IMAGE_PLACEHOLDER,
                code_version=props.code_version,
            )
        )
        body = substitute(definition, IMAGE_PLACEHOLDER, props.image.image_uri)
        self.pipeline_name = names.pipeline
        # "Default" is left out of logical ids: the named pipeline keeps the id of this construct.
        self.pipeline = sagemaker.CfnPipeline(
            self, "Default", pipeline_name=self.pipeline_name, role_arn=props.role.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": body},
            pipeline_description="Freight price model: prepare, baseline, train, evaluate, gate, "
            "register",
        )  # fmt: skip
        # The role's policy and the group must exist before the first execution can run (the
        # role itself is referenced already).
        self.pipeline.node.add_dependency(props.role.policy)
        self.pipeline.node.add_dependency(props.registry)
        self.pipeline_arn = (
            f"arn:aws:sagemaker:{config.region}:{config.account}:pipeline/{self.pipeline_name}"
        )
