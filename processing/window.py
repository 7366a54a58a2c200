"""The data window of a pipeline run: explicit dates, or relative to when the execution started.

A scheduled retraining passes no dates: its window ends the day before the execution starts and
spans ``window_days`` days, so two runs a week apart train on two windows a week apart. Explicit
dates override either end. The lane-statistics step resolves the window once and writes it as
``window.json``; Prepare and the registry read the resolved dates from there.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

MAX_WINDOW_DAYS = 3 * 366


@dataclass(frozen=True)
class DataWindow:
    """Inclusive first and last day of the loads a run reads, and how they were chosen."""

    start: dt.date
    end: dt.date
    relative: bool

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"the window starts ({self.start}) after it ends ({self.end})")

    @property
    def days(self) -> int:
        """Days in the window, both ends included."""
        return (self.end - self.start).days + 1

    def to_json(self) -> dict[str, object]:
        """The content of window.json (dates as ISO strings, for Std:JsonGet)."""
        document = asdict(self)
        document.update(start=self.start.isoformat(), end=self.end.isoformat(), days=self.days)
        return document

    def write(self, path: Path) -> Path:
        """Write window.json to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def resolve_window(
    start: dt.date | None,
    end: dt.date | None,
    window_days: int,
    execution_started: dt.datetime | None,
) -> DataWindow:
    """The window from explicit dates where given, else relative to the execution's start.

    ``end`` defaults to the day before the execution started (its UTC date), ``start`` to
    ``window_days`` days up to ``end``; with only ``start`` given, ``end`` still defaults to the
    day before the execution. Raises ValueError naming what is missing or inconsistent.
    """
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"--window-days must be within [1, {MAX_WINDOW_DAYS}], got {window_days}")
    relative = start is None or end is None
    if end is None:
        if execution_started is None:
            raise ValueError(
                "no --end-date and no --execution-start: cannot place a relative window"
            )
        started = execution_started
        if started.tzinfo is not None:
            started = started.astimezone(dt.UTC)
        end = started.date() - dt.timedelta(days=1)
    if start is None:
        start = end - dt.timedelta(days=window_days - 1)
    return DataWindow(start=start, end=end, relative=relative)
