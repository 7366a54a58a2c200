"""The server against slow clients, oversized input and shutdowns: real servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from botocore.exceptions import ClientError

from inference.settings import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_HEADER_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
    ENV_BODY_TIMEOUT_SECONDS,
    ENV_DRAIN_SECONDS,
    ENV_HEADER_TIMEOUT_SECONDS,
    ENV_HOST,
    ENV_MAX_BODY_BYTES,
    ENV_MAX_CONNECTIONS,
    ENV_MAX_HEADER_BYTES,
    ENV_MODEL_DIR,
    ENV_WORKERS,
    ServerSettings,
    SettingsError,
)
from processing.sagemaker_paths import ENV_BIND_TO_PORT
from tests.inference.test_parsing import VALID_LOAD, json_body
from tests.inference.test_server import (
    PROJECT_ROOT,
    PROXY_VARIABLES,
    SERVER_START_SECONDS,
    free_port,
    runtime_client,
    wait_until_ready,
)

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
# Deadlines are checked every quarter second; the rest is room for a busy 2-core machine.
MARGIN = 3.0
MAX_BODY = 100_000
MAX_HEADERS = 8_192
DRAIN_SECONDS = 10.0
REQUEST = (
    b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n"
)


@dataclass(frozen=True)
class RunningServer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loopback only: no proxy may sit between the clients and the server.
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@contextmanager
def container_server(
    model_dir: Path, log: Path, workers: int = 1, extra: Mapping[str, str] | None = None
) -> Iterator[RunningServer]:
    """The container's ``serve`` (``python -m inference.server``), configured by environment."""
    port = free_port()
    environment = {
        **os.environ,
        ENV_MODEL_DIR: str(model_dir),
        ENV_HOST: "127.0.0.1",
        ENV_BIND_TO_PORT: str(port),
        ENV_WORKERS: str(workers),
        "FREIGHT_BUSY_POLL_US": "0",  # two shared cores: no spinning during the tests
        **(extra or {}),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "inference.server"], cwd=PROJECT_ROOT, env=environment,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield RunningServer(port, process, log)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def limited(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server with short timeouts and small limits, shared by the tests of limits."""
    extra = {
        ENV_HEADER_TIMEOUT_SECONDS: str(HEADER_TIMEOUT),
        ENV_BODY_TIMEOUT_SECONDS: str(BODY_TIMEOUT),
        ENV_MAX_BODY_BYTES: str(MAX_BODY),
        ENV_MAX_HEADER_BYTES: str(MAX_HEADERS),
    }
    log = tmp_path_factory.mktemp("limited") / "server.log"
    with pytest.MonkeyPatch.context() as patch:
        for variable in PROXY_VARIABLES:
            patch.delenv(variable, raising=False)
        with container_server(model_dir, log, extra=extra) as server:
            wait_until_ready(f"http://127.0.0.1:{server.port}/ping", server.process,
                             SERVER_START_SECONDS)  # fmt: skip
            yield server


def quote(port: int) -> int:
    """POST one valid load with urllib; the status."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=json_body(VALID_LOAD),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        status: int = response.status
        return status


def read_until_closed(connection: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes; TimeoutError if it stays open."""
    connection.settimeout(timeout)
    received = b""
    while True:
        chunk = connection.recv(65_536)
        if not chunk:
            return received
        received += chunk


# -- settings -----------------------------------------------------------------------------------


def test_limits_have_documented_defaults() -> None:
    settings = ServerSettings()
    assert settings.max_header_bytes == DEFAULT_MAX_HEADER_BYTES == 65_536
    assert settings.header_timeout_seconds == DEFAULT_HEADER_TIMEOUT_SECONDS == 10.0
    assert settings.body_timeout_seconds == DEFAULT_BODY_TIMEOUT_SECONDS == 30.0
    assert settings.max_connections == DEFAULT_MAX_CONNECTIONS == 1_024
    assert settings.drain_seconds == DEFAULT_DRAIN_SECONDS == 30.0
    assert settings.timeout_seconds == 60  # keep-alive idle


def test_limits_round_trip_through_the_environment() -> None:
    settings = ServerSettings(
        max_header_bytes=4_096, header_timeout_seconds=0.5, body_timeout_seconds=2.5,
        max_connections=7, drain_seconds=12.0,
    )  # fmt: skip
    environment = settings.to_environment()
    assert environment[ENV_HEADER_TIMEOUT_SECONDS] == "0.5"
    assert environment[ENV_MAX_CONNECTIONS] == "7"
    assert ServerSettings.from_environment(environment) == settings
    limits = settings.connection_limits
    assert (limits.max_header_bytes, limits.drain_seconds) == (4_096, 12.0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (ENV_MAX_HEADER_BYTES, "100", "max_header_bytes must be within 1024-1048576"),
        (ENV_MAX_HEADER_BYTES, "64KB", f"{ENV_MAX_HEADER_BYTES} must be an integer"),
        (ENV_HEADER_TIMEOUT_SECONDS, "0", "header_timeout_seconds must be above 0"),
        (ENV_HEADER_TIMEOUT_SECONDS, "10s", f"{ENV_HEADER_TIMEOUT_SECONDS} must be a number"),
        (ENV_BODY_TIMEOUT_SECONDS, "-1", "body_timeout_seconds must be above 0"),
        (ENV_MAX_CONNECTIONS, "0", "max_connections must be positive"),
        (ENV_DRAIN_SECONDS, "7200", "drain_seconds must be above 0 and at most 3600"),
    ],
)
def test_limit_settings_name_the_bad_value(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ServerSettings.from_environment({name: value})


# -- slow clients and oversized input -----------------------------------------------------------


@pytest.mark.integration
def test_a_client_that_never_finishes_its_headers_is_closed(limited: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", limited.port)) as slow:
        slow.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        with socket.create_connection(("127.0.0.1", limited.port)) as silent:
            # Others are served meanwhile.
            assert [quote(limited.port) for _ in range(3)] == [200, 200, 200]
            answer = read_until_closed(slow, HEADER_TIMEOUT + MARGIN)
            assert answer.startswith(b"HTTP/1.1 408 ")
            assert b"connection: close" in answer
            assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == (
                "header_timeout"
            )
            # A connection that sends nothing at all is closed without an answer.
            assert read_until_closed(silent, HEADER_TIMEOUT + MARGIN) == b""
    assert quote(limited.port) == 200


@pytest.mark.integration
def test_a_body_that_never_ends_is_answered_408(limited: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", limited.port)) as slow:
        slow.sendall(REQUEST % 500 + b'{"origin_country": "DE", ')
        assert quote(limited.port) == 200
        answer = read_until_closed(slow, BODY_TIMEOUT + MARGIN)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "body_timeout"


@pytest.mark.integration
def test_huge_headers_get_431_without_hurting_others(limited: RunningServer) -> None:
    other = http.client.HTTPConnection("127.0.0.1", limited.port, timeout=10)
    other.request("GET", "/ping")
    assert other.getresponse().read()
    # Headers under the limit are fine.
    other.request("GET", "/ping", headers={"X-Padding": "a" * (MAX_HEADERS // 2)})
    response = other.getresponse()
    assert (response.status, bool(response.read())) == (200, True)
    answer = b""
    with socket.create_connection(("127.0.0.1", limited.port)) as hostile:
        # The server stops reading early: what it answered may still be readable.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            hostile.sendall(b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 20_000_000)
        try:
            answer = read_until_closed(hostile, MARGIN)
        except ConnectionResetError:
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    # The keep-alive connection opened before is still served.
    other.request("GET", "/ping")
    assert other.getresponse().status == 200
    other.close()
    assert b"request headers exceed" in limited.log.read_bytes()


@pytest.mark.integration
def test_a_body_over_the_limit_reaches_urllib_as_413(limited: RunningServer) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{limited.port}/invocations", data=b"[" + b" " * (MAX_BODY * 3 // 2),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 413
    assert caught.value.headers["Connection"] == "close"
    assert orjson.loads(caught.value.read())["error"]["code"] == "payload_too_large"
    # And boto3, on the runtime path, sees SageMaker's wrapped error, not a reset.
    runtime = runtime_client(f"http://127.0.0.1:{limited.port}")
    with pytest.raises(ClientError) as wrapped:
        runtime.invoke_endpoint(
            EndpointName="local", ContentType="application/json", Body=b" " * (MAX_BODY * 2)
        )
    assert dict(wrapped.value.response)["OriginalStatusCode"] == 413
    assert quote(limited.port) == 200


# -- shutdown -----------------------------------------------------------------------------------


@dataclass
class Outcomes:
    """What the clients saw: answered (status codes), refused before connecting, lost."""

    answered: list[int] = field(default_factory=list)
    told_to_close: int = 0
    refused: int = 0
    lost: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ask(self, connection: http.client.HTTPConnection) -> bool:
        """One request; False once the server refuses connections or told us to close."""
        if connection.sock is None:
            try:
                connection.connect()
            except (ConnectionRefusedError, TimeoutError):
                with self.lock:
                    self.refused += 1  # never accepted: the client knows to go elsewhere
                return False
        try:
            connection.request("POST", "/invocations", body=json_body(VALID_LOAD),
                               headers={"Content-Type": "application/json"})  # fmt: skip
            response = connection.getresponse()
            response.read()
        except OSError as error:  # includes resets and a close without an answer
            connection.close()
            with self.lock:
                self.lost.append(repr(error))
            return False
        closing = (response.getheader("connection") or "").lower() == "close"
        with self.lock:
            self.answered.append(response.status)
            self.told_to_close += closing
        if closing:
            connection.close()
        return True


def keep_alive_client(port: int, outcomes: Outcomes, ready: threading.Event) -> None:
    """Requests back to back on one connection, reconnecting when told to close; bounded."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    deadline = time.monotonic() + 45
    for count in range(5_000):
        if count == 3:
            ready.set()
        if time.monotonic() > deadline or not outcomes.ask(connection):
            break
    connection.close()


def one_request(port: int, outcomes: Outcomes) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    outcomes.ask(connection)
    connection.close()


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_answers_every_accepted_request(
    model_dir: Path, tmp_path: Path, workers: int
) -> None:
    extra = {ENV_DRAIN_SECONDS: str(DRAIN_SECONDS)}
    with container_server(model_dir, tmp_path / "server.log", workers, extra) as server:
        wait_until_ready(f"http://127.0.0.1:{server.port}/ping", server.process,
                         SERVER_START_SECONDS)  # fmt: skip
        outcomes = Outcomes()
        ready = [threading.Event() for _ in range(6)]
        steady = [
            threading.Thread(target=keep_alive_client, args=(server.port, outcomes, event))
            for event in ready
        ]
        for thread in steady:
            thread.start()
        assert all(event.wait(30) for event in ready)
        burst = [
            threading.Thread(target=one_request, args=(server.port, outcomes)) for _ in range(48)
        ]
        for index, thread in enumerate(burst):
            thread.start()
            if index == len(burst) // 2:
                server.process.send_signal(signal.SIGTERM)  # mid-load
        for thread in steady + burst:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in steady + burst)
        returncode = server.process.wait(timeout=DRAIN_SECONDS + 10)
    assert outcomes.lost == []
    assert returncode == 0
    assert set(outcomes.answered) == {200}
    assert len(outcomes.answered) >= 6 * 3
    # Each keep-alive client was told to close (or its connection was refused at once).
    assert outcomes.told_to_close + outcomes.refused >= len(steady)
    assert b'"message": "worker shutting down"' in server.log.read_bytes()


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_a_model_that_fails_to_load_exits_non_zero(tmp_path: Path, workers: int) -> None:
    empty = tmp_path / "model"
    empty.mkdir()
    with container_server(empty, tmp_path / "server.log", workers) as server:
        returncode = server.process.wait(timeout=SERVER_START_SECONDS)
    assert returncode == 3
    assert b"model failed to load" in server.log.read_bytes()
