"""Tests of the daily Parquet partitions: local round trips, S3 objects and Glue registration."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from market.generator import Market, generate_day
from processing.lake import (
    GlueTarget,
    parquet_bytes,
    partition_key,
    read_partitions,
    split_s3_uri,
    write_partitions,
)
from processing.schema import LOAD_SCHEMA, conform

REGION: Final = "eu-central-1"
BUCKET = "freight-lake"
RAW_LOADS = f"s3://{BUCKET}/raw/loads"
GLUE = GlueTarget(database="freight", table="raw_loads")
FIRST_DAY = dt.date(2026, 1, 30)
DAYS = (FIRST_DAY, dt.date(2026, 1, 31), dt.date(2026, 2, 1))

Days = list[tuple[dt.date, pa.Table]]


@pytest.fixture(scope="module")
def days() -> Days:
    market = Market(7)
    return [(day, generate_day(market, day, 150 + 10 * offset)) for offset, day in enumerate(DAYS)]


def expected(days: Days, selected: tuple[dt.date, ...] = DAYS) -> pa.Table:
    return pa.concat_tables([conform(table) for day, table in days if day in selected])


def test_partition_key() -> None:
    assert partition_key(dt.date(2026, 1, 31)) == "dt=2026-01-31/part-00000.parquet"


def test_write_creates_one_file_per_day(tmp_path: Path, days: Days) -> None:
    root = tmp_path / "raw"

    written = write_partitions(days, str(root))

    expected_files = [root / f"dt={day.isoformat()}" / "part-00000.parquet" for day in DAYS]
    assert written == [str(path) for path in expected_files]
    assert sorted(root.rglob("*")) == sorted([*expected_files, *(p.parent for p in expected_files)])
    for path, (_, table) in zip(expected_files, days, strict=True):
        assert path.read_bytes() == parquet_bytes(table)


def test_read_back_equals_what_was_written(tmp_path: Path, days: Days) -> None:
    write_partitions(days, str(tmp_path))

    table = read_partitions(tmp_path)

    assert table.schema.equals(LOAD_SCHEMA, check_metadata=True)
    assert table.equals(expected(days))


@pytest.mark.parametrize(
    ("start", "end", "selected"),
    [
        (None, None, DAYS),
        (DAYS[1], DAYS[1], (DAYS[1],)),
        (DAYS[1], None, DAYS[1:]),
        (None, DAYS[1], DAYS[:2]),
        (dt.date(2026, 1, 1), dt.date(2026, 12, 31), DAYS),
    ],
    ids=["everything", "one_day", "open_end", "open_start", "wider_window"],
)
def test_read_filters_days_inclusively(
    tmp_path: Path,
    days: Days,
    start: dt.date | None,
    end: dt.date | None,
    selected: tuple[dt.date, ...],
) -> None:
    write_partitions(days, str(tmp_path))

    table = read_partitions(tmp_path, start=start, end=end)

    assert table.equals(expected(days, selected))


def test_read_ignores_directories_that_are_not_partitions(tmp_path: Path, days: Days) -> None:
    write_partitions(days[:1], str(tmp_path))
    for name in ("_temporary", "dt=2026-13", "dt=yesterday"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "part-00000.parquet").write_bytes(b"not parquet")

    assert read_partitions(tmp_path).equals(expected(days, DAYS[:1]))


def test_read_selected_columns(tmp_path: Path, days: Days) -> None:
    write_partitions(days, str(tmp_path))

    table = read_partitions(tmp_path, columns=["load_id", "price_eur"])

    assert table.column_names == ["load_id", "price_eur"]
    assert table.column("price_eur").equals(expected(days).column("price_eur"))


def test_read_missing_directory_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        read_partitions(missing)


def test_read_window_without_days_raises(tmp_path: Path, days: Days) -> None:
    write_partitions(days, str(tmp_path))

    with pytest.raises(FileNotFoundError, match="no daily partitions"):
        read_partitions(tmp_path, start=dt.date(2026, 2, 2))


def test_read_empty_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no daily partitions"):
        read_partitions(tmp_path)


def test_partition_lacking_a_contract_column_names_the_file(tmp_path: Path, days: Days) -> None:
    write_partitions(days, str(tmp_path))
    broken = tmp_path / partition_key(DAYS[1])
    pq.write_table(days[1][1].drop_columns(["price_eur"]), broken)

    with pytest.raises(ValueError, match=re.escape(str(broken))) as raised:
        read_partitions(tmp_path)

    assert "price_eur" in str(raised.value)


def test_glue_target_needs_an_s3_destination(tmp_path: Path, days: Days) -> None:
    root = tmp_path / "raw"

    with pytest.raises(ValueError, match="S3"):
        write_partitions(days, str(root), glue=GLUE)

    assert not root.exists()


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://bucket/raw/loads", "bucket", "raw/loads"),
        ("s3://bucket/raw/loads/", "bucket", "raw/loads"),
        ("s3://bucket/", "bucket", ""),
        ("s3://bucket", "bucket", ""),
        ("s3://my-lake.eu/a", "my-lake.eu", "a"),
    ],
)
def test_split_s3_uri(uri: str, bucket: str, prefix: str) -> None:
    assert split_s3_uri(uri) == (bucket, prefix)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("bucket/raw/loads", "not an S3 URI"),
        ("/tmp/raw", "not an S3 URI"),
        ("https://bucket.s3.amazonaws.com/raw", "not an S3 URI"),
        ("s3:/bucket/raw", "not an S3 URI"),
        ("s3://", "no bucket"),
        ("s3:///raw/loads", "no bucket"),
    ],
)
def test_split_s3_uri_rejects_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_s3_uri(uri)


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    """A moto-backed session with the lake bucket; created inside the mock so nothing leaks."""
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        session.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield session


def s3_keys(session: boto3.Session) -> list[str]:
    listing = session.client("s3").list_objects_v2(Bucket=BUCKET)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_write_to_s3_puts_the_same_bytes(aws: boto3.Session, days: Days) -> None:
    written = write_partitions(days, RAW_LOADS, boto3_session=aws)

    keys = [f"raw/loads/dt={day.isoformat()}/part-00000.parquet" for day in DAYS]
    assert written == [f"s3://{BUCKET}/{key}" for key in keys]
    assert s3_keys(aws) == keys
    s3 = aws.client("s3")
    for key, (_, table) in zip(keys, days, strict=True):
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == parquet_bytes(table)


def test_write_to_s3_without_glue_creates_no_catalog_entries(
    aws: boto3.Session, days: Days
) -> None:
    write_partitions(days, RAW_LOADS, boto3_session=aws)

    assert aws.client("glue").get_databases()["DatabaseList"] == []


def test_write_to_bucket_root(aws: boto3.Session, days: Days) -> None:
    written = write_partitions(days[:1], f"s3://{BUCKET}", boto3_session=aws)

    assert written == [f"s3://{BUCKET}/{partition_key(DAYS[0])}"]
    assert s3_keys(aws) == [partition_key(DAYS[0])]


def partition_values(session: boto3.Session) -> dict[str, str]:
    """Partition value -> location of every partition of the Glue table."""
    partitions = session.client("glue").get_partitions(
        DatabaseName=GLUE.database, TableName=GLUE.table
    )["Partitions"]
    return {
        partition["Values"][0]: partition["StorageDescriptor"]["Location"]
        for partition in partitions
    }


def test_write_to_s3_registers_glue_table_and_one_partition_per_day(
    aws: boto3.Session, days: Days
) -> None:
    written = write_partitions(days, RAW_LOADS, glue=GLUE, boto3_session=aws)

    assert len(written) == len(DAYS)
    glue_table = aws.client("glue").get_table(DatabaseName=GLUE.database, Name=GLUE.table)["Table"]
    storage = glue_table["StorageDescriptor"]
    assert storage["Location"] == f"{RAW_LOADS}/"
    assert [key["Name"] for key in glue_table["PartitionKeys"]] == ["dt"]
    column_types = {column["Name"]: column["Type"] for column in storage["Columns"]}
    assert list(column_types) == LOAD_SCHEMA.names
    assert column_types["posted_at"] == "timestamp"
    assert column_types["equipment_type"] == "string"
    assert column_types["price_eur"] == "double"
    assert column_types["hazmat"] == "boolean"
    assert partition_values(aws) == {
        day.isoformat(): f"{RAW_LOADS}/dt={day.isoformat()}/" for day in DAYS
    }
    s3 = aws.client("s3")
    for location, (_, table) in zip(written, days, strict=True):
        bucket, key = split_s3_uri(location)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == parquet_bytes(table)


def test_writing_more_days_adds_partitions_to_the_existing_table(
    aws: boto3.Session, days: Days
) -> None:
    write_partitions(days[:2], RAW_LOADS, glue=GLUE, boto3_session=aws)
    # A rerun of the last day together with a new one: the existing partition stays valid.
    write_partitions(days[1:], RAW_LOADS, glue=GLUE, boto3_session=aws)

    assert sorted(partition_values(aws)) == [day.isoformat() for day in DAYS]
