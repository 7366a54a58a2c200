"""The ``freight`` command line: data generation and the end-to-end demo."""

from __future__ import annotations

import argparse
import json
import os
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
    _progress(f"[1/5] generating {config.days} days x {config.rows_per_day} loads into {lake}")
    step_started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as executor:
        write_partitions(generate(config, executor), str(lake))
    _progress(f"      {rows} loads in {time.perf_counter() - step_started:.1f} s")
    _progress("[2/5] prepare: validate, split by time, lane statistics, features")
    _run_step("prepare", prepare.main, ["--input", str(lake), "--output", str(prepared)])
    _progress("[3/5] train: XGBoost (hist) with early stopping on the validation split")
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
    _progress("[4/5] evaluate: test split, against the lane-median and price-per-km baselines")
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
    _progress("[5/5] serve the model locally and price test-window loads through boto3")
    print(quote_demo_loads(model_dir, lake, workdir / "serve.log"))
    print()
    print(f"finished in {time.perf_counter() - started:.0f} s; everything is under {workdir}:")
    print(f"  model directory   {model_dir}")
    print(f"  evaluation        {evaluation_dir / evaluate.EVALUATION_FILE}")
    print(f"  report            {report_dir / evaluate.REPORT_FILE}")
    print(f"  prepared splits   {prepared}")
    print(f"  server log        {workdir / 'serve.log'}")
    return 0


# -- freight serve / freight quote -----------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a model directory with the production server (SageMaker's hosting contract)."""
    from inference.server import ServerSettings, SettingsError, run

    try:
        settings = ServerSettings(
            model_dir=args.model_dir,
            host=args.host,
            port=args.port,
            workers=args.workers,
            max_body_bytes=args.max_body_bytes,
            endpoint_name=args.endpoint_name,
            access_log=args.access_log,
        )
        run(settings)
    except SettingsError as error:
        raise UsageError(str(error)) from None
    return 0


def _read_loads(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.load is not None:
        text, source = args.load, "--load"
    elif args.file is not None:
        text, source = (
            (sys.stdin.read(), "stdin")
            if args.file == "-"
            else (Path(args.file).read_text(), args.file)
        )
    else:
        raise UsageError("give the load(s) with --load JSON or --file PATH (- for stdin)")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{source} is not valid JSON: {error}") from None
    if isinstance(document, dict) and "instances" in document:
        document = document["instances"]
    loads = document if isinstance(document, list) else [document]
    if not loads or not all(isinstance(load, dict) for load in loads):
        raise UsageError(f"{source} must hold a load object or a list of load objects")
    return loads


def cmd_quote(args: argparse.Namespace) -> int:
    """Price loads through an endpoint (SageMaker, or the local server with --endpoint-url)."""
    import boto3

    from inference.client import PriceQuoteClient, QuoteRejectedError, QuoteUnavailableError

    loads = _read_loads(args)
    session = boto3.Session(region_name=args.region) if args.region else None
    client = PriceQuoteClient(
        args.endpoint_name, boto3_session=session, endpoint_url=args.endpoint_url
    )
    try:
        quotes = client.quote_many(loads)
    except QuoteRejectedError as error:
        print(f"error: the endpoint rejected the request: {error}", file=sys.stderr)
        return 2
    except QuoteUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for quote in quotes:
        print(json.dumps(quote.__dict__))
    return 0


def demo_requests(lake: Path, count: int) -> tuple[list[dict[str, Any]], list[float]]:
    """A few valid loads of the last day in the lake, as price requests, and their prices."""
    from processing.lake import list_partitions, read_partitions
    from processing.schema import REQUEST_FIELDS
    from processing.validation import validate

    last_day = list_partitions(lake)[-1][0]
    loads = validate(read_partitions(lake, last_day, last_day)).valid
    # Spread the picks over the day's loads so that they differ in lane and equipment.
    step = max(1, loads.num_rows // count)
    picked = loads.take(list(range(0, step * count, step))[:count]).to_pylist()
    requests = []
    for load in picked:
        request = {name: load[name] for name in REQUEST_FIELDS}
        request["posted_at"] = request["posted_at"].isoformat()
        request["pickup_at"] = request["pickup_at"].isoformat()
        request["load_id"] = load["load_id"]
        requests.append(request)
    return requests, [float(load["price_eur"]) for load in picked]


def quote_demo_loads(model_dir: Path, lake: Path, log_path: Path, count: int = 5) -> str:
    """Serve ``model_dir`` locally, quote loads via boto3 invoke_endpoint, return a table."""
    import boto3

    from inference.client import PriceQuoteClient
    from pipelines.local_endpoint import LOCAL_ENDPOINT_NAME, local_endpoint

    requests, booked = demo_requests(lake, count)
    # The local endpoint ignores credentials, but boto3 signs every request.
    session = boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="eu-central-1"
    )
    with log_path.open("wb") as log, local_endpoint(model_dir, log=log) as url:
        client = PriceQuoteClient(LOCAL_ENDPOINT_NAME, boto3_session=session, endpoint_url=url)
        quotes = client.quote_many(requests)
    lines = [
        f"quotes from {LOCAL_ENDPOINT_NAME} at {url} (boto3 sagemaker-runtime invoke_endpoint):",
        f"{'lane':<16}{'equipment':<11}{'km':>7}{'kg':>8}{'ldm':>6}{'booked':>9}"
        f"{'quote':>9}{'80% interval':>19}",
    ]
    for request, price, quote in zip(requests, booked, quotes, strict=True):
        lane = f"{request['origin_region']}>{request['destination_region']}"
        interval = f"{quote.price_low_eur:.0f}-{quote.price_high_eur:.0f}"
        lines.append(
            f"{lane:<16}{request['equipment_type']:<11}{request['distance_km']:>7.0f}"
            f"{request['weight_kg']:>8.0f}{request['loading_meters']:>6.1f}{price:>9.0f}"
            f"{quote.price_eur:>9.0f}{interval:>19}"
        )
    lines.append(
        "the same call from the shell while a server runs: aws sagemaker-runtime "
        f"invoke-endpoint --endpoint-url {url} --endpoint-name {LOCAL_ENDPOINT_NAME} "
        "--content-type application/json --body fileb://load.json out.json"
    )
    return "\n".join(lines)


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

    serve = commands.add_parser("serve", help="serve a model directory (SageMaker contract)")
    serve.add_argument("--model-dir", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int_at_least(1), default=8080)
    serve.add_argument("--workers", type=int_at_least(1), default=os.cpu_count() or 1)
    serve.add_argument("--max-body-bytes", type=int_at_least(1), default=6 * 1024 * 1024)
    serve.add_argument("--endpoint-name", help="answer only this name on /endpoints/NAME/...")
    serve.add_argument("--access-log", action="store_true", help="one log line per request")
    serve.set_defaults(handler=cmd_serve)

    quote = commands.add_parser("quote", help="price loads through an endpoint")
    quote.add_argument("--endpoint-name", required=True)
    quote.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:8080 for the local server")
    quote.add_argument("--region", help="AWS region (default: the boto3 configuration)")
    source = quote.add_mutually_exclusive_group()
    source.add_argument("--load", help='a load as JSON (object, list, or {"instances": ...})')
    source.add_argument("--file", help="a JSON file of loads, - for stdin")
    quote.set_defaults(handler=cmd_quote)
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
