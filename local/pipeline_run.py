"""The deployable pipeline definition, run locally: its config, the run, and a step table."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from local.embedded_aws import LOCAL_REGION, EmbeddedAws
from local.market_data import LOCAL_NAMES

if TYPE_CHECKING:
    from local.runner import RunResult
    from pipelines.config import PipelineConfig

GIT_TIMEOUT_SECONDS = 10


def git_code_version() -> str:
    """The commit the definition is built from (the definition's default outside a checkout)."""
    from pipelines.config import DEFAULT_CODE_VERSION

    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
            check=True, cwd=Path(__file__).resolve().parent, timeout=GIT_TIMEOUT_SECONDS,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_CODE_VERSION
    return result.stdout.strip() or DEFAULT_CODE_VERSION


def local_pipeline_config(code_version: str | None = None) -> PipelineConfig:
    """The definition run locally: the local stage's names, the embedded AWS's region."""
    # The SageMaker SDK behind the definition is imported only when a definition is built.
    from pipelines.config import pipeline_config

    return pipeline_config(
        LOCAL_NAMES, region=LOCAL_REGION, code_version=code_version or git_code_version()
    )


def run_local_pipeline(
    aws: EmbeddedAws,
    workdir: Path,
    parameters: Mapping[str, str],
    code_version: str | None = None,
) -> RunResult:
    """Build the definition and execute it against ``aws``; returns the run's result."""
    from local.runner import LocalPipelineRun
    from pipelines.definition import definition_json

    config = local_pipeline_config(code_version)
    run = LocalPipelineRun(
        definition_json(config), aws, workdir, parameters, pipeline_name=config.pipeline_name
    )
    return run.run()


def format_run(result: RunResult) -> str:
    """A step table and the outcome of a local run."""
    lines = [f"{'step':<22}{'type':<15}{'status':<11}{'seconds':>8}"]
    lines.extend(
        f"{step.name:<22}{step.type:<15}{step.status:<11}{step.seconds:>8.1f}"
        for step in result.steps
    )
    lines.append(
        f"execution {result.execution_id}: {result.status} in {result.seconds:.1f} s "
        f"(steps' work {result.work_seconds:.1f} s, runner overhead "
        f"{result.overhead_seconds:.1f} s = {result.overhead_seconds / result.seconds:.0%})"
    )
    if result.failure:
        lines.append(f"failure: {result.failure}")
    if result.model_package_arn:
        lines.append(f"registered model package: {result.model_package_arn}")
    return "\n".join(lines)
