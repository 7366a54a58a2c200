"""Tests of the quote client against a stubbed ``sagemaker-runtime`` client: retries, errors."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from inference.client import (
    PriceQuoteClient,
    Quote,
    QuoteError,
    QuoteRejectedError,
    QuoteUnavailableError,
)
from tests.inference.test_parsing import VALID_LOAD

ENDPOINT = "prices"
MODEL_VERSION = "f0d82e451b40364e"
REJECTION = (
    '{"error":{"code":"weight_out_of_range","message":"weight_kg=-5 is outside [1, 26000]",'
    '"field":"loads[0].weight_kg"}}'
)


def runtime_client() -> Any:
    """A real boto3 client that never reaches AWS (the tests stub it)."""
    return boto3.client(
        "sagemaker-runtime",
        region_name="eu-central-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}),
    )


def response_body(*load_ids: str | None, price: float = 1300.0) -> dict[str, Any]:
    """An InvokeEndpoint response pricing loads with the given ids, 10 EUR apart."""
    predictions = []
    for index, load_id in enumerate(load_ids):
        item: dict[str, Any] = {
            "price_eur": price + 10 * index,
            "price_low_eur": price + 10 * index - 100,
            "price_high_eur": price + 10 * index + 100,
        }
        if load_id is not None:
            item["load_id"] = load_id
        predictions.append(item)
    data = orjson.dumps({"model_version": MODEL_VERSION, "predictions": predictions})
    return {
        "Body": StreamingBody(io.BytesIO(data), len(data)),
        "ContentType": "application/json",
        "InvokedProductionVariant": "AllTraffic",
    }


def expected_params(body: Any = ANY) -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT,
        "Body": body,
        "ContentType": "application/json",
        "Accept": "application/json",
    }


def add_error(
    stubber: Stubber,
    code: str,
    status: int,
    modeled_fields: dict[str, Any] | None = None,
) -> None:
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code=code,
        service_message=f"{code} happened",
        http_status_code=status,
        modeled_fields=modeled_fields,
        expected_params=expected_params(),
    )


def add_model_error(stubber: Stubber, original_status: int, original_message: str) -> None:
    add_error(
        stubber,
        "ModelError",
        424,
        {"OriginalStatusCode": original_status, "OriginalMessage": original_message},
    )


class Harness:
    """A quote client on a stubbed runtime client, with its sleeps recorded."""

    def __init__(self, jitter: float = 1.0, **options: Any) -> None:
        self.runtime = runtime_client()
        self.stubber = Stubber(self.runtime)
        self.sleeps: list[float] = []
        self.bodies: list[bytes] = []
        self.runtime.meta.events.register(
            "before-parameter-build.sagemaker-runtime.InvokeEndpoint", self._record
        )
        self.client = PriceQuoteClient(
            ENDPOINT,
            client=self.runtime,
            sleep=self.sleeps.append,
            jitter=lambda: jitter,
            **options,
        )

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.bodies.append(params["Body"])


@contextmanager
def stubbed(jitter: float = 1.0, **options: Any) -> Iterator[Harness]:
    """A harness whose stubber is active; every queued response must have been used."""
    harness = Harness(jitter, **options)
    with harness.stubber:
        yield harness
        harness.stubber.assert_no_pending_responses()


@pytest.fixture
def harness() -> Iterator[Harness]:
    with stubbed() as harness:
        yield harness


def test_quote_parses_the_response(harness: Harness) -> None:
    harness.stubber.add_response(
        "invoke_endpoint",
        response_body("L-1"),
        expected_params(orjson.dumps([{**VALID_LOAD, "load_id": "L-1"}])),
    )
    quote = harness.client.quote({**VALID_LOAD, "load_id": "L-1"})
    assert quote == Quote(
        price_eur=1300.0,
        price_low_eur=1200.0,
        price_high_eur=1400.0,
        load_id="L-1",
        model_version=MODEL_VERSION,
    )
    assert harness.sleeps == []


def test_quote_without_interval_or_id(harness: Harness) -> None:
    data = orjson.dumps({"model_version": "v", "predictions": [{"price_eur": 99.5}]})
    harness.stubber.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(data), len(data))},
        expected_params(),
    )
    assert harness.client.quote(VALID_LOAD) == Quote(99.5, None, None, None, "v")


def test_throttling_is_retried_once(harness: Harness) -> None:
    add_error(harness.stubber, "ThrottlingException", 400)
    harness.stubber.add_response("invoke_endpoint", response_body(None), expected_params())
    assert harness.client.quote(VALID_LOAD).price_eur == 1300.0
    assert len(harness.bodies) == 2
    assert harness.bodies[0] == harness.bodies[1]
    assert harness.sleeps == [pytest.approx(0.1)]


@pytest.mark.parametrize("original_status", [500, 503, 429])
def test_model_server_error_is_retried(harness: Harness, original_status: int) -> None:
    add_model_error(harness.stubber, original_status, '{"error":{"code":"internal_error"}}')
    harness.stubber.add_response("invoke_endpoint", response_body(None), expected_params())
    assert harness.client.quote(VALID_LOAD).price_eur == 1300.0
    assert len(harness.bodies) == 2
    assert len(harness.sleeps) == 1


def test_model_client_error_is_rejected_without_retry(harness: Harness) -> None:
    add_model_error(harness.stubber, 400, REJECTION)
    with pytest.raises(QuoteRejectedError) as caught:
        harness.client.quote({**VALID_LOAD, "weight_kg": -5.0})
    error = caught.value
    assert (error.status, error.code, error.field) == (
        400,
        "weight_out_of_range",
        "loads[0].weight_kg",
    )
    assert error.message == "weight_kg=-5 is outside [1, 26000]"
    assert "loads[0].weight_kg" in str(error)
    assert len(harness.bodies) == 1
    assert harness.sleeps == []


def test_model_client_error_with_a_plain_text_message(harness: Harness) -> None:
    add_model_error(harness.stubber, 415, "not json at all")
    with pytest.raises(QuoteRejectedError) as caught:
        harness.client.quote(VALID_LOAD)
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        415,
        "client_error",
        None,
    )
    assert caught.value.message == "not json at all"


def test_persistent_503_gives_up_after_max_attempts() -> None:
    with stubbed(max_attempts=6, base_delay_seconds=0.1, max_delay_seconds=0.5) as harness:
        for _ in range(6):
            add_error(harness.stubber, "ServiceUnavailable", 503)
        with pytest.raises(QuoteUnavailableError, match="failed 6 attempt") as caught:
            harness.client.quote(VALID_LOAD)
    assert "ServiceUnavailable" in str(caught.value)
    assert len(harness.bodies) == 6
    # Exponential from the base delay, capped; no sleep after the last attempt.
    assert harness.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_jitter_scales_the_delay_between_half_and_all() -> None:
    for jitter, expected in ((0.0, 0.05), (0.5, 0.075)):
        with stubbed(jitter, max_attempts=2) as harness:
            add_error(harness.stubber, "InternalFailure", 500)
            add_error(harness.stubber, "InternalFailure", 500)
            with pytest.raises(QuoteUnavailableError):
                harness.client.quote(VALID_LOAD)
        assert harness.sleeps == [pytest.approx(expected)]


@pytest.mark.parametrize(("code", "status"), [("ValidationError", 400), ("AccessDenied", 403)])
def test_non_retryable_error_fails_at_once(harness: Harness, code: str, status: int) -> None:
    add_error(harness.stubber, code, status)
    with pytest.raises(QuoteError, match=code) as caught:
        harness.client.quote(VALID_LOAD)
    assert type(caught.value) is QuoteError
    assert len(harness.bodies) == 1
    assert harness.sleeps == []


def padded_load(index: int, size: int) -> dict[str, Any]:
    """VALID_LOAD with a load_id padded so that the load is exactly ``size`` bytes of JSON."""
    load = {**VALID_LOAD, "load_id": f"L-{index:03d}-"}
    padding = size - len(orjson.dumps(load))
    load["load_id"] += "x" * padding
    assert len(orjson.dumps(load)) == size
    return load


def test_quote_many_splits_under_the_payload_limit() -> None:
    loads = [padded_load(index, 400) for index in range(10)]
    # 4 loads make 4 x 400 + 3 commas + 2 brackets = 1,605 bytes; a fifth would be 2,006.
    batches = [loads[0:4], loads[4:8], loads[8:10]]
    with stubbed(max_payload_bytes=2_000) as harness:
        for batch in batches:
            harness.stubber.add_response(
                "invoke_endpoint",
                response_body(*(load["load_id"] for load in batch)),
                expected_params(),
            )
        quotes = harness.client.quote_many(loads)
    assert len(harness.bodies) == len(batches)
    sent = []
    for body in harness.bodies:
        assert len(body) <= 2_000
        sent.extend(orjson.loads(body))
    assert sent == loads
    assert [quote.load_id for quote in quotes] == [load["load_id"] for load in loads]


@pytest.mark.parametrize(
    ("limit", "loads_per_request"),
    # Two loads of 1,010 bytes make 2 + 1,010 + 1 + 1,010 = 2,023 bytes in one request.
    [(2_023, [2]), (2_022, [1, 1])],
)
def test_quote_many_fills_a_request_up_to_the_limit_exactly(
    limit: int, loads_per_request: list[int]
) -> None:
    loads = [padded_load(index, 1_010) for index in range(2)]
    with stubbed(max_payload_bytes=limit) as harness:
        for count in loads_per_request:
            harness.stubber.add_response(
                "invoke_endpoint", response_body(*[None] * count), expected_params()
            )
        assert len(harness.client.quote_many(loads)) == 2
    assert [len(body) for body in harness.bodies] == [
        2 + 1_010 * count + (count - 1) for count in loads_per_request
    ]


def test_quote_many_of_nothing_sends_nothing(harness: Harness) -> None:
    assert harness.client.quote_many([]) == []
    assert harness.bodies == []


def test_a_load_over_the_limit_names_its_index() -> None:
    loads = [padded_load(0, 400), padded_load(1, 1_999)]
    with (
        stubbed(max_payload_bytes=2_000) as harness,
        pytest.raises(ValueError, match="load 1 alone is 1999 bytes"),
    ):
        harness.client.quote_many(loads)
    assert harness.bodies == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"endpoint_name": ""}, "endpoint_name"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_payload_bytes": 100}, "max_payload_bytes"),
    ],
)
def test_constructor_validation(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"endpoint_name": ENDPOINT, "client": object(), **options}
    with pytest.raises(ValueError, match=message):
        PriceQuoteClient(**arguments)


def test_client_is_made_for_an_endpoint_url() -> None:
    session = boto3.Session(
        region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    client = PriceQuoteClient(
        ENDPOINT, boto3_session=session, endpoint_url="http://127.0.0.1:1", read_timeout_seconds=3
    )
    runtime = client._client
    assert runtime.meta.endpoint_url == "http://127.0.0.1:1"
    assert runtime.meta.config.read_timeout == 3
    assert runtime.meta.config.retries["total_max_attempts"] == 1


# -- connection failures (Stubber cannot raise these) --------------------------------------------


class FlakyRuntime:
    """A sagemaker-runtime stand-in that raises the given exceptions, then answers."""

    def __init__(self, failures: Sequence[Exception], answers: int = 1) -> None:
        self.failures = list(failures)
        self.answers = answers
        self.calls = 0

    def invoke_endpoint(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        if self.answers <= 0:
            raise AssertionError("no answer left")
        self.answers -= 1
        return response_body(None)


def connection_error() -> Exception:
    return EndpointConnectionError(endpoint_url="http://127.0.0.1:1/endpoints/prices/invocations")


def test_connection_error_is_retried() -> None:
    sleeps: list[float] = []
    runtime = FlakyRuntime([connection_error(), ReadTimeoutError(endpoint_url="http://x")])
    client = PriceQuoteClient(ENDPOINT, client=runtime, sleep=sleeps.append, jitter=lambda: 1.0)
    assert client.quote(VALID_LOAD).price_eur == 1300.0
    assert runtime.calls == 3
    assert sleeps == pytest.approx([0.1, 0.2])


def test_persistent_connection_error_is_unavailable() -> None:
    sleeps: list[float] = []
    runtime = FlakyRuntime([connection_error() for _ in range(3)], answers=0)
    client = PriceQuoteClient(
        ENDPOINT, client=runtime, max_attempts=3, sleep=sleeps.append, jitter=lambda: 1.0
    )
    with pytest.raises(QuoteUnavailableError, match="EndpointConnectionError") as caught:
        client.quote(VALID_LOAD)
    assert "failed 3 attempt" in str(caught.value)
    assert runtime.calls == 3
    assert len(sleeps) == 2
