"""Argument types for the command lines: each rejects bad input with a message naming it."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from processing.window import MAX_WINDOW_DAYS


def date(value: str) -> dt.date:
    """An ISO date, YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def int_within(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An integer in ``[minimum, maximum]`` (no upper bound without ``maximum``)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
        if maximum is None and number < minimum:
            raise argparse.ArgumentTypeError(f"{value!r} must be at least {minimum}")
        if maximum is not None and not minimum <= number <= maximum:
            raise argparse.ArgumentTypeError(f"{value!r} must be within [{minimum}, {maximum}]")
        return number

    return parse


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer of at least ``minimum``."""
    return int_within(minimum)


def float_within(low: float, high: float, *, low_inclusive: bool = True) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (or ``(low, high]`` without ``low_inclusive``).

    ``inf`` and ``nan`` are always refused, even below an infinite ``high``: no day count,
    share or threshold of ours means anything infinite, and ``int(inf)`` raises far downstream.
    """
    if not low_inclusive and low == 0:
        expected = "positive" if math.isinf(high) else f"positive and at most {high:g}"
    else:
        expected = f"within {'[' if low_inclusive else '('}{low:g}, {high:g}]"

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not math.isfinite(number):
            raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
        above_low = number >= low if low_inclusive else number > low
        if not (above_low and number <= high):
            raise argparse.ArgumentTypeError(f"{value!r} must be {expected}")
        return number

    return parse


positive_float = float_within(0.0, float("inf"), low_inclusive=False)
# Days of a data window, and days at its end for validation or test: a window is at most
# MAX_WINDOW_DAYS long, so a longer split could only ever be empty.
window_days = int_within(1, MAX_WINDOW_DAYS)
split_days = float_within(0.0, MAX_WINDOW_DAYS, low_inclusive=False)


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


def output_directory_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used (or created) as a directory to write into, if it cannot."""
    for existing in (path, *path.parents):
        if not existing.exists():
            continue
        if not existing.is_dir():
            inside = "" if existing == path else f" (on the way to {path})"
            return f"{existing} is a file, not a directory{inside}"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{existing} is not writable"
        return None
    return None


def output_directory(value: str) -> Path:
    """A directory to write into: it need not exist yet, but nothing in its way may be a file."""
    path = Path(value)
    problem = output_directory_problem(path)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


def first_output_problem(outputs: Mapping[str, Path]) -> str | None:
    """``flag: problem`` of the first output directory that cannot be written, if any.

    For the entry points whose outputs default to paths under ``--base-dir``: the defaults are
    checked as well as explicit values, before any work starts.
    """
    for flag, path in outputs.items():
        problem = output_directory_problem(path)
        if problem:
            return f"{flag}: {problem}"
    return None


def existing_path(value: str) -> Path:
    """A file or directory that exists."""
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{path} does not exist")
    return path


def read_json_text(path: Path, source: str) -> str:
    """The UTF-8 text of a JSON file a user named; ValueError naming ``source`` if unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{source} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{source} is a directory, not a JSON file") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{source} is not UTF-8 text: {error}") from None
    except OSError as error:
        raise ValueError(f"{source} cannot be read: {error.strerror}") from None
