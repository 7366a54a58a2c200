"""The invocation observer: an optional seam through which a host watches and routes invocations.

SageMaker captures data and publishes the endpoint's metrics itself, so in production no
observer is configured and the server pays one ``if`` per request. Local mode has no SageMaker
in front of the server: its observer (``local.capture``) writes the data capture and the
CloudWatch metrics, and during a blue/green update it forwards a canary share of requests to
the new fleet. The server knows nothing of that; it only calls the observer.

The observer is named by ``FREIGHT_INVOCATION_OBSERVER="package.module:factory"``; every
worker process calls ``factory(settings, model)`` once, after its model loaded, and
``close()`` when it stops (after the drain: nothing is observed later).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from inference.settings import ServerSettings
    from processing.model import PriceModel

# "package.module:factory"
OBSERVER_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class Reply(NamedTuple):
    """An answer the observer gave instead of the model.

    ``remote``: another server answered (it was forwarded there) and observes it itself, so
    this server does not report it to :meth:`InvocationObserver.observe`.
    """

    status: int
    body: bytes
    content_type: str
    remote: bool = False


@dataclass(frozen=True, slots=True)
class Invocation:
    """One answered invocation, as the server saw it (the container's response, unwrapped).

    Times are ``time.perf_counter_ns()`` values: ``started_ns`` when the request's headers
    were in, ``finished_ns`` after the response was sent; ``model_ns`` is the time spent
    reading the body and scoring it (SageMaker's ModelLatency; the rest is overhead).
    """

    request_body: bytes
    content_type: str | None
    accept: str | None
    response_body: bytes
    response_content_type: str
    status: int
    inference_id: str | None
    started_ns: int
    finished_ns: int
    model_ns: int


class InvocationObserver(Protocol):
    """What the server calls; implementations must be cheap on the event loop."""

    def intercept(
        self, headers: Mapping[bytes, bytes], body: bytes
    ) -> Awaitable[Reply | None] | None:
        """None to let the model answer, or an awaitable Reply (None when awaited: the model)."""

    def observe(self, invocation: Invocation) -> None:
        """Called after each invocation this server answered (never raises into the server)."""

    def close(self) -> None:
        """The worker stops: flush what is buffered."""


ObserverFactory = Callable[["ServerSettings", "PriceModel"], InvocationObserver]


class ObserverError(ValueError):
    """The configured observer cannot be loaded; the message names the setting."""


def load_observer(spec: str, settings: ServerSettings, model: PriceModel) -> InvocationObserver:
    """Import ``module:factory`` and call the factory once (per worker process)."""
    if not OBSERVER_SPEC.fullmatch(spec):
        raise ObserverError(f"invocation observer must be 'module:factory', got {spec!r}")
    module_name, attribute = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ObserverError(f"invocation observer: cannot import {module_name}: {error}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ObserverError(f"invocation observer: {module_name} has no callable {attribute}")
    observer: InvocationObserver = factory(settings, model)
    return observer
