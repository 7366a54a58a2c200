"""The server's settings: SageMaker's and our environment variables, defaults and range checks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from inference.busy_poll import DEFAULT_WINDOW_US, window_problem
from inference.observer import OBSERVER_SPEC
from inference.protocol import ConnectionLimits
from processing.contracts import MAX_PAYLOAD_BYTES
from processing.sagemaker_paths import ENV_BIND_TO_PORT, ML_BASE, MODEL

DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = MAX_PAYLOAD_BYTES
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_BYTES_RANGE = (1_024, 1_048_576)
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0
DEFAULT_KEEP_ALIVE_SECONDS = 60
DEFAULT_MAX_CONNECTIONS = 1_024
DEFAULT_DRAIN_SECONDS = 30.0
MAX_TIMEOUT_SECONDS = 3_600.0
# An oversized body is read and thrown away up to this bound (2 x the limit, at least 8 MiB)
# before the 413 goes out, so that a client that sends its whole body before reading (urllib,
# boto3) reads the 413 instead of a connection reset.
DISCARD_FACTOR = 2
MIN_DISCARD_BYTES = 8 * 1024 * 1024
ENV_WORKERS = "SAGEMAKER_MODEL_SERVER_WORKERS"
ENV_TIMEOUT = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
ENV_MODEL_DIR = "FREIGHT_MODEL_DIR"
ENV_MAX_BODY_BYTES = "FREIGHT_MAX_BODY_BYTES"
ENV_ENDPOINT_NAME = "FREIGHT_ENDPOINT_NAME"
ENV_ACCESS_LOG = "FREIGHT_ACCESS_LOG"
ENV_HOST = "FREIGHT_HOST"
ENV_BUSY_POLL_US = "FREIGHT_BUSY_POLL_US"
ENV_MAX_HEADER_BYTES = "FREIGHT_MAX_HEADER_BYTES"
ENV_HEADER_TIMEOUT_SECONDS = "FREIGHT_HEADER_TIMEOUT_SECONDS"
ENV_BODY_TIMEOUT_SECONDS = "FREIGHT_BODY_TIMEOUT_SECONDS"
ENV_MAX_CONNECTIONS = "FREIGHT_MAX_CONNECTIONS"
ENV_DRAIN_SECONDS = "FREIGHT_DRAIN_SECONDS"
# Local mode only (unset in production): the invocation observer ("module:factory", see
# inference.observer) and a listening socket inherited from the host instead of binding one.
ENV_INVOCATION_OBSERVER = "FREIGHT_INVOCATION_OBSERVER"
ENV_LISTEN_FD = "FREIGHT_LISTEN_FD"


class SettingsError(ValueError):
    """A server setting (flag or environment variable) is invalid; the message names it."""


@dataclass(frozen=True)
class ServerSettings:
    """How to run the server; from flags (``freight serve``) or from SageMaker's environment.

    Limits and timeouts, per worker process: ``max_body_bytes`` (413 beyond), ``max_header_bytes``
    (431 beyond; request line and headers), ``header_timeout_seconds`` (from the connection or
    a request's first byte to the end of its headers) and ``body_timeout_seconds`` (from the end
    of the headers to the end of the body), both answered 408; ``timeout_seconds``
    (``SAGEMAKER_MODEL_SERVER_TIMEOUT``) is how long an idle keep-alive connection stays open;
    ``max_connections`` open connections are served, requests on more get 503 and a close;
    ``drain_seconds`` bounds the drain after SIGTERM.

    Host seams, unset in production: ``invocation_observer`` (``module:factory``, called once
    per worker, see inference.observer) and ``listen_fd``, an inherited listening socket to
    serve on instead of binding ``host:port`` (the local hosting service owns the public port).
    """

    model_dir: Path = ML_BASE / MODEL
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    endpoint_name: str | None = None
    access_log: bool = False
    timeout_seconds: int = DEFAULT_KEEP_ALIVE_SECONDS
    busy_poll_us: int = DEFAULT_WINDOW_US
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    invocation_observer: str | None = None
    listen_fd: int | None = None

    def __post_init__(self) -> None:
        if self.invocation_observer is not None and not OBSERVER_SPEC.fullmatch(
            self.invocation_observer
        ):
            raise SettingsError(
                f"{ENV_INVOCATION_OBSERVER} must be 'module:factory', got "
                f"{self.invocation_observer!r}"
            )
        if self.listen_fd is not None and self.listen_fd < 0:
            raise SettingsError(f"{ENV_LISTEN_FD} must be a file descriptor, got {self.listen_fd}")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"port must be within 1-65535, got {self.port}")
        if self.workers < 1:
            raise SettingsError(f"workers must be at least 1, got {self.workers}")
        if self.max_body_bytes < 1:
            raise SettingsError(f"max_body_bytes must be positive, got {self.max_body_bytes}")
        if self.timeout_seconds < 1:
            raise SettingsError(f"timeout_seconds must be positive, got {self.timeout_seconds}")
        busy_poll_problem = window_problem(self.busy_poll_us)
        if busy_poll_problem:
            raise SettingsError(f"busy_poll_us {busy_poll_problem}")
        low, high = MAX_HEADER_BYTES_RANGE
        if not low <= self.max_header_bytes <= high:
            raise SettingsError(
                f"max_header_bytes must be within {low}-{high}, got {self.max_header_bytes}"
            )
        if self.max_connections < 1:
            raise SettingsError(f"max_connections must be positive, got {self.max_connections}")
        for name in ("header_timeout_seconds", "body_timeout_seconds", "drain_seconds"):
            value = getattr(self, name)
            if not 0 < value <= MAX_TIMEOUT_SECONDS:
                raise SettingsError(
                    f"{name} must be above 0 and at most {MAX_TIMEOUT_SECONDS:g}, got {value}"
                )

    @property
    def connection_limits(self) -> ConnectionLimits:
        """The limits the HTTP protocol enforces per connection, and the drain time."""
        return ConnectionLimits(
            max_header_bytes=self.max_header_bytes,
            header_timeout_seconds=self.header_timeout_seconds,
            body_timeout_seconds=self.body_timeout_seconds,
            drain_seconds=self.drain_seconds,
        )

    @property
    def effective_busy_poll_us(self) -> int:
        """The busy-poll window, or 0 with more workers than cores (they would steal CPU)."""
        return self.busy_poll_us if self.workers <= (os.cpu_count() or 1) else 0

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> ServerSettings:
        """Settings from SageMaker's variables (and ours, prefixed FREIGHT_)."""

        def integer(name: str, default: int) -> int:
            raw = environment.get(name)
            if raw is None or not raw.strip():
                return default
            try:
                return int(raw)
            except ValueError:
                raise SettingsError(f"{name} must be an integer, got {raw!r}") from None

        def number(name: str, default: float) -> float:
            raw = environment.get(name)
            if raw is None or not raw.strip():
                return default
            try:
                return float(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {raw!r}") from None

        return cls(
            model_dir=Path(environment.get(ENV_MODEL_DIR) or ML_BASE / MODEL),
            host=environment.get(ENV_HOST, "0.0.0.0"),
            port=integer(ENV_BIND_TO_PORT, DEFAULT_PORT),
            workers=integer(ENV_WORKERS, os.cpu_count() or 1),
            max_body_bytes=integer(ENV_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES),
            endpoint_name=environment.get(ENV_ENDPOINT_NAME) or None,
            access_log=environment.get(ENV_ACCESS_LOG, "").lower() in ("1", "true", "yes"),
            timeout_seconds=integer(ENV_TIMEOUT, DEFAULT_KEEP_ALIVE_SECONDS),
            busy_poll_us=integer(ENV_BUSY_POLL_US, DEFAULT_WINDOW_US),
            max_header_bytes=integer(ENV_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_BYTES),
            header_timeout_seconds=number(
                ENV_HEADER_TIMEOUT_SECONDS, DEFAULT_HEADER_TIMEOUT_SECONDS
            ),
            body_timeout_seconds=number(ENV_BODY_TIMEOUT_SECONDS, DEFAULT_BODY_TIMEOUT_SECONDS),
            max_connections=integer(ENV_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS),
            drain_seconds=number(ENV_DRAIN_SECONDS, DEFAULT_DRAIN_SECONDS),
            invocation_observer=environment.get(ENV_INVOCATION_OBSERVER) or None,
            listen_fd=integer(ENV_LISTEN_FD, -1) if environment.get(ENV_LISTEN_FD) else None,
        )

    def to_environment(self) -> dict[str, str]:
        """The variables that :meth:`from_environment` reads back (for worker processes)."""
        return {
            ENV_MODEL_DIR: str(self.model_dir),
            ENV_HOST: self.host,
            ENV_BIND_TO_PORT: str(self.port),
            ENV_WORKERS: str(self.workers),
            ENV_MAX_BODY_BYTES: str(self.max_body_bytes),
            ENV_ENDPOINT_NAME: self.endpoint_name or "",
            ENV_ACCESS_LOG: "1" if self.access_log else "",
            ENV_TIMEOUT: str(self.timeout_seconds),
            ENV_BUSY_POLL_US: str(self.busy_poll_us),
            ENV_MAX_HEADER_BYTES: str(self.max_header_bytes),
            ENV_HEADER_TIMEOUT_SECONDS: repr(self.header_timeout_seconds),
            ENV_BODY_TIMEOUT_SECONDS: repr(self.body_timeout_seconds),
            ENV_MAX_CONNECTIONS: str(self.max_connections),
            ENV_DRAIN_SECONDS: repr(self.drain_seconds),
            ENV_INVOCATION_OBSERVER: self.invocation_observer or "",
            ENV_LISTEN_FD: "" if self.listen_fd is None else str(self.listen_fd),
        }
