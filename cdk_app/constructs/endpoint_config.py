"""The endpoint configuration: one variant of the model, data capture, encrypted volumes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_app.constructs.serving_model import ServingModel
from processing.contracts import CONTENT_TYPES
from stages.serving import VARIANT_NAME, ServingConfig, data_capture_config

# Instance families with local NVMe storage (a "d" after the generation: m5d, c6id, g4dn) have
# no EBS volume for SageMaker to encrypt: it refuses a KmsKeyId for them.
_INSTANCE_STORE_FAMILY = re.compile(r"^ml\.[a-z]+[0-9]+[a-z]*d[a-z]*\.")


def supports_volume_key(instance_type: str) -> bool:
    """True when SageMaker accepts a KMS key for the instance's storage volume (EBS-backed)."""
    return not _INSTANCE_STORE_FAMILY.match(instance_type)


@dataclass(frozen=True, kw_only=True)
class EndpointConfigProps:
    """The model, the stage's fleet and capture settings, where capture goes and its key."""

    model: ServingModel
    serving: ServingConfig
    capture_uri: str
    key: kms.IKey


class EndpointConfig(Construct):
    """An endpoint configuration without a name: CloudFormation generates one.

    A named configuration cannot be replaced ("Cannot create already existing endpoint
    configuration"); with a generated name, a new model or setting creates a new configuration
    and the endpoint's blue/green update moves to it.
    """

    def __init__(self, scope: Construct, id_: str, *, props: EndpointConfigProps) -> None:
        super().__init__(scope, id_)
        serving = props.serving
        self.config = sagemaker.CfnEndpointConfig(
            self, "Default",
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME, model_name=props.model.model_name,
                instance_type=serving.instance_type,
                initial_instance_count=serving.initial_instance_count,
                initial_variant_weight=1.0,
            )],
            kms_key_id=props.key.key_arn if supports_volume_key(serving.instance_type) else None,
        )  # fmt: skip
        # The capture settings come from stages.serving in CloudFormation's spelling.
        self.config.add_property_override(
            "DataCaptureConfig",
            data_capture_config(serving, props.capture_uri, props.key.key_arn, CONTENT_TYPES),
        )
        self.endpoint_config_name: str = self.config.attr_endpoint_config_name
