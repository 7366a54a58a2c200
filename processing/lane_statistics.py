"""Lane-statistics entry point: resolve the data window, fit lane statistics on its training split.

Runs once, before Prepare, so that Prepare can shard the window across instances and still
compute the same features on every instance (SageMaker processing contract: reads
``<base>/input/loads``, writes ``<base>/output/statistics``: the statistics, the feature spec
and ``window.json``, the resolved window that Prepare and the registry read). Run as
``python -m processing.lane_statistics`` with the same window arguments as Prepare, plus
``--window-days`` and ``--execution-start`` for a window relative to the execution.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from processing.arguments import first_output_problem, timestamp, window_days
from processing.contracts import LANE_STATISTICS_OUTPUT, LOADS_INPUT, WINDOW_FILE
from processing.features import fit_lane_statistics
from processing.lake import read_partitions
from processing.prepare import (
    PrepareConfig,
    add_window_arguments,
    split_window,
    window_error,
    write_artifacts,
)
from processing.window import MAX_WINDOW_DAYS, resolve_window

DEFAULT_WINDOW_DAYS = 365


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the lane-statistics step."""
    parser = argparse.ArgumentParser(
        prog="python -m processing.lane_statistics", description=__doc__
    )
    add_window_arguments(parser)
    parser.add_argument(
        "--window-days", type=window_days, default=DEFAULT_WINDOW_DAYS,
        help=f"days of a relative window (at most {MAX_WINDOW_DAYS}; default "
        f"{DEFAULT_WINDOW_DAYS})",
    )  # fmt: skip
    parser.add_argument(
        "--execution-start", type=timestamp,
        help="when the pipeline execution started (ISO 8601): a relative window ends the day "
        "before",
    )  # fmt: skip
    parser.add_argument(
        "--output", type=Path, help=f"default <base>/output/{LANE_STATISTICS_OUTPUT}"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Resolve the window, fit and write the statistics; return 2 naming the bad input."""
    args = build_parser().parse_args(argv)
    source = args.input or args.base_dir / "input" / LOADS_INPUT
    output = args.output or args.base_dir / "output" / LANE_STATISTICS_OUTPUT
    problem = window_error(args) or first_output_problem({"--output": output})
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=2) as executor:
        try:
            window = resolve_window(
                args.start_date, args.end_date, args.window_days, args.execution_start
            )
            loads = read_partitions(source, window.start, window.end)
            config = PrepareConfig(args.validation_days, args.test_days)
            _, splits, _ = split_window(loads, config, window.end, executor)
            statistics = fit_lane_statistics(splits["train"], executor)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    write_artifacts(statistics, output)
    window.write(output / WINDOW_FILE)
    summary = {
        "step": "lane_statistics",
        "output": str(output),
        "window": window.to_json(),
        "training_loads": splits["train"].num_rows,
        "regions": len(statistics.regions),
        "lanes_with_statistics": int((statistics.lane_load_count > 0).sum()),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
