from __future__ import annotations

import subprocess
import sys

from local.embedded_aws import EmbeddedAws, create_lake, embedded_aws
from stages.names import ResourceNames

NAMES = ResourceNames(stage="local")


def _buckets(aws: EmbeddedAws) -> set[str]:
    return {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}


def test_in_process_emulator_has_the_lake() -> None:
    with embedded_aws(NAMES, threaded_server=False) as aws:
        assert aws.endpoint_url is None
        assert _buckets(aws) == set(NAMES.buckets().values())
        databases = aws.client("glue").get_databases()["DatabaseList"]
        assert [d["Name"] for d in databases] == [NAMES.glue_database]
        create_lake(aws, NAMES)  # idempotent
        assert _buckets(aws) == set(NAMES.buckets().values())


def test_threaded_server_is_reachable_from_another_process() -> None:
    with embedded_aws(NAMES, environment={}) as aws:
        assert aws.endpoint_url is not None
        code = (
            "import boto3; print(sorted(b['Name'] for b in "
            "boto3.client('s3').list_buckets()['Buckets']))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], env={**aws.environment(), "PATH": ""},
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        assert result.stdout.strip() == str(sorted(NAMES.buckets().values()))


def test_an_existing_endpoint_is_used_instead_of_starting_one() -> None:
    with embedded_aws(NAMES, environment={}) as running:
        external = {"AWS_ENDPOINT_URL": str(running.endpoint_url)}
        with embedded_aws(ResourceNames(stage="dev"), environment=external) as aws:
            assert aws.endpoint_url == running.endpoint_url
            assert ResourceNames(stage="dev").raw_bucket in _buckets(aws)
            assert NAMES.raw_bucket in _buckets(aws)  # the same emulator
