"""Parsing and validation of price requests (JSON and CSV) into loads the model can price."""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from inference.errors import RequestError, cut, describe, quoted
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
# The string fields of a load (countries, regions, equipment, load_id) are far shorter: longer
# ones are refused before anything formats them into a message. Timestamps may be longer (ISO
# 8601 allows any number of fraction digits); their messages show a cut preview.
MAX_FIELD_CHARS = 1024
# A CSV line holds every column at most MAX_FIELD_CHARS long, quoted, with its comma. Lines are
# checked against it before the csv module reads them, so csv's own field limit (131,072
# characters by default, global to the process) is never what stops a request.
MAX_CSV_LINE_CHARS = len(CSV_COLUMNS) * (MAX_FIELD_CHARS + 3)
LISTED_UNKNOWN_FIELDS = 5


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
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float: none from orjson, which stops at 64 bits
            number = math.inf
    else:
        raise RequestError(
            400, "invalid_type", f"{name} must be a number, got {describe(value)}", name
        )
    if not math.isfinite(number):
        raise RequestError(400, "not_finite", f"{name} must be a finite number", name)
    return number


def _too_long(text: str, name: str, field: str) -> RequestError:
    return RequestError(
        400, "value_too_long",
        f"{name} has {len(text)} characters; at most {MAX_FIELD_CHARS} are accepted", field,
    )  # fmt: skip


def _string(value: Any, name: str) -> str:
    if value.__class__ is str and len(value) <= MAX_FIELD_CHARS:  # the common case first
        text: str = value.strip()
        if text:
            return text
    if isinstance(value, str) and value.strip():
        raise _too_long(value, name, name)
    raise RequestError(
        400, "invalid_type", f"{name} must be a non-empty string, got {describe(value)}", name
    )


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise RequestError(
        400, "invalid_type", f"{name} must be true or false, got {describe(value)}", name
    )


def _timestamp_ms(value: Any, name: str) -> int:
    if isinstance(value, str):
        try:  # no length check: no string of any length costs fromisoformat much to refuse
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise RequestError(
                400, "invalid_timestamp",
                f"{name} must be an ISO 8601 timestamp with a time zone or epoch milliseconds, "
                f"got {quoted(value)}",
                name,
            ) from None  # fmt: skip
        if parsed.tzinfo is None:
            raise RequestError(
                400, "invalid_timestamp",
                f"{name} {quoted(value)} has no time zone; add 'Z' or an offset such as '+01:00'",
                name,
            )  # fmt: skip
        return _plausible((parsed - EPOCH) // MILLISECOND, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(
            400, "invalid_timestamp",
            f"{name} must be an ISO 8601 string or epoch milliseconds, got {describe(value)}",
            name,
        )  # fmt: skip
    if isinstance(value, float) and not math.isfinite(value):  # ints are finite, at any size
        raise RequestError(400, "not_finite", f"{name} must be finite", name)
    return _plausible(int(value), name)


def _plausible(epoch_ms: int, name: str) -> int:
    if not EARLIEST_MS <= epoch_ms <= LATEST_MS:
        # Every float fits in 1,024 bits; str() of a Python int beyond 4,300 digits raises.
        shown = str(epoch_ms) if epoch_ms.bit_length() <= 1024 else describe(epoch_ms)
        raise RequestError(
            400, "invalid_timestamp",
            f"{name}={shown} ms is outside 2000-01-01 to 2100-01-01; "
            "timestamps are epoch milliseconds or ISO 8601 strings",
            name,
        )  # fmt: skip
    return epoch_ms


def _load_id(value: Any, index: int) -> str:
    """A load id that is not a string of at most MAX_FIELD_CHARS (parse_load checks those)."""
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:
            raise _too_long(value, "load_id", f"loads[{index}].load_id")
        return value
    if isinstance(value, float) or (
        isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 64
    ):
        return str(value)
    raise RequestError(
        400, "invalid_type", f"load_id must be a string or a number, got {describe(value)}",
        f"loads[{index}].load_id",
    )  # fmt: skip


def parse_load(raw: Any, index: int, now_ms: int) -> tuple[dict[str, Any], str | None]:
    """Check one load object and convert it; field names in errors carry the load's index."""
    if not isinstance(raw, Mapping):
        raise RequestError(
            400, "invalid_type", f"loads[{index}] must be an object, got {describe(raw)}",
            f"loads[{index}]",
        )  # fmt: skip
    if not _KNOWN_FIELDS.issuperset(raw):
        unknown = [key for key in raw if key not in _KNOWN_FIELDS]
        listed = heapq.nsmallest(LISTED_UNKNOWN_FIELDS, unknown)
        more = f" and {len(unknown) - len(listed)} more" if len(unknown) > len(listed) else ""
        raise RequestError(
            400, "unknown_field",
            f"unknown field(s) {', '.join(map(quoted, listed))}{more}; a load has "
            f"{', '.join(REQUEST_FIELDS)}",
            f"loads[{index}].{cut(listed[0])}",
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
    if load_id is None or (load_id.__class__ is str and len(load_id) <= MAX_FIELD_CHARS):
        return load, load_id
    return load, _load_id(load_id, index)


_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    **dict.fromkeys(_NUMBER_FIELDS, _number),
    **dict.fromkeys(_STRING_FIELDS, _string),
    **dict.fromkeys(_TIMESTAMP_FIELDS, _timestamp_ms),
    "hazmat": _boolean,
}
_FIELD_PARSERS = tuple((name, _PARSERS[name]) for name in REQUEST_FIELDS)
_KNOWN_FIELDS = frozenset(REQUEST_FIELDS) | PASS_THROUGH_FIELDS


# How orjson starts the message of a number beyond the range of a float (1e400, 400 digits).
_ORJSON_INFINITY = "number is infinity"


def _json_loads(body: bytes) -> list[Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # 1e400 is valid JSON that no float holds; orjson refuses it rather than return inf.
        if error.msg.startswith(_ORJSON_INFINITY):
            raise RequestError(
                400, "not_finite",
                f"the number at line {error.lineno} column {error.colno} is too large for a "
                "64-bit float; numbers must be finite",
            ) from None  # fmt: skip
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
        f"got {describe(document)}",
    )  # fmt: skip


_CSV_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
# Excel's dialect, strict: a stray quote ('"a"b') is an error, not silently dropped. Built once:
# csv builds a dialect on every call that passes options, a third of a one-line request's time.
_CSV_DIALECT = csv.reader((), strict=True).dialect


def _line_at(text: str, offset: int) -> int:
    """The line number of ``text[offset]``, counting CR LF, LF and a lone CR as line breaks."""
    before = text[:offset]
    return before.count("\n") + before.count("\r") - before.count("\r\n") + 1


def _csv_lines(body: bytes) -> list[str]:
    """The body's lines, checked for what the csv module fails on or lets through unseen."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        line = _line_at(body[: error.start].decode("utf-8"), error.start)
        raise RequestError(
            400, "malformed_csv", f"line {line}: the body is not UTF-8: {error}"
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        raise RequestError(400, "malformed_csv", f"line {_line_at(text, nul)} holds a NUL byte")
    # A lone \r ends a line as \r\n and \n do (old Mac and some spreadsheet exports): no value
    # of a load holds a line break, so the reading is unambiguous.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    # A body shorter than the limit (any body of a few loads) cannot hold a longer line.
    if len(text) > MAX_CSV_LINE_CHARS and max(map(len, lines)) > MAX_CSV_LINE_CHARS:
        line = next(n for n, line in enumerate(lines, 1) if len(line) > MAX_CSV_LINE_CHARS)
        raise RequestError(
            400, "line_too_long",
            f"line {line} has {len(lines[line - 1])} characters; a load's line has at most "
            f"{MAX_CSV_LINE_CHARS} ({len(CSV_COLUMNS)} values of at most {MAX_FIELD_CHARS})",
        )  # fmt: skip
    return lines


def _csv_rows(body: bytes) -> list[dict[str, Any]]:
    rows = []
    # One line per item: a quote left open joins the next line, which the line count shows.
    reader = csv.reader(_csv_lines(body), _CSV_DIALECT)
    line_number = 0
    try:
        for line_number, row in enumerate(reader, start=1):
            if reader.line_num != line_number:
                raise RequestError(
                    400, "malformed_csv",
                    f"line {line_number} has a quoted value that runs past the end of the line",
                )  # fmt: skip
            if not row or all(not cell.strip() for cell in row):
                continue
            rows.append(_csv_load(row, line_number))
    except csv.Error as error:
        raise RequestError(400, "malformed_csv", f"line {line_number + 1}: {error}") from None
    return rows


def _csv_load(row: list[str], line_number: int) -> dict[str, Any]:
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
                    400, "invalid_type", f"{name} must be a number, got {quoted(cell)}",
                    f"line {line_number}: {name}",
                ) from None  # fmt: skip
        elif name == "hazmat":
            if cell.lower() not in _CSV_BOOLEANS:
                raise RequestError(
                    400, "invalid_type", f"hazmat must be true/false or 1/0, got {quoted(cell)}",
                    f"line {line_number}: hazmat",
                )  # fmt: skip
            load[name] = _CSV_BOOLEANS[cell.lower()]
        elif (
            name in _TIMESTAMP_FIELDS
            and cell.isascii()
            and cell.isdigit()
            and len(cell) <= MAX_FIELD_CHARS  # int() refuses beyond 4,300 digits
        ):
            load[name] = int(cell)  # epoch milliseconds
        else:
            load[name] = cell  # strings and ISO timestamps: parse_load checks them as JSON's
    return load


def parse_request(body: bytes, content_type: str | None, now_ms: int) -> ParsedRequest:
    """Decode and validate a request body; raise RequestError (4xx) on any client mistake.

    Every malformed body is a RequestError, whose message costs the same whatever the body
    holds. JSON: orjson refuses nesting deeper than 1,024 and numbers beyond a float (both 400);
    a repeated key keeps its last value, as in JSON.parse and Python's json. CSV: one load per
    line, ended by CR LF, LF or a lone CR; quoted values may not hold line breaks; NUL bytes,
    stray quotes, lines over MAX_CSV_LINE_CHARS and wrong column counts are refused with the
    line number.
    """
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
