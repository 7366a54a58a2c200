"""The local alarm evaluator: CloudWatch's rules on synthetic datapoints, and one round in moto."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from local.alarms import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    Entry,
    datapoint,
    decide,
    evaluate,
    period_starts,
    put_alarms,
    statistic,
)
from local.embedded_aws import EmbeddedAws, embedded_aws
from local.market_data import LOCAL_NAMES
from stages.serving import (
    INVOCATION_NAMESPACE,
    AlarmSpec,
    BusinessHours,
    MetricSpec,
    ServingConfig,
    endpoint_alarms,
)

DIMENSIONS = (("EndpointName", "prices"), ("VariantName", "AllTraffic"))
LATENCY = MetricSpec(INVOCATION_NAMESPACE, "ModelLatency", "p99", DIMENSIONS)
ERRORS = MetricSpec(INVOCATION_NAMESPACE, "Invocation5XXErrors", "Sum", DIMENSIONS)
INVOCATIONS = MetricSpec(INVOCATION_NAMESPACE, "Invocations", "Sum", DIMENSIONS)
# A Tuesday, 10:00 UTC: inside business hours.
TUESDAY = dt.datetime(2026, 3, 3, 10, 0, 0, tzinfo=dt.UTC)
SATURDAY = dt.datetime(2026, 3, 7, 10, 0, 0, tzinfo=dt.UTC)


def _alarm(**changes: Any) -> AlarmSpec:
    base = AlarmSpec(
        name="latency", description="p99", threshold=100.0, comparison="GreaterThanThreshold",
        metric=LATENCY, period_seconds=60, evaluation_periods=3, datapoints_to_alarm=2,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def _state(
    spec: AlarmSpec, values: list[float | None], when: dt.datetime = TUESDAY, **kw: Any
) -> str:
    starts = period_starts(when, spec.period_seconds, len(values))
    return decide(spec, values, starts, **kw)[0]


@pytest.mark.parametrize(
    ("comparison", "breaching_at_threshold", "breaching_above"),
    [
        ("GreaterThanThreshold", False, True),
        ("GreaterThanOrEqualToThreshold", True, True),
        ("LessThanThreshold", False, False),
        ("LessThanOrEqualToThreshold", True, False),
    ],
)
def test_each_comparison_breaches_on_its_side_of_the_threshold(
    comparison: str, breaching_at_threshold: bool, breaching_above: bool
) -> None:
    spec = _alarm(comparison=comparison, evaluation_periods=1, datapoints_to_alarm=1)
    assert (_state(spec, [100.0]) == ALARM) is breaching_at_threshold
    assert (_state(spec, [150.0]) == ALARM) is breaching_above
    assert (_state(spec, [50.0]) == ALARM) is (not breaching_above)


def test_m_out_of_n_needs_m_breaching_datapoints_in_the_last_n() -> None:
    spec = _alarm()
    assert _state(spec, [150.0, 10.0, 150.0]) == ALARM
    assert _state(spec, [150.0, 10.0, 10.0]) == OK
    assert _state(dataclasses.replace(spec, datapoints_to_alarm=3), [150.0, 10.0, 150.0]) == OK


@pytest.mark.parametrize(
    ("treat", "all_missing", "one_breaching_two_missing"),
    [
        ("notBreaching", OK, OK),
        ("breaching", ALARM, ALARM),
        ("missing", INSUFFICIENT_DATA, OK),
        ("ignore", "previous", OK),
    ],
)
def test_missing_data_is_treated_as_configured(
    treat: str, all_missing: str, one_breaching_two_missing: str
) -> None:
    spec = _alarm(treat_missing_data=treat)
    expected = ALARM if all_missing == "previous" else all_missing
    assert _state(spec, [None, None, None], previous_state=ALARM) == expected
    assert _state(spec, [None, 150.0, None]) == one_breaching_two_missing


def test_a_rate_without_invocations_is_zero() -> None:
    class Store:
        def __init__(self, data: dict[str, list[Entry]]) -> None:
            self.data = data

        def entries(self, metric: MetricSpec, start: dt.datetime, end: dt.datetime) -> list[Entry]:
            return self.data.get(metric.name, [])

    spec = _alarm(metric=None, rate=(ERRORS, INVOCATIONS), threshold=1.0)
    start, end = TUESDAY, TUESDAY + dt.timedelta(minutes=1)
    # As the stack's metric math: IF(FILL(denominator, 0) > 0, ..., 0).
    assert datapoint(spec, Store({}), start, end) == 0.0
    assert datapoint(spec, Store({"Invocations": [(0.0, 0.0, 0.0, 0.0)]}), start, end) == 0.0
    no_errors = Store({"Invocations": [(50.0, 50.0, 1.0, 1.0)]})
    assert datapoint(spec, no_errors, start, end) == 0.0
    some = Store(
        {"Invocations": [(50.0, 50.0, 1.0, 1.0)], "Invocation5XXErrors": [(5.0, 50.0, 0.0, 1.0)]}
    )
    assert datapoint(spec, some, start, end) == 10.0


def test_a_business_hours_alarm_is_quiet_outside_them() -> None:
    serving = ServingConfig()
    quiet = next(a for a in endpoint_alarms("x", "prices", serving) if a.business_hours_only)
    assert quiet.treat_missing_data == "breaching"
    # Periods of 15 minutes ending by 10:00: inside business hours on Tuesday.
    assert _state(quiet, [None, None]) == ALARM
    assert _state(quiet, [0.0, 0.0]) == ALARM
    assert _state(quiet, [5.0, 3.0]) == OK
    assert _state(quiet, [None, None], when=SATURDAY) == OK
    early = TUESDAY.replace(hour=5)
    assert _state(quiet, [None, None], when=early, business_hours=BusinessHours(6, 20)) == OK


def test_statistics_come_from_the_published_bins() -> None:
    # 98 requests at 100 us, one at 200 us, one at 5,000 us: p99 is the 99th value.
    bins: list[Entry] = [(9_800.0, 98.0, 100.0, 100.0), (200.0, 1.0, 200.0, 200.0),
                         (5_000.0, 1.0, 5_000.0, 5_000.0)]  # fmt: skip
    assert statistic(bins, "p99") == 200.0
    assert statistic(bins, "p50") == 100.0
    assert statistic(bins, "p100") == 5_000.0
    assert statistic(bins, "Sum") == 15_000.0
    assert statistic(bins, "SampleCount") == 100.0
    assert statistic(bins, "Average") == 150.0
    assert statistic(bins, "Maximum") == 5_000.0
    assert statistic([], "p99") is None


def test_periods_are_whole_and_already_over() -> None:
    starts = period_starts(TUESDAY + dt.timedelta(seconds=75), 60, 3)
    assert starts == [TUESDAY - dt.timedelta(minutes=2), TUESDAY - dt.timedelta(minutes=1), TUESDAY]


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with embedded_aws(LOCAL_NAMES, threaded_server=False, environment={}) as embedded:
        yield embedded


def test_an_evaluation_records_the_state_in_cloudwatch(aws: EmbeddedAws) -> None:
    cloudwatch = aws.client("cloudwatch")
    serving = ServingConfig(alarm_period_seconds=60)
    specs = endpoint_alarms("local-test", "prices", serving, "config-2")
    rate = next(spec for spec in specs if spec.name == "local-test-new-fleet-5xx")
    assert put_alarms(cloudwatch, specs) == [spec.name for spec in specs]
    stored = cloudwatch.describe_alarms(AlarmNames=[rate.name])["MetricAlarms"][0]
    assert {metric["Id"] for metric in stored["Metrics"]} == {"rate", "numerator", "denominator"}
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    assert rate.rate is not None
    dimensions = [{"Name": k, "Value": v} for k, v in rate.rate[0].dimensions]
    for minutes in (1, 2):
        when = now - dt.timedelta(minutes=minutes)
        cloudwatch.put_metric_data(Namespace=INVOCATION_NAMESPACE, MetricData=[
            {"MetricName": "Invocations", "Dimensions": dimensions, "Timestamp": when,
             "StatisticValues": {"SampleCount": 10, "Sum": 10, "Minimum": 1, "Maximum": 1}},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dimensions, "Timestamp": when,
             "StatisticValues": {"SampleCount": 10, "Sum": 4, "Minimum": 0, "Maximum": 1}},
        ])  # fmt: skip
    result = evaluate(cloudwatch, rate, now + dt.timedelta(seconds=1))
    assert result.state == ALARM
    assert result.values == (0.0, 40.0, 40.0)
    stored = cloudwatch.describe_alarms(AlarmNames=[rate.name])["MetricAlarms"][0]
    assert stored["StateValue"] == ALARM
    assert "40" in stored["StateReason"]
    assert "threshold (1)" in stored["StateReason"]
    # The variant-wide alarm does not see the fleet's datums (exact dimensions, unlike moto).
    variant_rate = next(spec for spec in specs if spec.name == "local-test-5xx-rate")
    assert evaluate(cloudwatch, variant_rate, now + dt.timedelta(seconds=1)).values == (0.0,) * 3
    quiet = next(spec for spec in specs if spec.business_hours_only)
    stored = cloudwatch.describe_alarms(AlarmNames=[quiet.name])["MetricAlarms"][0]
    expressions = {metric["Id"]: metric.get("Expression") for metric in stored["Metrics"]}
    assert expressions["filled"] == "FILL(m, 0)"
    assert expressions["alarm"].startswith("IF(DAY(filled) <= 5 AND HOUR(filled) >= 6")
