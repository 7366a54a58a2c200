"""The synthesized deploy-on-approval pattern against real events, in the embedded EventBridge."""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_cdk.assertions import Template
from moto import mock_aws

from stages.events import model_package_state_change
from tests.cdk_app.conftest import ACCOUNT, PACKAGES

REGION = "eu-central-1"


def _package(group: str, version: int, status: str) -> dict[str, Any]:
    return {
        "ModelPackageArn": f"{PACKAGES}/{group}/{version}",
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelApprovalStatus": status,
    }


def _entry(package: dict[str, Any]) -> dict[str, Any]:
    entry = model_package_state_change(package)
    return {**entry, "Detail": json.dumps(entry["Detail"])}  # PutEvents takes a JSON string


def test_only_an_approval_of_the_staging_group_reaches_the_target(
    serving_templates: dict[str, Template],
) -> None:
    (rule,) = serving_templates["staging"].find_resources("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    approved = _package("freight-pricing-staging", 3, "Approved")
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="deployer")["QueueUrl"]
        queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:deployer"
        events.put_rule(Name=rule["Properties"]["Name"], EventPattern=json.dumps(pattern))
        events.put_targets(
            Rule=rule["Properties"]["Name"], Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        result = events.put_events(Entries=[
            _entry(approved),
            _entry(_package("freight-pricing-staging", 4, "Rejected")),
            _entry(_package("freight-pricing-dev", 5, "Approved")),
        ])  # fmt: skip
        assert result["FailedEntryCount"] == 0
        received = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
    assert len(received) == 1
    delivered = json.loads(received[0]["Body"])
    assert delivered["detail"]["ModelPackageArn"] == approved["ModelPackageArn"]
    assert delivered["detail"]["ModelApprovalStatus"] == "Approved"
