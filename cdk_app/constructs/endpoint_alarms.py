"""The endpoint's CloudWatch alarms, made from stages.serving's AlarmSpecs, and their health alarm.

The specs are the one definition: local mode evaluates the same ones. This module only
translates each field into CloudWatch's terms; it decides no threshold or period of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from stages.names import ResourceNames
from stages.serving import (
    FILLED_EXPRESSION,
    RATE_EXPRESSION,
    AlarmSpec,
    BusinessHours,
    MetricSpec,
    ServingConfig,
    business_hours_expression,
    endpoint_alarms,
)


def enum_member(value: str) -> str:
    """A CloudFormation value (``GreaterThanThreshold``) as its CDK enum member's name."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", value).upper()


def metric_of(spec: MetricSpec, period: Duration, label: str | None = None) -> cloudwatch.Metric:
    """``spec`` as a CloudWatch metric over ``period``."""
    return cloudwatch.Metric(
        namespace=spec.namespace, metric_name=spec.name, statistic=spec.statistic,
        dimensions_map=spec.dimension_map(), period=period, label=label,
    )  # fmt: skip


def rate_expression(
    rate: tuple[MetricSpec, MetricSpec], period: Duration, label: str
) -> cloudwatch.MathExpression:
    """``100 * numerator / denominator``; 0 where the denominator is 0 or missing (no traffic)."""
    numerator, denominator = rate
    return cloudwatch.MathExpression(
        expression=RATE_EXPRESSION,
        using_metrics={"numerator": metric_of(numerator, period),
                       "denominator": metric_of(denominator, period)},
        period=period, label=label,
    )  # fmt: skip


def business_hours_metric(
    spec: AlarmSpec, inner: cloudwatch.IMetric, hours: BusinessHours, period: Duration
) -> cloudwatch.MathExpression:
    """``inner`` (missing points as 0) in business hours, a quiet value outside them."""
    filled = cloudwatch.MathExpression(
        expression=FILLED_EXPRESSION, using_metrics={"m": inner}, period=period
    )
    return cloudwatch.MathExpression(
        expression=business_hours_expression(spec, hours),
        using_metrics={"filled": filled}, period=period, label=spec.description,
    )  # fmt: skip


def alarm_metric(spec: AlarmSpec, hours: BusinessHours) -> cloudwatch.IMetric:
    """What the alarm of ``spec`` watches: its metric, its rate, restricted to business hours."""
    period = Duration.seconds(spec.period_seconds)
    watched: cloudwatch.IMetric
    if spec.rate is not None:
        watched = rate_expression(spec.rate, period, spec.description)
    else:
        assert spec.metric is not None  # AlarmSpec holds exactly one of metric and rate
        watched = metric_of(spec.metric, period, spec.description)
    if spec.business_hours_only:
        return business_hours_metric(spec, watched, hours, period)
    return watched


@dataclass(frozen=True, kw_only=True)
class EndpointAlarmsProps:
    """The stage's names and serving limits, the endpoint configuration's name, the topic."""

    names: ResourceNames
    serving: ServingConfig
    # The (generated) name of the configuration being deployed: rollback alarms watch its fleet.
    endpoint_config_name: str
    topic: sns.ITopic


class EndpointAlarms(Construct):
    """One CloudWatch alarm per spec (same name and limits), a composite, all to the topic.

    The composite (names.composite_alarm) is ALARM when any non-rollback alarm is; rollback
    alarms watch the new fleet during an update and belong to the deployment, not to health.
    """

    def __init__(self, scope: Construct, id_: str, *, props: EndpointAlarmsProps) -> None:
        super().__init__(scope, id_)
        names = props.names
        self.specs = endpoint_alarms(
            names.alarm_prefix, names.endpoint, props.serving,
            endpoint_config_name=props.endpoint_config_name,
        )  # fmt: skip
        action = actions.SnsAction(props.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for spec in self.specs:
            alarm = cloudwatch.Alarm(
                self, spec.name.removeprefix(f"{names.alarm_prefix}-"),
                alarm_name=spec.name, alarm_description=spec.description,
                metric=alarm_metric(spec, props.serving.business_hours),
                threshold=spec.threshold,
                comparison_operator=cloudwatch.ComparisonOperator[enum_member(spec.comparison)],
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.datapoints_to_alarm,
                treat_missing_data=cloudwatch.TreatMissingData[enum_member(spec.treat_missing_data)],
            )  # fmt: skip
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[spec.name] = alarm
        self.rollback = {s.name: self.alarms[s.name] for s in self.specs if s.rollback}
        health = [self.alarms[s.name] for s in self.specs if not s.rollback]
        self.composite = cloudwatch.CompositeAlarm(
            self, "Health", composite_alarm_name=names.composite_alarm,
            alarm_description=f"The endpoint {names.endpoint} is unhealthy (any of its alarms)",
            alarm_rule=cloudwatch.AlarmRule.any_of(
                *(cloudwatch.AlarmRule.from_alarm(a, cloudwatch.AlarmState.ALARM) for a in health)
            ),
        )  # fmt: skip
        self.composite.add_alarm_action(action)
        self.composite.add_ok_action(action)
