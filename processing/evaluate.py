"""Evaluate entry point: model quality on the test split, against naive baselines, with a report.

SageMaker processing contract: reads the model (``<base>/input/model``, a directory or
``model.tar.gz``) and the test split (``<base>/input/test``); writes
``<base>/evaluation/evaluation.json`` in Model Monitor's model-quality regression format (plus
MAPE, the baselines and the improvement over them) and ``<base>/report/`` (HTML and PNG plots).
``<base>`` defaults to /opt/ml/processing. Run as ``python -m processing.evaluate``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import itertools
import json
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from processing.arguments import first_output_problem
from processing.contracts import (
    BASELINES,
    EVALUATION_FILE,
    EVALUATION_OUTPUT,
    IMPROVEMENT,
    IMPROVEMENT_PREFIX,
    LINEAGE_FILE,
    MODEL_INPUT,
    REGRESSION_METRICS,
    REPORT_FILE,
    REPORT_OUTPUT,
    TEST_INPUT,
)
from processing.features import FEATURE_INDEX, FEATURE_NAMES
from processing.lake import read_parquet_directory
from processing.lineage import lineage_properties
from processing.metrics import mape, regression_metrics
from processing.model import PriceModel
from processing.sagemaker_paths import PROCESSING_BASE
from processing.schema import LABEL

FloatArray = npt.NDArray[np.float64]

DISTANCE_BANDS_KM = (0.0, 100.0, 300.0, 600.0, 1000.0, 1500.0, float("inf"))
TOP_COUNTRY_PAIRS = 12


def _interval_coverage(
    model: PriceModel, predicted: FloatArray, actual: FloatArray
) -> dict[str, float] | None:
    """Nominal and observed coverage of the prediction interval that training recorded."""
    bounds = model.interval(predicted)
    if bounds is None:
        return None
    low, high = bounds
    return {
        "nominal_coverage": float(model.metadata["prediction_interval"]["coverage"]),
        "coverage": float(np.mean((actual >= low) & (actual <= high))),
    }


@dataclass(frozen=True)
class Segment:
    """Errors of one slice of the test set."""

    name: str
    count: int
    mape: dict[str, float]


def _segments(
    labels: npt.NDArray[Any], predictions: dict[str, FloatArray], actual: FloatArray
) -> list[Segment]:
    result = []
    for value in sorted({str(v) for v in labels}):
        mask = labels == value
        result.append(
            Segment(
                name=value,
                count=int(mask.sum()),
                mape={
                    source: mape(actual[mask], predicted[mask])
                    for source, predicted in predictions.items()
                },
            )
        )
    return result


def _distance_band_labels(distance_km: FloatArray) -> npt.NDArray[np.str_]:
    edges = DISTANCE_BANDS_KM
    names = [
        f"{int(low):>4}-{int(high)} km" if high != float("inf") else f"{int(low):>4}+ km"
        for low, high in itertools.pairwise(edges)
    ]
    index = np.clip(np.searchsorted(edges, distance_km, side="right") - 1, 0, len(names) - 1)
    return np.array(names)[index]


@dataclass
class Evaluation:
    """Everything evaluate computes; ``report`` is the evaluation.json content."""

    report: dict[str, Any]
    actual: FloatArray
    predictions: dict[str, FloatArray]
    segments: dict[str, list[Segment]]


def evaluate(model: PriceModel, test: pa.Table) -> Evaluation:
    """Score the model and the naive baselines on a test split written by prepare."""
    if test.num_rows == 0:
        raise ValueError("the test split is empty")
    missing = [name for name in (LABEL, *FEATURE_NAMES) if name not in test.column_names]
    if missing:
        raise ValueError(f"test split lacks column(s): {', '.join(missing)}")
    actual = test.column(LABEL).to_numpy().astype(np.float64)
    features = np.empty((test.num_rows, len(FEATURE_NAMES)), dtype=np.float32, order="F")
    for j, name in enumerate(FEATURE_NAMES):
        features[:, j] = test.column(name).to_numpy()
    distance_km = features[:, FEATURE_INDEX["distance_km"]].astype(np.float64)
    predictions = {
        "model": model.predict_features(features),
        # The lane's median price in the training window (falling back to the country pair).
        "lane_median": features[:, FEATURE_INDEX["lane_median_price"]].astype(np.float64),
        # The market's median price per km times the distance.
        "price_per_km": model.builder.statistics.market_median_price_per_km * distance_km,
    }
    metrics = {source: regression_metrics(actual, p) for source, p in predictions.items()}
    model_mape = float(metrics["model"]["mape"]["value"])
    segments: dict[str, list[Segment]] = {
        "distance_band": _segments(_distance_band_labels(distance_km), predictions, actual)
    }
    if "equipment_type" in test.column_names:
        equipment = np.array(test.column("equipment_type").cast(pa.string()).to_pylist())
        segments["equipment_type"] = _segments(equipment, predictions, actual)
    if {"origin_country", "destination_country"} <= set(test.column_names):
        origin = test.column("origin_country").cast(pa.string()).to_pylist()
        destination = test.column("destination_country").cast(pa.string()).to_pylist()
        pairs = np.array([f"{o}-{d}" for o, d in zip(origin, destination, strict=True)])
        names, counts = np.unique(pairs, return_counts=True)
        top = set(names[np.argsort(-counts, kind="stable")[:TOP_COUNTRY_PAIRS]])
        pair_segments = _segments(
            np.where(np.isin(pairs, list(top)), pairs, "other"), predictions, actual
        )
        segments["country_pair"] = sorted(pair_segments, key=lambda s: -s.count)
    report: dict[str, Any] = {
        "version": 0.0,
        "dataset": {
            "item_count": test.num_rows,
            "evaluation_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        },
        REGRESSION_METRICS: metrics["model"],
        "baselines": {name: {REGRESSION_METRICS: metrics[name]} for name in BASELINES},
        IMPROVEMENT: {
            f"{IMPROVEMENT_PREFIX}{name}": 1.0 - model_mape / float(metrics[name]["mape"]["value"])
            for name in BASELINES
        },
        "prediction_interval": _interval_coverage(model, predictions["model"], actual),
        "model": {
            "model_version": model.version,
            **{
                key: model.metadata[key] for key in ("trees", "train_rows") if key in model.metadata
            },
        },
        "segments": {
            kind: [{"name": s.name, "count": s.count, "mape": s.mape} for s in values]
            for kind, values in segments.items()
        },
    }
    return Evaluation(report=report, actual=actual, predictions=predictions, segments=segments)


def write_report(evaluation: Evaluation, directory: Path) -> Path:
    """Write index.html with PNG plots: predicted vs actual, and errors by segment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    actual, predicted = evaluation.actual, evaluation.predictions["model"]
    rng = np.random.default_rng(0)
    shown = rng.choice(len(actual), size=min(5_000, len(actual)), replace=False)
    figure, axes = plt.subplots(figsize=(6, 6))
    axes.scatter(actual[shown], predicted[shown], s=3, alpha=0.3)
    low, high = float(actual.min()), float(actual.max())
    axes.plot([low, high], [low, high], color="black", linewidth=1)
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="booked price (EUR)",
        ylabel="predicted (EUR)",
        title="Predicted vs actual (test split)",
    )
    figure.tight_layout()
    figure.savefig(directory / "predicted_vs_actual.png", dpi=100)
    plt.close(figure)

    images = ["predicted_vs_actual.png"]
    for kind, segments in evaluation.segments.items():
        figure, axes = plt.subplots(figsize=(8, 0.45 * len(segments) + 1.5))
        positions = np.arange(len(segments))
        height = 0.8 / len(evaluation.predictions)
        for offset, source in enumerate(evaluation.predictions):
            axes.barh(
                positions + offset * height,
                [100 * s.mape[source] for s in segments],
                height=height,
                label=source,
            )
        axes.set_yticks(positions + 0.4 - height / 2, [s.name for s in segments])
        axes.invert_yaxis()
        axes.set(xlabel="MAPE (%)", title=f"Error by {kind.replace('_', ' ')}")
        axes.legend()
        figure.tight_layout()
        name = f"mape_by_{kind}.png"
        figure.savefig(directory / name, dpi=100)
        plt.close(figure)
        images.append(name)

    report = evaluation.report
    rows = "".join(
        f"<tr><td>{html.escape(source)}</td>"
        + "".join(
            f"<td>{metrics[REGRESSION_METRICS][name]['value']:.4g}</td>"
            for name in ("mape", "mae", "rmse", "r2")
        )
        + "</tr>"
        for source, metrics in [("model", report), *report["baselines"].items()]
    )
    segment_tables = "".join(
        f"<h2>By {html.escape(kind.replace('_', ' '))}</h2>"
        "<table><tr><th>segment</th><th>loads</th>"
        + "".join(f"<th>MAPE {html.escape(source)}</th>" for source in evaluation.predictions)
        + "</tr>"
        + "".join(
            f"<tr><td>{html.escape(s.name)}</td><td>{s.count}</td>"
            + "".join(f"<td>{100 * s.mape[source]:.1f}%</td>" for source in evaluation.predictions)
            + "</tr>"
            for s in segments
        )
        + "</table>"
        for kind, segments in evaluation.segments.items()
    )
    improvement = ", ".join(
        f"{100 * value:.1f}% lower MAPE than {name.removeprefix(IMPROVEMENT_PREFIX)}"
        for name, value in report[IMPROVEMENT].items()
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Freight price model evaluation</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;
text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>Freight price model evaluation</h1>
<p>Model {html.escape(str(report["model"].get("model_version")))} on
{report["dataset"]["item_count"]} test loads ({html.escape(report["dataset"]["evaluation_time"])}):
{html.escape(improvement)}.</p>
<table><tr><th>predictor</th><th>MAPE</th><th>MAE (EUR)</th><th>RMSE (EUR)</th><th>R2</th></tr>
{rows}</table>
{"".join(f'<img src="{name}" alt="{name}">' for name in images)}
{segment_tables}
</body></html>
"""
    path = directory / REPORT_FILE
    path.write_text(page)
    return path


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the evaluate step."""
    parser = argparse.ArgumentParser(prog="python -m processing.evaluate", description=__doc__)
    parser.add_argument("--base-dir", type=Path, default=PROCESSING_BASE)
    parser.add_argument("--model", type=Path, help="model dir or model.tar.gz (<base>/input/model)")
    parser.add_argument("--test", type=Path, help="test split directory (<base>/input/test)")
    parser.add_argument(
        "--output", type=Path, help=f"{EVALUATION_FILE} directory (<base>/{EVALUATION_OUTPUT})"
    )
    parser.add_argument("--report", type=Path, help=f"report directory (<base>/{REPORT_OUTPUT})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run evaluate; print the headline metrics as JSON; return 2 on bad input."""
    args = build_parser().parse_args(argv)
    base: Path = args.base_dir
    output = args.output or base / EVALUATION_OUTPUT
    report = args.report or base / REPORT_OUTPUT
    problem = first_output_problem({"--output": output, "--report": report})
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    model_path = args.model or base / "input" / MODEL_INPUT
    try:
        model = PriceModel.load(model_path)
        test = read_parquet_directory(args.test or base / "input" / TEST_INPUT)
        evaluation = evaluate(model, test)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except tarfile.TarError as error:
        print(f"error: --model: {model_path} is neither a model directory nor a model.tar.gz "
              f"({error})", file=sys.stderr)  # fmt: skip
        return 2
    output.mkdir(parents=True, exist_ok=True)
    (output / EVALUATION_FILE).write_text(json.dumps(evaluation.report, indent=2) + "\n")
    # The registry's customer metadata (strings), read by the Register step with Std:JsonGet.
    lineage = lineage_properties(model.metadata)
    (output / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2) + "\n")
    report_path = write_report(evaluation, report)
    headline = {
        "step": "evaluate",
        "evaluation": str(output / EVALUATION_FILE),
        "report": str(report_path),
        "mape": evaluation.report[REGRESSION_METRICS]["mape"]["value"],
        **evaluation.report[IMPROVEMENT],
    }
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
