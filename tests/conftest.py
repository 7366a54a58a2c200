"""Shared fixtures: a small synthetic market, prepared once, and a model trained on it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from market.generator import MarketConfig, generate
from processing import prepare
from processing.lake import read_partitions, write_partitions
from training import train

SMALL_MARKET = MarketConfig(start_date=dt.date(2026, 1, 5), days=60, rows_per_day=400, seed=11)


@pytest.fixture(scope="session")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 days x 400 loads of the synthetic market as daily Parquet partitions."""
    root = tmp_path_factory.mktemp("lake") / "raw" / "loads"
    write_partitions(generate(SMALL_MARKET), str(root))
    return root


@pytest.fixture(scope="session")
def small_loads(small_lake: Path) -> pa.Table:
    """The small market read back as one table in the load contract."""
    return read_partitions(small_lake)


@pytest.fixture(scope="session")
def prepared_dir(small_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output of the prepare entry point on the small market (7 validation, 7 test days)."""
    output = tmp_path_factory.mktemp("prepared")
    code = prepare.main(
        [
            "--input", str(small_lake),
            "--output", str(output),
            "--validation-days", "7",
            "--test-days", "7",
            "--baseline-rows", "500",
        ]
    )  # fmt: skip
    assert code == 0
    return output


@pytest.fixture(scope="session")
def model_dir(prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained by the train entry point on the prepared small market."""
    base = tmp_path_factory.mktemp("train-job")
    hyperparameters = base / "hyperparameters.json"
    hyperparameters.write_text('{"num_round": "150", "eta": "0.2", "max_depth": "6"}')
    code = train.main(
        [
            "--base-dir", str(base),
            "--train", str(prepared_dir / "train"),
            "--validation", str(prepared_dir / "validation"),
            "--artifacts", str(prepared_dir / "artifacts"),
            "--hyperparameters", str(hyperparameters),
        ]
    )  # fmt: skip
    assert code == 0
    return base / "model"
