"""Serving benchmark: our server against MLflow's scoring server and two floors, on loopback.

One trained model, four ways: (a) our server (``freight serve``), (b) ``mlflow models serve``
of a pyfunc wrapping the same booster and features, and the floors (c) the in-process path
(parse + features + predict + serialise, no HTTP) and (d) a no-op app on our HTTP stack.
Each server gets the same worker count; a separate load-generator process measures batch-1
latency at concurrency 1 and 8, requests/s and errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from inference.busy_poll import DEFAULT_WINDOW_US
from inference.hooks import input_fn, output_fn, predict_fn
from local.endpoint import free_port, server_process
from market.generator import Market, MarketConfig, generate, generate_day
from processing.lake import write_partitions
from processing.model import PriceModel
from processing.schema import REQUEST_FIELDS
from processing.validation import validate

REPOSITORY = Path(__file__).resolve().parent.parent
# Concurrency-1 measurements are repeated, interleaved across the servers, so that a slow
# minute of a shared VM does not land on one server only.
ROUNDS = 5
OURS = "ours"
OURS_NO_BUSY_POLL = "ours, busy polling off"
NOOP = "no-op (same stack)"
NOOP_BUSY_POLL = "no-op (same stack) + busy polling"
MLFLOW = "mlflow models serve"


@dataclass(frozen=True)
class LoadResult:
    """What the load generator measured for one server at one concurrency."""

    server: str
    concurrency: int
    p50_ms: float
    p99_ms: float
    requests_per_second: float
    errors: int
    rounds: str = ""


def train_model(work: Path) -> Path:
    """A model on 90 days of the synthetic market (prepare and train entry points)."""
    from processing import prepare
    from training import train

    lake = work / "lake"
    config = MarketConfig(days=90, rows_per_day=3_000, seed=3)
    with ThreadPoolExecutor(2) as executor:
        write_partitions(generate(config, executor), str(lake))
    assert prepare.main(["--input", str(lake), "--output", str(work / "prepared")]) == 0
    hyperparameters = work / "hyperparameters.json"
    hyperparameters.write_text('{"num_round": "300"}')
    code = train.main(
        ["--base-dir", str(work / "job"), "--train", str(work / "prepared" / "train"),
         "--validation", str(work / "prepared" / "validation"),
         "--artifacts", str(work / "prepared" / "artifacts"),
         "--model-dir", str(work / "model"), "--hyperparameters", str(hyperparameters)]
    )  # fmt: skip
    assert code == 0
    return work / "model"


def request_loads(count: int) -> list[dict[str, Any]]:
    """Valid loads of one synthetic day as request dicts (timestamps in epoch ms)."""
    table = validate(generate_day(Market(3), MarketConfig(seed=3).start_date, count * 2)).valid
    rows = table.select(list(REQUEST_FIELDS)).slice(0, count).to_pylist()
    for row in rows:
        for name in ("posted_at", "pickup_at"):
            row[name] = int(row[name].timestamp() * 1000)
    return rows


def in_process_floor(
    model_dir: Path,
    bodies: list[bytes],
    calls: int,
    pause_seconds: float = 0.0,
    spin: bool = False,
) -> tuple[float, float]:
    """p50 and p99 (ms) of parse + features + predict + serialise for one load, no HTTP.

    With ``pause_seconds`` the calls are spaced like a client at concurrency 1 spaces its
    requests: sleeping, the CPU idles in between as it does while a response crosses the
    network; with ``spin`` it stays busy (as with busy polling). Without, the calls run back
    to back with every cache warm.
    """
    model = PriceModel.load(model_dir, threads=1)
    model.warm_up()
    timings = []
    for index in range(calls):
        body = bodies[index % len(bodies)]
        if pause_seconds and spin:
            until = time.perf_counter() + pause_seconds
            while time.perf_counter() < until:
                pass
        elif pause_seconds:
            time.sleep(pause_seconds)
        started = time.perf_counter_ns()
        output_fn(predict_fn(input_fn(body, "application/json", 0), model), "application/json")
        timings.append(time.perf_counter_ns() - started)
    values = np.array(timings) / 1e6
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def pinning() -> tuple[list[str], list[str], int]:
    """Command prefixes that pin the servers and the load generator to separate cores.

    In production the client runs on another machine; here it shares the box, and a client
    woken on a server's core evicts the server's caches. With ``taskset`` and at least two
    cores, the load generator gets the first core and every server the others (the same for
    all servers). Returns (server prefix, client prefix, server cores).
    """
    cpus = sorted(os.sched_getaffinity(0))
    taskset = shutil.which("taskset")
    if taskset is None or len(cpus) < 2:
        return [], [], len(cpus)
    servers = ",".join(str(cpu) for cpu in cpus[1:])
    return [taskset, "-c", servers], [taskset, "-c", str(cpus[0])], len(cpus) - 1


def _load(
    client: list[str], port: int, bodies_file: Path, concurrency: int, requests: int
) -> LoadResult:
    result = subprocess.run(
        [*client, sys.executable, "-m", "bench.loadgen", "--port", str(port),
         "--bodies", str(bodies_file), "--concurrency", str(concurrency),
         "--requests", str(requests), "--warmup", "300"],
        cwd=REPOSITORY, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    run = json.loads(result.stdout)
    return LoadResult("", concurrency, run["p50_ms"], run["p99_ms"],
                      run["requests_per_second"], run["errors"])  # fmt: skip


@dataclass(frozen=True)
class Server:
    """A running server under test: its name, request bodies and port."""

    name: str
    bodies_file: Path
    port: int


def measure(servers: list[Server], client: list[str]) -> list[LoadResult]:
    """Batch-1 load at concurrency 1 and 8 for each server, measured by a pinned client.

    Concurrency 1: ROUNDS rounds of 2,000 requests, interleaved across the servers; the round
    with the median p50 counts. Concurrency 8: 8 x 500 requests once per server.
    """
    rounds: dict[str, list[LoadResult]] = {server.name: [] for server in servers}
    for _ in range(ROUNDS):
        for server in servers:
            rounds[server.name].append(_load(client, server.port, server.bodies_file, 1, 2_000))
    results = []
    for server in servers:
        ordered = sorted(rounds[server.name], key=lambda r: r.p50_ms)
        median = ordered[len(ordered) // 2]
        p50s = ", ".join(f"{r.p50_ms:.3f}" for r in rounds[server.name])
        results.append(replace(median, server=server.name, rounds=p50s))
        c8 = _load(client, server.port, server.bodies_file, 8, 500)
        results.append(replace(c8, server=server.name))
    return results


def run_serving(work: Path, model_dir: Path | None = None) -> dict[str, Any]:
    """Run every measurement; returns a dict with the floors and the load results."""
    work.mkdir(parents=True, exist_ok=True)
    model_dir = model_dir or train_model(work / "model-build")
    loads = request_loads(500)
    ours_file, mlflow_file = work / "bodies.json", work / "mlflow-bodies.json"
    ours_file.write_text(json.dumps([orjson.dumps(load).decode() for load in loads]))
    mlflow_file.write_text(
        json.dumps([json.dumps({"dataframe_records": [load]}) for load in loads])
    )
    encoded = [orjson.dumps(load) for load in loads]
    floor_p50, floor_p99 = in_process_floor(model_dir, encoded, 5_000)
    paced_p50, _ = in_process_floor(model_dir, encoded, 3_000, pause_seconds=0.0002)
    spinning_p50, _ = in_process_floor(model_dir, encoded, 3_000, pause_seconds=0.0002, spin=True)
    # MLflow starts `uvicorn` through the shell: the virtual environment must be on PATH.
    env = {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "FREIGHT_BUSY_POLL_US": str(DEFAULT_WINDOW_US),
    }
    server_prefix, client, workers = pinning()
    python = sys.executable
    from bench.mlflow_model import save

    mlflow_model = save(model_dir, work / "mlflow-model")

    def ours(*extra: str) -> list[str]:
        return [*server_prefix, python, "-m", "cli.main", "serve", "--model-dir",
                str(model_dir), "--workers", str(workers), *extra, "--port"]  # fmt: skip

    def noop(app: str) -> list[str]:
        return [*server_prefix, python, "-m", "uvicorn", f"bench.noop_server:{app}",
                "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--log-level", "warning", "--port"]  # fmt: skip

    mlflow = [*server_prefix, python, "-m", "mlflow", "models", "serve", "-m", str(mlflow_model),
              "-h", "127.0.0.1", "-w", str(workers), "--env-manager", "local", "-p"]  # fmt: skip
    plan = [
        (OURS, ours(), "/ping", ours_file),
        (OURS_NO_BUSY_POLL, ours("--busy-poll-us", "0"), "/ping", ours_file),
        (NOOP, noop("app"), "/", ours_file),
        (NOOP_BUSY_POLL, noop("busy_poll_app"), "/", ours_file),
        (MLFLOW, mlflow, "/ping", mlflow_file),
    ]
    with contextlib.ExitStack() as stack:
        servers = []
        for name, command, ready_path, bodies in plan:
            port = free_port()
            stack.enter_context(
                server_process([*command, str(port)], port, ready_path, env, cwd=REPOSITORY)
            )
            servers.append(Server(name, bodies, port))
        by_name = {server.name: server for server in servers}
        same = _same_prices(by_name[OURS].port, loads[:20])
        mlflow_prices = _mlflow_prices(by_name[MLFLOW].port, loads[:20])
        results = measure(servers, client)

    ours_prices = np.array(same)
    agreement = float(np.max(np.abs(ours_prices - mlflow_prices) / mlflow_prices))
    return {
        "floor_p50_ms": floor_p50,
        "floor_p99_ms": floor_p99,
        "paced_floor_p50_ms": paced_p50,
        "spinning_floor_p50_ms": spinning_p50,
        "results": results,
        "pinned": bool(client),
        "workers": workers,
        "max_relative_price_difference_vs_mlflow": agreement,
    }


def _post(port: int, body: bytes) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=body,
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _same_prices(port: int, loads: list[dict[str, Any]]) -> list[float]:
    # Unrounded prices are what MLflow returns; ours rounds to cents, which the check allows.
    return [_post(port, orjson.dumps(load))["predictions"][0]["price_eur"] for load in loads]


def _mlflow_prices(port: int, loads: list[dict[str, Any]]) -> np.ndarray:
    document = _post(port, json.dumps({"dataframe_records": loads}).encode())
    return np.array(document["predictions"], dtype=np.float64)


def serving_results(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """Benchmark lines (name, value, unit, target, met, note) for the report table."""
    by_key = {(r.server, r.concurrency): r for r in measured["results"]}
    ours1, ours8 = by_key[(OURS, 1)], by_key[(OURS, 8)]
    plain1 = by_key[(OURS_NO_BUSY_POLL, 1)]
    noop1, noop_busy1 = by_key[(NOOP, 1)], by_key[(NOOP_BUSY_POLL, 1)]
    mlflow1, mlflow8 = by_key[(MLFLOW, 1)], by_key[(MLFLOW, 8)]
    floor, paced = measured["floor_p50_ms"], measured["paced_floor_p50_ms"]
    bound = 1.3 * (floor + noop1.p50_ms)
    busy_bound = 1.3 * (floor + noop_busy1.p50_ms)
    errors = sum(r.errors for r in measured["results"])
    setup = f"{measured['workers']} worker(s) per server" + (
        ", load generator pinned to a core of its own" if measured["pinned"] else ""
    )
    lines: list[dict[str, Any]] = [
        {"name": "serving floor: in-process p50, back to back", "value": floor * 1000,
         "unit": "us", "note": f"p99 {measured['floor_p99_ms'] * 1000:.0f} us"},
        {"name": "serving floor: in-process p50, paced like c=1", "value": paced * 1000,
         "unit": "us", "note": "a call every 200 us, sleeping between: the idle CPU is slower"},
        {"name": "serving floor: in-process p50, paced, spinning", "value":
         measured["spinning_floor_p50_ms"] * 1000, "unit": "us",
         "note": "a call every 200 us, the CPU kept busy between (what busy polling does)"},
    ]  # fmt: skip
    lines.extend(
        {"name": f"{r.server}, c={r.concurrency}", "value": r.requests_per_second,
         "unit": "req/s",
         "note": f"p50 {r.p50_ms:.3f} ms, p99 {r.p99_ms:.3f} ms, errors {r.errors}"
                 + (f"; p50 of the {ROUNDS} rounds: {r.rounds}" if r.rounds else "")}
        for r in measured["results"]
    )  # fmt: skip
    lines += [
        {"name": "ours p50 at c=1 vs 1.3 x (floor + no-op)", "value": ours1.p50_ms, "unit": "ms",
         "target": f"<= {bound:.3f} ms", "met": ours1.p50_ms <= bound,
         "note": f"{setup}; busy polling off: {plain1.p50_ms:.3f} ms "
                 f"({ours1.p50_ms / plain1.p50_ms:.2f} x with it)"},
        {"name": "ours p50 at c=1 vs 1.3 x (floor + busy-polling no-op)",
         "value": ours1.p50_ms, "unit": "ms", "note":
         f"stricter, not the target: <= {busy_bound:.3f} ms would be "
         f"{'met' if ours1.p50_ms <= busy_bound else 'missed'}; busy polling takes the no-op "
         f"from {noop1.p50_ms:.3f} to {noop_busy1.p50_ms:.3f} ms"},
        {"name": "ours req/s over MLflow's, c=8", "value": ours8.requests_per_second
         / mlflow8.requests_per_second, "unit": "x", "target": ">= 8 x",
         "met": ours8.requests_per_second >= 8 * mlflow8.requests_per_second,
         "note": f"c=1: {ours1.requests_per_second / mlflow1.requests_per_second:.1f} x"},
        {"name": "ours p99 at c=8", "value": ours8.p99_ms, "unit": "ms", "target": "<= 5 ms",
         "met": ours8.p99_ms <= 5.0},
        {"name": "errors, all servers", "value": errors, "unit": "", "target": "0",
         "met": errors == 0,
         "note": "prices agree with MLflow's within "
                 f"{measured['max_relative_price_difference_vs_mlflow']:.1e} relative"},
    ]  # fmt: skip
    return lines
