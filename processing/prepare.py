"""Prepare entry point: a window of daily loads -> validated, featurised train/validation/test.

SageMaker processing contract: reads ``<base>/input/loads/dt=YYYY-MM-DD/*.parquet`` and writes
``<base>/output/{train,validation,test,baseline,quarantine,artifacts}``; ``<base>`` defaults to
/opt/ml/processing. Run as ``python -m processing.prepare``.

The split is by posting time, so the model is always tested on loads posted after every load
it learned from; lane statistics come from the training split only (no leakage).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from processing.arguments import first_output_problem, int_at_least, optional_date, split_days
from processing.columns import epoch_ms
from processing.contracts import (
    BASELINE_FILE,
    PREPARE_OUTPUTS,
    QUARANTINE_FILE,
    SPLITS,
    prepare_summary_file,
)
from processing.features import (
    FEATURE_NAMES,
    FEATURE_SPEC_FILE,
    LANE_STATISTICS_FILE,
    FeatureBuilder,
    FeatureSpec,
    LaneStatistics,
    fit_lane_statistics,
)
from processing.lake import read_partitions
from processing.sagemaker_paths import PROCESSING_BASE, current_host
from processing.schema import EQUIPMENT_TYPES, FIELD_NAMES, LABEL, MS_PER_DAY, REQUEST_FIELDS
from processing.validation import ValidationResult, validate

# What features, lane statistics and the baseline sample read from a load.
SPLIT_INPUT_COLUMNS = tuple(name for name in FIELD_NAMES if name not in ("load_id", "shipper_id"))
# Columns kept beside the features in the test split, for error analysis by segment.
CONTEXT_COLUMNS = (
    "load_id",
    "posted_at",
    "equipment_type",
    "origin_country",
    "destination_country",
)
CONTEXT_ONLY_COLUMNS = tuple(name for name in CONTEXT_COLUMNS if name not in SPLIT_INPUT_COLUMNS)
WRITE_PARTS = 2
ROWS_PER_PART = 250_000
DICTIONARY_COLUMNS = frozenset(
    {
        "loading_meters",
        "hazmat",
        "posted_hour",
        "pickup_hour",
        "pickup_weekday",
        "pickup_day_of_year",
        *(f"equipment_{name}" for name in EQUIPMENT_TYPES),
        *CONTEXT_COLUMNS,
    }
)
DEFAULT_BASELINE_ROWS = 50_000


@dataclass(frozen=True)
class PrepareConfig:
    """How to cut the window: days at its end for test and validation, baseline sample size."""

    validation_days: float = 14.0
    test_days: float = 14.0
    baseline_rows: int = DEFAULT_BASELINE_ROWS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.validation_days <= 0:
            raise ValueError(f"validation_days must be positive, got {self.validation_days}")
        if self.test_days <= 0:
            raise ValueError(f"test_days must be positive, got {self.test_days}")
        if self.baseline_rows < 1:
            raise ValueError(f"baseline_rows must be at least 1, got {self.baseline_rows}")


@dataclass
class PreparedData:
    """The outputs of prepare, in memory."""

    splits: dict[str, pa.Table]
    statistics: LaneStatistics
    baseline: pa.Table
    validation: ValidationResult
    summary: dict[str, object] = field(default_factory=dict)


def split_masks(
    posted_ms: npt.NDArray[np.int64], config: PrepareConfig, window_end_ms: int
) -> dict[str, npt.NDArray[np.bool_]]:
    """Which loads fall in each split by posting time: train, validation, then test."""
    test_start = window_end_ms - int(config.test_days * MS_PER_DAY)
    validation_start = test_start - int(config.validation_days * MS_PER_DAY)
    return {
        "train": posted_ms < validation_start,
        "validation": (posted_ms >= validation_start) & (posted_ms < test_start),
        "test": posted_ms >= test_start,
    }


def window_end_ms(
    checked: ValidationResult, window_end: dt.date | None = None
) -> tuple[int, npt.NDArray[np.int64]]:
    """Midnight after ``window_end`` (default: after the last valid posting), in epoch ms.

    Also returns the posting times, which the split needs next.
    """
    posted_ms = epoch_ms(checked.table.column("posted_at"))
    if window_end is None:
        last_posted_ms = int(posted_ms[checked.valid_mask].max())
        return (last_posted_ms // MS_PER_DAY + 1) * MS_PER_DAY, posted_ms
    return (window_end - dt.date(1970, 1, 1)).days * MS_PER_DAY + MS_PER_DAY, posted_ms


def split_by_time(
    checked: ValidationResult,
    config: PrepareConfig,
    end_ms: int,
    posted_ms: npt.NDArray[np.int64],
    allow_empty: bool = False,
) -> dict[str, pa.Table]:
    """Split the valid loads by posting time: [..., validation), [validation, test), [test, end).

    Each split keeps the columns features need (and, for test, the context columns): the ids
    and other wide strings are not copied for the big training split.
    """
    masks = split_masks(posted_ms, config, end_ms)
    splits = {}
    for name, mask in masks.items():
        columns = [*SPLIT_INPUT_COLUMNS, *(CONTEXT_ONLY_COLUMNS if name == "test" else ())]
        splits[name] = checked.table.select(columns).filter(pa.array(mask & checked.valid_mask))
    empty = [name for name, part in splits.items() if part.num_rows == 0]
    # A shard of a window may lack a split; a whole window may not.
    if empty and not (allow_empty and len(empty) < len(splits)):
        raise ValueError(
            f"split(s) {', '.join(empty)} would be empty: the window has "
            f"{checked.valid_count} valid loads; shorten --validation-days/--test-days "
            f"({config.validation_days:g}/{config.test_days:g}) or widen the window"
        )
    return splits


def feature_table(
    builder: FeatureBuilder,
    loads: pa.Table,
    context: Sequence[str] = (),
    executor: ThreadPoolExecutor | None = None,
) -> pa.Table:
    """Label first, then the features (float32), then optional context columns."""
    matrix = builder.from_table(loads, executor)
    arrays = [loads.column(LABEL)] + [pa.array(matrix[:, j]) for j in range(matrix.shape[1])]
    names = [LABEL, *FEATURE_NAMES]
    for name in context:
        column = loads.column(name)
        arrays.append(column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column)
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def baseline_sample(loads: pa.Table, rows: int, seed: int) -> pa.Table:
    """A random sample of training loads in the request shape, for data-quality baselining.

    The endpoint receives load requests, so Model Monitor compares captured requests with this
    sample; the label is left out.
    """
    chosen = np.sort(
        np.random.default_rng(seed).choice(
            loads.num_rows, size=min(rows, loads.num_rows), replace=False
        )
    )
    sample = loads.select(list(REQUEST_FIELDS)).take(pa.array(chosen))
    columns = [
        column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column
        for column in sample.columns
    ]
    return pa.Table.from_arrays(columns, names=sample.column_names)


def split_window(
    loads: pa.Table,
    config: PrepareConfig,
    window_end: dt.date | None = None,
    executor: ThreadPoolExecutor | None = None,
    allow_empty_splits: bool = False,
) -> tuple[ValidationResult, dict[str, pa.Table], int]:
    """Validate a window of loads and split the valid ones by posting time."""
    checked = validate(loads, executor)
    if checked.valid_count == 0:
        raise ValueError(f"no valid loads among {checked.total} rows: {checked.summary()}")
    end_ms, posted_ms = window_end_ms(checked, window_end)
    splits = split_by_time(checked, config, end_ms, posted_ms, allow_empty_splits)
    return checked, splits, end_ms


def prepare(
    loads: pa.Table,
    config: PrepareConfig,
    window_end: dt.date | None = None,
    executor: ThreadPoolExecutor | None = None,
    statistics: LaneStatistics | None = None,
) -> PreparedData:
    """Validate, split by time, fit lane statistics on train, and featurise every split.

    With ``statistics`` (fitted beforehand on the whole training window by the
    lane-statistics step), ``loads`` may be one shard of the window: the features then do not
    depend on how the window was sharded, and a shard may lack some splits.
    """
    started = time.perf_counter()
    checked, raw_splits, end_ms = split_window(
        loads, config, window_end, executor, allow_empty_splits=statistics is not None
    )
    if statistics is None:
        statistics = fit_lane_statistics(raw_splits["train"], executor)
    builder = FeatureBuilder(statistics)
    splits = {
        name: feature_table(
            builder, part, CONTEXT_COLUMNS if name == "test" else (), executor=executor
        )
        for name, part in raw_splits.items()
    }
    summary: dict[str, object] = {
        "validation": checked.summary(),
        "window_end": dt.datetime.fromtimestamp(end_ms / 1000, dt.UTC).isoformat(),
        "rows": {name: part.num_rows for name, part in splits.items()},
        "lanes_with_statistics": int((statistics.lane_load_count > 0).sum()),
        "regions": len(statistics.regions),
        "features": len(FEATURE_NAMES),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return PreparedData(
        splits=splits,
        statistics=statistics,
        baseline=baseline_sample(raw_splits["train"], config.baseline_rows, config.seed),
        validation=checked,
        summary=summary,
    )


def write_prepared(
    prepared: PreparedData,
    output: Path,
    executor: ThreadPoolExecutor | None = None,
    host: str | None = None,
) -> None:
    """Write splits, baseline, quarantine and artifacts under ``output``.

    With ``host`` (an instance of a multi-instance job), every file name carries it, so that
    the instances' outputs can share one S3 prefix.
    """
    tag = f"{host}-" if host else ""
    for name in PREPARE_OUTPUTS:
        (output / name).mkdir(parents=True, exist_ok=True)

    # Big splits are written as several files in parallel (Parquet encoding is single-threaded
    # per file); readers take every part-*.parquet of a split directory.
    jobs: list[tuple[pa.Table, Path]] = []
    for name in SPLITS:
        table = prepared.splits[name]
        parts = max(1, min(WRITE_PARTS, table.num_rows // ROWS_PER_PART))
        size = -(-table.num_rows // parts)
        jobs.extend(
            (table.slice(part * size, size), output / name / f"part-{tag}{part:05d}.parquet")
            for part in range(parts)
        )

    def write_part(job: tuple[pa.Table, Path]) -> None:
        table, path = job
        # Dictionary pages only pay for columns with few distinct values; LZ4 is the fastest
        # codec that still shrinks them.
        dictionary = [name for name in table.column_names if name in DICTIONARY_COLUMNS]
        pq.write_table(table, path, compression="lz4", use_dictionary=dictionary)

    if executor is not None:
        list(executor.map(write_part, jobs))
    else:
        for job in jobs:
            write_part(job)
    pacsv.write_csv(prepared.baseline, output / "baseline" / f"{tag}{BASELINE_FILE}")
    quarantine_path = output / "quarantine" / f"{tag}{QUARANTINE_FILE}"
    pq.write_table(prepared.validation.quarantine, quarantine_path)
    # The statistics and the spec are the same on every instance; the summary is not.
    write_artifacts(prepared.statistics, output / "artifacts")
    summary_path = output / "artifacts" / prepare_summary_file(host)
    summary_path.write_text(json.dumps(prepared.summary, indent=2) + "\n")


def write_artifacts(statistics: LaneStatistics, directory: Path) -> None:
    """Write the lane statistics and the feature spec that training and serving need."""
    directory.mkdir(parents=True, exist_ok=True)
    statistics.save(directory / LANE_STATISTICS_FILE)
    FeatureSpec().save(directory / FEATURE_SPEC_FILE)


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """The window options that Prepare and the lane-statistics step share."""
    parser.add_argument("--base-dir", type=Path, default=PROCESSING_BASE)
    parser.add_argument("--input", type=Path, help="daily partitions (default <base>/input/loads)")
    parser.add_argument(
        "--start-date", type=optional_date, help="first day of the window (inclusive)"
    )
    parser.add_argument("--end-date", type=optional_date, help="last day of the window (inclusive)")
    parser.add_argument("--validation-days", type=split_days, default=14.0)
    parser.add_argument("--test-days", type=split_days, default=14.0)


def window_error(args: argparse.Namespace) -> str | None:
    """Why the window options cannot work together, if they cannot."""
    if args.start_date and args.end_date and args.start_date > args.end_date:
        return f"--start-date {args.start_date} is after --end-date {args.end_date}"
    return None


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of the prepare step."""
    parser = argparse.ArgumentParser(prog="python -m processing.prepare", description=__doc__)
    add_window_arguments(parser)
    parser.add_argument("--output", type=Path, help="output root (default <base>/output)")
    parser.add_argument("--baseline-rows", type=int_at_least(1), default=DEFAULT_BASELINE_ROWS)
    parser.add_argument(
        "--statistics",
        type=Path,
        help="lane statistics fitted on the whole window (processing.lane_statistics); "
        "needed when the window is sharded across instances",
    )
    parser.add_argument(
        "--code-version", default="unknown", help="the commit of the code (model lineage)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run prepare; print a JSON summary; return 0, or 2 on bad input with a clear message."""
    args = build_parser().parse_args(argv)
    source = args.input or args.base_dir / "input" / "loads"
    output = args.output or args.base_dir / "output"
    problem = window_error(args) or first_output_problem({"--output": output})
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=2) as executor:
        try:
            statistics = None
            if args.statistics is not None:
                statistics = LaneStatistics.load(args.statistics / LANE_STATISTICS_FILE)
            loads = read_partitions(source, args.start_date, args.end_date)
            config = PrepareConfig(args.validation_days, args.test_days, args.baseline_rows)
            prepared = prepare(loads, config, args.end_date, executor, statistics)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        host = current_host(args.base_dir.parent)
        # The lineage that training copies into the model's metadata.
        prepared.summary.update(
            window={
                "start": args.start_date.isoformat() if args.start_date else None,
                "end": args.end_date.isoformat() if args.end_date else None,
            },
            code_version=args.code_version,
            host=host,
        )
        write_prepared(prepared, output, executor, host)
    print(json.dumps({"step": "prepare", "output": str(output), **prepared.summary}))
    checked = prepared.validation
    if checked.quarantine.num_rows:
        counts = ", ".join(
            f"{reason}={count}" for reason, count in checked.reason_counts.items() if count
        )
        print(
            f"quarantined {checked.quarantine.num_rows} of {checked.total} rows: {counts}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
