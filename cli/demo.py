"""``freight demo``: the lifecycle on this machine, lake -> pipeline -> approval -> endpoint."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.arguments import Commands, add_market, market_config, progress
from market.generator import MarketConfig
from processing.arguments import output_directory
from processing.contracts import (
    BASELINES,
    EVALUATION_FILE,
    IMPROVEMENT,
    IMPROVEMENT_PREFIX,
    JSON_CONTENT_TYPE,
    REGRESSION_METRICS,
    REPORT_FILE,
    REPORT_OUTPUT,
)

if TYPE_CHECKING:
    import boto3

    from local.embedded_aws import EmbeddedAws
    from local.runner import RunResult

DEFAULT_WORKDIR = Path("work/demo")
# The pipeline step whose report output the demo downloads.
EVALUATE_STEP = "Evaluate"
QUOTED_LOADS = 5


def metrics_table(evaluation: dict[str, Any]) -> str:
    """The demo's closing table: model and baselines side by side."""
    header = f"{'predictor':<14}{'MAPE':>9}{'MAE EUR':>11}{'RMSE EUR':>11}{'R2':>8}"
    lines = [header, "-" * len(header)]
    sources = [
        ("model", evaluation),
        *((name, evaluation["baselines"][name]) for name in BASELINES),
    ]
    for source, content in sources:
        metrics = content[REGRESSION_METRICS]
        lines.append(
            f"{source:<14}{100 * metrics['mape']['value']:>8.2f}%"
            f"{metrics['mae']['value']:>11.1f}{metrics['rmse']['value']:>11.1f}"
            f"{metrics['r2']['value']:>8.3f}"
        )
    for baseline in BASELINES:
        value = evaluation[IMPROVEMENT][f"{IMPROVEMENT_PREFIX}{baseline}"]
        lines.append(f"MAPE is {100 * value:.1f}% lower than the {baseline} baseline")
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    """The lifecycle on this machine: lake -> pipeline -> approval -> endpoint -> quotes."""
    from local.approvals import subscribe_approvals
    from local.deployer import deploy_approvals
    from local.embedded_aws import embedded_aws
    from local.hosting import LocalHosting
    from local.market_data import LOCAL_NAMES, land_market
    from local.pipeline_run import format_run, run_local_pipeline
    from ops.registry import set_approval
    from pipelines.parameters import END_DATE, START_DATE

    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config = market_config(args)
    # An explicit window: the definition's default one is relative to today, the market is not.
    window = {
        START_DATE.name: config.start_date.isoformat(),
        END_DATE.name: config.dates()[-1].isoformat(),
    }
    with embedded_aws(LOCAL_NAMES) as aws:
        where = aws.endpoint_url or "in-process"
        progress(f"[1/5] embedded AWS at {where}; lake buckets and Glue database created")
        progress(
            f"[2/5] generating {config.days} days x {config.rows_per_day} loads into "
            f"{LOCAL_NAMES.raw_loads_uri}"
        )
        step_started = time.perf_counter()
        land_market(aws, config)
        progress(f"      {config.days * config.rows_per_day} loads in "
                 f"{time.perf_counter() - step_started:.1f} s")  # fmt: skip
        progress("[3/5] pipeline run-local: the deployable definition, executed here")
        result = run_local_pipeline(aws, workdir / "pipeline", window)
        print(format_run(result))
        if result.status != "Succeeded" or result.model_package_arn is None:
            print(f"error: the pipeline did not register a model: {result.failure}",
                  file=sys.stderr)  # fmt: skip
            return 1
        progress("[4/5] approving the registered model package (as Studio's button does)")
        sagemaker = aws.client("sagemaker")
        # The deploy rule listens before the approval, as the staging stack's does.
        queue = subscribe_approvals(aws, LOCAL_NAMES)
        set_approval(sagemaker, result.model_package_arn, "Approved", "approved by freight demo",
                     events=aws.client("events"))  # fmt: skip
        model_dir, evaluation_path, report_dir = fetch_approved(
            aws, result.model_package_arn, result, workdir
        )
        evaluation = json.loads(evaluation_path.read_text())
        print()
        print(metrics_table(evaluation))
        print()
        progress("[5/5] the approval event deploys the model to the local endpoint "
                 "(data capture on); quotes through boto3")  # fmt: skip
        endpoint_dir = workdir / "endpoint"
        with LocalHosting(aws, workdir=endpoint_dir) as hosting:
            (deployed,) = deploy_approvals(aws, hosting, queue)
            print(f"endpoint {LOCAL_NAMES.endpoint}: {deployed.deployment.action} with "
                  f"{deployed.deployment.endpoint_config_name}")  # fmt: skip
            print(quote_demo_loads(hosting.url, config, boto3_session=aws.session()))
        # Closing the hosting drained its workers, which flushed their capture.
        captured = count_capture_records(aws)
        noun = "record" if captured == 1 else "records"
        print(f"data capture: {captured} {noun} (one per request) under {LOCAL_NAMES.capture_uri}/")
    print()
    print(f"finished in {time.perf_counter() - started:.0f} s; everything is under {workdir}:")
    print(f"  approved package  {result.model_package_arn}")
    print(f"  model directory   {model_dir}")
    print(f"  evaluation        {evaluation_path}")
    print(f"  report            {report_dir / REPORT_FILE}")
    print(f"  pipeline steps    {workdir / 'pipeline' / result.execution_id}")
    print(f"  endpoint fleets   {endpoint_dir} (each fleet's server.log)")
    return 0


def fetch_approved(
    aws: EmbeddedAws, package_arn: str, result: RunResult, workdir: Path
) -> tuple[Path, Path, Path]:
    """Download the approved package's model (unpacked), its evaluation and the report."""
    from processing.lake import split_s3_uri
    from processing.model import resolve_model_dir

    s3 = aws.client("s3")

    def download(uri: str, path: Path) -> Path:
        bucket, key = split_s3_uri(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
        return path

    package = aws.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    model_uri = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    archive = download(model_uri, workdir / "model.tar.gz")
    model_dir = resolve_model_dir(archive, workdir / "model")
    evaluation_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    evaluation_path = download(evaluation_uri, workdir / "evaluation" / EVALUATION_FILE)
    evaluate_step = next(step for step in result.steps if step.name == EVALUATE_STEP)
    report_dir = workdir / "report"
    bucket, prefix = split_s3_uri(evaluate_step.outputs[REPORT_OUTPUT])
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    for item in listed.get("Contents", []):
        download(f"s3://{bucket}/{item['Key']}", report_dir / item["Key"].rsplit("/", 1)[1])
    return model_dir, evaluation_path, report_dir


def quote_demo_loads(
    url: str,
    config: MarketConfig,
    count: int = QUOTED_LOADS,
    *,
    boto3_session: boto3.Session | None = None,
) -> str:
    """Quote loads via boto3 invoke_endpoint at ``url`` (the local endpoint); a table.

    ``boto3_session`` defaults to one with the embedded AWS's region and dummy credentials: the
    local endpoint ignores credentials, but boto3 signs every request.
    """
    from inference.client import PriceQuoteClient
    from local.embedded_aws import EmbeddedAws
    from local.endpoint import LOCAL_ENDPOINT_NAME
    from local.market_data import demo_requests

    requests, booked = demo_requests(config, count)
    session = boto3_session or EmbeddedAws(endpoint_url=None).session()
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
        f"--content-type {JSON_CONTENT_TYPE} --body fileb://load.json out.json"
    )
    return "\n".join(lines)


def count_capture_records(aws: EmbeddedAws) -> int:
    """The data capture records the local endpoint wrote into the embedded S3."""
    from local.market_data import LOCAL_NAMES
    from processing.lake import split_s3_uri

    s3 = aws.client("s3")
    bucket, prefix = split_s3_uri(LOCAL_NAMES.capture_uri)
    records = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            records += body.count(b"\n")
    return records


def register(commands: Commands) -> None:
    """Add ``freight demo``."""
    demo = commands.add_parser("demo", help="generate -> prepare -> train -> evaluate")
    demo.add_argument("--workdir", type=output_directory, default=DEFAULT_WORKDIR)
    add_market(demo)
    demo.set_defaults(handler=cmd_demo)
