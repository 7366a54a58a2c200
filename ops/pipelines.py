"""Pipeline operations over the SageMaker API (AWS or the embedded one).

Each function takes a boto3 ``sagemaker`` client, so the same code serves an account, moto in
tests, and the embedded AWS of local mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ops.errors import OperationError

TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})


def upsert_pipeline(
    sagemaker: Any,
    name: str,
    definition: str,
    role_arn: str,
    description: str = "Freight price model: prepare, baseline, train, evaluate, gate, register",
) -> str:
    """Create the pipeline or update its definition; returns its ARN."""
    existing = sagemaker.list_pipelines(PipelineNamePrefix=name).get("PipelineSummaries", [])
    if any(summary["PipelineName"] == name for summary in existing):
        response = sagemaker.update_pipeline(
            PipelineName=name,
            PipelineDefinition=definition,
            PipelineDescription=description,
            RoleArn=role_arn,
        )
    else:
        response = sagemaker.create_pipeline(
            PipelineName=name,
            PipelineDefinition=definition,
            PipelineDescription=description,
            RoleArn=role_arn,
        )
    return str(response["PipelineArn"])


def parse_parameters(pairs: list[str], known: tuple[str, ...] | None = None) -> dict[str, str]:
    """``NAME=VALUE`` strings to a dict; unknown names or a missing '=' raise ValueError."""
    parameters: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"--param {pair!r} must look like NAME=VALUE")
        if known is not None and name not in known:
            raise ValueError(f"unknown pipeline parameter {name!r}; known: {', '.join(known)}")
        parameters[name] = value
    return parameters


def start_pipeline(sagemaker: Any, name: str, parameters: Mapping[str, str]) -> str:
    """Start an execution with parameter overrides; returns the execution ARN."""
    response = sagemaker.start_pipeline_execution(
        PipelineName=name,
        PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
    )
    return str(response["PipelineExecutionArn"])


@dataclass(frozen=True)
class ExecutionStatus:
    """The state of one pipeline execution."""

    arn: str
    status: str
    failure_reason: str | None


def execution_status(sagemaker: Any, execution_arn: str) -> ExecutionStatus:
    """Describe one execution."""
    response = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    return ExecutionStatus(
        arn=execution_arn,
        status=str(response["PipelineExecutionStatus"]),
        failure_reason=response.get("FailureReason"),
    )


def latest_execution(sagemaker: Any, name: str) -> str:
    """The ARN of the pipeline's most recent execution."""
    summaries = sagemaker.list_pipeline_executions(
        PipelineName=name, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
    ).get("PipelineExecutionSummaries", [])
    if not summaries:
        raise OperationError(f"pipeline {name!r} has no executions")
    return str(summaries[0]["PipelineExecutionArn"])


def wait_for_execution(
    sagemaker: Any,
    execution_arn: str,
    timeout_seconds: float,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ExecutionStatus:
    """Poll until the execution ends or the timeout passes (then raise OperationError)."""
    deadline = clock() + timeout_seconds
    while True:
        status = execution_status(sagemaker, execution_arn)
        if status.status in TERMINAL_STATUSES:
            return status
        if clock() >= deadline:
            raise OperationError(
                f"execution {execution_arn} still {status.status} after {timeout_seconds:g} s"
            )
        sleep(poll_seconds)
