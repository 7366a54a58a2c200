"""Pipeline benchmarks: building the definition, and the local runner's own overhead."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent


def definition_build_seconds(repeats: int = 3) -> dict[str, float]:
    """Seconds to build the definition: in this process (SDK imported) and in a new one."""
    from local.pipeline_run import local_pipeline_config
    from pipelines.definition import definition_json

    config = local_pipeline_config("bench")
    definition_json(config)  # imports and first-use caches
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        definition_json(config)
        timings.append(time.perf_counter() - started)
    code = (
        "import time; started = time.perf_counter();"
        "from local.pipeline_run import local_pipeline_config;"
        "from pipelines.definition import definition_json;"
        "definition_json(local_pipeline_config('bench'));"
        "print(time.perf_counter() - started)"
    )
    fresh = []
    for _ in range(repeats):
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True,
            check=True, timeout=300,
        )  # fmt: skip
        fresh.append(float(result.stdout.strip().splitlines()[-1]))
    return {"in_process": statistics.median(timings), "new_process": statistics.median(fresh)}


def run_local_overhead(work: Path, days: int, rows_per_day: int) -> dict[str, Any]:
    """Run the pipeline locally on the demo market; split its time into work and overhead."""
    from local.embedded_aws import embedded_aws
    from local.market_data import land_market
    from local.pipeline_run import run_local_pipeline
    from market.generator import MarketConfig
    from stages.names import ResourceNames

    names = ResourceNames(stage="local")
    config = MarketConfig(days=days, rows_per_day=rows_per_day)
    with embedded_aws(names, environment={}) as aws:
        land_market(aws, config)
        result = run_local_pipeline(aws, work, {}, code_version="bench")
    if result.status != "Succeeded":
        raise RuntimeError(f"local run failed: {result.failure}")
    return {
        "seconds": result.seconds,
        "work_seconds": result.work_seconds,
        "overhead_seconds": result.overhead_seconds,
        "steps": {step.name: (step.seconds, step.work_seconds) for step in result.steps},
    }


def pipeline_results(work: Path, days: int, rows_per_day: int) -> list[dict[str, Any]]:
    """Benchmark lines for the report table."""
    build = definition_build_seconds()
    run = run_local_overhead(work, days, rows_per_day)
    share = run["overhead_seconds"] / run["seconds"]
    slowest = max(run["steps"].items(), key=lambda item: item[1][0] - item[1][1])
    return [
        {"name": "pipeline definition build", "value": build["in_process"], "unit": "s",
         "target": "< 3 s", "met": build["in_process"] < 3.0,
         "note": f"{build['new_process']:.1f} s in a new process, SDK import included"},
        {"name": "run-local total", "value": run["seconds"], "unit": "s",
         "note": f"{days} days x {rows_per_day} loads; steps' own work "
                 f"{run['work_seconds']:.1f} s"},
        {"name": "run-local overhead share", "value": share * 100, "unit": "%",
         "target": "< 10 %", "met": share < 0.10,
         "note": f"{run['overhead_seconds']:.1f} s of S3 transfer, archiving, registering; "
                 f"most in {slowest[0]}"},
    ]  # fmt: skip
