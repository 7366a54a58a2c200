"""Reading a request body under the size limit (413 beyond), discarding what is too much."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from inference.errors import RequestError
from inference.settings import DISCARD_FACTOR, MIN_DISCARD_BYTES

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]


def _text(headers: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


def discard_limit(limit: int) -> int:
    """How much of an oversized body is read and thrown away before the 413 is sent."""
    return max(DISCARD_FACTOR * limit, MIN_DISCARD_BYTES)


async def read_body(headers: Mapping[bytes, bytes], receive: Receive, limit: int) -> bytes:
    """The whole body, or RequestError 413 (the rest read and dropped, within a bound)."""
    declared = _text(headers, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        # A client waiting for 100 Continue has not sent the body: answer at once.
        if _text(headers, b"expect") != "100-continue" and int(declared) <= discard_limit(limit):
            await _discard(receive, discard_limit(limit))
        raise RequestError(
            413, "payload_too_large",
            f"the body has {int(declared)} bytes; the limit is {limit}", "Content-Length",
        )  # fmt: skip
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError(400, "client_disconnected", "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        more = message.get("more_body", False)
        if size > limit:
            if more:
                await _discard(receive, discard_limit(limit) - size)
            raise RequestError(
                413, "payload_too_large", f"the body exceeds the limit of {limit} bytes"
            )
        chunks.append(chunk)
        if not more:
            return b"".join(chunks)


async def _discard(receive: Receive, budget: int) -> None:
    """Read the rest of a body into nothing, until it ends or ``budget`` bytes were read."""
    while budget >= 0:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))
