"""``freight serve`` and ``freight quote``: the production server, quotes through an endpoint."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from cli.arguments import Commands, region, sagemaker_string
from cli.errors import UsageError
from inference.busy_poll import DEFAULT_WINDOW_US as DEFAULT_BUSY_POLL_US
from inference.busy_poll import MAX_WINDOW_US as MAX_BUSY_POLL_US
from inference.settings import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_HEADER_TIMEOUT_SECONDS,
    DEFAULT_KEEP_ALIVE_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
)
from processing.arguments import existing_path, int_at_least, int_within, read_json_text
from processing.contracts import MAX_PAYLOAD_BYTES

MAX_PORT = 65_535
# Each worker is a process with its own copy of the model; more than this is a typo.
MAX_WORKERS = 256


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a model directory with the production server (SageMaker's hosting contract)."""
    from inference.server import run
    from inference.settings import ServerSettings, SettingsError

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
            timeout_seconds=args.keep_alive_seconds,
            max_header_bytes=args.max_header_bytes,
            header_timeout_seconds=args.header_timeout_seconds,
            body_timeout_seconds=args.body_timeout_seconds,
            max_connections=args.max_connections,
            drain_seconds=args.drain_seconds,
        )
        run(settings)
    except SettingsError as error:
        raise UsageError(str(error)) from None
    return 0


def read_loads(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The loads of ``--load`` or ``--file``: one object, a list, or ``{"instances": [...]}``."""
    if args.load is not None:
        text, source = args.load, "--load"
    elif args.file == "-":
        text, source = sys.stdin.read(), "stdin"
    elif args.file is not None:
        text, source = read_load_file(Path(args.file)), f"--file {args.file}"
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


def read_load_file(path: Path) -> str:
    """The text of ``--file``; any reason it cannot be read is a usage error naming it."""
    try:
        return read_json_text(path, f"--file: {path}")
    except ValueError as error:
        raise UsageError(str(error)) from None


def cmd_quote(args: argparse.Namespace) -> int:
    """Price loads through an endpoint (SageMaker, or the local server with --endpoint-url)."""
    import boto3

    from inference.client import PriceQuoteClient, QuoteRejectedError, QuoteUnavailableError

    loads = read_loads(args)
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


def endpoint_url(value: str) -> str:
    """An http(s) URL with a host, as boto3 takes for ``endpoint_url``."""
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s)://host[:port] URL")
    return value


def register(commands: Commands) -> None:
    """Add ``freight serve`` and ``freight quote``."""
    serve = commands.add_parser("serve", help="serve a model directory (SageMaker contract)")
    serve.add_argument("--model-dir", type=existing_path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int_within(1, MAX_PORT), default=8080)
    serve.add_argument("--workers", type=int_within(1, MAX_WORKERS), default=os.cpu_count() or 1)
    serve.add_argument("--max-body-bytes", type=int_at_least(1), default=MAX_PAYLOAD_BYTES)
    serve.add_argument(
        "--endpoint-name",
        type=sagemaker_string("EndpointName"),
        help="answer only this name on /endpoints/NAME/...",
    )
    serve.add_argument("--access-log", action="store_true", help="one log line per request")
    serve.add_argument(
        "--busy-poll-us", type=int_within(0, MAX_BUSY_POLL_US), default=DEFAULT_BUSY_POLL_US,
        metavar="US",
        help="after a request, poll for the next one this long instead of idling the CPU "
        f"(0 = off; default {DEFAULT_BUSY_POLL_US})",
    )  # fmt: skip
    # Limits and timeouts: ServerSettings checks their ranges and names the setting.
    limits = serve.add_argument_group("limits and timeouts (per worker)")
    for flag, kind, default, text in (
        ("--max-header-bytes", int, DEFAULT_MAX_HEADER_BYTES, "headers; 431 beyond"),
        ("--header-timeout-seconds", float, DEFAULT_HEADER_TIMEOUT_SECONDS, "408 beyond"),
        ("--body-timeout-seconds", float, DEFAULT_BODY_TIMEOUT_SECONDS, "408 beyond"),
        ("--keep-alive-seconds", int, DEFAULT_KEEP_ALIVE_SECONDS, "idle keep-alive"),
        ("--max-connections", int, DEFAULT_MAX_CONNECTIONS, "503 beyond"),
        ("--drain-seconds", float, DEFAULT_DRAIN_SECONDS, "after SIGTERM"),
    ):  # fmt: skip
        limits.add_argument(flag, type=kind, default=default, help=f"{text} (default {default:g})")
    serve.set_defaults(handler=cmd_serve)

    quote = commands.add_parser("quote", help="price loads through an endpoint")
    quote.add_argument("--endpoint-name", type=sagemaker_string("EndpointName"), required=True)
    quote.add_argument(
        "--endpoint-url", type=endpoint_url, help="e.g. http://127.0.0.1:8080 for the local server"
    )
    quote.add_argument(
        "--region", type=region, help="AWS region (default: the boto3 configuration)"
    )
    source = quote.add_mutually_exclusive_group()
    source.add_argument("--load", help='a load as JSON (object, list, or {"instances": ...})')
    source.add_argument("--file", help="a JSON file of loads, - for stdin")
    quote.set_defaults(handler=cmd_quote)
