"""The price-quote server: SageMaker's hosting contract over a plain ASGI app on uvicorn.

Routes: ``GET /ping`` (200 once the model is loaded, else 503), ``POST /invocations`` (the
container contract), and ``POST /endpoints/{name}/invocations``, the SageMaker Runtime API
path, so that ``boto3.client("sagemaker-runtime", endpoint_url=...).invoke_endpoint`` works
against a local server unchanged. On that path errors are wrapped the way SageMaker wraps a
container's errors (HTTP 424 ``ModelError`` with the original status and message).

Each worker process loads the model once at start-up and scores on its event loop (one
worker per core); after each invocation it busy-polls for ``busy_poll_us`` (default 1 ms)
instead of letting its CPU idle (inference.busy_poll). Limits on headers and bodies, read
timeouts, the connection bound per worker and the drain on SIGTERM live one layer down, in
inference.protocol (docs/adr/0004-serving-stack.md, "Limits, timeouts and shutdown").

An optional invocation observer (inference.observer; local mode's data capture, metrics and
canary routing) sees every invocation; unset, as in production, it costs one ``if``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from uvicorn import Config

from inference.body import read_body
from inference.busy_poll import BusyPoll
from inference.errors import RequestError
from inference.hooks import input_fn, model_fn, output_fn, predict_fn
from inference.logs import configure_logging
from inference.observer import Invocation, InvocationObserver, ObserverError, load_observer
from inference.protocol import (
    CONNECTION_CLOSE,
    STARTUP_FAILURE,
    LimitedHttpToolsProtocol,
    bind_listener,
    error_body,
    inherited_listener,
    serve_worker,
)
from inference.settings import ServerSettings, SettingsError
from inference.supervisor import supervise
from processing.contracts import JSON_CONTENT_TYPE
from processing.model import PriceModel

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# A worker process of a multi-worker server gets the listening socket's descriptor.
WORKER_FD_FLAG = "--worker-fd"
INFERENCE_ID_HEADER = b"x-amzn-sagemaker-inference-id"
REQUEST_ID_HEADER = b"x-request-id"
RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
PRODUCTION_VARIANT = "AllTraffic"

logger = logging.getLogger("freight.inference")


def _headers(scope: Scope) -> dict[bytes, bytes]:
    # ASGI servers give lower-case names; a repeated header keeps its last value.
    return dict(scope["headers"])


def _text(headers: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


class PricingApp:
    """The ASGI application; ``model`` (and ``observer``) may be given (tests) or are loaded."""

    def __init__(
        self,
        settings: ServerSettings,
        model: PriceModel | None = None,
        observer: InvocationObserver | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.observer = observer
        self.busy_poll = BusyPoll(settings.effective_busy_poll_us)
        # Request ids: unique per worker process and cheap (no system call, unlike uuid4).
        self._id_prefix = f"{os.getpid():x}-"
        self._request_counter = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: HTTP requests and the lifespan (model loading) protocol."""
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.model is None:
                        self.model = await asyncio.to_thread(self._load)
                    spec = self.settings.invocation_observer
                    if spec and self.observer is None:
                        self.observer = await asyncio.to_thread(
                            load_observer, spec, self.settings, self.model
                        )
                except Exception as error:
                    logger.exception("model failed to load", extra={"fields": {
                        "model_dir": str(self.settings.model_dir)}})  # fmt: skip
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                logger.info("worker shutting down", extra={"fields": {"pid": os.getpid()}})
                if self.observer is not None:
                    # After the drain: every answered invocation has been observed.
                    await asyncio.to_thread(self.observer.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _load(self) -> PriceModel:
        started = time.perf_counter()
        model = model_fn(self.settings.model_dir)
        model.warm_up()
        # Everything allocated so far lives as long as the worker: keep the collector from
        # walking it again and again between requests.
        gc.collect()
        gc.freeze()
        logger.info(
            "model loaded",
            extra={"fields": {"model_version": model.version, "pid": os.getpid(),
                              "onnx": model.onnx_session is not None,
                              "seconds": round(time.perf_counter() - started, 3)}},
        )  # fmt: skip
        return model

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter_ns()
        method, path = scope["method"], scope["path"]
        headers = _headers(scope)
        request_id = (
            _text(headers, INFERENCE_ID_HEADER)
            or _text(headers, REQUEST_ID_HEADER)
            or f"{self._id_prefix}{next(self._request_counter):x}"
        )
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                await _respond(send, 405, error_body("method_not_allowed", "use GET"))
            elif self.model is None:
                await _respond(send, 503, b'{"status":"loading"}')
            else:
                body = orjson.dumps({"status": "ok", "model_version": self.model.version})
                await _respond(send, 200, body)
            return
        runtime = RUNTIME_PATH.match(path)
        if path != "/invocations" and runtime is None:
            await _respond(send, 404, error_body("not_found", f"no route {path}"))
            return
        if method != "POST":
            await _respond(send, 405, error_body("method_not_allowed", "use POST"))
            return
        if runtime is not None and self.settings.endpoint_name not in (None, runtime.group(1)):
            await _respond(
                send, 400,
                orjson.dumps({"message": f"Endpoint {runtime.group(1)} not found."}),
                [(b"x-amzn-errortype", b"ValidationError")],
            )  # fmt: skip
            return
        observer = self.observer
        invoked = time.perf_counter_ns() if observer is not None else 0
        status, body, content_type, request_body, remote = await self._invoke(
            headers, receive, request_id
        )
        answered = time.perf_counter_ns() if observer is not None else 0
        response_headers = [(b"x-request-id", request_id.encode())]
        if status == 413:
            # What is left of an oversized body is not read: the connection cannot go on.
            response_headers.append(CONNECTION_CLOSE)
        sent_status, sent_body, sent_type = status, body, content_type
        if runtime is not None:
            sent_status, sent_body, sent_type, extra = _as_runtime_response(
                status, body, content_type
            )
            response_headers += extra
        await _respond(send, sent_status, sent_body, response_headers, sent_type)
        if observer is not None and not remote:
            observer.observe(
                Invocation(
                    request_body, _text(headers, b"content-type"), _text(headers, b"accept"),
                    body, content_type, status, _text(headers, INFERENCE_ID_HEADER),
                    started, time.perf_counter_ns(), answered - invoked,
                )
            )  # fmt: skip
        # Poll for the next request instead of letting the CPU idle (see inference.busy_poll).
        self.busy_poll.touch()
        if self.settings.access_log or status >= 400:
            elapsed_ms = (time.perf_counter_ns() - started) / 1e6
            fields = {"request_id": request_id, "path": path, "status": status,
                      "latency_ms": round(elapsed_ms, 3)}  # fmt: skip
            if status >= 400:
                fields["error"] = body[:300].decode(errors="replace")
            logger.info("request", extra={"fields": fields})

    async def _invoke(
        self, headers: Mapping[bytes, bytes], receive: Receive, request_id: str
    ) -> tuple[int, bytes, str, bytes, bool]:
        """(status, body, content type, the request body, answered remotely by the observer)."""
        model = self.model
        if model is None:
            return (
                503,
                error_body("loading", "the model is still loading"),
                JSON_CONTENT_TYPE,
                b"",
                False,
            )
        body = b""
        try:
            body = await read_body(headers, receive, self.settings.max_body_bytes)
            if self.observer is not None:
                pending = self.observer.intercept(headers, body)
                reply = None if pending is None else await pending
                if reply is not None:
                    return reply.status, reply.body, reply.content_type, body, reply.remote
            request = input_fn(body, _text(headers, b"content-type"))
            prediction = predict_fn(request, model)
            payload, content_type = output_fn(prediction, _text(headers, b"accept"))
        except RequestError as error:
            return error.status, orjson.dumps(error.to_json()), JSON_CONTENT_TYPE, body, False
        except Exception:
            logger.exception("prediction failed", extra={"fields": {"request_id": request_id}})
            return (
                500,
                error_body("internal_error", f"internal error; request id {request_id}"),
                JSON_CONTENT_TYPE,
                body,
                False,
            )
        return 200, payload, content_type, body, False


def _as_runtime_response(
    status: int, body: bytes, content_type: str
) -> tuple[int, bytes, str, list[tuple[bytes, bytes]]]:
    """Reshape a container response the way the SageMaker Runtime API returns it."""
    if status < 400:
        return (
            status,
            body,
            content_type,
            [(b"x-amzn-invoked-production-variant", PRODUCTION_VARIANT.encode())],
        )
    kind = "client" if status < 500 else "server"
    text = body.decode(errors="replace")
    wrapped = {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
        "OriginalStatusCode": status,
        "OriginalMessage": text,
        "message": f'Received {kind} error ({status}) from primary with message "{text}".',
    }
    return 424, orjson.dumps(wrapped), JSON_CONTENT_TYPE, [(b"x-amzn-errortype", b"ModelError")]


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    content_type: str = JSON_CONTENT_TYPE,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def app_from_environment() -> PricingApp:
    """ASGI factory for uvicorn's worker processes: settings from the environment."""
    configure_logging()
    return PricingApp(ServerSettings.from_environment(os.environ))


def uvicorn_config(settings: ServerSettings) -> Config:
    """The uvicorn configuration of one worker: our app factory, uvloop, our HTTP protocol."""
    return Config(
        app_from_environment,
        factory=True,
        loop="uvloop",
        http=LimitedHttpToolsProtocol,
        ws="none",
        lifespan="on",
        access_log=False,
        server_header=False,
        date_header=False,
        timeout_keep_alive=settings.timeout_seconds,
        # uvicorn answers 503 (and closes) to requests on connections beyond the bound.
        limit_concurrency=settings.max_connections + 1,
        log_level="warning",
        proxy_headers=False,  # SageMaker's front end talks to the container directly
    )


def run(settings: ServerSettings) -> None:
    """Serve until SIGTERM/SIGINT, with ``settings.workers`` processes sharing the port.

    Returns after a clean drain; raises SystemExit with a non-zero code when the server could
    not start (3: the port or the model) or a worker failed, whatever the worker count.
    """
    if not settings.model_dir.exists():
        raise SettingsError(f"model directory {settings.model_dir} does not exist")
    configure_logging()
    logger.info("starting", extra={"fields": {k: str(v) for k, v in asdict(settings).items()}})
    if settings.effective_busy_poll_us != settings.busy_poll_us:
        logger.warning(
            "busy polling off: more workers than cores",
            extra={"fields": {"workers": settings.workers, "cores": os.cpu_count()}},
        )
    # Worker processes rebuild the settings from these variables.
    os.environ.update(settings.to_environment())
    try:
        listener = (
            bind_listener(settings.host, settings.port)
            if settings.listen_fd is None
            else inherited_listener(settings.listen_fd)
        )
    except OSError as error:
        logger.error("cannot listen", extra={"fields": {"port": settings.port,
                                                        "error": str(error)}})  # fmt: skip
        raise SystemExit(STARTUP_FAILURE) from None
    if settings.workers == 1:
        code = serve_worker(uvicorn_config(settings), settings.connection_limits, listener)
    else:
        environment = {**os.environ, "PYTHONPATH": _python_path()}
        command = [sys.executable, "-m", "inference.server", WORKER_FD_FLAG,
                   str(listener.fileno())]  # fmt: skip
        code = supervise(command, environment, listener, settings.workers, settings.drain_seconds)
    logger.info("stopped", extra={"fields": {"exit_code": code}})
    if code:
        raise SystemExit(code)


def _python_path() -> str:
    # Workers import this package from where the supervisor did, whatever their directory.
    package_root = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH")
    return f"{package_root}{os.pathsep}{existing}" if existing else package_root


def _worker(listen_fd: int) -> int:
    """One worker process of :func:`run`: settings from the environment, the inherited socket."""
    settings = ServerSettings.from_environment(os.environ)
    configure_logging()
    listener = socket.socket(fileno=listen_fd)
    return serve_worker(uvicorn_config(settings), settings.connection_limits, listener)


def console_main(argv: Sequence[str] | None = None) -> None:
    """The container's ``serve`` command: SageMaker runs ``docker run IMAGE serve``."""
    parser = argparse.ArgumentParser(prog="serve", description="SageMaker's model server.")
    parser.add_argument(WORKER_FD_FLAG, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.worker_fd is not None:
            sys.exit(_worker(args.worker_fd))
        settings = ServerSettings.from_environment(os.environ)
        run(settings)
    except (SettingsError, ObserverError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    console_main()
