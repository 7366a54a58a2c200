"""The pipeline's EventBridge rules that announce on the notification topic."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_events as events
from constructs import Construct

from cdk_app.constructs.event_rules import checked_rule_name
from cdk_app.constructs.model_registry import ModelRegistry
from cdk_app.constructs.notifications import Notifications
from cdk_app.constructs.training_pipeline import TrainingPipeline
from stages.events import PIPELINE_STATUS_CHANGE, SAGEMAKER_SOURCE, approval_pattern
from stages.names import ResourceNames


class PipelineEvents(Construct):
    """A failed execution of ``pipeline`` and an approved package of ``registry``, announced.

    The rules are named (stages.names) so that the topic and its key can
    name them in their policies. The serving stack's deployer reacts to the same approval
    pattern (stages.events).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        names: ResourceNames,
        pipeline: TrainingPipeline,
        registry: ModelRegistry,
        notifications: Notifications,
    ) -> None:
        super().__init__(scope, id_)
        self.failure_rule = self._announce(
            notifications, "PipelineFailed", names.rules()["pipeline_failed"],
            description="A pipeline execution failed",
            pattern={"source": [SAGEMAKER_SOURCE], "detail-type": [PIPELINE_STATUS_CHANGE],
                     "detail": {"currentPipelineExecutionStatus": ["Failed"],
                                "pipelineArn": [pipeline.pipeline_arn]}},
        )  # fmt: skip
        self.approval_rule = self._announce(
            notifications, "ModelApproved", names.rules()["model_approved"],
            description="A model package of our group was approved",
            pattern=approval_pattern(registry.group_name),
        )  # fmt: skip

    def _announce(
        self,
        notifications: Notifications,
        id_: str,
        name: str,
        *,
        description: str,
        pattern: dict[str, Any],
    ) -> events.CfnRule:
        # An L1 rule with the topic as a plain target: targets.SnsTopic would add a topic-policy
        # statement for EventBridge without any condition.
        rule = events.CfnRule(
            self, id_, name=checked_rule_name(name), description=description, state="ENABLED",
            event_pattern=pattern,
            targets=[events.CfnRule.TargetProperty(
                arn=notifications.topic.topic_arn, id="notifications")],
        )  # fmt: skip
        notifications.allow_rule_to_publish(rule)
        return rule
