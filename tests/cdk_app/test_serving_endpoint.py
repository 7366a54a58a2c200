"""The serving stacks' endpoint: model, configuration, blue/green policy, capture and scaling."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from cdk_app.constructs.endpoint_autoscaling import SERVICE_LINKED_ROLE
from cdk_app.constructs.endpoint_config import supports_volume_key
from stages.config import stage_configs
from stages.serving import (
    VARIANT_NAME,
    ServingConfig,
    deployment_config,
    endpoint_alarms,
    rollback_alarms,
)
from tests.cdk_app.conftest import ACCOUNT, PROD_PACKAGE, STAGING_PACKAGE

STAGES = ("staging", "prod")
PACKAGE = {"staging": STAGING_PACKAGE, "prod": PROD_PACKAGE}
LAKE_KEY = {"Fn::ImportValue": "FreightPricing-{stage}-DataLake:"
            "ExportsOutputFnGetAttLakeKey09476F72ArnAB3AB838"}  # fmt: skip


def _serving(stage: str) -> ServingConfig:
    serving = stage_configs(ACCOUNT)[stage].serving
    assert serving is not None
    return serving


def _only(template: Template, kind: str) -> tuple[str, dict[str, Any]]:
    ((logical, resource),) = template.find_resources(kind).items()
    return logical, dict(resource)


def _lake_key(stage: str) -> dict[str, str]:
    return {"Fn::ImportValue": LAKE_KEY["Fn::ImportValue"].format(stage=stage)}


def _rollback_names(stage: str) -> list[str]:
    names = stage_configs(ACCOUNT)[stage].names
    specs = endpoint_alarms(names.alarm_prefix, names.endpoint, _serving(stage), "config")
    return [spec.name for spec in rollback_alarms(specs)]


@pytest.mark.parametrize("stage", STAGES)
def test_one_model_configuration_endpoint_and_scaling_per_stage(
    serving_templates: dict[str, Template], stage: str
) -> None:
    template = serving_templates[stage]
    for kind in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig",
                 "AWS::SageMaker::Endpoint", "AWS::ApplicationAutoScaling::ScalableTarget",
                 "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::CloudWatch::Dashboard",
                 "AWS::CloudWatch::CompositeAlarm", "AWS::CodeBuild::Project"):  # fmt: skip
        template.resource_count_is(kind, 1)


def test_staging_deploys_all_at_once_then_bakes(serving_templates: dict[str, Template]) -> None:
    _, endpoint = _only(serving_templates["staging"], "AWS::SageMaker::Endpoint")
    policy = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300
    }  # fmt: skip
    assert "CanarySize" not in policy["TrafficRoutingConfiguration"]


def test_prod_sends_a_ten_percent_canary_first(serving_templates: dict[str, Template]) -> None:
    _, endpoint = _only(serving_templates["prod"], "AWS::SageMaker::Endpoint")
    routing = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"]  # fmt: skip
    assert routing == {
        "Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        "WaitIntervalInSeconds": 600,
    }  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_updates_roll_back_on_the_rollback_alarms_which_exist_first(
    serving_templates: dict[str, Template], stage: str
) -> None:
    template = serving_templates[stage]
    _, endpoint = _only(template, "AWS::SageMaker::Endpoint")
    config = endpoint["Properties"]["DeploymentConfig"]
    names = _rollback_names(stage)
    assert names == [f"freight-pricing-{stage}-endpoint-new-fleet-5xx",
                     f"freight-pricing-{stage}-endpoint-new-fleet-latency"]  # fmt: skip
    # CloudFormation's key is the API's: AutoRollbackConfiguration (of type AutoRollbackConfig).
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": n} for n in names]}
    # The whole DeploymentConfig is stages.serving's, unchanged.
    assert config == deployment_config(_serving(stage), names)
    alarms = {
        resource["Properties"]["AlarmName"]: logical
        for logical, resource in template.find_resources("AWS::CloudWatch::Alarm").items()
    }
    assert set(endpoint["DependsOn"]) == {alarms[name] for name in names}


@pytest.mark.parametrize("stage", STAGES)
def test_endpoint_is_named_and_keeps_its_scaled_count_across_updates(
    serving_templates: dict[str, Template], stage: str
) -> None:
    template = serving_templates[stage]
    config_id, config = _only(template, "AWS::SageMaker::EndpointConfig")
    _, endpoint = _only(template, "AWS::SageMaker::Endpoint")
    properties = endpoint["Properties"]
    assert properties["EndpointName"] == f"freight-pricing-{stage}"
    assert properties["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    assert properties["RetainAllVariantProperties"] is True
    assert properties["RetainDeploymentConfig"] is True
    # Capture settings of a new configuration apply; the instance count is retained.
    assert properties["ExcludeRetainedVariantProperties"] == [
        {"VariantPropertyType": "DataCaptureConfig"}
    ]
    # Generated names: a new package replaces model and configuration without a collision.
    assert "EndpointConfigName" not in config["Properties"]
    _, model = _only(template, "AWS::SageMaker::Model")
    assert "ModelName" not in model["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_model_serves_the_given_package_and_says_which(
    serving_templates: dict[str, Template], stage: str
) -> None:
    _, model = _only(serving_templates[stage], "AWS::SageMaker::Model")
    properties = model["Properties"]
    arn = PACKAGE[stage]
    version = arn.rsplit("/", 1)[1]
    container = properties["PrimaryContainer"]
    assert container["ModelPackageName"] == arn
    assert "Image" not in container  # the package's image and model data
    assert container["Environment"] == {
        "FREIGHT_ENDPOINT_NAME": f"freight-pricing-{stage}",
        "FREIGHT_MODEL_PACKAGE_ARN": arn, "FREIGHT_MODEL_VERSION": version,
    }  # fmt: skip
    assert {t["Key"]: t["Value"] for t in properties["Tags"]} == {
        "model-package-arn": arn, "model-version": version
    }  # fmt: skip
    role_id, _ = next(
        (logical, role)
        for logical, role in serving_templates[stage].find_resources("AWS::IAM::Role").items()
        if role["Properties"].get("RoleName") == f"freight-pricing-{stage}-endpoint"
    )
    assert properties["ExecutionRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}


@pytest.mark.parametrize(
    ("stage", "instance_type", "count", "sampling"),
    [("staging", "ml.m5.large", 1, 100), ("prod", "ml.c5.xlarge", 3, 20)],
)
def test_variant_and_capture_follow_the_stage(
    serving_templates: dict[str, Template], stage: str, instance_type: str, count: int,
    sampling: int,
) -> None:  # fmt: skip
    _, config = _only(serving_templates[stage], "AWS::SageMaker::EndpointConfig")
    properties = config["Properties"]
    (variant,) = properties["ProductionVariants"]
    assert variant["VariantName"] == VARIANT_NAME
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == (instance_type, count)
    assert properties["KmsKeyId"] == _lake_key(stage)  # EBS volumes: encrypted
    assert properties["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": sampling,
        "DestinationS3Uri": f"s3://freight-pricing-{stage}-monitoring-{ACCOUNT}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]
        },
        "KmsKeyId": _lake_key(stage),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [("ml.m5.large", True), ("ml.c5.xlarge", True), ("ml.c6i.large", True),
     ("ml.m5d.large", False), ("ml.g4dn.xlarge", False), ("ml.c6id.2xlarge", False)],
)  # fmt: skip
def test_volume_key_only_where_the_instance_has_ebs(instance_type: str, expected: bool) -> None:
    assert supports_volume_key(instance_type) is expected


@pytest.mark.parametrize(("stage", "low", "high"), [("staging", 1, 4), ("prod", 3, 12)])
def test_autoscaling_tracks_invocations_once_the_endpoint_exists(
    serving_templates: dict[str, Template], stage: str, low: int, high: int
) -> None:
    template = serving_templates[stage]
    endpoint_id, _ = _only(template, "AWS::SageMaker::Endpoint")
    target_id, target = _only(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    properties = target["Properties"]
    assert properties["ResourceId"] == f"endpoint/freight-pricing-{stage}/variant/AllTraffic"
    assert properties["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (low, high)
    assert properties["RoleARN"] == f"arn:aws:iam::{ACCOUNT}:{SERVICE_LINKED_ROLE}"
    assert endpoint_id in target["DependsOn"]
    _, policy = _only(template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy["Properties"]["ScalingTargetId"] == {"Ref": target_id}
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert tracking["TargetValue"] == _serving(stage).target_invocations_per_instance
    assert tracking["ScaleInCooldown"] > tracking["ScaleOutCooldown"] > 0


def test_staging_scales_in_outside_business_hours(serving_templates: dict[str, Template]) -> None:
    _, target = _only(serving_templates["staging"], "AWS::ApplicationAutoScaling::ScalableTarget")
    actions = {a["ScheduledActionName"]: a for a in target["Properties"]["ScheduledActions"]}
    assert actions == {
        "ScaleInEvening": {"ScheduledActionName": "ScaleInEvening",
                           "Schedule": "cron(0 20 ? * MON-FRI *)",
                           "ScalableTargetAction": {"MinCapacity": 1, "MaxCapacity": 1}},
        "RestoreMorning": {"ScheduledActionName": "RestoreMorning",
                           "Schedule": "cron(0 6 ? * MON-FRI *)",
                           "ScalableTargetAction": {"MinCapacity": 1, "MaxCapacity": 4}},
    }  # fmt: skip


def test_prod_never_scales_in_on_a_schedule(serving_templates: dict[str, Template]) -> None:
    _, target = _only(serving_templates["prod"], "AWS::ApplicationAutoScaling::ScalableTarget")
    assert "ScheduledActions" not in target["Properties"]


# Logical ids of named resources: a change means CloudFormation would create a second resource
# of the same name before deleting the first, which fails (for the endpoint: after taking the
# old one's name). Update only on purpose, with a migration plan.
NAMED_LOGICAL_IDS = {
    "AWS::SageMaker::Endpoint": {"Endpoint"},
    "AWS::IAM::Role": {"EndpointRole1A3BA5E6"},
    "AWS::CodeBuild::Project": {"DeployerProject8B86D4C4"},
    "AWS::CloudWatch::Dashboard": {"Dashboard9E4231ED"},
    "AWS::CloudWatch::CompositeAlarm": {"AlarmsHealthD63A8D2C"},
}


@pytest.mark.parametrize("stage", STAGES)
def test_named_resources_keep_their_logical_ids(
    serving_templates: dict[str, Template], stage: str
) -> None:
    for kind, expected in NAMED_LOGICAL_IDS.items():
        found = {
            logical
            for logical, resource in serving_templates[stage].find_resources(kind).items()
            if kind != "AWS::IAM::Role" or "RoleName" in resource["Properties"]
        }
        assert found == expected, kind
