"""The deployed definition and the synthesized schedule together: the window each run reads."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aws_cdk.assertions import Template

from local.expressions import ExecutionVariables, Expressions, parse_parameters, text
from local.pipeline_run import local_pipeline_config
from pipelines.config import DEFAULT_IMAGE_URI, DEFAULT_ROLE_ARN, pipeline_config
from pipelines.definition import definition_json
from processing import lane_statistics
from processing.window import MAX_WINDOW_DAYS, DataWindow, resolve_window
from stages.config import MAX_TRAINING_WINDOW_DAYS
from stages.names import DEFAULT_REGION, ResourceNames
from tests.cdk_app.conftest import ACCOUNT, CODE_VERSION

FIRST_MONDAY = dt.datetime(2026, 3, 2, 3, 0, 12, tzinfo=dt.UTC)


def _scheduled_parameters(template: Template) -> dict[str, str]:
    (rule,) = [
        resource["Properties"]
        for resource in template.find_resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in resource["Properties"]
    ]
    (target,) = rule["Targets"]
    parameters = target["SageMakerPipelineParameters"]["PipelineParameterList"]
    return {p["Name"]: p["Value"] for p in parameters}


def _window_of_a_run(
    definition: dict[str, Any], passed: dict[str, str], started: dt.datetime
) -> DataWindow:
    """The window the LaneStatistics step resolves in a run started at ``started``."""
    (step,) = [s for s in definition["Steps"] if s["Name"] == "LaneStatistics"]
    execution = ExecutionVariables(
        execution_id="scheduled", pipeline_name="freight-pricing-dev", region=DEFAULT_REGION,
        account=ACCOUNT, started_at=started,
    )  # fmt: skip
    expressions = Expressions(parse_parameters(definition["Parameters"], passed), execution)
    arguments = [
        text(argument)
        for argument in expressions.resolve(
            step["Arguments"]["AppSpecification"]["ContainerArguments"]
        )
    ]
    args = lane_statistics.build_parser().parse_args(arguments)
    return resolve_window(args.start_date, args.end_date, args.window_days, args.execution_start)


def test_two_scheduled_runs_a_week_apart_train_on_two_windows(
    ml_template: Template, deployed_definition: dict[str, Any]
) -> None:
    passed = _scheduled_parameters(ml_template)
    first = _window_of_a_run(deployed_definition, passed, FIRST_MONDAY)
    second = _window_of_a_run(deployed_definition, passed, FIRST_MONDAY + dt.timedelta(weeks=1))
    assert first != second
    assert first == DataWindow(dt.date(2025, 3, 2), dt.date(2026, 3, 1), relative=True)
    assert (second.start - first.start, second.end - first.end) == (dt.timedelta(weeks=1),) * 2
    assert first.days == second.days == int(passed["WindowDays"])


def test_explicit_dates_still_override_the_schedule(deployed_definition: dict[str, Any]) -> None:
    passed = {"StartDate": "2026-01-01", "EndDate": "2026-01-31"}
    for started in (FIRST_MONDAY, FIRST_MONDAY + dt.timedelta(weeks=1)):
        window = _window_of_a_run(deployed_definition, passed, started)
        assert window == DataWindow(dt.date(2026, 1, 1), dt.date(2026, 1, 31), relative=False)


def test_the_deployed_body_is_the_definition_the_local_runner_executes(
    deployed_definition: dict[str, Any],
) -> None:
    # The same builder with the dev stage's names gives the synthesized body exactly...
    dev = ResourceNames(stage="dev", account=ACCOUNT)
    built = definition_json(
        pipeline_config(dev, account=ACCOUNT, image_uri="IMAGE", code_version=CODE_VERSION)
    )
    assert json.loads(built) == deployed_definition
    # ... and run-local's definition differs from it only in the names of the stage.
    local = ResourceNames(stage="local")
    text_ = definition_json(local_pipeline_config(CODE_VERSION))
    for old, new in (
        (DEFAULT_ROLE_ARN, dev.sagemaker_role_arn(ACCOUNT)),
        (DEFAULT_IMAGE_URI, "IMAGE"),
        *((local.buckets()[k], dev.buckets()[k]) for k in local.buckets()),
        (local.pipeline, dev.pipeline),
    ):
        text_ = text_.replace(old, new)
    assert json.loads(text_) == deployed_definition


def test_the_stage_and_the_step_bound_the_window_alike() -> None:
    assert MAX_TRAINING_WINDOW_DAYS == MAX_WINDOW_DAYS
