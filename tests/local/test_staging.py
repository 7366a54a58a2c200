"""Staging step inputs and outputs through the embedded S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from local.embedded_aws import EmbeddedAws
from local.expressions import PipelineRunError
from local.staging import S3Object, S3Staging, container_path, s3_location, shard

BUCKET = "staging-test"
DAYS = [f"raw/loads/dt=2026-01-{day:02d}/part-00000.parquet" for day in range(1, 12)]


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = EmbeddedAws(endpoint_url=None).client("s3")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        for key in DAYS:
            client.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
        yield client


def count_calls(client: Any, operation: str) -> list[str]:
    """Keys of every ``operation`` call the client sends from now on."""
    calls: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["Key"])

    client.meta.events.register(f"provide-client-params.s3.{operation}", record)
    return calls


@pytest.mark.parametrize("count", [1, 2, 3, 4, 11, 12])
def test_shards_take_every_object_exactly_once(count: int) -> None:
    objects = [S3Object(key, f'"{index}"') for index, key in enumerate(reversed(DAYS))]
    shards = [shard(objects, index, count) for index in range(count)]
    taken = [item.key for part in shards for item in part]
    assert sorted(taken) == sorted(DAYS)
    assert len(taken) == len(set(taken))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_a_shard_index_outside_the_instances_is_rejected() -> None:
    with pytest.raises(PipelineRunError, match="instance 3 is not one of 3"):
        shard([], 3, 3)


def test_sharded_downloads_cover_the_prefix_once_across_instances(s3: Any, tmp_path: Path) -> None:
    with S3Staging(s3, tmp_path / "cache") as staging:
        for index in range(3):
            staging.download(f"s3://{BUCKET}/raw/loads", tmp_path / f"algo-{index}", (index, 3))
    files = sorted(p for p in tmp_path.glob("algo-*/**/*.parquet"))
    relative = sorted(p.relative_to(p.parents[1]).as_posix() for p in files)
    assert relative == sorted(key.removeprefix("raw/loads/") for key in DAYS)
    for path in files:  # the key below the prefix is kept, the body is the object's
        assert path.read_bytes().decode().endswith(path.relative_to(path.parents[1]).as_posix())


def test_the_etag_cache_avoids_a_second_get_object(s3: Any, tmp_path: Path) -> None:
    gets = count_calls(s3, "GetObject")
    with S3Staging(s3, tmp_path / "cache") as staging:
        staging.download(f"s3://{BUCKET}/raw/loads", tmp_path / "first")
        assert sorted(gets) == sorted(DAYS)
        staging.download(f"s3://{BUCKET}/raw/loads", tmp_path / "second")
        assert len(gets) == len(DAYS)
        # A changed object has a new ETag: it is fetched again, and only it.
        s3.put_object(Bucket=BUCKET, Key=DAYS[0], Body=b"changed")
        staging.download(f"s3://{BUCKET}/raw/loads", tmp_path / "third")
    assert gets[len(DAYS) :] == [DAYS[0]]
    assert (tmp_path / "third" / DAYS[0].removeprefix("raw/loads/")).read_bytes() == b"changed"
    assert (tmp_path / "second" / DAYS[0].removeprefix("raw/loads/")).read_bytes() == (
        DAYS[0].encode()
    )


def test_uploads_keep_relative_paths_and_fill_the_cache(s3: Any, tmp_path: Path) -> None:
    source = tmp_path / "output"
    (source / "nested").mkdir(parents=True)
    (source / "a.json").write_text("{}")
    (source / "nested" / "b.csv").write_text("x,y")
    gets = count_calls(s3, "GetObject")
    with S3Staging(s3, tmp_path / "cache") as staging:
        staging.upload(source, f"s3://{BUCKET}/runs/1/")
        staging.upload_file(source / "a.json", f"s3://{BUCKET}/runs/1/model/a.json")
        listed = [item.key for item in staging.objects(f"s3://{BUCKET}/runs/1")]
        staging.download(f"s3://{BUCKET}/runs/1", tmp_path / "back")
    assert listed == ["runs/1/a.json", "runs/1/model/a.json", "runs/1/nested/b.csv"]
    assert gets == []  # what a step wrote, the next step reads from the cache
    assert (tmp_path / "back" / "nested" / "b.csv").read_text() == "x,y"


def test_bad_locations_are_named(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(PipelineRunError, match="not an S3 URI: 'raw/loads'"):
        s3_location("raw/loads")
    with pytest.raises(PipelineRunError, match="no bucket"):
        s3_location("s3:///key")
    with S3Staging(s3, tmp_path / "cache") as staging:
        with pytest.raises(PipelineRunError, match=f"no objects under s3://{BUCKET}/missing"):
            staging.download(f"s3://{BUCKET}/missing", tmp_path / "target")
        with pytest.raises(PipelineRunError, match="names no object key"):
            staging.upload_file(tmp_path, f"s3://{BUCKET}")


def test_container_paths_map_into_the_instance_folder(tmp_path: Path) -> None:
    assert container_path(tmp_path, "/opt/ml/processing/input") == (
        tmp_path / "opt" / "ml" / "processing" / "input"
    )
    with pytest.raises(PipelineRunError, match="'/tmp/input' is outside /opt/ml/"):
        container_path(tmp_path, "/tmp/input")
