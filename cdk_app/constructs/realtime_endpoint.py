"""The stage's real-time endpoint: fixed name, blue/green updates with auto-rollback."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_app.constructs.endpoint_config import EndpointConfig
from stages.serving import ServingConfig, deployment_config

# Variant properties taken from the NEW endpoint configuration although all others are
# retained: the capture settings (a changed sampling rate or key must apply). The retained ones
# are DesiredInstanceCount (the count autoscaling chose survives an update instead of falling
# back to the initial count) and DesiredWeight (one variant: always all traffic).
NOT_RETAINED_VARIANT_PROPERTIES = ("DataCaptureConfig",)


@dataclass(frozen=True, kw_only=True)
class RealtimeEndpointProps:
    """The endpoint's name, configuration, the stage's update policy and its rollback alarms."""

    endpoint_name: str
    endpoint_config: EndpointConfig
    serving: ServingConfig
    # By name: the DeploymentConfig names them as plain strings (a Ref would say the same).
    rollback_alarms: Mapping[str, cloudwatch.IAlarm]


class RealtimeEndpoint(Construct):
    """An endpoint with a fixed name (alarms, autoscaling and callers name it).

    Updates are blue/green (stages.serving.deployment_config: staging all at once then a bake,
    prod a 10% canary first) and roll back when a rollback alarm fires.
    """

    def __init__(self, scope: Construct, id_: str, *, props: RealtimeEndpointProps) -> None:
        super().__init__(scope, id_)
        alarm_names = list(props.rollback_alarms)
        self.endpoint_name = props.endpoint_name
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Default", endpoint_name=props.endpoint_name,
            endpoint_config_name=props.endpoint_config.endpoint_config_name,
            retain_all_variant_properties=True,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type=name)
                for name in NOT_RETAINED_VARIANT_PROPERTIES
            ],
            # Keeps the last DeploymentConfig for updates that come without one.
            retain_deployment_config=True,
        )  # fmt: skip
        self.endpoint.add_property_override(
            "DeploymentConfig",
            deployment_config(props.serving, alarm_names),
        )
        # An update names the rollback alarms: they must exist (and watch the new
        # configuration) before it starts.
        for alarm in props.rollback_alarms.values():
            self.endpoint.node.add_dependency(alarm)
