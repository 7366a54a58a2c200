"""The request check: the rule table applied to one price request, compiled into one function.

:func:`check_request` runs on every price request, on the endpoint's hot path. Walking the
table one rule closure at a time costs two to three times what a hand-written check costs, so
on first use the request rules of :data:`processing.rules.RULES` are written out as the Python
source of one function (:func:`predicate_source` shows it) and compiled: it reads each field
once, into a local, tests the rules in table order and returns the position in ``RULES`` of the
first rule the load breaks. Everything in that source comes from the table: the checks, the
bounds (floats as exact literals), the derived quantities (:func:`processing.rules.quantity`
traced with :class:`processing.rules.QuantitySource`) and the country ranges. Only a load that
fails pays for its message, formatted from the table as the batch formats it.
:func:`first_broken_rule_by_walking` evaluates the same rules one by one: the reference the tests
hold the compiled function to.
"""

from __future__ import annotations

import keyword
import linecache
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

from processing.geography import great_circle_km_scalar
from processing.regions import region_country
from processing.rule_messages import format_messages
from processing.rules import (
    COORDINATE_FIELDS,
    HIGH_END_TEST,
    LOW_END_TEST,
    RULES,
    QuantitySource,
    Rule,
    axis_of,
    country_ranges,
    quantity,
)

Predicate = Callable[[Mapping[str, Any]], int]
# What the predicates return for a load that breaks no rule.
NO_RULE_BROKEN = -1
# The compiled function's name, and the file name that its tracebacks and profiles show.
PREDICATE_NAME = "first_broken_rule"
PREDICATE_FILENAME = "<processing.request_check: RULES compiled>"
STRAIGHT_LINE_KM = "straight_line_km"
# How the compiled source writes each end test of processing.rules.
OPERATOR_SOURCE: Mapping[Callable[[Any, Any], Any], str] = MappingProxyType(
    {operator.ge: ">=", operator.gt: ">", operator.le: "<=", operator.lt: "<"}
)


@dataclass(frozen=True)
class Problem:
    """Why one load fails validation: the reason code, the field at fault, a message."""

    reason: str
    field: str
    message: str


class _RequestValues(dict[str, Any]):
    """One request's fields, and (computed on first use) the straight line between its ends."""

    def __missing__(self, name: str) -> float:
        if name != STRAIGHT_LINE_KM:
            raise KeyError(name)
        straight_line_km = great_circle_km_scalar(*(self[end] for end in COORDINATE_FIELDS))
        self[name] = straight_line_km
        return straight_line_km


# -- the reference: one closure per rule, walked in table order ------------------------------------


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
    if rule.check == "in_country":
        ranges = country_ranges(axis_of(field))
        # Country ranges are closed intervals, as processing.rules.country_ranges builds them.
        return lambda values: not ranges[values[country_field]].contains(values[field])
    if rule.check == "range":
        bounds, name = rule.bounds, rule.bounded
        return lambda values: not bounds.contains(quantity(name, values.__getitem__))
    raise ValueError(f"rule {rule.reason} on {field}: a {rule.check} check needs a batch")


@cache
def _request_rules() -> tuple[tuple[int, Callable[[_RequestValues], bool]], ...]:
    # Built on first use: the country ranges are read from the package data then, not at import.
    return tuple(
        (position, _request_breaks(rule)) for position, rule in enumerate(RULES) if rule.in_requests
    )


def first_broken_rule_by_walking(load: Mapping[str, Any]) -> int:
    """The position in RULES of the first rule ``load`` breaks, or -1: rule by rule (slow)."""
    values = _RequestValues(load)
    for position, breaks in _request_rules():
        if breaks(values):
            return position
    return NO_RULE_BROKEN


# -- the hot path: the request rules compiled into one function ------------------------------------


class _PredicateWriter:
    """Writes the source of the compiled predicate, one ``if broken: return position`` per rule.

    Each field is read from the load into a local of its own name right before the first rule
    that needs it, derived values likewise, so a load that fails early reads no more fields.
    Everything else the source uses is a global of the compiled function, named with a leading
    underscore so that it cannot shadow a field.
    """

    def __init__(self) -> None:
        self._lines = [f"def {PREDICATE_NAME}(load):"]
        # No builtins: the function uses only what the writer binds here.
        self.namespace: dict[str, Any] = {"__builtins__": {}}
        self._locals: set[str] = set()

    def _emit(self, statement: str) -> None:
        self._lines.append(f"    {statement}")

    def _local(self, name: str, expression: str) -> str:
        """The local ``name``, assigned ``expression`` the first time it is asked for."""
        if name not in self._locals:
            if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
                raise ValueError(f"{name!r} cannot be a local of the compiled request check")
            self._emit(f"{name} = {expression}")
            self._locals.add(name)
        return name

    def constant(self, value: object, name: str) -> str:
        """The global ``name`` (a leading underscore) by which the source refers to ``value``."""
        if self.namespace.setdefault(name, value) is not value:
            raise ValueError(f"{name} names two constants of the compiled request check")
        return name

    def number(self, value: float) -> str:
        """``value`` in the source: its repr, which reads back exactly, or a constant for inf."""
        if math.isfinite(value):
            return repr(value)
        return self.constant(value, "_infinity" if value > 0 else "_minus_infinity")

    def value(self, name: str) -> str:
        """A field of the load, or the straight line between its ends."""
        if name == STRAIGHT_LINE_KM and name not in self._locals:
            ends = ", ".join(self.value(end) for end in COORDINATE_FIELDS)
            great_circle = self.constant(great_circle_km_scalar, "_great_circle_km")
            return self._local(name, f"{great_circle}({ends})")
        return self._local(name, f"load[{name!r}]")

    def bounded(self, rule: Rule) -> str:
        """The value that ``rule`` bounds, its formula written out by processing.rules.quantity."""
        formula = quantity(rule.bounded, lambda name: QuantitySource(self.value(name))).text
        return formula if formula == rule.bounded else self._local(rule.bounded, formula)

    def region_country(self, field: str) -> str:
        """The country whose format the region in ``field`` has, or None."""
        function = self.constant(region_country, "_region_country")
        return self._local(f"{field}_format_country", f"{function}({self.value(field)})")

    @staticmethod
    def inside(value: str, low: str, high: str, low_inclusive: bool, high_inclusive: bool) -> str:
        """Source that is true where processing.rules.inside is."""
        above = OPERATOR_SOURCE[LOW_END_TEST[low_inclusive]]
        below = OPERATOR_SOURCE[HIGH_END_TEST[high_inclusive]]
        return f"({value} {above} {low} and {value} {below} {high})"

    def broken(self, rule: Rule) -> str:
        """Source that is true where the load breaks ``rule``; what it reads is emitted first."""
        field = rule.field
        if rule.check == "finite":
            return f"not {self.constant(math.isfinite, '_isfinite')}({self.value(field)})"
        if rule.check == "choice":
            return f"{self.value(field)} not in {self.constant(rule.choices, f'_{field}_choices')}"
        if rule.check == "region":
            return f"{self.region_country(field)} is None"
        if rule.check == "region_country":
            return f"{self.region_country(field)} != {self.value(rule.country_field)}"
        if rule.check == "in_country":
            ranges = country_ranges(axis_of(field))
            lows = {country: bounds.low for country, bounds in ranges.items()}
            highs = {country: bounds.high for country, bounds in ranges.items()}
            low_by_country = self.constant(lows, f"_{field}_low_by_country")
            high_by_country = self.constant(highs, f"_{field}_high_by_country")
            value, country = self.value(field), self.value(rule.country_field)
            # Country ranges are closed intervals, as processing.rules.country_ranges builds them.
            low, high = f"{low_by_country}[{country}]", f"{high_by_country}[{country}]"
            return "not " + self.inside(value, low, high, True, True)
        if rule.check == "range":
            bounds = rule.bounds
            low, high = self.number(bounds.low), self.number(bounds.high)
            value = self.bounded(rule)
            return "not " + self.inside(
                value, low, high, bounds.low_inclusive, bounds.high_inclusive
            )
        raise ValueError(f"rule {rule.reason} on {field}: a {rule.check} check needs a batch")

    def add(self, position: int, rule: Rule) -> None:
        """The test of one rule: returns ``position`` where the load breaks it."""
        condition = self.broken(rule)
        self._emit(f"if {condition}:  # {rule.reason}: {rule.field}")
        self._emit(f"    return {position}")

    def source(self) -> str:
        """The whole function."""
        return "\n".join([*self._lines, f"    return {NO_RULE_BROKEN}", ""])


def _written_predicate() -> tuple[str, dict[str, Any]]:
    writer = _PredicateWriter()
    for position, rule in enumerate(RULES):
        if rule.in_requests:
            writer.add(position, rule)
    return writer.source(), writer.namespace


def predicate_source() -> str:
    """The Python source of :func:`first_broken_rule` as written from RULES, for reading."""
    return _written_predicate()[0]


@cache
def _compiled_predicate() -> Predicate:
    # Built on first use: the country ranges are read from the package data then, not at import.
    source, namespace = _written_predicate()
    exec(compile(source, PREDICATE_FILENAME, "exec"), namespace)
    # Tracebacks and debuggers show the compiled lines; no mtime: linecache keeps the entry.
    lines = source.splitlines(keepends=True)
    linecache.cache[PREDICATE_FILENAME] = (len(source), None, lines, PREDICATE_FILENAME)
    predicate: Predicate = namespace[PREDICATE_NAME]
    return predicate


def first_broken_rule(load: Mapping[str, Any]) -> int:
    """The position in RULES of the first rule ``load`` breaks, or -1: the compiled function."""
    return _compiled_predicate()(load)


def check_request(load: Mapping[str, Any]) -> Problem | None:
    """The first rule of :data:`processing.rules.RULES` that one price request breaks, or None.

    The rules of :func:`processing.validation.validate`, for one load without id and price, as
    the server receives it: numbers as float, timestamps as epoch ms, the request fields all
    present and of the right Python type (the parser checks that). The message is the one
    :func:`~processing.validation.validate` gives as the quarantine detail of the same load.
    """
    position = _compiled_predicate()(load)
    if position == NO_RULE_BROKEN:
        return None
    rule = RULES[position]
    values = _RequestValues(load)
    [message] = format_messages(rule, lambda name: [values[name]])
    return Problem(rule.reason, rule.field, message)
