"""The serving dashboard: one graph per health alarm, against its threshold, and alarm states."""

from __future__ import annotations

from dataclasses import replace

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from cdk_app.constructs.endpoint_alarms import EndpointAlarms, metric_of, rate_expression
from stages.serving import AlarmSpec

# Latency graphs show the median next to the p99 the alarm watches.
LATENCY_METRICS = ("ModelLatency", "OverheadLatency")
GRAPH_WIDTH = 8
GRAPHS_PER_ROW = 24 // GRAPH_WIDTH
GRAPH_HEIGHT = 6


def graphed_metrics(spec: AlarmSpec) -> list[cloudwatch.IMetric]:
    """What the graph of ``spec`` draws: its metric or rate, unrestricted by business hours."""
    period = Duration.seconds(spec.period_seconds)
    if spec.rate is not None:
        return [rate_expression(spec.rate, period, spec.description)]
    assert spec.metric is not None  # AlarmSpec holds exactly one of metric and rate
    drawn: list[cloudwatch.IMetric] = [
        metric_of(spec.metric, period, f"{spec.metric.name} {spec.metric.statistic}")
    ]
    if spec.metric.name in LATENCY_METRICS:
        median = replace(spec.metric, statistic="p50")
        drawn.insert(0, metric_of(median, period, f"{spec.metric.name} p50"))
    return drawn


class ServingDashboard(Construct):
    """A CloudWatch dashboard named ``dashboard_name`` over the endpoint's alarms."""

    def __init__(
        self, scope: Construct, id_: str, *, dashboard_name: str, alarms: EndpointAlarms
    ) -> None:
        super().__init__(scope, id_)
        health = [spec for spec in alarms.specs if not spec.rollback]
        graphs: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title=spec.description, left=graphed_metrics(spec),
                left_annotations=[cloudwatch.HorizontalAnnotation(
                    value=spec.threshold, label=f"alarm {spec.name}")],
                width=GRAPH_WIDTH, height=GRAPH_HEIGHT,
            )
            for spec in health
        ]  # fmt: skip
        status = cloudwatch.AlarmStatusWidget(
            title="Endpoint alarms", alarms=[alarms.composite, *alarms.alarms.values()],
            width=24, height=4,
        )  # fmt: skip
        rows = [graphs[i : i + GRAPHS_PER_ROW] for i in range(0, len(graphs), GRAPHS_PER_ROW)]
        self.dashboard = cloudwatch.Dashboard(
            self, "Default", dashboard_name=dashboard_name, widgets=[[status], *rows]
        )
