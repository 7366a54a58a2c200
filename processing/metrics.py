"""Regression metrics of price predictions: one implementation for training, evaluation, monitor."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Model Monitor reports a standard deviation from 5 random 80% samples, only from 200 rows.
BOOTSTRAP_SAMPLES = 5
BOOTSTRAP_FRACTION = 0.8
MIN_ROWS_FOR_DEVIATION = 200


def mape(actual: FloatArray, predicted: FloatArray) -> float:
    """Mean absolute percentage error, as a fraction (0.08 = 8 %)."""
    return float(np.mean(np.abs(predicted - actual) / actual))


def metric_values(actual: FloatArray, predicted: FloatArray) -> dict[str, float]:
    """MAE, MSE, RMSE, R2 and MAPE (a fraction) of predicted against actual prices."""
    error = predicted - actual
    mse = float(np.mean(error**2))
    total = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(error))),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "r2": 1.0 - float(np.sum(error**2)) / total if total > 0 else float("nan"),
        "mape": mape(actual, predicted),
    }


def regression_metrics(
    actual: FloatArray, predicted: FloatArray, seed: int = 0
) -> dict[str, dict[str, float | str]]:
    """MAE, MSE, RMSE, R2 and MAPE as ``{name: {value, standard_deviation}}``.

    The layout and the deviation method are Model Monitor's (regression model quality); MAPE
    is a fraction (0.08 = 8 %). With fewer than 200 rows the deviation is the string "NaN",
    as AWS writes it.
    """
    values = metric_values(actual, predicted)
    deviations: dict[str, float | str] = dict.fromkeys(values, "NaN")
    if len(actual) >= MIN_ROWS_FOR_DEVIATION:
        rng = np.random.default_rng(seed)
        size = int(len(actual) * BOOTSTRAP_FRACTION)
        samples = [
            metric_values(actual[chosen], predicted[chosen])
            for chosen in (
                rng.choice(len(actual), size=size, replace=False) for _ in range(BOOTSTRAP_SAMPLES)
            )
        ]
        deviations = {name: float(np.std([s[name] for s in samples])) for name in values}
    return {
        name: {"value": value, "standard_deviation": deviations[name]}
        for name, value in values.items()
    }
