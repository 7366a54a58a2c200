"""The ``freight`` command line: data generation and the end-to-end demo."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from processing.arguments import date, float_within, int_at_least
from processing.generator import MarketConfig, generate
from processing.lake import GlueTarget, write_partitions

DEFAULT_WORKDIR = Path("work/demo")
DEMO_DAYS = 365
DEMO_ROWS_PER_DAY = 3_000
DEMO_SEED = 7


class UsageError(Exception):
    """A command-line value the user can fix; reported as ``error: ...`` with exit code 2."""


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- freight data generate ----------------------------------------------------------------------


def cmd_data_generate(args: argparse.Namespace) -> int:
    """Generate synthetic daily load files into a directory or the S3 lake."""
    config = MarketConfig(
        start_date=args.start_date,
        days=args.days,
        rows_per_day=args.rows_per_day,
        seed=args.seed,
        dirty_share=args.dirty_share,
    )
    glue = None
    if args.glue_database or args.glue_table:
        if not (args.glue_database and args.glue_table):
            raise UsageError("--glue-database and --glue-table must be given together")
        if not args.out.startswith("s3://"):
            raise UsageError(f"--glue-database needs an s3:// --out, got {args.out!r}")
        glue = GlueTarget(args.glue_database, args.glue_table)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as executor:
        written = write_partitions(generate(config, executor), args.out, glue=glue)
    seconds = time.perf_counter() - started
    rows = config.days * config.rows_per_day
    print(
        json.dumps(
            {
                "written": len(written),
                "first": written[0],
                "last": written[-1],
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_second": round(rows / seconds),
            }
        )
    )
    return 0


# -- freight demo -------------------------------------------------------------------------------


def _run_step(name: str, main: Callable[[Sequence[str] | None], int], argv: list[str]) -> None:
    started = time.perf_counter()
    code = main(argv)
    if code != 0:
        raise RuntimeError(f"step {name} failed with exit code {code}")
    _progress(f"      {name} done in {time.perf_counter() - started:.1f} s")


def metrics_table(evaluation: dict[str, Any]) -> str:
    """The demo's closing table: model and baselines side by side."""
    header = f"{'predictor':<14}{'MAPE':>9}{'MAE EUR':>11}{'RMSE EUR':>11}{'R2':>8}"
    lines = [header, "-" * len(header)]
    sources = [("model", evaluation), *evaluation["baselines"].items()]
    for source, content in sources:
        metrics = content["regression_metrics"]
        lines.append(
            f"{source:<14}{100 * metrics['mape']['value']:>8.2f}%"
            f"{metrics['mae']['value']:>11.1f}{metrics['rmse']['value']:>11.1f}"
            f"{metrics['r2']['value']:>8.3f}"
        )
    for name, value in evaluation["improvement"].items():
        baseline = name.removeprefix("mape_reduction_vs_")
        lines.append(f"MAPE is {100 * value:.1f}% lower than the {baseline} baseline")
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate a market, prepare, train and evaluate, all under one work folder."""
    from processing import evaluate, prepare
    from training import train

    workdir: Path = args.workdir.resolve()
    lake = workdir / "lake" / "raw" / "loads"
    prepared = workdir / "prepare"
    model_dir = workdir / "model"
    evaluation_dir = workdir / "evaluation"
    report_dir = workdir / "report"
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config = MarketConfig(days=args.days, rows_per_day=args.rows_per_day, seed=args.seed)
    rows = config.days * config.rows_per_day
    _progress(f"[1/4] generating {config.days} days x {config.rows_per_day} loads into {lake}")
    step_started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as executor:
        write_partitions(generate(config, executor), str(lake))
    _progress(f"      {rows} loads in {time.perf_counter() - step_started:.1f} s")
    _progress("[2/4] prepare: validate, split by time, lane statistics, features")
    _run_step("prepare", prepare.main, ["--input", str(lake), "--output", str(prepared)])
    _progress("[3/4] train: XGBoost (hist) with early stopping on the validation split")
    _run_step(
        "train",
        train.main,
        [
            "--base-dir", str(workdir / "train-job"),
            "--train", str(prepared / "train"),
            "--validation", str(prepared / "validation"),
            "--artifacts", str(prepared / "artifacts"),
            "--model-dir", str(model_dir),
        ],
    )  # fmt: skip
    _progress("[4/4] evaluate: test split, against the lane-median and price-per-km baselines")
    _run_step(
        "evaluate",
        evaluate.main,
        [
            "--model", str(model_dir),
            "--test", str(prepared / "test"),
            "--output", str(evaluation_dir),
            "--report", str(report_dir),
        ],
    )  # fmt: skip
    evaluation = json.loads((evaluation_dir / evaluate.EVALUATION_FILE).read_text())
    print()
    print(metrics_table(evaluation))
    print()
    print(f"finished in {time.perf_counter() - started:.0f} s; everything is under {workdir}:")
    print(f"  model directory   {model_dir}")
    print(f"  evaluation        {evaluation_dir / evaluate.EVALUATION_FILE}")
    print(f"  report            {report_dir / evaluate.REPORT_FILE}")
    print(f"  prepared splits   {prepared}")
    return 0


# -- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``freight`` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="freight", description="Freight pricing MLOps: data, pipeline, models, serving."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="synthetic market data").add_subparsers(
        dest="data_command", required=True, metavar="SUBCOMMAND"
    )
    generate_parser = data.add_parser("generate", help="generate daily load files")
    generate_parser.add_argument("--days", type=int_at_least(1), default=30)
    generate_parser.add_argument("--rows-per-day", type=int_at_least(1), default=10_000)
    generate_parser.add_argument("--seed", type=int_at_least(0), default=DEMO_SEED)
    generate_parser.add_argument(
        "--start-date", type=date, default=MarketConfig().start_date, help="first day"
    )
    generate_parser.add_argument(
        "--dirty-share", type=float_within(0.0, 0.5), default=MarketConfig().dirty_share
    )
    generate_parser.add_argument(
        "--out", required=True, help="directory or s3://bucket/prefix for dt=YYYY-MM-DD files"
    )
    generate_parser.add_argument("--glue-database", help="register partitions in this database")
    generate_parser.add_argument("--glue-table", help="... as partitions of this table")
    generate_parser.set_defaults(handler=cmd_data_generate)

    demo = commands.add_parser("demo", help="generate -> prepare -> train -> evaluate")
    demo.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    demo.add_argument("--days", type=int_at_least(45), default=DEMO_DAYS)
    demo.add_argument("--rows-per-day", type=int_at_least(100), default=DEMO_ROWS_PER_DAY)
    demo.add_argument("--seed", type=int_at_least(0), default=DEMO_SEED)
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``freight`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (UsageError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
