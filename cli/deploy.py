"""``freight deploy``: an Approved package onto a stage's endpoint, or promoted to prod.

AWS stages: the release is resolved with boto3 and handed to ``cdk deploy`` as context, so the
serving stack (and CloudFormation's blue/green update) does the deployment and synth calls no
AWS API. ``--local``: the same resolution against the embedded AWS, then the SageMaker API
requests against the local hosting service (see ``cli.deploy_local``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.arguments import Commands, model_version, progress, region
from cli.errors import UsageError
from processing.arguments import int_at_least, int_within, output_directory

if TYPE_CHECKING:
    from stages.config import StageConfig

# Where `cdk deploy` runs: the repository root (cdk.json lives there).
APP_ROOT = Path(__file__).resolve().parent.parent
DEPLOYABLE_STAGES = ("dev", "staging", "prod")
PLACEHOLDER_ACCOUNT = "000000000000"
DEFAULT_LOCAL_WORKDIR = Path("work/local-endpoint")


def percent(value: str) -> float:
    """A share in percent, 0 to 100."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= number <= 100:
        raise argparse.ArgumentTypeError(f"{value!r} is not between 0 and 100")
    return number


def serving_stack(stage: str) -> str:
    """The serving stack's id (as cdk_app.app names it)."""
    return f"FreightPricing-{stage}-Serving"


def checked_stage(args: argparse.Namespace) -> StageConfig:
    """The stage's configuration, once the flags fit it (before any AWS client exists)."""
    from stages.config import stage_configs

    # What a stage serves and how does not depend on the account; names are compared below.
    config = stage_configs(PLACEHOLDER_ACCOUNT)[args.stage]
    try:
        serving = config.require_serving()
    except ValueError as error:
        raise UsageError(f"--stage: {error}") from None
    if config.promote_from and not args.promote:
        raise UsageError(
            f"--stage {args.stage} is deployed only by promotion: freight deploy --stage "
            f"{args.stage} --promote (what {config.promote_from} serves, once healthy there)"
        )
    if args.promote and not config.promote_from:
        raise UsageError(f"--promote: stage {args.stage} does not promote from another stage")
    if args.instance_type:
        try:
            serving.check_instance_type(args.instance_type)
        except ValueError as error:
            raise UsageError(f"--instance-type: {error}") from None
    return config


def cmd_deploy(args: argparse.Namespace) -> int:
    """Resolve the release, check it may go to the stage, and run ``cdk deploy``."""
    if args.local:
        return cmd_deploy_local(args)
    if args.fault_percent:
        raise UsageError("--fault-percent is a drill of the local endpoint: use it with --local")
    args.stage = args.stage or "staging"
    import boto3

    from ops.deploy import (
        cdk_context,
        cdk_deploy_command,
        check_not_busy,
        check_promotable,
        record_promotion,
        resolve_release,
        served_package,
    )
    from ops.errors import OperationError
    from stages.names import ResourceNames

    config = checked_stage(args)
    session = boto3.Session(region_name=args.region)
    sagemaker = session.client("sagemaker")
    names = config.names
    source = ResourceNames(stage=config.promote_from) if config.promote_from else names
    package = args.package
    if args.promote and package == "latest":
        # Promotion takes what the source stage serves, not the newest approval.
        endpoint = check_not_busy(sagemaker, source.endpoint)
        if endpoint is None:
            raise OperationError(f"{config.promote_from} endpoint {source.endpoint} does not exist")
        package = served_package(sagemaker, endpoint) or "latest"
    release = resolve_release(sagemaker, source.model_package_group, package)
    check_not_busy(sagemaker, names.endpoint)
    health = None
    if args.promote:
        health = check_promotable(sagemaker, session.client("cloudwatch"), release, source)
    command = cdk_deploy_command(
        serving_stack(args.stage), cdk_context(args.stage, release, args.instance_type)
    )
    summary: dict[str, Any] = {
        "stage": args.stage,
        "endpoint": names.endpoint,
        "model_package_arn": release.package_arn,
        "model_version": release.version,
        "baseline_statistics": release.baseline_statistics,
        "baseline_constraints": release.baseline_constraints,
        "command": command,
    }
    if args.dry_run:
        print(json.dumps({**summary, "dry_run": True}, indent=2))
        return 0
    progress(f"deploying model version {release.version} to {names.endpoint}: "
             f"{' '.join(command)}")  # fmt: skip
    completed = subprocess.run(command, cwd=APP_ROOT, check=False)
    if completed.returncode != 0:
        raise OperationError(f"cdk deploy exited with {completed.returncode}; nothing recorded")
    if health is not None:
        who = session.client("sts").get_caller_identity()["Arn"]
        summary["promotion"] = record_promotion(
            sagemaker, release, promoted_by=who, staging_endpoint=health.endpoint_name
        )
    print(json.dumps(summary, indent=2))
    return 0


def cmd_deploy_local(args: argparse.Namespace) -> int:
    """Deploy to the local endpoint, then serve it and deploy every further approval."""
    from local.approvals import subscribe_approvals
    from local.deployer import LocalDeployment, deploy_approvals, deploy_local
    from local.embedded_aws import ENV_ENDPOINT_URL, embedded_aws
    from local.hosting import LocalHosting
    from local.market_data import LOCAL_NAMES
    from ops.errors import OperationError

    if args.promote or args.instance_type or args.stage is not None:
        raise UsageError(
            "--local deploys the local stage: no --stage, --promote or --instance-type"
        )
    workdir: Path = args.workdir.resolve()

    def report(done: LocalDeployment) -> None:
        outcome = done.outcome
        line = {"model_version": done.release.version, "action": done.deployment.action,
                "endpoint_config": done.deployment.endpoint_config_name}  # fmt: skip
        if outcome is not None:
            line |= {"update": outcome.status, "alarm": outcome.alarm_name,
                     "reason": outcome.reason}  # fmt: skip
        print(json.dumps(line), flush=True)

    if os.environ.get(ENV_ENDPOINT_URL):
        raise UsageError(
            "--local hosts the embedded AWS itself (its alarm evaluator reads the emulator in "
            f"this process): unset {ENV_ENDPOINT_URL}; other commands reach it at the URL it prints"
        )
    with (
        embedded_aws(LOCAL_NAMES) as aws,
        LocalHosting(aws, workdir=workdir, workers=args.workers) as hosting,
    ):
        queue = subscribe_approvals(aws, LOCAL_NAMES)
        environment = (
            f"export {ENV_ENDPOINT_URL}={aws.endpoint_url} AWS_DEFAULT_REGION={aws.region}"
        )
        try:
            report(deploy_local(aws, hosting, args.package, fault_percent=args.fault_percent))
        except OperationError as error:
            if args.package != "latest" or "no Approved package" not in str(error):
                raise
            progress(f"{error}; waiting for the first approval. In another shell: "
                     f"{environment}; freight pipeline run-local; freight models approve "
                     "latest --stage local")  # fmt: skip
        aws_cli = f"aws --endpoint-url {aws.endpoint_url} --region {aws.region}"
        progress(f"endpoint {LOCAL_NAMES.endpoint} at {hosting.url}; data capture under "
                 f"{LOCAL_NAMES.capture_uri}/; other shells: {environment}")  # fmt: skip
        progress(f"  {aws_cli} sagemaker describe-endpoint --endpoint-name {LOCAL_NAMES.endpoint}")
        progress(f"  aws sagemaker-runtime invoke-endpoint --endpoint-url {hosting.url} "
                 f"--endpoint-name {LOCAL_NAMES.endpoint} --content-type application/json "
                 "--body fileb://load.json out.json")  # fmt: skip
        progress("approvals in the local group (freight models approve N --stage local) deploy "
                 "blue/green; Ctrl-C stops")  # fmt: skip
        deadline = time.monotonic() + args.serve_seconds if args.serve_seconds else None
        try:
            while deadline is None or time.monotonic() < deadline:
                deploy_approvals(aws, hosting, queue, fault_percent=args.fault_percent,
                                 report=report)  # fmt: skip
        except KeyboardInterrupt:
            progress("stopping the local endpoint (draining)")
    return 0


def register(commands: Commands) -> None:
    """Add ``freight deploy``."""
    deploy = commands.add_parser(
        "deploy",
        help="deploy an Approved model package to a stage's endpoint (or promote to prod)",
        description=sys.modules[__name__].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deploy.add_argument(
        "--stage", choices=DEPLOYABLE_STAGES, help="the AWS stage (default: staging)"
    )
    deploy.add_argument(
        "--package", type=model_version, default="latest",
        help="'latest' Approved (default), a version number, or a model package ARN",
    )  # fmt: skip
    deploy.add_argument(
        "--promote", action="store_true",
        help="prod: deploy what staging serves, if Approved and healthy there; recorded on it",
    )  # fmt: skip
    deploy.add_argument(
        "--instance-type",
        help="override the stage's instance type (one the stage allows)",
    )  # fmt: skip
    deploy.add_argument("--region", type=region, help="AWS region (default: boto3's)")
    deploy.add_argument(
        "--dry-run", action="store_true", help="resolve and check, print the cdk command only"
    )
    local = deploy.add_argument_group("local mode (the embedded AWS and the local hosting)")
    local.add_argument(
        "--local", action="store_true",
        help="deploy to the local endpoint, serve it, and deploy each further local approval",
    )  # fmt: skip
    local.add_argument("--workdir", type=output_directory, default=DEFAULT_LOCAL_WORKDIR)
    local.add_argument("--workers", type=int_within(1, 64), default=1)
    local.add_argument(
        "--serve-seconds", type=int_at_least(0), default=0,
        help="stop after this long (default 0: until Ctrl-C)",
    )  # fmt: skip
    local.add_argument(
        "--fault-percent", type=percent, default=0.0,
        help="drill: new fleets answer this share of requests with a 500 (their alarm fires)",
    )  # fmt: skip
    deploy.set_defaults(handler=cmd_deploy)
