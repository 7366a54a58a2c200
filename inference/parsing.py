"""Parsing and validation of price requests (JSON and CSV) into loads the model can price."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from processing.contracts import CSV_CONTENT_TYPE, JSON_CONTENT_TYPE
from processing.request_check import check_request
from processing.schema import REQUEST_FIELDS, REQUEST_NUMBER_FIELDS

JSON = JSON_CONTENT_TYPE
CSV = CSV_CONTENT_TYPE
# Header-less CSV requests carry the request fields in this order (posted_at may be empty).
CSV_COLUMNS: tuple[str, ...] = REQUEST_FIELDS
# Fields a request may carry besides the request fields: echoed back (load_id) or ignored.
PASS_THROUGH_FIELDS = frozenset({"load_id", "shipper_id"})
OPTIONAL_FIELDS = frozenset({"posted_at"})
MILLISECOND = dt.timedelta(milliseconds=1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Timestamps outside this window are unit mistakes (seconds for milliseconds) or typos.
EARLIEST_MS = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC) - EPOCH) // MILLISECOND
LATEST_MS = (dt.datetime(2100, 1, 1, tzinfo=dt.UTC) - EPOCH) // MILLISECOND
_NUMBER_FIELDS = frozenset(REQUEST_NUMBER_FIELDS)
_STRING_FIELDS = frozenset(
    {"origin_country", "origin_region", "destination_country", "destination_region",
     "equipment_type"}
)  # fmt: skip
_TIMESTAMP_FIELDS = frozenset({"posted_at", "pickup_at"})


class RequestError(ValueError):
    """A client mistake: the HTTP status to answer with, a code, the field, a message."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field
        self.message = message

    def to_json(self) -> dict[str, Any]:
        """The error body the server sends."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


@dataclass(frozen=True)
class ParsedRequest:
    """Validated loads (values ready for FeatureBuilder.from_records) and their ids, if given."""

    loads: list[dict[str, Any]]
    load_ids: list[str | None]


def media_type(header: str | None) -> str:
    """``text/csv; charset=utf-8`` -> ``text/csv``."""
    return (header or "").split(";", 1)[0].strip().lower()


def _number(value: Any, name: str) -> float:
    if value.__class__ is float:  # the common case first: JSON numbers with a fraction
        number: float = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise RequestError(
            400, "invalid_type", f"{name} must be a number, got {_describe(value)}", name
        )
    if not math.isfinite(number):
        raise RequestError(400, "not_finite", f"{name} must be a finite number", name)
    return number


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RequestError(
            400, "invalid_type", f"{name} must be a non-empty string, got {_describe(value)}", name
        )
    return value.strip()


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise RequestError(
        400, "invalid_type", f"{name} must be true or false, got {_describe(value)}", name
    )


def _timestamp_ms(value: Any, name: str) -> int:
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise RequestError(
                400, "invalid_timestamp",
                f"{name} must be an ISO 8601 timestamp with a time zone or epoch milliseconds, "
                f"got {value!r}",
                name,
            ) from None  # fmt: skip
        if parsed.tzinfo is None:
            raise RequestError(
                400, "invalid_timestamp",
                f"{name} {value!r} has no time zone; add 'Z' or an offset such as '+01:00'", name,
            )  # fmt: skip
        return _plausible((parsed - EPOCH) // MILLISECOND, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(
            400, "invalid_timestamp",
            f"{name} must be an ISO 8601 string or epoch milliseconds, got {_describe(value)}",
            name,
        )  # fmt: skip
    if not math.isfinite(value):
        raise RequestError(400, "not_finite", f"{name} must be finite", name)
    return _plausible(int(value), name)


def _plausible(epoch_ms: int, name: str) -> int:
    if not EARLIEST_MS <= epoch_ms <= LATEST_MS:
        raise RequestError(
            400, "invalid_timestamp",
            f"{name}={epoch_ms} ms is outside 2000-01-01 to 2100-01-01; "
            "timestamps are epoch milliseconds or ISO 8601 strings",
            name,
        )  # fmt: skip
    return epoch_ms


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def parse_load(raw: Any, index: int, now_ms: int) -> tuple[dict[str, Any], str | None]:
    """Check one load object and convert it; field names in errors carry the load's index."""
    if not isinstance(raw, Mapping):
        raise RequestError(
            400, "invalid_type", f"loads[{index}] must be an object, got {_describe(raw)}",
            f"loads[{index}]",
        )  # fmt: skip
    if not _KNOWN_FIELDS.issuperset(raw):
        unknown = sorted(key for key in raw if key not in _KNOWN_FIELDS)
        raise RequestError(
            400, "unknown_field",
            f"unknown field(s) {', '.join(map(repr, unknown))}; a load has "
            f"{', '.join(REQUEST_FIELDS)}",
            f"loads[{index}].{unknown[0]}",
        )  # fmt: skip
    load: dict[str, Any] = {}
    for name, parse in _FIELD_PARSERS:
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if name in OPTIONAL_FIELDS:
                load[name] = now_ms
                continue
            raise RequestError(
                400, "missing_field", f"{name} is required", f"loads[{index}].{name}"
            )
        try:
            load[name] = parse(value, name)
        except RequestError as error:
            error.field = f"loads[{index}].{name}"
            raise
    problem = check_request(load)
    if problem is not None:
        raise RequestError(400, problem.reason, problem.message, f"loads[{index}].{problem.field}")
    load_id = raw.get("load_id")
    return load, None if load_id is None else str(load_id)


_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    **dict.fromkeys(_NUMBER_FIELDS, _number),
    **dict.fromkeys(_STRING_FIELDS, _string),
    **dict.fromkeys(_TIMESTAMP_FIELDS, _timestamp_ms),
    "hazmat": _boolean,
}
_FIELD_PARSERS = tuple((name, _PARSERS[name]) for name in REQUEST_FIELDS)
_KNOWN_FIELDS = frozenset(REQUEST_FIELDS) | PASS_THROUGH_FIELDS


def _json_loads(body: bytes) -> list[Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestError(400, "malformed_json", f"the body is not valid JSON: {error}") from None
    if isinstance(document, dict) and "instances" in document:
        instances = document["instances"]
        if not isinstance(instances, list):
            raise RequestError(
                400, "invalid_type", "instances must be a list of loads", "instances"
            )
        return instances
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return [document]
    raise RequestError(
        400, "invalid_type",
        f"the body must be a load object, a list of loads or {{\"instances\": [...]}}, "
        f"got {_describe(document)}",
    )  # fmt: skip


_CSV_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def _csv_rows(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(400, "malformed_csv", f"the body is not UTF-8: {error}") from None
    rows = []
    for line_number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_COLUMNS):
            raise RequestError(
                400, "malformed_csv",
                f"line {line_number} has {len(row)} values; a header-less CSV load has "
                f"{len(CSV_COLUMNS)}: {','.join(CSV_COLUMNS)}",
            )  # fmt: skip
        load: dict[str, Any] = {}
        for name, cell in zip(CSV_COLUMNS, row, strict=True):
            cell = cell.strip()
            if not cell:
                load[name] = None
            elif name in _NUMBER_FIELDS:
                try:
                    load[name] = float(cell)
                except ValueError:
                    raise RequestError(
                        400, "invalid_type", f"{name} must be a number, got {cell!r}",
                        f"line {line_number}: {name}",
                    ) from None  # fmt: skip
            elif name == "hazmat":
                if cell.lower() not in _CSV_BOOLEANS:
                    raise RequestError(
                        400, "invalid_type", f"hazmat must be true/false or 1/0, got {cell!r}",
                        f"line {line_number}: hazmat",
                    )  # fmt: skip
                load[name] = _CSV_BOOLEANS[cell.lower()]
            elif name in _TIMESTAMP_FIELDS and cell.isascii() and cell.isdigit():
                load[name] = int(cell)  # epoch milliseconds
            else:
                load[name] = cell
        rows.append(load)
    return rows


def parse_request(body: bytes, content_type: str | None, now_ms: int) -> ParsedRequest:
    """Decode and validate a request body; raise RequestError (4xx) on any client mistake."""
    kind = media_type(content_type)
    if not body.strip():
        raise RequestError(400, "empty_body", "the request body is empty")
    if kind == JSON:
        raw_loads = _json_loads(body)
    elif kind == CSV:
        raw_loads = _csv_rows(body)
    else:
        raise RequestError(
            415, "unsupported_content_type",
            f"Content-Type {content_type!r} is not supported; use {JSON} or {CSV}",
            "Content-Type",
        )  # fmt: skip
    if not raw_loads:
        raise RequestError(400, "no_loads", "the request holds no loads")
    loads, load_ids = [], []
    for index, raw in enumerate(raw_loads):
        load, load_id = parse_load(raw, index, now_ms)
        loads.append(load)
        load_ids.append(load_id)
    return ParsedRequest(loads=loads, load_ids=load_ids)
