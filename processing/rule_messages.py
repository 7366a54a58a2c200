"""Messages of rule violations: the one formatter of the batch details and the request errors."""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from processing.rules import TIMESTAMP_FIELDS, Rule, axis_of, country_ranges

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


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
            ranges = country_ranges(axis_of(rule.field))
            parts.append(_MessagePart(name, rule.country_field, ranges.__getitem__))
        elif name in TIMESTAMP_FIELDS:
            parts.append(_MessagePart(name, name, _iso))
        else:
            parts.append(_MessagePart(name, name))
    return template, tuple(parts)


def format_messages(rule: Rule, values: Callable[[str], list[Any]]) -> list[str]:
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
