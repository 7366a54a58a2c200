"""The invocation observer seam: what the server reports, intercepted replies, loading."""

from __future__ import annotations

import asyncio
import socket
import sys
import types
from collections.abc import Awaitable, Mapping
from pathlib import Path

import pytest

from inference.observer import Invocation, ObserverError, Reply, load_observer
from inference.protocol import bind_listener, inherited_listener
from inference.server import Message, PricingApp
from inference.settings import (
    ENV_INVOCATION_OBSERVER,
    ENV_LISTEN_FD,
    ServerSettings,
    SettingsError,
)
from processing.model import PriceModel
from tests.inference.test_parsing import VALID_LOAD, json_body
from tests.inference.test_server import RUNTIME_INVOCATIONS, post


class Recorder:
    """An observer that records, and answers instead of the model when told to."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply
        self.seen: list[Invocation] = []
        self.closed = False

    def intercept(
        self, headers: Mapping[bytes, bytes], body: bytes
    ) -> Awaitable[Reply | None] | None:
        if self.reply is None:
            return None

        async def answer() -> Reply | None:
            return self.reply

        return answer()

    def observe(self, invocation: Invocation) -> None:
        self.seen.append(invocation)

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def model(model_dir: Path) -> PriceModel:
    return PriceModel.load(model_dir, threads=1)


def test_every_invocation_is_reported_with_its_request_and_response(
    model_dir: Path, model: PriceModel
) -> None:
    recorder = Recorder()
    app = PricingApp(ServerSettings(model_dir=model_dir), model=model, observer=recorder)
    body = json_body(VALID_LOAD)
    ok = post(app, body, extra_headers=[("x-amzn-sagemaker-inference-id", "q-1")])
    bad = post(app, b'{"nope": 1}', path=RUNTIME_INVOCATIONS)
    assert (ok.status, bad.status) == (200, 424)
    first, second = recorder.seen
    assert first.request_body == body
    assert (first.content_type, first.status, first.inference_id) == (
        "application/json",
        200,
        "q-1",
    )
    assert first.response_body == ok.body
    assert first.response_content_type == "application/json"
    assert 0 < first.model_ns <= first.finished_ns - first.started_ns
    # The container's own status, not the runtime API's wrapping.
    assert (second.status, second.inference_id) == (400, None)


def test_an_intercepted_reply_is_sent_and_a_remote_one_not_reported(
    model_dir: Path, model: PriceModel
) -> None:
    local = Recorder(Reply(500, b'{"error": "drill"}', "application/json"))
    app = PricingApp(ServerSettings(model_dir=model_dir), model=model, observer=local)
    response = post(app, json_body(VALID_LOAD))
    assert (response.status, response.body) == (500, b'{"error": "drill"}')
    assert [seen.status for seen in local.seen] == [500]
    remote = Recorder(Reply(200, b'{"predictions": []}', "application/json", remote=True))
    app = PricingApp(ServerSettings(model_dir=model_dir), model=model, observer=remote)
    assert post(app, json_body(VALID_LOAD)).body == b'{"predictions": []}'
    assert remote.seen == []


def _lifespan(app: PricingApp) -> list[str]:
    messages: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(str(message["type"]))

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    return sent


def test_the_factory_runs_once_after_the_model_and_close_at_shutdown(
    model_dir: Path, model: PriceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[ServerSettings, PriceModel]] = []
    recorder = Recorder()

    def factory(settings: ServerSettings, loaded: PriceModel) -> Recorder:
        made.append((settings, loaded))
        return recorder

    module = types.ModuleType("observer_under_test")
    module.factory = factory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "observer_under_test", module)
    settings = ServerSettings(
        model_dir=model_dir, invocation_observer="observer_under_test:factory"
    )
    app = PricingApp(settings, model=model)
    assert _lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert made == [(settings, model)]
    assert recorder.closed


def test_a_bad_observer_is_named() -> None:
    settings = ServerSettings()
    with pytest.raises(ObserverError, match="cannot import no_such_module"):
        load_observer("no_such_module:factory", settings, None)  # type: ignore[arg-type]
    with pytest.raises(ObserverError, match="no callable missing"):
        load_observer("inference.observer:missing", settings, None)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match=ENV_INVOCATION_OBSERVER):
        ServerSettings.from_environment({ENV_INVOCATION_OBSERVER: "not a spec"})


def test_the_host_seams_round_trip_through_the_environment() -> None:
    settings = ServerSettings(invocation_observer="local.capture:observer_factory", listen_fd=7)
    assert ServerSettings.from_environment(settings.to_environment()) == settings
    assert ServerSettings.from_environment({}).invocation_observer is None
    assert ServerSettings.from_environment({}).listen_fd is None
    with pytest.raises(SettingsError, match=ENV_LISTEN_FD):
        ServerSettings.from_environment({ENV_LISTEN_FD: "x"})


def test_an_inherited_socket_must_be_listening() -> None:
    listener = bind_listener("127.0.0.1", 0, reuse_port=True)
    try:
        inherited = inherited_listener(listener.fileno())
        assert inherited.getsockname() == listener.getsockname()
        inherited.detach()
    finally:
        listener.close()
    with socket.socket() as idle, pytest.raises(OSError, match="not a listening socket"):
        inherited_listener(idle.fileno())
