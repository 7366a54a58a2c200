"""The four inference hooks (model_fn, input_fn, predict_fn, output_fn): the server's seams."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from inference.errors import RequestError
from inference.parsing import CSV, JSON, ParsedRequest, media_type, parse_request
from processing.model import PriceModel

FloatArray = npt.NDArray[np.float64]
DEFAULT_ACCEPT = JSON
# Columns of a CSV response, one row per load, no header.
CSV_RESPONSE_COLUMNS = ("price_eur", "price_low_eur", "price_high_eur")


@dataclass(frozen=True)
class Prediction:
    """Prices for the loads of one request, their interval, and the model that priced them."""

    price_eur: FloatArray
    low_eur: FloatArray | None
    high_eur: FloatArray | None
    load_ids: list[str | None]
    model_version: str


def model_fn(model_dir: Path) -> PriceModel:
    """Load the model once per worker; one scoring thread each (a worker per core)."""
    return PriceModel.load(model_dir, threads=1)


def input_fn(body: bytes, content_type: str | None, now_ms: int | None = None) -> ParsedRequest:
    """Parse and validate a request body (``application/json`` or ``text/csv``)."""
    return parse_request(
        body, content_type, now_ms if now_ms is not None else time.time_ns() // 1_000_000
    )


def predict_fn(request: ParsedRequest, model: PriceModel) -> Prediction:
    """Price every load of the request."""
    prices = model.predict_records(request.loads)
    interval = model.interval(prices)
    return Prediction(
        price_eur=prices,
        low_eur=interval[0] if interval else None,
        high_eur=interval[1] if interval else None,
        load_ids=request.load_ids,
        model_version=model.version,
    )


def negotiate(accept: str | None) -> str:
    """The response type for an Accept header: JSON by default, CSV on request, else 406."""
    if accept is None or not accept.strip():
        return DEFAULT_ACCEPT
    for candidate in accept.split(","):
        kind = media_type(candidate)
        if kind in (JSON, "application/*", "*/*"):
            return JSON
        if kind in (CSV, "text/*"):
            return CSV
    raise RequestError(
        406, "unsupported_accept", f"Accept {accept!r} is not supported; use {JSON} or {CSV}",
        "Accept",
    )  # fmt: skip


def _cents(values: FloatArray) -> list[float]:
    # Python's round on a short list is several times cheaper than np.round on a tiny array.
    return [round(value, 2) for value in values.tolist()]


def output_fn(prediction: Prediction, accept: str | None) -> tuple[bytes, str]:
    """Serialise a prediction as the client asked (JSON object or header-less CSV rows)."""
    kind = negotiate(accept)
    prices = _cents(prediction.price_eur)
    low = _cents(prediction.low_eur) if prediction.low_eur is not None else None
    high = _cents(prediction.high_eur) if prediction.high_eur is not None else None
    if kind == CSV:
        rows = []
        for index, price in enumerate(prices):
            bounds = f"{low[index]},{high[index]}" if low and high else ","
            rows.append(f"{price},{bounds}")
        return ("\n".join(rows) + "\n").encode(), CSV
    items = []
    for index, price in enumerate(prices):
        item: dict[str, object] = {"price_eur": price}
        if low is not None and high is not None:
            item["price_low_eur"] = low[index]
            item["price_high_eur"] = high[index]
        if prediction.load_ids[index] is not None:
            item["load_id"] = prediction.load_ids[index]
        items.append(item)
    body = orjson.dumps({"model_version": prediction.model_version, "predictions": items})
    return body, JSON
