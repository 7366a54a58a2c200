"""Soak benchmark: one server under steady load, with and without 1% hostile requests mixed in.

Two phases against the same server (``python -m inference.server``, the container's entry
point, default limits): ``concurrency`` keep-alive connections send valid one-load requests back
to back for ``seconds``; in the second phase every ``1 / hostile_share``-th request is a hostile
one instead, sent on a connection of its own, in rotation: malformed JSON, JSON nested 1,000
deep, a body over the 6 MB limit, headers that never end (left for the server to close) and CSV
junk. Reported per phase: good requests/s, their p50/p99, non-200 answers, 5xx, resets,
dropped good requests, every hostile outcome by kind, and the RSS of the server's processes.
Targets: hostile p99 within 1.5 x the clean p99, RSS growth under 10%, no 5xx, nothing dropped.

The load runs in a process of its own (``--client``), pinned apart from the server where
``taskset`` allows, as in bench/serving.py. Only 127.0.0.1 is contacted; every phase is bounded
by ``seconds`` and every request by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.loadgen import _read_response, _requests
from bench.serving import REPOSITORY, pinning, request_loads, train_model
from inference.settings import (
    DEFAULT_HEADER_TIMEOUT_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    ENV_HOST,
    ENV_MODEL_DIR,
    ENV_WORKERS,
)
from local.endpoint import free_port, server_process
from processing.sagemaker_paths import ENV_BIND_TO_PORT

HOST = "127.0.0.1"
DEFAULT_SECONDS = 60.0
DEFAULT_CONCURRENCY = 32
DEFAULT_HOSTILE_SHARE = 0.01
WARMUP_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 10.0
P99_RATIO_TARGET = 1.5
RSS_GROWTH_TARGET = 0.10
HOSTILE_KINDS = ("malformed_json", "nested_json", "oversized_body", "slow_headers", "csv_junk")
# Request classes whose 5xx would come from request parsing (another change fixes it).
PARSING_KINDS = ("malformed_json", "nested_json", "csv_junk")


def _post(path: str, content_type: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


HOSTILE_REQUESTS = {
    "malformed_json": _post("/invocations", "application/json", b'{"origin_country": "DE",,'),
    "nested_json": _post("/invocations", "application/json", b"[" * 1_000 + b"]" * 1_000),
    "oversized_body": _post(
        "/invocations", "application/json", b"[" + b" " * (DEFAULT_MAX_BODY_BYTES + 1_024) + b"]"
    ),
    "csv_junk": _post("/invocations", "text/csv", b'\x00\xff,,\r\r\n"unterminated,\r1e999,x\r'),
}
SLOW_HEADERS = b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"


@dataclass
class PhaseStats:
    """What the client saw in one phase."""

    latencies_ns: list[int] = field(default_factory=list)
    good_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    dropped: int = 0
    resets: int = 0
    hostile: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )


async def _hostile(port: int, kind: str, stats: PhaseStats) -> None:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as error:
        stats.hostile[kind][f"connect {type(error).__name__}"] += 1
        return
    try:
        if kind == "slow_headers":
            writer.write(SLOW_HEADERS)
            started = time.perf_counter()
            # The server is to close it within its header timeout (checked every 0.25 s).
            data = await asyncio.wait_for(reader.read(), DEFAULT_HEADER_TIMEOUT_SECONDS + 5)
            outcome = data.split(b"\r\n", 1)[0].decode(errors="replace") or "closed silently"
            stats.hostile[kind][outcome] += 1
            stats.hostile[kind]["max seconds open"] = max(
                stats.hostile[kind]["max seconds open"], round(time.perf_counter() - started)
            )
            return
        writer.write(HOSTILE_REQUESTS[kind])
        status, _ = await asyncio.wait_for(_read_response(reader), REQUEST_TIMEOUT_SECONDS)
        stats.hostile[kind][f"HTTP {status}"] += 1
    except ConnectionResetError:
        stats.resets += 1
        stats.hostile[kind]["reset"] += 1
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
        stats.hostile[kind][type(error).__name__] += 1
    finally:
        writer.close()


async def _connection(
    port: int, requests: list[bytes], deadline: float, hostile_every: int, offset: int,
    stats: PhaseStats, background: list[asyncio.Task[None]],
) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(HOST, port)
    count = 0
    try:
        while time.perf_counter() < deadline:
            count += 1
            if hostile_every and (count + offset) % hostile_every == 0:
                kind = HOSTILE_KINDS[((count + offset) // hostile_every) % len(HOSTILE_KINDS)]
                task = asyncio.create_task(_hostile(port, kind, stats))
                if kind == "slow_headers":
                    background.append(task)  # held open by the client, closed by the server
                else:
                    await task
                continue
            started = time.perf_counter_ns()
            writer.write(requests[count % len(requests)])
            try:
                status, _ = await asyncio.wait_for(_read_response(reader), REQUEST_TIMEOUT_SECONDS)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
                stats.dropped += 1
                stats.resets += isinstance(error, ConnectionResetError)
                stats.good_errors[type(error).__name__] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            stats.latencies_ns.append(time.perf_counter_ns() - started)
            if status != 200:
                stats.good_errors[f"HTTP {status}"] += 1
    finally:
        writer.close()


async def client_phase(
    port: int, bodies: list[bytes], seconds: float, concurrency: int, hostile_every: int
) -> dict[str, Any]:
    """One phase of load; the client's measurements as a JSON-able dict."""
    stats = PhaseStats()
    background: list[asyncio.Task[None]] = []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _connection(port, _requests(HOST, "/invocations", "application/json", bodies, 1_000,
                                        97 * index),
                        deadline, hostile_every, 37 * index, stats, background)
            for index in range(concurrency)
        )
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if background:
        _, pending = await asyncio.wait(background, timeout=DEFAULT_HEADER_TIMEOUT_SECONDS + 6)
        for task in pending:
            task.cancel()
            stats.hostile["slow_headers"]["still open at the end"] += 1
    values = np.array(stats.latencies_ns, dtype=np.float64) / 1e6
    hostile_5xx = {
        kind: sum(n for outcome, n in outcomes.items() if outcome.startswith("HTTP 5"))
        for kind, outcomes in stats.hostile.items()
    }
    good_5xx = sum(n for outcome, n in stats.good_errors.items() if outcome.startswith("HTTP 5"))
    return {
        "good_requests": len(values),
        "requests_per_second": len(values) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": float(np.percentile(values, 50)) if len(values) else float("nan"),
        "p99_ms": float(np.percentile(values, 99)) if len(values) else float("nan"),
        "good_errors": dict(stats.good_errors),
        "dropped_good_requests": stats.dropped,
        "resets": stats.resets,
        "server_5xx": good_5xx + sum(hostile_5xx.values()),
        "parsing_5xx": sum(hostile_5xx.get(kind, 0) for kind in PARSING_KINDS),
        "hostile": {kind: dict(outcomes) for kind, outcomes in stats.hostile.items()},
    }


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return total


def _client(
    prefix: list[str], port: int, bodies_file: Path, seconds: float, concurrency: int,
    hostile_every: int,
) -> dict[str, Any]:  # fmt: skip
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "bench.soak", "--client", "--port", str(port),
         "--bodies", str(bodies_file), "--seconds", str(seconds),
         "--concurrency", str(concurrency), "--hostile-every", str(hostile_every)],
        cwd=REPOSITORY, capture_output=True, text=True, check=True,
        timeout=seconds + DEFAULT_HEADER_TIMEOUT_SECONDS + 120,
    )  # fmt: skip
    phase: dict[str, Any] = json.loads(result.stdout)
    return phase


def run(
    model_dir: Path | None = None,
    *,
    seconds: float = DEFAULT_SECONDS,
    concurrency: int = DEFAULT_CONCURRENCY,
    hostile_share: float = DEFAULT_HOSTILE_SHARE,
    work: Path | None = None,
) -> dict[str, Any]:
    """Both phases against one server; the measurements and whether the targets are met."""
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="freight-soak-")))
        work.mkdir(parents=True, exist_ok=True)
        model_dir = model_dir or train_model(work / "model-build")
        bodies_file = work / "bodies.json"
        bodies_file.write_text(json.dumps([orjson.dumps(load).decode()
                                           for load in request_loads(500)]))  # fmt: skip
        server_prefix, client_prefix, workers = pinning()
        port = free_port()
        environment = {
            **os.environ, "PYTHONPATH": str(REPOSITORY), ENV_MODEL_DIR: str(model_dir),
            ENV_HOST: HOST, ENV_BIND_TO_PORT: str(port), ENV_WORKERS: str(workers),
        }  # fmt: skip
        command = [*server_prefix, sys.executable, "-m", "inference.server"]
        server = stack.enter_context(server_process(command, port, env=environment, cwd=REPOSITORY))
        _client(client_prefix, port, bodies_file, WARMUP_SECONDS, concurrency, 0)
        hostile_every = round(1 / hostile_share)
        rss_start = rss_bytes(server.pid)
        clean = _client(client_prefix, port, bodies_file, seconds, concurrency, 0)
        rss_clean = rss_bytes(server.pid)
        hostile = _client(client_prefix, port, bodies_file, seconds, concurrency, hostile_every)
        rss_end = rss_bytes(server.pid)
    growth = rss_end / rss_start - 1
    ratio = hostile["p99_ms"] / clean["p99_ms"]
    server_5xx = clean["server_5xx"] + hostile["server_5xx"]
    dropped = clean["dropped_good_requests"] + hostile["dropped_good_requests"]
    return {
        "seconds_per_phase": seconds, "concurrency": concurrency, "workers": workers,
        "hostile_share": hostile_share, "clean": clean, "hostile": hostile,
        "rss_mb": {"start": rss_start / 1e6, "after_clean": rss_clean / 1e6,
                   "end": rss_end / 1e6},
        "rss_growth": growth, "p99_ratio": ratio,
        "targets": {
            f"hostile p99 <= {P99_RATIO_TARGET} x clean p99": ratio <= P99_RATIO_TARGET,
            f"RSS growth < {RSS_GROWTH_TARGET:.0%}": growth < RSS_GROWTH_TARGET,
            "no 5xx": server_5xx == 0,
            "no 5xx outside parsing": server_5xx - hostile["parsing_5xx"] == 0,
            "no dropped good requests": dropped == 0,
        },
    }  # fmt: skip


def soak_results(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The soak run as lines of the benchmark table (bench/run.py)."""
    clean, hostile = result["clean"], result["hostile"]
    server_5xx = clean["server_5xx"] + hostile["server_5xx"]
    dropped = clean["dropped_good_requests"] + hostile["dropped_good_requests"]
    label = f"soak c={result['concurrency']} {result['seconds_per_phase']:g} s"
    return [
        {"name": f"{label}: good req/s, 1% hostile", "value": hostile["requests_per_second"],
         "unit": "req/s", "note": f"clean {clean['requests_per_second']:,.0f} req/s"},
        {"name": f"{label}: good p99 hostile / clean", "value": result["p99_ratio"], "unit": "x",
         "target": f"<= {P99_RATIO_TARGET}", "met": result["p99_ratio"] <= P99_RATIO_TARGET,
         "note": f"p99 {hostile['p99_ms']:.2f} vs {clean['p99_ms']:.2f} ms"},
        {"name": f"{label}: server RSS growth", "value": 100 * result["rss_growth"],
         "unit": "%", "target": f"< {100 * RSS_GROWTH_TARGET:g} %",
         "met": result["rss_growth"] < RSS_GROWTH_TARGET},
        {"name": f"{label}: 5xx", "value": server_5xx, "unit": "count", "target": "0",
         "met": server_5xx == 0, "note": f"resets {clean['resets'] + hostile['resets']}"},
        {"name": f"{label}: dropped good requests", "value": dropped, "unit": "count",
         "target": "0", "met": dropped == 0},
    ]  # fmt: skip


def _print(result: dict[str, Any]) -> None:
    for name in ("clean", "hostile"):
        phase = result[name]
        print(f"{name:>8}: {phase['requests_per_second']:,.0f} good req/s, p50 "
              f"{phase['p50_ms']:.3f} ms, p99 {phase['p99_ms']:.3f} ms, 5xx "
              f"{phase['server_5xx']} (parsing {phase['parsing_5xx']}), resets "
              f"{phase['resets']}, dropped {phase['dropped_good_requests']}, non-200 good "
              f"{phase['good_errors']}")  # fmt: skip
    for kind, outcomes in sorted(result["hostile"]["hostile"].items()):
        print(f"  hostile {kind}: {outcomes}")
    rss = result["rss_mb"]
    print(f"server RSS {rss['start']:.1f} -> {rss['after_clean']:.1f} -> {rss['end']:.1f} MB "
          f"({result['rss_growth']:+.1%}); p99 ratio {result['p99_ratio']:.2f}")  # fmt: skip
    for target, met in result["targets"].items():
        print(f"  {'met ' if met else 'MISS'} {target}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: the soak run (see --help), or one client phase (--client, internal)."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per phase")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--hostile-share", type=float, default=DEFAULT_HOSTILE_SHARE)
    parser.add_argument("--model-dir", type=Path, help="a trained model (default: train one)")
    parser.add_argument("--output", type=Path, help="also write the result as JSON here")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bodies", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hostile-every", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.hostile_share <= 0.5:
        parser.error("--hostile-share must be within (0, 0.5]")
    if args.client:
        import uvloop

        bodies = [body.encode() for body in json.loads(args.bodies.read_text())]
        phase = uvloop.run(client_phase(args.port, bodies, args.seconds, args.concurrency,
                                        args.hostile_every))  # fmt: skip
        json.dump(phase, sys.stdout)
        return 0
    result = run(args.model_dir, seconds=args.seconds, concurrency=args.concurrency,
                 hostile_share=args.hostile_share)  # fmt: skip
    _print(result)
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
