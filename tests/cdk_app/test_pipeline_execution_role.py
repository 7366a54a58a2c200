"""The pipeline's execution role: written-out statements, no unscoped wildcards."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template


def _statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_role_is_assumed_by_sagemaker_only(ml_template: Template) -> None:
    role = ml_template.find_resources("AWS::IAM::Role")["ExecutionRole605A040B"]
    assert role["Properties"]["RoleName"] == "freight-pricing-dev-sagemaker"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}


def test_execution_role_has_no_unscoped_wildcards(ml_template: Template) -> None:
    statements = _statements(ml_template, "ExecutionRole605A040B")
    assert len(statements) == 10
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [
            statement["Action"]]  # fmt: skip
        assert "*" not in actions
        assert not any(action.endswith("*") for action in actions), actions
        if statement.get("Resource") == "*":
            assert actions == ["ecr:GetAuthorizationToken"]
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert pass_role["Resource"] == {"Fn::GetAtt": ["ExecutionRole605A040B", "Arn"]}


def test_writes_go_to_output_buckets_only(ml_template: Template) -> None:
    statements = _statements(ml_template, "ExecutionRole605A040B")
    (write,) = [s for s in statements if s.get("Sid") == "WriteOutputs"]
    assert not any("-raw-" in r or "-curated-" in r for r in write["Resource"])
    assert len(write["Resource"]) == 3
