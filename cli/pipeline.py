"""``freight pipeline``: the definition, deployed and started in SageMaker, or run here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.arguments import (
    Commands,
    add_market,
    add_pipeline_config,
    add_stage,
    market_config,
    output_file,
    pipeline_config_from,
    sagemaker_client,
)
from processing.arguments import int_at_least, output_directory

DEFAULT_RUN_LOCAL_WORKDIR = Path("work/pipeline")
DEFAULT_WAIT_TIMEOUT_SECONDS = 4 * 3600
DEFAULT_POLL_SECONDS = 30


def checked_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The ``--param NAME=VALUE`` overrides, each checked against its declared parameter."""
    from ops.pipelines import parse_parameters
    from pipelines.parameters import check_overrides

    return check_overrides(parse_parameters(args.param or []))


def cmd_pipeline_definition(args: argparse.Namespace) -> int:
    """Print or write the pipeline definition JSON, built offline."""
    config = pipeline_config_from(args)  # checked before the SDK is even imported
    from pipelines.definition import definition_json

    text = definition_json(config)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        print(f"wrote {args.out} ({len(text)} bytes)", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_pipeline_upsert(args: argparse.Namespace) -> int:
    """Create or update the pipeline in SageMaker."""
    config = pipeline_config_from(args)  # checked before the SDK is even imported
    from ops.pipelines import upsert_pipeline
    from pipelines.definition import definition_json

    arn = upsert_pipeline(
        sagemaker_client(args), config.pipeline_name, definition_json(config), config.role_arn
    )
    print(arn)
    return 0


def cmd_pipeline_start(args: argparse.Namespace) -> int:
    """Start an execution with NAME=VALUE parameter overrides (optionally wait for it)."""
    from ops.pipelines import start_pipeline, wait_for_execution
    from stages.names import ResourceNames

    parameters = checked_overrides(args)
    client = sagemaker_client(args)
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

    client = sagemaker_client(args)
    arn = args.execution_arn or latest_execution(client, ResourceNames(stage=args.stage).pipeline)
    if args.wait:
        status = wait_for_execution(client, arn, args.timeout, poll_seconds=args.poll)
    else:
        status = execution_status(client, arn)
    print(json.dumps(status.__dict__))
    return 0 if status.status != "Failed" else 1


def cmd_pipeline_run_local(args: argparse.Namespace) -> int:
    """Execute the pipeline definition on this machine against the embedded AWS."""
    from local.embedded_aws import embedded_aws
    from local.market_data import LOCAL_NAMES, ensure_local_data, market_up_to_yesterday
    from local.pipeline_run import format_run, run_local_pipeline

    parameters = checked_overrides(args)
    with embedded_aws(LOCAL_NAMES) as aws:
        # Without dates the definition reads the days up to yesterday: a market landed here
        # ends there.
        ensure_local_data(aws, market_up_to_yesterday(market_config(args)))
        result = run_local_pipeline(aws, args.workdir.resolve(), parameters)
    print(format_run(result))
    return 0 if result.status == "Succeeded" else 1


def register(commands: Commands) -> None:
    """Add ``freight pipeline definition|run-local|upsert|start|status|wait``."""
    pipeline = commands.add_parser("pipeline", help="the SageMaker pipeline").add_subparsers(
        dest="pipeline_command", required=True, metavar="SUBCOMMAND"
    )
    definition = pipeline.add_parser("definition", help="print or write the definition JSON")
    add_pipeline_config(definition)
    definition.add_argument("--out", type=output_file, help="write to this file instead of stdout")
    definition.set_defaults(handler=cmd_pipeline_definition)
    run_local = pipeline.add_parser(
        "run-local", help="execute the definition here, against the embedded AWS"
    )
    run_local.add_argument("--workdir", type=output_directory, default=DEFAULT_RUN_LOCAL_WORKDIR)
    run_local.add_argument("--param", action="append", metavar="NAME=VALUE")
    add_market(run_local, days_help="market to generate when the embedded lake is empty")
    run_local.set_defaults(handler=cmd_pipeline_run_local)
    upsert = pipeline.add_parser("upsert", help="create or update the pipeline")
    add_pipeline_config(upsert)
    upsert.set_defaults(handler=cmd_pipeline_upsert)
    for name, handler, text in (
        ("start", cmd_pipeline_start, "start an execution"),
        ("status", cmd_pipeline_status, "status of an execution (default: the latest)"),
        ("wait", cmd_pipeline_status, "wait for an execution (default: the latest) to end"),
    ):
        command = pipeline.add_parser(name, help=text)
        add_stage(command)
        if name == "start":
            command.add_argument("--param", action="append", metavar="NAME=VALUE")
        else:
            command.add_argument("--execution-arn")
        if name == "wait":
            command.set_defaults(wait=True)
        else:
            command.add_argument("--wait", action="store_true", help="wait until it ends")
        command.add_argument(
            "--timeout", type=int_at_least(1), default=DEFAULT_WAIT_TIMEOUT_SECONDS
        )
        command.add_argument("--poll", type=int_at_least(1), default=DEFAULT_POLL_SECONDS)
        command.set_defaults(handler=handler)
