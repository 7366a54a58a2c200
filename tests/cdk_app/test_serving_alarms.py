"""The serving alarms: one per stages.serving spec, the composite, the topic, the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import cx_api
from aws_cdk.assertions import Template

from cdk_app.constructs.endpoint_alarms import enum_member
from cdk_app.constructs.notifications import CLOUDWATCH_SERVICE
from stages.config import stage_configs
from stages.serving import COMPARISONS, MISSING_DATA, AlarmSpec, endpoint_alarms, quiet_value
from tests.cdk_app.conftest import ACCOUNT

STAGES = ("staging", "prod")
TOPIC = {"Fn::ImportValue": "FreightPricing-{stage}-MlPipeline:"
         "ExportsOutputRefNotifications872987081051AE19"}  # fmt: skip


def _specs(stage: str) -> list[AlarmSpec]:
    config = stage_configs(ACCOUNT)[stage]
    assert config.serving is not None
    names = config.names
    return endpoint_alarms(names.alarm_prefix, names.endpoint, config.serving, "config")


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


def _watched(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Each metric an alarm reads: name, statistic, period, dimensions (plain or in math)."""
    if "Metrics" not in alarm:
        return [
            {
                "name": alarm["MetricName"],
                "period": alarm["Period"],
                "stat": alarm.get("Statistic") or alarm["ExtendedStatistic"],
                "dimensions": {d["Name"]: d["Value"] for d in alarm["Dimensions"]},
            }
        ]
    return [{"name": m["MetricStat"]["Metric"]["MetricName"], "period": m["MetricStat"]["Period"],
             "stat": m["MetricStat"]["Stat"],
             "dimensions": {d["Name"]: d["Value"]
                            for d in m["MetricStat"]["Metric"]["Dimensions"]}}
            for m in alarm["Metrics"] if "MetricStat" in m]  # fmt: skip


def _returned(alarm: dict[str, Any]) -> dict[str, Any]:
    (returned,) = [m for m in alarm["Metrics"] if m.get("ReturnData", True)]
    return dict(returned)


@pytest.mark.parametrize("stage", STAGES)
def test_every_spec_is_an_alarm_with_its_limits(
    serving_templates: dict[str, Template], stage: str
) -> None:
    alarms = _alarms(serving_templates[stage])
    specs = _specs(stage)
    assert set(alarms) == {spec.name for spec in specs}
    for spec in specs:
        alarm = alarms[spec.name]
        assert alarm["Threshold"] == spec.threshold, spec.name
        assert alarm["ComparisonOperator"] == spec.comparison, spec.name
        assert alarm["EvaluationPeriods"] == spec.evaluation_periods, spec.name
        assert alarm["DatapointsToAlarm"] == spec.datapoints_to_alarm, spec.name
        assert alarm["TreatMissingData"] == spec.treat_missing_data, spec.name
        assert alarm["AlarmDescription"] == spec.description
        watched = _watched(alarm)
        assert {w["period"] for w in watched} == {spec.period_seconds}, spec.name
        assert [(w["name"], w["stat"]) for w in watched] == [
            (m.name, m.statistic) for m in spec.metrics()
        ]


def test_prod_limits_are_prods(serving_templates: dict[str, Template]) -> None:
    alarms = _alarms(serving_templates["prod"])
    assert alarms["freight-pricing-prod-endpoint-latency-p99"]["Threshold"] == 50_000  # us
    assert alarms["freight-pricing-prod-endpoint-5xx-rate"]["Threshold"] == 1


def test_rates_are_guarded_against_no_traffic(serving_templates: dict[str, Template]) -> None:
    alarms = _alarms(serving_templates["staging"])
    for spec in _specs("staging"):
        if spec.rate is None:
            continue
        expression = _returned(alarms[spec.name])["Expression"]
        assert expression == (
            "IF(FILL(denominator, 0) > 0, 100 * FILL(numerator, 0) / denominator, 0)"
        )


def test_rollback_alarms_watch_the_new_configuration_only(
    serving_templates: dict[str, Template],
) -> None:
    template = serving_templates["staging"]
    (config_id,) = template.find_resources("AWS::SageMaker::EndpointConfig")
    alarms = _alarms(template)
    for spec in _specs("staging"):
        new_fleet = {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
        for watched in _watched(alarms[spec.name]):
            fleet = watched["dimensions"].get("EndpointConfigName")
            assert (fleet == new_fleet) is spec.rollback, spec.name


@pytest.mark.parametrize(("stage", "start", "end"), [("staging", 6, 20), ("prod", 5, 21)])
def test_no_invocations_breaches_only_in_business_hours(
    serving_templates: dict[str, Template], stage: str, start: int, end: int
) -> None:
    alarm = _alarms(serving_templates[stage])[f"freight-pricing-{stage}-endpoint-no-invocations"]
    assert _returned(alarm)["Expression"] == (
        f"IF(DAY(filled) <= 5 AND HOUR(filled) >= {start} AND HOUR(filled) < {end}, filled, 1)"
    )
    (filled,) = [m for m in alarm["Metrics"] if m["Id"] == "filled"]
    assert filled["Expression"] == "FILL(m, 0)"
    # Outside business hours the expression is 1: not below the threshold of 1.
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "LessThanThreshold"


@pytest.mark.parametrize("comparison", COMPARISONS)
def test_the_quiet_value_never_breaches(comparison: str) -> None:
    spec = AlarmSpec(name="a", description="d", threshold=1, comparison=comparison,
                     metric=_specs("staging")[0].metrics()[0])  # fmt: skip
    assert not spec.breaches(quiet_value(spec))


def test_cloudformation_values_map_to_cdk_enum_members() -> None:
    assert [enum_member(c) for c in COMPARISONS] == [
        "GREATER_THAN_THRESHOLD", "GREATER_THAN_OR_EQUAL_TO_THRESHOLD",
        "LESS_THAN_THRESHOLD", "LESS_THAN_OR_EQUAL_TO_THRESHOLD",
    ]  # fmt: skip
    assert [enum_member(m) for m in MISSING_DATA] == [
        "BREACHING", "NOT_BREACHING", "IGNORE", "MISSING"]  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_health_composite_covers_every_non_rollback_alarm(
    serving_templates: dict[str, Template], stage: str
) -> None:
    template = serving_templates[stage]
    (composite,) = template.find_resources("AWS::CloudWatch::CompositeAlarm").values()
    properties = composite["Properties"]
    assert properties["AlarmName"] == f"freight-pricing-{stage}-endpoint-health"
    rule = json.dumps(properties["AlarmRule"])
    logical = {
        alarm["Properties"]["AlarmName"]: logical_id
        for logical_id, alarm in template.find_resources("AWS::CloudWatch::Alarm").items()
    }
    for spec in _specs(stage):
        assert (f'"{logical[spec.name]}"' in rule) is (not spec.rollback), spec.name
    assert rule.count("ALARM(") == len([s for s in _specs(stage) if not s.rollback])
    assert " OR " in rule


@pytest.mark.parametrize("stage", STAGES)
def test_every_alarm_notifies_the_stage_topic(
    serving_templates: dict[str, Template], stage: str
) -> None:
    topic = {"Fn::ImportValue": TOPIC["Fn::ImportValue"].format(stage=stage)}
    template = serving_templates[stage]
    for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
        for alarm in template.find_resources(kind).values():
            assert alarm["Properties"]["AlarmActions"] == [topic]
            assert alarm["Properties"]["OKActions"] == [topic]


@pytest.mark.parametrize("stage", STAGES)
def test_cloudwatch_publishes_only_for_our_alarms(
    assembly: cx_api.CloudAssembly, stage: str
) -> None:
    template = assembly.get_stack_by_name(f"FreightPricing-{stage}-MlPipeline").template
    scoped = {
        "ArnLike": {"aws:SourceArn": [
            f"arn:aws:cloudwatch:eu-central-1:{ACCOUNT}:alarm:freight-pricing-{stage}-endpoint*"]},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }  # fmt: skip
    found = []
    for resource in template["Resources"].values():
        properties = resource["Properties"]
        document = properties.get("PolicyDocument") or properties.get("KeyPolicy") or {}
        for statement in document.get("Statement", []):
            if statement.get("Principal") == {"Service": CLOUDWATCH_SERVICE}:
                assert statement["Condition"] == scoped
                found.append((resource["Type"], statement["Action"]))
    assert sorted(found, key=str) == sorted(
        [("AWS::SNS::TopicPolicy", "sns:Publish"),
         ("AWS::KMS::Key", ["kms:GenerateDataKey*", "kms:Decrypt"])], key=str
    )  # fmt: skip


def test_dev_without_serving_lets_no_alarm_publish(assembly: cx_api.CloudAssembly) -> None:
    template = json.dumps(assembly.get_stack_by_name("FreightPricing-dev-MlPipeline").template)
    assert CLOUDWATCH_SERVICE not in template


@pytest.mark.parametrize("stage", STAGES)
def test_dashboard_graphs_the_health_alarms_against_their_limits(
    serving_templates: dict[str, Template], stage: str
) -> None:
    (dashboard,) = serving_templates[stage].find_resources("AWS::CloudWatch::Dashboard").values()
    properties = dashboard["Properties"]
    assert properties["DashboardName"] == f"freight-pricing-{stage}-serving"
    body = json.dumps(properties["DashboardBody"])
    for needle in ("ModelLatency", "OverheadLatency", "p50", "p99", "Invocation5XXErrors",
                   "Invocation4XXErrors", "CPUUtilization", "MemoryUtilization",
                   "DiskUtilization", "Invocations", "alarm"):  # fmt: skip
        assert needle in body, needle
    assert '\\"value\\":50000' in body  # the latency SLA line (us)
    for spec in _specs(stage):
        assert f"alarm {spec.name}" in body or spec.rollback, spec.name
