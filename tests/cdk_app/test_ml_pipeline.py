"""The ML pipeline stack: role, registry, the pipeline body, and the EventBridge rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from cdk_app.stacks.data_lake import DataLakeStack
from cdk_app.stacks.ml_pipeline import IMAGE_PLACEHOLDER, MlPipelineStack
from stages.config import stage_configs

ACCOUNT = "123456789012"
ENV = Environment(account=ACCOUNT, region="eu-central-1")
PIPELINE_ARN = f"arn:aws:sagemaker:eu-central-1:{ACCOUNT}:pipeline/freight-pricing-dev"


@pytest.fixture(scope="module")
def template() -> Template:
    app = App()
    config = stage_configs(ACCOUNT)["dev"]
    lake = DataLakeStack(app, "Lake", config=config, env=ENV)
    stack = MlPipelineStack(app, "Ml", config=config, lake=lake, code_version="abc123", env=ENV)
    return Template.from_stack(stack)


def _pipeline_body(template: Template) -> str:
    (pipeline,) = template.find_resources("AWS::SageMaker::Pipeline").values()
    return json.dumps(pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])


def test_resources(template: Template) -> None:
    template.resource_count_is("AWS::SageMaker::Pipeline", 1)
    template.resource_count_is("AWS::SageMaker::ModelPackageGroup", 1)
    template.resource_count_is("AWS::Events::Rule", 3)
    template.resource_count_is("AWS::SNS::Topic", 1)
    template.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "freight-pricing-dev"}
    )
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "mlops-alerts@example.com"}
    )
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [
        next(iter(template.find_resources("AWS::KMS::Key"))), "Arn"]}})  # fmt: skip


def test_pipeline_body_has_our_steps_and_the_image_token(template: Template) -> None:
    body = _pipeline_body(template)
    for step in ("LaneStatistics", "Prepare", "DataQualityBaseline", "Train", "Evaluate", "Gate",
                 "Register", "Fail"):  # fmt: skip
        assert f'\\"Name\\": \\"{step}\\"' in body
    assert IMAGE_PLACEHOLDER not in body  # replaced by the asset's URI token
    assert "Fn::Join" in body
    assert "cdk-hnb659fds-container-assets" in body  # the bootstrap image repository
    assert "freight-pricing-dev-artifacts-123456789012" in body
    assert "abc123" in body


def test_execution_role_has_no_unscoped_wildcards(template: Template) -> None:
    policies = template.find_resources("AWS::IAM::Policy")
    statements: list[dict[str, Any]] = [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [
            statement["Action"]]  # fmt: skip
        assert "*" not in actions
        assert not any(action.endswith("*") for action in actions), actions
        if statement.get("Resource") == "*":
            assert actions == ["ecr:GetAuthorizationToken"]
    pass_role = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role[0]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def _rules(template: Template) -> dict[str, dict[str, Any]]:
    return {
        key: rule["Properties"]
        for key, rule in template.find_resources("AWS::Events::Rule").items()
    }


def test_weekly_retraining_starts_our_pipeline_with_stage_parameters(template: Template) -> None:
    (retrain,) = [r for r in _rules(template).values() if "ScheduleExpression" in r]
    assert retrain["ScheduleExpression"] == "cron(0 3 ? * MON *)"
    (target,) = retrain["Targets"]
    assert target["Arn"] == PIPELINE_ARN
    parameters = {p["Name"]: p["Value"] for p in
                  target["SageMakerPipelineParameters"]["PipelineParameterList"]}  # fmt: skip
    assert parameters["ProcessingInstanceType"] == "ml.m5.xlarge"
    assert parameters["MaxMape"] == "0.12"


def test_failure_and_approval_rules_match_only_our_resources(template: Template) -> None:
    patterns = [r["EventPattern"] for r in _rules(template).values() if "EventPattern" in r]
    by_type = {p["detail-type"][0]: p for p in patterns}
    failed = by_type["SageMaker Model Building Pipeline Execution Status Change"]
    assert failed["detail"] == {
        "currentPipelineExecutionStatus": ["Failed"], "pipelineArn": [PIPELINE_ARN]
    }  # fmt: skip
    approved = by_type["SageMaker Model Package State Change"]
    assert approved["detail"] == {
        "ModelPackageGroupName": ["freight-pricing-dev"], "ModelApprovalStatus": ["Approved"]
    }  # fmt: skip
    assert approved["source"] == ["aws.sagemaker"]
