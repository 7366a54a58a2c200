"""Lane-statistics entry point: fit the lane statistics on a whole window's training split.

Runs once, before Prepare, so that Prepare can shard the window across instances and still
compute the same features on every instance (SageMaker processing contract: reads
``<base>/input/loads``, writes ``<base>/output/statistics``). Run as
``python -m processing.lane_statistics`` with the same window arguments as Prepare.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from processing.arguments import date, positive_float
from processing.features import fit_lane_statistics
from processing.lake import read_partitions
from processing.prepare import PrepareConfig, split_window, write_artifacts
from processing.sagemaker_paths import PROCESSING_BASE


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the lane-statistics step."""
    parser = argparse.ArgumentParser(
        prog="python -m processing.lane_statistics", description=__doc__
    )
    parser.add_argument("--base-dir", type=Path, default=PROCESSING_BASE)
    parser.add_argument("--input", type=Path, help="daily partitions (default <base>/input/loads)")
    parser.add_argument("--output", type=Path, help="default <base>/output/statistics")
    parser.add_argument("--start-date", type=date, help="first day of the window (inclusive)")
    parser.add_argument("--end-date", type=date, help="last day of the window (inclusive)")
    parser.add_argument("--validation-days", type=positive_float, default=14.0)
    parser.add_argument("--test-days", type=positive_float, default=14.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Fit and write the statistics; return 2 with a clear message on bad input."""
    args = build_parser().parse_args(argv)
    source = args.input or args.base_dir / "input" / "loads"
    output = args.output or args.base_dir / "output" / "statistics"
    if args.start_date and args.end_date and args.start_date > args.end_date:
        print(f"error: --start-date {args.start_date} is after --end-date {args.end_date}",
              file=sys.stderr)  # fmt: skip
        return 2
    with ThreadPoolExecutor(max_workers=2) as executor:
        try:
            loads = read_partitions(source, args.start_date, args.end_date)
            config = PrepareConfig(args.validation_days, args.test_days)
            _, splits, _ = split_window(loads, config, args.end_date, executor)
            statistics = fit_lane_statistics(splits["train"], executor)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    write_artifacts(statistics, output)
    summary = {
        "step": "lane_statistics",
        "output": str(output),
        "training_loads": splits["train"].num_rows,
        "regions": len(statistics.regions),
        "lanes_with_statistics": int((statistics.lane_load_count > 0).sum()),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
