"""The supervisor of 2+ server workers: starts them on one listener, restarts, drains, exits.

uvicorn's own multi-process supervisor exits 0 when a worker fails to load the model and resets
queued connections on SIGTERM; this one propagates a start-up failure (exit 3) and stops new
connections before it asks every worker to drain (docs/adr/0004-serving-stack.md).
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from inference.protocol import STARTUP_FAILURE, stop_new_connections

# How long the supervisor waits beyond drain_seconds before it kills a worker.
STOP_MARGIN_SECONDS = 5.0
# A worker that keeps dying is not restarted forever: this many restarts per window stop it.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0

logger = logging.getLogger("freight.inference")


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    started: float


def supervise(
    command: Sequence[str],
    environment: Mapping[str, str],
    listener: socket.socket,
    workers: int,
    drain_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``workers`` copies of ``command`` (each inherits ``listener``); the exit code.

    SIGTERM or SIGINT stops new connections and is passed on to every worker, which drains;
    a worker still running ``drain_seconds`` + :data:`STOP_MARGIN_SECONDS` later is killed. A
    worker that exits 3 (it could not start: the model did not load) stops the server with 3;
    any other worker that dies is restarted, up to :data:`MAX_RESTARTS` per minute. Returns 0
    when every worker drained and exited 0, else the first failure's code.
    """
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    original = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> _Worker:
        process = subprocess.Popen(
            list(command), env=dict(environment), pass_fds=(listener.fileno(),)
        )
        return _Worker(process, clock())

    exit_code = 0
    restarts: list[float] = []
    pool = [start() for _ in range(workers)]
    try:
        while not stopping and not exit_code:
            time.sleep(0.2)
            for index, worker in enumerate(pool):
                code = worker.process.poll()
                if code is None or stopping:
                    continue
                fields = {"pid": worker.process.pid, "exit_code": code}
                if code == STARTUP_FAILURE:
                    logger.error("a worker could not start; stopping", extra={"fields": fields})
                    exit_code = STARTUP_FAILURE
                    break
                restarts = [t for t in restarts if clock() - t < RESTART_WINDOW_SECONDS]
                if len(restarts) >= MAX_RESTARTS:
                    logger.error("workers keep dying; stopping", extra={"fields": fields})
                    exit_code = code or 1
                    break
                logger.error("a worker died; restarting it", extra={"fields": fields})
                restarts.append(clock())
                pool[index] = start()
        exit_code = max(exit_code, _stop_all(pool, listener, drain_seconds, clock))
    finally:
        for sig, handler in original.items():
            signal.signal(sig, handler)
    return exit_code


def _stop_all(
    pool: Sequence[_Worker], listener: socket.socket, drain_seconds: float,
    clock: Callable[[], float],
) -> int:  # fmt: skip
    stop_new_connections(listener)
    for worker in pool:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = clock() + drain_seconds + STOP_MARGIN_SECONDS
    failed = 0
    for worker in pool:
        try:
            code = worker.process.wait(timeout=max(0.0, deadline - clock()))
        except subprocess.TimeoutExpired:
            logger.error("a worker did not drain in time; killing it",
                         extra={"fields": {"pid": worker.process.pid}})  # fmt: skip
            worker.process.kill()
            code = worker.process.wait()
        if code == -signal.SIGTERM:
            # Ended by our SIGTERM before it installed its handler: it was still starting, so
            # it had not accepted anything.
            code = 0
        if code and not failed:
            failed = code if code > 0 else 1
    listener.close()
    return failed
