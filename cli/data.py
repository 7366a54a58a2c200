"""``freight data``: synthetic market data into a directory or the S3 lake."""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

from cli.arguments import Commands
from cli.errors import UsageError
from local.market_data import DEMO_SEED
from market.generator import MarketConfig, generate
from processing.arguments import date, float_within, int_at_least, output_directory
from processing.lake import GlueTarget, split_s3_uri, write_partitions


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


def lake_destination(value: str) -> str:
    """An ``s3://bucket/prefix`` URI, or a local directory that is not in a file's way."""
    if value.startswith("s3://"):
        try:
            split_s3_uri(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{error} (s3://bucket/prefix)") from None
        return value
    output_directory(value)
    return value


def register(commands: Commands) -> None:
    """Add ``freight data generate``."""
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
        "--out",
        required=True,
        type=lake_destination,
        help="directory or s3://bucket/prefix for dt=YYYY-MM-DD files",
    )
    generate_parser.add_argument("--glue-database", help="register partitions in this database")
    generate_parser.add_argument("--glue-table", help="... as partitions of this table")
    generate_parser.set_defaults(handler=cmd_data_generate)
