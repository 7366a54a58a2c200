"""Our own evaluator of the endpoint's alarms: the emulator stores alarms but never evaluates them.

``put_alarms`` stores :class:`stages.serving.AlarmSpec` alarms in the embedded CloudWatch (so
``describe_alarms`` lists them; rates as metric math). ``evaluate`` applies one alarm to the
metrics the local endpoint published, as CloudWatch would (period, M out of N, comparison,
missing data, business hours) and records the state with ``set_alarm_state``.

Checked against moto 5.2: it returns no value for percentile statistics and matches dimensions
as a subset (a query on EndpointName+VariantName also sums the datums that carry
EndpointConfigName too), so the evaluator reads the published datums from the embedded
CloudWatch's store (in this process: the threaded server runs here) and aggregates them with
CloudWatch's exact-dimension semantics (a percentile: nearest rank over the values, which
local.capture publishes binned to 1 %).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from local.embedded_aws import LOCAL_ACCOUNT, LOCAL_REGION
from stages.serving import (
    FILLED_EXPRESSION,
    RATE_EXPRESSION,
    AlarmSpec,
    BusinessHours,
    MetricSpec,
    business_hours_expression,
)

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"
_COMPARISON_TEXT = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
# One published entry: (sum, sample count, minimum, maximum).
Entry = tuple[float, float, float, float]


class MetricStore(Protocol):
    """Where the evaluator reads published datums from."""

    def entries(self, metric: MetricSpec, start: dt.datetime, end: dt.datetime) -> list[Entry]:
        """Every datum of ``metric`` (exact dimensions) with start <= timestamp < end."""


class MotoMetrics:
    """The embedded CloudWatch's stored datums (moto running in this process)."""

    def __init__(self, region: str = LOCAL_REGION, account: str = LOCAL_ACCOUNT) -> None:
        self.region = region
        self.account = account

    def entries(self, metric: MetricSpec, start: dt.datetime, end: dt.datetime) -> list[Entry]:
        """See :class:`MetricStore`."""
        from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum, cloudwatch_backends

        backend = cloudwatch_backends[self.account][self.region]
        wanted = set(metric.dimensions)
        found: list[Entry] = []
        for datum in list(backend.metric_data):
            if datum.namespace != metric.namespace or datum.name != metric.name:
                continue
            if {(d.name, d.value) for d in datum.dimensions} != wanted:
                continue
            if not start <= _aware(datum.timestamp) < end:
                continue
            if isinstance(datum, MetricAggregatedDatum):
                found.append((datum.sum, datum.sample_count, datum.min, datum.max))
            elif isinstance(datum, MetricDatum):
                found.append((datum.value, 1.0, datum.value, datum.value))
        return found


def _aware(timestamp: Any) -> dt.datetime:
    if isinstance(timestamp, str):
        timestamp = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if isinstance(timestamp, int | float):
        return dt.datetime.fromtimestamp(timestamp, dt.UTC)
    value: dt.datetime = timestamp
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def statistic(entries: Sequence[Entry], name: str) -> float | None:
    """CloudWatch's statistic ``name`` (Sum, SampleCount, Average, Minimum, Maximum, pNN)."""
    if not entries:
        return None
    count = sum(entry[1] for entry in entries)
    if name == "Sum":
        return sum(entry[0] for entry in entries)
    if name == "SampleCount":
        return count
    if name == "Average":
        return sum(entry[0] for entry in entries) / count if count else None
    if name == "Minimum":
        return min(entry[2] for entry in entries)
    if name == "Maximum":
        return max(entry[3] for entry in entries)
    if name.startswith("p"):
        # Nearest rank over the values (a statistic set with min < max counts at its mean).
        rank = math.ceil(float(name[1:]) / 100 * count)
        seen = 0.0
        for total, samples, low, high in sorted(entries, key=lambda e: e[0] / e[1]):
            seen += samples
            if seen >= rank:
                return low if low == high else total / samples
        return max(entry[3] for entry in entries)
    raise ValueError(f"statistic {name!r} is not supported")


def period_starts(now: dt.datetime, period_seconds: int, count: int) -> list[dt.datetime]:
    """The starts of the last ``count`` whole periods that ended by ``now``, oldest first."""
    epoch = now.timestamp()
    last_end = math.floor(epoch / period_seconds) * period_seconds
    return [
        dt.datetime.fromtimestamp(last_end - (count - index) * period_seconds, dt.UTC)
        for index in range(count)
    ]


def datapoint(
    spec: AlarmSpec, store: MetricStore, start: dt.datetime, end: dt.datetime
) -> float | None:
    """The alarm's value over one period: the metric's statistic, or the rate in percent.

    A rate is 0 % without invocations (the stack's ``RATE_EXPRESSION``), never missing.
    """
    if spec.metric is not None:
        return statistic(store.entries(spec.metric, start, end), spec.metric.statistic)
    assert spec.rate is not None
    numerator, denominator = spec.rate
    invocations = statistic(store.entries(denominator, start, end), "Sum") or 0.0
    if invocations <= 0:
        return 0.0
    errors = statistic(store.entries(numerator, start, end), "Sum") or 0.0
    return 100.0 * errors / invocations


@dataclass(frozen=True)
class AlarmEvaluation:
    """One evaluation: the state, CloudWatch-style reason and the datapoints (oldest first)."""

    name: str
    state: str
    reason: str
    values: tuple[float | None, ...]


def decide(
    spec: AlarmSpec,
    values: Sequence[float | None],
    starts: Sequence[dt.datetime],
    previous_state: str = INSUFFICIENT_DATA,
    business_hours: BusinessHours | None = None,
) -> tuple[str, str]:
    """The state CloudWatch gives ``values`` (the last N periods) and its reason.

    Missing datapoints follow ``treat_missing_data``: ``breaching`` and ``notBreaching`` fill
    them; ``ignore`` and ``missing`` leave them out (all missing: ``ignore`` keeps the previous
    state, ``missing`` gives INSUFFICIENT_DATA). A ``business_hours_only`` alarm sees its
    metric with missing points as 0 inside business hours, a quiet value outside (the stack's
    metric math), so it never has missing data.
    """
    hours = business_hours or BusinessHours()
    if spec.business_hours_only:
        values = [0.0 if value is None else value for value in values]
    marks: list[bool | None] = []
    for value, start in zip(values, starts, strict=True):
        if spec.business_hours_only and not hours.contains(start.weekday(), start.hour):
            marks.append(False)
        elif value is None:
            marks.append(None)
        else:
            marks.append(spec.breaches(value))
    shown = ", ".join(
        f"{'missing' if v is None else f'{v:g}'} ({s:%d/%m/%y %H:%M:%S})"
        for v, s in zip(values, starts, strict=True)
    )
    side = _COMPARISON_TEXT[spec.comparison]
    if all(mark is None for mark in marks):
        treat = spec.treat_missing_data
        if treat == "missing":
            return INSUFFICIENT_DATA, f"Insufficient Data: {len(marks)} datapoints were missing."
        if treat == "ignore":
            return previous_state, "No datapoints: the state is kept (missing data ignored)."
        state = ALARM if treat == "breaching" and spec.datapoints_to_alarm <= len(marks) else OK
        return state, (
            f"Threshold Crossed: no datapoints were received for {len(marks)} periods and "
            f"{len(marks)} missing datapoints were treated as [{treat}]."
        )
    if spec.treat_missing_data == "breaching":
        marks = [True if mark is None else mark for mark in marks]
    breaching = sum(1 for mark in marks if mark)
    counted = sum(1 for mark in marks if mark is not None)
    state = ALARM if breaching >= spec.datapoints_to_alarm else OK
    reason = (
        f"Threshold Crossed: {breaching} out of the last {counted} datapoints [{shown}] were "
        f"{side} the threshold ({spec.threshold:g}) (minimum {spec.datapoints_to_alarm} "
        "datapoints for OK -> ALARM transition)."
    )
    return state, reason


def evaluate(
    cloudwatch: Any,
    spec: AlarmSpec,
    now: dt.datetime,
    *,
    store: MetricStore | None = None,
    business_hours: BusinessHours | None = None,
) -> AlarmEvaluation:
    """Evaluate ``spec`` at ``now`` over the published metrics; record the state if it changed."""
    store = store or MotoMetrics()
    starts = period_starts(now, spec.period_seconds, spec.evaluation_periods)
    period = dt.timedelta(seconds=spec.period_seconds)
    values = tuple(datapoint(spec, store, start, start + period) for start in starts)
    alarms = cloudwatch.describe_alarms(AlarmNames=[spec.name]).get("MetricAlarms", [])
    previous = alarms[0]["StateValue"] if alarms else INSUFFICIENT_DATA
    state, reason = decide(spec, values, starts, previous, business_hours)
    if alarms and state != previous:
        cloudwatch.set_alarm_state(AlarmName=spec.name, StateValue=state, StateReason=reason[:1023])
    return AlarmEvaluation(spec.name, state, reason, values)


def _metric_stat(metric: MetricSpec, period: int, stat: str) -> dict[str, Any]:
    return {
        "Metric": {"Namespace": metric.namespace, "MetricName": metric.name,
                   "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions]},
        "Period": period, "Stat": stat,
    }  # fmt: skip


def alarm_request(spec: AlarmSpec, business_hours: BusinessHours | None = None) -> dict[str, Any]:
    """The PutMetricAlarm request of ``spec``, with the serving stack's metric math."""
    request: dict[str, Any] = {
        "AlarmName": spec.name,
        "AlarmDescription": spec.description,
        "Threshold": spec.threshold,
        "ComparisonOperator": spec.comparison,
        "EvaluationPeriods": spec.evaluation_periods,
        "DatapointsToAlarm": spec.datapoints_to_alarm,
        "TreatMissingData": spec.treat_missing_data,
    }
    if spec.business_hours_only:
        hours = business_hours or BusinessHours()
        request["Metrics"] = [
            {"Id": "alarm", "Expression": business_hours_expression(spec, hours),
             "Label": spec.description, "ReturnData": True},
            {"Id": "filled", "Expression": FILLED_EXPRESSION, "ReturnData": False},
            *_watched(spec, "m"),
        ]  # fmt: skip
        return request
    if spec.rate is not None:
        request["Metrics"] = _watched(spec, "rate")
        return request
    assert spec.metric is not None
    metric = spec.metric
    request |= {
        "Namespace": metric.namespace,
        "MetricName": metric.name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions],
        "Period": spec.period_seconds,
    }
    key = "ExtendedStatistic" if metric.statistic.startswith("p") else "Statistic"
    request[key] = metric.statistic
    return request


def _watched(spec: AlarmSpec, query_id: str) -> list[dict[str, Any]]:
    """The metric-math queries of what ``spec`` watches, the result named ``query_id``."""
    period = spec.period_seconds
    if spec.rate is not None:
        numerator, denominator = spec.rate
        return [
            {"Id": query_id, "Expression": RATE_EXPRESSION, "Label": spec.description,
             "ReturnData": query_id == "rate"},
            {"Id": "numerator", "MetricStat": _metric_stat(numerator, period, "Sum"),
             "ReturnData": False},
            {"Id": "denominator", "MetricStat": _metric_stat(denominator, period, "Sum"),
             "ReturnData": False},
        ]  # fmt: skip
    assert spec.metric is not None
    return [{"Id": query_id, "ReturnData": False,
             "MetricStat": _metric_stat(spec.metric, period, spec.metric.statistic)}]  # fmt: skip


def put_alarms(
    cloudwatch: Any, specs: Iterable[AlarmSpec], business_hours: BusinessHours | None = None
) -> list[str]:
    """Store the alarms in the (embedded) CloudWatch; their names."""
    names = []
    for spec in specs:
        cloudwatch.put_metric_alarm(**alarm_request(spec, business_hours))
        names.append(spec.name)
    return names
