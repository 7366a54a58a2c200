"""Benchmarks of the data and training steps: prints a table and writes bench/results.json.

Run with ``make bench``. Every number is measured in this one run on this machine; targets are
the ones the platform commits to on 2 cores. Nothing here is a test: a missed target is
reported, not raised.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from bench.pandas_features import lookup_tables, pandas_features
from market.generator import Market, generate_day
from processing.features import FEATURE_NAMES, FeatureBuilder, fit_lane_statistics
from processing.lake import read_partitions, write_partitions
from processing.prepare import PrepareConfig, prepare, write_prepared
from processing.validation import validate
from training.train import Hyperparameters, read_split

RESULTS = Path(__file__).resolve().parent / "results.json"
DAY = dt.date(2026, 3, 3)


@dataclass
class Result:
    """One benchmark line."""

    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""


def _median_seconds(function: Callable[[], object], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def bench_generator(rows: int, executor: ThreadPoolExecutor) -> list[Result]:
    market = Market(7)
    market.warm_up()
    generate_day(market, DAY, 50_000, executor=executor)
    threaded, _ = _median_seconds(lambda: generate_day(market, DAY, rows, executor=executor), 3)
    single, _ = _median_seconds(lambda: generate_day(market, DAY, rows), 2)
    return [
        Result("generator, 2 threads", rows / threaded, "rows/s", ">= 1,000,000",
               rows / threaded >= 1_000_000, f"{rows:,} rows in {threaded:.2f} s"),
        Result("generator, 1 thread", rows / single, "rows/s", note=f"{single:.2f} s"),
    ]  # fmt: skip


def bench_prepare(rows: int, work: Path, executor: ThreadPoolExecutor) -> tuple[list[Result], Path]:
    market = Market(7)
    lake = work / "lake"
    write_partitions([(DAY, generate_day(market, DAY, rows, executor=executor))], str(lake))
    size_mb = sum(p.stat().st_size for p in lake.rglob("*.parquet")) / 1e6
    # One day: validation and test are the last hours of it.
    config = PrepareConfig(validation_days=0.2, test_days=0.2)
    warm_lake = work / "warm-lake"
    write_partitions([(DAY, generate_day(market, DAY, 100_000, executor=executor))], str(warm_lake))
    phases: dict[str, list[float]] = {"read": [], "validate+split+features": [], "write": []}

    def run(source: Path, output: Path, record: bool) -> None:
        started = time.perf_counter()
        loads = read_partitions(source)
        read_done = time.perf_counter()
        prepared = prepare(loads, config, executor=executor)
        prepared_done = time.perf_counter()
        write_prepared(prepared, output, executor)
        if record:
            phases["read"].append(read_done - started)
            phases["validate+split+features"].append(prepared_done - read_done)
            phases["write"].append(time.perf_counter() - prepared_done)

    run(warm_lake, work / "warm-out", record=False)
    output = work / "prepared"
    seconds, best = _median_seconds(lambda: run(lake, output, record=True), 3)
    note = ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in phases.items())
    return [
        Result("prepare, one day end to end", rows / seconds, "rows/s", "<= 3 s per 3M-row day",
               seconds * 3_000_000 / rows <= 3.0,
               f"{seconds:.2f} s median (best {best:.2f}) for {rows:,} rows "
               f"({size_mb:.0f} MB Parquet); {note}"),
    ], output  # fmt: skip


def bench_features(rows: int, executor: ThreadPoolExecutor) -> list[Result]:
    market = Market(7)
    loads = validate(generate_day(market, DAY, rows, executor=executor), executor).valid
    builder = FeatureBuilder(fit_lane_statistics(loads, executor))
    ours = builder.from_table(loads, executor)
    parallel, _ = _median_seconds(lambda: builder.from_table(loads, executor), 5)
    single, _ = _median_seconds(lambda: builder.from_table(loads), 3)
    frame = loads.to_pandas()
    tables = lookup_tables(builder.statistics)
    reference = pandas_features(frame, tables)
    np.testing.assert_allclose(reference, ours, rtol=1e-6)
    pandas_seconds, _ = _median_seconds(lambda: pandas_features(frame, tables), 3)

    records = loads.slice(0, 1_000).to_pylist()
    latencies = []
    for index in range(20_000):
        one = [records[index % len(records)]]
        started = time.perf_counter_ns()
        builder.from_records(one)
        latencies.append(time.perf_counter_ns() - started)
    p50 = float(np.percentile(latencies, 50)) / 1000
    p99 = float(np.percentile(latencies, 99)) / 1000
    count = loads.num_rows
    return [
        Result("feature building, 2 threads", count / parallel, "rows/s", ">= 5,000,000",
               count / parallel >= 5_000_000, f"{count:,} rows in {parallel:.3f} s"),
        Result("feature building, 1 thread", count / single, "rows/s", note=f"{single:.3f} s"),
        Result("feature building, pandas", count / pandas_seconds, "rows/s",
               note=f"{pandas_seconds:.2f} s; same matrix (checked)"),
        Result("feature speed-up over pandas", pandas_seconds / parallel, "x",
               note=f"1 thread: {pandas_seconds / single:.1f} x"),
        Result("single-load features p50", p50, "us", "<= 50 us", p50 <= 50.0,
               f"p99 {p99:.1f} us over {len(latencies):,} calls"),
    ]  # fmt: skip


def bench_training(prepared: Path, rows: int, trees: int) -> list[Result]:
    features, price = read_split(prepared / "train")
    features, label = np.asfortranarray(features[:rows]), np.log(price[:rows])
    settings = Hyperparameters(num_round=trees)
    started = time.perf_counter()
    matrix = xgb.QuantileDMatrix(features, label=label, max_bin=settings.max_bin,
                                 feature_names=list(FEATURE_NAMES))  # fmt: skip
    built = time.perf_counter()
    xgb.train(settings.xgboost_params(), matrix, num_boost_round=trees)
    done = time.perf_counter()
    per_unit = (done - started) / (len(label) / 1e6) / (trees / 200)
    return [
        Result("training, per 1M rows per 200 trees", per_unit, "s", "<= 15 s", per_unit <= 15.0,
               f"{len(label):,} rows x {trees} trees, depth {settings.max_depth}: "
               f"quantile matrix {built - started:.1f} s + fit {done - built:.1f} s"),
    ]  # fmt: skip


def _format(value: float, unit: str) -> str:
    if unit in ("rows/s", "req/s"):
        return f"{value:,.0f} {unit}"
    if unit == "":
        return f"{value:g}"
    if unit == "x":
        return f"{value:.1f} x"
    return f"{value:.2f} {unit}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run every benchmark, print the table, write bench/results.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows of the benchmark day")
    parser.add_argument("--training-rows", type=int, default=1_000_000)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--skip-serving", action="store_true", help="skip the serving benchmark")
    parser.add_argument("--skip-pipeline", action="store_true", help="skip the pipeline benchmark")
    parser.add_argument("--skip-soak", action="store_true", help="skip the soak benchmark")
    parser.add_argument(
        "--skip-capture", action="store_true", help="skip the capture benchmark (local endpoint)"
    )
    parser.add_argument(
        "--capture-only", action="store_true", help="only the capture benchmark (to its own file)"
    )
    parser.add_argument("--soak-seconds", type=float, default=60.0, help="per soak phase")
    parser.add_argument(
        "--serving-only", action="store_true", help="only the serving benchmark (to its own file)"
    )
    parser.add_argument("--prepare-only", type=Path, help=argparse.SUPPRESS)
    # A trained model directory for --capture-only (skips the training).
    parser.add_argument("--capture-model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare_only is not None:
        # The prepare benchmark in a process of its own, as a processing job runs it: the
        # memory left behind by the other benchmarks would otherwise slow it down.
        with ThreadPoolExecutor(max_workers=2) as executor:
            lines, _ = bench_prepare(args.rows, args.prepare_only, executor)
        print(json.dumps([line.__dict__ for line in lines]))
        return 0
    work = Path(tempfile.mkdtemp(prefix="freight-bench-"))
    results: list[Result] = []
    if args.serving_only and args.output == RESULTS:
        args.output = RESULTS.with_name("results-serving.json")
    if args.capture_only and args.output == RESULTS:
        args.output = RESULTS.with_name("results-capture.json")
    try:
        if args.capture_only:
            results += _capture(work, args.capture_model)
            return _report(results, args.output)
        if args.serving_only:
            from bench.serving import run_serving, serving_results

            results += [Result(**line) for line in serving_results(run_serving(work / "serving"))]
            return _report(results, args.output)
        prepare_run = subprocess.run(
            [sys.executable, "-m", "bench.run", "--rows", str(args.rows), "--prepare-only",
             str(work)],
            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        results += [Result(**line) for line in json.loads(prepare_run.stdout.splitlines()[-1])]
        prepared = work / "prepared"
        with ThreadPoolExecutor(max_workers=2) as executor:
            results += bench_generator(args.rows, executor)
            results += bench_features(args.rows, executor)
        results += bench_training(prepared, args.training_rows, args.trees)
        if not args.skip_pipeline:
            from bench.pipeline import pipeline_results
            from local.market_data import DEMO_DAYS, DEMO_ROWS_PER_DAY

            lines = pipeline_results(work / "pipeline", DEMO_DAYS, DEMO_ROWS_PER_DAY)
            results += [Result(**line) for line in lines]
        if not args.skip_serving:
            from bench.serving import run_serving, serving_results

            results += [Result(**line) for line in serving_results(run_serving(work / "serving"))]
        if not args.skip_capture:
            # The serving benchmark's model, when it ran.
            trained = work / "serving" / "model-build" / "model"
            results += _capture(work, trained if trained.exists() else None)
        if not args.skip_soak:
            from bench.soak import run as run_soak
            from bench.soak import soak_results

            soak = run_soak(seconds=args.soak_seconds, work=work / "soak")
            results += [Result(**line) for line in soak_results(soak)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _report(results, args.output)


def _capture(work: Path, model_dir: Path | None) -> list[Result]:
    from bench.capture import capture_results, run_capture

    return [Result(**line) for line in capture_results(run_capture(work / "capture", model_dir))]


def _report(results: list[Result], output: Path) -> int:
    """Print the table and write it with the machine description to ``output``."""
    width = max(len(r.name) for r in results)
    print(f"{'benchmark':<{width}}  {'measured':>20}  {'target':>22}  met  notes")
    for r in results:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        print(
            f"{r.name:<{width}}  {_format(r.value, r.unit):>20}  {r.target:>22}  {met:>3}  {r.note}"
        )
    payload: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "xgboost": xgb.__version__},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "results": [r.__dict__ for r in results],
    }  # fmt: skip
    output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
