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

from processing.features import fit_lane_statistics
from processing.lake import read_partitions
from processing.prepare import (
    PrepareConfig,
    add_window_arguments,
    split_window,
    window_error,
    write_artifacts,
)


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the lane-statistics step."""
    parser = argparse.ArgumentParser(
        prog="python -m processing.lane_statistics", description=__doc__
    )
    add_window_arguments(parser)
    parser.add_argument("--output", type=Path, help="default <base>/output/statistics")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Fit and write the statistics; return 2 with a clear message on bad input."""
    args = build_parser().parse_args(argv)
    source = args.input or args.base_dir / "input" / "loads"
    output = args.output or args.base_dir / "output" / "statistics"
    problem = window_error(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
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
