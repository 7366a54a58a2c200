"""The validation rule table: every rule once, read by the batch checks and the request check.

:data:`RULES` holds each rule's reason, the field at fault, its bounds and its message.
:mod:`processing.validation` evaluates it vectorised over an Arrow batch (Prepare),
:mod:`processing.request_check` for one load as the endpoint receives it, and both format a
violation's message with :mod:`processing.rule_messages`, so the quarantine detail of a row is
the text a client gets for the same load.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any, Literal, TypeVar, overload

import numpy as np
import numpy.typing as npt

from processing.geography import COUNTRY_BOUNDS_PATH, country_boxes
from processing.regions import REGION_FORMAT
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
    REQUEST_NUMBER_FIELDS,
)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
Number = TypeVar("Number", float, FloatArray, "QuantitySource")


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

# The test of each end of an interval by whether the end is inclusive: the one definition of what
# Bounds allow, for Python floats (requests) and NumPy arrays (batches) alike.
LOW_END_TEST: Mapping[bool, Callable[[Any, Any], Any]] = MappingProxyType(
    {True: operator.ge, False: operator.gt}
)
HIGH_END_TEST: Mapping[bool, Callable[[Any, Any], Any]] = MappingProxyType(
    {True: operator.le, False: operator.lt}
)


@overload
def inside(
    value: float, low: float, high: float, low_inclusive: bool, high_inclusive: bool
) -> bool: ...
@overload
def inside(
    value: FloatArray,
    low: float | FloatArray,
    high: float | FloatArray,
    low_inclusive: bool,
    high_inclusive: bool,
) -> BoolArray: ...
def inside(
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
        return inside(value, self.low, self.high, self.low_inclusive, self.high_inclusive)

    def contains_all(self, values: FloatArray) -> BoolArray:
        """Which of ``values`` are allowed (NaN never is)."""
        return inside(values, self.low, self.high, self.low_inclusive, self.high_inclusive)

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
    - ``region``: the value has the region format of a served country
      (:func:`processing.regions.region_country`).
    - ``region_country``: that country is the one in ``country_field``.
    - ``in_country``: the coordinate lies in the range of the country in ``country_field``.
    - ``range``: ``quantity`` (the field itself unless named; see :func:`quantity`) lies in
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


def axis_of(coordinate: str) -> str:
    """The axis of a coordinate field: 'origin_lat' -> 'lat'."""
    return coordinate.rsplit("_", 1)[1]


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
            f"{name}={{{name}:g}} is outside Europe's {AXIS_NAMES[axis_of(name)]}s {{bounds}}",
            bounds=Bounds(*EUROPE[axis_of(name)]),
        )
        for name in COORDINATE_FIELDS
    ),
    *(
        Rule(
            "coordinates_outside_country",
            name,
            "in_country",
            f"{name}={{{name}:g}} is outside {_end(name)}_country={{{_end(name)}_country!r}} "
            f"({AXIS_NAMES[axis_of(name)]}s {{country_range}}: the country's extent widened by "
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


@dataclass(frozen=True)
class QuantitySource:
    """Python source of a value built by the arithmetic of :func:`quantity`.

    :func:`quantity` run with these in place of numbers writes out its formula, so the compiled
    request check (:mod:`processing.request_check`) computes what the batch computes, from the
    one definition.
    """

    text: str

    def __truediv__(self, other: QuantitySource) -> QuantitySource:
        return QuantitySource(f"({self.text} / {other.text})")

    def __sub__(self, other: QuantitySource) -> QuantitySource:
        return QuantitySource(f"({self.text} - {other.text})")

    def __rmul__(self, factor: float) -> QuantitySource:
        return QuantitySource(f"({float(factor)!r} * {self.text})")


def quantity(name: str, value: Callable[[str], Number]) -> Number:
    """The value a range rule bounds: a field, or one derived from fields (floats or arrays)."""
    if name == "detour_ratio":
        return value("distance_km") / value("straight_line_km")
    if name == "lead_ms":
        return value("pickup_at") - value("posted_at")
    if name == "price_above_per_km_cap":
        return value("price_eur") - MAX_PRICE_PER_KM_EUR * value("distance_km")
    return value(name)


@cache
def country_ranges(axis: str) -> Mapping[str, Bounds]:
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
