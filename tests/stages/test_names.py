from __future__ import annotations

import re

import pytest

from stages.names import STAGES, ResourceNames


@pytest.mark.parametrize("stage", STAGES)
def test_names_follow_aws_rules_for_every_stage(stage: str) -> None:
    names = ResourceNames(stage=stage, account="123456789012")
    for bucket in names.buckets().values():
        assert 3 <= len(bucket) <= 63
        assert bucket == bucket.lower()
        assert stage in bucket
    assert len(set(names.buckets().values())) == 5
    assert names.glue_database == f"freight_pricing_{stage}"
    assert names.pipeline == names.model_package_group == f"freight-pricing-{stage}"
    assert names.raw_loads_uri == f"s3://{names.raw_bucket}/raw/loads"


def test_longest_prefix_still_fits_s3_limits() -> None:
    names = ResourceNames(stage="staging", prefix="a" * 24, account="123456789012")
    assert max(len(bucket) for bucket in names.buckets().values()) <= 63


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"stage": "qa"}, "stage must be one of"),
        ({"stage": "dev", "prefix": "Freight"}, "prefix must be"),
        ({"stage": "dev", "prefix": "a" * 25}, "prefix must be"),
        ({"stage": "dev", "account": "12345"}, "12-digit"),
    ],
)
def test_bad_names_are_rejected_naming_the_field(arguments: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ResourceNames(**arguments)


@pytest.mark.parametrize("stage", STAGES)
def test_rule_endpoint_and_role_names_are_distinct_and_valid(stage: str) -> None:
    names = ResourceNames(stage=stage, prefix="a" * 24)
    rules = names.rules()
    assert len(set(rules.values())) == len(rules) == 4
    assert all(len(rule) <= 64 and stage in rule for rule in rules.values())
    assert names.endpoint == f"{'a' * 24}-{stage}"
    assert names.sagemaker_role_arn("123456789012") == (
        f"arn:aws:iam::123456789012:role/{'a' * 24}-{stage}-sagemaker"
    )


@pytest.mark.parametrize("stage", STAGES)
def test_serving_names_fit_their_services_limits(stage: str) -> None:
    names = ResourceNames(stage=stage, prefix="a" * 24)
    # IAM role names: 64; CodeBuild projects 2-255 of [A-Za-z0-9-_]; alarms and dashboards 255.
    assert len(names.endpoint_role) <= 64
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9\-_]{1,254}", names.deployer_project)
    assert re.fullmatch(r"[A-Za-z0-9\-_]{1,255}", names.dashboard)
    assert names.composite_alarm.startswith(names.alarm_prefix)
    assert names.capture_uri == f"s3://{names.monitoring_bucket}/capture"
