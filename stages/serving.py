"""The serving contract of a stage: endpoint settings, deployment policy and alarm definitions.

One owner for what the serving stack (CDK), the deployer (``ops.deploy``) and the local endpoint
(``local/``) must agree on: the endpoint configuration's capture and fleet, the blue/green
DeploymentConfig (in the API's shape, which CloudFormation takes with one key renamed), and every
alarm as a plain :class:`AlarmSpec` that CDK turns into CloudWatch alarms and the local endpoint
evaluates itself (the emulator stores alarms but never evaluates them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# SageMaker's endpoint metrics (per endpoint and variant) and instance metrics.
INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
# The one production variant of every endpoint: its name must stay stable across updates
# (autoscaling targets and alarms name it).
VARIANT_NAME = "AllTraffic"
TRAFFIC_ROUTING_TYPES = ("ALL_AT_ONCE", "CANARY")
# SageMaker's guardrails: the canary is at most half of the fleet.
MAX_CANARY_PERCENT = 50
# Instance types SageMaker hosting offers for this CPU model (a stage allows a subset).
HOSTING_INSTANCE_TYPE = re.compile(r"^ml\.[a-z][a-z0-9]*\.(large|[0-9]*xlarge)$")
# CloudWatch: ModelLatency and OverheadLatency are in microseconds.
MICROSECONDS_PER_MS = 1000
COMPARISONS = (
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
# The model's container environment: which registered package (and version) it serves.
ENV_MODEL_PACKAGE_ARN = "FREIGHT_MODEL_PACKAGE_ARN"
ENV_MODEL_VERSION = "FREIGHT_MODEL_VERSION"


@dataclass(frozen=True)
class BusinessHours:
    """When quotes are expected (UTC, Monday to Friday): no traffic then is an incident."""

    start_hour: int = 6
    end_hour: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.start_hour < self.end_hour <= 24:
            raise ValueError(
                f"business hours must satisfy 0 <= start_hour < end_hour <= 24, got "
                f"{self.start_hour}-{self.end_hour}"
            )

    def contains(self, weekday: int, hour: int) -> bool:
        """True for a UTC ``weekday`` (Monday 0) and ``hour`` inside business hours."""
        return weekday < 5 and self.start_hour <= hour < self.end_hour


@dataclass(frozen=True)
class ServingConfig:
    """The real-time endpoint of one stage: fleet, capture, updates, scaling and alarm limits."""

    instance_type: str = "ml.m5.large"
    allowed_instance_types: tuple[str, ...] = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge")
    initial_instance_count: int = 1
    # Autoscaling: target tracking on invocations per instance and minute.
    min_instances: int = 1
    max_instances: int = 4
    target_invocations_per_instance: int = 3000
    # Non-prod stages scale in to min_instances outside business hours.
    scale_in_outside_business_hours: bool = True
    business_hours: BusinessHours = field(default_factory=BusinessHours)
    # Data capture of requests and responses (both content types the endpoint speaks).
    capture_sampling_percent: int = 100
    # Blue/green updates: ALL_AT_ONCE then a bake, or a canary share first.
    traffic_routing: str = "ALL_AT_ONCE"
    canary_percent: int = 10
    bake_seconds: int = 300
    termination_wait_seconds: int = 120
    # Alarm limits.
    latency_sla_ms: float = 50.0
    overhead_latency_ms: float = 20.0
    max_5xx_percent: float = 1.0
    max_4xx_percent: float = 10.0
    max_cpu_percent: float = 80.0
    max_memory_percent: float = 80.0
    max_disk_percent: float = 80.0
    alarm_period_seconds: int = 60
    alarm_evaluation_periods: int = 3
    alarm_datapoints_to_alarm: int = 2

    def __post_init__(self) -> None:
        for name in ("instance_type", *(f"allowed:{t}" for t in self.allowed_instance_types)):
            value = self.instance_type if name == "instance_type" else name.split(":", 1)[1]
            if not HOSTING_INSTANCE_TYPE.fullmatch(value):
                raise ValueError(f"serving.{name.split(':')[0]}: {value!r} is no hosting type")
        if self.instance_type not in self.allowed_instance_types:
            raise ValueError(
                f"serving.instance_type {self.instance_type!r} is not in allowed_instance_types "
                f"({', '.join(self.allowed_instance_types)})"
            )
        if not 1 <= self.min_instances <= self.initial_instance_count <= self.max_instances:
            raise ValueError(
                "serving: need 1 <= min_instances <= initial_instance_count <= max_instances, got "
                f"{self.min_instances}, {self.initial_instance_count}, {self.max_instances}"
            )
        if not 0 <= self.capture_sampling_percent <= 100:
            raise ValueError(
                "serving.capture_sampling_percent must be 0-100, got "
                f"{self.capture_sampling_percent}"
            )
        if self.traffic_routing not in TRAFFIC_ROUTING_TYPES:
            raise ValueError(
                f"serving.traffic_routing must be one of {', '.join(TRAFFIC_ROUTING_TYPES)}, got "
                f"{self.traffic_routing!r}"
            )
        if not 1 <= self.canary_percent <= MAX_CANARY_PERCENT:
            raise ValueError(
                f"serving.canary_percent must be 1-{MAX_CANARY_PERCENT}, got {self.canary_percent}"
            )
        for name in ("bake_seconds", "termination_wait_seconds"):
            if not 0 <= getattr(self, name) <= 3600:
                raise ValueError(f"serving.{name} must be 0-3600, got {getattr(self, name)}")
        for name in ("target_invocations_per_instance", "alarm_period_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"serving.{name} must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.alarm_datapoints_to_alarm <= self.alarm_evaluation_periods:
            raise ValueError(
                "serving: need 1 <= alarm_datapoints_to_alarm <= alarm_evaluation_periods"
            )

    @property
    def canary(self) -> bool:
        """True when updates send a canary share first."""
        return self.traffic_routing == "CANARY"

    def check_instance_type(self, instance_type: str) -> str:
        """``instance_type`` if the stage allows it, else ValueError naming the allowed ones."""
        if instance_type not in self.allowed_instance_types:
            raise ValueError(
                f"instance type {instance_type!r} is not allowed for this stage; allowed: "
                f"{', '.join(self.allowed_instance_types)}"
            )
        return instance_type


def deployment_config(serving: ServingConfig, rollback_alarms: list[str]) -> dict[str, Any]:
    """The endpoint's DeploymentConfig, as UpdateEndpoint takes it.

    CloudFormation's ``AWS::SageMaker::Endpoint`` takes the same structure and keys (its schema
    calls the rollback *type* ``AutoRollbackConfig``, the key is ``AutoRollbackConfiguration``).
    """
    routing: dict[str, Any] = {
        "Type": serving.traffic_routing,
        "WaitIntervalInSeconds": serving.bake_seconds,
    }
    if serving.canary:
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": serving.canary_percent}
    timeout = 2 * serving.bake_seconds + serving.termination_wait_seconds + 1800
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": serving.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": max(600, min(timeout, 14_400)),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in rollback_alarms]},
    }


def data_capture_config(
    serving: ServingConfig,
    destination_uri: str,
    kms_key_id: str | None,
    content_types: tuple[str, ...],
) -> dict[str, Any]:
    """The endpoint configuration's DataCaptureConfig (API and CloudFormation spell it alike).

    ``content_types``: JSON ones are captured as text, CSV ones as CSV (the rest base64).
    """
    config: dict[str, Any] = {
        "EnableCapture": serving.capture_sampling_percent > 0,
        "InitialSamplingPercentage": serving.capture_sampling_percent,
        "DestinationS3Uri": destination_uri,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "JsonContentTypes": [t for t in content_types if t.endswith("json")],
            "CsvContentTypes": [t for t in content_types if t.endswith("csv")],
        },
    }
    if kms_key_id:
        config["KmsKeyId"] = kms_key_id
    return config


Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MetricSpec:
    """One CloudWatch metric with its statistic (``Sum``, ``Average``, ``Maximum``, ``p99``)."""

    namespace: str
    name: str
    statistic: str
    dimensions: Dimensions

    def dimension_map(self) -> dict[str, str]:
        """The dimensions as a dict."""
        return dict(self.dimensions)


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: a metric, or ``100 * numerator / denominator`` (a rate), against a threshold.

    ``rollback``: the alarm watches the new fleet during a blue/green update and rolls it back.
    """

    name: str
    description: str
    threshold: float
    comparison: str
    metric: MetricSpec | None = None
    rate: tuple[MetricSpec, MetricSpec] | None = None
    period_seconds: int = 60
    evaluation_periods: int = 3
    datapoints_to_alarm: int = 2
    treat_missing_data: str = "notBreaching"
    rollback: bool = False
    business_hours_only: bool = False

    def __post_init__(self) -> None:
        if (self.metric is None) == (self.rate is None):
            raise ValueError(f"alarm {self.name}: give exactly one of metric and rate")
        if self.comparison not in COMPARISONS:
            raise ValueError(f"alarm {self.name}: comparison {self.comparison!r} is unknown")
        if self.treat_missing_data not in MISSING_DATA:
            raise ValueError(f"alarm {self.name}: treat_missing_data {self.treat_missing_data!r}")

    def metrics(self) -> tuple[MetricSpec, ...]:
        """Every metric the alarm reads."""
        return (self.metric,) if self.metric is not None else self.rate or ()

    def breaches(self, value: float) -> bool:
        """True when ``value`` is on the alarming side of the threshold."""
        if self.comparison == "GreaterThanThreshold":
            return value > self.threshold
        if self.comparison == "GreaterThanOrEqualToThreshold":
            return value >= self.threshold
        if self.comparison == "LessThanThreshold":
            return value < self.threshold
        return value <= self.threshold


def endpoint_alarms(
    alarm_prefix: str,
    endpoint_name: str,
    serving: ServingConfig,
    endpoint_config_name: str | None = None,
) -> list[AlarmSpec]:
    """Every alarm of an endpoint; names start with ``alarm_prefix``.

    With ``endpoint_config_name`` the rollback alarms watch only that (new) fleet, through the
    ``EndpointConfigName`` dimension SageMaker adds during blue/green updates; without it they
    watch the variant as a whole.
    """
    variant: Dimensions = (("EndpointName", endpoint_name), ("VariantName", VARIANT_NAME))
    fleet: Dimensions = variant
    if endpoint_config_name:
        fleet = (*variant, ("EndpointConfigName", endpoint_config_name))

    def invocation(name: str, statistic: str, dimensions: Dimensions = variant) -> MetricSpec:
        return MetricSpec(INVOCATION_NAMESPACE, name, statistic, dimensions)

    def share(errors: str, dimensions: Dimensions = variant) -> tuple[MetricSpec, MetricSpec]:
        return invocation(errors, "Sum", dimensions), invocation("Invocations", "Sum", dimensions)

    def instance(name: str) -> MetricSpec:
        return MetricSpec(INSTANCE_NAMESPACE, name, "Average", variant)

    def alarm(suffix: str, description: str, threshold: float, **kwargs: Any) -> AlarmSpec:
        periods = {
            "period_seconds": serving.alarm_period_seconds,
            "evaluation_periods": serving.alarm_evaluation_periods,
            "datapoints_to_alarm": serving.alarm_datapoints_to_alarm,
            "comparison": "GreaterThanThreshold",
        }
        return AlarmSpec(
            f"{alarm_prefix}-{suffix}", description, threshold, **{**periods, **kwargs}
        )

    sla_us = serving.latency_sla_ms * MICROSECONDS_PER_MS
    return [
        alarm("new-fleet-5xx", "5xx share of the new fleet's invocations (%)",
              serving.max_5xx_percent, rate=share("Invocation5XXErrors", fleet), rollback=True),
        alarm("new-fleet-latency", "p99 ModelLatency of the new fleet against the SLA (us)",
              sla_us, metric=invocation("ModelLatency", "p99", fleet), rollback=True),
        alarm("latency-p99", "p99 ModelLatency against the SLA (us)", sla_us,
              metric=invocation("ModelLatency", "p99")),
        alarm("overhead-latency", "p99 OverheadLatency (us)",
              serving.overhead_latency_ms * MICROSECONDS_PER_MS,
              metric=invocation("OverheadLatency", "p99")),
        alarm("5xx-rate", "5xx share of invocations (%)", serving.max_5xx_percent,
              rate=share("Invocation5XXErrors")),
        alarm("4xx-rate", "4xx share of invocations (%): callers sending bad loads",
              serving.max_4xx_percent, rate=share("Invocation4XXErrors")),
        alarm("cpu", "CPU utilisation (% of one core, summed over cores)",
              serving.max_cpu_percent, metric=instance("CPUUtilization")),
        alarm("memory", "memory utilisation (%)", serving.max_memory_percent,
              metric=instance("MemoryUtilization")),
        alarm("disk", "disk utilisation (%)", serving.max_disk_percent,
              metric=instance("DiskUtilization")),
        alarm("no-invocations", "no quotes asked for in business hours", 1,
              comparison="LessThanThreshold", metric=invocation("Invocations", "Sum"),
              period_seconds=900, evaluation_periods=2, datapoints_to_alarm=2,
              treat_missing_data="breaching", business_hours_only=True),
    ]  # fmt: skip


# -- the alarms' metric math (CloudWatch's, as the stack deploys it and local mode evaluates it) --
# A rate: 0 % where the denominator is 0 or missing (no traffic is no error rate).
RATE_EXPRESSION = "IF(FILL(denominator, 0) > 0, 100 * FILL(numerator, 0) / denominator, 0)"
# Missing points as 0 first: with no data at all, DAY() and HOUR() would have no points to look
# at, and a "missing is breaching" alarm would fire at night.
FILLED_EXPRESSION = "FILL(m, 0)"
# CloudWatch's DAY() is 1 (Monday) to 7 (Sunday); HOUR() is the UTC hour.
LAST_BUSINESS_DAY = 5


def quiet_value(spec: AlarmSpec) -> float:
    """A value on the non-alarming side of ``spec``'s threshold."""
    for value in (spec.threshold, spec.threshold + 1, spec.threshold - 1):
        if not spec.breaches(value):
            return value
    raise ValueError(f"alarm {spec.name}: no value is quiet")


def business_hours_expression(spec: AlarmSpec, hours: BusinessHours) -> str:
    """``filled`` (:data:`FILLED_EXPRESSION`) in business hours, a quiet value outside them."""
    when = (
        f"DAY(filled) <= {LAST_BUSINESS_DAY} AND HOUR(filled) >= {hours.start_hour} "
        f"AND HOUR(filled) < {hours.end_hour}"
    )
    return f"IF({when}, filled, {quiet_value(spec):g})"


def rollback_alarms(alarms: list[AlarmSpec]) -> list[AlarmSpec]:
    """The alarms that roll a blue/green update back."""
    return [alarm for alarm in alarms if alarm.rollback]
