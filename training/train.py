"""Train entry point: XGBoost price model on prepared features (SageMaker training contract).

Reads ``<base>/input/data/{train,validation,artifacts}`` and
``<base>/input/config/hyperparameters.json``; writes the model directory ``<base>/model``
(booster as UBJSON, feature spec, lane statistics, metadata); on error writes the reason to
``<base>/output/failure`` and exits non-zero. ``<base>`` defaults to /opt/ml. Run as
``python -m training.train`` (the container's ``train`` command).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from processing.arguments import first_output_problem, read_json_text
from processing.contracts import TRAINING_CHANNELS
from processing.features import (
    FEATURE_NAMES,
    FEATURE_SPEC_FILE,
    LANE_STATISTICS_FILE,
    FeatureSpec,
)
from processing.lake import read_parquet_directory
from processing.lineage import merge_prepare_summaries
from processing.metrics import mape
from processing.model import (
    METADATA_FILE,
    MODEL_FILE,
    ONNX_FILE,
    ONNX_INPUT,
    export_onnx,
    from_price,
    to_price,
)
from processing.sagemaker_paths import (
    ENV_MODEL_DIR,
    FAILURE,
    HYPERPARAMETERS,
    INPUT_DATA,
    ML_BASE,
    MODEL,
    channel_env,
)
from processing.xgboost_import import xgboost as xgb

CHANNELS = TRAINING_CHANNELS
# Share of validation loads whose price falls inside the reported prediction interval.
INTERVAL_COVERAGE = 0.8
ONNX_CHECK_ROWS = 20_000
ONNX_MAX_RELATIVE_DIFFERENCE = 1e-4


class HyperparameterError(ValueError):
    """A hyperparameter is unknown, has the wrong type, or is out of range."""


@dataclass(frozen=True)
class Hyperparameters:
    """Training settings; SageMaker passes every value as a string, so each is parsed."""

    num_round: int = 400
    max_depth: int = 7
    eta: float = 0.12
    min_child_weight: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.9
    reg_lambda: float = 1.0
    max_bin: int = 128
    early_stopping_rounds: int = 25
    nthread: int = 0
    seed: int = 0

    @staticmethod
    def ranges() -> dict[str, tuple[float, float]]:
        """Allowed range of each hyperparameter, inclusive."""
        return {
            "num_round": (1, 100_000),
            "max_depth": (1, 20),
            "eta": (1e-4, 1.0),
            "min_child_weight": (0.0, 1e6),
            "subsample": (0.05, 1.0),
            "colsample_bytree": (0.05, 1.0),
            "reg_lambda": (0.0, 1e6),
            "max_bin": (8, 4096),
            "early_stopping_rounds": (1, 10_000),
            "nthread": (0, 1024),
            "seed": (0, 2**31 - 1),
        }

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """Parse and check hyperparameters; raise HyperparameterError naming the bad one."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        aliases = {"lambda": "reg_lambda", "learning_rate": "eta"}
        parsed: dict[str, Any] = {}
        for raw_name, raw_value in values.items():
            name = aliases.get(raw_name, raw_name)
            if name not in fields:
                raise HyperparameterError(
                    f"unknown hyperparameter {raw_name!r}; known: {', '.join(sorted(fields))}"
                )
            kind = int if fields[name].type in ("int", int) else float
            try:
                number = kind(str(raw_value).strip())
            except ValueError:
                expected = "an integer" if kind is int else "a number"
                raise HyperparameterError(
                    f"hyperparameter {raw_name!r} must be {expected}, got {raw_value!r}"
                ) from None
            low, high = cls.ranges()[name]
            if not (low <= number <= high):
                raise HyperparameterError(
                    f"hyperparameter {raw_name!r}={raw_value!r} is outside [{low:g}, {high:g}]"
                )
            parsed[name] = number
        return cls(**parsed)

    def xgboost_params(self) -> dict[str, Any]:
        """Booster parameters for xgb.train (everything but rounds and early stopping)."""
        params: dict[str, Any] = {
            "objective": "reg:squarederror",
            "eval_metric": "rmse",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.eta,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "seed": self.seed,
        }
        if self.nthread:
            params["nthread"] = self.nthread
        return params


def read_split(directory: Path) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """Features (float32) and label of every ``*.parquet`` under ``directory``."""
    table = read_parquet_directory(directory, [FeatureSpec().label, *FEATURE_NAMES])
    features = np.empty((table.num_rows, len(FEATURE_NAMES)), np.float32, "F")
    for j in range(len(FEATURE_NAMES)):
        features[:, j] = table.column(j + 1).to_numpy()
    return features, table.column(0).to_numpy().astype(np.float64)


def train(
    train_dir: Path,
    validation_dir: Path,
    artifacts_dir: Path,
    model_dir: Path,
    hyperparameters: Hyperparameters,
) -> dict[str, Any]:
    """Train, save the model directory, and return its metadata."""
    started = time.perf_counter()
    channels = {"train": train_dir, "validation": validation_dir, "artifacts": artifacts_dir}
    for name, directory in channels.items():
        if not directory.is_dir():
            raise FileNotFoundError(f"training channel {name!r}: {directory} does not exist")
    spec = FeatureSpec.load(artifacts_dir / FEATURE_SPEC_FILE)
    # Read before the long fit: a model without its lineage must not be trained at all.
    lineage = merge_prepare_summaries(artifacts_dir)
    train_x, train_price = read_split(train_dir)
    validation_x, validation_price = read_split(validation_dir)
    for name, price in (("train", train_price), ("validation", validation_price)):
        if len(price) == 0:
            raise ValueError(f"the {name} split is empty")
        if not np.all(price > 0):
            raise ValueError(f"the {name} split has non-positive prices: was it validated?")
    read_seconds = time.perf_counter() - started
    dtrain = xgb.QuantileDMatrix(
        train_x,
        label=from_price(train_price, spec.label_transform),
        feature_names=list(FEATURE_NAMES),
        max_bin=hyperparameters.max_bin,
    )
    dvalidation = xgb.QuantileDMatrix(
        validation_x,
        label=from_price(validation_price, spec.label_transform),
        feature_names=list(FEATURE_NAMES),
        max_bin=hyperparameters.max_bin,
        ref=dtrain,
    )
    fit_started = time.perf_counter()
    booster = xgb.train(
        hyperparameters.xgboost_params(),
        dtrain,
        num_boost_round=hyperparameters.num_round,
        # Only the validation set is evaluated each round: scoring the training set too would
        # add about a fifth to the fit time and tells little with early stopping in place.
        evals=[(dvalidation, "validation")],
        early_stopping_rounds=hyperparameters.early_stopping_rounds,
        verbose_eval=50,
    )
    fit_seconds = time.perf_counter() - fit_started
    best_iteration = int(booster.best_iteration)
    booster = booster[: best_iteration + 1]
    validation_predicted = to_price(
        np.asarray(booster.inplace_predict(validation_x), dtype=np.float64),
        spec.label_transform,
    )

    model_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_dir / MODEL_FILE
    booster.save_model(str(model_path))
    onnx = _export_checked_onnx(booster, model_dir / ONNX_FILE, validation_x)
    log_residuals = np.log(validation_price) - np.log(validation_predicted)
    shutil.copyfile(artifacts_dir / LANE_STATISTICS_FILE, model_dir / LANE_STATISTICS_FILE)
    shutil.copyfile(artifacts_dir / FEATURE_SPEC_FILE, model_dir / FEATURE_SPEC_FILE)
    digest = hashlib.sha256(model_path.read_bytes())
    digest.update((artifacts_dir / LANE_STATISTICS_FILE).read_bytes())
    metadata: dict[str, Any] = {
        "model_version": digest.hexdigest()[:16],
        "framework": f"xgboost {xgb.__version__}",
        "label_transform": spec.label_transform,
        "best_iteration": best_iteration,
        "trees": best_iteration + 1,
        "train_rows": len(train_price),
        "validation_rows": len(validation_price),
        "validation_mape": round(mape(validation_price, validation_predicted), 6),
        "prediction_interval": {
            "coverage": INTERVAL_COVERAGE,
            "log_residual_low": float(np.quantile(log_residuals, (1 - INTERVAL_COVERAGE) / 2)),
            "log_residual_high": float(np.quantile(log_residuals, (1 + INTERVAL_COVERAGE) / 2)),
            "source": "quantiles of log(actual / predicted) on the validation split",
        },
        "onnx": onnx,
        "hyperparameters": dataclasses.asdict(hyperparameters),
        "seconds": {
            "read": round(read_seconds, 3),
            "fit": round(fit_seconds, 3),
            "total": round(time.perf_counter() - started, 3),
        },
        "data": lineage,
    }
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def _export_checked_onnx(
    booster: xgb.Booster, path: Path, features: npt.NDArray[np.float32]
) -> dict[str, Any]:
    """Write the ONNX twin if it prices like the booster (relative difference <= 1e-4).

    Otherwise no ONNX file is written and serving uses xgboost alone; the reason is recorded.
    """
    sample = np.ascontiguousarray(features[:ONNX_CHECK_ROWS])
    try:
        export_onnx(booster, path, features.shape[1])
        session = _onnx_check_session(path)
        onnx_raw = session.run(None, {ONNX_INPUT: sample})[0].reshape(-1).astype(np.float64)
    except Exception as error:  # the booster alone still serves; say why in the metadata
        path.unlink(missing_ok=True)
        return {"exported": False, "reason": f"{type(error).__name__}: {error}"}
    reference = np.asarray(booster.inplace_predict(sample), dtype=np.float64)
    # In log space, a difference d is a relative price difference of exp(d) - 1.
    worst = float(np.expm1(np.abs(onnx_raw - reference)).max())
    if worst > ONNX_MAX_RELATIVE_DIFFERENCE:
        path.unlink()
        return {"exported": False, "reason": f"max relative price difference {worst:.2e}"}
    return {"exported": True, "checked_rows": len(sample), "max_relative_difference": worst}


def _onnx_check_session(path: Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _channel(args: argparse.Namespace, name: str) -> Path:
    explicit: Path | None = getattr(args, name)
    if explicit is not None:
        return explicit
    return Path(os.environ.get(channel_env(name), args.base_dir / INPUT_DATA / name))


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the training step."""
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__)
    parser.add_argument("--base-dir", type=Path, default=ML_BASE, help="default /opt/ml")
    for channel in CHANNELS:
        parser.add_argument(
            f"--{channel}",
            type=Path,
            help=f"{channel} channel (default <base>/input/data/{channel})",
        )
    parser.add_argument("--model-dir", type=Path, help="model output (default <base>/model)")
    parser.add_argument(
        "--hyperparameters",
        type=Path,
        help="JSON file (default <base>/input/config/hyperparameters.json, optional)",
    )
    return parser


def read_hyperparameter_file(explicit: Path | None, default: Path) -> dict[str, Any]:
    """The JSON object of ``--hyperparameters``, else of SageMaker's file if there is one.

    Only the default file is optional (a job without hyperparameters has none): a file given
    explicitly must exist, so a typo in its name cannot silently train on the defaults.
    """
    if explicit is None and not default.exists():
        return {}
    path = explicit or default
    source = f"--hyperparameters: {path}" if explicit is not None else str(path)
    try:
        text = read_json_text(path, source)
    except ValueError as error:
        raise HyperparameterError(str(error)) from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise HyperparameterError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise HyperparameterError(f"{source} must hold a JSON object")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Run training; on any error write <base>/output/failure and return non-zero."""
    args = build_parser().parse_args(argv)
    base: Path = args.base_dir
    failure = base / FAILURE
    unwritable = first_output_problem({"--base-dir": failure.parent})
    if unwritable:
        # Not even the failure file can be written: stderr is all SageMaker will show.
        print(f"error: {unwritable}", file=sys.stderr)
        return 2
    try:
        hyperparameters = Hyperparameters.from_mapping(
            read_hyperparameter_file(args.hyperparameters, base / HYPERPARAMETERS)
        )
        model_dir = args.model_dir or Path(os.environ.get(ENV_MODEL_DIR, base / MODEL))
        problem = first_output_problem({"--model-dir": model_dir})
        if problem:
            raise ValueError(problem)
        metadata = train(
            _channel(args, "train"),
            _channel(args, "validation"),
            _channel(args, "artifacts"),
            model_dir,
            hyperparameters,
        )
    except (HyperparameterError, FileNotFoundError, ValueError) as error:
        _write_failure(failure, f"{type(error).__name__}: {error}")
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the failure file must explain any crash to SageMaker
        _write_failure(failure, f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
        raise
    headline = ("model_version", "trees", "train_rows", "validation_mape", "seconds")
    print(
        json.dumps(
            {"step": "train", "model_dir": str(model_dir)}
            | {key: metadata[key] for key in headline}
        )
    )
    return 0


def _write_failure(path: Path, message: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # SageMaker shows the first 1024 characters as the job's FailureReason.
    path.write_text(message)


def console_main() -> None:
    """The container's ``train`` command: SageMaker runs ``docker run IMAGE train``."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
