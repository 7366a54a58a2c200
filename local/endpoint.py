"""A local endpoint: our server in a subprocess, reachable like SageMaker with boto3."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from stages.names import ResourceNames

# The local stage's endpoint name, as the stage's names spell it.
LOCAL_ENDPOINT_NAME = ResourceNames(stage="local").endpoint
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def server_process(
    command: Sequence[str],
    port: int,
    ready_path: str = "/ping",
    env: Mapping[str, str] | None = None,
    log: IO[bytes] | None = None,
    cwd: Path | None = None,
    pass_fds: Sequence[int] = (),
    ready: Callable[[], bool] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run an HTTP server command until ``GET ready_path`` answers 200; stop it on exit.

    ``ready`` replaces the HTTP check (for a server on a port that another one shares);
    ``pass_fds`` are inherited by the server (a listening socket made by the caller).

    The server gets SIGTERM (a graceful drain) and, if it has not exited after
    STOP_TIMEOUT_SECONDS, SIGKILL. A server that dies while starting raises RuntimeError with
    the end of its output.
    """
    with contextlib.ExitStack() as stack:
        # A file, not a pipe: a chatty server must never block on a full pipe.
        output = log if log is not None else stack.enter_context(tempfile.TemporaryFile())
        process = subprocess.Popen(
            list(command), env=dict(env) if env is not None else None, cwd=cwd,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            pass_fds=tuple(pass_fds),
        )  # fmt: skip
        stack.callback(_stop, process)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        is_ready = ready or (lambda: _ready(port, ready_path))
        while not is_ready():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{command[0]} exited with {process.returncode}: {_tail(output)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"server not ready on port {port} after {READY_TIMEOUT_SECONDS} s"
                )
            time.sleep(0.2)
        yield process


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(output: IO[bytes]) -> str:
    try:
        output.flush()
        output.seek(0)
        return output.read().decode(errors="replace")[-2000:]
    except (OSError, ValueError):
        return "(output not readable)"


def _ready(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
