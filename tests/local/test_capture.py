"""The local endpoint's data capture and metrics: SageMaker's record format and key layout."""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from inference.observer import Invocation
from local.alarms import MotoMetrics, statistic
from local.capture import CaptureObserver, CaptureSettings, capture_key, latency_bin
from local.embedded_aws import EmbeddedAws, embedded_aws
from local.market_data import LOCAL_NAMES
from processing.contracts import CONTENT_TYPES
from processing.lake import split_s3_uri
from stages.serving import INVOCATION_NAMESPACE, MetricSpec, ServingConfig, data_capture_config

ENDPOINT = "prices"
# <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<MM>-<SS>-<mmm>-<uuid>.jsonl
KEY = re.compile(
    r"^capture/prices/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.jsonl$"
)
INFERENCE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SETTINGS = CaptureSettings.from_config(
    data_capture_config(ServingConfig(), LOCAL_NAMES.capture_uri, None, CONTENT_TYPES)
)


def _invocation(
    body: bytes = b'{"distance_km": 490}',
    content_type: str | None = "application/json",
    *,
    status: int = 200,
    inference_id: str | None = None,
    response: bytes = b'{"predictions": [{"price_eur": 812.5}]}',
    response_type: str = "application/json",
) -> Invocation:
    return Invocation(body, content_type, "application/json", response, response_type, status,
                      inference_id, 1_000_000, 1_900_000, 600_000)  # fmt: skip


def test_the_settings_follow_the_endpoint_configuration() -> None:
    assert SETTINGS is not None
    assert SETTINGS.destination_uri == LOCAL_NAMES.capture_uri
    assert SETTINGS.sampling_percent == 100
    assert SETTINGS.encoding("application/json") == "JSON"
    assert SETTINGS.encoding("application/json; charset=utf-8") == "JSON"
    assert SETTINGS.encoding("text/csv") == "CSV"
    assert SETTINGS.encoding("application/x-npy") == "BASE64"
    assert SETTINGS.encoding(None) == "BASE64"
    assert (
        CaptureSettings.from_config({"EnableCapture": False, "DestinationS3Uri": "s3://b"}) is None
    )


def test_keys_follow_sagemakers_layout() -> None:
    started = dt.datetime(2026, 3, 3, 9, 5, 7, 42_000, tzinfo=dt.UTC).timestamp()
    file_id = str(uuid.uuid4())
    key = capture_key("capture", ENDPOINT, "AllTraffic", started, file_id)
    assert key == f"capture/prices/AllTraffic/2026/03/03/09/05-07-042-{file_id}.jsonl"
    assert KEY.fullmatch(key)
    assert capture_key("", ENDPOINT, "AllTraffic", started, file_id).startswith("prices/")


def test_latency_bins_keep_three_significant_digits() -> None:
    assert latency_bin(123_456.0) == 123_000.0
    assert latency_bin(987.6) == 988.0
    assert latency_bin(0.0) == 0.0


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with embedded_aws(LOCAL_NAMES, threaded_server=False, environment={}) as embedded:
        yield embedded


def _observer(aws: EmbeddedAws, settings: CaptureSettings | None, **kw: Any) -> CaptureObserver:
    return CaptureObserver(
        endpoint_name=ENDPOINT, endpoint_config_name="config-1", s3=aws.client("s3"),
        cloudwatch=aws.client("cloudwatch"), capture=settings, flush_seconds=3600, **kw,
    )  # fmt: skip


def _lines(aws: EmbeddedAws) -> dict[str, list[dict[str, Any]]]:
    s3 = aws.client("s3")
    bucket, prefix = split_s3_uri(LOCAL_NAMES.capture_uri)
    files = {}
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        files[item["Key"]] = [orjson.loads(line) for line in body.splitlines()]
    return files


def _clear(aws: EmbeddedAws) -> None:
    s3 = aws.client("s3")
    bucket, prefix = split_s3_uri(LOCAL_NAMES.capture_uri)
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])


def test_every_invocation_is_captured_and_counted(aws: EmbeddedAws) -> None:
    _clear(aws)
    observer = _observer(aws, SETTINGS)
    invocations = [
        _invocation(inference_id="load-1"),
        _invocation(b"DE,DE-80,48.1\n", "text/csv", response=b"812.5\n", response_type="text/csv"),
        _invocation(b"\x93NUMPY\x00", "application/x-npy", status=415, response=b'{"error": {}}'),
        _invocation(b'{"bad": ', status=500, response=b'{"error": {}}'),
    ]
    for invocation in invocations:
        observer.observe(invocation)
    observer.close()
    assert observer.written_records == len(invocations)
    files = _lines(aws)
    assert files
    assert all(KEY.fullmatch(key) for key in files)
    lines = [line for records in files.values() for line in records]
    assert len(lines) == len(invocations)
    first, csv, binary, failed = lines
    assert first["eventVersion"] == "0"
    assert list(first) == ["captureData", "eventMetadata", "eventVersion"]
    assert first["eventMetadata"]["inferenceId"] == "load-1"
    assert uuid.UUID(first["eventMetadata"]["eventId"]).version == 4
    assert INFERENCE_TIME.fullmatch(first["eventMetadata"]["inferenceTime"])
    assert first["captureData"]["endpointInput"] == {
        "observedContentType": "application/json", "mode": "INPUT",
        "data": '{"distance_km": 490}', "encoding": "JSON",
    }  # fmt: skip
    assert first["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert first["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert "inferenceId" not in csv["eventMetadata"]
    assert csv["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert csv["captureData"]["endpointOutput"]["data"] == "812.5\n"
    assert binary["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert base64.b64decode(binary["captureData"]["endpointInput"]["data"]) == b"\x93NUMPY\x00"
    # Not valid JSON, still captured as sent (the content type says JSON).
    assert failed["captureData"]["endpointInput"]["data"] == '{"bad": '

    now = dt.datetime.now(dt.UTC)
    window = (now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1))
    variant = (("EndpointName", ENDPOINT), ("VariantName", "AllTraffic"))
    for dimensions in (variant, (*variant, ("EndpointConfigName", "config-1"))):

        def total(name: str, stat: str = "Sum", dims: Any = dimensions) -> float | None:
            metric = MetricSpec(INVOCATION_NAMESPACE, name, stat, dims)
            return statistic(MotoMetrics().entries(metric, *window), stat)

        assert total("Invocations") == 4
        assert total("Invocation4XXErrors") == 1
        assert total("Invocation5XXErrors") == 1
        assert total("ModelLatency", "p99") == 600.0  # microseconds
        assert total("OverheadLatency", "Maximum") == 300.0


def test_sampling_captures_a_share_but_counts_everything(aws: EmbeddedAws) -> None:
    _clear(aws)
    assert SETTINGS is not None
    half = CaptureSettings(
        SETTINGS.destination_uri, 50.0, json_content_types=frozenset({"application/json"})
    )
    draws = iter([0.1, 0.9] * 10)
    observer = _observer(aws, half, chance=lambda: next(draws))
    for index in range(20):
        observer.observe(_invocation(inference_id=f"sampled-{index}"))
    observer.close()
    lines = [line for records in _lines(aws).values() for line in records]
    assert [line["eventMetadata"]["inferenceId"] for line in lines] == [
        f"sampled-{index}" for index in range(0, 20, 2)
    ]
    assert observer.written_records == 10


def test_without_capture_only_metrics_are_written(aws: EmbeddedAws) -> None:
    _clear(aws)
    observer = _observer(aws, None)
    observer.observe(_invocation())
    observer.close()
    assert _lines(aws) == {}
    assert observer.written_records == 0
