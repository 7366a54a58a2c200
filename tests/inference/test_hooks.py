"""Tests of the four inference hooks on a real small model, and of content negotiation."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from inference.errors import RequestError
from inference.hooks import (
    CSV_RESPONSE_COLUMNS,
    Prediction,
    input_fn,
    model_fn,
    negotiate,
    output_fn,
    predict_fn,
)
from inference.parsing import CSV, JSON, ParsedRequest
from processing.model import ONNX_MAX_BATCH_ROWS, PriceModel
from processing.validation import validate
from tests.inference.test_parsing import NOW_MS, VALID_LOAD, json_body, request_dicts


class CountingSession:
    """An ONNX Runtime session that counts its runs, to see which engine priced a batch."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.runs = 0

    def run(self, outputs: Any, inputs: dict[str, Any]) -> Any:
        self.runs += 1
        return self.session.run(outputs, inputs)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> PriceModel:
    return model_fn(model_dir)


@pytest.fixture(scope="module")
def valid_requests(small_loads: pa.Table) -> list[dict[str, Any]]:
    """Request dicts of the first 200 valid loads of the small market."""
    valid = validate(small_loads.slice(0, 400)).valid.slice(0, 200)
    requests = [request for request in request_dicts(valid) if request is not None]
    assert len(requests) == 200
    return requests


def parsed(loads: list[dict[str, Any]]) -> ParsedRequest:
    return ParsedRequest(loads=loads, load_ids=[None] * len(loads))


def relative_difference(left: np.ndarray[Any, Any], right: np.ndarray[Any, Any]) -> float:
    return float(np.max(np.abs(left - right) / np.abs(right)))


def test_model_fn_loads_the_model_with_its_onnx_twin(model: PriceModel, model_dir: Path) -> None:
    metadata = orjson.loads((model_dir / "model_metadata.json").read_bytes())
    assert isinstance(model, PriceModel)
    assert model.onnx_session is not None
    assert model.version == metadata["model_version"] != "unknown"
    assert model.interval(np.array([100.0])) is not None


def test_input_fn_defaults_posted_at_to_the_time_of_the_request() -> None:
    load = {key: value for key, value in VALID_LOAD.items() if key != "posted_at"}
    load["pickup_at"] = "2099-01-01T00:00:00Z"
    before = time.time_ns() // 1_000_000
    request = input_fn(json_body(load), "application/json")
    after = time.time_ns() // 1_000_000
    assert before <= request.loads[0]["posted_at"] <= after


def test_input_fn_uses_the_given_now() -> None:
    load = {key: value for key, value in VALID_LOAD.items() if key != "posted_at"}
    assert input_fn(json_body(load), JSON, now_ms=NOW_MS).loads[0]["posted_at"] == NOW_MS


def test_predict_fn_prices_one_load(model: PriceModel) -> None:
    request = input_fn(json_body({**VALID_LOAD, "load_id": "L-1"}), JSON)
    prediction = predict_fn(request, model)
    assert prediction.model_version == model.version
    assert prediction.load_ids == ["L-1"]
    assert prediction.price_eur.shape == (1,)
    assert prediction.low_eur is not None
    assert prediction.high_eur is not None
    # A 490 km reefer full load: some hundreds to a few thousand EUR.
    assert 200.0 < prediction.price_eur[0] < 5_000.0
    assert prediction.low_eur[0] <= prediction.price_eur[0] <= prediction.high_eur[0]


@pytest.mark.parametrize("size", [5, ONNX_MAX_BATCH_ROWS, ONNX_MAX_BATCH_ROWS + 1, 200])
def test_predict_fn_prices_a_batch(
    model: PriceModel, valid_requests: list[dict[str, Any]], size: int
) -> None:
    prediction = predict_fn(parsed(valid_requests[:size]), model)
    assert prediction.price_eur.shape == (size,)
    assert prediction.low_eur is not None
    assert prediction.high_eur is not None
    assert np.all(prediction.price_eur > 0)
    assert np.all(prediction.low_eur <= prediction.price_eur)
    assert np.all(prediction.price_eur <= prediction.high_eur)


def test_batch_prices_do_not_depend_on_the_batch(
    model: PriceModel, valid_requests: list[dict[str, Any]]
) -> None:
    together = model.predict_records(valid_requests[:50])
    alone = np.concatenate([model.predict_records([request]) for request in valid_requests[:50]])
    assert relative_difference(alone, together) < 1e-4


def test_onnx_and_xgboost_agree(
    model: PriceModel, model_dir: Path, valid_requests: list[dict[str, Any]]
) -> None:
    counting = CountingSession(model.onnx_session)
    with_onnx = dataclasses.replace(model, onnx_session=counting)
    booster_only = PriceModel.load(model_dir, threads=1, use_onnx=False)
    assert booster_only.onnx_session is None
    for size in (1, 7, ONNX_MAX_BATCH_ROWS):
        batch = valid_requests[:size]
        onnx_prices = with_onnx.predict_records(batch)
        xgboost_prices = booster_only.predict_records(batch)
        assert relative_difference(onnx_prices, xgboost_prices) < 1e-4
    assert counting.runs == 3
    # Larger batches go to xgboost.
    with_onnx.predict_records(valid_requests[: ONNX_MAX_BATCH_ROWS + 1])
    assert counting.runs == 3


@pytest.mark.parametrize("size", [20, 200])
def test_training_path_equals_serving_path(
    model: PriceModel, small_loads: pa.Table, size: int
) -> None:
    valid = validate(small_loads.slice(1_000, 400)).valid.slice(0, size)
    requests = [request for request in request_dicts(valid) if request is not None]
    assert len(requests) == size
    training = model.predict_table(valid)
    serving = model.predict_records(requests)
    assert relative_difference(serving, training) < 1e-6


def test_warm_up_runs_both_engines(model: PriceModel) -> None:
    counting = CountingSession(model.onnx_session)
    dataclasses.replace(model, onnx_session=counting).warm_up()
    assert counting.runs == 1


# -- output_fn and negotiate --------------------------------------------------------------------

PREDICTION = Prediction(
    price_eur=np.array([1234.567, 99.999]),
    low_eur=np.array([1111.111, 90.0]),
    high_eur=np.array([1333.333, 110.004]),
    load_ids=["L-1", None],
    model_version="abc123",
)


def test_output_fn_json() -> None:
    body, content_type = output_fn(PREDICTION, "application/json")
    assert content_type == JSON
    assert orjson.loads(body) == {
        "model_version": "abc123",
        "predictions": [
            {
                "price_eur": 1234.57,
                "price_low_eur": 1111.11,
                "price_high_eur": 1333.33,
                "load_id": "L-1",
            },
            {"price_eur": 100.0, "price_low_eur": 90.0, "price_high_eur": 110.0},
        ],
    }


def test_output_fn_json_without_interval() -> None:
    prediction = dataclasses.replace(PREDICTION, low_eur=None, high_eur=None)
    body, _ = output_fn(prediction, None)
    assert orjson.loads(body)["predictions"] == [
        {"price_eur": 1234.57, "load_id": "L-1"},
        {"price_eur": 100.0},
    ]


def test_output_fn_csv_rows_without_header() -> None:
    body, content_type = output_fn(PREDICTION, "text/csv")
    assert content_type == CSV
    assert CSV_RESPONSE_COLUMNS == ("price_eur", "price_low_eur", "price_high_eur")
    assert body == b"1234.57,1111.11,1333.33\n100.0,90.0,110.0\n"


def test_output_fn_csv_without_interval_leaves_the_bounds_empty() -> None:
    prediction = dataclasses.replace(PREDICTION, low_eur=None, high_eur=None)
    body, _ = output_fn(prediction, "text/csv")
    assert body == b"1234.57,,\n100.0,,\n"


def test_output_fn_of_a_real_prediction(model: PriceModel) -> None:
    prediction = predict_fn(input_fn(json_body([VALID_LOAD, VALID_LOAD]), JSON), model)
    json_document = orjson.loads(output_fn(prediction, JSON)[0])
    csv_rows = output_fn(prediction, CSV)[0].decode().splitlines()
    assert len(json_document["predictions"]) == len(csv_rows) == 2
    for item, row in zip(json_document["predictions"], csv_rows, strict=True):
        assert set(item) == {"price_eur", "price_low_eur", "price_high_eur"}
        assert [float(value) for value in row.split(",")] == [
            item["price_eur"],
            item["price_low_eur"],
            item["price_high_eur"],
        ]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("  ", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        ("application/*", JSON),
        ("text/csv", CSV),
        ("text/*", CSV),
        ("text/csv; charset=utf-8", CSV),
        ("application/json, text/csv", JSON),
        ("text/csv, application/json", CSV),
        ("application/xml, text/csv", CSV),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize("accept", ["application/xml", "text/html, image/png"])
def test_negotiate_refuses_unknown_types(accept: str) -> None:
    with pytest.raises(RequestError) as caught:
        negotiate(accept)
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        406,
        "unsupported_accept",
        "Accept",
    )
    assert accept in caught.value.message


def test_output_fn_refuses_unknown_accept() -> None:
    with pytest.raises(RequestError) as caught:
        output_fn(PREDICTION, "application/xml")
    assert caught.value.status == 406
