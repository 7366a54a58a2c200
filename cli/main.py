"""The ``freight`` command line: the parser of every command group, and the exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import data, demo, deploy, models, pipeline, serving
from cli.errors import UsageError

# In the order ``freight --help`` lists them.
COMMAND_GROUPS = (data, demo, serving, pipeline, models, deploy)
USAGE_EXIT_CODE = 2
SERVICE_EXIT_CODE = 1


def build_parser() -> argparse.ArgumentParser:
    """The ``freight`` argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="freight", description="Freight pricing MLOps: data, pipeline, models, serving."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
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
        return USAGE_EXIT_CODE
    except (OperationError, ClientError, BotoCoreError) as error:
        # The service refused or could not be reached: name the call and the reason.
        print(f"error: {error}", file=sys.stderr)
        return SERVICE_EXIT_CODE
    return code


if __name__ == "__main__":
    sys.exit(main())
