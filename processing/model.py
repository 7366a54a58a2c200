"""The model directory: booster, feature spec and lane statistics, loadable as one price model."""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from processing.features import (
    FEATURE_SPEC_FILE,
    LANE_STATISTICS_FILE,
    FeatureBuilder,
    FeatureMatrix,
    FeatureSpec,
    LaneStatistics,
)
from processing.xgboost_import import xgboost as xgb

MODEL_FILE = "xgboost-model.ubj"
# The same trees for ONNX Runtime, written by training when its predictions match the booster's.
ONNX_FILE = "xgboost-model.onnx"
# ONNX Runtime scores a single load in about 12 us where xgboost takes about 450 us; xgboost's
# threaded batch kernel wins from a few dozen rows (measured by make bench).
ONNX_MAX_BATCH_ROWS = 32
METADATA_FILE = "model_metadata.json"
REQUIRED_FILES = (MODEL_FILE, FEATURE_SPEC_FILE, LANE_STATISTICS_FILE)

FloatArray = npt.NDArray[np.float64]


def resolve_model_dir(path: Path, scratch: Path | None = None) -> Path:
    """Return a directory holding the model files; ``path`` may be that directory or a tarball.

    SageMaker hands evaluation steps the training job's ``model.tar.gz``; hosting unpacks it
    itself. A tarball is extracted (safely: no paths outside the target) into ``scratch``.
    """
    if path.is_dir():
        archives = sorted(path.glob("*.tar.gz"))
        if not (path / MODEL_FILE).exists() and len(archives) == 1:
            path = archives[0]
        else:
            return path
    if not path.exists():
        raise FileNotFoundError(f"model path {path} does not exist")
    target = scratch or Path(tempfile.mkdtemp(prefix="model-"))
    with tarfile.open(path) as archive:
        archive.extractall(target, filter="data")
    return target


@dataclass
class PriceModel:
    """A trained price model with everything it needs to price raw loads."""

    booster: xgb.Booster
    spec: FeatureSpec
    builder: FeatureBuilder
    metadata: dict[str, Any] = field(default_factory=dict)
    onnx_session: Any | None = None

    @classmethod
    def load(cls, model_dir: Path, threads: int | None = None, use_onnx: bool = True) -> PriceModel:
        """Load a model directory (or ``model.tar.gz``) written by the training step.

        ``threads`` caps the threads of both scoring engines (a server runs one worker per
        core with one thread each); ``use_onnx`` loads the ONNX twin for small batches when
        the directory has one.
        """
        directory = resolve_model_dir(Path(model_dir))
        missing = [name for name in REQUIRED_FILES if not (directory / name).exists()]
        if missing:
            raise FileNotFoundError(
                f"model directory {directory} lacks {', '.join(missing)}; "
                "is it the output of the training step?"
            )
        booster = xgb.Booster(model_file=str(directory / MODEL_FILE))
        if threads is not None:
            booster.set_param({"nthread": threads})
        metadata_path = directory / METADATA_FILE
        metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
        statistics = LaneStatistics.load(directory / LANE_STATISTICS_FILE)
        onnx_path = directory / ONNX_FILE
        session = _onnx_session(onnx_path, threads) if use_onnx and onnx_path.exists() else None
        return cls(
            booster=booster,
            spec=FeatureSpec.load(directory / FEATURE_SPEC_FILE),
            builder=FeatureBuilder(statistics),
            metadata=metadata,
            onnx_session=session,
        )

    @property
    def version(self) -> str:
        """Content hash of the booster, written by training (``unknown`` for foreign dirs)."""
        return str(self.metadata.get("model_version", "unknown"))

    def predict_features(self, features: FeatureMatrix) -> npt.NDArray[np.float64]:
        """Prices in EUR for a feature matrix (ONNX Runtime for small batches, else xgboost)."""
        if self.onnx_session is not None and len(features) <= ONNX_MAX_BATCH_ROWS:
            inputs = {ONNX_INPUT: np.ascontiguousarray(features, dtype=np.float32)}
            raw = self.onnx_session.run(None, inputs)[0].reshape(-1)
        else:
            raw = self.booster.inplace_predict(features, validate_features=False)
        return to_price(np.asarray(raw, dtype=np.float64), self.spec.label_transform)

    def warm_up(self) -> None:
        """Score a made-up load with each engine, so the first request pays no set-up cost."""
        region = self.builder.statistics.regions[0]
        load = {
            "posted_at": 0, "pickup_at": 3_600_000, "origin_country": region[:2],
            "origin_region": region, "origin_lat": 50.0, "origin_lon": 10.0,
            "destination_country": region[:2], "destination_region": region,
            "destination_lat": 51.0, "destination_lon": 11.0, "distance_km": 150.0,
            "weight_kg": 1000.0, "loading_meters": 2.4, "equipment_type": "tautliner",
            "hazmat": False,
        }  # fmt: skip
        self.predict_records([load])
        self.predict_records([load] * (ONNX_MAX_BATCH_ROWS + 1))

    def interval(self, prices: FloatArray) -> tuple[FloatArray, FloatArray] | None:
        """Low and high ends of the prediction interval recorded by training, if any.

        Training stores quantiles of the validation residuals in log space; the interval is
        the price times their exponentials (an empirical interval, not a guarantee).
        """
        if self._interval_factors is None:
            return None
        low_factor, high_factor = self._interval_factors
        return prices * low_factor, prices * high_factor

    @cached_property
    def _interval_factors(self) -> tuple[float, float] | None:
        interval = self.metadata.get("prediction_interval")
        if not interval:
            return None
        return (
            float(np.exp(float(interval["log_residual_low"]))),
            float(np.exp(float(interval["log_residual_high"]))),
        )

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float64]:
        """Prices in EUR for validated request dicts (see FeatureBuilder.from_records)."""
        return self.predict_features(self.builder.from_records(records))

    def predict_table(self, loads: pa.Table) -> npt.NDArray[np.float64]:
        """Prices in EUR for validated loads in the load contract."""
        return self.predict_features(self.builder.from_table(loads))


# Label transform name -> (price to model target, model output to price).
_LABEL_TRANSFORMS: dict[
    str, tuple[Callable[[FloatArray], FloatArray], Callable[[FloatArray], FloatArray]]
] = {
    "log": (np.log, np.exp),
    "identity": (np.asarray, np.asarray),
}


def _label_transform(
    name: str,
) -> tuple[Callable[[FloatArray], FloatArray], Callable[[FloatArray], FloatArray]]:
    try:
        return _LABEL_TRANSFORMS[name]
    except KeyError:
        raise ValueError(f"unknown label_transform {name!r} in the feature spec") from None


ONNX_INPUT = "features"


def _onnx_session(path: Path, threads: int | None) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_onnx(booster: xgb.Booster, path: Path, feature_count: int) -> None:
    """Write the booster as an ONNX model (input ``features``: float32 [n, feature_count])."""
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    anonymous = booster.copy()
    # The converter expects xgboost's default feature names f0, f1, ...
    anonymous.feature_names = None
    model = onnxmltools.convert_xgboost(
        anonymous,
        initial_types=[(ONNX_INPUT, FloatTensorType([None, feature_count]))],
        target_opset=15,
    )
    path.write_bytes(model.SerializeToString())


def to_price(raw: FloatArray, label_transform: str) -> FloatArray:
    """Undo the label transform applied in training."""
    return _label_transform(label_transform)[1](raw)


def from_price(price: FloatArray, label_transform: str) -> FloatArray:
    """Apply the label transform used in training."""
    return _label_transform(label_transform)[0](price)
