"""Arguments and helpers that several command groups share."""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from cli.errors import UsageError
from local.market_data import DEMO_DAYS, DEMO_ROWS_PER_DAY, DEMO_SEED
from market.generator import MarketConfig
from processing.arguments import int_at_least, output_directory_problem

if TYPE_CHECKING:
    from pipelines.config import PipelineConfig

# What ``add_subparsers()`` returns; each command group registers its parsers on it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
# The flags of add_pipeline_config that set a PipelineConfig field, by field.
PIPELINE_CONFIG_FLAGS = {
    "region": "--region",
    "role_arn": "--role-arn",
    "image_uri": "--image-uri",
    "code_version": "--code-version",
}
# The smallest market the pipeline's splits and lane statistics work on.
MIN_MARKET_DAYS = 45
MIN_MARKET_ROWS_PER_DAY = 100


def progress(message: str) -> None:
    """A progress line on stderr, so that stdout keeps only the results."""
    print(message, file=sys.stderr, flush=True)


def add_stage(parser: argparse.ArgumentParser) -> None:
    """``--stage`` and ``--region``: which deployment a command talks to."""
    from stages.names import STAGES

    parser.add_argument("--stage", choices=STAGES, default="dev")
    parser.add_argument(
        "--region", type=region, help="AWS region (default: the boto3 configuration)"
    )


def region(value: str) -> str:
    """An AWS region name in the form boto3 accepts (checked before any client exists)."""
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    try:
        validate_region_name(value)
    except InvalidRegionError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an AWS region name") from None
    return value


def account_id(value: str) -> str:
    """A 12-digit AWS account id, as the stage's resource names require it."""
    from stages.names import ResourceNames

    try:
        ResourceNames(stage="dev", account=value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def output_file(value: str) -> Path:
    """A file to write: not a directory, in a directory that exists or can be created."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a directory, not a file")
    problem = output_directory_problem(path.parent)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


@functools.cache
def _sagemaker_shape_metadata(shape: str) -> dict[str, Any]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return dict(model.shape_for(shape).metadata)


def sagemaker_string(shape: str) -> Callable[[str], str]:
    """A string the SageMaker API accepts as ``shape`` (its length and pattern, from botocore)."""

    def parse(value: str) -> str:
        metadata = _sagemaker_shape_metadata(shape)
        low, high = metadata.get("min", 0), metadata.get("max")
        if len(value) < low or (high is not None and len(value) > high):
            limits = f"{low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(
                f"{value!r} has {len(value)} characters; {shape} takes {limits}"
            )
        pattern = metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise argparse.ArgumentTypeError(f"{value!r} is not a {shape} (pattern {pattern})")
        return value

    return parse


def model_version(value: str) -> str:
    """A model package: a version number (1 or more), ``latest``, or an ARN."""
    if value == "latest" or (value.isascii() and value.isdigit() and int(value) >= 1):
        return value
    if value.startswith("arn:"):
        return sagemaker_string("ModelPackageArn")(value)
    raise argparse.ArgumentTypeError(
        f"{value!r} is neither a version number, 'latest' nor a model package ARN"
    )


def add_pipeline_config(parser: argparse.ArgumentParser) -> None:
    """The stage and what else differs between deployments of the pipeline."""
    add_stage(parser)
    parser.add_argument(
        "--account",
        type=account_id,
        help="12-digit account id in bucket names and the default role ARN",
    )
    parser.add_argument("--role-arn", help="SageMaker execution role (full ARN)")
    parser.add_argument("--image-uri", help="the project's image in ECR")
    parser.add_argument("--code-version", help="default: the git commit")


def pipeline_config_from(args: argparse.Namespace) -> PipelineConfig:
    """The PipelineConfig of ``add_pipeline_config``'s arguments."""
    from local.pipeline_run import git_code_version
    from pipelines.config import DEFAULT_IMAGE_URI, PipelineConfig, pipeline_config
    from stages.names import DEFAULT_REGION, ResourceNames

    # Each given value alone through PipelineConfig's own checks, so that the error names the
    # flag; the account was checked by its argument type.
    for field, flag in PIPELINE_CONFIG_FLAGS.items():
        value = getattr(args, field)
        if value:
            try:
                PipelineConfig(**{field: value})
            except ValueError as error:
                raise UsageError(f"{flag}: {error}") from None
    return pipeline_config(
        ResourceNames(stage=args.stage, account=args.account),
        region=args.region or DEFAULT_REGION,
        account=args.account,
        role_arn=args.role_arn or None,
        image_uri=args.image_uri or DEFAULT_IMAGE_URI,
        code_version=args.code_version or git_code_version(),
    )


def add_market(parser: argparse.ArgumentParser, days_help: str | None = None) -> None:
    """``--days``, ``--rows-per-day`` and ``--seed`` of the demo's market."""
    parser.add_argument(
        "--days", type=int_at_least(MIN_MARKET_DAYS), default=DEMO_DAYS, help=days_help
    )
    parser.add_argument(
        "--rows-per-day", type=int_at_least(MIN_MARKET_ROWS_PER_DAY), default=DEMO_ROWS_PER_DAY
    )
    parser.add_argument("--seed", type=int_at_least(0), default=DEMO_SEED)


def market_config(args: argparse.Namespace) -> MarketConfig:
    """The market of ``add_market``'s arguments."""
    return MarketConfig(days=args.days, rows_per_day=args.rows_per_day, seed=args.seed)


def sagemaker_client(args: argparse.Namespace) -> Any:
    """A SageMaker client in ``--region`` (default: the boto3 configuration)."""
    import boto3

    # AWS_ENDPOINT_URL, when set, points boto3 at the embedded AWS of local mode.
    return boto3.Session(region_name=args.region).client("sagemaker")


def events_client(args: argparse.Namespace) -> Any:
    """An EventBridge client in ``--region``, like :func:`sagemaker_client`."""
    import boto3

    return boto3.Session(region_name=args.region).client("events")
