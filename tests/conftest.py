"""Shared fixtures: fake AWS credentials, a small synthetic market, a model trained on it."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from market.generator import MarketConfig, generate
from processing import prepare
from processing.lake import read_partitions, write_partitions
from training import train

SMALL_MARKET = MarketConfig(start_date=dt.date(2026, 1, 5), days=60, rows_per_day=400, seed=11)
# What every test sees of AWS: dummy credentials and the project's region, no profile, no
# configured endpoint, no developer configuration. Nothing can reach a real account.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
CLEARED_AWS_VARIABLES = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
)


@pytest.fixture(scope="session", autouse=True)
def fake_aws_credentials() -> Iterator[None]:
    """Session-wide, so module- and session-scoped fixtures are covered too."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_AWS_ENVIRONMENT.items():
            patch.setenv(name, value)
        for name in CLEARED_AWS_VARIABLES:
            patch.delenv(name, raising=False)
        yield


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
