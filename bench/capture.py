"""Capture benchmark: the local endpoint with 100 % data capture against the server alone.

Both serve the same model with the same worker count and busy polling, pinned like the serving
benchmark; the local endpoint runs behind LocalHosting with the embedded AWS (moto's threaded
server, in this process) receiving the capture files and the metrics. A separate load-generator
process sends batch-1 requests on the SageMaker Runtime path at concurrency 8, in interleaved
rounds; the round with the median requests/s counts. Afterwards every request must be captured.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from bench.serving import REPOSITORY, pinning, request_loads, train_model
from inference.busy_poll import DEFAULT_WINDOW_US
from inference.settings import ServerSettings
from local.embedded_aws import EmbeddedAws, embedded_aws
from local.endpoint import free_port, server_process
from local.hosting import LOCAL_SERVING, LocalHosting
from local.market_data import LOCAL_NAMES
from processing.contracts import CONTENT_TYPES
from processing.lake import split_s3_uri
from stages.serving import VARIANT_NAME, data_capture_config

ALONE = "server alone"
CAPTURED = "local endpoint, capture 100 %"
CONCURRENCY = 8
ROUNDS = 3
WARMUP = 300
# Capture may cost at most this share of the server's requests/s.
MAX_COST = 0.15


@dataclass(frozen=True)
class Round:
    """One load-generator run against one server."""

    server: str
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _load(client: list[str], port: int, path: str, bodies: Path, per_connection: int) -> Round:
    result = subprocess.run(
        [*client, sys.executable, "-m", "bench.loadgen", "--port", str(port), "--path", path,
         "--bodies", str(bodies), "--concurrency", str(CONCURRENCY),
         "--requests", str(per_connection), "--warmup", str(WARMUP)],
        cwd=REPOSITORY, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    run = json.loads(result.stdout)
    return Round("", run["requests"], run["requests_per_second"], run["p50_ms"], run["p99_ms"],
                 run["errors"])  # fmt: skip


def _register(aws: EmbeddedAws, model_dir: Path) -> str:
    """The model as model.tar.gz in the embedded S3, a model and an endpoint configuration."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=path.name)
    key = "bench/model.tar.gz"
    aws.client("s3").put_object(
        Bucket=LOCAL_NAMES.artifacts_bucket, Key=key, Body=buffer.getvalue()
    )
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model(
        ModelName="bench-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
        PrimaryContainer={"Image": "freight:local",
                          "ModelDataUrl": f"s3://{LOCAL_NAMES.artifacts_bucket}/{key}"},
    )  # fmt: skip
    capture = data_capture_config(LOCAL_SERVING, LOCAL_NAMES.capture_uri, None, CONTENT_TYPES)
    assert capture["InitialSamplingPercentage"] == 100
    sagemaker.create_endpoint_config(
        EndpointConfigName="bench-config",
        ProductionVariants=[{"VariantName": VARIANT_NAME, "ModelName": "bench-model",
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        DataCaptureConfig=capture,
    )  # fmt: skip
    return "bench-config"


def _captured(aws: EmbeddedAws) -> int:
    s3 = aws.client("s3")
    bucket, prefix = split_s3_uri(LOCAL_NAMES.capture_uri)
    lines = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            lines += s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().count(b"\n")
    return lines


def run_capture(
    work: Path, model_dir: Path | None = None, per_connection: int = 2_000
) -> dict[str, Any]:
    """Measure both servers; the rounds, the counts of requests sent and captured."""
    work.mkdir(parents=True, exist_ok=True)
    model_dir = model_dir or train_model(work / "model-build")
    bodies = work / "bodies.json"
    bodies.write_text(json.dumps([orjson.dumps(load).decode() for load in request_loads(500)]))
    server_prefix, client, workers = pinning()
    endpoint = LOCAL_NAMES.endpoint
    path = f"/endpoints/{endpoint}/invocations"
    rounds: list[Round] = []
    with embedded_aws(LOCAL_NAMES, threaded_server=True, environment={}) as aws:
        config_name = _register(aws, model_dir)
        hosting = LocalHosting(
            aws, workdir=work / "hosting", workers=workers, busy_poll_us=DEFAULT_WINDOW_US,
            launcher=server_prefix,
        )  # fmt: skip
        with hosting:
            hosting.create_endpoint({"EndpointName": endpoint, "EndpointConfigName": config_name})
            port = free_port()
            settings = ServerSettings(model_dir=model_dir, host="127.0.0.1", port=port,
                                      workers=workers, endpoint_name=endpoint,
                                      busy_poll_us=DEFAULT_WINDOW_US)  # fmt: skip
            environment = {**os.environ, **settings.to_environment(),
                           "PYTHONPATH": str(REPOSITORY)}  # fmt: skip
            command = [*server_prefix, sys.executable, "-m", "inference.server"]
            with server_process(command, port, env=environment, cwd=REPOSITORY):
                for _ in range(ROUNDS):
                    for name, target in ((ALONE, port), (CAPTURED, hosting.port)):
                        measured = _load(client, target, path, bodies, per_connection)
                        rounds.append(replace(measured, server=name))
        # The fleet has stopped: its last records are flushed.
        captured = _captured(aws)
    sent = sum(r.requests + WARMUP for r in rounds if r.server == CAPTURED)
    return {"rounds": rounds, "workers": workers, "pinned": bool(client), "sent": sent,
            "captured": captured}  # fmt: skip


def _median(rounds: list[Round], server: str) -> Round:
    ordered = sorted((r for r in rounds if r.server == server), key=lambda r: r.requests_per_second)
    return ordered[len(ordered) // 2]


def capture_results(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """Benchmark lines (name, value, unit, target, met, note) for the report table."""
    rounds: list[Round] = measured["rounds"]
    alone, captured = _median(rounds, ALONE), _median(rounds, CAPTURED)
    ratio = captured.requests_per_second / alone.requests_per_second
    errors = sum(r.errors for r in rounds)
    setup = f"{measured['workers']} worker(s)" + (", client pinned" if measured["pinned"] else "")

    def line(r: Round) -> dict[str, Any]:
        per_round = ", ".join(
            f"{x.requests_per_second:,.0f}" for x in rounds if x.server == r.server
        )
        return {"name": f"{r.server}, c={CONCURRENCY}", "value": r.requests_per_second,
                "unit": "req/s", "note": f"p50 {r.p50_ms:.3f} ms, p99 {r.p99_ms:.3f} ms; "
                f"req/s of the {ROUNDS} rounds: {per_round}"}  # fmt: skip

    return [
        line(alone),
        line(captured),
        {"name": "capture cost: req/s lost", "value": (1 - ratio) * 100, "unit": "%",
         "target": f"< {MAX_COST * 100:.0f} %", "met": 1 - ratio < MAX_COST,
         "note": f"with capture / alone = {ratio:.3f}; p50 {captured.p50_ms / alone.p50_ms:.2f} x, "
                 f"p99 {captured.p99_ms / alone.p99_ms:.2f} x; {setup}"},
        {"name": "capture: records of requests sent", "value": measured["captured"], "unit": "",
         "target": f"= {measured['sent']:,}", "met": measured["captured"] == measured["sent"]
         and errors == 0, "note": f"errors {errors}"},
    ]  # fmt: skip
