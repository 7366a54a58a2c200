"""The serving stack of a stage: endpoint role, deployer, and the endpoint of one model package."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Annotations, Environment, Stack
from constructs import Construct

from cdk_app.constructs.deployer import Deployer, DeployerProps
from cdk_app.constructs.endpoint_alarms import EndpointAlarms, EndpointAlarmsProps
from cdk_app.constructs.endpoint_autoscaling import EndpointAutoscaling, EndpointAutoscalingProps
from cdk_app.constructs.endpoint_config import EndpointConfig, EndpointConfigProps
from cdk_app.constructs.realtime_endpoint import RealtimeEndpoint, RealtimeEndpointProps
from cdk_app.constructs.serving_dashboard import ServingDashboard
from cdk_app.constructs.serving_model import (
    EndpointRole,
    EndpointRoleProps,
    ModelPackage,
    ServingModel,
)
from cdk_app.stacks.data_lake import DataLakeStack, lake_key_alias
from cdk_app.stacks.ml_pipeline import MlPipelineStack
from stages.config import StageConfig
from stages.names import ResourceNames

# What the stack says when it is synthesized without a package (a test reads it).
NO_PACKAGE_INFO = (
    "No model package given (context {key}): the stack has the endpoint role and the deployer, "
    "but no model, endpoint configuration, endpoint, autoscaling or endpoint alarms"
)


@dataclass(frozen=True, kw_only=True)
class ServingStackProps:
    """The stage (with serving settings), its lake and pipeline stacks, and what to deploy.

    ``source_names``: the stage whose model package group the packages come from (prod:
    staging). ``package``: the validated package to serve, or None for no endpoint yet.
    """

    config: StageConfig
    lake: DataLakeStack
    pipeline: MlPipelineStack
    source_names: ResourceNames
    package: ModelPackage | None
    context_key: str


class ServingStack(Stack):
    """Endpoint role and deployer always; with a package: model, endpoint, scaling, alarms."""

    def __init__(
        self, scope: Construct, id_: str, *, props: ServingStackProps, env: Environment
    ) -> None:
        super().__init__(scope, id_, env=env)
        config, source = props.config, props.source_names
        serving = config.serving
        if serving is None:
            raise ValueError(f"{config.stage}: the stage has no serving configuration")
        names = config.names
        notifications = props.pipeline.notifications
        # Named by prefix, so the topic's policies do not change with the package.
        notifications.allow_alarms_to_publish(names.alarm_prefix)
        self.endpoint_role = EndpointRole(
            self, "EndpointRole",
            props=EndpointRoleProps(
                names=names, region=config.region, account=config.account,
                image_repository=props.pipeline.image.repository,
                model_data_bucket=source.artifacts_bucket,
                model_data_key_alias=lake_key_alias(source), capture_key=props.lake.key,
            ),
        )  # fmt: skip
        self.deployer = Deployer(
            self, "Deployer",
            props=DeployerProps(
                names=names, region=config.region, account=config.account, source=source,
            ),
        )  # fmt: skip
        self.package = props.package
        if props.package is None:
            Annotations.of(self).add_info(NO_PACKAGE_INFO.format(key=props.context_key))
            return
        self.model = ServingModel(
            self, "Model", package=props.package, role=self.endpoint_role,
            endpoint_name=names.endpoint,
        )  # fmt: skip
        self.endpoint_config = EndpointConfig(
            self, "EndpointConfig",
            props=EndpointConfigProps(
                model=self.model, serving=serving, capture_uri=names.capture_uri,
                key=props.lake.key,
            ),
        )  # fmt: skip
        self.alarms = EndpointAlarms(
            self, "Alarms",
            props=EndpointAlarmsProps(
                names=names, serving=serving,
                endpoint_config_name=self.endpoint_config.endpoint_config_name,
                topic=notifications.topic,
            ),
        )  # fmt: skip
        self.endpoint = RealtimeEndpoint(
            self, "Endpoint",
            props=RealtimeEndpointProps(
                endpoint_name=names.endpoint, endpoint_config=self.endpoint_config,
                serving=serving, rollback_alarms=self.alarms.rollback,
            ),
        )  # fmt: skip
        self.autoscaling = EndpointAutoscaling(
            self,
            "Autoscaling",
            props=EndpointAutoscalingProps(endpoint=self.endpoint, serving=serving),
        )
        self.dashboard = ServingDashboard(
            self, "Dashboard", dashboard_name=names.dashboard, alarms=self.alarms
        )
