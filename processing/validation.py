"""Batch validation of load records: the rule table evaluated vectorised over an Arrow table.

:func:`validate` applies :data:`processing.rules.RULES` to a batch (Prepare) and quarantines
every row that breaks a rule, with the rule's reason and message; the request check
(:mod:`processing.request_check`) applies the same table to one load with the same messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, cached_property, partial
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from processing.columns import UNKNOWN_CODE, encode, encode_with, epoch_ms, floats, null_mask
from processing.geography import great_circle_km, great_circle_km_scalar
from processing.regions import region_country
from processing.rule_messages import format_messages
from processing.rules import (
    COORDINATE_FIELDS,
    NUMERIC_FIELDS,
    REASONS,
    RULES,
    TIMESTAMP_FIELDS,
    Rule,
    axis_of,
    country_ranges,
    inside,
    quantity,
)
from processing.schema import (
    EUROPEAN_COUNTRIES,
    FIELD_NAMES,
    QUARANTINE_DETAIL,
    QUARANTINE_REASON,
    conform,
)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
Result = TypeVar("Result")


def _codes(values: frozenset[str]) -> dict[str, int]:
    return {value: position for position, value in enumerate(sorted(values))}


COUNTRY_CODES = _codes(EUROPEAN_COUNTRIES)


@cache
def _country_range_arrays(axis: str) -> tuple[FloatArray, FloatArray]:
    """Low and high ends of the country ranges by country code; code -1 allows anything."""
    ranges = country_ranges(axis)
    low = np.array([ranges[country].low for country in COUNTRY_CODES] + [-math.inf])
    high = np.array([ranges[country].high for country in COUNTRY_CODES] + [math.inf])
    return low, high


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
        low, high = _country_range_arrays(axis_of(rule.field))
        country = columns.codes(rule.country_field, EUROPEAN_COUNTRIES)
        # Country ranges are closed intervals, as processing.rules.country_ranges builds them.
        return ~inside(columns.number(rule.field), low[country], high[country], True, True)
    if rule.check == "range":
        with np.errstate(divide="ignore", invalid="ignore"):  # rows that earlier rules reject
            return ~rule.bounds.contains_all(quantity(rule.bounded, columns.number))
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
                texts = format_messages(rule, partial(columns.message_values, rows=rule_rows))
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
