from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops import pipelines as operations
from ops import registry
from ops.errors import OperationError

ROLE = "arn:aws:iam::123456789012:role/freight-pricing-sagemaker"
DEFINITION = json.dumps(
    {"Version": "2020-12-01", "Parameters": [{"Name": "StartDate", "Type": "String"}], "Steps": []}
)


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        yield boto3.Session(region_name="eu-central-1").client("sagemaker")


def test_upsert_creates_then_updates(sagemaker: Any) -> None:
    arn = operations.upsert_pipeline(sagemaker, "freight-pricing-dev", DEFINITION, ROLE)
    assert arn.endswith(":pipeline/freight-pricing-dev")
    changed = DEFINITION.replace("StartDate", "EndDate")
    assert operations.upsert_pipeline(sagemaker, "freight-pricing-dev", changed, ROLE) == arn
    stored = sagemaker.describe_pipeline(PipelineName="freight-pricing-dev")
    assert "EndDate" in stored["PipelineDefinition"]
    assert len(sagemaker.list_pipelines()["PipelineSummaries"]) == 1


def test_start_with_overrides_and_status(sagemaker: Any) -> None:
    operations.upsert_pipeline(sagemaker, "p", DEFINITION, ROLE)
    execution = operations.start_pipeline(sagemaker, "p", {"StartDate": "2026-01-01"})
    assert operations.latest_execution(sagemaker, "p") == execution
    # moto finishes executions at once (nothing runs): wait returns without sleeping.
    slept: list[float] = []
    status = operations.wait_for_execution(sagemaker, execution, 60, sleep=slept.append)
    assert status.status == "Succeeded"
    assert slept == []
    parameters = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution)
    assert parameters["PipelineParameters"] == [{"Name": "StartDate", "Value": "2026-01-01"}]


def test_wait_times_out_on_a_running_execution() -> None:
    class Running:
        def describe_pipeline_execution(self, **_: Any) -> dict[str, str]:
            return {"PipelineExecutionStatus": "Executing"}

    ticks = iter(range(100))
    with pytest.raises(OperationError, match="still Executing after 10 s"):
        operations.wait_for_execution(
            Running(), "arn:x", 10, poll_seconds=4, sleep=lambda _: None,
            clock=lambda: float(next(ticks)) * 4,
        )  # fmt: skip


def test_no_execution_yet_is_a_clear_error(sagemaker: Any) -> None:
    operations.upsert_pipeline(sagemaker, "p", DEFINITION, ROLE)
    with pytest.raises(OperationError, match="has no executions"):
        operations.latest_execution(sagemaker, "p")


@pytest.mark.parametrize(
    ("pairs", "message"),
    [(["StartDate"], "NAME=VALUE"), (["=x"], "NAME=VALUE"), (["Foo=1"], "unknown pipeline")],
)
def test_parameter_overrides_are_checked(pairs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        operations.parse_parameters(pairs, ("StartDate", "EndDate"))
    assert operations.parse_parameters(["EndDate=2026-02-01"], ("EndDate",)) == {
        "EndDate": "2026-02-01"
    }


def _register(sagemaker: Any, group: str) -> str:
    response = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.eu-central-1.amazonaws.com/x:1"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )
    return str(response["ModelPackageArn"])


def test_models_list_approve_reject(sagemaker: Any) -> None:
    sagemaker.create_model_package_group(ModelPackageGroupName="freight-pricing-dev")
    first = _register(sagemaker, "freight-pricing-dev")
    second = _register(sagemaker, "freight-pricing-dev")
    packages = registry.list_model_packages(sagemaker, "freight-pricing-dev")
    assert [p.arn for p in packages] == [second, first]
    assert {p.approval_status for p in packages} == {"PendingManualApproval"}
    assert registry.resolve_package(sagemaker, "freight-pricing-dev", "latest") == second
    assert registry.resolve_package(sagemaker, "freight-pricing-dev", "1") == first
    registry.set_approval(sagemaker, first, "Approved", "looks good")
    registry.set_approval(sagemaker, second, "Rejected")
    statuses = {
        p.arn: p.approval_status
        for p in registry.list_model_packages(sagemaker, "freight-pricing-dev")
    }
    assert statuses == {first: "Approved", second: "Rejected"}


def test_bad_versions_and_statuses(sagemaker: Any) -> None:
    sagemaker.create_model_package_group(ModelPackageGroupName="g")
    with pytest.raises(OperationError, match="has no versions"):
        registry.resolve_package(sagemaker, "g", "latest")
    _register(sagemaker, "g")
    with pytest.raises(OperationError, match="no version 7"):
        registry.resolve_package(sagemaker, "g", "7")
    with pytest.raises(ValueError, match="must be a number"):
        registry.resolve_package(sagemaker, "g", "newest")
    with pytest.raises(ValueError, match="approval status must be one of"):
        registry.set_approval(sagemaker, "arn:x", "Maybe")
