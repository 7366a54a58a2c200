"""The ML pipeline stack: project image, execution role, model registry, pipeline and its rules."""

from __future__ import annotations

from typing import cast

from aws_cdk import Environment, Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.constructs.model_registry import ModelRegistry
from cdk_app.constructs.notifications import Notifications
from cdk_app.constructs.pipeline_events import PipelineEvents
from cdk_app.constructs.pipeline_execution_role import (
    PipelineExecutionRole,
    PipelineExecutionRoleProps,
)
from cdk_app.constructs.project_image import ProjectImage
from cdk_app.constructs.retraining_schedule import RetrainingSchedule
from cdk_app.constructs.training_pipeline import TrainingPipeline, TrainingPipelineProps
from cdk_app.stacks.data_lake import DataLakeStack
from stages.config import StageConfig

# The notification key's logical id from before the constructs: a new id would replace the key
# (the other stateful resources keep theirs through their constructs' ids).
NOTIFICATION_KEY_LOGICAL_ID = "NotificationKey6F64DE1A"


class MlPipelineStack(Stack):
    """Everything the SageMaker pipeline needs, for one stage."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        lake: DataLakeStack,
        code_version: str,
        env: Environment,
    ) -> None:
        super().__init__(scope, id_, env=env)
        names = config.names
        self.image = ProjectImage(self, "Image")
        self.execution_role = PipelineExecutionRole(
            self, "ExecutionRole",
            props=PipelineExecutionRoleProps(
                config=config, lake_key=lake.key, image_repository=self.image.repository
            ),
        )  # fmt: skip
        self.registry = ModelRegistry(
            self, "ModelPackageGroup", group_name=names.model_package_group
        )
        self.training_pipeline = TrainingPipeline(
            self, "Pipeline",
            props=TrainingPipelineProps(
                config=config, code_version=code_version, role=self.execution_role,
                image=self.image, registry=self.registry,
            ),
        )  # fmt: skip
        self.notifications = Notifications(
            self, "Notifications", topic_name=names.notification_topic, email=config.alarm_email
        )
        cast(kms.CfnKey, self.notifications.key.node.default_child).override_logical_id(
            NOTIFICATION_KEY_LOGICAL_ID
        )
        self.retraining = RetrainingSchedule(
            self, "Retraining", config=config, pipeline=self.training_pipeline
        )
        self.events = PipelineEvents(
            self, "PipelineEvents", names=config.names, pipeline=self.training_pipeline,
            registry=self.registry, notifications=self.notifications,
        )  # fmt: skip
