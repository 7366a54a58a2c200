from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from processing.lineage import LINEAGE_KEYS, lineage_properties, merge_prepare_summaries


def _summary(rows: int, train: int, window_end: str = "2026-03-05") -> dict[str, Any]:
    return {
        "validation": {"rows": rows, "valid": rows - 2, "quarantined": 2,
                       "by_reason": {"missing_field": 2}},
        "rows": {"train": train, "validation": 3, "test": 2},
        "window": {"start": "2026-01-05", "end": window_end},
        "code_version": "abc123",
    }  # fmt: skip


def test_summaries_of_the_instances_add_up(tmp_path: Path) -> None:
    for host, rows in (("algo-1", 20), ("algo-2", 30)):
        (tmp_path / f"prepare_summary-{host}.json").write_text(json.dumps(_summary(rows, 10)))
    merged = merge_prepare_summaries(tmp_path)
    assert merged["rows"] == {
        "in": 50, "valid": 46, "quarantined": 4, "train": 20, "validation": 6, "test": 4
    }  # fmt: skip
    assert merged["quarantine_by_reason"]["missing_field"] == 4
    assert merged["prepare_instances"] == 2
    assert merged["window"] == {"start": "2026-01-05", "end": "2026-03-05"}


def test_instances_that_disagree_on_the_window_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "prepare_summary-algo-1.json").write_text(json.dumps(_summary(20, 10)))
    (tmp_path / "prepare_summary-algo-2.json").write_text(
        json.dumps(_summary(20, 10, window_end="2026-03-06"))
    )
    with pytest.raises(ValueError, match=r"prepare_summary-algo-2.json: window .* differs"):
        merge_prepare_summaries(tmp_path)


def test_a_missing_or_broken_summary_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Prepare summary"):
        merge_prepare_summaries(tmp_path)
    (tmp_path / "prepare_summary.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"prepare_summary.json: not a Prepare summary"):
        merge_prepare_summaries(tmp_path)


def test_a_model_without_lineage_says_unknown_for_every_key() -> None:
    assert lineage_properties({}) == dict.fromkeys(LINEAGE_KEYS, "unknown")
