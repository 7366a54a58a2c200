"""Tests of load validation: every quarantine reason, precedence, duplicates and invariants."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest

from processing.geography import country_boxes
from processing.regions import region_country
from processing.request_check import check_request
from processing.rules import REASONS, RULES, Bounds
from processing.schema import (
    DICTIONARY_FIELDS,
    EUROPEAN_COUNTRIES,
    FIELD_NAMES,
    LATITUDE_RANGE,
    LOAD_SCHEMA,
    LONGITUDE_RANGE,
    QUARANTINE_DETAIL,
    QUARANTINE_REASON,
    QUARANTINE_SCHEMA,
    REQUEST_FIELDS,
    conform,
)
from processing.validation import ValidationResult, validate

Row = dict[str, object]

POSTED_AT = dt.datetime(2025, 11, 3, 9, 0, tzinfo=dt.UTC)
# (country, region, lat, lon) of each end and the road distance in km of a few real lanes.
LANES: tuple[tuple[tuple[str, str, float, float], tuple[str, str, float, float], float], ...] = (
    (("DE", "DE-10", 52.5200, 13.4050), ("DE", "DE-80", 48.1351, 11.5820), 585.0),
    (("FR", "FR-75", 48.8566, 2.3522), ("ES", "ES-08", 41.3874, 2.1686), 1035.0),
    (("PL", "PL-00", 52.2297, 21.0122), ("NL", "NL-10", 52.3676, 4.9041), 1200.0),
)
EQUIPMENT = ("tautliner", "reefer", "mega", "box")
# Row that the single-corruption tests damage; not the first, so a duplicate can point back.
CORRUPTED = 3
ROWS = 7
# The contract with plain strings instead of dictionary-encoded columns, as a raw feed sends it.
PLAIN_SCHEMA = pa.schema(
    [
        pa.field(field.name, pa.string()) if field.name in DICTIONARY_FIELDS else field
        for field in LOAD_SCHEMA
    ]
)


def load_id(index: int) -> str:
    return f"L20251103-{index:07d}"


def shipper_id(index: int) -> str:
    # Unique per row, so a row can be recognised after its load_id has been corrupted.
    return f"S{index:05d}"


def valid_load(index: int) -> Row:
    """A load that passes every check; rows differ in lane, size, timing and price."""
    origin, destination, distance_km = LANES[index % len(LANES)]
    return {
        "load_id": load_id(index),
        "shipper_id": shipper_id(index),
        "posted_at": POSTED_AT + dt.timedelta(minutes=7 * index),
        "pickup_at": POSTED_AT + dt.timedelta(hours=20 + index),
        "origin_country": origin[0],
        "origin_region": origin[1],
        "origin_lat": origin[2],
        "origin_lon": origin[3],
        "destination_country": destination[0],
        "destination_region": destination[1],
        "destination_lat": destination[2],
        "destination_lon": destination[3],
        "distance_km": distance_km,
        "weight_kg": 2_000.0 + 500.0 * (index % 40),
        "loading_meters": 13.6 if index % 2 else 4.8,
        "equipment_type": EQUIPMENT[index % len(EQUIPMENT)],
        "hazmat": index % 5 == 0,
        "price_eur": round(1.9 * distance_km, 0),
    }


def valid_loads(n: int) -> list[Row]:
    return [valid_load(index) for index in range(n)]


def plain_table(rows: list[Row]) -> pa.Table:
    """Rows as a table with plain string columns (what a JSON or CSV feed gives)."""
    return pa.Table.from_pylist(rows, schema=PLAIN_SCHEMA)


def loads_table(rows: list[Row]) -> pa.Table:
    """Rows as a table in the contract schema, with dictionary-encoded columns."""
    return conform(plain_table(rows))


def column(table: pa.Table, name: str) -> list[object]:
    values: list[object] = table.column(name).to_pylist()
    return values


@dataclass(frozen=True)
class Corruption:
    """One way to damage a valid row, the reason it must get, and what the detail must name."""

    reason: str
    name: str
    corrupt: Callable[[Row], None]
    detail_fragments: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.reason}-{self.name}"


def setter(**values: object) -> Callable[[Row], None]:
    def corrupt(row: Row) -> None:
        row.update(values)

    return corrupt


def pickup_an_hour_before_posting(row: Row) -> None:
    posted = row["posted_at"]
    assert isinstance(posted, dt.datetime)
    row["pickup_at"] = posted - dt.timedelta(hours=1)


def same_place_as_origin(row: Row) -> None:
    row["destination_country"] = row["origin_country"]
    row["destination_region"] = row["origin_region"]
    row["destination_lat"] = row["origin_lat"]
    origin_lon = row["origin_lon"]
    assert isinstance(origin_lon, float)
    row["destination_lon"] = origin_lon + 0.005  # about 350 m east


CORRUPTED_ROW = valid_load(CORRUPTED)  # lane Berlin -> Munich, 585 km, great circle 504 km
CORRUPTIONS: tuple[Corruption, ...] = (
    Corruption("missing_field", "weight", setter(weight_kg=None), ("weight_kg missing",)),
    Corruption("missing_field", "region", setter(origin_region=None), ("origin_region missing",)),
    Corruption("missing_field", "hazmat", setter(hazmat=None), ("hazmat missing",)),
    Corruption(
        "not_finite", "price", setter(price_eur=math.nan), ("price_eur=nan is not a finite number",)
    ),
    Corruption(
        "not_finite",
        "distance",
        setter(distance_km=math.inf),
        ("distance_km=inf is not a finite number",),
    ),
    Corruption("unknown_equipment", "typo", setter(equipment_type="frigo"), ("'frigo'",)),
    Corruption("unknown_equipment", "case", setter(equipment_type="Tautliner "), ("'Tautliner '",)),
    Corruption(
        "unknown_country",
        "outside_europe",
        setter(destination_country="US", destination_region="US-80"),
        ("destination_country='US'",),
    ),
    Corruption(
        "invalid_region",
        "not_a_postcode",
        setter(origin_region="DE-XYZ-not-a-postcode"),
        ("origin_region='DE-XYZ-not-a-postcode' is not a postal region: ",),
    ),
    Corruption(
        "invalid_region",
        "no_separator",
        setter(destination_region="DE80"),
        ("destination_region='DE80' is not a postal region: ",),
    ),
    Corruption(
        "invalid_region",
        "three_digits",
        setter(destination_region="DE-803"),
        ("destination_region='DE-803' is not a postal region: ",),
    ),
    Corruption(
        "invalid_region",
        "unserved_country",
        setter(origin_region="US-80"),
        ("origin_region='US-80' is not a postal region: ",),
    ),
    Corruption(
        "region_country_mismatch",
        "other_country",
        setter(origin_region="IT-20"),  # no lane starts in Italy, so every row breaks it
        ("origin_region='IT-20' is not in origin_country='DE'",),
    ),
    Corruption(
        "region_country_mismatch",
        "british_area_in_germany",
        setter(destination_region="GB-M"),
        ("destination_region='GB-M' is not in destination_country='DE'",),
    ),
    Corruption(
        "invalid_coordinates",
        "latitude",
        setter(origin_lat=12.5),
        ("origin_lat=12.5 is outside Europe's latitudes [27, 72]",),
    ),
    Corruption(
        "invalid_coordinates",
        "longitude",
        setter(destination_lon=60.0),
        ("destination_lon=60 is outside Europe's longitudes [-25, 45]",),
    ),
    Corruption(
        "coordinates_outside_country",
        "german_origin_in_lisbon",
        setter(origin_lat=38.72, origin_lon=-9.14),
        (
            "origin_lat=38.72 is outside origin_country='DE' (latitudes [46.77, 55.56]: "
            "the country's extent widened by 0.5 degrees)",
        ),
    ),
    Corruption(
        "coordinates_outside_country",
        "german_destination_in_slovakia",
        setter(destination_lon=20.0),
        ("destination_lon=20 is outside destination_country='DE' (longitudes [5.35, 15.52]",),
    ),
    Corruption(
        "origin_equals_destination",
        "same_city",
        same_place_as_origin,
        ("origin and destination are within 1 km of each other ('DE-10' -> 'DE-10')",),
    ),
    Corruption(
        "distance_out_of_range",
        "too_long",
        setter(distance_km=7_000.0),
        ("distance_km=7000 is outside [1, 6000]",),
    ),
    Corruption(
        "distance_out_of_range",
        "zero",
        setter(distance_km=0.0),
        ("distance_km=0 is outside [1, 6000]",),
    ),
    Corruption(
        "distance_shorter_than_straight_line",
        "short",
        setter(distance_km=300.0),
        ("distance_km=300 is shorter than the straight line of 504",),
    ),
    Corruption(
        "weight_out_of_range",
        "heavy",
        setter(weight_kg=40_000.0),
        ("weight_kg=40000 is outside [1, 26000]",),
    ),
    Corruption(
        "weight_out_of_range",
        "negative",
        setter(weight_kg=-2_500.0),
        ("weight_kg=-2500 is outside [1, 26000]",),
    ),
    Corruption(
        "loading_meters_out_of_range",
        "longer_than_trailer",
        setter(loading_meters=23.6),
        ("loading_meters=23.6 is outside (0, 13.6]",),
    ),
    Corruption(
        "loading_meters_out_of_range",
        "zero",
        setter(loading_meters=0.0),
        ("loading_meters=0 is outside (0, 13.6]",),
    ),
    Corruption(
        "pickup_before_posting",
        "an_hour_early",
        pickup_an_hour_before_posting,
        ("pickup_at=2025-11-03T08:21:00+00:00 is before posted_at=2025-11-03T09:21:00+00:00",),
    ),
    Corruption(
        "non_positive_price", "zero", setter(price_eur=0.0), ("price_eur=0 must be positive",)
    ),
    Corruption(
        "non_positive_price",
        "negative",
        setter(price_eur=-1_110.0),
        ("price_eur=-1110 must be positive",),
    ),
    Corruption(
        "price_out_of_range",
        "hundredfold",
        setter(price_eur=111_100.0),
        ("price_eur=111100 exceeds", "distance_km=585"),
    ),
    Corruption(
        "duplicate_load_id",
        "repeats_first_row",
        setter(load_id=load_id(0)),
        (f"load_id='{load_id(0)}' already seen",),
    ),
)


def corrupted_batch(corruption: Corruption) -> list[Row]:
    rows = valid_loads(ROWS)
    corruption.corrupt(rows[CORRUPTED])
    return rows


def assert_nothing_dropped(result: ValidationResult, rows: int) -> None:
    assert result.valid.num_rows + result.quarantine.num_rows == rows
    assert result.total == rows
    assert sum(result.reason_counts.values()) == result.quarantine.num_rows


def test_valid_loads_pass_every_check() -> None:
    result = validate(loads_table(valid_loads(ROWS)))

    assert result.valid.num_rows == ROWS
    assert result.quarantine.num_rows == 0
    assert result.reason_counts == dict.fromkeys(REASONS, 0)


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=str)
def test_each_reason_quarantines_exactly_the_corrupted_row(corruption: Corruption) -> None:
    result = validate(loads_table(corrupted_batch(corruption)))

    quarantine = result.quarantine
    assert column(quarantine, "shipper_id") == [shipper_id(CORRUPTED)]
    assert column(quarantine, QUARANTINE_REASON) == [corruption.reason]
    [detail] = column(quarantine, QUARANTINE_DETAIL)
    assert isinstance(detail, str)
    for fragment in corruption.detail_fragments:
        assert fragment in detail
    assert column(result.valid, "shipper_id") == [
        shipper_id(index) for index in range(ROWS) if index != CORRUPTED
    ]
    assert result.reason_counts == {reason: int(reason == corruption.reason) for reason in REASONS}
    assert_nothing_dropped(result, ROWS)


def test_every_reason_has_a_corruption_case() -> None:
    # A reason added to REASONS without a case above fails here.
    assert {corruption.reason for corruption in CORRUPTIONS} == set(REASONS)


# Reasons about what a price request does not carry: nulls (the parser refuses them first), the
# price and the load id.
BATCH_ONLY_REASONS = frozenset(
    {"missing_field", "non_positive_price", "price_out_of_range", "duplicate_load_id"}
)
# Corruptions a price request can carry too: all but those of batch-only reasons and the
# non-finite price.
REQUEST_CASES = tuple(
    corruption
    for corruption in CORRUPTIONS
    if corruption.reason not in BATCH_ONLY_REASONS and str(corruption) != "not_finite-price"
)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def request_of(row: Row) -> dict[str, object]:
    """The price request of a row, as the endpoint's parser hands it on: timestamps in epoch ms."""
    request = {name: row[name] for name in REQUEST_FIELDS}
    for name in ("posted_at", "pickup_at"):
        moment = request[name]
        assert isinstance(moment, dt.datetime)
        request[name] = (moment - EPOCH) // dt.timedelta(milliseconds=1)
    return request


def test_valid_loads_pass_the_request_check() -> None:
    assert [check_request(request_of(row)) for row in valid_loads(ROWS)] == [None] * ROWS


@pytest.mark.parametrize("corruption", REQUEST_CASES, ids=str)
def test_request_check_gives_the_batch_reason_and_detail(corruption: Corruption) -> None:
    rows = corrupted_batch(corruption)
    [detail] = column(validate(loads_table(rows)).quarantine, QUARANTINE_DETAIL)

    problem = check_request(request_of(rows[CORRUPTED]))

    assert problem is not None
    assert (problem.reason, problem.message) == (corruption.reason, detail)
    # The field at fault is named in the message, so a client knows what to fix.
    assert problem.message.startswith(problem.field) or problem.field == "destination_lat"


def test_every_request_reason_has_a_request_case() -> None:
    assert {corruption.reason for corruption in REQUEST_CASES} == set(REASONS) - BATCH_ONLY_REASONS


def test_rules_of_one_reason_are_adjacent_in_the_order_of_reasons() -> None:
    # A row's reason is the first that applies and its detail the first of that reason's rules
    # it breaks; the request check takes the first rule it breaks. Both agree only like this.
    runs = [
        rule.reason
        for index, rule in enumerate(RULES)
        if index == 0 or RULES[index - 1].reason != rule.reason
    ]
    assert runs == list(REASONS)


def test_loading_metres_allow_a_full_trailer_but_not_nothing() -> None:
    [rule] = [rule for rule in RULES if rule.reason == "loading_meters_out_of_range"]

    assert str(rule.bounds) == "(0, 13.6]"
    assert rule.bounds.contains(13.6)
    assert rule.bounds.contains(0.1)
    assert not rule.bounds.contains(0.0)
    assert not rule.bounds.contains(13.7)
    assert not rule.bounds.contains(math.nan)


def test_bounds_text_says_which_ends_are_inclusive() -> None:
    assert str(Bounds(1.0, 6_000.0)) == "[1, 6000]"
    assert str(Bounds(0.0, 1.0, low_inclusive=False, high_inclusive=False)) == "(0, 1)"
    assert str(Bounds(0.95)) == "[0.95, inf]"
    np.testing.assert_array_equal(
        Bounds(0.0, 1.0, high_inclusive=False).contains_all(np.array([-0.1, 0.0, 0.5, 1.0])),
        [False, True, True, False],
    )


def test_country_bounds_cover_every_served_country_within_europe() -> None:
    boxes = country_boxes()

    assert set(boxes) == EUROPEAN_COUNTRIES
    for country, box in boxes.items():
        assert LATITUDE_RANGE[0] <= box.min_lat < box.max_lat <= LATITUDE_RANGE[1], country
        assert LONGITUDE_RANGE[0] <= box.min_lon < box.max_lon <= LONGITUDE_RANGE[1], country


@pytest.mark.parametrize(
    ("region", "country"),
    [
        ("DE-80", "DE"),
        ("FR-75", "FR"),
        ("PT-10", "PT"),
        ("GB-M", "GB"),  # British regions are postcode areas
        ("GB-LS", "GB"),
        ("IE-D01", "IE"),  # Irish regions are Eircode routing keys
        ("IE-D6W", "IE"),
        ("DE-XYZ-not-a-postcode", None),
        ("DE-8", None),
        ("DE-803", None),
        ("DE80", None),
        ("DE-", None),
        ("de-80", None),
        ("DE-8O", None),  # a letter O, not a zero
        ("GB-12", None),
        ("GB-ABC", None),
        ("IE-01", None),
        ("US-80", None),  # not a served country
        ("", None),
    ],
)
def test_region_country(region: str, country: str | None) -> None:
    assert region_country(region) == country


def test_first_failing_reason_wins() -> None:
    rows = valid_loads(ROWS)
    rows[CORRUPTED].update(weight_kg=None, price_eur=-500.0, equipment_type="frigo")

    result = validate(loads_table(rows))

    assert column(result.quarantine, QUARANTINE_REASON) == ["missing_field"]
    assert column(result.quarantine, QUARANTINE_DETAIL) == ["weight_kg missing"]
    assert result.reason_counts["non_positive_price"] == 0
    assert result.reason_counts["unknown_equipment"] == 0


def test_missing_field_detail_lists_every_missing_field_in_contract_order() -> None:
    rows = valid_loads(ROWS)
    rows[CORRUPTED].update(price_eur=None, shipper_id=None, pickup_at=None)

    result = validate(loads_table(rows))

    assert column(result.quarantine, QUARANTINE_DETAIL) == [
        "shipper_id, pickup_at, price_eur missing"
    ]


# The straight-line distance is computed for every row, so NumPy warns about infinite
# coordinates before the not_finite reason takes the row out; the result is what matters here.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_eur", math.nan),
        ("distance_km", math.inf),
        ("origin_lat", -math.inf),
        ("destination_lon", math.nan),
        ("weight_kg", math.inf),
        ("loading_meters", math.nan),
    ],
)
def test_nan_and_infinity_are_not_finite(field: str, value: float) -> None:
    rows = valid_loads(ROWS)
    rows[CORRUPTED][field] = value

    result = validate(loads_table(rows))

    assert column(result.quarantine, QUARANTINE_REASON) == ["not_finite"]
    assert column(result.quarantine, QUARANTINE_DETAIL) == [
        f"{field}={value} is not a finite number"
    ]
    assert result.valid.num_rows == ROWS - 1


def test_duplicates_keep_the_first_occurrence_in_input_order() -> None:
    # Input order differs from sorted order, so a sort that is not stable would keep a later row.
    ids = ["L-B", "L-A", "L-B", "L-C", "L-A", "L-B"]
    rows = valid_loads(len(ids))
    for row, duplicate_id in zip(rows, ids, strict=True):
        row["load_id"] = duplicate_id

    result = validate(loads_table(rows))

    assert column(result.valid, "shipper_id") == [shipper_id(0), shipper_id(1), shipper_id(3)]
    assert column(result.valid, "load_id") == ["L-B", "L-A", "L-C"]
    assert column(result.quarantine, "shipper_id") == [shipper_id(2), shipper_id(4), shipper_id(5)]
    assert column(result.quarantine, QUARANTINE_REASON) == ["duplicate_load_id"] * 3
    assert column(result.quarantine, QUARANTINE_DETAIL) == [
        f"load_id={duplicate_id!r} already seen earlier in the batch"
        for duplicate_id in ("L-B", "L-A", "L-B")
    ]
    assert result.reason_counts["duplicate_load_id"] == 3


def test_duplicates_across_chunks_match_a_first_seen_reference() -> None:
    rng = np.random.default_rng(20251103)
    ids = [f"L{number:03d}" for number in rng.integers(0, 200, size=1_200)]
    rows = [valid_load(index) | {"load_id": id_} for index, id_ in enumerate(ids)]
    table = loads_table(rows)
    chunked = pa.concat_tables([table.slice(0, 500), table.slice(500, 400), table.slice(900)])
    seen: set[str] = set()
    expected_repeat = []
    for id_ in ids:
        expected_repeat.append(id_ in seen)
        seen.add(id_)

    result = validate(chunked)

    assert result.valid.column("load_id").to_pylist() == [
        id_ for id_, repeat in zip(ids, expected_repeat, strict=True) if not repeat
    ]
    assert result.reason_counts["duplicate_load_id"] == sum(expected_repeat)
    assert_nothing_dropped(result, len(ids))


def mixed_batch() -> list[Row]:
    """One corrupted row per corruption case, with clean rows around them (row 0 stays clean)."""
    rows = valid_loads(2 * len(CORRUPTIONS) + 1)
    for position, corruption in enumerate(CORRUPTIONS):
        corruption.corrupt(rows[2 * position + 1])
    return rows


def assert_tables_equal(left: pa.Table, right: pa.Table) -> None:
    """Equal schemas and values, with NaN equal to NaN (Arrow's ``equals`` says NaN != NaN)."""
    assert left.schema.equals(right.schema, check_metadata=True)
    for name in left.column_names:
        left_column, right_column = left.column(name), right.column(name)
        assert left_column.is_null().equals(right_column.is_null()), name
        if pa.types.is_floating(left.schema.field(name).type):
            np.testing.assert_array_equal(
                left_column.to_numpy(), right_column.to_numpy(), err_msg=name
            )
        else:
            assert left_column.to_pylist() == right_column.to_pylist(), name


def assert_same_result(left: ValidationResult, right: ValidationResult) -> None:
    assert_tables_equal(left.valid, right.valid)
    assert_tables_equal(left.quarantine, right.quarantine)
    assert left.reason_counts == right.reason_counts


def test_mixed_batch_quarantines_each_corruption_with_its_reason() -> None:
    rows = mixed_batch()

    result = validate(loads_table(rows))

    assert column(result.quarantine, QUARANTINE_REASON) == [c.reason for c in CORRUPTIONS]
    assert column(result.quarantine, "shipper_id") == [
        shipper_id(2 * position + 1) for position in range(len(CORRUPTIONS))
    ]
    assert result.valid.num_rows == len(CORRUPTIONS) + 1
    assert_nothing_dropped(result, len(rows))


def test_plain_string_and_dictionary_columns_give_the_same_result() -> None:
    rows = mixed_batch()
    plain = plain_table(rows)
    assert not any(pa.types.is_dictionary(field.type) for field in plain.schema)

    assert_same_result(validate(plain), validate(loads_table(rows)))


def test_threaded_checks_give_the_same_result() -> None:
    table = loads_table(mixed_batch())

    with ThreadPoolExecutor(max_workers=4) as executor:
        threaded = validate(table, executor)

    assert_same_result(threaded, validate(table))


def test_result_schemas_are_the_contract() -> None:
    result = validate(loads_table(mixed_batch()))

    assert result.valid.schema.equals(LOAD_SCHEMA, check_metadata=True)
    assert result.quarantine.schema.equals(QUARANTINE_SCHEMA)


@pytest.mark.parametrize("missing", ["distance_km", "load_id", "hazmat"])
def test_input_without_a_contract_column_is_rejected_naming_it(missing: str) -> None:
    table = plain_table(valid_loads(ROWS)).drop_columns([missing])

    with pytest.raises(ValueError, match=missing):
        validate(table)


def test_input_without_several_columns_names_all_of_them() -> None:
    table = plain_table(valid_loads(ROWS)).drop_columns(["price_eur", "weight_kg"])

    with pytest.raises(ValueError, match="weight_kg, price_eur"):
        validate(table)


def test_extra_columns_are_ignored() -> None:
    table = plain_table(valid_loads(ROWS)).append_column("note", pa.array(["x"] * ROWS))

    result = validate(table)

    assert result.valid.column_names == list(FIELD_NAMES)
    assert result.valid.num_rows == ROWS


def test_empty_table() -> None:
    result = validate(LOAD_SCHEMA.empty_table())

    assert result.valid.num_rows == 0
    assert result.quarantine.num_rows == 0
    assert result.valid.schema.equals(LOAD_SCHEMA)
    assert result.quarantine.schema.equals(QUARANTINE_SCHEMA)
    assert result.reason_counts == dict.fromkeys(REASONS, 0)
    assert result.summary() == {"rows": 0, "valid": 0, "quarantined": 0, "by_reason": {}}


def test_summary_counts_only_reasons_that_occurred() -> None:
    rows = valid_loads(ROWS)
    rows[1]["price_eur"] = 0.0
    rows[4]["price_eur"] = -10.0
    rows[5]["weight_kg"] = None

    summary = validate(loads_table(rows)).summary()

    assert summary == {
        "rows": ROWS,
        "valid": ROWS - 3,
        "quarantined": 3,
        "by_reason": {"missing_field": 1, "non_positive_price": 2},
    }


def test_a_corrected_resend_of_a_rejected_load_is_accepted() -> None:
    rows = valid_loads(4)
    broken = dict(rows[1], price_eur=0.0)
    resend = dict(rows[1], shipper_id="S99999")
    again = dict(rows[1], shipper_id="S88888")
    result = validate(loads_table([rows[0], broken, rows[2], resend, again]))
    assert column(result.quarantine, QUARANTINE_REASON) == [
        "non_positive_price",
        "duplicate_load_id",
    ]
    assert column(result.quarantine, "shipper_id") == [shipper_id(1), "S88888"]
    assert column(result.valid, "shipper_id") == [shipper_id(0), shipper_id(2), "S99999"]
