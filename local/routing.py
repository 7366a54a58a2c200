"""Blue/green routing of the local endpoint: the canary share, the fault drill, port steering.

During an update the old fleet's workers forward a share of their requests to the new fleet
(:class:`LocalRouter`, through the server's observer seam); the share comes from a routing
table, a tiny memory-mapped file the hosting service writes and every worker reads per request
(no system call). At the takeover the public port's listeners form an SO_REUSEPORT group and
:func:`steer` sends every new connection to the newest one, so the steady state has no hop.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import mmap
import random
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from inference.observer import Reply
from inference.protocol import error_body
from processing.contracts import JSON_CONTENT_TYPE

# port of the new fleet, percent of requests forwarded to it (0: none)
ROUTE = struct.Struct("<HH")
# Linux's SO_ATTACH_REUSEPORT_CBPF (asm-generic/socket.h): a classic BPF program that returns
# the index of the reuseport group's socket that takes a new connection. An index beyond the
# group falls back to the kernel's hash.
SO_ATTACH_REUSEPORT_CBPF = 51
FORWARDED_HEADERS = (b"content-type", b"accept", b"x-amzn-sagemaker-inference-id")
FORWARD_TIMEOUT_SECONDS = 30.0
# A fleet that stops drops new handshakes while it drains: give up soon, answer locally.
CONNECT_TIMEOUT_SECONDS = 2.0

logger = logging.getLogger("freight.local")


class RoutingTable:
    """Where (port) and how much (percent) of a fleet's traffic goes to another fleet."""

    def __init__(self, path: Path, *, writable: bool = False) -> None:
        self.path = path
        if writable and not path.exists():
            path.write_bytes(ROUTE.pack(0, 0))
        with path.open("r+b" if writable else "rb") as file:
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            self._map = mmap.mmap(file.fileno(), ROUTE.size, access=access)

    def set(self, port: int, percent: int) -> None:
        """Forward ``percent`` (0-100) of requests to ``port`` (percent 0: no forwarding)."""
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be 0-100, got {percent}")
        ROUTE.pack_into(self._map, 0, port, percent)

    def read(self) -> tuple[int, int]:
        """(port, percent)."""
        port, percent = ROUTE.unpack_from(self._map, 0)
        return port, percent

    def close(self) -> None:
        """Unmap the file."""
        self._map.close()


def steer(listener: socket.socket, index: int) -> None:
    """Send the new connections of ``listener``'s SO_REUSEPORT group to its ``index``-th member.

    Members are numbered in the order they started listening; when one closes, the last takes
    its number. Linux only; raises OSError elsewhere.
    """
    instruction = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, index))
    program = struct.pack("HP", 1, ctypes.addressof(instruction))
    listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, program)


class Forwarder:
    """HTTP/1.1 keep-alive connections from a worker to another fleet, one pool per port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._idle: dict[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def forward(self, port: int, headers: Mapping[bytes, bytes], body: bytes) -> Reply | None:
        """The other fleet's answer, or None when it cannot be reached (the caller answers)."""
        pool = self._idle.setdefault(port, [])
        lines = [b"POST /invocations HTTP/1.1", b"host: " + self.host.encode()]
        lines += [name + b": " + headers[name] for name in FORWARDED_HEADERS if name in headers]
        lines.append(b"content-length: %d" % len(body))
        request = b"\r\n".join(lines) + b"\r\n\r\n" + body
        connection = pool.pop() if pool else None
        try:
            if connection is None:
                connection = await asyncio.wait_for(
                    asyncio.open_connection(self.host, port), CONNECT_TIMEOUT_SECONDS
                )
            reader, writer = connection
            writer.write(request)
            status, response_headers, payload = await asyncio.wait_for(
                _read_response(reader), FORWARD_TIMEOUT_SECONDS
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
            # A fleet that drains closes idle connections: serve this request here instead.
            if connection is not None:
                connection[1].close()
            logger.debug("forward failed", extra={"fields": {"port": port, "error": str(error)}})
            return None
        if response_headers.get(b"connection") == b"close":
            writer.close()
        else:
            pool.append((reader, writer))
        content_type = response_headers.get(b"content-type", JSON_CONTENT_TYPE.encode())
        return Reply(status, payload, content_type.decode("latin-1"), remote=True)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get(b"content-length")
    if length is None:
        raise ValueError("response without content-length")
    return status, headers, await reader.readexactly(int(length))


async def _fault(reply: Reply) -> Reply:
    return reply


FAULT_REPLY = Reply(
    500, error_body("fault_drill", "the local fault drill failed this request"), JSON_CONTENT_TYPE
)


class LocalRouter:
    """Decides per request: the fault drill (this fleet fails), forward (canary), or the model."""

    def __init__(
        self,
        table: RoutingTable | None,
        fault_percent: float = 0.0,
        chance: Callable[[], float] = random.random,
        forwarder: Forwarder | None = None,
    ) -> None:
        if not 0 <= fault_percent <= 100:
            raise ValueError(f"fault_percent must be 0-100, got {fault_percent}")
        self.table = table
        self.fault_percent = fault_percent
        self._chance = chance
        self._forwarder = forwarder or Forwarder()

    def intercept(
        self, headers: Mapping[bytes, bytes], body: bytes
    ) -> Awaitable[Reply | None] | None:
        """See inference.observer.InvocationObserver.intercept."""
        if self.fault_percent and self._chance() * 100 < self.fault_percent:
            return _fault(FAULT_REPLY)
        if self.table is not None:
            port, percent = self.table.read()
            if percent and (percent >= 100 or self._chance() * 100 < percent):
                return self._forwarder.forward(port, headers, body)
        return None
