"""The HTTP layer under the price app: connection limits and timeouts, draining, worker processes.

uvicorn's httptools protocol has a keep-alive timeout but no header timeout, no body timeout and
no header size limit, and its shutdown resets the connections that wait in the accept backlog or
send a request on an idle keep-alive connection. This module adds, at the depth where each
belongs:

- :class:`LimitedHttpToolsProtocol`: per connection, requests whose headers exceed
  ``max_header_bytes`` get 431; headers that do not arrive within ``header_timeout_seconds``
  (from the connection or the request's first byte) and bodies that do not arrive within
  ``body_timeout_seconds`` (from the end of the headers) get 408, then the connection closes.
  One sweep per worker checks the deadlines every :data:`SWEEP_SECONDS`: no timer per request.
- :class:`DrainingServer`: on SIGTERM a worker stops new TCP handshakes on the listening socket
  (:func:`stop_new_connections`), accepts what the kernel has queued already, answers every
  request it has received with ``Connection: close``, closes idle keep-alive connections, and
  exits 0 within ``drain_seconds``.
- :func:`supervise`: several worker processes on one listening socket; SIGTERM is passed on,
  a worker that cannot start (exit 3, the model did not load) stops the server with that code.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import select
import signal
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE as UVICORN_STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

# Deadlines are checked this often, so a timeout fires up to this much late.
SWEEP_SECONDS = 0.25
# While draining, a keep-alive connection idle for this long is closed; a busier client sends
# its next request (answered with Connection: close) before that.
DRAIN_IDLE_GRACE_SECONDS = 1.0
LISTEN_BACKLOG = 2048
# The exit code of a worker (and of the server) that could not start: uvicorn's.
STARTUP_FAILURE: int = UVICORN_STARTUP_FAILURE
# Linux's SO_ATTACH_FILTER (asm-generic/socket.h) and a classic BPF program of one
# instruction, "return 0": every packet to the listening socket is dropped.
SO_ATTACH_FILTER = 26
DROP_ALL_PROGRAM = struct.pack("HBBI", 0x06, 0, 0, 0)  # BPF_RET | BPF_K, k = 0
CONNECTION_CLOSE = (b"connection", b"close")

_HEADERS, _BODY, _IDLE, _CLOSED = range(4)

logger = logging.getLogger("freight.inference")


def error_body(code: str, message: str) -> bytes:
    """The JSON document of every error response: ``{"error": {"code": ..., "message": ...}}``."""
    return orjson.dumps({"error": {"code": code, "message": message}})


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may send, how slowly, and how long a stopping worker drains."""

    max_header_bytes: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    drain_seconds: float


class WorkerState(ServerState):
    """uvicorn's per-worker state (connections, tasks) plus our limits and the drain flag."""

    def __init__(self, limits: ConnectionLimits) -> None:
        super().__init__()
        self.limits = limits
        self.draining = False


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size limit, header and body timeouts, drain.

    The phase of the request being read (headers, body, or idle between requests) and when it
    began are kept per connection; :meth:`check_deadlines` (the worker's sweep) enforces the
    timeouts, so the hot path only stores a time per phase.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        if not isinstance(server_state, WorkerState):
            raise TypeError("LimitedHttpToolsProtocol needs a WorkerState (run a DrainingServer)")
        self.worker_state = server_state
        self.limits = server_state.limits
        # A new connection waits for its first request's headers.
        self._phase = _HEADERS
        self._phase_started = self.loop.time()
        self._header_bytes = 0

    def data_received(self, data: bytes) -> None:
        """Feed the parser; answer 431 when a request's headers grow over the limit."""
        self._unset_keepalive_if_required()
        # Bytes that arrive while no body is being read start in (or are) a request's headers.
        counted = self._phase != _BODY
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
            return
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
            return
        if self._phase == _HEADERS and counted:
            # Still inside the headers after everything received: all of it is headers (a
            # request pipelined behind a body counts from the next chunk, a bounded lag).
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._reject(
                    431, "headers_too_large",
                    f"the request headers exceed {self.limits.max_header_bytes} bytes",
                )  # fmt: skip

    def on_message_begin(self) -> None:
        """A request starts: its headers are now due within the header timeout."""
        super().on_message_begin()
        if self._phase != _HEADERS:
            self._phase = _HEADERS
            self._phase_started = self.loop.time()
            self._header_bytes = 0

    def on_headers_complete(self) -> None:
        """The headers are in: the body is now due; while draining, the answer closes."""
        self._phase = _BODY
        self._phase_started = self.loop.time()
        super().on_headers_complete()
        if self.worker_state.draining and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        """The whole request is in: no deadline until the next one begins."""
        super().on_message_complete()
        self._phase = _IDLE

    def check_deadlines(self, now: float) -> None:
        """Close the connection with 408 if its headers or body are overdue (the sweep)."""
        phase, elapsed = self._phase, now - self._phase_started
        if phase == _HEADERS and elapsed > self.limits.header_timeout_seconds:
            if self._header_bytes:
                self._reject(408, "header_timeout", "the request headers came too slowly")
            else:
                # Nothing sent at all: nobody to answer.
                self._phase = _CLOSED
                self.transport.close()
        elif phase == _BODY and elapsed > self.limits.body_timeout_seconds:
            if self.cycle is not None and not self.cycle.response_started:
                self._reject(408, "body_timeout", "the request body came too slowly")
            else:
                self._phase = _CLOSED
                self.transport.close()

    def drain(self) -> None:
        """Worker stopping: finish the request in progress, then close; close idle soon."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The last request received is answered with Connection: close (pipelined ones
            # before it are still answered on this connection).
            last = self.pipeline[0][0] if self.pipeline else cycle
            last.keep_alive = False
        elif self._phase == _IDLE and self.timeout_keep_alive_task is not None:
            idle_since = self.timeout_keep_alive_task.when() - self.timeout_keep_alive
            delay = max(0.0, idle_since + DRAIN_IDLE_GRACE_SECONDS - self.loop.time())
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                delay, self.timeout_keep_alive_handler
            )
        # A request still arriving gets Connection: close in on_headers_complete.

    def _reject(self, status: int, code: str, message: str) -> None:
        body = error_body(code, message)
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self._phase = _CLOSED
        self.transport.close()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        logger.info("connection closed", extra={"fields": {"status": status, "error": message,
                                                           "client": client}})  # fmt: skip


def stop_new_connections(listener: socket.socket) -> bool:
    """Make the kernel drop new handshakes on ``listener``, keeping those already queued.

    Closing a listening socket resets the connections in its accept queue: clients that are
    connected and have sent their request. Dropping the handshake packets instead (a socket
    filter, Linux) leaves the queue to be accepted and answered; a client that connects now
    retransmits its SYN and is refused once the socket is closed. The filter acts on the
    socket, so for every process sharing it. Returns False where this is not possible.
    """
    if sys.platform != "linux":
        return False
    instructions = ctypes.create_string_buffer(DROP_ALL_PROGRAM)
    program = struct.pack("HP", 1, ctypes.addressof(instructions))
    try:
        listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)
    except OSError as error:
        logger.warning("could not stop new connections", extra={"fields": {"error": str(error)}})
        return False
    return True


def has_queued_connections(listener: socket.socket) -> bool:
    """True while the kernel holds connections for ``listener`` that nobody accepted yet."""
    readable, _, _ = select.select([listener], [], [], 0)
    return bool(readable)


def bind_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on host:port that worker processes can inherit.

    ``reuse_port`` (SO_REUSEPORT): several listeners share the port and the kernel spreads new
    connections over them (local mode's blue/green takeover steers them, see local.routing).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        listener.bind((host, port))
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def inherited_listener(fd: int) -> socket.socket:
    """The listening socket a host handed down as file descriptor ``fd`` (OSError if not one)."""
    listener = socket.socket(fileno=fd)
    if not listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        listener.detach()
        raise OSError(f"file descriptor {fd} is not a listening socket")
    listener.set_inheritable(True)
    return listener


class DrainingServer(Server):
    """A uvicorn worker that enforces :class:`ConnectionLimits` and drains without losses."""

    def __init__(self, config: Config, limits: ConnectionLimits) -> None:
        super().__init__(config)
        self.server_state: WorkerState = WorkerState(limits)
        self.limits = limits
        self._listeners: list[socket.socket] = []
        self._sweep_handle: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT start the drain; unlike uvicorn's, the signal is not re-raised.

        uvicorn raises the signal again after draining, so a cleanly stopped worker would exit
        143; a drained worker exits 0.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start like uvicorn (lifespan, listening), then run the deadline sweep."""
        self._listeners = list(sockets or [])
        await super().startup(sockets=sockets)
        if self.started:
            self._sweep()

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection in list(self.server_state.connections):
            if isinstance(connection, LimitedHttpToolsProtocol):
                connection.check_deadlines(now)
        self._sweep_handle = loop.call_later(SWEEP_SECONDS, self._sweep)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain: no new connections, the queued ones accepted, every received request answered."""
        logger.info("draining", extra={"fields": {"pid": os.getpid(),
                    "connections": len(self.server_state.connections)}})  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.drain_seconds
        for listener in self._listeners:
            stop_new_connections(listener)
        self.server_state.draining = True
        for connection in list(self.server_state.connections):
            if isinstance(connection, LimitedHttpToolsProtocol):
                connection.drain()
        # Connections the kernel queued are connected clients: let the loop accept them.
        while (
            any(has_queued_connections(listener) for listener in self._listeners)
            and loop.time() < deadline
        ):
            await asyncio.sleep(0.005)
        for server in self.servers:
            server.close()
        state = self.server_state
        while (state.connections or state.tasks) and loop.time() < deadline:
            if self.force_exit:
                break
            await asyncio.sleep(0.01)
        if state.connections or state.tasks:
            logger.error(
                "drain time over: closing what is left",
                extra={"fields": {"connections": len(state.connections),
                                  "tasks": len(state.tasks)}},
            )  # fmt: skip
            for task in state.tasks:
                task.cancel(msg="drain time over")
            for connection in list(state.connections):
                connection.transport.close()
            await asyncio.sleep(0)
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()


def serve_worker(config: Config, limits: ConnectionLimits, listener: socket.socket) -> int:
    """Run one worker on ``listener`` until it is stopped; its exit code (3: did not start)."""
    server = DrainingServer(config, limits)
    try:
        server.run(sockets=[listener])
    except SystemExit as stop:
        # uvicorn exits 3 when the app's start-up (the model loading) fails.
        return stop.code if isinstance(stop.code, int) else STARTUP_FAILURE
    return 0 if server.started else STARTUP_FAILURE
