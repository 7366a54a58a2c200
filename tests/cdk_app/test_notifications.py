"""The notification topic: encrypted, TLS-only, and published to by our own rules only."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, cx_api
from aws_cdk import aws_events as events
from aws_cdk.assertions import Template

from cdk_app.constructs.event_rules import EVENTS_SERVICE
from cdk_app.constructs.notifications import Notifications

ACCOUNT = "123456789012"
ENV = Environment(account=ACCOUNT, region="eu-central-1")
RULES = f"arn:aws:events:eu-central-1:{ACCOUNT}:rule"
OUR_PUBLISHERS = [f"{RULES}/freight-pricing-dev-pipeline-failed",
                  f"{RULES}/freight-pricing-dev-model-approved"]  # fmt: skip
SCOPED = {
    "ArnEquals": {"aws:SourceArn": OUR_PUBLISHERS},
    "StringEquals": {"aws:SourceAccount": ACCOUNT},
}


def _documents(template: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy document of the template (resource, trust and identity policies)."""
    for logical, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument"):
            if key in properties:
                yield f"{logical}.{key}", properties[key]


def _events_statements(template: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (where, statement)
        for where, document in _documents(template)
        for statement in document["Statement"]
        if _is_eventbridge(statement.get("Principal"))
    ]


def _is_eventbridge(principal: Any) -> bool:
    if not isinstance(principal, dict):
        return False  # "*": the TLS-only deny
    services = principal.get("Service", [])
    return EVENTS_SERVICE in ([services] if isinstance(services, str) else services)


def _kinds(template: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_key_rotates_and_encrypts_the_tls_only_topic(ml_template: Template) -> None:
    ml_template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    (key,) = ml_template.find_resources("AWS::KMS::Key")
    ml_template.has_resource_properties(
        "AWS::SNS::Topic",
        {
            "TopicName": "freight-pricing-dev-pipeline",
            "KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]},
        },
    )
    ml_template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "mlops-alerts@example.com"}
    )
    (policy,) = ml_template.find_resources("AWS::SNS::TopicPolicy").values()
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def test_eventbridge_publishes_only_for_our_rules_in_our_account(ml_template: Template) -> None:
    template = ml_template.to_json()
    (topic_policy,) = _kinds(template, "AWS::SNS::TopicPolicy").values()
    (key,) = _kinds(template, "AWS::KMS::Key").values()
    topic_statements = [s for s in topic_policy["Properties"]["PolicyDocument"]["Statement"]
                        if s.get("Principal") == {"Service": EVENTS_SERVICE}]  # fmt: skip
    key_statements = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                      if s.get("Principal") == {"Service": EVENTS_SERVICE}]  # fmt: skip
    assert len(topic_statements) == 1
    assert len(key_statements) == 1
    (publish,), (encrypt,) = topic_statements, key_statements
    assert publish["Action"] == "sns:Publish"
    assert publish["Condition"] == SCOPED
    assert sorted(encrypt["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert encrypt["Condition"] == SCOPED
    # The ARNs written in the conditions are those of the rules that target the topic.
    named = {
        f"{RULES}/{rule['Properties']['Name']}"
        for rule in _kinds(template, "AWS::Events::Rule").values()
        if any("Ref" in t["Arn"] for t in rule["Properties"]["Targets"])
    }
    assert named == set(OUR_PUBLISHERS)


def test_no_statement_for_eventbridge_lacks_the_conditions(
    assembly: cx_api.CloudAssembly,
) -> None:
    for stack in assembly.stacks:
        for where, statement in _events_statements(stack.template):
            condition = statement.get("Condition", {})
            arns = condition.get("ArnEquals", {}).get("aws:SourceArn")
            assert arns, f"{stack.stack_name} {where}: no aws:SourceArn"
            assert all(arn.startswith(f"{RULES}/freight-pricing-") for arn in arns), arns
            assert condition.get("StringEquals") == {"aws:SourceAccount": ACCOUNT}, where


def _stack() -> tuple[Stack, Notifications]:
    stack = Stack(App(), "Topic", env=ENV)
    return stack, Notifications(stack, "Notifications", topic_name="t", email="a@example.com")


def test_without_a_rule_nobody_is_allowed_to_publish() -> None:
    stack, _ = _stack()
    template = Template.from_stack(stack).to_json()
    assert _events_statements(template) == []
    template_key = next(iter(_kinds(template, "AWS::KMS::Key").values()))
    assert len(template_key["Properties"]["KeyPolicy"]["Statement"]) == 1  # the account's admin


def test_one_statement_per_policy_whatever_the_number_of_rules() -> None:
    stack, notifications = _stack()
    first, second = (
        events.CfnRule(stack, name, name=name, schedule_expression="rate(1 day)")
        for name in ("first", "second")
    )
    for rule in (first, second, second):
        notifications.allow_rule_to_publish(rule)
    assert notifications.publisher_arns == (f"{RULES}/first", f"{RULES}/second")
    statements = _events_statements(Template.from_stack(stack).to_json())
    assert len(statements) == 2
    for _, statement in statements:
        assert statement["Condition"]["ArnEquals"] == {
            "aws:SourceArn": [f"{RULES}/first", f"{RULES}/second"]
        }


def test_a_rule_without_a_plain_name_or_on_another_bus_is_refused() -> None:
    stack, notifications = _stack()
    unnamed = events.CfnRule(stack, "Unnamed", schedule_expression="rate(1 day)")
    with pytest.raises(ValueError, match="needs a plain name"):
        notifications.allow_rule_to_publish(unnamed)
    elsewhere = events.CfnRule(stack, "Elsewhere", name="x", event_bus_name="partners",
                               event_pattern={"source": ["x"]})  # fmt: skip
    with pytest.raises(ValueError, match="default event bus"):
        notifications.allow_rule_to_publish(elsewhere)
