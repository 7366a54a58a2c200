"""The scheduled retraining: a rule that starts the pipeline with the stage's settings."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_app.constructs.event_rules import (
    EVENTS_SERVICE,
    checked_rule_name,
    rule_arn,
    source_conditions,
)
from cdk_app.constructs.training_pipeline import TrainingPipeline
from pipelines.parameters import (
    MAX_MAPE,
    PREPARE_INSTANCE_COUNT,
    PROCESSING_INSTANCE_TYPE,
    TRAINING_INSTANCE_TYPE,
    WINDOW_DAYS,
)
from stages.config import StageConfig


def retraining_parameters(config: StageConfig) -> dict[str, str]:
    """The pipeline parameters every scheduled run passes, by the definition's names.

    No StartDate/EndDate: left empty, each run trains on the WindowDays before its own start.
    """
    return {
        PROCESSING_INSTANCE_TYPE.name: config.processing_instance_type,
        TRAINING_INSTANCE_TYPE.name: config.training_instance_type,
        PREPARE_INSTANCE_COUNT.name: str(config.prepare_instance_count),
        MAX_MAPE.name: str(config.max_mape),
        WINDOW_DAYS.name: str(config.training_window_days),
    }


class RetrainingSchedule(Construct):
    """A rule on ``config.retrain_schedule`` whose target starts ``pipeline``.

    The role the rule starts the pipeline with may be assumed by EventBridge only for this
    rule of our account.
    """

    def __init__(
        self, scope: Construct, id_: str, *, config: StageConfig, pipeline: TrainingPipeline
    ) -> None:
        super().__init__(scope, id_)
        self.parameters = retraining_parameters(config)
        self.rule = events.CfnRule(
            self, "Rule", name=checked_rule_name(config.names.rules()["retraining"]),
            schedule_expression=config.retrain_schedule, state="ENABLED",
            description=f"Retrain the price model ({config.retrain_schedule})",
        )  # fmt: skip
        self.invoker = iam.Role(
            self, "Invoker",
            assumed_by=iam.ServicePrincipal(
                EVENTS_SERVICE, conditions=source_conditions(config.account, [rule_arn(self.rule)])
            ),
            description="Lets the retraining schedule start the pipeline",
        )  # fmt: skip
        self.invoker.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartPipelineExecution"], resources=[pipeline.pipeline_arn]
            )
        )
        self.rule.targets = [
            events.CfnRule.TargetProperty(
                arn=pipeline.pipeline_arn, id="pipeline", role_arn=self.invoker.role_arn,
                sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=[
                        events.CfnRule.SageMakerPipelineParameterProperty(name=name, value=value)
                        for name, value in self.parameters.items()
                    ]
                ),
            )
        ]  # fmt: skip
