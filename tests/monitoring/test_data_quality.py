from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from monitoring.data_quality import (
    DEFAULT_MONITORING_CONFIG,
    KllSketch,
    infer_type,
    read_dataset,
    suggest_baseline,
    write_baseline,
)
from processing.schema import REQUEST_FIELDS


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "2", "-3", "+ 4"], "Integral"),
        (["1", "2.5", "3e5", "-1.5E-3"], "Fractional"),
        (["1.0", "2.0"], "Fractional"),  # the text decides, as in Deequ
        (["1", "x"], "String"),
        (["true", "false"], "String"),
        (["true", "1"], "String"),
        ([None, None], "Unknown"),
        (["1", None, "2"], "Integral"),
    ],
)
def test_type_inference_follows_deequ(values: list[str | None], expected: str) -> None:
    assert infer_type(pa.array(values, type=pa.string())) == expected


def test_numeric_statistics_match_model_monitor_definitions() -> None:
    # The SDK fixture's _c1 column: 38 ones and 62 zeros.
    dataset = pa.table({"_c1": pa.array(["1"] * 38 + ["0"] * 62)})
    statistics, constraints = suggest_baseline(dataset)
    feature = statistics["features"][0]
    numbers = feature["numerical_statistics"]
    assert statistics["dataset"]["item_count"] == 100
    assert feature["inferred_type"] == "Integral"
    assert numbers["common"] == {"num_present": 100, "num_missing": 0}
    assert numbers["mean"] == pytest.approx(0.38)
    assert numbers["sum"] == 38.0
    assert numbers["std_dev"] == pytest.approx(0.48538644398046393)  # population std
    assert (numbers["min"], numbers["max"]) == (0.0, 1.0)
    buckets = numbers["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10
    assert buckets[0] == {"lower_bound": 0.0, "upper_bound": 0.1, "count": 62.0}
    assert buckets[-1]["count"] == 38.0  # the last bucket includes the maximum
    assert sum(b["count"] for b in buckets) == 100.0
    sketch = numbers["distribution"]["kll"]["sketch"]
    assert sketch["parameters"] == {"c": 0.64, "k": 2048.0}
    assert sketch["data"] == [[1.0] * 38 + [0.0] * 62]  # few values: level 0, arrival order
    assert constraints["features"][0] == {
        "name": "_c1",
        "inferred_type": "Integral",
        "completeness": 1.0,
        "num_constraints": {"is_non_negative": True},
    }
    assert constraints["monitoring_config"] == DEFAULT_MONITORING_CONFIG


def test_bucket_bounds_use_the_analyzer_operation_order() -> None:
    dataset = pa.table({"x": pa.array([str(v) for v in (1.0, 2.0, 3.0, 1.0)])})
    statistics, _ = suggest_baseline(dataset)
    buckets = statistics["features"][0]["numerical_statistics"]["distribution"]["kll"]["buckets"]
    assert [b["upper_bound"] for b in buckets[:3]] == [1.2, 1.4, 1.6]
    assert buckets[4]["upper_bound"] == 1.0 + (3.0 - 1.0) * 5 / 10.0


def test_kll_sketch_compacts_large_inputs_and_keeps_quantiles() -> None:
    values = np.random.default_rng(0).normal(100.0, 15.0, 50_000)
    sketch = KllSketch()
    sketch.update_all(values.tolist())
    items, weights = sketch.weighted_items()
    assert len(sketch.levels) > 1
    assert len(items) < 10_000
    assert abs(weights.sum() - len(values)) / len(values) < 0.01
    for quantile in (0.1, 0.5, 0.9):
        estimate = items[np.searchsorted(np.cumsum(weights), quantile * weights.sum())]
        assert estimate == pytest.approx(np.quantile(values, quantile), abs=1.0)


def test_strings_get_histograms_completeness_and_domains() -> None:
    equipment = ["reefer"] * 5 + ["tautliner"] * 3 + [None] + ["box"] * 2
    ids = [f"L{i}" for i in range(11)]
    statistics, constraints = suggest_baseline(
        pa.table({"equipment_type": pa.array(equipment), "load_id": pa.array(ids)})
    )
    strings = statistics["features"][0]["string_statistics"]
    assert strings["common"] == {"num_present": 10, "num_missing": 1}
    assert strings["distinct_count"] == 3.0
    assert strings["distribution"]["categorical"]["buckets"] == [
        {"value": "reefer", "count": 5},
        {"value": "tautliner", "count": 3},
        {"value": "box", "count": 2},
    ]
    equipment_constraint, id_constraint = constraints["features"]
    assert equipment_constraint["completeness"] == pytest.approx(10 / 11)
    assert equipment_constraint["string_constraints"] == {"domains": ["reefer", "tautliner", "box"]}
    assert "string_constraints" not in id_constraint  # every id is a singleton


def test_baseline_of_the_prepare_sample(prepared_dir: Path, tmp_path: Path) -> None:
    statistics_path, constraints_path = write_baseline(prepared_dir / "baseline", tmp_path)
    statistics = json.loads(statistics_path.read_text())
    constraints = json.loads(constraints_path.read_text())
    with (prepared_dir / "baseline" / "baseline.csv").open() as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    assert statistics["dataset"]["item_count"] == rows
    types = {f["name"]: f["inferred_type"] for f in statistics["features"]}
    assert tuple(types) == REQUEST_FIELDS
    assert types["distance_km"] == "Fractional"
    assert types["equipment_type"] == "String"
    assert types["posted_at"] == "String"
    by_name = {f["name"]: f for f in constraints["features"]}
    assert by_name["weight_kg"]["num_constraints"] == {"is_non_negative": True}
    assert set(by_name["equipment_type"]["string_constraints"]["domains"]) <= {
        "tautliner", "mega", "box", "reefer", "flatbed", "tanker"
    }  # fmt: skip


def test_reading_a_directory_without_csv_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no CSV files"):
        read_dataset(tmp_path)
