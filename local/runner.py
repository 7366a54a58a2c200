"""Runs a SageMaker pipeline definition JSON on this machine, against the embedded AWS.

The very definition that is deployed is executed, and nothing it asks for is edited: steps are
ordered by their DependsOn and property references; expressions are resolved by
``local.expressions``; each step type has its executor in ``local.executors``; inputs and
outputs move through the embedded S3 by ``local.staging``. A Fail step ends the run with its
message; anything unsupported fails with an error naming it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.embedded_aws import LOCAL_ACCOUNT, EmbeddedAws
from local.executors import StepContext, StepOutcome, executor_for
from local.expressions import (
    ExecutionVariables,
    Expressions,
    PipelineRunError,
    parse_parameters,
    utc_now,
)
from local.staging import CACHE_FOLDER, S3Staging

__all__ = ["LocalPipelineRun", "PipelineRunError", "RunResult", "StepReport"]

# A reference to another step's property, anywhere in a step's JSON text.
STEP_REFERENCE = re.compile(r'"Steps\.([A-Za-z0-9-]+)\.')


@dataclass
class StepReport:
    """What one step did."""

    name: str
    type: str
    status: str = "NotStarted"
    seconds: float = 0.0
    work_seconds: float = 0.0  # time inside the step's own subprocesses
    outputs: dict[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass
class RunResult:
    """The outcome of a local run."""

    execution_id: str
    status: str
    steps: list[StepReport]
    seconds: float
    model_package_arn: str | None = None
    failure: str | None = None

    @property
    def work_seconds(self) -> float:
        """Time spent in the steps' own work (their entry points, the baseline analysis)."""
        return sum(step.work_seconds for step in self.steps)

    @property
    def overhead_seconds(self) -> float:
        """The runner's own time: S3 transfers, archiving, resolving, registering."""
        return self.seconds - self.work_seconds


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LocalPipelineRun:
    """One execution of a definition; create it, then call :meth:`run`.

    ``started_at`` (timezone-aware) fixes ``Execution.StartDateTime``; by default it is the
    ``clock``'s time when the run is created. ``clock`` also gives ``Execution.CurrentDateTime``
    (default: now, in UTC).
    """

    def __init__(
        self,
        definition: str | Mapping[str, Any],
        aws: EmbeddedAws,
        workdir: Path,
        parameters: Mapping[str, Any] | None = None,
        pipeline_name: str = "local-pipeline",
        log: Callable[[str], None] = _to_stderr,
        *,
        started_at: dt.datetime | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.definition = json.loads(definition) if isinstance(definition, str) else definition
        self.aws = aws
        self.s3 = aws.client("s3")
        self.sagemaker = aws.client("sagemaker")
        self.execution_id = f"local-{uuid.uuid4().hex[:12]}"
        self.workdir = workdir / self.execution_id
        self.pipeline_name = pipeline_name
        self.log = log
        self.expressions = Expressions(
            parameters=parse_parameters(list(self.definition.get("Parameters", [])), parameters),
            execution=ExecutionVariables(
                execution_id=self.execution_id,
                pipeline_name=pipeline_name,
                region=aws.region,
                account=LOCAL_ACCOUNT,
                started_at=started_at if started_at is not None else clock(),
                clock=clock,
            ),
        )
        self.reports: list[StepReport] = []

    @property
    def started_at(self) -> dt.datetime:
        """The execution's start time (``Execution.StartDateTime``)."""
        return self.expressions.execution.started_at

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The run's parameter values: overrides, else the definition's defaults."""
        return self.expressions.parameters

    def run(self) -> RunResult:
        """Execute every step; never raises for a step failure (see the result)."""
        with S3Staging(self.s3, self.workdir / CACHE_FOLDER) as staging:
            context = StepContext(
                workdir=self.workdir,
                execution_id=self.execution_id,
                expressions=self.expressions,
                staging=staging,
                sagemaker=self.sagemaker,
            )
            return self._run(context)

    def _run(self, context: StepContext) -> RunResult:
        started = time.perf_counter()
        self.log(f"local execution {self.execution_id} of {self.pipeline_name}")
        try:
            pending = list(_order(list(self.definition.get("Steps", []))))
            while pending:
                step = pending.pop(0)
                pending = list(_order(self._execute(step, context))) + pending
        except PipelineRunError as error:
            self.log(f"  failed: {error}")
            return RunResult(self.execution_id, "Failed", self.reports,
                             time.perf_counter() - started, failure=str(error))  # fmt: skip
        arn = next(
            (r.outputs["ModelPackageArn"] for r in self.reports if "ModelPackageArn" in r.outputs),
            None,
        )
        return RunResult(self.execution_id, "Succeeded", self.reports,
                         time.perf_counter() - started, model_package_arn=arn)  # fmt: skip

    def _execute(self, step: Mapping[str, Any], context: StepContext) -> list[Mapping[str, Any]]:
        name, kind = step["Name"], step["Type"]
        report = StepReport(name, kind, status="Executing")
        self.reports.append(report)
        self.log(f"  {name:<22}{kind:<15}running")
        started = time.perf_counter()
        try:
            outcome = executor_for(kind)(step, context)
        except PipelineRunError as error:
            report.status, report.message = "Failed", error.reason
            report.seconds = time.perf_counter() - started
            raise PipelineRunError(error.reason, error.step or name) from error
        self._record(name, outcome)
        report.status = "Succeeded"
        report.seconds = time.perf_counter() - started
        report.work_seconds = outcome.work_seconds
        report.outputs.update(outcome.outputs)
        outputs = ", ".join(f"{k}={v}" for k, v in report.outputs.items())
        self.log(f"  {name:<22}{kind:<15}succeeded in {report.seconds:.1f} s  {outputs}")
        return outcome.next_steps

    def _record(self, name: str, outcome: StepOutcome) -> None:
        self.expressions.properties[name] = outcome.properties
        for file_name, document in outcome.property_files.items():
            self.expressions.property_files[f"{name}.{file_name}"] = document


def _order(steps: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """``steps`` in an order where each follows the steps it depends on or reads from."""
    names = {step["Name"] for step in steps}
    needs = {
        step["Name"]: (set(step.get("DependsOn", [])) | _references(step)) & names for step in steps
    }
    done: set[str] = set()
    while len(done) < len(steps):
        ready = [s for s in steps if s["Name"] not in done and needs[s["Name"]] <= done]
        if not ready:
            raise PipelineRunError(f"steps {sorted(names - done)} depend on each other")
        for step in ready:
            done.add(step["Name"])
            yield step


def _references(step: Mapping[str, Any]) -> set[str]:
    """Names of the steps whose properties ``step`` reads (anywhere in its JSON)."""
    return set(STEP_REFERENCE.findall(json.dumps(step))) - {step["Name"]}
