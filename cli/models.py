"""``freight models``: the model registry group of a stage, listed, approved or rejected."""

from __future__ import annotations

import argparse
import json

from cli.arguments import (
    Commands,
    add_stage,
    events_client,
    model_version,
    sagemaker_client,
    sagemaker_string,
)

# Subcommand -> the approval status it sets.
APPROVAL_COMMANDS = (("approve", "Approved"), ("reject", "Rejected"))


def cmd_models_list(args: argparse.Namespace) -> int:
    """List the model registry group's versions, newest first."""
    from ops.registry import list_model_packages
    from stages.names import ResourceNames

    group = ResourceNames(stage=args.stage).model_package_group
    for package in list_model_packages(sagemaker_client(args), group):
        print(json.dumps(package.__dict__))
    return 0


def cmd_models_set_status(args: argparse.Namespace) -> int:
    """Approve or reject a model version (a number, ``latest`` or an ARN)."""
    from ops.registry import resolve_package, set_approval
    from stages.names import ResourceNames

    client = sagemaker_client(args)
    group = ResourceNames(stage=args.stage).model_package_group
    arn = resolve_package(client, group, args.version)
    # SageMaker announces the change itself; the embedded AWS of the local stage does not, so
    # the event its deployer waits for is put here.
    events = events_client(args) if args.stage == "local" else None
    set_approval(client, arn, args.status, args.description or "", events=events)
    print(json.dumps({"model_package_arn": arn, "approval_status": args.status}))
    return 0


def register(commands: Commands) -> None:
    """Add ``freight models list|approve|reject``."""
    models = commands.add_parser("models", help="the model registry").add_subparsers(
        dest="models_command", required=True, metavar="SUBCOMMAND"
    )
    listing = models.add_parser("list", help="versions of the model package group")
    add_stage(listing)
    listing.set_defaults(handler=cmd_models_list)
    for name, status in APPROVAL_COMMANDS:
        command = models.add_parser(name, help=f"set a version to {status}")
        add_stage(command)
        command.add_argument(
            "version", type=model_version, help="version number, 'latest', or model package ARN"
        )
        command.add_argument(
            "--description",
            type=sagemaker_string("ApprovalDescription"),
            help="why (stored with the approval)",
        )
        command.set_defaults(handler=cmd_models_set_status, status=status)
