"""The local stage's approval events: its deploy rule on the embedded bus, with a queue as target.

In AWS, the staging stack's rule starts the deployer (CodeBuild). Locally the same rule, named
and patterned the same way (``stages.events.approval_pattern``), delivers to an SQS queue that
the local deployer reads: approval -> event -> deployment, as in the account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from local.embedded_aws import EmbeddedAws
from stages.events import approval_pattern
from stages.names import ResourceNames

# Long polling: the emulator answers at once when a message is there.
WAIT_SECONDS = 1


@dataclass(frozen=True)
class ApprovalQueue:
    """The queue behind the deploy-on-approval rule."""

    queue_url: str
    rule_name: str


def subscribe_approvals(aws: EmbeddedAws, names: ResourceNames) -> ApprovalQueue:
    """Create the stage's deploy-on-approval rule with a queue as its target (idempotent)."""
    sqs, events = aws.client("sqs"), aws.client("events")
    rule = names.rules()["deploy_on_approval"]
    queue_url = sqs.create_queue(QueueName=rule)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name=rule,
        EventPattern=json.dumps(approval_pattern(names.model_package_group)),
        State="ENABLED",
        Description="Approved packages of the local group start the local deployer",
    )
    events.put_targets(Rule=rule, Targets=[{"Id": "local-deployer", "Arn": queue_arn}])
    return ApprovalQueue(queue_url=queue_url, rule_name=rule)


def receive_approvals(
    aws: EmbeddedAws, queue: ApprovalQueue, wait_seconds: int = WAIT_SECONDS
) -> list[str]:
    """The package ARNs of the approval events waiting in the queue (deleted once read)."""
    sqs = aws.client("sqs")
    response: dict[str, Any] = sqs.receive_message(
        QueueUrl=queue.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
    )
    arns: list[str] = []
    for message in response.get("Messages", []):
        event = json.loads(message["Body"])
        arns.append(event["detail"]["ModelPackageArn"])
        sqs.delete_message(QueueUrl=queue.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return arns
