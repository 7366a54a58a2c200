"""The ML pipeline stack: what it composes, the pipeline body, and the ids that must not move."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from cdk_app.constructs.training_pipeline import IMAGE_PLACEHOLDER, substitute

ACCOUNT = "123456789012"


def test_resources(ml_template: Template) -> None:
    for kind, count in {
        "AWS::SageMaker::Pipeline": 1, "AWS::SageMaker::ModelPackageGroup": 1,
        "AWS::Events::Rule": 3, "AWS::SNS::Topic": 1, "AWS::SNS::TopicPolicy": 1,
        "AWS::SNS::Subscription": 1, "AWS::KMS::Key": 1, "AWS::IAM::Role": 2,
    }.items():  # fmt: skip
        ml_template.resource_count_is(kind, count)
    ml_template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "freight-pricing-dev"}
    )
    ml_template.has_resource_properties(
        "AWS::SageMaker::Pipeline",
        {"PipelineName": "freight-pricing-dev",
         "RoleArn": {"Fn::GetAtt": ["ExecutionRole605A040B", "Arn"]}},
    )  # fmt: skip


def test_pipeline_waits_for_its_policy_and_group(ml_template: Template) -> None:
    (pipeline,) = ml_template.find_resources("AWS::SageMaker::Pipeline").values()
    assert sorted(pipeline["DependsOn"]) == [
        "ExecutionRoleDefaultPolicyA5B92313",
        "ModelPackageGroup",
    ]


def test_pipeline_body_has_our_steps_and_the_image_token(
    ml_template: Template, deployed_definition: dict[str, Any]
) -> None:
    definition = deployed_definition
    assert {step["Name"] for step in definition["Steps"]} >= {
        "LaneStatistics", "Prepare", "DataQualityBaseline", "Train", "Evaluate", "Gate",
    }  # fmt: skip
    body = json.dumps(definition)
    for step in ("Register", "Fail"):
        assert f'"Name": "{step}"' in body
    assert IMAGE_PLACEHOLDER not in body  # replaced by the asset's URI token
    assert '"IMAGE"' in body
    (pipeline,) = ml_template.find_resources("AWS::SageMaker::Pipeline").values()
    raw = json.dumps(pipeline["Properties"]["PipelineDefinition"])
    assert "cdk-hnb659fds-container-assets" in raw  # the bootstrap image repository
    assert f"freight-pricing-dev-artifacts-{ACCOUNT}" in body
    assert "abc123" in body
    assert f"arn:aws:iam::{ACCOUNT}:role/freight-pricing-dev-sagemaker" in body


def test_substitute_leaves_text_without_placeholder_alone() -> None:
    assert substitute("no image here", IMAGE_PLACEHOLDER, "token") == "no image here"


# Logical ids of stateful or named resources: a change means CloudFormation would REPLACE the
# resource (a second role or pipeline of the same name fails; a new key loses the old one; a new
# subscription needs a new confirmation). Update only on purpose, with a migration plan.
STATEFUL_LOGICAL_IDS = {
    "AWS::IAM::Role": {"ExecutionRole605A040B"},
    "AWS::SageMaker::ModelPackageGroup": {"ModelPackageGroup"},
    "AWS::SageMaker::Pipeline": {"Pipeline"},
    "AWS::KMS::Key": {"NotificationKey6F64DE1A"},
    "AWS::SNS::Topic": {"Notifications87298708"},
    "AWS::SNS::Subscription": {"Notificationsmlopsalertsexamplecom72A709CB"},
}


def test_stateful_resources_keep_their_logical_ids(ml_template: Template) -> None:
    for kind, expected in STATEFUL_LOGICAL_IDS.items():
        found = {
            logical
            for logical, resource in ml_template.find_resources(kind).items()
            if kind != "AWS::IAM::Role" or "RoleName" in resource["Properties"]
        }
        assert found == expected, kind
