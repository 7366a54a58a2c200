from __future__ import annotations

import csv
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from processing import prepare
from processing.features import FEATURE_NAMES, LaneStatistics
from processing.lake import read_partitions
from processing.prepare import PrepareConfig
from processing.rules import REASONS
from processing.schema import QUARANTINE_REASON, REQUEST_FIELDS


def _read(directory: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(path) for path in sorted(directory.glob("*.parquet"))])


def test_writes_every_output(prepared_dir: Path) -> None:
    for split in ("train", "validation", "test"):
        table = _read(prepared_dir / split)
        assert table.column_names[0] == "price_eur"
        assert tuple(table.column_names[1 : 1 + len(FEATURE_NAMES)]) == FEATURE_NAMES
        assert table.num_rows > 0
    assert "load_id" in _read(prepared_dir / "test").column_names
    artifacts = prepared_dir / "artifacts"
    assert {p.name for p in artifacts.iterdir()} == {
        "feature_spec.json",
        "lane_statistics.npz",
        "prepare_summary.json",
    }
    with (prepared_dir / "baseline" / "baseline.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == REQUEST_FIELDS
    assert len(rows) == 501


def test_split_is_by_posting_time_without_overlap(prepared_dir: Path) -> None:
    summary = json.loads((prepared_dir / "artifacts" / "prepare_summary.json").read_text())
    test_posted = _read(prepared_dir / "test").column("posted_at")
    window_end = summary["window_end"]
    assert pc.max(test_posted).as_py().isoformat() < window_end
    # Train and validation carry no timestamps, so check the cut on the raw window instead.
    rows = summary["rows"]
    assert rows["train"] > rows["validation"] > 0
    assert rows["test"] > 0


def test_lane_statistics_come_from_the_training_split_only(small_loads: pa.Table) -> None:
    config = PrepareConfig(validation_days=7, test_days=7)
    original = prepare.prepare(small_loads, config)
    # Make every load after the training window 10x dearer: statistics must not move.
    posted_ms = small_loads.column("posted_at").cast(pa.int64()).to_numpy()
    cut = int(np.sort(posted_ms)[-1] // 86_400_000 + 1) * 86_400_000 - 14 * 86_400_000
    price = small_loads.column("price_eur").to_numpy(zero_copy_only=False)
    inflated = np.where(posted_ms >= cut, price * 10, price)
    changed = small_loads.set_column(
        small_loads.column_names.index("price_eur"), "price_eur", pa.array(inflated)
    )
    again = prepare.prepare(changed, config)
    np.testing.assert_array_equal(
        original.statistics.lane_median_price_per_km, again.statistics.lane_median_price_per_km
    )
    test_prices = again.splits["test"].column("price_eur").to_numpy()
    assert np.median(test_prices) > 5 * np.median(original.splits["test"].column("price_eur"))


def test_counts_are_reported_and_match_the_quarantine(
    small_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = prepare.main(
        ["--input", str(small_lake), "--output", str(tmp_path), "--validation-days", "7",
         "--test-days", "7"]
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    counts = summary["validation"]
    quarantine = pq.read_table(tmp_path / "quarantine" / "quarantine.parquet")
    assert counts["quarantined"] == quarantine.num_rows > 0
    assert counts["valid"] + counts["quarantined"] == counts["rows"]
    by_reason = dict(
        zip(*np.unique(quarantine.column(QUARANTINE_REASON).to_numpy(zero_copy_only=False),
                       return_counts=True), strict=True)
    )  # fmt: skip
    assert {k: int(v) for k, v in by_reason.items()} == counts["by_reason"]
    assert set(counts["by_reason"]) <= set(REASONS)
    assert "quarantined" in captured.err
    assert sum(summary["rows"].values()) == counts["valid"]


def test_a_window_selects_days(small_lake: Path, tmp_path: Path) -> None:
    code = prepare.main(
        ["--input", str(small_lake), "--output", str(tmp_path), "--start-date", "2026-01-20",
         "--end-date", "2026-02-10", "--validation-days", "3", "--test-days", "3"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "artifacts" / "prepare_summary.json").read_text())
    assert summary["validation"]["rows"] == 22 * 400
    assert summary["window_end"].startswith("2026-02-11")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--validation-days", "0"], "must be positive"),
        (["--test-days", "abc"], "is not a number"),
        (["--start-date", "2026-13-01"], "is not a date"),
        (["--baseline-rows", "0"], "at least 1"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(
    arguments: list[str], message: str, small_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["--input", str(small_lake), *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_inputs_exit_2_with_a_clear_error(
    small_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prepare.main(["--input", str(tmp_path / "nowhere"), "--output", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (
        prepare.main(["--input", str(small_lake), "--output", str(tmp_path), "--test-days", "100"])
        == 2
    )
    assert "would be empty" in capsys.readouterr().err
    assert prepare.main(
        ["--input", str(small_lake), "--output", str(tmp_path), "--start-date", "2026-02-01",
         "--end-date", "2026-01-01"]
    ) == 2  # fmt: skip
    assert "is after" in capsys.readouterr().err
    assert not (tmp_path / "train").exists()


def test_big_splits_are_written_in_parts_that_read_back_whole(
    small_loads: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "ROWS_PER_PART", 1_000)
    prepared = prepare.prepare(small_loads, PrepareConfig(7, 7))
    with ThreadPoolExecutor(2) as executor:
        prepare.write_prepared(prepared, tmp_path, executor)
    parts = sorted((tmp_path / "train").glob("*.parquet"))
    assert len(parts) == prepare.WRITE_PARTS
    assert _read(tmp_path / "train").equals(prepared.splits["train"])
    statistics = LaneStatistics.load(tmp_path / "artifacts" / "lane_statistics.npz")
    assert statistics.regions == prepared.statistics.regions


def test_reading_the_window_back_matches_the_generator(small_lake: Path) -> None:
    loads = read_partitions(small_lake)
    assert loads.num_rows == 60 * 400
