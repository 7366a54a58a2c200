"""Tests of the ASGI price server in-process, its settings, and one run of ``freight serve``."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import inference.server
from inference.busy_poll import DEFAULT_WINDOW_US
from inference.client import PriceQuoteClient, QuoteRejectedError
from inference.hooks import input_fn
from inference.parsing import JSON
from inference.server import Message, PricingApp
from inference.settings import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    ENV_BUSY_POLL_US,
    ENV_ENDPOINT_NAME,
    ENV_MAX_BODY_BYTES,
    ENV_WORKERS,
    ServerSettings,
    SettingsError,
)
from processing.model import PriceModel
from processing.sagemaker_paths import ENV_BIND_TO_PORT, ML_BASE, MODEL
from tests.inference.test_parsing import (
    BAD_REQUESTS,
    VALID_LOAD,
    BadRequest,
    csv_body,
    json_body,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
JSON_HEADERS = (("content-type", "application/json"),)
RUNTIME_INVOCATIONS = "/endpoints/prices/invocations"
SERVER_START_SECONDS = 60.0
SERVER_STOP_SECONDS = 30.0
REGION = "eu-central-1"
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@dataclass(frozen=True)
class Response:
    """What an ASGI app sent back for one request."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def call(
    app: PricingApp,
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    chunks: Sequence[bytes] = (b"",),
    complete: bool = True,
) -> Response:
    """Send one HTTP request through the ASGI interface; the body arrives in ``chunks``.

    With ``complete=False`` the last chunk announces more body, and the client then leaves.
    """
    messages: list[Message] = [
        {
            "type": "http.request",
            "body": chunk,
            "more_body": index < len(chunks) - 1 or not complete,
        }
        for index, chunk in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
    }
    asyncio.run(app(scope, receive, send))
    start, body = sent[0], sent[1]
    assert start["type"] == "http.response.start"
    assert body["type"] == "http.response.body"
    assert len(sent) == 2
    response_headers = {name.decode(): value.decode() for name, value in start["headers"]}
    assert int(response_headers["content-length"]) == len(body["body"])
    return Response(status=start["status"], headers=response_headers, body=body["body"])


def post(
    app: PricingApp,
    body: bytes,
    content_type: str = "application/json",
    *,
    path: str = "/invocations",
    extra_headers: Sequence[tuple[str, str]] = (),
) -> Response:
    headers = [("content-type", content_type), ("content-length", str(len(body)))]
    return call(app, "POST", path, headers=[*headers, *extra_headers], chunks=[body])


def lifespan(app: PricingApp) -> list[str]:
    """Run the lifespan protocol (startup, then shutdown); the types of the messages sent."""
    incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(str(message["type"]))

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    return sent


@pytest.fixture(scope="module")
def model(model_dir: Path) -> PriceModel:
    return PriceModel.load(model_dir, threads=1)


@pytest.fixture
def app(model_dir: Path, model: PriceModel) -> PricingApp:
    return PricingApp(ServerSettings(model_dir=model_dir), model=model)


def error_of(response: Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert error["code"]
    assert error["message"]
    return error


# -- routes -------------------------------------------------------------------------------------


def test_ping_answers_with_the_model_version(app: PricingApp, model: PriceModel) -> None:
    response = call(app, "GET", "/ping")
    assert response.status == 200
    assert response.json() == {"status": "ok", "model_version": model.version}
    assert call(app, "HEAD", "/ping").status == 200


def test_ping_is_503_until_the_model_is_loaded(model_dir: Path) -> None:
    app = PricingApp(ServerSettings(model_dir=model_dir))
    assert call(app, "GET", "/ping").status == 503
    response = post(app, json_body(VALID_LOAD))
    assert response.status == 503
    assert error_of(response)["code"] == "loading"


def test_invocations_json(app: PricingApp, model: PriceModel) -> None:
    body = json_body([{**VALID_LOAD, "load_id": "L-1"}, VALID_LOAD])
    response = post(app, body)
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["model_version"] == model.version
    first, second = document["predictions"]
    assert first["load_id"] == "L-1"
    assert "load_id" not in second
    assert first["price_eur"] == second["price_eur"] > 0
    assert first["price_low_eur"] <= first["price_eur"] <= first["price_high_eur"]
    expected = model.predict_records(input_fn(json_body(VALID_LOAD), JSON).loads)[0]
    assert first["price_eur"] == pytest.approx(expected, abs=0.005)


def test_invocations_csv_in_and_out(app: PricingApp) -> None:
    json_response = post(app, json_body(VALID_LOAD))
    response = post(
        app,
        csv_body(VALID_LOAD, VALID_LOAD),
        "text/csv; charset=utf-8",
        extra_headers=[("accept", "text/csv")],
    )
    assert response.status == 200
    assert response.headers["content-type"] == "text/csv"
    rows = response.body.decode().splitlines()
    prediction = json_response.json()["predictions"][0]
    expected = [prediction["price_eur"], prediction["price_low_eur"], prediction["price_high_eur"]]
    assert [[float(value) for value in row.split(",")] for row in rows] == [expected, expected]


def test_csv_request_with_json_response(app: PricingApp) -> None:
    response = post(
        app, csv_body(VALID_LOAD), "text/csv", extra_headers=[("accept", "application/json")]
    )
    assert response.status == 200
    assert len(response.json()["predictions"]) == 1


def test_unsupported_accept_is_406(app: PricingApp) -> None:
    response = post(app, json_body(VALID_LOAD), extra_headers=[("accept", "application/xml")])
    assert response.status == 406
    assert error_of(response) == {
        "code": "unsupported_accept",
        "message": "Accept 'application/xml' is not supported; use application/json or text/csv",
        "field": "Accept",
    }


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[case.name for case in BAD_REQUESTS])
def test_bad_request_is_a_4xx_with_an_error_body(app: PricingApp, case: BadRequest) -> None:
    response = post(app, case.body, case.content_type)
    assert 400 <= response.status < 500
    assert response.status == case.status
    error = error_of(response)
    assert error["code"] == case.code
    assert error.get("field") == case.field
    assert case.message_contains in error["message"]
    assert response.headers["x-request-id"]


def test_request_without_content_type_is_415(app: PricingApp) -> None:
    response = call(app, "POST", "/invocations", chunks=[json_body(VALID_LOAD)])
    assert response.status == 415
    assert error_of(response)["field"] == "Content-Type"


def test_body_over_the_limit_by_content_length(model_dir: Path, model: PriceModel) -> None:
    app = PricingApp(ServerSettings(model_dir=model_dir, max_body_bytes=2_000), model=model)
    headers = [("content-type", "application/json"), ("content-length", "5000")]
    response = call(app, "POST", "/invocations", headers=headers, chunks=[b"[" * 10])
    assert response.status == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert error["field"] == "Content-Length"
    assert "5000" in error["message"]


def test_chunked_body_over_the_limit(model_dir: Path, model: PriceModel) -> None:
    app = PricingApp(ServerSettings(model_dir=model_dir, max_body_bytes=2_000), model=model)
    chunks = [b" " * 600] * 4
    response = call(app, "POST", "/invocations", headers=JSON_HEADERS, chunks=chunks)
    assert response.status == 413
    assert error_of(response)["code"] == "payload_too_large"
    # Under the limit, the same chunked way works.
    small = json_body(VALID_LOAD)
    parts = [small[:100], small[100:200], small[200:]]
    assert call(app, "POST", "/invocations", headers=JSON_HEADERS, chunks=parts).status == 200


def test_client_that_disconnects_gets_a_400(app: PricingApp) -> None:
    response = call(
        app, "POST", "/invocations", headers=JSON_HEADERS, chunks=[b"["], complete=False
    )
    assert response.status == 400
    assert error_of(response)["code"] == "client_disconnected"


def test_unknown_path_is_404(app: PricingApp) -> None:
    response = call(app, "GET", "/predict")
    assert response.status == 404
    assert error_of(response)["code"] == "not_found"
    assert call(app, "POST", "/endpoints/prices/invocations/extra").status == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/invocations"), ("PUT", RUNTIME_INVOCATIONS), ("POST", "/ping")],
)
def test_wrong_method_is_405(app: PricingApp, method: str, path: str) -> None:
    response = call(app, method, path)
    assert response.status == 405
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize(("window_us", "active"), [(DEFAULT_WINDOW_US, True), (0, False)])
def test_an_invocation_starts_busy_polling(
    model_dir: Path, model: PriceModel, window_us: int, active: bool
) -> None:
    app = PricingApp(ServerSettings(model_dir=model_dir, busy_poll_us=window_us), model=model)
    assert call(app, "GET", "/ping").status == 200
    assert not app.busy_poll.active  # health checks do not keep a worker busy
    assert post(app, json_body(VALID_LOAD)).status == 200
    assert app.busy_poll.active is active


def test_busy_polling_is_off_with_more_workers_than_cores(
    model_dir: Path, model: PriceModel
) -> None:
    cores = os.cpu_count() or 1
    crowded = ServerSettings(model_dir=model_dir, workers=cores + 1, busy_poll_us=500)
    assert crowded.effective_busy_poll_us == 0
    assert PricingApp(crowded, model=model).busy_poll.window_ns == 0
    assert ServerSettings(workers=cores, busy_poll_us=500).effective_busy_poll_us == 500


def test_request_ids_are_unique_per_worker(app: PricingApp) -> None:
    ids = {post(app, json_body(VALID_LOAD)).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    assert all(request_id.startswith(f"{os.getpid():x}-") for request_id in ids)


def test_request_id_echoes_the_sagemaker_inference_id(app: PricingApp) -> None:
    response = post(
        app,
        json_body(VALID_LOAD),
        extra_headers=[("X-Amzn-SageMaker-Inference-Id", "inference-42")],
    )
    assert response.headers["x-request-id"] == "inference-42"
    response = post(app, json_body(VALID_LOAD), extra_headers=[("X-Request-Id", "mine-7")])
    assert response.headers["x-request-id"] == "mine-7"
    # Without either header, each request gets an id of its own.
    generated = post(app, json_body(VALID_LOAD)).headers["x-request-id"]
    assert generated
    assert generated not in ("inference-42", "mine-7")
    assert generated != post(app, json_body(VALID_LOAD)).headers["x-request-id"]


def test_exception_in_predict_is_500_and_the_app_recovers(
    app: PricingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_predict(*args: object) -> None:
        raise RuntimeError("booster exploded")

    monkeypatch.setattr(inference.server, "predict_fn", broken_predict)
    headers = [("x-amzn-sagemaker-inference-id", "req-500")]
    response = post(app, json_body(VALID_LOAD), extra_headers=headers)
    assert response.status == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert "req-500" in error["message"]
    # Internals stay in the log, not in the answer.
    assert "exploded" not in error["message"]
    runtime = post(app, json_body(VALID_LOAD), path=RUNTIME_INVOCATIONS)
    assert runtime.status == 424
    assert runtime.json()["OriginalStatusCode"] == 500
    assert runtime.json()["ErrorCode"] == "SERVER_ERROR_FROM_MODEL"
    monkeypatch.undo()
    assert call(app, "GET", "/ping").status == 200
    assert post(app, json_body(VALID_LOAD)).status == 200


# -- the SageMaker Runtime path -----------------------------------------------------------------


def test_runtime_path_success_names_the_variant(app: PricingApp) -> None:
    response = post(app, json_body(VALID_LOAD), path=RUNTIME_INVOCATIONS)
    assert response.status == 200
    assert response.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert response.json()["predictions"][0]["price_eur"] > 0
    direct = post(app, json_body(VALID_LOAD))
    assert "x-amzn-invoked-production-variant" not in direct.headers
    assert direct.body == response.body


def test_runtime_path_wraps_a_client_error_as_model_error(app: PricingApp) -> None:
    bad = json_body({**VALID_LOAD, "weight_kg": -5.0})
    response = post(app, bad, path=RUNTIME_INVOCATIONS)
    assert response.status == 424
    assert response.headers["x-amzn-errortype"] == "ModelError"
    document = response.json()
    assert document["OriginalStatusCode"] == 400
    assert document["ErrorCode"] == "CLIENT_ERROR_FROM_MODEL"
    original = orjson.loads(document["OriginalMessage"])
    assert original["error"]["code"] == "weight_out_of_range"
    assert original["error"]["field"] == "loads[0].weight_kg"
    assert "(400)" in document["message"]


def test_runtime_path_checks_the_endpoint_name(model_dir: Path, model: PriceModel) -> None:
    app = PricingApp(ServerSettings(model_dir=model_dir, endpoint_name="prices"), model=model)
    response = post(app, json_body(VALID_LOAD), path="/endpoints/other/invocations")
    assert response.status == 400
    assert response.headers["x-amzn-errortype"] == "ValidationError"
    assert "other" in response.json()["message"]
    assert post(app, json_body(VALID_LOAD), path=RUNTIME_INVOCATIONS).status == 200
    # Any name is served when the server has none.
    any_name = PricingApp(ServerSettings(model_dir=model_dir), model=model)
    assert post(any_name, json_body(VALID_LOAD), path="/endpoints/other/invocations").status == 200


# -- lifespan -----------------------------------------------------------------------------------


@pytest.fixture
def unfrozen_gc() -> Iterator[None]:
    """Undo a gc.freeze() by model loading, which suits a worker but not the test process."""
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen_gc")
def test_lifespan_startup_loads_the_model(model_dir: Path, model: PriceModel) -> None:
    app = PricingApp(ServerSettings(model_dir=model_dir))
    assert lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert app.model is not None
    assert app.model.version == model.version
    assert app.model.onnx_session is not None
    assert call(app, "GET", "/ping").status == 200


def test_lifespan_startup_fails_on_a_bad_model_dir(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for directory in (tmp_path / "empty", tmp_path / "absent"):
        app = PricingApp(ServerSettings(model_dir=directory))
        assert lifespan(app) == ["lifespan.startup.failed"]
        assert app.model is None
        assert call(app, "GET", "/ping").status == 503


def test_lifespan_keeps_a_given_model(model_dir: Path, model: PriceModel) -> None:
    app = PricingApp(ServerSettings(model_dir=model_dir.parent / "absent"), model=model)
    assert lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert app.model is model


# -- settings -----------------------------------------------------------------------------------


def test_settings_defaults_from_an_empty_environment() -> None:
    settings = ServerSettings.from_environment({})
    assert settings == ServerSettings(
        model_dir=ML_BASE / MODEL,
        host="0.0.0.0",
        port=DEFAULT_PORT,
        workers=os.cpu_count() or 1,
        max_body_bytes=DEFAULT_MAX_BODY_BYTES,
        endpoint_name=None,
        access_log=False,
        timeout_seconds=60,
        busy_poll_us=DEFAULT_WINDOW_US,
    )
    assert settings.model_dir == Path("/opt/ml/model")
    assert settings.port == 8080


def test_settings_from_sagemaker_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_BIND_TO_PORT, "9090")
    monkeypatch.setenv(ENV_WORKERS, "3")
    monkeypatch.setenv(ENV_MAX_BODY_BYTES, "")
    monkeypatch.setenv(ENV_ENDPOINT_NAME, "prices")
    monkeypatch.setenv("FREIGHT_ACCESS_LOG", "true")
    settings = ServerSettings.from_environment(os.environ)
    assert (settings.port, settings.workers) == (9090, 3)
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert settings.endpoint_name == "prices"
    assert settings.access_log is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (ENV_BIND_TO_PORT, "eighty"),
        (ENV_WORKERS, "2.5"),
        (ENV_MAX_BODY_BYTES, "6MB"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "1m"),
        (ENV_BUSY_POLL_US, "1ms"),
    ],
)
def test_settings_name_the_bad_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} must be an integer, got '{value}'"):
        ServerSettings.from_environment({name: value})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (ENV_BIND_TO_PORT, "0", "port"),
        (ENV_BIND_TO_PORT, "70000", "port"),
        (ENV_WORKERS, "0", "workers"),
        (ENV_MAX_BODY_BYTES, "-1", "max_body_bytes"),
        (ENV_BUSY_POLL_US, "-1", "busy_poll_us must be within 0-1000000"),
        (ENV_BUSY_POLL_US, "2000000", "busy_poll_us must be within 0-1000000"),
    ],
)
def test_settings_out_of_range(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ServerSettings.from_environment({name: value})


@pytest.mark.parametrize(
    "settings",
    [
        ServerSettings(),
        ServerSettings(
            model_dir=Path("/srv/model"),
            host="127.0.0.1",
            port=9000,
            workers=2,
            max_body_bytes=1_000,
            endpoint_name="prices",
            access_log=True,
            timeout_seconds=5,
            busy_poll_us=0,
        ),
    ],
)
def test_settings_round_trip_through_the_environment(settings: ServerSettings) -> None:
    environment = settings.to_environment()
    assert all(isinstance(value, str) for value in environment.values())
    assert ServerSettings.from_environment(environment) == settings


# -- end to end: freight serve, boto3 and the quote client -------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


@contextmanager
def served(model_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``freight serve`` in a child process, killed on the way out if it is still running."""
    command = [
        sys.executable, "-m", "cli.main", "serve", "--model-dir", str(model_dir),
        "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def runtime_client(endpoint_url: str) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.mark.integration
def test_freight_serve_end_to_end(
    model_dir: Path, model: PriceModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loopback only: no proxy may sit between the clients and the server.
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    port = free_port()
    endpoint_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with served(model_dir, port, log) as process:
        wait_until_ready(f"{endpoint_url}/ping", process, SERVER_START_SECONDS)

        runtime = runtime_client(endpoint_url)
        response = runtime.invoke_endpoint(
            EndpointName="local",
            ContentType="application/json",
            Accept="application/json",
            Body=json_body([{**VALID_LOAD, "load_id": "L-1"}]),
        )
        assert response["ContentType"] == "application/json"
        assert response["InvokedProductionVariant"] == "AllTraffic"
        document = orjson.loads(response["Body"].read())
        assert document["model_version"] == model.version
        (prediction,) = document["predictions"]
        assert prediction["load_id"] == "L-1"
        assert (
            prediction["price_low_eur"] <= prediction["price_eur"] <= prediction["price_high_eur"]
        )

        with pytest.raises(ClientError) as caught:
            runtime.invoke_endpoint(
                EndpointName="local",
                ContentType="application/json",
                Accept="application/json",
                Body=json_body({**VALID_LOAD, "weight_kg": -5.0}),
            )
        error: dict[str, Any] = dict(caught.value.response)
        assert error["Error"]["Code"] == "ModelError"
        assert error["OriginalStatusCode"] == 400
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
        assert orjson.loads(error["OriginalMessage"])["error"]["field"] == "loads[0].weight_kg"

        client = PriceQuoteClient(
            "local",
            boto3_session=boto3.Session(
                region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
            ),
            endpoint_url=endpoint_url,
        )
        quote = client.quote({**VALID_LOAD, "load_id": "L-1"})
        assert quote.price_eur == prediction["price_eur"]
        assert quote.load_id == "L-1"
        assert quote.model_version == model.version
        with pytest.raises(QuoteRejectedError) as rejected:
            client.quote_many([VALID_LOAD, {**VALID_LOAD, "equipment_type": "frigo"}])
        assert rejected.value.status == 400
        assert rejected.value.code == "unknown_equipment"
        assert rejected.value.field == "loads[1].equipment_type"

        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=SERVER_STOP_SECONDS)
    # A drained server exits 0 (uvicorn alone would re-raise SIGTERM: 143).
    assert returncode == 0
    assert b'"message": "worker shutting down"' in log.read_bytes()
