"""Tests of the compiled request check: it gives the verdicts of the rule-by-rule walk."""

from __future__ import annotations

import linecache
import math
import traceback
from collections import Counter
from typing import Any

import numpy as np
import pytest

from processing.request_check import (
    NO_RULE_BROKEN,
    PREDICATE_FILENAME,
    check_request,
    first_broken_rule,
    first_broken_rule_by_walking,
    predicate_source,
)
from processing.rules import RULES, QuantitySource, quantity
from processing.schema import EQUIPMENT_TYPES, EUROPEAN_COUNTRIES, REQUEST_NUMBER_FIELDS

Load = dict[str, Any]

DAY_MS = 86_400_000
POSTED_AT_MS = 1_772_443_800_000  # 2026-03-02T09:30:00Z


def _load(
    origin: tuple[str, str, float, float],
    destination: tuple[str, str, float, float],
    distance_km: float,
) -> Load:
    return {
        "posted_at": POSTED_AT_MS, "pickup_at": POSTED_AT_MS + 2 * DAY_MS,
        "origin_country": origin[0], "origin_region": origin[1],
        "origin_lat": origin[2], "origin_lon": origin[3],
        "destination_country": destination[0], "destination_region": destination[1],
        "destination_lat": destination[2], "destination_lon": destination[3],
        "distance_km": distance_km, "weight_kg": 12_000.0, "loading_meters": 13.6,
        "equipment_type": "reefer", "hazmat": False,
    }  # fmt: skip


# Valid loads as the parser hands them over: floats, epoch milliseconds, plain strings.
VALID_LOADS: tuple[Load, ...] = (
    _load(("DE", "DE-10", 52.5200, 13.4050), ("DE", "DE-80", 48.1351, 11.5820), 585.0),
    _load(("FR", "FR-75", 48.8566, 2.3522), ("ES", "ES-08", 41.3874, 2.1686), 1035.0),
    _load(("GB", "GB-M", 53.4808, -2.2426), ("IE", "IE-D01", 53.3498, -6.2603), 460.0),
    _load(("PL", "PL-00", 52.2297, 21.0122), ("IT", "IT-20", 45.4642, 9.1900), 1500.0),
)
COUNTRIES = (*sorted(EUROPEAN_COUNTRIES), "XX", "de", "")
REGIONS = ("DE-80", "DE-8", "FR-75", "ES-08", "GB-M", "GB-LS", "GB-1", "IE-D01", "IE-D6W",
           "IE-01", "PL-00", "IT-20", "XX-10", "DE80", "")  # fmt: skip
EQUIPMENT = (*EQUIPMENT_TYPES, "spaceship", "")
MUTATED_LOADS = 4_000
SAME_PLACE = "destination at the origin"
# What a mutation changes: a field, or (SAME_PLACE) both coordinates of the destination.
MUTATIONS = (
    *REQUEST_NUMBER_FIELDS,
    "origin_country",
    "origin_region",
    "destination_country",
    "destination_region",
    "equipment_type",
    "pickup_at",
    "posted_at",
    SAME_PLACE,
)


def _bound_values(field: str) -> list[float]:
    """The ends of every range rule on ``field`` and the floats just beside them."""
    values = []
    for rule in RULES:
        if rule.check == "range" and rule.bounded == field:
            for end in (rule.bounds.low, rule.bounds.high):
                if math.isfinite(end):
                    values += [end, math.nextafter(end, -math.inf), math.nextafter(end, math.inf)]
    return values


def _mutated_number(rng: np.random.Generator, load: Load, name: str) -> float:
    value = float(load[name])
    special = [math.nan, math.inf, -math.inf, 0.0, -value, *_bound_values(name)]
    if name.endswith(("_lat", "_lon")):
        # Another load's end: often in another country's box.
        other = VALID_LOADS[rng.integers(len(VALID_LOADS))]
        end = name.split("_", 1)[1]
        special += [other[f"origin_{end}"], other[f"destination_{end}"], value + 0.6, value - 0.6]
    choice = rng.integers(3)
    if choice == 0:
        return float(special[rng.integers(len(special))])
    if choice == 1:
        return value * float(rng.uniform(0.0, 2.0))
    return value + float(rng.normal(0.0, 0.01 * abs(value) + 0.5))


def _mutate(rng: np.random.Generator, load: Load) -> Load:
    """``load`` with one to three fields changed at random."""
    mutated = dict(load)
    for index in rng.choice(len(MUTATIONS), size=rng.integers(1, 4), replace=False):
        name = MUTATIONS[index]
        if name in REQUEST_NUMBER_FIELDS:
            mutated[name] = _mutated_number(rng, load, name)
        elif name.endswith("_country"):
            mutated[name] = COUNTRIES[rng.integers(len(COUNTRIES))]
        elif name.endswith("_region"):
            mutated[name] = REGIONS[rng.integers(len(REGIONS))]
        elif name == SAME_PLACE:  # the destination within a few hundred metres of the origin
            for axis in ("lat", "lon"):
                mutated[f"destination_{axis}"] = load[f"origin_{axis}"] + rng.normal(0.0, 0.003)
        elif name == "equipment_type":
            mutated[name] = EQUIPMENT[rng.integers(len(EQUIPMENT))]
        else:  # a timestamp, moved by up to three days either way, or to the other one
            shift = int(rng.integers(-3 * DAY_MS, 3 * DAY_MS))
            other = "posted_at" if name == "pickup_at" else "pickup_at"
            mutated[name] = load[other] if rng.random() < 0.2 else load[name] + shift
    return mutated


def _mutated_loads() -> list[Load]:
    rng = np.random.default_rng(20260302)
    return [_mutate(rng, VALID_LOADS[rng.integers(len(VALID_LOADS))]) for _ in range(MUTATED_LOADS)]


def test_valid_loads_break_no_rule() -> None:
    for load in VALID_LOADS:
        assert first_broken_rule(load) == NO_RULE_BROKEN
        assert first_broken_rule_by_walking(load) == NO_RULE_BROKEN
        assert check_request(load) is None


def test_compiled_check_agrees_with_the_walk_on_mutated_loads() -> None:
    verdicts: Counter[int] = Counter()
    for load in _mutated_loads():
        expected = first_broken_rule_by_walking(load)
        assert first_broken_rule(load) == expected, load
        verdicts[expected] += 1
        problem = check_request(load)
        if expected == NO_RULE_BROKEN:
            assert problem is None
        else:
            assert problem is not None
            rule = RULES[expected]
            assert (problem.reason, problem.field) == (rule.reason, rule.field)
    # The mutations reach every rule a request can break, and leave some loads valid.
    request_rules = {position for position, rule in enumerate(RULES) if rule.in_requests}
    assert set(verdicts) == request_rules | {NO_RULE_BROKEN}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("detour_ratio", 0.5),
        ("lead_ms", 3_600_000.0),
        ("straight_line_km", 400.0),
        ("weight_kg", 7.0),
    ],
)
def test_traced_quantities_compute_what_quantity_computes(name: str, expected: float) -> None:
    values = {"distance_km": 200.0, "straight_line_km": 400.0, "pickup_at": 7_200_000.0,
              "posted_at": 3_600_000.0, "weight_kg": 7.0}  # fmt: skip
    formula = quantity(name, QuantitySource).text
    assert quantity(name, values.__getitem__) == expected
    assert eval(formula, {"__builtins__": {}}, values) == expected


def test_source_tests_each_request_rule_once_in_table_order() -> None:
    returns = [
        int(line.split()[1])
        for line in predicate_source().splitlines()
        if line.strip().startswith("return ")
    ]
    request_rules = [position for position, rule in enumerate(RULES) if rule.in_requests]
    assert returns == [*request_rules, NO_RULE_BROKEN]


def test_a_missing_field_is_named_and_the_traceback_shows_the_compiled_line() -> None:
    load = dict(VALID_LOADS[0])
    del load["weight_kg"]
    with pytest.raises(KeyError, match="weight_kg") as raised:
        first_broken_rule(load)
    frame = traceback.extract_tb(raised.value.__traceback__)[-1]
    assert frame.filename == PREDICATE_FILENAME
    assert "load['weight_kg']" in linecache.getline(PREDICATE_FILENAME, frame.lineno or 0)
