"""Argument types for the command lines: each rejects bad input with a message naming it."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable


def date(value: str) -> dt.date:
    """An ISO date, YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer of at least ``minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{value!r} must be at least {minimum}")
        return number

    return parse


def float_within(low: float, high: float, *, low_inclusive: bool = True) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (or ``(low, high]`` without ``low_inclusive``)."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        above_low = number >= low if low_inclusive else number > low
        if not (above_low and number <= high):
            if not low_inclusive and high == float("inf"):
                raise argparse.ArgumentTypeError(f"{value!r} must be positive")
            raise argparse.ArgumentTypeError(f"{value!r} must be within [{low:g}, {high:g}]")
        return number

    return parse


positive_float = float_within(0.0, float("inf"), low_inclusive=False)


def optional_date(value: str) -> dt.date | None:
    """An ISO date, or None for an empty value (a pipeline parameter left at its default)."""
    return date(value) if value.strip() else None


def timestamp(value: str) -> dt.datetime:
    """An ISO 8601 timestamp (SageMaker's ``ExecutionVariables.START_DATETIME``)."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
