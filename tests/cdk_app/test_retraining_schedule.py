"""The scheduled retraining: the definition's parameter names, the stage's values, no dates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk import cx_api
from aws_cdk.assertions import Template

from cdk_app.constructs.retraining_schedule import retraining_parameters
from pipelines.parameters import END_DATE, START_DATE
from stages.config import StageConfig, stage_configs

ACCOUNT = "123456789012"
PIPELINE_ARN = f"arn:aws:sagemaker:eu-central-1:{ACCOUNT}:pipeline/freight-pricing-dev"


def _retraining_target(template: Mapping[str, Any]) -> dict[str, Any]:
    (rule,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"]
    ]
    (target,) = rule["Targets"]
    return dict(target)


def _passed(target: dict[str, Any]) -> dict[str, str]:
    parameter_list = target["SageMakerPipelineParameters"]["PipelineParameterList"]
    return {p["Name"]: p["Value"] for p in parameter_list}


def test_weekly_retraining_starts_our_pipeline_with_stage_parameters(
    ml_template: Template,
) -> None:
    ml_template.has_resource_properties(
        "AWS::Events::Rule",
        {"Name": "freight-pricing-dev-retraining", "ScheduleExpression": "cron(0 3 ? * MON *)"},
    )
    target = _retraining_target(ml_template.to_json())
    assert target["Arn"] == PIPELINE_ARN
    assert _passed(target) == {
        "ProcessingInstanceType": "ml.m5.xlarge",
        "TrainingInstanceType": "ml.m5.2xlarge",
        "PrepareInstanceCount": "1",
        "MaxMape": "0.12",
        "WindowDays": "365",
    }


def test_passed_names_are_parameters_of_the_deployed_definition(
    ml_template: Template, deployed_definition: dict[str, Any]
) -> None:
    declared = {p["Name"] for p in deployed_definition["Parameters"]}
    passed = set(_passed(_retraining_target(ml_template.to_json())))
    assert passed <= declared, passed - declared


def test_no_dates_are_passed_so_each_run_trains_on_its_own_window(
    assembly: cx_api.CloudAssembly,
) -> None:
    for stage in ("dev", "staging", "prod"):
        stack = assembly.get_stack_by_name(f"FreightPricing-{stage}-MlPipeline")
        passed = _passed(_retraining_target(stack.template))
        assert START_DATE.name not in passed
        assert END_DATE.name not in passed
        assert passed == retraining_parameters(stage_configs(ACCOUNT)[stage])


def test_prod_passes_its_own_instances_and_window() -> None:
    config = StageConfig(stage="prod", account=ACCOUNT, training_window_days=730,
                         processing_instance_type="ml.m5.2xlarge")  # fmt: skip
    parameters = retraining_parameters(config)
    assert parameters["WindowDays"] == "730"
    assert parameters["ProcessingInstanceType"] == "ml.m5.2xlarge"


def test_the_invoker_may_only_start_our_pipeline(ml_template: Template) -> None:
    ml_template.has_resource_properties(
        "AWS::IAM::Policy",
        {"PolicyDocument": {"Statement": [{"Action": "sagemaker:StartPipelineExecution",
                                           "Effect": "Allow", "Resource": PIPELINE_ARN}]}},
    )  # fmt: skip


@pytest.mark.parametrize("days", [0, -5, 1099])
def test_training_window_out_of_range_is_rejected(days: int) -> None:
    with pytest.raises(ValueError, match="training_window_days"):
        StageConfig(stage="dev", account=ACCOUNT, training_window_days=days)
