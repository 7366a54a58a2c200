"""Validation of load records: split a batch into valid rows and quarantined rows with a reason."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from processing.columns import UNKNOWN_CODE, encode, encode_with, epoch_ms, floats, null_mask
from processing.geography import EARTH_RADIUS_KM, great_circle_km
from processing.schema import (
    EQUIPMENT_TYPES,
    EUROPEAN_COUNTRIES,
    FIELD_NAMES,
    LATITUDE_RANGE,
    LONGITUDE_RANGE,
    MAX_DISTANCE_KM,
    MAX_LOADING_METERS,
    MAX_PRICE_PER_KM_EUR,
    MAX_WEIGHT_KG,
    MIN_DISTANCE_KM,
    MIN_WEIGHT_KG,
    QUARANTINE_DETAIL,
    QUARANTINE_REASON,
    REQUEST_NUMBER_FIELDS,
    conform,
)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

NUMERIC_FIELDS = (*REQUEST_NUMBER_FIELDS, "price_eur")
# A price may include this much fixed cost (loading, waiting, a ferry) before the per-km cap.
MAX_FIXED_PRICE_EUR = 1_500.0
# Road distance is never shorter than the great circle; allow for rounding of coordinates.
MIN_DETOUR_RATIO = 0.95
SAME_PLACE_KM = 1.0

# Every reason, in the order checks run: a row gets the first reason that applies to it.
REASONS: tuple[str, ...] = (
    "missing_field",
    "not_finite",
    "unknown_equipment",
    "unknown_country",
    "region_country_mismatch",
    "invalid_coordinates",
    "origin_equals_destination",
    "distance_out_of_range",
    "distance_shorter_than_straight_line",
    "weight_out_of_range",
    "loading_meters_out_of_range",
    "pickup_before_posting",
    "non_positive_price",
    "price_out_of_range",
    "duplicate_load_id",
)


@dataclass(frozen=True)
class ValidationResult:
    """The checked batch, which of its rows are valid, the quarantine and counts by reason.

    ``valid`` (the valid rows as a table) is built on first use: callers that go on to
    select columns or split rows can work from ``table`` and ``valid_mask`` and copy the
    batch once instead of twice.
    """

    table: pa.Table
    valid_mask: npt.NDArray[np.bool_]
    quarantine: pa.Table
    reason_counts: dict[str, int]

    @cached_property
    def valid(self) -> pa.Table:
        """The valid rows, in input order, in the contract schema."""
        return self.table.filter(pa.array(self.valid_mask))

    @property
    def total(self) -> int:
        """Rows that went in."""
        return int(self.table.num_rows)

    @property
    def valid_count(self) -> int:
        """Rows that passed every check."""
        return int(self.valid_mask.sum())

    def summary(self) -> dict[str, object]:
        """Counts for logs and reports: rows in, valid, quarantined, and by reason."""
        return {
            "rows": self.total,
            "valid": self.valid_count,
            "quarantined": self.quarantine.num_rows,
            "by_reason": {reason: count for reason, count in self.reason_counts.items() if count},
        }


@dataclass(frozen=True)
class _Check:
    """One rule: ``failing`` gives the rows that break it; ``detail`` explains each of them.

    ``failing`` may instead return a function of the rows still valid after the earlier
    checks (for rules about the relation between rows, such as repeated ids); its expensive
    part still runs in parallel with the other checks.
    """

    reason: str
    failing: Callable[[], BoolArray | Callable[[BoolArray], BoolArray]]
    detail: Callable[[npt.NDArray[np.intp]], list[str]]


class _Columns:
    """Lazily decoded columns of one batch, shared by the checks."""

    def __init__(self, table: pa.Table, executor: ThreadPoolExecutor | None = None):
        self.table = table
        # Decoded up front, so that checks running in parallel threads only read them.
        decoded = _map(executor, lambda name: floats(table.column(name)), NUMERIC_FIELDS)
        self._floats: dict[str, FloatArray] = dict(zip(NUMERIC_FIELDS, decoded, strict=True))

    def number(self, name: str) -> FloatArray:
        return self._floats[name]

    def strings(self, name: str, rows: npt.NDArray[np.intp]) -> list[str]:
        values: list[str] = (
            self.table.column(name).take(pa.array(rows)).cast(pa.string()).to_pylist()
        )
        return values


def _in_range(values: FloatArray, low: float, high: float) -> BoolArray:
    result: BoolArray = (values >= low) & (values <= high)
    return result


def _range_detail(
    columns: _Columns, name: str, low: float, high: float
) -> Callable[[npt.NDArray[np.intp]], list[str]]:
    def detail(rows: npt.NDArray[np.intp]) -> list[str]:
        values = columns.number(name)[rows]
        return [f"{name}={value:g} outside [{low:g}, {high:g}]" for value in values]

    return detail


def _map(
    executor: ThreadPoolExecutor | None, function: Callable[[Any], Any], items: Any
) -> list[Any]:
    return list(executor.map(function, items)) if executor else [function(i) for i in items]


def _checks(table: pa.Table, executor: ThreadPoolExecutor | None = None) -> list[_Check]:
    columns = _Columns(table, executor)
    number = columns.number
    equipment_codes = {name: code for code, name in enumerate(EQUIPMENT_TYPES)}
    country_codes = {code: position for position, code in enumerate(sorted(EUROPEAN_COUNTRIES))}
    posted_ms, pickup_ms = _map(
        executor, lambda name: epoch_ms(table.column(name)), ("posted_at", "pickup_at")
    )
    masks = _map(executor, lambda name: null_mask(table.column(name)), FIELD_NAMES)
    nulls = dict(zip(FIELD_NAMES, masks, strict=True))

    def missing_detail(rows: npt.NDArray[np.intp]) -> list[str]:
        return [
            ", ".join(name for name in FIELD_NAMES if nulls[name][row]) + " missing" for row in rows
        ]

    def not_finite() -> BoolArray:
        failing = np.zeros(table.num_rows, dtype=bool)
        for name in NUMERIC_FIELDS:
            failing |= ~np.isfinite(number(name))
        return failing

    def not_finite_detail(rows: npt.NDArray[np.intp]) -> list[str]:
        return [
            ", ".join(
                f"{name}={number(name)[row]}"
                for name in NUMERIC_FIELDS
                if not np.isfinite(number(name)[row])
            )
            for row in rows
        ]

    def country_unknown() -> BoolArray:
        origin = encode(table.column("origin_country"), country_codes)
        destination = encode(table.column("destination_country"), country_codes)
        result: BoolArray = (origin < 0) | (destination < 0)
        return result

    def region_mismatch() -> BoolArray:
        failing = np.zeros(table.num_rows, dtype=bool)
        for end in ("origin", "destination"):
            country = encode(table.column(f"{end}_country"), country_codes)
            region_country = encode_with(
                table.column(f"{end}_region"),
                lambda region: (
                    country_codes.get(region[:2], UNKNOWN_CODE)
                    if region[2:3] == "-" and len(region) > 3
                    else UNKNOWN_CODE
                ),
            )
            failing |= region_country != country
        return failing

    @cache
    def straight_line_km() -> FloatArray:
        # float32 trigonometry is several times faster and exact to metres, enough here.
        ends = [
            number(name).astype(np.float32)
            for name in ("origin_lat", "origin_lon", "destination_lat", "destination_lon")
        ]
        with np.errstate(invalid="ignore"):  # infinite coordinates: not_finite reports them
            return great_circle_km(*ends).astype(np.float64)

    def coordinates_invalid() -> BoolArray:
        result: BoolArray = ~(
            _in_range(number("origin_lat"), *LATITUDE_RANGE)
            & _in_range(number("destination_lat"), *LATITUDE_RANGE)
            & _in_range(number("origin_lon"), *LONGITUDE_RANGE)
            & _in_range(number("destination_lon"), *LONGITUDE_RANGE)
        )
        return result

    def same_place() -> BoolArray:
        result: BoolArray = straight_line_km() < SAME_PLACE_KM
        return result

    def too_short() -> BoolArray:
        result: BoolArray = number("distance_km") < MIN_DETOUR_RATIO * straight_line_km()
        return result

    def price_too_high() -> BoolArray:
        result: BoolArray = number(
            "price_eur"
        ) > MAX_FIXED_PRICE_EUR + MAX_PRICE_PER_KM_EUR * number("distance_km")
        return result

    def duplicates() -> Callable[[BoolArray], BoolArray]:
        # A stable sort puts equal ids next to each other in their original order. Sorting is
        # much cheaper than hashing millions of strings, and ids mostly arrive sorted. Only
        # rows that passed every other check count: a load whose first copy was rejected for
        # a broken field and then resent with the same id keeps its corrected copy.
        ids = table.column("load_id")
        order = pc.sort_indices(ids).to_numpy()
        sorted_ids = ids.take(pa.array(order))
        same_as_previous = np.zeros(table.num_rows, dtype=bool)
        if table.num_rows > 1:
            same_as_previous[1:] = (
                pc.equal(sorted_ids.slice(1), sorted_ids.slice(0, table.num_rows - 1))
                .fill_null(False)
                .to_numpy(zero_copy_only=False)
            )
        group = np.cumsum(~same_as_previous)

        def repeated(still_valid: BoolArray) -> BoolArray:
            valid_order = order[still_valid[order]]
            valid_group = group[still_valid[order]]
            result: BoolArray = np.zeros(table.num_rows, dtype=bool)
            result[valid_order[1:][valid_group[1:] == valid_group[:-1]]] = True
            return result

        return repeated

    def strings_detail(template: str, *names: str) -> Callable[[npt.NDArray[np.intp]], list[str]]:
        def detail(rows: npt.NDArray[np.intp]) -> list[str]:
            values = [columns.strings(name, rows) for name in names]
            return [template.format(*row_values) for row_values in zip(*values, strict=True)]

        return detail

    def number_detail(template: str, *names: str) -> Callable[[npt.NDArray[np.intp]], list[str]]:
        def detail(rows: npt.NDArray[np.intp]) -> list[str]:
            values = [number(name)[rows] for name in names]
            return [template.format(*row_values) for row_values in zip(*values, strict=True)]

        return detail

    def timestamps_detail(rows: npt.NDArray[np.intp]) -> list[str]:
        posted = table.column("posted_at").take(pa.array(rows)).to_pylist()
        pickup = table.column("pickup_at").take(pa.array(rows)).to_pylist()
        return [
            f"pickup_at={p.isoformat()} is before posted_at={q.isoformat()}"
            for p, q in zip(pickup, posted, strict=True)
        ]

    return [
        _Check("missing_field", lambda: np.logical_or.reduce(list(nulls.values())), missing_detail),
        _Check("not_finite", not_finite, not_finite_detail),
        _Check(
            "unknown_equipment",
            lambda: encode(table.column("equipment_type"), equipment_codes) < 0,
            strings_detail(
                "equipment_type={!r} is not one of " + ", ".join(EQUIPMENT_TYPES), "equipment_type"
            ),
        ),
        _Check(
            "unknown_country",
            country_unknown,
            strings_detail(
                "origin_country={!r}, destination_country={!r}: not a served European country",
                "origin_country",
                "destination_country",
            ),
        ),
        _Check(
            "region_country_mismatch",
            region_mismatch,
            strings_detail(
                "origin_region={!r}/origin_country={!r}, "
                "destination_region={!r}/destination_country={!r}: "
                "a region must start with its country and '-'",
                "origin_region",
                "origin_country",
                "destination_region",
                "destination_country",
            ),
        ),
        _Check(
            "invalid_coordinates",
            coordinates_invalid,
            number_detail(
                f"origin=({{:g}}, {{:g}}), destination=({{:g}}, {{:g}}): outside Europe "
                f"(lat {LATITUDE_RANGE}, lon {LONGITUDE_RANGE})",
                "origin_lat",
                "origin_lon",
                "destination_lat",
                "destination_lon",
            ),
        ),
        _Check(
            "origin_equals_destination",
            same_place,
            strings_detail(
                f"origin and destination are within {SAME_PLACE_KM:g} km ({{!r}} -> {{!r}})",
                "origin_region",
                "destination_region",
            ),
        ),
        _Check(
            "distance_out_of_range",
            lambda: ~_in_range(number("distance_km"), MIN_DISTANCE_KM, MAX_DISTANCE_KM),
            _range_detail(columns, "distance_km", MIN_DISTANCE_KM, MAX_DISTANCE_KM),
        ),
        _Check(
            "distance_shorter_than_straight_line",
            too_short,
            lambda rows: [
                f"distance_km={d:g} is shorter than the straight line of {s:.1f} km"
                for d, s in zip(number("distance_km")[rows], straight_line_km()[rows], strict=True)
            ],
        ),
        _Check(
            "weight_out_of_range",
            lambda: ~_in_range(number("weight_kg"), MIN_WEIGHT_KG, MAX_WEIGHT_KG),
            _range_detail(columns, "weight_kg", MIN_WEIGHT_KG, MAX_WEIGHT_KG),
        ),
        _Check(
            "loading_meters_out_of_range",
            lambda: (
                ~(
                    (number("loading_meters") > 0.0)
                    & (number("loading_meters") <= MAX_LOADING_METERS)
                )
            ),
            _range_detail(columns, "loading_meters", 0.0, MAX_LOADING_METERS),
        ),
        _Check("pickup_before_posting", lambda: pickup_ms < posted_ms, timestamps_detail),
        _Check(
            "non_positive_price",
            lambda: number("price_eur") <= 0.0,
            number_detail("price_eur={:g} must be positive", "price_eur"),
        ),
        _Check(
            "price_out_of_range",
            price_too_high,
            number_detail(
                f"price_eur={{:g}} exceeds {MAX_FIXED_PRICE_EUR:g} + "
                f"{MAX_PRICE_PER_KM_EUR:g} EUR/km x distance_km={{:g}}",
                "price_eur",
                "distance_km",
            ),
        ),
        _Check(
            "duplicate_load_id",
            duplicates,
            strings_detail("load_id={!r} already seen earlier in the batch", "load_id"),
        ),
    ]


def validate(table: pa.Table, executor: ThreadPoolExecutor | None = None) -> ValidationResult:
    """Split ``table`` into valid and quarantined rows; every quarantined row carries a reason.

    The checks run in the order of :data:`REASONS` and a row gets the first reason that
    applies; later checks only look at rows still valid, so their details never describe a
    value that an earlier check already rejected. Nothing is dropped: ``valid`` plus
    ``quarantine`` is the whole batch. With an ``executor``, the checks' masks are computed
    in parallel threads; the result is the same.
    """
    table = conform(table)
    rows = table.num_rows
    reason_code = np.full(rows, -1, dtype=np.int16)
    details: dict[int, str] = {}
    counts: dict[str, int] = {}
    checks = _checks(table, executor)
    if executor is not None:
        masks = list(executor.map(lambda check: check.failing(), checks))
    else:
        masks = [check.failing() for check in checks]
    for code, (check, outcome) in enumerate(zip(checks, masks, strict=True)):
        still_valid = reason_code < 0
        mask = outcome(still_valid) if callable(outcome) else outcome
        failing = mask & still_valid
        failing_rows = np.flatnonzero(failing)
        counts[check.reason] = len(failing_rows)
        if len(failing_rows):
            reason_code[failing_rows] = code
            for row, text in zip(failing_rows, check.detail(failing_rows), strict=True):
                details[int(row)] = text
    valid_mask = reason_code < 0
    quarantined_rows = np.flatnonzero(~valid_mask)
    quarantine = table.take(pa.array(quarantined_rows))
    quarantine = quarantine.append_column(
        QUARANTINE_REASON,
        pa.array([REASONS[code] for code in reason_code[quarantined_rows]], type=pa.string()),
    ).append_column(
        QUARANTINE_DETAIL,
        pa.array([details[int(row)] for row in quarantined_rows], type=pa.string()),
    )
    return ValidationResult(
        table=table, valid_mask=valid_mask, quarantine=quarantine, reason_counts=counts
    )


@dataclass(frozen=True)
class Problem:
    """Why one load fails validation: the reason code, the field at fault, a message."""

    reason: str
    field: str
    message: str


def _straight_line_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


def check_request(load: Mapping[str, Any]) -> Problem | None:
    """The first rule of :data:`REASONS` that one price request breaks, or None.

    The same rules as :func:`validate`, for one load without id and price, as the server
    receives it: numbers as float, timestamps as epoch ms, the request fields all present and
    of the right Python type (the parser checks that). A test holds both implementations to the
    same verdicts.
    """
    for name in REQUEST_NUMBER_FIELDS:
        if not math.isfinite(load[name]):
            return Problem("not_finite", name, f"{name} must be a finite number, got {load[name]}")
    if load["equipment_type"] not in EQUIPMENT_TYPES:
        return Problem(
            "unknown_equipment",
            "equipment_type",
            f"equipment_type {load['equipment_type']!r} is not one of {', '.join(EQUIPMENT_TYPES)}",
        )
    for end in ("origin", "destination"):
        if load[f"{end}_country"] not in EUROPEAN_COUNTRIES:
            return Problem(
                "unknown_country",
                f"{end}_country",
                f"{end}_country {load[f'{end}_country']!r} is not a served European country "
                "(ISO 3166-1 alpha-2)",
            )
    for end in ("origin", "destination"):
        region, country = load[f"{end}_region"], load[f"{end}_country"]
        if not (region.startswith(f"{country}-") and len(region) > 3):
            return Problem(
                "region_country_mismatch",
                f"{end}_region",
                f"{end}_region {region!r} must start with its country and '-', e.g. '{country}-10'",
            )
    for name in ("origin_lat", "destination_lat", "origin_lon", "destination_lon"):
        low, high = LATITUDE_RANGE if name.endswith("lat") else LONGITUDE_RANGE
        if not low <= load[name] <= high:
            return Problem(
                "invalid_coordinates", name, f"{name}={load[name]:g} is outside [{low:g}, {high:g}]"
            )
    straight = _straight_line_km(
        load["origin_lat"], load["origin_lon"], load["destination_lat"], load["destination_lon"]
    )
    if straight < SAME_PLACE_KM:
        return Problem(
            "origin_equals_destination",
            "destination_lat",
            f"origin and destination are within {SAME_PLACE_KM:g} km of each other",
        )
    distance = load["distance_km"]
    if not MIN_DISTANCE_KM <= distance <= MAX_DISTANCE_KM:
        return Problem(
            "distance_out_of_range",
            "distance_km",
            f"distance_km={distance:g} is outside [{MIN_DISTANCE_KM:g}, {MAX_DISTANCE_KM:g}]",
        )
    if distance < MIN_DETOUR_RATIO * straight:
        return Problem(
            "distance_shorter_than_straight_line",
            "distance_km",
            f"distance_km={distance:g} is shorter than the straight line of {straight:.1f} km",
        )
    if not MIN_WEIGHT_KG <= load["weight_kg"] <= MAX_WEIGHT_KG:
        return Problem(
            "weight_out_of_range",
            "weight_kg",
            f"weight_kg={load['weight_kg']:g} is outside [{MIN_WEIGHT_KG:g}, {MAX_WEIGHT_KG:g}]",
        )
    if not 0.0 < load["loading_meters"] <= MAX_LOADING_METERS:
        return Problem(
            "loading_meters_out_of_range",
            "loading_meters",
            f"loading_meters={load['loading_meters']:g} is outside (0, {MAX_LOADING_METERS:g}]",
        )
    if load["pickup_at"] < load["posted_at"]:
        return Problem("pickup_before_posting", "pickup_at", "pickup_at is before posted_at")
    return None
