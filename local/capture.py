"""The local endpoint's data capture and CloudWatch metrics, as SageMaker writes them in AWS.

An invocation observer (inference.observer) that every worker of a local fleet loads: per
request it appends one tuple to a queue; a background thread flushes every second (or every
``max_records``) and on shutdown: the sampled invocations as JSON lines in SageMaker's capture
format and key layout in the embedded S3 (``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/
<MM>-<SS>-<mmm>-<uuid>.jsonl``, docs: ../shared/notes/monitor-formats.md section 3), and the
endpoint's metrics (AWS/SageMaker: Invocations, Invocation4XXErrors, Invocation5XXErrors,
ModelLatency, OverheadLatency) aggregated per second into the embedded CloudWatch.
"""

from __future__ import annotations

import base64
import collections
import functools
import logging
import math
import os
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from inference.observer import Invocation, Reply
from inference.parsing import media_type
from local.routing import LocalRouter, RoutingTable
from processing.lake import split_s3_uri
from stages.serving import INVOCATION_NAMESPACE, VARIANT_NAME

if TYPE_CHECKING:
    from inference.settings import ServerSettings
    from processing.model import PriceModel

# The factory the local hosting service names in FREIGHT_INVOCATION_OBSERVER.
OBSERVER_FACTORY = "local.capture:observer_factory"
# What the hosting service tells each fleet's workers (all unset: metrics of the endpoint only).
ENV_ENDPOINT_CONFIG = "FREIGHT_LOCAL_ENDPOINT_CONFIG"
ENV_VARIANT = "FREIGHT_LOCAL_VARIANT"
ENV_CAPTURE_CONFIG = "FREIGHT_LOCAL_CAPTURE_CONFIG"  # the DataCaptureConfig, JSON
ENV_ROUTING_FILE = "FREIGHT_LOCAL_ROUTING_FILE"
ENV_FAULT_PERCENT = "FREIGHT_LOCAL_FAULT_PERCENT"
ENV_READY_DIR = "FREIGHT_LOCAL_READY_DIR"
ENV_FLUSH_SECONDS = "FREIGHT_LOCAL_FLUSH_SECONDS"
DEFAULT_FLUSH_SECONDS = 1.0
DEFAULT_MAX_RECORDS = 2_000
# CloudWatch takes at most 1,000 datums per PutMetricData.
MAX_DATUMS_PER_CALL = 500
# Latencies are published binned to 3 significant digits (1 %), as values with counts.
LATENCY_DIGITS = 3
MAX_VALUES_PER_DATUM = 150
ENCODINGS = ("JSON", "CSV", "BASE64")
EVENT_VERSION = "0"
SWITCH_INTERVAL_SECONDS = 0.001

logger = logging.getLogger("freight.local")


@dataclass(frozen=True)
class CaptureSettings:
    """What an endpoint configuration's DataCaptureConfig asks for."""

    destination_uri: str
    sampling_percent: float
    capture_input: bool = True
    capture_output: bool = True
    json_content_types: frozenset[str] = frozenset()
    csv_content_types: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CaptureSettings | None:
        """From the API's DataCaptureConfig; None when capture is off."""
        if not config or not config.get("EnableCapture", True):
            return None
        modes = {option["CaptureMode"] for option in config.get("CaptureOptions", [])}
        header = config.get("CaptureContentTypeHeader", {})
        return cls(
            destination_uri=str(config["DestinationS3Uri"]).rstrip("/"),
            sampling_percent=float(config.get("InitialSamplingPercentage", 100)),
            capture_input="Input" in modes or not modes,
            capture_output="Output" in modes or not modes,
            json_content_types=frozenset(t.lower() for t in header.get("JsonContentTypes", [])),
            csv_content_types=frozenset(t.lower() for t in header.get("CsvContentTypes", [])),
        )

    def encoding(self, content_type: str | None) -> str:
        """JSON, CSV or BASE64, as SageMaker picks it from the capture content types."""
        return _encoding(self.json_content_types, self.csv_content_types, content_type)


@functools.lru_cache(maxsize=256)
def _encoding(
    json_content_types: frozenset[str], csv_content_types: frozenset[str], content_type: str | None
) -> str:
    kind = media_type(content_type)
    if kind in json_content_types:
        return "JSON"
    if kind in csv_content_types:
        return "CSV"
    return "BASE64"


def _payload(body: bytes, content_type: str | None, mode: str, encoding: str) -> dict[str, str]:
    data: str | None = None
    if encoding != "BASE64":
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if data is None:
        data = base64.b64encode(body).decode("ascii")
    return {
        "observedContentType": content_type or "application/octet-stream",
        "mode": mode,
        "data": data,
        "encoding": encoding,
    }


def inference_time(moment: float) -> str:
    """ISO-8601 UTC to the second, as SageMaker writes ``inferenceTime``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def event_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as strings; one system call for all of them."""
    pool = bytearray(os.urandom(16 * count))
    ids = []
    for start in range(0, 16 * count, 16):
        pool[start + 6] = (pool[start + 6] & 0x0F) | 0x40
        pool[start + 8] = (pool[start + 8] & 0x3F) | 0x80
        h = pool[start : start + 16].hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def capture_record(
    invocation: Invocation,
    moment: float,
    settings: CaptureSettings,
    event_id: str,
    when: str | None = None,
) -> dict[str, Any]:
    """One capture line's document (key order as in SageMaker's files).

    ``when``: ``inference_time(moment)`` if the caller has it already.
    """
    capture: dict[str, Any] = {}
    if settings.capture_input:
        capture["endpointInput"] = _payload(
            invocation.request_body, invocation.content_type, "INPUT",
            settings.encoding(invocation.content_type),
        )  # fmt: skip
    if settings.capture_output:
        capture["endpointOutput"] = _payload(
            invocation.response_body, invocation.response_content_type, "OUTPUT",
            settings.encoding(invocation.response_content_type),
        )  # fmt: skip
    metadata = {"eventId": event_id}
    if invocation.inference_id is not None:
        metadata["inferenceId"] = invocation.inference_id
    metadata["inferenceTime"] = when or inference_time(moment)
    return {"captureData": capture, "eventMetadata": metadata, "eventVersion": EVENT_VERSION}


def capture_key(prefix: str, endpoint: str, variant: str, started: float, file_id: str) -> str:
    """``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<MM>-<SS>-<mmm>-<uuid>.jsonl`` (UTC)."""
    moment = time.gmtime(started)
    millis = int(started * 1000) % 1000
    folder = time.strftime(f"{endpoint}/{variant}/%Y/%m/%d/%H", moment)
    name = time.strftime(f"%M-%S-{millis:03d}-{file_id}.jsonl", moment)
    return f"{prefix}/{folder}/{name}" if prefix else f"{folder}/{name}"


def latency_bin(microseconds: float) -> float:
    """``microseconds`` to 3 significant digits (the published latency histograms' bins)."""
    if microseconds <= 0:
        return 0.0
    return round(microseconds, LATENCY_DIGITS - 1 - math.floor(math.log10(microseconds)))


class _Second:
    """The metrics of one second of one fleet worker."""

    __slots__ = ("errors_4xx", "errors_5xx", "invocations", "model", "overhead")

    def __init__(self) -> None:
        self.invocations = 0
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.model: collections.Counter[float] = collections.Counter()
        self.overhead: collections.Counter[float] = collections.Counter()


def metric_data(
    seconds: Mapping[int, _Second], dimension_sets: Iterable[list[dict[str, str]]]
) -> list[dict[str, Any]]:
    """PutMetricData datums: counts as statistic sets (Average = share), latencies as values.

    A latency datum carries up to :data:`MAX_VALUES_PER_DATUM` distinct binned values with
    their counts (``Values``/``Counts``, as CloudWatch takes them for percentiles).
    """
    datums: list[dict[str, Any]] = []
    for second, totals in sorted(seconds.items()):
        count = totals.invocations
        for dimensions in dimension_sets:
            common = {"Dimensions": dimensions, "Timestamp": second}
            for name, errors in (("Invocations", count),
                                 ("Invocation4XXErrors", totals.errors_4xx),
                                 ("Invocation5XXErrors", totals.errors_5xx)):  # fmt: skip
                datums.append(
                    {"MetricName": name, **common, "Unit": "Count", "StatisticValues": {
                        "SampleCount": count, "Sum": errors,
                        "Minimum": 0.0 if errors < count else 1.0,
                        "Maximum": 1.0 if errors else 0.0}}
                )  # fmt: skip
            for name, histogram in (("ModelLatency", totals.model),
                                    ("OverheadLatency", totals.overhead)):  # fmt: skip
                bins = sorted(histogram.items())
                for start in range(0, len(bins), MAX_VALUES_PER_DATUM):
                    chunk = bins[start : start + MAX_VALUES_PER_DATUM]
                    datums.append(
                        {"MetricName": name, **common, "Unit": "Microseconds",
                         "Values": [value for value, _ in chunk],
                         "Counts": [float(samples) for _, samples in chunk]}
                    )  # fmt: skip
    return datums


class CaptureObserver:
    """The local endpoint's observer: capture, metrics, and (through ``router``) routing."""

    def __init__(
        self,
        *,
        endpoint_name: str,
        endpoint_config_name: str,
        s3: Any,
        cloudwatch: Any,
        capture: CaptureSettings | None,
        variant_name: str = VARIANT_NAME,
        router: LocalRouter | None = None,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        max_records: int = DEFAULT_MAX_RECORDS,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name
        self.capture = capture
        self.router = router
        self.flush_seconds = flush_seconds
        self.max_records = max_records
        self.written_records = 0
        self.written_files = 0
        self._s3 = s3
        self._cloudwatch = cloudwatch
        self._chance = chance
        variant = [{"Name": "EndpointName", "Value": endpoint_name},
                   {"Name": "VariantName", "Value": variant_name}]  # fmt: skip
        config = {"Name": "EndpointConfigName", "Value": endpoint_config_name}
        self._dimension_sets = [variant, [*variant, config]]
        if capture is not None:
            self._bucket, self._prefix = split_s3_uri(capture.destination_uri)
        # deque.append and popleft are atomic: the event loop never waits for the flusher.
        self._queue: collections.deque[tuple[float, bool, Invocation]] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="capture-flush", daemon=True)
        self._thread.start()

    def intercept(
        self, headers: Mapping[bytes, bytes], body: bytes
    ) -> Awaitable[Reply | None] | None:
        """The router's decision (None without one)."""
        return None if self.router is None else self.router.intercept(headers, body)

    def observe(self, invocation: Invocation) -> None:
        """Queue the invocation (sampled for capture or not); the flusher does the rest."""
        capture = self.capture
        sampled = capture is not None and (
            capture.sampling_percent >= 100 or self._chance() * 100 < capture.sampling_percent
        )
        self._queue.append((time.time(), sampled, invocation))
        if len(self._queue) >= self.max_records:
            self._wake.set()

    def close(self) -> None:
        """Stop the flusher and write everything still queued."""
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self.flush()
        fields = {"pid": os.getpid(), "records": self.written_records, "files": self.written_files}
        logger.info("capture closed", extra={"fields": fields})

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                logger.exception("capture flush failed")

    def flush(self) -> None:
        """Write the queued invocations: capture files by hour, then the metrics."""
        with self._flush_lock:
            batch = [self._queue.popleft() for _ in range(len(self._queue))]
            if not batch:
                return
            self._write_capture([(moment, inv) for moment, sampled, inv in batch if sampled])
            self._put_metrics(batch)

    def _write_capture(self, sampled: list[tuple[float, Invocation]]) -> None:
        if not sampled or self.capture is None:
            return
        by_hour: dict[int, list[tuple[float, Invocation]]] = {}
        for moment, invocation in sampled:
            by_hour.setdefault(int(moment // 3600), []).append((moment, invocation))
        times: dict[int, str] = {}
        for records in by_hour.values():
            ids = event_ids(len(records))
            lines = []
            for (moment, invocation), event_id in zip(records, ids, strict=True):
                second = int(moment)
                stamp = times.get(second) or times.setdefault(second, inference_time(moment))
                lines.append(
                    orjson.dumps(capture_record(invocation, moment, self.capture, event_id, stamp))
                )
            key = capture_key(self._prefix, self.endpoint_name, self.variant_name, records[0][0],
                              event_ids(1)[0])  # fmt: skip
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=b"\n".join(lines) + b"\n")
            self.written_records += len(lines)
            self.written_files += 1

    def _put_metrics(self, batch: list[tuple[float, bool, Invocation]]) -> None:
        seconds: dict[int, _Second] = {}
        for moment, _, invocation in batch:
            totals = seconds.get(int(moment))
            if totals is None:
                totals = seconds[int(moment)] = _Second()
            totals.invocations += 1
            if 400 <= invocation.status < 500:
                totals.errors_4xx += 1
            elif invocation.status >= 500:
                totals.errors_5xx += 1
            model_us = invocation.model_ns / 1000
            overhead_us = (invocation.finished_ns - invocation.started_ns) / 1000 - model_us
            totals.model[latency_bin(model_us)] += 1
            totals.overhead[latency_bin(overhead_us)] += 1
        datums = metric_data(seconds, self._dimension_sets)
        for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
            self._cloudwatch.put_metric_data(
                Namespace=INVOCATION_NAMESPACE,
                MetricData=datums[start : start + MAX_DATUMS_PER_CALL],
            )


def observer_factory(settings: ServerSettings, model: PriceModel) -> CaptureObserver:
    """FREIGHT_INVOCATION_OBSERVER's factory: the observer from the hosting's variables."""
    import boto3

    environment = os.environ
    config_name = environment.get(ENV_ENDPOINT_CONFIG)
    if not config_name or not settings.endpoint_name:
        raise ValueError(f"{ENV_ENDPOINT_CONFIG} and the endpoint name must be set")
    capture_text = environment.get(ENV_CAPTURE_CONFIG)
    capture = CaptureSettings.from_config(orjson.loads(capture_text)) if capture_text else None
    routing = environment.get(ENV_ROUTING_FILE)
    router = LocalRouter(
        RoutingTable(Path(routing)) if routing else None,
        fault_percent=float(environment.get(ENV_FAULT_PERCENT) or 0),
    )
    session = boto3.Session()
    endpoint_url = environment.get("AWS_ENDPOINT_URL")
    observer = CaptureObserver(
        endpoint_name=settings.endpoint_name,
        endpoint_config_name=config_name,
        variant_name=environment.get(ENV_VARIANT) or VARIANT_NAME,
        s3=session.client("s3", endpoint_url=endpoint_url),
        cloudwatch=session.client("cloudwatch", endpoint_url=endpoint_url),
        capture=capture,
        router=router,
        flush_seconds=float(environment.get(ENV_FLUSH_SECONDS) or DEFAULT_FLUSH_SECONDS),
    )
    # The flusher gives the GIL back to the event loop within 1 ms (default 5 ms): capture
    # then adds little to a request's latency.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    ready = environment.get(ENV_READY_DIR)
    if ready:
        # The hosting service counts these: a worker that wrote one has its model loaded.
        (Path(ready) / str(os.getpid())).touch()
    return observer
