"""Tests of request parsing: JSON and CSV bodies, every bad-input class, and the batch rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from inference.errors import RequestError
from inference.parsing import (
    CSV,
    CSV_COLUMNS,
    JSON,
    MAX_CSV_LINE_CHARS,
    MAX_FIELD_CHARS,
    ParsedRequest,
    media_type,
    parse_load,
    parse_request,
)
from processing.request_check import check_request
from processing.schema import QUARANTINE_DETAIL, QUARANTINE_REASON, REQUEST_FIELDS
from processing.validation import validate

# A valid load as a client sends it; pickup is two days after posting.
VALID_LOAD: dict[str, Any] = {
    "posted_at": "2026-03-02T09:30:00Z",
    "pickup_at": "2026-03-04T08:00:00Z",
    "origin_country": "DE",
    "origin_region": "DE-80",
    "origin_lat": 48.14,
    "origin_lon": 11.58,
    "destination_country": "IT",
    "destination_region": "IT-20",
    "destination_lat": 45.46,
    "destination_lon": 9.19,
    "distance_km": 490.0,
    "weight_kg": 12000.0,
    "loading_meters": 13.6,
    "equipment_type": "reefer",
    "hazmat": False,
}
POSTED_MS = int(dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC).timestamp() * 1000)
PICKUP_MS = int(dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC).timestamp() * 1000)
# "Now" for parsing: a day before posting, so a defaulted posted_at is still before pickup.
NOW_MS = POSTED_MS - 86_400_000
# What VALID_LOAD parses to.
PARSED_LOAD: dict[str, Any] = {**VALID_LOAD, "posted_at": POSTED_MS, "pickup_at": PICKUP_MS}
# Reasons of processing.validation.validate that a price request can have (no id, no price).
REQUEST_REASONS = frozenset(
    {
        "not_finite",
        "unknown_equipment",
        "unknown_country",
        "invalid_region",
        "region_country_mismatch",
        "invalid_coordinates",
        "coordinates_outside_country",
        "origin_equals_destination",
        "distance_out_of_range",
        "distance_shorter_than_straight_line",
        "weight_out_of_range",
        "loading_meters_out_of_range",
        "pickup_before_posting",
    }
)
# Batch reasons about price or id: checked after every request rule, so such rows pass them all.
LATE_REASONS = frozenset({"non_positive_price", "price_out_of_range", "duplicate_load_id"})


def with_fields(**changes: Any) -> dict[str, Any]:
    """VALID_LOAD with some fields replaced."""
    return {**VALID_LOAD, **changes}


def without_field(name: str) -> dict[str, Any]:
    """VALID_LOAD without one field."""
    return {key: value for key, value in VALID_LOAD.items() if key != name}


def json_body(document: Any) -> bytes:
    return orjson.dumps(document)


def csv_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_line(load: Mapping[str, Any]) -> str:
    """One header-less CSV line of a load, in CSV_COLUMNS order."""
    return ",".join(csv_cell(load[name]) for name in CSV_COLUMNS)


def csv_body(*loads: Mapping[str, Any]) -> bytes:
    return ("\n".join(csv_line(load) for load in loads) + "\n").encode()


def nested(depth: int, inner: bytes = b"") -> bytes:
    """JSON lists nested ``depth`` deep: a few KB that Python's repr cannot print."""
    return b"[" * depth + inner + b"]" * depth


def with_raw(name: str, fragment: bytes) -> bytes:
    """The JSON of VALID_LOAD with ``name`` set to a raw JSON text."""
    return orjson.dumps(with_fields(**{name: orjson.Fragment(fragment)}))


@dataclass(frozen=True)
class BadRequest:
    """A body the server must refuse, and how: status, error code and the field named."""

    name: str
    body: bytes
    content_type: str
    status: int
    code: str
    field: str | None
    message_contains: str = ""


# Every class of client mistake; the server tests send the same bodies over HTTP.
BAD_REQUESTS: tuple[BadRequest, ...] = (
    BadRequest("malformed_json", b'{"weight_kg": ', JSON, 400, "malformed_json", None),
    BadRequest("json_not_utf8", b'{"origin_region": "DE-\xff"}', JSON, 400, "malformed_json", None),
    BadRequest(
        "nan_literal",
        json_body(VALID_LOAD).replace(b"12000.0", b"NaN"),
        JSON,
        400,
        "malformed_json",
        None,
    ),
    BadRequest(
        "infinity_literal",
        json_body(VALID_LOAD).replace(b"12000.0", b"Infinity"),
        JSON,
        400,
        "malformed_json",
        None,
    ),
    BadRequest(
        "string_weight",
        json_body(with_fields(weight_kg="12000")),
        JSON,
        400,
        "invalid_type",
        "loads[0].weight_kg",
    ),
    BadRequest(
        "bool_as_number",
        json_body(with_fields(distance_km=True)),
        JSON,
        400,
        "invalid_type",
        "loads[0].distance_km",
    ),
    BadRequest(
        "number_as_equipment",
        json_body(with_fields(equipment_type=3)),
        JSON,
        400,
        "invalid_type",
        "loads[0].equipment_type",
    ),
    BadRequest(
        "string_as_hazmat",
        json_body(with_fields(hazmat="yes")),
        JSON,
        400,
        "invalid_type",
        "loads[0].hazmat",
    ),
    BadRequest(
        "load_not_an_object",
        json_body([VALID_LOAD, 7]),
        JSON,
        400,
        "invalid_type",
        "loads[1]",
    ),
    BadRequest("body_is_a_string", json_body("a load"), JSON, 400, "invalid_type", None),
    BadRequest(
        "instances_not_a_list",
        json_body({"instances": VALID_LOAD}),
        JSON,
        400,
        "invalid_type",
        "instances",
    ),
    BadRequest(
        "missing_field",
        json_body([VALID_LOAD, without_field("distance_km")]),
        JSON,
        400,
        "missing_field",
        "loads[1].distance_km",
    ),
    BadRequest(
        "null_field",
        json_body(with_fields(origin_region=None)),
        JSON,
        400,
        "missing_field",
        "loads[0].origin_region",
    ),
    BadRequest(
        "unknown_field",
        json_body(with_fields(colour="red")),
        JSON,
        400,
        "unknown_field",
        "loads[0].colour",
        "'colour'",
    ),
    BadRequest(
        "unknown_equipment",
        json_body(with_fields(equipment_type="frigo")),
        JSON,
        400,
        "unknown_equipment",
        "loads[0].equipment_type",
    ),
    BadRequest(
        "csv_nan",
        csv_body(with_fields(weight_kg="nan")),
        CSV,
        400,
        "not_finite",
        "loads[0].weight_kg",
    ),
    BadRequest(
        "csv_infinity",
        csv_body(VALID_LOAD, with_fields(distance_km="inf")),
        CSV,
        400,
        "not_finite",
        "loads[1].distance_km",
    ),
    BadRequest(
        "negative_weight",
        json_body([VALID_LOAD, with_fields(weight_kg=-5.0)]),
        JSON,
        400,
        "weight_out_of_range",
        "loads[1].weight_kg",
    ),
    BadRequest(
        "naive_timestamp",
        json_body(with_fields(pickup_at="2026-03-04T08:00:00")),
        JSON,
        400,
        "invalid_timestamp",
        "loads[0].pickup_at",
        "no time zone",
    ),
    BadRequest(
        "garbage_timestamp",
        json_body(with_fields(posted_at="next tuesday")),
        JSON,
        400,
        "invalid_timestamp",
        "loads[0].posted_at",
    ),
    BadRequest(
        "bool_timestamp",
        json_body(with_fields(pickup_at=True)),
        JSON,
        400,
        "invalid_timestamp",
        "loads[0].pickup_at",
    ),
    BadRequest(
        "pickup_before_posting",
        json_body(with_fields(pickup_at="2026-03-01T08:00:00+01:00")),
        JSON,
        400,
        "pickup_before_posting",
        "loads[0].pickup_at",
    ),
    BadRequest(
        "unknown_country",
        json_body(with_fields(destination_country="US", destination_region="US-10")),
        JSON,
        400,
        "unknown_country",
        "loads[0].destination_country",
    ),
    BadRequest(
        "not_finite",
        csv_body(with_fields(weight_kg="nan")),
        CSV,
        400,
        "not_finite",
        "loads[0].weight_kg",
    ),
    BadRequest(
        "unknown_equipment",
        json_body(with_fields(equipment_type="frigo")),
        JSON,
        400,
        "unknown_equipment",
        "loads[0].equipment_type",
        "equipment_type='frigo' is not one of tautliner, mega, box, reefer, flatbed, tanker",
    ),
    BadRequest(
        "invalid_region",
        json_body(with_fields(origin_region="DE-XYZ-not-a-postcode")),
        JSON,
        400,
        "invalid_region",
        "loads[0].origin_region",
        "origin_region='DE-XYZ-not-a-postcode' is not a postal region: ",
    ),
    BadRequest(
        "region_without_separator",
        json_body(with_fields(destination_region="IT20")),
        JSON,
        400,
        "invalid_region",
        "loads[0].destination_region",
        "destination_region='IT20' is not a postal region: ",
    ),
    BadRequest(
        "region_country_mismatch",
        json_body(with_fields(origin_region="AT-10")),
        JSON,
        400,
        "region_country_mismatch",
        "loads[0].origin_region",
        "origin_region='AT-10' is not in origin_country='DE'",
    ),
    BadRequest(
        "coordinates_outside_europe",
        json_body(with_fields(origin_lat=10.0)),
        JSON,
        400,
        "invalid_coordinates",
        "loads[0].origin_lat",
        "origin_lat=10 is outside Europe's latitudes [27, 72]",
    ),
    BadRequest(
        "coordinates_outside_country",
        json_body(with_fields(origin_lat=38.72, origin_lon=-9.14)),  # Lisbon, stated as DE
        JSON,
        400,
        "coordinates_outside_country",
        "loads[0].origin_lat",
        "origin_lat=38.72 is outside origin_country='DE' (latitudes [46.77, 55.56]: "
        "the country's extent widened by 0.5 degrees)",
    ),
    BadRequest(
        "destination_outside_its_country",
        json_body(with_fields(destination_lon=2.35)),  # Milan's latitude, Paris's longitude
        JSON,
        400,
        "coordinates_outside_country",
        "loads[0].destination_lon",
        "destination_lon=2.35 is outside destination_country='IT' (longitudes [6.12, 18.99]",
    ),
    BadRequest(
        "origin_equals_destination",
        json_body(
            with_fields(
                destination_country="DE",
                destination_region="DE-80",
                destination_lat=48.14,
                destination_lon=11.58,
            )
        ),
        JSON,
        400,
        "origin_equals_destination",
        "loads[0].destination_lat",
    ),
    BadRequest(
        "distance_out_of_range",
        json_body(with_fields(distance_km=7000.0)),
        JSON,
        400,
        "distance_out_of_range",
        "loads[0].distance_km",
    ),
    BadRequest(
        "distance_shorter_than_straight_line",
        json_body(with_fields(distance_km=100.0)),
        JSON,
        400,
        "distance_shorter_than_straight_line",
        "loads[0].distance_km",
    ),
    BadRequest(
        "loading_meters_out_of_range",
        json_body(with_fields(loading_meters=0.0)),
        JSON,
        400,
        "loading_meters_out_of_range",
        "loads[0].loading_meters",
        "loading_meters=0 is outside (0, 13.6]",
    ),
    BadRequest(
        "weight_out_of_range",
        json_body(with_fields(weight_kg=40_000.0)),
        JSON,
        400,
        "weight_out_of_range",
        "loads[0].weight_kg",
        "weight_kg=40000 is outside [1, 26000]",
    ),
    BadRequest("empty_body", b"", JSON, 400, "empty_body", None),
    BadRequest("blank_body", b" \n\t", CSV, 400, "empty_body", None),
    BadRequest("empty_list", b"[]", JSON, 400, "no_loads", None),
    BadRequest("empty_instances", b'{"instances": []}', JSON, 400, "no_loads", None),
    BadRequest("csv_only_blank_lines", b"\n,,\n", CSV, 400, "no_loads", None),
    BadRequest(
        "unsupported_content_type",
        json_body(VALID_LOAD),
        "application/xml",
        415,
        "unsupported_content_type",
        "Content-Type",
    ),
    BadRequest(
        "missing_content_type",
        json_body(VALID_LOAD),
        "",
        415,
        "unsupported_content_type",
        "Content-Type",
    ),
    BadRequest(
        "csv_wrong_column_count",
        csv_body(VALID_LOAD) + b"DE,DE-80,48.14\n",
        CSV,
        400,
        "malformed_csv",
        None,
        "line 2 has 3 values",
    ),
    BadRequest(
        "csv_not_utf8",
        csv_body(VALID_LOAD).replace(b"DE-80", b"DE-8\xe9"),
        CSV,
        400,
        "malformed_csv",
        None,
        "UTF-8",
    ),
    BadRequest(
        "csv_bad_number",
        csv_body(with_fields(weight_kg="heavy")),
        CSV,
        400,
        "invalid_type",
        "line 1: weight_kg",
    ),
    BadRequest(
        "csv_bad_hazmat",
        csv_body(with_fields(hazmat="maybe")),
        CSV,
        400,
        "invalid_type",
        "line 1: hazmat",
    ),
    BadRequest(
        "csv_naive_timestamp",
        csv_body(with_fields(posted_at="2026-03-02 09:30")),
        CSV,
        400,
        "invalid_timestamp",
        "loads[0].posted_at",
    ),
    BadRequest(
        "csv_double_minus_timestamp",
        csv_body(with_fields(posted_at="--5")),
        CSV,
        400,
        "invalid_timestamp",
        "loads[0].posted_at",
    ),
    BadRequest(
        "huge_epoch_timestamp",
        json_body([with_fields(pickup_at=1e300)] * 32),
        JSON,
        400,
        "invalid_timestamp",
        "loads[0].pickup_at",
        "outside 2000-01-01 to 2100-01-01",
    ),
    BadRequest(
        "epoch_seconds_not_milliseconds",
        json_body(with_fields(pickup_at=1_772_611_200)),
        JSON,
        400,
        "invalid_timestamp",
        "loads[0].pickup_at",
    ),
    # Hostile bodies: each was a 500 or an unbounded message before the parser bounded them.
    BadRequest(
        "json_nested_1000_deep",
        nested(1000),
        JSON,
        400,
        "invalid_type",
        "loads[0]",
        "loads[0] must be an object, got a list of 1 item",
    ),
    BadRequest(
        "json_field_nested_1000_deep",
        with_raw("equipment_type", nested(1000)),
        JSON,
        400,
        "invalid_type",
        "loads[0].equipment_type",
        "equipment_type must be a non-empty string, got a list of 1 item",
    ),
    BadRequest(
        "json_load_id_nested_1000_deep",
        with_raw("load_id", nested(1000)),
        JSON,
        400,
        "invalid_type",
        "loads[0].load_id",
        "load_id must be a string or a number, got a list of 1 item",
    ),
    BadRequest(
        "json_nested_beyond_orjson_limit",
        nested(1025),
        JSON,
        400,
        "malformed_json",
        None,
        "depth limit exceeded",
    ),
    BadRequest(
        "json_object_as_field",
        json_body(with_fields(origin_region={"a": 1, "b": [2]})),
        JSON,
        400,
        "invalid_type",
        "loads[0].origin_region",
        "got an object with 2 keys",
    ),
    BadRequest(
        "json_long_list_as_field",
        with_raw("weight_kg", b"[" + b"1," * 99_999 + b"1]"),
        JSON,
        400,
        "invalid_type",
        "loads[0].weight_kg",
        "weight_kg must be a number, got a list of 100000 items",
    ),
    BadRequest(
        "json_number_beyond_float",
        json_body(VALID_LOAD).replace(b"12000.0", b"1e400"),
        JSON,
        400,
        "not_finite",
        None,
        "is too large for a 64-bit float",
    ),
    BadRequest(
        "json_integer_beyond_float",
        json_body(VALID_LOAD).replace(b"12000.0", b"9" * 400),
        JSON,
        400,
        "not_finite",
        None,
    ),
    BadRequest(
        "json_lone_surrogate",
        json_body(VALID_LOAD).replace(b'"reefer"', b'"reefer\\ud800"'),
        JSON,
        400,
        "malformed_json",
        None,
        "surrogate",
    ),
    BadRequest(
        "json_right_to_left_mark",
        json_body(with_fields(origin_region="DE-80\u200f")),
        JSON,
        400,
        "invalid_region",
        "loads[0].origin_region",
        "origin_region='DE-80\\u200f'",
    ),
    BadRequest(
        "json_long_string",
        json_body(with_fields(origin_region="DE-" + "8" * MAX_FIELD_CHARS)),
        JSON,
        400,
        "value_too_long",
        "loads[0].origin_region",
        f"origin_region has {MAX_FIELD_CHARS + 3} characters; at most {MAX_FIELD_CHARS}",
    ),
    BadRequest(
        "json_long_load_id",
        json_body(with_fields(load_id="L" * 100_000)),
        JSON,
        400,
        "value_too_long",
        "loads[0].load_id",
    ),
    BadRequest(
        "json_bool_load_id",
        json_body(with_fields(load_id=True)),
        JSON,
        400,
        "invalid_type",
        "loads[0].load_id",
        "got bool True",
    ),
    BadRequest(
        "json_long_timestamp",
        json_body(with_fields(pickup_at="next week" * 10_000)),
        JSON,
        400,
        "invalid_timestamp",
        "loads[0].pickup_at",
        "got 'next weeknext weeknext weeknext weeknext'... (90000 characters)",
    ),
    BadRequest(
        "json_many_long_unknown_fields",
        json_body(with_fields(**{f"{index:05}" + "x" * 1000: 1 for index in range(1000)})),
        JSON,
        400,
        "unknown_field",
        "loads[0]." + "00000" + "x" * 35 + "...",
        " and 995 more; a load has posted_at",
    ),
    BadRequest(
        "csv_field_beyond_csv_limit",
        csv_body(with_fields(equipment_type="x" * 140_000)),
        CSV,
        400,
        "line_too_long",
        None,
        f"line 1 has {len(csv_line(VALID_LOAD)) + 140_000 - 6} characters; a load's line has at "
        f"most {MAX_CSV_LINE_CHARS}",
    ),
    BadRequest(
        "csv_long_field",
        csv_body(VALID_LOAD, with_fields(origin_region="DE-" + "8" * MAX_FIELD_CHARS)),
        CSV,
        400,
        "value_too_long",
        "loads[1].origin_region",
    ),
    BadRequest(
        "csv_long_digit_timestamp",
        csv_body(with_fields(pickup_at="9" * 5_000)),  # int() refuses 4,301 digits and more
        CSV,
        400,
        "invalid_timestamp",
        "loads[0].pickup_at",
        "got '9999999999999999999999999999999999999999'... (5000 characters)",
    ),
    BadRequest(
        "csv_nul_byte",
        csv_body(VALID_LOAD, with_fields(equipment_type="ree\0fer")),
        CSV,
        400,
        "malformed_csv",
        None,
        "line 2 holds a NUL byte",
    ),
    BadRequest(
        "csv_stray_quote",
        csv_body(VALID_LOAD).replace(b"DE-80", b'"DE"-80'),
        CSV,
        400,
        "malformed_csv",
        None,
        "line 1: ',' expected after '\"'",
    ),
    BadRequest(
        "csv_quote_across_lines",
        (
            csv_line(VALID_LOAD).replace("reefer", '"reefer')
            + "\n"
            + csv_line(VALID_LOAD).replace("reefer", 'reefer"')
            + "\n"
        ).encode(),
        CSV,
        400,
        "malformed_csv",
        None,
        "line 1 has a quoted value that runs past the end of the line",
    ),
    BadRequest(
        "csv_quote_never_closed",
        csv_body(VALID_LOAD, VALID_LOAD).replace(b"reefer", b'"reefer', 1),
        CSV,
        400,
        "malformed_csv",
        None,
        "line 1: unexpected end of data",
    ),
    BadRequest(
        "csv_unclosed_quote_on_the_last_line",
        csv_body(VALID_LOAD).rstrip(b"\n") + b',"',
        CSV,
        400,
        "malformed_csv",
        None,
        "line 1: unexpected end of data",
    ),
    BadRequest(
        "csv_not_utf8_on_a_later_line",
        csv_body(VALID_LOAD).replace(b"\n", b"\r\n")
        + csv_body(VALID_LOAD).replace(b"DE-80", b"DE-\xff0"),
        CSV,
        400,
        "malformed_csv",
        None,
        "line 2: the body is not UTF-8",
    ),
    BadRequest(
        "csv_bare_cr_wrong_column_count",
        csv_body(VALID_LOAD).replace(b"\n", b"\r") + b"DE,DE-80\r",
        CSV,
        400,
        "malformed_csv",
        None,
        "line 2 has 2 values",
    ),
)


def parse(body: bytes, content_type: str | None = JSON) -> ParsedRequest:
    return parse_request(body, content_type, NOW_MS)


# -- good requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [VALID_LOAD, [VALID_LOAD], {"instances": [VALID_LOAD]}],
    ids=["object", "list", "instances"],
)
def test_json_body_shapes_parse_to_the_same_load(document: Any) -> None:
    parsed = parse(json_body(document))
    assert parsed.loads == [PARSED_LOAD]
    assert parsed.load_ids == [None]


def test_json_list_keeps_order_and_echoes_load_ids() -> None:
    second = with_fields(weight_kg=800.0, load_id="L-2", shipper_id="S00042")
    parsed = parse(json_body([with_fields(load_id=17), second, VALID_LOAD]))
    assert parsed.load_ids == ["17", "L-2", None]
    assert [load["weight_kg"] for load in parsed.loads] == [12000.0, 800.0, 12000.0]
    # Pass-through fields are not model inputs.
    assert all(set(load) == set(REQUEST_FIELDS) for load in parsed.loads)


def test_values_are_normalised() -> None:
    parsed = parse(
        json_body(with_fields(weight_kg=12000, origin_region=" DE-80 ", posted_at=POSTED_MS + 0.9))
    )
    load = parsed.loads[0]
    assert load["weight_kg"] == 12000.0
    assert isinstance(load["weight_kg"], float)
    assert load["origin_region"] == "DE-80"
    assert load["posted_at"] == POSTED_MS


@pytest.mark.parametrize(
    ("pickup_at", "expected_ms"),
    [
        ("2026-03-04T08:00:00Z", PICKUP_MS),
        ("2026-03-04T09:00:00+01:00", PICKUP_MS),
        ("2026-03-04T08:00:00.250+00:00", PICKUP_MS + 250),
        (PICKUP_MS, PICKUP_MS),
    ],
)
def test_timestamps_as_iso_or_epoch_ms(pickup_at: Any, expected_ms: int) -> None:
    assert parse(json_body(with_fields(pickup_at=pickup_at))).loads[0]["pickup_at"] == expected_ms


@pytest.mark.parametrize("posted_at", [None, "", "  "])
def test_missing_posted_at_defaults_to_now(posted_at: str | None) -> None:
    load = without_field("posted_at") if posted_at is None else with_fields(posted_at=posted_at)
    assert parse(json_body(load)).loads[0]["posted_at"] == NOW_MS


def test_csv_rows_parse_like_json() -> None:
    second = with_fields(weight_kg=800.0, hazmat=True)
    parsed = parse(csv_body(VALID_LOAD, second), CSV)
    assert parsed.loads == [PARSED_LOAD, {**PARSED_LOAD, "weight_kg": 800.0, "hazmat": True}]
    assert parsed.load_ids == [None, None]


def test_csv_columns_are_the_request_fields_in_order() -> None:
    assert CSV_COLUMNS == REQUEST_FIELDS
    assert CSV_COLUMNS[:2] == ("posted_at", "pickup_at")


def test_csv_epoch_ms_timestamps_and_empty_posted_at() -> None:
    load = with_fields(posted_at="", pickup_at=PICKUP_MS)
    parsed = parse(csv_body(load), CSV)
    assert parsed.loads[0]["posted_at"] == NOW_MS
    assert parsed.loads[0]["pickup_at"] == PICKUP_MS


def test_csv_skips_blank_lines_and_accepts_quoted_cells() -> None:
    line = csv_line(VALID_LOAD).replace("DE-80", '"DE-80"')
    parsed = parse(f"\n{line}\r\n\n".encode(), CSV)
    assert parsed.loads == [PARSED_LOAD]


@pytest.mark.parametrize(
    "ending",
    ["\n", "\r\n", "\r", "mixed"],
    ids=["lf", "crlf", "lone_cr", "mixed"],
)
def test_csv_lines_end_with_lf_crlf_or_a_lone_cr(ending: str) -> None:
    endings = ["\r", "\r\n", "\n"] if ending == "mixed" else [ending] * 3
    second = with_fields(weight_kg=800.0)
    lines = [csv_line(VALID_LOAD), "", csv_line(second)]
    body = "".join(line + end for line, end in zip(lines, endings, strict=True)).encode()
    parsed = parse(body, CSV)
    assert parsed.loads == [PARSED_LOAD, {**PARSED_LOAD, "weight_kg": 800.0}]


def test_csv_error_line_numbers_count_lone_cr_as_a_line_break() -> None:
    body = (csv_line(VALID_LOAD) + "\r\r" + csv_line(with_fields(hazmat="maybe"))).encode()
    with pytest.raises(RequestError) as caught:
        parse(body, CSV)
    assert caught.value.field == "line 3: hazmat"


def test_json_duplicate_keys_keep_the_last_value() -> None:
    # RFC 8259 leaves duplicates to the parser; orjson, JSON.parse and Python's json keep the last.
    body = json_body(VALID_LOAD).replace(
        b'"weight_kg":12000.0', b'"weight_kg":1.0,"weight_kg":800.0'
    )
    assert parse(body).loads == [{**PARSED_LOAD, "weight_kg": 800.0}]


@pytest.mark.parametrize(
    ("load_id", "echoed"),
    [
        ("L-\u200f1\u202e", "L-\u200f1\u202e"),  # right-to-left marks are a client's business
        ("\U0001f69a", "\U0001f69a"),
        ("", ""),
        (1.5, "1.5"),
        (2**64 - 1, str(2**64 - 1)),
        ("L" * MAX_FIELD_CHARS, "L" * MAX_FIELD_CHARS),
    ],
)
def test_load_ids_are_echoed_as_strings(load_id: Any, echoed: str) -> None:
    assert parse(json_body(with_fields(load_id=load_id))).load_ids == [echoed]


def test_escaped_surrogate_pairs_are_characters() -> None:
    body = json_body(with_fields(load_id="x")).replace(b'"x"', b'"\\ud83d\\ude9a"')
    assert parse(body).load_ids == ["\U0001f69a"]


def test_shipper_id_is_ignored_whatever_it_holds() -> None:
    body = with_raw("shipper_id", nested(1000))
    assert parse(body).loads == [PARSED_LOAD]


class Unprintable(list[int]):
    """A list that fails the test if an error message formats it."""

    def __repr__(self) -> str:
        raise AssertionError("the error message called repr on the value")


class UnprintableMapping(dict[str, int]):
    def __repr__(self) -> str:
        raise AssertionError("the error message called repr on the value")


def deep_python_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "described"),
    [
        (Unprintable(range(1_500_000)), "a list of 1500000 items"),
        (UnprintableMapping(a=1, b=2, c=3), "an object with 3 keys"),
        (deep_python_list(100_000), "a list of 1 item"),
        (2**100_000, "an integer of 100001 bits"),
        (1.5, "float 1.5"),
        (False, "bool False"),
    ],
    ids=["long_list", "object", "deep_list", "huge_int", "float", "bool"],
)
def test_error_messages_describe_values_without_walking_them(value: Any, described: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_load(with_fields(equipment_type=value), 0, NOW_MS)
    assert caught.value.message == f"equipment_type must be a non-empty string, got {described}"


def test_error_messages_cut_long_strings_before_formatting_them() -> None:
    with pytest.raises(RequestError) as caught:
        parse_load(with_fields(weight_kg="x" * 1_000_000), 0, NOW_MS)
    assert caught.value.message == (
        "weight_kg must be a number, got str 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... "
        "(1000000 characters)"
    )


@pytest.mark.parametrize(
    ("name", "code"), [("weight_kg", "not_finite"), ("pickup_at", "invalid_timestamp")]
)
def test_an_integer_beyond_a_float_is_refused(name: str, code: str) -> None:
    # orjson stops at 64 bits; parse_load's Python callers may pass any int.
    with pytest.raises(RequestError) as caught:
        parse_load(with_fields(**{name: 2**100_000}), 0, NOW_MS)
    assert (caught.value.code, caught.value.field) == (code, f"loads[0].{name}")
    assert len(caught.value.message) < 200


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[case.name for case in BAD_REQUESTS])
def test_error_messages_are_short_whatever_the_body(case: BadRequest) -> None:
    with pytest.raises(RequestError) as caught:
        parse(case.body, case.content_type)
    assert len(caught.value.message) < 1_000
    assert len(caught.value.field or "") < 100


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), ("TRUE", True)],
)
def test_csv_hazmat_values(cell: str, expected: bool) -> None:
    parsed = parse(csv_body(with_fields(hazmat=cell)), CSV)
    assert parsed.loads[0]["hazmat"] is expected


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ;charset=UTF-8",
    ],
)
def test_json_content_type_with_parameters(content_type: str) -> None:
    assert parse(json_body(VALID_LOAD), content_type).loads == [PARSED_LOAD]


def test_csv_content_type_with_charset() -> None:
    assert parse(csv_body(VALID_LOAD), "text/csv; charset=utf-8").loads == [PARSED_LOAD]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ""),
        ("", ""),
        ("text/csv", "text/csv"),
        ("text/csv; charset=utf-8", "text/csv"),
        (" Application/JSON ", "application/json"),
    ],
)
def test_media_type(header: str | None, expected: str) -> None:
    assert media_type(header) == expected


# -- bad requests -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[case.name for case in BAD_REQUESTS])
def test_bad_request_is_a_request_error_naming_the_field(case: BadRequest) -> None:
    with pytest.raises(RequestError) as caught:
        parse(case.body, case.content_type)
    error = caught.value
    assert (error.status, error.code, error.field) == (case.status, case.code, case.field)
    assert case.message_contains in error.message
    body = error.to_json()["error"]
    assert body["code"] == case.code
    assert body["message"] == error.message
    assert body.get("field") == case.field


def test_every_request_reason_has_a_bad_request_case() -> None:
    # A reason added to the request rules without a case above fails here.
    assert {case.code for case in BAD_REQUESTS} >= REQUEST_REASONS


def test_request_error_json_leaves_out_an_absent_field() -> None:
    assert RequestError(400, "empty_body", "empty").to_json() == {
        "error": {"code": "empty_body", "message": "empty"}
    }


def test_the_first_bad_load_is_reported() -> None:
    body = json_body([VALID_LOAD, with_fields(weight_kg=-1.0), with_fields(hazmat="no")])
    with pytest.raises(RequestError) as caught:
        parse(body)
    assert caught.value.field == "loads[1].weight_kg"


# -- the server's rules are the batch's rules ----------------------------------------------------

CROSS_CHECK_STRIDE = 8


def request_dicts(table: pa.Table) -> list[dict[str, Any] | None]:
    """Each row as a request dict (timestamps as epoch ms), or None if a request field is null."""
    columns: dict[str, list[Any]] = {}
    for name in REQUEST_FIELDS:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        columns[name] = column.to_pylist()
    rows: list[dict[str, Any] | None] = []
    for index in range(table.num_rows):
        row = {name: columns[name][index] for name in REQUEST_FIELDS}
        rows.append(None if any(value is None for value in row.values()) else row)
    return rows


def batch_verdicts(table: pa.Table) -> tuple[list[str | None], list[str | None]]:
    """The quarantine reason and detail of each row of ``table`` in processing.validation."""
    result = validate(table)
    reasons: list[str | None] = [None] * table.num_rows
    details: list[str | None] = [None] * table.num_rows
    quarantined = np.flatnonzero(~result.valid_mask)
    for row, reason, detail in zip(
        quarantined,
        result.quarantine.column(QUARANTINE_REASON).to_pylist(),
        result.quarantine.column(QUARANTINE_DETAIL).to_pylist(),
        strict=True,
    ):
        reasons[int(row)], details[int(row)] = reason, detail
    return reasons, details


def test_request_check_agrees_with_batch_validation(small_loads: pa.Table) -> None:
    reasons, details = batch_verdicts(small_loads)
    # Every eighth row (3,000 rows) and every quarantined row, so each dirty kind is there.
    rows = sorted(
        set(range(0, small_loads.num_rows, CROSS_CHECK_STRIDE))
        | {row for row, reason in enumerate(reasons) if reason is not None}
    )
    requests = request_dicts(small_loads.take(pa.array(rows)))
    compared: dict[str | None, int] = {}
    disagreements = []
    for row, request in zip(rows, requests, strict=True):
        reason = reasons[row]
        if request is None or reason == "missing_field":
            continue
        expected = reason if reason in REQUEST_REASONS else None
        assert reason is None or reason in REQUEST_REASONS | LATE_REASONS
        problem = check_request(request)
        got = None if problem is None else problem.reason
        # The server's parser on the same load must reach the same verdict.
        try:
            parse_load(request, 0, NOW_MS)
            parsed = None
        except RequestError as error:
            parsed = error.code
        if (got, parsed) != (expected, expected):
            disagreements.append((row, reason, got, parsed))
        elif problem is not None and problem.message != details[row]:
            # The client reads the words of the quarantine detail for the same load.
            disagreements.append((row, reason, problem.message, details[row]))
        compared[reason] = compared.get(reason, 0) + 1
    assert disagreements == []
    assert compared.get(None, 0) > 2_500
    # The dirty rows of the fixture: every request-level kind the generator makes was compared.
    assert {
        "weight_out_of_range",
        "loading_meters_out_of_range",
        "unknown_equipment",
        "origin_equals_destination",
        "pickup_before_posting",
    } <= set(compared)
