"""A bounded HTTP/1.1 load generator for loopback benchmarks (run in its own process).

Keeps ``concurrency`` keep-alive connections, each sending ``requests`` POSTs back to back
(closed loop), and reports latency percentiles, requests per second and errors as JSON. The
work is bounded by the request count and by ``--timeout``; it only connects to the host and
port it is given, which the benchmark sets to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, body
            body += chunk[:-2]
    raise ValueError("response without content-length or chunked encoding")


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    latencies: list[int],
    errors: list[str],
    deadline: float,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in requests:
            if time.perf_counter() > deadline:
                errors.append("deadline")
                return
            started = time.perf_counter_ns()
            writer.write(request)
            try:
                status, _ = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError) as error:
                errors.append(f"{type(error).__name__}")
                return
            latencies.append(time.perf_counter_ns() - started)
            if status >= 300:
                errors.append(f"HTTP {status}")
    finally:
        writer.close()


def _requests(
    host: str, path: str, content_type: str, bodies: list[bytes], count: int, offset: int
) -> list[bytes]:
    out = []
    for index in range(count):
        body = bodies[(offset + index) % len(bodies)]
        out.append(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return out


async def run(
    host: str,
    port: int,
    path: str,
    content_type: str,
    bodies: list[bytes],
    concurrency: int,
    requests_per_connection: int,
    warmup: int,
    timeout: float,
) -> dict[str, float | int | list[str]]:
    """Warm up, then measure; return percentiles (ms), requests/s and error samples."""
    deadline = time.perf_counter() + timeout
    ignored: list[int] = []
    warm_errors: list[str] = []
    await _connection(
        host, port, _requests(host, path, content_type, bodies, warmup, 0), ignored,
        warm_errors, deadline,
    )  # fmt: skip
    latencies: list[int] = []
    errors: list[str] = []
    started = time.perf_counter()
    connections = [
        _requests(host, path, content_type, bodies, requests_per_connection, 97 * c)
        for c in range(concurrency)
    ]
    await asyncio.gather(
        *(_connection(host, port, c, latencies, errors, deadline) for c in connections)
    )
    elapsed = time.perf_counter() - started
    values = np.array(latencies, dtype=np.float64) / 1e6
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors) + len(warm_errors),
        "error_samples": sorted(set(errors + warm_errors))[:5],
        "p50_ms": float(np.percentile(values, 50)) if len(values) else float("nan"),
        "p99_ms": float(np.percentile(values, 99)) if len(values) else float("nan"),
        "requests_per_second": len(latencies) / elapsed if elapsed > 0 else 0.0,
    }


def main() -> int:
    """Command line: see --help; prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/invocations")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--bodies", type=Path, required=True, help="JSON list of request bodies")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000, help="per connection")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("this load generator only targets loopback")
    bodies = [body.encode() for body in json.loads(args.bodies.read_text())]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(
        run(args.host, args.port, args.path, args.content_type, bodies, args.concurrency,
            args.requests, args.warmup, args.timeout)
    )  # fmt: skip
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
