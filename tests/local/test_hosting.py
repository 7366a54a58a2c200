"""The local hosting service end to end: create, capture, a rolled-back and a clean update.

One embedded AWS (moto's threaded server: the fleets are other processes) and one hosting for
the module; the tests run in order and share the endpoint, as a deployment would.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.alarms import ALARM, MotoMetrics
from local.embedded_aws import EmbeddedAws, embedded_aws
from local.hosting import LOCAL_SERVING, ROLLED_BACK, SUCCEEDED, HostingError, LocalHosting
from local.market_data import LOCAL_NAMES
from processing.contracts import CONTENT_TYPES
from processing.lake import split_s3_uri
from processing.model import METADATA_FILE
from stages.serving import (
    INVOCATION_NAMESPACE,
    VARIANT_NAME,
    MetricSpec,
    data_capture_config,
    deployment_config,
    endpoint_alarms,
    rollback_alarms,
)
from tests.inference.test_parsing import VALID_LOAD

ENDPOINT = LOCAL_NAMES.endpoint
VERSIONS = ("local-1", "local-2", "local-3")
QUOTES = 1_000
# Waiting for the capture flush (a second): a bound, not a speed requirement.
FLUSH_WAIT_SECONDS = 30.0


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with embedded_aws(LOCAL_NAMES, threaded_server=True, environment={}) as embedded:
        yield embedded


def _publish_model(aws: EmbeddedAws, model_dir: Path, version: str, work: Path) -> str:
    """A copy of the trained model labelled ``version``, as model.tar.gz in the artifacts."""
    copy = work / version
    shutil.copytree(model_dir, copy)
    metadata_path = copy / METADATA_FILE
    metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
    metadata["model_version"] = version
    metadata_path.write_text(json.dumps(metadata))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(copy.iterdir()):
            archive.add(path, arcname=path.name)
    key = f"models/{version}/model.tar.gz"
    aws.client("s3").put_object(
        Bucket=LOCAL_NAMES.artifacts_bucket, Key=key, Body=buffer.getvalue()
    )
    return f"s3://{LOCAL_NAMES.artifacts_bucket}/{key}"


@pytest.fixture(scope="module")
def configs(
    aws: EmbeddedAws, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    """One model and endpoint configuration (100 % capture) per version."""
    sagemaker = aws.client("sagemaker")
    work = tmp_path_factory.mktemp("models")
    capture = data_capture_config(LOCAL_SERVING, LOCAL_NAMES.capture_uri, None, CONTENT_TYPES)
    names = []
    for version in VERSIONS:
        url = _publish_model(aws, model_dir, version, work)
        sagemaker.create_model(
            ModelName=f"model-{version}",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/endpoint",
            PrimaryContainer={"Image": "freight:local", "ModelDataUrl": url},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"config-{version}",
            ProductionVariants=[{"VariantName": VARIANT_NAME, "ModelName": f"model-{version}",
                                 "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
            DataCaptureConfig=capture,
        )  # fmt: skip
        names.append(f"config-{version}")
    return names


@pytest.fixture(scope="module")
def hosting(
    aws: EmbeddedAws, configs: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalHosting]:
    with LocalHosting(aws, workdir=tmp_path_factory.mktemp("hosting")) as service:
        service.create_endpoint({"EndpointName": ENDPOINT, "EndpointConfigName": configs[0]})
        yield service


def _runtime(hosting: LocalHosting) -> Any:
    return boto3.client(
        "sagemaker-runtime", endpoint_url=hosting.url, region_name="eu-central-1",
        config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip


def _quote(runtime: Any, inference_id: str | None = None) -> dict[str, Any]:
    extra = {"InferenceId": inference_id} if inference_id else {}
    response = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, Body=orjson.dumps(VALID_LOAD), ContentType="application/json",
        Accept="application/json", **extra,
    )  # fmt: skip
    document: dict[str, Any] = orjson.loads(response["Body"].read())
    return document


def _served_version(hosting: LocalHosting) -> str:
    with urllib.request.urlopen(f"{hosting.url}/ping", timeout=5) as response:
        return str(orjson.loads(response.read())["model_version"])


def _capture_lines(aws: EmbeddedAws) -> list[dict[str, Any]]:
    s3 = aws.client("s3")
    bucket, prefix = split_s3_uri(LOCAL_NAMES.capture_uri)
    lines = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            lines += [orjson.loads(line) for line in body.splitlines() if line]
    return lines


def _wait_for(condition: Any, seconds: float = FLUSH_WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


class Traffic:
    """Quotes in a loop on a thread of their own; counts answers per model and failures."""

    def __init__(self, hosting: LocalHosting) -> None:
        self.runtime = _runtime(hosting)
        self.versions: Counter[str] = Counter()
        self.model_errors = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.versions[_quote(self.runtime)["model_version"]] += 1
            except ClientError as error:
                if error.response["Error"]["Code"] == "ModelError":
                    self.model_errors += 1
                else:
                    self.failures.append(repr(error))
            except Exception as error:
                self.failures.append(repr(error))
            # Steady traffic, not a busy loop: the fleets being started need the CPU too.
            time.sleep(0.005)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _update_request(config_name: str) -> dict[str, Any]:
    alarms = endpoint_alarms(LOCAL_NAMES.alarm_prefix, ENDPOINT, LOCAL_SERVING, config_name)
    names = [alarm.name for alarm in rollback_alarms(alarms)]
    return {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": config_name,
        "RetainAllVariantProperties": True,
        "DeploymentConfig": deployment_config(LOCAL_SERVING, names),
    }


def test_quotes_through_boto3_are_captured(aws: EmbeddedAws, hosting: LocalHosting) -> None:
    runtime = _runtime(hosting)
    for index in range(QUOTES):
        assert _quote(runtime, f"quote-{index}")["model_version"] == VERSIONS[0]
    _wait_for(lambda: len(_capture_lines(aws)) >= QUOTES)
    lines = _capture_lines(aws)
    assert len(lines) == QUOTES
    assert {line["eventMetadata"]["inferenceId"] for line in lines} == {
        f"quote-{index}" for index in range(QUOTES)
    }
    described = aws.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == hosting.endpoint_config_name == "config-local-1"
    variant = (("EndpointName", ENDPOINT), ("VariantName", VARIANT_NAME))
    fleet = (*variant, ("EndpointConfigName", "config-local-1"))
    for dimensions in (variant, fleet):
        metric = MetricSpec(INVOCATION_NAMESPACE, "Invocations", "Sum", dimensions)
        entries = MotoMetrics().entries(metric, *_all_time())
        assert sum(entry[0] for entry in entries) == QUOTES


def _all_time() -> tuple[Any, Any]:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(hours=2), now + dt.timedelta(hours=1)


def test_a_failing_canary_rolls_back(aws: EmbeddedAws, hosting: LocalHosting) -> None:
    with Traffic(hosting) as traffic:
        outcome = hosting.update_endpoint(_update_request("config-local-2"), fault_percent=100)
    assert outcome.status == ROLLED_BACK
    assert outcome.alarm_name == f"{LOCAL_NAMES.alarm_prefix}-new-fleet-5xx"
    assert "greater than the threshold" in outcome.reason
    alarm = aws.client("cloudwatch").describe_alarms(AlarmNames=[outcome.alarm_name])
    assert alarm["MetricAlarms"][0]["StateValue"] == ALARM
    # The canary's share failed (the drill), nothing else did, and nothing came from model 2.
    assert traffic.model_errors > 0
    assert traffic.failures == []
    assert set(traffic.versions) == {VERSIONS[0]}
    assert _served_version(hosting) == VERSIONS[0]
    assert _quote(_runtime(hosting))["model_version"] == VERSIONS[0]
    described = aws.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    assert described["EndpointConfigName"] == "config-local-1"


def test_a_clean_update_takes_over_without_losing_a_request(
    aws: EmbeddedAws, hosting: LocalHosting
) -> None:
    with Traffic(hosting) as traffic:
        outcome = hosting.update_endpoint(_update_request("config-local-3"))
        # Traffic goes on across the takeover, on new connections too.
        time.sleep(0.5)
    assert outcome.status == SUCCEEDED, outcome.reason
    assert traffic.failures == []
    assert traffic.model_errors == 0
    assert traffic.versions[VERSIONS[2]] > 0
    assert set(traffic.versions) <= {VERSIONS[0], VERSIONS[2]}
    assert _served_version(hosting) == VERSIONS[2]
    assert _quote(_runtime(hosting))["model_version"] == VERSIONS[2]
    described = aws.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == (
        "InService",
        "config-local-3",
    )
    assert hosting.endpoint_config_name == "config-local-3"


def test_requests_the_local_hosting_cannot_take_are_named(hosting: LocalHosting) -> None:
    request = _update_request("config-local-1")
    request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] = {
        "Type": "LINEAR"
    }
    with pytest.raises(HostingError, match=r"TrafficRoutingConfiguration\.Type"):
        hosting.update_endpoint(request)
    with pytest.raises(HostingError, match="does not exist"):
        hosting.update_endpoint(_update_request("config-missing"))
    with pytest.raises(HostingError, match="already serves"):
        hosting.update_endpoint(_update_request("config-local-3"))
