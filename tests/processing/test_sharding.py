"""Prepare sharded across instances (ShardedByS3Key) gives the features of one instance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from processing import lane_statistics, prepare
from processing.lake import list_partitions, read_parquet_directory

WINDOW = ["--end-date", "2026-03-05", "--validation-days", "7", "--test-days", "7"]


def _shard(lake: Path, root: Path, instances: int) -> list[Path]:
    """Give each instance every n-th daily file, as S3 key sharding does."""
    days = list_partitions(lake)
    shards = []
    for index in range(instances):
        shard = root / f"shard-{index}"
        for _, directory in days[index::instances]:
            shutil.copytree(directory, shard / directory.name)
        shards.append(shard)
    return shards


def _run_instance(base: Path, loads: Path, statistics: Path, host: str, hosts: int) -> None:
    config = base / "config"
    config.mkdir(parents=True)
    all_hosts = [f"algo-{i + 1}" for i in range(hosts)]
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": host, "hosts": all_hosts})
    )
    code = prepare.main(
        ["--base-dir", str(base / "processing"), "--input", str(loads), "--output",
         str(base.parent / "output"), "--statistics", str(statistics), *WINDOW]
    )  # fmt: skip
    assert code == 0


def _sorted_rows(table: pa.Table) -> np.ndarray:
    matrix = np.column_stack([column.to_numpy() for column in table.columns])
    return matrix[np.lexsort(matrix.T[::-1])]


@pytest.fixture(scope="module")
def statistics_dir(small_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("statistics")
    assert lane_statistics.main(["--input", str(small_lake), "--output", str(output), *WINDOW]) == 0
    return output


@pytest.mark.parametrize("instances", [1, 3])
def test_one_and_three_instances_give_the_same_features(
    instances: int, small_lake: Path, statistics_dir: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    assert prepare.main(
        ["--input", str(small_lake), "--output", str(reference), "--statistics",
         str(statistics_dir), *WINDOW]
    ) == 0  # fmt: skip
    run = tmp_path / "run"
    for index, shard in enumerate(_shard(small_lake, tmp_path / "shards", instances)):
        _run_instance(run / f"instance-{index}", shard, statistics_dir, f"algo-{index + 1}",
                      instances)  # fmt: skip
    output = run / "output"
    for split in ("train", "validation", "test"):
        parts = sorted(p.name for p in (output / split).glob("*.parquet"))
        # Every instance wrote its own files: part-<host>-<n>.parquet.
        assert len({name.rsplit("-", 1)[0] for name in parts}) == instances
        sharded = read_parquet_directory(output / split)
        single = read_parquet_directory(reference / split)
        if split == "test":  # compare the label and the features
            context = ["load_id", "equipment_type", "origin_country", "destination_country",
                       "posted_at"]  # fmt: skip
            sharded, single = sharded.drop_columns(context), single.drop_columns(context)
        assert sharded.num_rows == single.num_rows
        np.testing.assert_array_equal(_sorted_rows(sharded), _sorted_rows(single))
    assert len(list((output / "baseline").glob("*.csv"))) == instances


def test_statistics_step_matches_prepare_fitting_them_itself(
    small_lake: Path, statistics_dir: Path, tmp_path: Path
) -> None:
    assert prepare.main(["--input", str(small_lake), "--output", str(tmp_path), *WINDOW]) == 0
    assert (tmp_path / "artifacts" / "lane_statistics.npz").read_bytes() == (
        statistics_dir / "lane_statistics.npz"
    ).read_bytes()


def test_without_statistics_a_shard_missing_a_split_is_an_error(
    small_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    early = _shard(small_lake, tmp_path, 30)[0]  # only two early days: no test split
    code = prepare.main(["--input", str(early), "--output", str(tmp_path / "out"), *WINDOW])
    assert code == 2
    assert "would be empty" in capsys.readouterr().err
