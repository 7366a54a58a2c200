"""The deployer's logic against the emulator; UpdateEndpoint (absent there) against Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ops import deploy
from ops.errors import OperationError
from ops.registry import set_approval
from stages.config import stage_configs
from stages.names import ResourceNames
from stages.serving import ServingConfig, deployment_config, endpoint_alarms, rollback_alarms

REGION = "eu-central-1"
ROLE = "arn:aws:iam::123456789012:role/freight-pricing-staging-endpoint"
IMAGE = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/freight:1"
STAGING = ResourceNames(stage="staging")
SERVING = stage_configs("123456789012")["staging"].require_serving()
CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "DestinationS3Uri": "s3://capture/x",
    "CaptureOptions": [{"CaptureMode": "Input"}],
}


@pytest.fixture(scope="module")
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture(scope="module")
def packages(aws: boto3.Session) -> dict[str, str]:
    """Staging group: v1 Approved, v2 Rejected, v3 Pending; a package of the dev group."""
    sagemaker = aws.client("sagemaker")
    arns: dict[str, str] = {}
    for group in (STAGING.model_package_group, "freight-pricing-dev"):
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    for name, group, status in (
        ("v1", STAGING.model_package_group, "Approved"),
        ("v2", STAGING.model_package_group, "Rejected"),
        ("v3", STAGING.model_package_group, "PendingManualApproval"),
        ("dev", "freight-pricing-dev", "Approved"),
    ):
        arns[name] = sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus=status,
            CustomerMetadataProperties={"code_version": "abc", "rows_in": "1000"},
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://art/{name}/model.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            DriftCheckBaselines={"ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://art/{name}/s.json"},
                "Constraints": {"ContentType": "application/json", "S3Uri": f"s3://art/{name}/c.json"},
            }},
        )["ModelPackageArn"]  # fmt: skip
    return arns


def test_latest_resolves_the_newest_approved_package_and_its_baselines(
    aws: boto3.Session, packages: dict[str, str]
) -> None:
    release = deploy.resolve_release(aws.client("sagemaker"), STAGING.model_package_group)
    assert release.package_arn == packages["v1"]
    assert release.version == 1
    assert release.model_data_url == "s3://art/v1/model.tar.gz"
    assert release.baseline_statistics == "s3://art/v1/s.json"
    assert release.baseline_constraints == "s3://art/v1/c.json"
    assert release.metadata["code_version"] == "abc"


@pytest.mark.parametrize(
    ("package", "message"),
    [
        ("v2", "is Rejected, not Approved"),
        ("v3", "is PendingManualApproval, not Approved"),
        ("dev", "belongs to group 'freight-pricing-dev', not to this stage's group"),
    ],
)
def test_refuses_packages_it_must_not_deploy(
    aws: boto3.Session, packages: dict[str, str], package: str, message: str
) -> None:
    with pytest.raises(OperationError, match=message):
        deploy.resolve_release(
            aws.client("sagemaker"), STAGING.model_package_group, packages[package]
        )


def test_a_group_without_approved_packages_says_how_to_approve(aws: boto3.Session) -> None:
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="empty")
    with pytest.raises(OperationError, match="no Approved package: approve one"):
        deploy.resolve_release(sagemaker, "empty")


def test_bad_package_arn_names_the_expected_form() -> None:
    with pytest.raises(ValueError, match="not a versioned model package ARN"):
        deploy.parse_package_arn("arn:aws:sagemaker:eu-central-1:123456789012:model-package/x")


def test_api_deploy_creates_then_refuses_while_updating(
    aws: boto3.Session, packages: dict[str, str]
) -> None:
    sagemaker = aws.client("sagemaker")
    release = deploy.resolve_release(sagemaker, STAGING.model_package_group)
    requests = deploy.endpoint_requests(release, SERVING, STAGING, role_arn=ROLE, capture=CAPTURE)
    done = deploy.deploy_with_api(sagemaker, requests, STAGING.endpoint, SERVING)
    assert done.action == "created"
    endpoint = sagemaker.describe_endpoint(EndpointName=STAGING.endpoint)
    assert endpoint["EndpointConfigName"] == requests.endpoint_config_name
    assert deploy.served_package(sagemaker, endpoint) == release.package_arn
    stored = sagemaker.describe_endpoint_config(EndpointConfigName=requests.endpoint_config_name)
    assert stored["DataCaptureConfig"]["InitialSamplingPercentage"] == 100
    # The same release again: same content-derived names, and nothing to update.
    again = deploy.endpoint_requests(release, SERVING, STAGING, role_arn=ROLE, capture=CAPTURE)
    assert again == requests
    unchanged = deploy.deploy_with_api(sagemaker, again, STAGING.endpoint, SERVING)
    assert unchanged.action == "unchanged"

    class Updating:
        def describe_endpoint(self, **_: Any) -> dict[str, str]:
            return {"EndpointStatus": "Updating", "EndpointConfigName": "old"}

    with pytest.raises(OperationError, match="is Updating: wait until it is InService"):
        deploy.deploy_with_api(Updating(), requests, STAGING.endpoint, SERVING)


def test_instance_type_outside_the_stage_list_is_refused(
    aws: boto3.Session, packages: dict[str, str]
) -> None:
    release = deploy.describe_release(aws.client("sagemaker"), packages["v1"])
    with pytest.raises(ValueError, match=r"'ml\.p3\.2xlarge' is not allowed for this stage"):
        deploy.endpoint_requests(
            release, SERVING, STAGING, role_arn=ROLE, capture=CAPTURE,
            instance_type="ml.p3.2xlarge",
        )  # fmt: skip


def test_update_endpoint_request_is_exact_under_stubber(
    aws: boto3.Session, packages: dict[str, str]
) -> None:
    release = deploy.describe_release(aws.client("sagemaker"), packages["v1"])
    prod = stage_configs("123456789012")["prod"]
    assert prod.serving is not None
    requests = deploy.endpoint_requests(
        release, prod.serving, prod.names, role_arn=ROLE, capture=CAPTURE
    )
    config_name = requests.endpoint_config_name
    alarms = rollback_alarms(
        endpoint_alarms(prod.names.alarm_prefix, prod.names.endpoint, prod.serving, config_name)
    )
    client = boto3.Session(region_name=REGION).client("sagemaker")
    stubber = Stubber(client)
    stubber.add_response("describe_endpoint", _endpoint("InService", "old-config"),
                         {"EndpointName": prod.names.endpoint})  # fmt: skip
    stubber.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:x:1:model/m"},
                         requests.create_model)  # fmt: skip
    stubber.add_response(
        "create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:x:1:endpoint-config/c"},
        requests.create_endpoint_config,
    )  # fmt: skip
    expected = {
        "EndpointName": prod.names.endpoint,
        "EndpointConfigName": config_name,
        "RetainAllVariantProperties": True,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                    "WaitIntervalInSeconds": 600,
                },
                "TerminationWaitInSeconds": 300,
                "MaximumExecutionTimeoutInSeconds": 3300,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a.name} for a in alarms]},
        },
    }
    stubber.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:x:1:endpoint/e"},
                         expected)  # fmt: skip
    with stubber:
        done = deploy.deploy_with_api(client, requests, prod.names.endpoint, prod.serving)
    stubber.assert_no_pending_responses()
    assert done.action == "updated"
    assert done.update_request == expected
    assert [a["AlarmName"] for a in expected["DeploymentConfig"]["AutoRollbackConfiguration"][  # type: ignore[index]
        "Alarms"]] == [f"{prod.names.alarm_prefix}-new-fleet-5xx",
                       f"{prod.names.alarm_prefix}-new-fleet-latency"]  # fmt: skip


def test_staging_updates_all_at_once_with_a_bake() -> None:
    config = deployment_config(SERVING, ["a"])
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": SERVING.bake_seconds}


def _endpoint(status: str, config: str) -> dict[str, Any]:
    return {
        "EndpointName": "e", "EndpointArn": "arn:aws:sagemaker:x:1:endpoint/e",
        "EndpointConfigName": config, "EndpointStatus": status,
        "CreationTime": datetime(2026, 1, 1), "LastModifiedTime": datetime(2026, 1, 1),
    }  # fmt: skip


def test_promotion_is_refused_unless_staging_serves_the_package_healthily(
    aws: boto3.Session, packages: dict[str, str]
) -> None:
    sagemaker, cloudwatch = aws.client("sagemaker"), aws.client("cloudwatch")
    served = deploy.describe_release(sagemaker, packages["v1"])
    # test_api_deploy_creates... deployed v1 to staging in this module's emulator.
    health = deploy.check_promotable(sagemaker, cloudwatch, served, STAGING)
    assert health.package_arn == served.package_arn
    other = deploy.describe_release(sagemaker, packages["dev"])
    with pytest.raises(OperationError, match="promote what staging has proven"):
        deploy.check_promotable(sagemaker, cloudwatch, other, STAGING)
    rejected = deploy.describe_release(sagemaker, packages["v2"])
    with pytest.raises(OperationError, match="is Rejected"):
        deploy.check_promotable(sagemaker, cloudwatch, rejected, STAGING)
    cloudwatch.put_metric_alarm(
        AlarmName=f"{STAGING.alarm_prefix}-5xx-rate", MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker", Statistic="Sum", Period=60, EvaluationPeriods=1,
        Threshold=1, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName=f"{STAGING.alarm_prefix}-5xx-rate", StateValue="ALARM",
                               StateReason="test")  # fmt: skip
    try:
        with pytest.raises(OperationError, match="-5xx-rate in ALARM"):
            deploy.check_promotable(sagemaker, cloudwatch, served, STAGING)
    finally:
        cloudwatch.delete_alarms(AlarmNames=[f"{STAGING.alarm_prefix}-5xx-rate"])


def test_promotion_record_keeps_the_lineage(aws: boto3.Session, packages: dict[str, str]) -> None:
    sagemaker = aws.client("sagemaker")
    release = deploy.describe_release(sagemaker, packages["v1"])
    record = deploy.record_promotion(
        sagemaker, release, promoted_by="arn:aws:iam::123456789012:user/ana",
        staging_endpoint=STAGING.endpoint, now=lambda: datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    stored = sagemaker.describe_model_package(ModelPackageName=release.package_arn)
    assert stored["CustomerMetadataProperties"] == {
        "code_version": "abc", "rows_in": "1000",
        "promoted_by": "arn:aws:iam::123456789012:user/ana",
        "promoted_at": "2026-12-01T09:30:00+00:00",
        "promoted_from_endpoint": STAGING.endpoint,
    }  # fmt: skip
    assert record["promoted_at"] == "2026-12-01T09:30:00+00:00"


def test_approval_keeps_the_lineage_and_announces_the_event(
    aws: boto3.Session, packages: dict[str, str]
) -> None:
    sagemaker, events = aws.client("sagemaker"), aws.client("events")
    sqs = aws.client("sqs")
    queue = sqs.create_queue(QueueName="approvals")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]  # fmt: skip
    events.put_rule(Name="all-sagemaker", EventPattern='{"source": ["aws.sagemaker"]}')
    events.put_targets(Rule="all-sagemaker", Targets=[{"Id": "q", "Arn": queue_arn}])
    package = set_approval(sagemaker, packages["v3"], "Approved", "fine", events=events)
    assert package["CustomerMetadataProperties"]["rows_in"] == "1000"
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    assert '"ModelApprovalStatus": "Approved"' in messages[0]["Body"]
    assert packages["v3"] in messages[0]["Body"]


def test_cdk_deploy_command_carries_the_release_as_context(
    aws: boto3.Session, packages: dict[str, str]
) -> None:
    release = deploy.describe_release(aws.client("sagemaker"), packages["v1"])
    command = deploy.cdk_deploy_command(
        "FreightPricing-staging-Serving", deploy.cdk_context("staging", release, "ml.m5.xlarge")
    )
    assert command[:3] == list(deploy.CDK_CLI)
    assert command[3:7] == ["deploy", "FreightPricing-staging-Serving", "--require-approval",
                            "never"]  # fmt: skip
    assert f"model_package_arn_staging={release.package_arn}" in command
    assert "instance_type_staging=ml.m5.xlarge" in command


def test_serving_config_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"serving\.canary_percent must be 1-50"):
        ServingConfig(traffic_routing="CANARY", canary_percent=60)
    with pytest.raises(ValueError, match=r"serving\.instance_type 'ml\.m5\.4xlarge' is not in"):
        ServingConfig(instance_type="ml.m5.4xlarge")
