"""The same booster and features as an MLflow pyfunc model, served by ``mlflow models serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from processing.model import PriceModel


class FreightPricePyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Prices a DataFrame of loads (request fields, timestamps in epoch ms) in EUR."""

    def load_context(self, context: Any) -> None:
        """Load our model directory from the MLflow artifacts (xgboost engine, as-is)."""
        self.model = PriceModel.load(Path(context.artifacts["model_dir"]), use_onnx=False)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        """Features from the records, then the booster."""
        records = model_input.to_dict(orient="records")
        for record in records:
            record["hazmat"] = bool(record["hazmat"])
        prices: np.ndarray = self.model.predict_records(records)
        return prices


def save(model_dir: Path, destination: Path) -> Path:
    """Write an MLflow model that wraps ``model_dir``; returns its path."""
    mlflow.pyfunc.save_model(
        path=str(destination),
        python_model=FreightPricePyfunc(),
        artifacts={"model_dir": str(model_dir)},
        pip_requirements=[],  # served with --env-manager local: no environment to build
    )
    return destination
