"""The ``freight`` command line: data generation and the end-to-end demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from inference.busy_poll import DEFAULT_WINDOW_US as DEFAULT_BUSY_POLL_US
from market.generator import MarketConfig, generate
from processing.arguments import date, float_within, int_at_least
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
    """The lifecycle on this machine: lake -> pipeline -> approval -> endpoint -> quotes."""
    from local.embedded_aws import embedded_aws
    from ops.registry import set_approval
    from stages.names import ResourceNames

    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    names = ResourceNames(stage="local")
    started = time.perf_counter()
    config = MarketConfig(days=args.days, rows_per_day=args.rows_per_day, seed=args.seed)
    window = {
        "StartDate": config.start_date.isoformat(),
        "EndDate": config.dates()[-1].isoformat(),
    }
    with embedded_aws(names) as aws:
        where = aws.endpoint_url or "in-process"
        _progress(f"[1/5] embedded AWS at {where}; lake buckets and Glue database created")
        _progress(
            f"[2/5] generating {config.days} days x {config.rows_per_day} loads into "
            f"{names.raw_loads_uri}"
        )
        step_started = time.perf_counter()
        land_market(aws, config)
        _progress(f"      {config.days * config.rows_per_day} loads in "
                  f"{time.perf_counter() - step_started:.1f} s")  # fmt: skip
        _progress("[3/5] pipeline run-local: the deployable definition, executed here")
        result = run_local_pipeline(aws, workdir / "pipeline", window)
        print(format_run(result))
        if result.status != "Succeeded" or result.model_package_arn is None:
            print(f"error: the pipeline did not register a model: {result.failure}",
                  file=sys.stderr)  # fmt: skip
            return 1
        _progress("[4/5] approving the registered model package (as Studio's button does)")
        sagemaker = aws.client("sagemaker")
        set_approval(sagemaker, result.model_package_arn, "Approved", "approved by freight demo")
        model_dir, evaluation_path, report_dir = _fetch_approved(
            aws, result.model_package_arn, result, workdir
        )
        evaluation = json.loads(evaluation_path.read_text())
        print()
        print(metrics_table(evaluation))
        print()
        _progress("[5/5] serving the approved model locally; quotes through boto3")
        print(quote_demo_loads(model_dir, config, workdir / "serve.log"))
    print()
    print(f"finished in {time.perf_counter() - started:.0f} s; everything is under {workdir}:")
    print(f"  approved package  {result.model_package_arn}")
    print(f"  model directory   {model_dir}")
    print(f"  evaluation        {evaluation_path}")
    print(f"  report            {report_dir / 'index.html'}")
    print(f"  pipeline steps    {workdir / 'pipeline' / result.execution_id}")
    print(f"  server log        {workdir / 'serve.log'}")
    return 0


def _fetch_approved(
    aws: Any, package_arn: str, result: Any, workdir: Path
) -> tuple[Path, Path, Path]:
    """Download the approved package's model, its evaluation and the report from S3."""
    import tarfile

    s3 = aws.client("s3")

    def download(uri: str, path: Path) -> Path:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
        return path

    package = aws.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    model_uri = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    archive = download(model_uri, workdir / "model.tar.gz")
    model_dir = workdir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir, filter="data")
    evaluation_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    evaluation_path = download(evaluation_uri, workdir / "evaluation" / "evaluation.json")
    evaluate_step = next(step for step in result.steps if step.name == "Evaluate")
    report_dir = workdir / "report"
    report_uri = evaluate_step.outputs["report"]
    bucket, _, prefix = report_uri.removeprefix("s3://").partition("/")
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        download(f"s3://{bucket}/{item['Key']}", report_dir / item["Key"].rsplit("/", 1)[1])
    return model_dir, evaluation_path, report_dir


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
            busy_poll_us=args.busy_poll_us,
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


def demo_requests(config: MarketConfig, count: int) -> tuple[list[dict[str, Any]], list[float]]:
    """A few valid loads of the market's last day, as price requests, and their prices.

    The generator is deterministic, so the day is drawn again rather than read from the lake.
    """
    from market.generator import Market, generate_day
    from processing.schema import REQUEST_FIELDS
    from processing.validation import validate

    last_day = config.dates()[-1]
    loads = validate(generate_day(Market(config.seed), last_day, config.rows_per_day)).valid
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


def quote_demo_loads(model_dir: Path, config: MarketConfig, log_path: Path, count: int = 5) -> str:
    """Serve ``model_dir`` locally, quote loads via boto3 invoke_endpoint, return a table."""
    import boto3

    from inference.client import PriceQuoteClient
    from local.endpoint import LOCAL_ENDPOINT_NAME, local_endpoint

    requests, booked = demo_requests(config, count)
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


# -- freight pipeline / freight models --------------------------------------------------------


def _code_version() -> str:
    """The commit the definition is built from (``unknown`` outside a git checkout)."""
    import subprocess

    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
            check=True, cwd=Path(__file__).resolve().parent, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def _pipeline_config(args: argparse.Namespace) -> Any:
    from pipelines.definition import PipelineConfig
    from stages.names import ResourceNames

    names = ResourceNames(stage=args.stage, account=args.account)
    overrides = {
        key: value
        for key, value in (
            ("region", args.region),
            ("role_arn", args.role_arn),
            ("image_uri", args.image_uri),
        )
        if value
    }
    return PipelineConfig(
        pipeline_name=names.pipeline,
        artifacts_bucket=names.artifacts_bucket,
        raw_loads_uri=names.raw_loads_uri,
        model_package_group_name=names.model_package_group,
        code_version=args.code_version or _code_version(),
        **overrides,
    )


def _sagemaker_client(args: argparse.Namespace) -> Any:
    import boto3

    # AWS_ENDPOINT_URL, when set, points boto3 at the embedded AWS of local mode.
    return boto3.Session(region_name=args.region).client("sagemaker")


def cmd_pipeline_definition(args: argparse.Namespace) -> int:
    """Print or write the pipeline definition JSON, built offline."""
    from pipelines.definition import definition_json

    text = definition_json(_pipeline_config(args))
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {args.out} ({len(text)} bytes)", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_pipeline_upsert(args: argparse.Namespace) -> int:
    """Create or update the pipeline in SageMaker."""
    from ops.pipelines import upsert_pipeline
    from pipelines.definition import definition_json

    config = _pipeline_config(args)
    arn = upsert_pipeline(
        _sagemaker_client(args), config.pipeline_name, definition_json(config), config.role_arn
    )
    print(arn)
    return 0


def cmd_pipeline_start(args: argparse.Namespace) -> int:
    """Start an execution with NAME=VALUE parameter overrides (optionally wait for it)."""
    from ops.pipelines import parse_parameters, start_pipeline, wait_for_execution
    from pipelines.definition import PARAMETER_NAMES
    from stages.names import ResourceNames

    parameters = parse_parameters(args.param or [], PARAMETER_NAMES)
    client = _sagemaker_client(args)
    arn = start_pipeline(client, ResourceNames(stage=args.stage).pipeline, parameters)
    print(arn)
    if args.wait:
        status = wait_for_execution(client, arn, args.timeout, poll_seconds=args.poll)
        print(json.dumps(status.__dict__))
        return 0 if status.status == "Succeeded" else 1
    return 0


def cmd_pipeline_status(args: argparse.Namespace) -> int:
    """Show an execution's status (default: the latest); with --wait, wait for its end."""
    from ops.pipelines import execution_status, latest_execution, wait_for_execution
    from stages.names import ResourceNames

    client = _sagemaker_client(args)
    arn = args.execution_arn or latest_execution(client, ResourceNames(stage=args.stage).pipeline)
    if args.wait:
        status = wait_for_execution(client, arn, args.timeout, poll_seconds=args.poll)
    else:
        status = execution_status(client, arn)
    print(json.dumps(status.__dict__))
    return 0 if status.status != "Failed" else 1


def cmd_models_list(args: argparse.Namespace) -> int:
    """List the model registry group's versions, newest first."""
    from ops.registry import list_model_packages
    from stages.names import ResourceNames

    group = ResourceNames(stage=args.stage).model_package_group
    for package in list_model_packages(_sagemaker_client(args), group):
        print(json.dumps(package.__dict__))
    return 0


def cmd_models_set_status(args: argparse.Namespace) -> int:
    """Approve or reject a model version (a number, ``latest`` or an ARN)."""
    from ops.registry import resolve_package, set_approval
    from stages.names import ResourceNames

    client = _sagemaker_client(args)
    group = ResourceNames(stage=args.stage).model_package_group
    arn = resolve_package(client, group, args.version)
    set_approval(client, arn, args.status, args.description or "")
    print(json.dumps({"model_package_arn": arn, "approval_status": args.status}))
    return 0


def local_pipeline_config(code_version: str | None = None) -> Any:
    """The definition run locally: the local stage's names, the embedded AWS's region."""
    from local.embedded_aws import LOCAL_REGION
    from pipelines.definition import PipelineConfig
    from stages.names import ResourceNames

    names = ResourceNames(stage="local")
    return PipelineConfig(
        pipeline_name=names.pipeline,
        region=LOCAL_REGION,
        artifacts_bucket=names.artifacts_bucket,
        raw_loads_uri=names.raw_loads_uri,
        model_package_group_name=names.model_package_group,
        code_version=code_version or _code_version(),
    )


def run_local_pipeline(
    aws: Any, workdir: Path, parameters: dict[str, str], code_version: str | None = None
) -> Any:
    """Build the definition and execute it against ``aws``; returns the RunResult."""
    from local.runner import LocalPipelineRun
    from pipelines.definition import definition_json

    config = local_pipeline_config(code_version)
    run = LocalPipelineRun(
        definition_json(config), aws, workdir, parameters, pipeline_name=config.pipeline_name
    )
    return run.run()


def land_market(aws: Any, config: MarketConfig) -> None:
    """Generate the synthetic market into the embedded lake's raw loads."""
    from stages.names import ResourceNames

    with ThreadPoolExecutor(max_workers=2) as executor:
        write_partitions(
            generate(config, executor),
            ResourceNames(stage="local").raw_loads_uri,
            s3_client=aws.client("s3"),
        )


def _ensure_local_data(aws: Any, config: MarketConfig) -> None:
    from stages.names import ResourceNames

    names = ResourceNames(stage="local")
    listed = aws.client("s3").list_objects_v2(
        Bucket=names.raw_bucket, Prefix="raw/loads/", MaxKeys=1
    )
    if listed.get("KeyCount", 0):
        return
    _progress(
        f"the embedded lake is empty: generating {config.days} days x {config.rows_per_day} loads"
    )
    land_market(aws, config)


def cmd_pipeline_run_local(args: argparse.Namespace) -> int:
    """Execute the pipeline definition on this machine against the embedded AWS."""
    from local.embedded_aws import embedded_aws
    from ops.pipelines import parse_parameters
    from pipelines.definition import PARAMETER_NAMES
    from stages.names import ResourceNames

    parameters = parse_parameters(args.param or [], PARAMETER_NAMES)
    with embedded_aws(ResourceNames(stage="local")) as aws:
        market = MarketConfig(days=args.days, rows_per_day=args.rows_per_day, seed=args.seed)
        _ensure_local_data(aws, market)
        result = run_local_pipeline(aws, args.workdir.resolve(), parameters)
    print(format_run(result))
    return 0 if result.status == "Succeeded" else 1


def format_run(result: Any) -> str:
    """A step table and the outcome of a local run."""
    lines = [f"{'step':<22}{'type':<15}{'status':<11}{'seconds':>8}"]
    lines.extend(
        f"{step.name:<22}{step.type:<15}{step.status:<11}{step.seconds:>8.1f}"
        for step in result.steps
    )
    lines.append(
        f"execution {result.execution_id}: {result.status} in {result.seconds:.1f} s "
        f"(steps' work {result.work_seconds:.1f} s, runner overhead "
        f"{result.overhead_seconds:.1f} s = {result.overhead_seconds / result.seconds:.0%})"
    )
    if result.failure:
        lines.append(f"failure: {result.failure}")
    if result.model_package_arn:
        lines.append(f"registered model package: {result.model_package_arn}")
    return "\n".join(lines)


def _add_stage(parser: argparse.ArgumentParser) -> None:
    from stages.names import STAGES

    parser.add_argument("--stage", choices=STAGES, default="dev")
    parser.add_argument("--region", help="AWS region (default: the boto3 configuration)")


def _add_pipeline_config(parser: argparse.ArgumentParser) -> None:
    _add_stage(parser)
    parser.add_argument("--account", help="12-digit account id in bucket names")
    parser.add_argument("--role-arn", help="SageMaker execution role (full ARN)")
    parser.add_argument("--image-uri", help="the project's image in ECR")
    parser.add_argument("--code-version", help="default: the git commit")


def _add_pipeline_commands(commands: Any) -> None:
    pipeline = commands.add_parser("pipeline", help="the SageMaker pipeline").add_subparsers(
        dest="pipeline_command", required=True, metavar="SUBCOMMAND"
    )
    definition = pipeline.add_parser("definition", help="print or write the definition JSON")
    _add_pipeline_config(definition)
    definition.add_argument("--out", help="write to this file instead of stdout")
    definition.set_defaults(handler=cmd_pipeline_definition)
    run_local = pipeline.add_parser(
        "run-local", help="execute the definition here, against the embedded AWS"
    )
    run_local.add_argument("--workdir", type=Path, default=Path("work/pipeline"))
    run_local.add_argument("--param", action="append", metavar="NAME=VALUE")
    run_local.add_argument("--days", type=int_at_least(45), default=DEMO_DAYS,
                           help="market to generate when the embedded lake is empty")  # fmt: skip
    run_local.add_argument("--rows-per-day", type=int_at_least(100), default=DEMO_ROWS_PER_DAY)
    run_local.add_argument("--seed", type=int_at_least(0), default=DEMO_SEED)
    run_local.set_defaults(handler=cmd_pipeline_run_local)
    upsert = pipeline.add_parser("upsert", help="create or update the pipeline")
    _add_pipeline_config(upsert)
    upsert.set_defaults(handler=cmd_pipeline_upsert)
    for name, handler, text in (
        ("start", cmd_pipeline_start, "start an execution"),
        ("status", cmd_pipeline_status, "status of an execution (default: the latest)"),
        ("wait", cmd_pipeline_status, "wait for an execution (default: the latest) to end"),
    ):
        command = pipeline.add_parser(name, help=text)
        _add_stage(command)
        if name == "start":
            command.add_argument("--param", action="append", metavar="NAME=VALUE")
        else:
            command.add_argument("--execution-arn")
        if name == "wait":
            command.set_defaults(wait=True)
        else:
            command.add_argument("--wait", action="store_true", help="wait until it ends")
        command.add_argument("--timeout", type=int_at_least(1), default=4 * 3600)
        command.add_argument("--poll", type=int_at_least(1), default=30)
        command.set_defaults(handler=handler)

    models = commands.add_parser("models", help="the model registry").add_subparsers(
        dest="models_command", required=True, metavar="SUBCOMMAND"
    )
    listing = models.add_parser("list", help="versions of the model package group")
    _add_stage(listing)
    listing.set_defaults(handler=cmd_models_list)
    for name, status in (("approve", "Approved"), ("reject", "Rejected")):
        command = models.add_parser(name, help=f"set a version to {status}")
        _add_stage(command)
        command.add_argument("version", help="version number, 'latest', or model package ARN")
        command.add_argument("--description", help="why (stored with the approval)")
        command.set_defaults(handler=cmd_models_set_status, status=status)


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
    serve.add_argument(
        "--busy-poll-us", type=int_at_least(0), default=DEFAULT_BUSY_POLL_US, metavar="US",
        help="after a request, poll for the next one this long instead of idling the CPU "
        f"(0 = off; default {DEFAULT_BUSY_POLL_US})",
    )  # fmt: skip
    serve.set_defaults(handler=cmd_serve)

    quote = commands.add_parser("quote", help="price loads through an endpoint")
    quote.add_argument("--endpoint-name", required=True)
    quote.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:8080 for the local server")
    quote.add_argument("--region", help="AWS region (default: the boto3 configuration)")
    source = quote.add_mutually_exclusive_group()
    source.add_argument("--load", help='a load as JSON (object, list, or {"instances": ...})')
    source.add_argument("--file", help="a JSON file of loads, - for stdin")
    quote.set_defaults(handler=cmd_quote)

    _add_pipeline_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``freight`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from ops.errors import OperationError

    try:
        code: int = args.handler(args)
    except (UsageError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OperationError, ClientError, BotoCoreError) as error:
        # The service refused or could not be reached: name the call and the reason.
        print(f"error: {error}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
