"""Resolution of a definition's expressions and evaluation of its conditions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from local.expressions import (
    ExecutionVariables,
    Expressions,
    PipelineRunError,
    parse_parameters,
)

STARTED_AT = dt.datetime(2026, 11, 2, 6, 30, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 2, 7, 0, tzinfo=dt.UTC)
REPORT = {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}


def expressions(**parameters: Any) -> Expressions:
    return Expressions(
        parameters={"MaxMape": 0.12, "Region": "north", "Enabled": True, **parameters},
        execution=ExecutionVariables(
            execution_id="local-abc",
            pipeline_name="freight-pricing-local",
            region="eu-central-1",
            account="123456789012",
            started_at=STARTED_AT,
            clock=lambda: NOW,
        ),
        properties={"Train": {"ModelArtifacts.S3ModelArtifacts": "s3://bucket/model.tar.gz"}},
        property_files={
            "Evaluate.EvaluationReport": {
                "regression_metrics": {"mape": {"value": 0.08}},
                "folds": [{"mape": 0.1}, {"mape": 0.07}],
            }
        },
    )


def json_get(path: str, source: Any = REPORT) -> dict[str, Any]:
    return {"Std:JsonGet": {"PropertyFile": source, "Path": path}}


def test_join_resolves_nested_values_and_writes_booleans_as_the_service_does() -> None:
    join = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                "bucket",
                {"Get": "Execution.PipelineExecutionId"},
                {"Get": "Parameters.MaxMape"},
                {"Get": "Parameters.Enabled"},
            ],
        }
    }
    assert expressions().resolve(join) == "s3://bucket/local-abc/0.12/true"


def test_values_without_expressions_come_back_equal() -> None:
    value = {"A": [1, {"B": "c"}], "Empty": {}, "List": []}
    assert expressions().resolve(value) == value


def test_gets_read_parameters_properties_and_execution_variables() -> None:
    resolved = expressions().resolve(
        {
            "Model": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
            "Region": {"Get": "Parameters.Region"},
            "Start": {"Get": "Execution.StartDateTime"},
            "Now": {"Get": "Execution.CurrentDateTime"},
            "Arn": {"Get": "Execution.PipelineExecutionArn"},
        }
    )
    assert resolved == {
        "Model": "s3://bucket/model.tar.gz",
        "Region": "north",
        "Start": "2026-11-02T06:30:00+00:00",
        "Now": "2026-11-02T07:00:00+00:00",
        "Arn": "arn:aws:sagemaker:eu-central-1:123456789012:pipeline/freight-pricing-local"
        "/execution/local-abc",
    }


def test_start_time_in_another_zone_is_written_in_utc() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    variables = ExecutionVariables(
        execution_id="e", pipeline_name="p", region="eu-central-1", account="1",
        started_at=dt.datetime(2026, 11, 2, 7, 30, tzinfo=berlin),
    )  # fmt: skip
    assert variables.value("StartDateTime") == "2026-11-02T06:30:00+00:00"


def test_a_naive_start_time_is_rejected() -> None:
    with pytest.raises(PipelineRunError, match="started_at must carry a time zone"):
        ExecutionVariables(
            execution_id="e", pipeline_name="p", region="eu-central-1", account="1",
            started_at=dt.datetime(2026, 11, 2),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("regression_metrics.mape.value", 0.08),
        ("regression_metrics.mape", {"value": 0.08}),
        ("folds[1].mape", 0.07),
        ("folds[0]", {"mape": 0.1}),
    ],
)
def test_json_get_follows_keys_and_indexes(path: str, value: Any) -> None:
    assert expressions().resolve(json_get(path)) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (json_get("regression_metrics.rmse"), "JsonGet path 'regression_metrics.rmse' not found"),
        (json_get("folds[5].mape"), r"JsonGet path 'folds\[5\].mape' not found"),
        (json_get("x", {"Get": "Steps.Evaluate.PropertyFiles.Other"}), "Evaluate.Other is not"),
        (json_get("x", "report.json"), "unsupported JsonGet property file 'report.json'"),
        ({"Std:Unknown": {}}, "unsupported expression 'Std:Unknown'"),
        ({"Get": "Parameters.Colour"}, "undeclared parameter 'Colour'"),
        ({"Get": "Execution.Weather"}, "unsupported execution variable 'Weather'"),
        ({"Get": "Steps.Prepare.ProcessingOutputConfig"}, "step Prepare before it ran"),
        ({"Get": "Steps.Train.ModelArtifacts.Other"}, "has no property 'ModelArtifacts.Other'"),
        ({"Get": "Pipeline.Name"}, "unsupported reference 'Pipeline.Name'"),
        ({"Std:Join": {"On": "/"}}, "Std:Join needs On and Values"),
    ],
)
def test_unsupported_or_dangling_expressions_are_named(
    expression: dict[str, Any], message: str
) -> None:
    with pytest.raises(PipelineRunError, match=message):
        expressions().resolve({"Nested": [expression]})


def comparison(kind: str, left: Any, right: Any) -> dict[str, Any]:
    return {"Type": kind, "LeftValue": left, "RightValue": right}


MAPE = json_get("regression_metrics.mape.value")


@pytest.mark.parametrize(
    ("condition", "outcome"),
    [
        (comparison("LessThanOrEqualTo", MAPE, {"Get": "Parameters.MaxMape"}), True),
        (comparison("GreaterThan", MAPE, {"Get": "Parameters.MaxMape"}), False),
        (comparison("LessThan", MAPE, 0.08), False),
        (comparison("GreaterThanOrEqualTo", MAPE, "0.08"), True),  # a number as a string
        (comparison("Equals", {"Get": "Parameters.Region"}, "north"), True),
        ({"Type": "Not", "Expression": comparison("Equals", 1, 1)}, False),
        ({"Type": "Or", "Conditions": [comparison("Equals", 1, 2), comparison("Equals", 1, 1)]},
         True),
        ({"Type": "In", "QueryValue": {"Get": "Parameters.Region"}, "Values": ["south", "north"]},
         True),
    ],
)  # fmt: skip
def test_conditions(condition: dict[str, Any], outcome: bool) -> None:
    assert expressions().evaluate(condition) is outcome


def test_unsupported_conditions_and_bad_comparisons_are_named() -> None:
    with pytest.raises(PipelineRunError, match="unsupported condition type 'Between'"):
        expressions().evaluate({"Type": "Between"})
    with pytest.raises(PipelineRunError, match="compares a number with 'north'"):
        expressions().evaluate(comparison("LessThan", MAPE, {"Get": "Parameters.Region"}))


def test_parameters_take_overrides_typed_and_name_bad_values() -> None:
    declared: list[dict[str, Any]] = [
        {"Name": "N", "Type": "Integer", "DefaultValue": 1},
        {"Name": "X", "Type": "Float", "DefaultValue": 0.5},
        {"Name": "On", "Type": "Boolean", "DefaultValue": False},
        {"Name": "S", "Type": "String", "DefaultValue": ""},
    ]
    assert parse_parameters(declared, {"N": "3", "On": "TRUE"}) == {
        "N": 3, "X": 0.5, "On": True, "S": "",
    }  # fmt: skip
    with pytest.raises(PipelineRunError, match="parameter N must be Integer, got 'many'"):
        parse_parameters(declared, {"N": "many"})
    with pytest.raises(PipelineRunError, match="parameter On must be Boolean"):
        parse_parameters(declared, {"On": "yes"})
    with pytest.raises(PipelineRunError, match=r"unknown parameter.*Colour.*the pipeline has N"):
        parse_parameters(declared, {"Colour": "red"})
