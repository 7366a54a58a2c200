"""The failure and approval rules: our pipeline and group only, announced on the topic."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

ACCOUNT = "123456789012"
PIPELINE_ARN = f"arn:aws:sagemaker:eu-central-1:{ACCOUNT}:pipeline/freight-pricing-dev"


def _announcing_rules(template: Template) -> dict[str, dict[str, Any]]:
    return {
        rule["Properties"]["Name"]: rule["Properties"]
        for rule in template.find_resources("AWS::Events::Rule").values()
        if "EventPattern" in rule["Properties"]
    }


def test_failure_and_approval_rules_match_only_our_resources(ml_template: Template) -> None:
    rules = _announcing_rules(ml_template)
    assert set(rules) == {
        "freight-pricing-dev-pipeline-failed",
        "freight-pricing-dev-model-approved",
    }
    failed = rules["freight-pricing-dev-pipeline-failed"]["EventPattern"]
    assert failed["detail-type"] == ["SageMaker Model Building Pipeline Execution Status Change"]
    assert failed["detail"] == {
        "currentPipelineExecutionStatus": ["Failed"], "pipelineArn": [PIPELINE_ARN]
    }  # fmt: skip
    approved = rules["freight-pricing-dev-model-approved"]["EventPattern"]
    assert approved["detail-type"] == ["SageMaker Model Package State Change"]
    assert approved["detail"] == {
        "ModelPackageGroupName": ["freight-pricing-dev"], "ModelApprovalStatus": ["Approved"]
    }  # fmt: skip
    for rule in rules.values():
        assert rule["EventPattern"]["source"] == ["aws.sagemaker"]
        assert rule["State"] == "ENABLED"


def test_both_rules_target_the_topic_without_a_role(ml_template: Template) -> None:
    (topic,) = ml_template.find_resources("AWS::SNS::Topic")
    for rule in _announcing_rules(ml_template).values():
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Ref": topic}
        assert "RoleArn" not in target  # the topic policy authorizes EventBridge
