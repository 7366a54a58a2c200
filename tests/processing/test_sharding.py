"""Prepare sharded across instances (ShardedByS3Key) gives the features of one instance."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from processing import evaluate, lane_statistics, prepare
from processing.lake import list_partitions, read_parquet_directory
from processing.lineage import LINEAGE_KEYS
from training import train

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


def test_the_model_carries_the_lineage_of_every_instance(
    small_lake: Path, statistics_dir: Path, tmp_path: Path
) -> None:
    # The multi-host path that SageMaker takes: each instance writes its own summary into the
    # shared artifacts output; training merges them into the model's metadata, and Evaluate
    # flattens that into the registry's customer metadata.
    window = ["--start-date", "2026-01-05", *WINDOW, "--code-version", "abc123"]
    reference = tmp_path / "reference"
    assert prepare.main(
        ["--input", str(small_lake), "--output", str(reference), "--statistics",
         str(statistics_dir), *window]
    ) == 0  # fmt: skip
    single = json.loads((reference / "artifacts" / "prepare_summary.json").read_text())
    run = tmp_path / "run"
    for index, shard in enumerate(_shard(small_lake, tmp_path / "shards", 3)):
        base = run / f"instance-{index}"
        (base / "config").mkdir(parents=True)
        (base / "config" / "resourceconfig.json").write_text(
            json.dumps(
                {"current_host": f"algo-{index + 1}", "hosts": ["algo-1", "algo-2", "algo-3"]}
            )
        )
        assert prepare.main(
            ["--base-dir", str(base / "processing"), "--input", str(shard), "--output",
             str(run / "output"), "--statistics", str(statistics_dir), *window]
        ) == 0  # fmt: skip
    artifacts = run / "output" / "artifacts"
    assert sorted(p.name for p in artifacts.glob("prepare_summary*.json")) == [
        "prepare_summary-algo-1.json", "prepare_summary-algo-2.json", "prepare_summary-algo-3.json"
    ]  # fmt: skip
    job = tmp_path / "train-job"
    (job / "input" / "config").mkdir(parents=True)
    (job / "input" / "config" / "hyperparameters.json").write_text('{"num_round": "20"}')
    assert train.main(
        ["--base-dir", str(job), "--train", str(run / "output" / "train"), "--validation",
         str(run / "output" / "validation"), "--artifacts", str(artifacts)]
    ) == 0  # fmt: skip
    data = json.loads((job / "model" / "model_metadata.json").read_text())["data"]
    assert data["window"] == {"start": "2026-01-05", "end": "2026-03-05"}
    assert data["code_version"] == "abc123"
    assert data["prepare_instances"] == 3
    validation = single["validation"]
    assert data["rows"] == {
        "in": validation["rows"], "valid": validation["valid"],
        "quarantined": validation["quarantined"], **single["rows"],
    }  # fmt: skip
    assert validation["quarantined"] > 0
    assert {k: v for k, v in data["quarantine_by_reason"].items() if v} == validation["by_reason"]

    evaluation = tmp_path / "evaluation"
    assert evaluate.main(
        ["--model", str(job / "model"), "--test", str(run / "output" / "test"), "--output",
         str(evaluation), "--report", str(tmp_path / "report")]
    ) == 0  # fmt: skip
    lineage = json.loads((evaluation / "lineage.json").read_text())
    assert list(lineage) == list(LINEAGE_KEYS)
    assert lineage["data_window_start"] == "2026-01-05"
    assert lineage["rows_train"] == str(single["rows"]["train"])
    assert lineage["rows_quarantined"] == str(validation["quarantined"])
    assert lineage["code_version"] == "abc123"
    for reason, count in validation["by_reason"].items():
        assert lineage[f"quarantine_{reason}"] == str(count)
    # The registry's customer metadata: flat strings of its character set, at most 50 keys.
    assert len(lineage) <= 50
    assert all(re.fullmatch(r"[\w .:/=+@-]{1,256}", value) for value in lineage.values())
