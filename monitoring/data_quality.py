"""Data-quality baselines in SageMaker Model Monitor's formats: statistics.json, constraints.json.

AWS's analyzer (Spark + Deequ) computes these in the cloud; the local pipeline runner and the
local monitor compute them here, with the same field names, structure and rules (see
shared/notes/monitor-formats.md): Deequ's type inference on the text of each value, population
standard deviation, a KLL sketch (k = 2048, c = 0.64) with ten equal-width buckets, categorical
histograms for strings, and the constraints Deequ suggests (completeness, non-negativity,
domains of low-cardinality strings) with the analyzer's default monitoring config.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
KLL_SKETCH_SIZE = 2048
KLL_SHRINKING_FACTOR = 0.64
BUCKETS = 10
# Deequ's profiler builds histograms only up to this many distinct values.
MAX_CATEGORICAL_BUCKETS = 120
# CategoricalRangeRule: suggest a domain when at most this share of the distinct values occur
# only once.
MAX_SINGLETON_SHARE_FOR_DOMAIN = 0.1

# Deequ DataType regexes, applied to the text of every non-null value.
FRACTIONAL = r"^(-|\+)? ?\d+((\.\d+)|((?:\.\d+)?[Ee][-+]?\d+))$"
INTEGRAL = r"^(-|\+)? ?\d+$"
BOOLEAN = r"^(true|false)$"

DEFAULT_MONITORING_CONFIG: dict[str, Any] = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
    },
}


def infer_type(values: pa.Array) -> str:
    """Deequ's inferred type of a column of texts: Integral, Fractional, String or Unknown.

    Any String (or Boolean mixed with numbers) makes String; any Fractional makes Fractional;
    all null makes Unknown. Columns of only true/false are reported as String: the Model
    Monitor documentation lists no Boolean type.
    """
    present = pc.drop_null(values)
    if len(present) == 0:
        return "Unknown"
    fractional = pc.sum(pc.match_substring_regex(present, FRACTIONAL)).as_py() or 0
    integral = pc.sum(pc.match_substring_regex(present, INTEGRAL)).as_py() or 0
    if fractional + integral < len(present):
        return "String"
    return "Fractional" if fractional else "Integral"


@dataclass
class KllSketch:
    """Deequ's non-sampling KLL sketch: compactor levels, level h holding items of weight 2^h."""

    sketch_size: int = KLL_SKETCH_SIZE
    shrinking_factor: float = KLL_SHRINKING_FACTOR
    levels: list[list[float]] = field(default_factory=lambda: [[]])
    _compactions: list[int] = field(default_factory=lambda: [0])

    def capacity(self, height: int) -> int:
        """Items level ``height`` may hold before it compacts (Deequ QuantileNonSample).

        The top level holds the most; each level below holds ``c`` times fewer.
        """
        depth = len(self.levels) - height - 1
        return 2 * (math.ceil(self.sketch_size * self.shrinking_factor**depth / 2) + 1)

    def update_all(self, values: Sequence[float]) -> None:
        """Add values in order (level 0 keeps arrival order until it compacts)."""
        for value in values:
            self.levels[0].append(value)
            if len(self.levels[0]) >= self.capacity(0):
                self._compress()

    def _compress(self) -> None:
        for height in range(len(self.levels)):
            if len(self.levels[height]) >= self.capacity(height):
                if height + 1 >= len(self.levels):
                    self.levels.append([])
                    self._compactions.append(0)
                ordered = sorted(self.levels[height])
                # An odd item out stays behind, so that no weight is lost or invented.
                leftover = [ordered.pop()] if len(ordered) % 2 else []
                # Keep every other item, alternating the offset, as Deequ does.
                offset = self._compactions[height] % 2
                self._compactions[height] += 1
                self.levels[height + 1].extend(ordered[offset::2])
                self.levels[height] = leftover

    def weighted_items(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """All items and their weights, sorted by value."""
        items = np.concatenate([np.asarray(level, dtype=np.float64) for level in self.levels])
        weights = np.concatenate(
            [np.full(len(level), 2.0**height) for height, level in enumerate(self.levels)]
        )
        order = np.argsort(items, kind="stable")
        return items[order], weights[order]

    def to_json(self) -> dict[str, Any]:
        """The ``sketch`` object of statistics.json."""
        return {
            "parameters": {"c": self.shrinking_factor, "k": float(self.sketch_size)},
            "data": [list(level) for level in self.levels],
        }


def _buckets(sketch: KllSketch, low: float, high: float) -> list[dict[str, float]]:
    items, weights = sketch.weighted_items()
    cumulative = np.concatenate([[0.0], np.cumsum(weights)])

    def rank_exclusive(x: float) -> float:
        return float(cumulative[np.searchsorted(items, x, side="left")])

    def rank(x: float) -> float:
        return float(cumulative[np.searchsorted(items, x, side="right")])

    buckets = []
    for index in range(BUCKETS):
        lower = low + (high - low) * index / 10.0
        upper = low + (high - low) * (index + 1) / 10.0
        last = index == BUCKETS - 1
        count = (rank(upper) if last else rank_exclusive(upper)) - rank_exclusive(lower)
        buckets.append({"lower_bound": lower, "upper_bound": upper, "count": count})
    return buckets


def _numeric_statistics(texts: pa.Array, total: int) -> dict[str, Any]:
    numbers = pc.cast(pc.drop_null(texts), pa.float64()).to_numpy(zero_copy_only=False)
    present = len(numbers)
    sketch = KllSketch()
    sketch.update_all(numbers.tolist())
    low = float(numbers.min()) if present else 0.0
    high = float(numbers.max()) if present else 0.0
    return {
        "common": {"num_present": present, "num_missing": total - present},
        "mean": float(numbers.mean()) if present else 0.0,
        "sum": float(numbers.sum()),
        "std_dev": float(numbers.std()) if present else 0.0,  # population, as Deequ
        "min": low,
        "max": high,
        "distribution": {
            "kll": {"buckets": _buckets(sketch, low, high), "sketch": sketch.to_json()}
        },
    }


def _string_statistics(texts: pa.Array, total: int) -> dict[str, Any]:
    present = pc.drop_null(texts)
    counts = pc.value_counts(present)
    values = counts.field("values").to_pylist()
    frequencies = counts.field("counts").to_pylist()
    statistics: dict[str, Any] = {
        "common": {"num_present": len(present), "num_missing": total - len(present)},
        "distinct_count": float(len(values)),
    }
    if len(values) <= MAX_CATEGORICAL_BUCKETS:
        ordered = sorted(
            zip(values, frequencies, strict=True), key=lambda item: (-item[1], item[0])
        )
        statistics["distribution"] = {
            "categorical": {"buckets": [{"value": v, "count": c} for v, c in ordered]}
        }
    return statistics


def read_dataset(path: Path) -> pa.Table:
    """A CSV file with header (or a directory of them) with every column read as text."""
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no CSV files in {path}")
    tables = []
    for file in files:
        with file.open(newline="", encoding="utf-8") as handle:
            names = next(csv.reader(handle), [])
        if not names:
            raise ValueError(f"{file} has no header row")
        types = dict.fromkeys(names, pa.string())
        tables.append(
            pacsv.read_csv(
                file,
                convert_options=pacsv.ConvertOptions(
                    column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
                ),
            )
        )
    return pa.concat_tables(tables)


def suggest_baseline(dataset: pa.Table) -> tuple[dict[str, Any], dict[str, Any]]:
    """statistics.json and constraints.json content for a dataset of text columns."""
    total = dataset.num_rows
    features, constraints = [], []
    for name in dataset.column_names:
        texts = dataset.column(name).combine_chunks()
        if not pa.types.is_string(texts.type):
            texts = texts.cast(pa.string())
        inferred = infer_type(texts)
        entry: dict[str, Any] = {"name": name, "inferred_type": inferred}
        constraint: dict[str, Any] = {
            "name": name,
            "inferred_type": inferred,
            "completeness": (total - texts.null_count) / total if total else 0.0,
        }
        if inferred in ("Integral", "Fractional"):
            entry["numerical_statistics"] = _numeric_statistics(texts, total)
            constraint["num_constraints"] = {
                "is_non_negative": entry["numerical_statistics"]["min"] >= 0
            }
        else:
            entry["string_statistics"] = _string_statistics(texts, total)
            domain = _domain(texts)
            if domain is not None:
                constraint["string_constraints"] = {"domains": domain}
        features.append(entry)
        constraints.append(constraint)
    statistics = {"version": 0.0, "dataset": {"item_count": total}, "features": features}
    return statistics, {
        "version": 0.0,
        "features": constraints,
        "monitoring_config": json.loads(json.dumps(DEFAULT_MONITORING_CONFIG)),
    }


def _domain(texts: pa.Array) -> list[str] | None:
    counts = pc.value_counts(pc.drop_null(texts))
    if len(counts) == 0 or len(counts) > MAX_CATEGORICAL_BUCKETS:
        return None
    frequencies = np.asarray(counts.field("counts").to_pylist())
    # Deequ's CategoricalRangeRule: few distinct values seen only once.
    if (frequencies == 1).sum() > MAX_SINGLETON_SHARE_FOR_DOMAIN * len(frequencies):
        return None
    values = counts.field("values").to_pylist()
    order = sorted(range(len(values)), key=lambda i: (-frequencies[i], values[i]))
    return [values[i] for i in order]


def write_baseline(dataset_path: Path, output: Path) -> tuple[Path, Path]:
    """Compute and write statistics.json and constraints.json for a CSV dataset."""
    statistics, constraints = suggest_baseline(read_dataset(dataset_path))
    output.mkdir(parents=True, exist_ok=True)
    statistics_path = output / STATISTICS_FILE
    constraints_path = output / CONSTRAINTS_FILE
    statistics_path.write_text(json.dumps(statistics, indent=2) + "\n")
    constraints_path.write_text(json.dumps(constraints, indent=2) + "\n")
    return statistics_path, constraints_path
