from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from processing import lane_statistics
from processing.window import DataWindow, resolve_window

MONDAY = dt.datetime(2026, 3, 2, 3, 0, tzinfo=dt.UTC)


def test_a_relative_window_ends_the_day_before_the_execution() -> None:
    window = resolve_window(None, None, 30, MONDAY)
    assert window == DataWindow(dt.date(2026, 1, 31), dt.date(2026, 3, 1), relative=True)
    assert window.days == 30


def test_two_executions_a_week_apart_read_two_windows_a_week_apart() -> None:
    first = resolve_window(None, None, 365, MONDAY)
    second = resolve_window(None, None, 365, MONDAY + dt.timedelta(days=7))
    assert second.start - first.start == dt.timedelta(days=7)
    assert second.end - first.end == dt.timedelta(days=7)


def test_the_execution_time_counts_in_utc() -> None:
    # 00:30 in Berlin on 2 March is still 1 March in UTC: the window ends on 28 February.
    berlin = dt.timezone(dt.timedelta(hours=1))
    window = resolve_window(None, None, 7, dt.datetime(2026, 3, 2, 0, 30, tzinfo=berlin))
    assert window.end == dt.date(2026, 2, 28)


def test_explicit_dates_override_either_end() -> None:
    start, end = dt.date(2026, 1, 1), dt.date(2026, 1, 31)
    assert resolve_window(start, end, 365, MONDAY) == DataWindow(start, end, relative=False)
    assert resolve_window(None, end, 10, None).start == dt.date(2026, 1, 22)
    assert resolve_window(start, None, 10, MONDAY) == DataWindow(
        start, dt.date(2026, 3, 1), relative=True
    )


@pytest.mark.parametrize(
    ("start", "end", "days", "started", "message"),
    [
        (None, None, 30, None, "no --end-date and no --execution-start"),
        (dt.date(2026, 3, 1), dt.date(2026, 2, 1), 30, None, "starts .* after it ends"),
        (None, None, 0, MONDAY, r"--window-days must be within \[1, 1098\], got 0"),
    ],
)
def test_impossible_windows_are_clear_errors(
    start: dt.date | None, end: dt.date | None, days: int, started: dt.datetime | None,
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(ValueError, match=message):
        resolve_window(start, end, days, started)


def test_lane_statistics_writes_the_window_it_resolved(small_lake: Path, tmp_path: Path) -> None:
    # The small market runs from 2026-01-05 for 60 days; an execution on 2026-03-06 reads
    # the 30 days up to 2026-03-05.
    code = lane_statistics.main(
        ["--input", str(small_lake), "--output", str(tmp_path), "--start-date", "",
         "--end-date", "", "--window-days", "30", "--execution-start",
         "2026-03-06T04:10:00.123Z", "--validation-days", "5", "--test-days", "5"]
    )  # fmt: skip
    assert code == 0
    window = json.loads((tmp_path / "window.json").read_text())
    assert window == {"start": "2026-02-04", "end": "2026-03-05", "relative": True, "days": 30}


def test_lane_statistics_rejects_a_bad_execution_start(
    small_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        lane_statistics.main(["--input", str(small_lake), "--execution-start", "yesterday"])
    assert exit_info.value.code == 2
    assert "'yesterday' is not an ISO 8601 timestamp" in capsys.readouterr().err
