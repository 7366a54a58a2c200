"""EventBridge rule names and the confused-deputy conditions on what the rules may do."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aws_cdk import Stack, Token
from aws_cdk import aws_events as events

EVENTS_SERVICE = "events.amazonaws.com"
# EventBridge rule names: 1-64 of letters, digits, '.', '-', '_'.
_RULE_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")


def checked_rule_name(name: str) -> str:
    """``name`` if EventBridge accepts it as a rule name, else a ValueError naming it."""
    if not _RULE_NAME.fullmatch(name):
        raise ValueError(f"EventBridge rule name {name!r} breaks the naming rules")
    return name


def rule_arn(rule: events.CfnRule) -> str:
    """The ARN of ``rule``, a named rule on the default bus, written out as a plain string.

    Not a reference to the rule: policies that the rule's target depends on (the topic's key,
    the invoked role) would then depend on the rule too, a cycle CloudFormation refuses.
    """
    if rule.name is None or Token.is_unresolved(rule.name):
        raise ValueError(f"rule {rule.node.path} needs a plain name to be named in a policy")
    if rule.event_bus_name not in (None, "default"):
        raise ValueError(f"rule {rule.node.path} must be on the default event bus")
    stack = Stack.of(rule)
    return f"arn:aws:events:{stack.region}:{stack.account}:rule/{rule.name}"


def source_conditions(account: str, rule_arns: Sequence[str]) -> dict[str, Any]:
    """EventBridge may act only for ``rule_arns`` of ``account``: the confused-deputy guard."""
    return {
        "ArnEquals": {"aws:SourceArn": list(rule_arns)},
        "StringEquals": {"aws:SourceAccount": account},
    }
