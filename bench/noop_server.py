"""No-op ASGI apps on the same stack as our server (uvicorn, uvloop, httptools): the floors.

``app`` reads the body and answers a fixed small JSON body. ``busy_poll_app`` does the same and
then busy-polls like our server does by default (inference.busy_poll, window from
``FREIGHT_BUSY_POLL_US``), so that the floor can be taken with and without busy polling.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from inference.busy_poll import DEFAULT_WINDOW_US, BusyPoll

BODY = b'{"predictions":[{"price_eur":0.0}]}'
Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_busy_poll = BusyPoll(int(os.environ.get("FREIGHT_BUSY_POLL_US", DEFAULT_WINDOW_US)))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the request body, answer 200 with a fixed small JSON body."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


async def busy_poll_app(scope: Scope, receive: Receive, send: Send) -> None:
    """:func:`app`, then busy polling for the next request as our server does."""
    await app(scope, receive, send)
    if scope["type"] == "http":
        _busy_poll.touch()
