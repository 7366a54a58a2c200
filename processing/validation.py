"""Validation of load records: one rule table, read by the batch checks and the request check.

:data:`RULES` holds every rule once: the reason it gives, the field at fault, its bounds and
its message. :func:`validate` evaluates the table vectorised over an Arrow batch (Prepare);
:func:`check_request` evaluates it for one load as the endpoint receives it. Both format a
violation's message from the same template and the same values, so the quarantine detail of a
row is the text a client gets for the same load.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import string
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache, partial
from types import MappingProxyType
from typing import Any, Literal, TypeVar, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from processing.columns import UNKNOWN_CODE, encode, encode_with, epoch_ms, floats, null_mask
from processing.geography import (
    COUNTRY_BOUNDS_PATH,
    country_boxes,
    great_circle_km,
    great_circle_km_scalar,
)
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
    MIN_PRICE_EUR,
    MIN_WEIGHT_KG,
    QUARANTINE_DETAIL,
    QUARANTINE_REASON,
    REQUEST_NUMBER_FIELDS,
    conform,
)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
Number = TypeVar("Number", float, FloatArray)
Result = TypeVar("Result")

NUMERIC_FIELDS = (*REQUEST_NUMBER_FIELDS, "price_eur")
TIMESTAMP_FIELDS = ("posted_at", "pickup_at")
ENDS = ("origin", "destination")
COORDINATE_FIELDS = ("origin_lat", "origin_lon", "destination_lat", "destination_lon")
AXIS_NAMES = {"lat": "latitude", "lon": "longitude"}
EUROPE = {"lat": LATITUDE_RANGE, "lon": LONGITUDE_RANGE}
# A price may include this much fixed cost (loading, waiting, a ferry) before the per-km cap.
MAX_FIXED_PRICE_EUR = 1_500.0
# Road distance is never shorter than the great circle; allow for rounding of coordinates.
MIN_DETOUR_RATIO = 0.95
SAME_PLACE_KM = 1.0
# How far coordinates may lie outside their country's bounding box. The boxes come from
# simplified 1:50m outlines that cut capes and small islands by up to a few km, addresses are
# geocoded to about 0.05 degrees, and loads wait at borders (customs yards, ferry ports) on the
# line itself. Half a degree (55 km north-south, 32-39 km east-west at 45-55 N) covers all of
# that while still rejecting an end placed in another country's interior, such as a 'DE' origin
# in Lisbon. A box is coarse: a point in it may still be abroad (Salzburg lies in Germany's box).
COUNTRY_BOX_TOLERANCE_DEG = 0.5
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# A region is its country code, '-' and the first two digits of the postal code ('DE-80').
# British postcodes and Irish Eircodes do not start with digits: a GB region is the postcode
# area ('GB-M', 'GB-LS'), an IE region the Eircode routing key ('IE-D01', and Dublin's 'D6W').
TWO_POSTAL_DIGITS = re.compile(r"[0-9]{2}")
POSTAL_PART_BY_COUNTRY: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {"GB": re.compile(r"[A-Z]{1,2}"), "IE": re.compile(r"[A-Z][0-9]{2}|D6W")}
)
REGION_FORMAT = (
    "the country code, '-' and two postal digits such as 'DE-80' "
    "(GB: the postcode area such as 'GB-M', IE: the Eircode routing key such as 'IE-D01')"
)


def _codes(values: frozenset[str]) -> dict[str, int]:
    return {value: position for position, value in enumerate(sorted(values))}


COUNTRY_CODES = _codes(EUROPEAN_COUNTRIES)


@lru_cache(maxsize=4096)  # bounded: requests may send any text
def region_country(region: str) -> str | None:
    """The served country whose region format ``region`` has ('DE-80' -> 'DE'), else None."""
    country, separator, postal = region.partition("-")
    if not separator or country not in EUROPEAN_COUNTRIES:
        return None
    postal_part = POSTAL_PART_BY_COUNTRY.get(country, TWO_POSTAL_DIGITS)
    return country if postal_part.fullmatch(postal) else None


# The test of each end of an interval by whether the end is inclusive: the one definition of what
# Bounds allow, for Python floats (requests) and NumPy arrays (batches) alike.
LOW_END_TEST: Mapping[bool, Callable[[Any, Any], Any]] = MappingProxyType(
    {True: operator.ge, False: operator.gt}
)
HIGH_END_TEST: Mapping[bool, Callable[[Any, Any], Any]] = MappingProxyType(
    {True: operator.le, False: operator.lt}
)


@overload
def _inside(
    value: float, low: float, high: float, low_inclusive: bool, high_inclusive: bool
) -> bool: ...
@overload
def _inside(
    value: FloatArray,
    low: float | FloatArray,
    high: float | FloatArray,
    low_inclusive: bool,
    high_inclusive: bool,
) -> BoolArray: ...
def _inside(
    value: float | FloatArray,
    low: float | FloatArray,
    high: float | FloatArray,
    low_inclusive: bool,
    high_inclusive: bool,
) -> bool | BoolArray:
    """Whether ``value`` lies between ``low`` and ``high`` (NaN never does)."""
    above = LOW_END_TEST[low_inclusive](value, low)
    below = HIGH_END_TEST[high_inclusive](value, high)
    result: bool | BoolArray = above & below
    return result


@dataclass(frozen=True)
class Bounds:
    """The values a rule allows: an interval whose ends are each inclusive or exclusive."""

    low: float = -math.inf
    high: float = math.inf
    low_inclusive: bool = True
    high_inclusive: bool = True

    def contains(self, value: float) -> bool:
        """Whether one value is allowed (NaN never is)."""
        return _inside(value, self.low, self.high, self.low_inclusive, self.high_inclusive)

    def contains_all(self, values: FloatArray) -> BoolArray:
        """Which of ``values`` are allowed (NaN never is)."""
        return _inside(values, self.low, self.high, self.low_inclusive, self.high_inclusive)

    def __str__(self) -> str:
        opening = "[" if self.low_inclusive else "("
        closing = "]" if self.high_inclusive else ")"
        return f"{opening}{self.low:g}, {self.high:g}{closing}"


Check = Literal[
    "present", "finite", "choice", "region", "region_country", "in_country", "range", "unique"
]


@dataclass(frozen=True)
class Rule:
    """One row of the rule table: the reason it gives, the field at fault, what it checks.

    ``message`` is a :meth:`str.format` template over the load's fields (timestamps appear as
    ISO 8601 text) and ``{bounds}``, ``{country_range}`` (the stated country's widened range of
    the rule's coordinate), ``{straight_line_km}`` and ``{missing}`` (every missing field).
    What ``check`` tests:

    - ``present``: the field is not null; ``finite``: the number is not NaN or infinite.
    - ``choice``: the value is one of ``choices``.
    - ``region``: the value has the region format of a served country (:func:`region_country`).
    - ``region_country``: that country is the one in ``country_field``.
    - ``in_country``: the coordinate lies in the range of the country in ``country_field``.
    - ``range``: ``quantity`` (the field itself unless named; see :func:`_quantity`) lies in
      ``bounds``.
    - ``unique``: no earlier row still valid has the same value (batch only).
    """

    reason: str
    field: str
    check: Check
    message: str
    bounds: Bounds = Bounds()
    quantity: str = ""
    country_field: str = ""
    choices: frozenset[str] = frozenset()
    # Rules about ids, prices and nulls have nothing to check in a price request.
    in_requests: bool = True

    @property
    def bounded(self) -> str:
        """The name of the value that ``bounds`` limits."""
        return self.quantity or self.field


def _axis(coordinate: str) -> str:
    return coordinate.rsplit("_", 1)[1]  # 'origin_lat' -> 'lat'


def _end(coordinate: str) -> str:
    return coordinate.split("_", 1)[0]  # 'origin_lat' -> 'origin'


# Every rule, in the order they apply: a load gets the first rule it breaks. The rules of one
# reason are adjacent, so the order of reasons is the order of REASONS.
RULES: tuple[Rule, ...] = (
    *(
        Rule("missing_field", name, "present", "{missing} missing", in_requests=False)
        for name in FIELD_NAMES
    ),
    *(
        Rule(
            "not_finite",
            name,
            "finite",
            f"{name}={{{name}}} is not a finite number",
            in_requests=name in REQUEST_NUMBER_FIELDS,
        )
        for name in NUMERIC_FIELDS
    ),
    Rule(
        "unknown_equipment",
        "equipment_type",
        "choice",
        "equipment_type={equipment_type!r} is not one of " + ", ".join(EQUIPMENT_TYPES),
        choices=frozenset(EQUIPMENT_TYPES),
    ),
    *(
        Rule(
            "unknown_country",
            f"{end}_country",
            "choice",
            f"{end}_country={{{end}_country!r}} is not a served European country "
            "(ISO 3166-1 alpha-2)",
            choices=EUROPEAN_COUNTRIES,
        )
        for end in ENDS
    ),
    *(
        Rule(
            "invalid_region",
            f"{end}_region",
            "region",
            f"{end}_region={{{end}_region!r}} is not a postal region: {REGION_FORMAT}",
        )
        for end in ENDS
    ),
    *(
        Rule(
            "region_country_mismatch",
            f"{end}_region",
            "region_country",
            f"{end}_region={{{end}_region!r}} is not in {end}_country={{{end}_country!r}}",
            country_field=f"{end}_country",
        )
        for end in ENDS
    ),
    *(
        Rule(
            "invalid_coordinates",
            name,
            "range",
            f"{name}={{{name}:g}} is outside Europe's {AXIS_NAMES[_axis(name)]}s {{bounds}}",
            bounds=Bounds(*EUROPE[_axis(name)]),
        )
        for name in COORDINATE_FIELDS
    ),
    *(
        Rule(
            "coordinates_outside_country",
            name,
            "in_country",
            f"{name}={{{name}:g}} is outside {_end(name)}_country={{{_end(name)}_country!r}} "
            f"({AXIS_NAMES[_axis(name)]}s {{country_range}}: the country's extent widened by "
            f"{COUNTRY_BOX_TOLERANCE_DEG:g} degrees)",
            country_field=f"{_end(name)}_country",
        )
        for name in COORDINATE_FIELDS
    ),
    Rule(
        "origin_equals_destination",
        "destination_lat",
        "range",
        f"origin and destination are within {SAME_PLACE_KM:g} km of each other "
        "({origin_region!r} -> {destination_region!r})",
        bounds=Bounds(SAME_PLACE_KM),
        quantity="straight_line_km",
    ),
    Rule(
        "distance_out_of_range",
        "distance_km",
        "range",
        "distance_km={distance_km:g} is outside {bounds}",
        bounds=Bounds(MIN_DISTANCE_KM, MAX_DISTANCE_KM),
    ),
    Rule(
        "distance_shorter_than_straight_line",
        "distance_km",
        "range",
        "distance_km={distance_km:g} is shorter than the straight line of "
        "{straight_line_km:.1f} km",
        bounds=Bounds(MIN_DETOUR_RATIO),
        quantity="detour_ratio",
    ),
    Rule(
        "weight_out_of_range",
        "weight_kg",
        "range",
        "weight_kg={weight_kg:g} is outside {bounds}",
        bounds=Bounds(MIN_WEIGHT_KG, MAX_WEIGHT_KG),
    ),
    Rule(
        "loading_meters_out_of_range",
        "loading_meters",
        "range",
        "loading_meters={loading_meters:g} is outside {bounds}",
        bounds=Bounds(0.0, MAX_LOADING_METERS, low_inclusive=False),
    ),
    Rule(
        "pickup_before_posting",
        "pickup_at",
        "range",
        "pickup_at={pickup_at} is before posted_at={posted_at}",
        bounds=Bounds(0.0),
        quantity="lead_ms",
    ),
    Rule(
        "non_positive_price",
        "price_eur",
        "range",
        "price_eur={price_eur:g} must be positive",
        bounds=Bounds(MIN_PRICE_EUR, low_inclusive=False),
        in_requests=False,
    ),
    Rule(
        "price_out_of_range",
        "price_eur",
        "range",
        f"price_eur={{price_eur:g}} exceeds {MAX_FIXED_PRICE_EUR:g} + "
        f"{MAX_PRICE_PER_KM_EUR:g} EUR/km x distance_km={{distance_km:g}}",
        bounds=Bounds(high=MAX_FIXED_PRICE_EUR),
        quantity="price_above_per_km_cap",
        in_requests=False,
    ),
    Rule(
        "duplicate_load_id",
        "load_id",
        "unique",
        "load_id={load_id!r} already seen earlier in the batch",
        in_requests=False,
    ),
)
# Every reason, in the order rules apply: a row gets the first reason that applies to it.
REASONS: tuple[str, ...] = tuple(dict.fromkeys(rule.reason for rule in RULES))


def _quantity(name: str, value: Callable[[str], Number]) -> Number:
    """The value a range rule bounds: a field, or one derived from fields (floats or arrays)."""
    if name == "detour_ratio":
        return value("distance_km") / value("straight_line_km")
    if name == "lead_ms":
        return value("pickup_at") - value("posted_at")
    if name == "price_above_per_km_cap":
        return value("price_eur") - MAX_PRICE_PER_KM_EUR * value("distance_km")
    return value(name)


@cache
def _country_ranges(axis: str) -> Mapping[str, Bounds]:
    """Each country's latitudes (``axis`` 'lat') or longitudes ('lon'), widened by the tolerance."""
    boxes = country_boxes()
    missing = sorted(EUROPEAN_COUNTRIES - set(boxes))
    if missing:
        raise ValueError(f"{COUNTRY_BOUNDS_PATH} lacks the served countries {', '.join(missing)}")
    margin = COUNTRY_BOX_TOLERANCE_DEG
    ranges = {
        country: Bounds(box.min_lat - margin, box.max_lat + margin)
        if axis == "lat"
        else Bounds(box.min_lon - margin, box.max_lon + margin)
        for country, box in boxes.items()
    }
    return MappingProxyType(ranges)


@cache
def _country_range_arrays(axis: str) -> tuple[FloatArray, FloatArray]:
    """Low and high ends of :func:`_country_ranges` by country code; code -1 allows anything."""
    ranges = _country_ranges(axis)
    low = np.array([ranges[country].low for country in COUNTRY_CODES] + [-math.inf])
    high = np.array([ranges[country].high for country in COUNTRY_CODES] + [math.inf])
    return low, high


def _iso(epoch_milliseconds: float) -> str:
    return (EPOCH + dt.timedelta(milliseconds=int(epoch_milliseconds))).isoformat()


@dataclass(frozen=True)
class _MessagePart:
    """One name in a message template: the value it is made from and how it is shown."""

    name: str
    source: str
    show: Callable[[Any], object] | None = None  # None: the value as it is


@cache
def _message_form(rule: Rule) -> tuple[str, tuple[_MessagePart, ...]]:
    """The template of ``rule`` with its bounds written in, and the parts left to fill in."""
    template = rule.message.replace("{bounds}", str(rule.bounds))
    parts: list[_MessagePart] = []
    for _, name, _, _ in string.Formatter().parse(template):
        if not name or any(part.name == name for part in parts):
            continue
        if name == "country_range":
            ranges = _country_ranges(_axis(rule.field))
            parts.append(_MessagePart(name, rule.country_field, ranges.__getitem__))
        elif name in TIMESTAMP_FIELDS:
            parts.append(_MessagePart(name, name, _iso))
        else:
            parts.append(_MessagePart(name, name))
    return template, tuple(parts)


def _messages(rule: Rule, values: Callable[[str], list[Any]]) -> list[str]:
    """The message of ``rule`` for each of some loads; ``values`` gives their values by name.

    The one formatter of both paths: a request is a list of one load, a batch the failing rows.
    """
    template, parts = _message_form(rule)
    shown = []
    for part in parts:
        raw = values(part.source)
        shown.append(raw if part.show is None else [part.show(value) for value in raw])
    names = [part.name for part in parts]
    if not names:
        return [template] * len(values(rule.field))
    return [
        template.format_map(dict(zip(names, row, strict=True))) for row in zip(*shown, strict=True)
    ]


# -- the batch: every rule vectorised over an Arrow table ------------------------------------------


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


def _start(executor: ThreadPoolExecutor | None, job: Callable[[], Result]) -> Callable[[], Result]:
    """Run ``job`` in ``executor`` (or now, without one); the function returned waits for it."""
    if executor is None:
        result = job()
        return lambda: result
    return executor.submit(job).result


class _Columns:
    """The columns of one batch as the rules read them: numbers, codes, null masks.

    Decoded up front (in parallel with an executor), so that rules evaluated in parallel
    threads only read them.
    """

    def __init__(self, table: pa.Table, executor: ThreadPoolExecutor | None = None) -> None:
        self.table = table
        column = table.column
        numbers = {name: _start(executor, partial(floats, column(name))) for name in NUMERIC_FIELDS}
        timestamps = {
            name: _start(executor, partial(_epoch_ms_as_float, column(name)))
            for name in TIMESTAMP_FIELDS
        }
        nulls = {name: _start(executor, partial(null_mask, column(name))) for name in FIELD_NAMES}
        vocabularies = {(rule.field, rule.choices) for rule in RULES if rule.check == "choice"} | {
            (rule.country_field, EUROPEAN_COUNTRIES)
            for rule in RULES
            if rule.check in ("region_country", "in_country")
        }
        codes = {
            (name, choices): _start(executor, partial(encode, column(name), _codes(choices)))
            for name, choices in vocabularies
        }
        regions = {
            rule.field: _start(executor, partial(encode_with, column(rule.field), _code))
            for rule in RULES
            if rule.check in ("region", "region_country")
        }
        self._numbers: dict[str, FloatArray] = {name: wait() for name, wait in numbers.items()}
        straight_line = _start(executor, self._straight_line_km)
        self._numbers.update({name: wait() for name, wait in timestamps.items()})
        self._nulls = {name: wait() for name, wait in nulls.items()}
        self._codes = {key: wait() for key, wait in codes.items()}
        self._region_codes = {name: wait() for name, wait in regions.items()}
        self._numbers["straight_line_km"] = straight_line()

    def _straight_line_km(self) -> FloatArray:
        # float32 trigonometry is several times faster and exact to metres, enough for the
        # verdicts; messages recompute the few failing rows in float64 (message_values).
        ends = [self._numbers[name].astype(np.float32) for name in COORDINATE_FIELDS]
        with np.errstate(invalid="ignore"):  # infinite coordinates: not_finite reports them
            return great_circle_km(*ends).astype(np.float64)

    def number(self, name: str) -> FloatArray:
        """A numeric field, a timestamp field (epoch ms) or ``straight_line_km``, as float64."""
        return self._numbers[name]

    def null(self, name: str) -> BoolArray:
        """Where the field is null."""
        return self._nulls[name]

    def codes(self, name: str, choices: frozenset[str]) -> npt.NDArray[np.int32]:
        """The position of each value among the sorted ``choices``, -1 for any other value."""
        return self._codes[name, choices]

    def region_codes(self, name: str) -> npt.NDArray[np.int32]:
        """The country code (COUNTRY_CODES) of each region's format, -1 for a malformed one."""
        return self._region_codes[name]

    def message_values(self, name: str, rows: IndexArray) -> list[Any]:
        """The values by which messages name ``name``, for ``rows``: as in a request."""
        if name == "missing":
            missing = [self._nulls[field][rows] for field in FIELD_NAMES]
            return [
                ", ".join(field for field, null in zip(FIELD_NAMES, row, strict=True) if null)
                for row in zip(*missing, strict=True)
            ]
        if name == "straight_line_km":
            ends = [self._numbers[field][rows].tolist() for field in COORDINATE_FIELDS]
            return [great_circle_km_scalar(*end) for end in zip(*ends, strict=True)]
        if name in self._numbers:
            values: list[Any] = self._numbers[name][rows].tolist()
            return values
        values = self.table.column(name).take(pa.array(rows)).cast(pa.string()).to_pylist()
        return values


def _epoch_ms_as_float(column: pa.ChunkedArray) -> FloatArray:
    # Exact: epoch milliseconds stay far below 2**53.
    return epoch_ms(column).astype(np.float64)


def _code(region: str) -> int:
    country = region_country(region)
    return UNKNOWN_CODE if country is None else COUNTRY_CODES[country]


def _duplicates(columns: _Columns) -> Callable[[BoolArray], BoolArray]:
    # A stable sort puts equal ids next to each other in their original order. Sorting is
    # much cheaper than hashing millions of strings, and ids mostly arrive sorted. Only
    # rows that passed every other check count: a load whose first copy was rejected for
    # a broken field and then resent with the same id keeps its corrected copy.
    ids = columns.table.column("load_id")
    rows = columns.table.num_rows
    order = pc.sort_indices(ids).to_numpy()
    sorted_ids = ids.take(pa.array(order))
    same_as_previous = np.zeros(rows, dtype=bool)
    if rows > 1:
        same_as_previous[1:] = (
            pc.equal(sorted_ids.slice(1), sorted_ids.slice(0, rows - 1))
            .fill_null(False)
            .to_numpy(zero_copy_only=False)
        )
    group = np.cumsum(~same_as_previous)

    def repeated(still_valid: BoolArray) -> BoolArray:
        valid_order = order[still_valid[order]]
        valid_group = group[still_valid[order]]
        result: BoolArray = np.zeros(rows, dtype=bool)
        result[valid_order[1:][valid_group[1:] == valid_group[:-1]]] = True
        return result

    return repeated


def _batch_failing(rule: Rule, columns: _Columns) -> BoolArray | Callable[[BoolArray], BoolArray]:
    """The rows that break ``rule``, or (for ``unique``) a function of the rows still valid."""
    if rule.check == "present":
        return columns.null(rule.field)
    if rule.check == "finite":
        result: BoolArray = ~np.isfinite(columns.number(rule.field))
        return result
    if rule.check == "choice":
        unknown: BoolArray = columns.codes(rule.field, rule.choices) < 0
        return unknown
    if rule.check == "region":
        malformed: BoolArray = columns.region_codes(rule.field) < 0
        return malformed
    if rule.check == "region_country":
        country = columns.codes(rule.country_field, EUROPEAN_COUNTRIES)
        mismatch: BoolArray = columns.region_codes(rule.field) != country
        return mismatch
    if rule.check == "in_country":
        low, high = _country_range_arrays(_axis(rule.field))
        country = columns.codes(rule.country_field, EUROPEAN_COUNTRIES)
        # Country boxes are closed intervals, as _country_ranges builds them.
        return ~_inside(columns.number(rule.field), low[country], high[country], True, True)
    if rule.check == "range":
        with np.errstate(divide="ignore", invalid="ignore"):  # rows that earlier rules reject
            return ~rule.bounds.contains_all(_quantity(rule.bounded, columns.number))
    return _duplicates(columns)


def _map(
    executor: ThreadPoolExecutor | None, function: Callable[[Rule], Result], rules: tuple[Rule, ...]
) -> list[Result]:
    return list(executor.map(function, rules)) if executor else [function(r) for r in rules]


def validate(table: pa.Table, executor: ThreadPoolExecutor | None = None) -> ValidationResult:
    """Split ``table`` into valid and quarantined rows; every quarantined row carries a reason.

    The rules of :data:`RULES` apply in order and a row gets the reason of the first one it
    breaks, with that rule's message as detail; later rules only look at rows still valid, so
    their details never describe a value that an earlier rule already rejected. Nothing is
    dropped: ``valid`` plus ``quarantine`` is the whole batch. With an ``executor``, columns
    are decoded and the rules' masks computed in parallel threads; the result is the same.
    """
    table = conform(table)
    rows = table.num_rows
    columns = _Columns(table, executor)
    outcomes = _map(executor, lambda rule: _batch_failing(rule, columns), RULES)
    reason_code = np.full(rows, -1, dtype=np.int16)
    details: dict[int, str] = {}
    counts: dict[str, int] = {}
    checked = list(zip(RULES, outcomes, strict=True))
    for code, reason in enumerate(REASONS):
        still_valid = reason_code < 0
        broken_by = [
            (rule, outcome(still_valid) if callable(outcome) else outcome)
            for rule, outcome in checked
            if rule.reason == reason
        ]
        failing = broken_by[0][1].copy()
        for _, mask in broken_by[1:]:
            failing |= mask
        failing &= still_valid
        failing_rows = np.flatnonzero(failing)
        counts[reason] = len(failing_rows)
        if not len(failing_rows):
            continue
        reason_code[failing_rows] = code
        # Each row's detail is the message of the first of the reason's rules that it breaks.
        pending = failing_rows
        for rule, mask in broken_by:
            broken = mask[pending]
            rule_rows, pending = pending[broken], pending[~broken]
            if len(rule_rows):
                texts = _messages(rule, partial(columns.message_values, rows=rule_rows))
                details.update(zip(rule_rows.tolist(), texts, strict=True))
    valid_mask = reason_code < 0
    quarantined_rows = np.flatnonzero(~valid_mask)
    quarantine = table.take(pa.array(quarantined_rows))
    quarantine = quarantine.append_column(
        QUARANTINE_REASON,
        pa.array([REASONS[code] for code in reason_code[quarantined_rows]], type=pa.string()),
    ).append_column(
        QUARANTINE_DETAIL,
        pa.array([details[row] for row in quarantined_rows.tolist()], type=pa.string()),
    )
    return ValidationResult(
        table=table, valid_mask=valid_mask, quarantine=quarantine, reason_counts=counts
    )


# -- one request: the same rules for one load, with Python scalars --------------------------------


@dataclass(frozen=True)
class Problem:
    """Why one load fails validation: the reason code, the field at fault, a message."""

    reason: str
    field: str
    message: str


class _RequestValues(dict[str, Any]):
    """One request's fields, and (computed on first use) the straight line between its ends."""

    def __missing__(self, name: str) -> float:
        if name != "straight_line_km":
            raise KeyError(name)
        straight_line_km = great_circle_km_scalar(
            self["origin_lat"], self["origin_lon"], self["destination_lat"], self["destination_lon"]
        )
        self[name] = straight_line_km
        return straight_line_km


def _request_breaks(rule: Rule) -> Callable[[_RequestValues], bool]:
    """Whether one request breaks ``rule``: the scalar side of the rule's check."""
    field, country_field = rule.field, rule.country_field
    if rule.check == "finite":
        return lambda values: not math.isfinite(values[field])
    if rule.check == "choice":
        choices = rule.choices
        return lambda values: values[field] not in choices
    if rule.check == "region":
        return lambda values: region_country(values[field]) is None
    if rule.check == "region_country":
        return lambda values: region_country(values[field]) != values[country_field]
    # The interval tests below inline _inside: about 0.2 us less per rule on the endpoint's path.
    if rule.check == "in_country":
        ranges = _country_ranges(_axis(field))
        lows = {country: bounds.low for country, bounds in ranges.items()}
        highs = {country: bounds.high for country, bounds in ranges.items()}
        # Country ranges are closed intervals, as _country_ranges builds them.
        at_least, at_most = LOW_END_TEST[True], HIGH_END_TEST[True]

        def outside_country(values: _RequestValues) -> bool:
            value, country = values[field], values[country_field]
            return not (at_least(value, lows[country]) and at_most(value, highs[country]))

        return outside_country
    if rule.check == "range":
        bounds, name = rule.bounds, rule.bounded
        low, high = bounds.low, bounds.high
        above, below = LOW_END_TEST[bounds.low_inclusive], HIGH_END_TEST[bounds.high_inclusive]

        def out_of_bounds(values: _RequestValues) -> bool:
            value = values[field] if name == field else _quantity(name, values.__getitem__)
            return not (above(value, low) and below(value, high))

        return out_of_bounds
    raise ValueError(f"rule {rule.reason} on {field}: a {rule.check} check needs a batch")


@cache
def _request_rules() -> tuple[tuple[Rule, Callable[[_RequestValues], bool]], ...]:
    # Built on first use: the country ranges are read from the package data then, not at import.
    return tuple((rule, _request_breaks(rule)) for rule in RULES if rule.in_requests)


def check_request(load: Mapping[str, Any]) -> Problem | None:
    """The first rule of :data:`RULES` that one price request breaks, or None.

    The rules of :func:`validate`, for one load without id and price, as the server receives
    it: numbers as float, timestamps as epoch ms, the request fields all present and of the
    right Python type (the parser checks that). The message is the one :func:`validate` gives
    as the quarantine detail of the same load.
    """
    values = _RequestValues(load)
    for rule, breaks in _request_rules():
        if breaks(values):
            [message] = _messages(rule, lambda name: [values[name]])
            return Problem(rule.reason, rule.field, message)
    return None
