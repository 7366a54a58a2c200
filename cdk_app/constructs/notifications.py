"""The pipeline's notification topic: KMS-encrypted, TLS-only, published to by our rules only."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk_app.constructs.event_rules import EVENTS_SERVICE, rule_arn, source_conditions

# What EventBridge (and CloudWatch) need of the key to publish to an encrypted topic.
PUBLISHER_KEY_ACTIONS = ("kms:GenerateDataKey*", "kms:Decrypt")
CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"


class Notifications(Construct):
    """An SNS topic encrypted with its own rotating key, with one e-mail subscription.

    Nobody may publish until ``allow_rule_to_publish`` is given a rule. Then one topic-policy
    statement and one key-policy statement let EventBridge publish, but only on behalf of the
    rules named (``aws:SourceArn``) in our account (``aws:SourceAccount``): the confused-deputy
    guard that ``targets.SnsTopic`` and ``grant_encrypt_decrypt`` leave out.
    """

    def __init__(self, scope: Construct, id_: str, *, topic_name: str, email: str) -> None:
        super().__init__(scope, id_)
        self.key = kms.Key(
            self, "Key", enable_key_rotation=True,
            description=f"Encrypts the SNS topic {topic_name}",
        )  # fmt: skip
        # "Default" is left out of logical ids: the topic, its policy and its subscription keep
        # the ids they had before they moved in here (a new subscription needs a new e-mail
        # confirmation).
        self.topic = sns.Topic(
            self, "Default", topic_name=topic_name, master_key=self.key, enforce_ssl=True
        )
        self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self._publisher_arns: list[str] = []
        self._topic_statement: iam.PolicyStatement | None = None
        self._key_statement: iam.PolicyStatement | None = None
        self._alarm_arns: list[str] = []
        self._alarm_statements: tuple[iam.PolicyStatement, iam.PolicyStatement] | None = None

    @property
    def publisher_arns(self) -> tuple[str, ...]:
        """The ARNs of the rules allowed to publish, in the order they were allowed."""
        return tuple(self._publisher_arns)

    def allow_rule_to_publish(self, rule: events.CfnRule) -> None:
        """Let ``rule``, a named rule of this stack on the default event bus, publish here."""
        arn = rule_arn(rule)
        if arn in self._publisher_arns:
            return
        self._publisher_arns.append(arn)
        if self._topic_statement is None or self._key_statement is None:
            self._topic_statement = iam.PolicyStatement(
                sid="EventBridgeRulesPublish",
                principals=[iam.ServicePrincipal(EVENTS_SERVICE)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            )
            self._key_statement = iam.PolicyStatement(
                sid="EventBridgeRulesEncrypt",
                principals=[iam.ServicePrincipal(EVENTS_SERVICE)],
                actions=list(PUBLISHER_KEY_ACTIONS),
                resources=["*"],  # in a key policy: this key
            )
            self.topic.add_to_resource_policy(self._topic_statement)
            self.key.add_to_resource_policy(self._key_statement)
        conditions = source_conditions(Stack.of(self).account, self._publisher_arns)
        for statement in (self._topic_statement, self._key_statement):
            # Conditions merge per operator: each new list replaces the previous one.
            statement.add_conditions(conditions)

    @property
    def alarm_arns(self) -> tuple[str, ...]:
        """The alarm ARN patterns allowed to publish, in the order they were allowed."""
        return tuple(self._alarm_arns)

    def allow_alarms_to_publish(self, alarm_name_prefix: str) -> None:
        """Let this account's CloudWatch alarms named ``alarm_name_prefix...`` publish here.

        The same guard as for rules: CloudWatch may publish and use the key only on behalf of
        those alarms (``aws:SourceArn``, a pattern) of our account (``aws:SourceAccount``).
        """
        stack = Stack.of(self)
        arn = f"arn:aws:cloudwatch:{stack.region}:{stack.account}:alarm:{alarm_name_prefix}*"
        if arn in self._alarm_arns:
            return
        self._alarm_arns.append(arn)
        if self._alarm_statements is None:
            principal = iam.ServicePrincipal(CLOUDWATCH_SERVICE)
            self._alarm_statements = (
                iam.PolicyStatement(
                    sid="CloudWatchAlarmsPublish", principals=[principal],
                    actions=["sns:Publish"], resources=[self.topic.topic_arn],
                ),
                iam.PolicyStatement(
                    sid="CloudWatchAlarmsEncrypt", principals=[principal],
                    actions=list(PUBLISHER_KEY_ACTIONS),
                    resources=["*"],  # in a key policy: this key
                ),
            )  # fmt: skip
            self.topic.add_to_resource_policy(self._alarm_statements[0])
            self.key.add_to_resource_policy(self._alarm_statements[1])
        for statement in self._alarm_statements:
            statement.add_conditions(
                {"ArnLike": {"aws:SourceArn": list(self._alarm_arns)},
                 "StringEquals": {"aws:SourceAccount": stack.account}}
            )  # fmt: skip
