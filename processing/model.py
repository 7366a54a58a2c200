"""The model directory: booster, feature spec and lane statistics, loadable as one price model."""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import xgboost as xgb

from processing.features import (
    FEATURE_SPEC_FILE,
    LANE_STATISTICS_FILE,
    FeatureBuilder,
    FeatureMatrix,
    FeatureSpec,
    LaneStatistics,
)

MODEL_FILE = "xgboost-model.ubj"
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

    @classmethod
    def load(cls, model_dir: Path, threads: int | None = None) -> PriceModel:
        """Load a model directory (or ``model.tar.gz``) written by the training step."""
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
        return cls(
            booster=booster,
            spec=FeatureSpec.load(directory / FEATURE_SPEC_FILE),
            builder=FeatureBuilder(statistics),
            metadata=metadata,
        )

    @property
    def version(self) -> str:
        """Content hash of the booster, written by training (``unknown`` for foreign dirs)."""
        return str(self.metadata.get("model_version", "unknown"))

    def predict_features(self, features: FeatureMatrix) -> npt.NDArray[np.float64]:
        """Prices in EUR for a feature matrix."""
        raw = self.booster.inplace_predict(features, validate_features=False)
        return to_price(np.asarray(raw, dtype=np.float64), self.spec.label_transform)

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


def to_price(raw: FloatArray, label_transform: str) -> FloatArray:
    """Undo the label transform applied in training."""
    return _label_transform(label_transform)[1](raw)


def from_price(price: FloatArray, label_transform: str) -> FloatArray:
    """Apply the label transform used in training."""
    return _label_transform(label_transform)[0](price)
