from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from processing.features import FEATURE_NAMES
from processing.model import METADATA_FILE, MODEL_FILE, PriceModel
from training import train
from training.train import HyperparameterError, Hyperparameters


def test_sagemaker_string_hyperparameters_are_parsed() -> None:
    parsed = Hyperparameters.from_mapping(
        {"num_round": "120", "eta": "0.05", "lambda": "2", "max_depth": " 7 "}
    )
    assert parsed.num_round == 120
    assert parsed.eta == 0.05
    assert parsed.reg_lambda == 2.0
    assert parsed.max_depth == 7
    assert Hyperparameters.from_mapping({}) == Hyperparameters()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num_trees": "10"}, "unknown hyperparameter 'num_trees'"),
        ({"max_depth": "deep"}, "'max_depth' must be an integer"),
        ({"max_depth": "6.5"}, "'max_depth' must be an integer"),
        ({"eta": "fast"}, "'eta' must be a number"),
        ({"eta": "0"}, "'eta'='0' is outside"),
        ({"subsample": "1.5"}, "'subsample'='1.5' is outside"),
        ({"num_round": "-3"}, "'num_round'='-3' is outside"),
    ],
)
def test_bad_hyperparameters_name_the_parameter(values: dict[str, str], message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        Hyperparameters.from_mapping(values)


def test_trained_model_directory_serves_alone(model_dir: Path, prepared_dir: Path) -> None:
    assert {p.name for p in model_dir.iterdir()} >= {
        MODEL_FILE,
        METADATA_FILE,
        "feature_spec.json",
        "lane_statistics.npz",
    }
    # UBJSON, the format xgboost 3 reads (not the legacy binary format).
    assert (model_dir / MODEL_FILE).read_bytes()[:1] == b"{"
    booster = xgb.Booster(model_file=str(model_dir / MODEL_FILE))
    assert booster.feature_names == list(FEATURE_NAMES)
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    assert metadata["trees"] == booster.num_boosted_rounds()
    assert len(metadata["model_version"]) == 16
    assert 0 < metadata["validation_mape"] < 0.2
    model = PriceModel.load(model_dir)
    features, label = train.read_split(prepared_dir / "validation")
    predicted = model.predict_features(features)
    assert np.mean(np.abs(predicted - label) / label) == pytest.approx(
        metadata["validation_mape"], abs=1e-5
    )


def test_early_stopping_keeps_only_the_best_trees(prepared_dir: Path, tmp_path: Path) -> None:
    metadata = train.train(
        prepared_dir / "train",
        prepared_dir / "validation",
        prepared_dir / "artifacts",
        tmp_path / "model",
        Hyperparameters(num_round=400, eta=0.9, early_stopping_rounds=3),
    )
    assert metadata["trees"] < 400
    assert metadata["trees"] == metadata["best_iteration"] + 1
    booster = xgb.Booster(model_file=str(tmp_path / "model" / MODEL_FILE))
    assert booster.num_boosted_rounds() == metadata["trees"]


def test_training_is_deterministic(prepared_dir: Path, tmp_path: Path) -> None:
    settings = Hyperparameters(num_round=20)
    first = train.train(
        prepared_dir / "train", prepared_dir / "validation", prepared_dir / "artifacts",
        tmp_path / "a", settings,
    )  # fmt: skip
    second = train.train(
        prepared_dir / "train", prepared_dir / "validation", prepared_dir / "artifacts",
        tmp_path / "b", settings,
    )  # fmt: skip
    assert first["model_version"] == second["model_version"]


def test_bad_hyperparameters_write_the_failure_file(prepared_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text('{"max_depth": "-1"}')
    code = train.main(
        ["--base-dir", str(tmp_path), "--train", str(prepared_dir / "train"),
         "--validation", str(prepared_dir / "validation"),
         "--artifacts", str(prepared_dir / "artifacts")]
    )  # fmt: skip
    assert code == 2
    failure = (tmp_path / "output" / "failure").read_text()
    assert "max_depth" in failure
    assert not (tmp_path / "model").exists()


def test_malformed_hyperparameter_json_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text("{not json")
    assert train.main(["--base-dir", str(tmp_path)]) == 2
    assert "not valid JSON" in (tmp_path / "output" / "failure").read_text()


def test_missing_channel_is_reported(tmp_path: Path) -> None:
    assert train.main(["--base-dir", str(tmp_path)]) == 2
    assert "FileNotFoundError" in (tmp_path / "output" / "failure").read_text()


def test_channels_come_from_sagemaker_environment_variables(
    prepared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for channel in ("train", "validation", "artifacts"):
        monkeypatch.setenv(f"SM_CHANNEL_{channel.upper()}", str(prepared_dir / channel))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "sm-model"))
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text('{"num_round": "5"}')
    assert train.main(["--base-dir", str(tmp_path)]) == 0
    assert (tmp_path / "sm-model" / MODEL_FILE).exists()
