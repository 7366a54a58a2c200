"""The deployer: a CodeBuild project that runs ``freight deploy``, started by an approval.

It runs the very command a human runs (ADR 0009): the app's source as an S3 asset, the
Makefile's install, then ``freight deploy`` with the package ARN from the approval event.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from cdk_app.constructs.event_rules import (
    EVENTS_SERVICE,
    checked_rule_name,
    rule_arn,
    source_conditions,
)
from stages.events import approval_pattern
from stages.names import ResourceNames

REPOSITORY = Path(__file__).resolve().parents[2]
# What the deployer needs of the repository is the app and its lock; never environments,
# build outputs, caches, tests, benchmarks or docs (they would also change the asset's hash).
SOURCE_EXCLUDES = (
    ".venv", ".uv", "cdk.out", "work", ".git", "node_modules", "*_cache", ".*_cache",
    ".hypothesis", "__pycache__", "*.pyc", "tests", "bench", "docs",
)  # fmt: skip
# The CDK bootstrap's default qualifier, and the roles `cdk deploy` assumes.
CDK_QUALIFIER = "hnb659fds"
CDK_BOOTSTRAP_ROLES = ("deploy", "file-publishing", "image-publishing", "lookup")
BUILD_IMAGE = "aws/codebuild/standard:7.0"  # Ubuntu 22.04: Python 3.11, Node 20
COMPUTE_TYPE = "BUILD_GENERAL1_SMALL"
TIMEOUT = Duration.hours(2)  # a canary bake and termination wait fit in it (stages.serving)
LOG_RETENTION = logs.RetentionDays.SIX_MONTHS
PACKAGE_VARIABLE = "MODEL_PACKAGE_ARN"
# Only the runtime extras `freight deploy` needs (the CLI with local mode, the CDK app).
DEPLOY_EXTRAS = "--extra local --extra infra"


def makefile_stamp(repository: Path = REPOSITORY) -> str:
    """The Makefile's install target (``$(VENV)/.synced-$(UV_VERSION)``), spelled out."""
    text = (repository / "Makefile").read_text(encoding="utf-8")
    found = {
        name: re.search(rf"^{name} := (\S+)$", text, re.MULTILINE)
        for name in ("UV_VERSION", "VENV")
    }
    missing = [name for name, match in found.items() if match is None]
    if missing:
        raise ValueError(f"Makefile: {', '.join(missing)} not found")
    venv, uv_version = (found[n].group(1) for n in ("VENV", "UV_VERSION"))  # type: ignore[union-attr]
    return f"{venv}/.synced-{uv_version}"


def deploy_command(stage: str, promote: bool) -> str:
    """The ``freight deploy`` command line the build runs (a promoting stage: ``--promote``)."""
    promotion = " --promote" if promote else ""
    return f'.venv/bin/freight deploy --stage {stage}{promotion} --package "${PACKAGE_VARIABLE}"'


def build_spec(command: str, stamp: str) -> dict[str, Any]:
    """Install as ``make`` does (with the deploy extras only), then ``command``."""
    return {
        "version": "0.2",
        "env": {"shell": "bash"},
        "phases": {
            "install": {
                "runtime-versions": {"python": "3.11", "nodejs": "20"},
                "commands": [
                    f'make EXTRAS="{DEPLOY_EXTRAS}" {stamp}',
                    "npm ci --no-audit --no-fund",
                ],
            },
            "build": {
                "commands": [
                    f'test -n "${PACKAGE_VARIABLE}" || {{ echo "{PACKAGE_VARIABLE} is not set:'
                    f' start the build with the package to deploy" >&2; exit 2; }}',
                    command,
                ]
            },
        },
    }


@dataclass(frozen=True, kw_only=True)
class DeployerProps:
    """The stage, its account and region, and the stage whose packages it deploys.

    ``source`` is the stage itself, or the stage it promotes from (prod: staging): then the
    build promotes (``--promote``: what the source serves, once healthy there, recorded on the
    package) and no rule starts it.
    """

    names: ResourceNames
    region: str
    account: str
    source: ResourceNames

    @property
    def promotes(self) -> bool:
        """True when the stage deploys only packages promoted from another stage."""
        return self.source.stage != self.names.stage


class Deployer(Construct):
    """CodeBuild project names.deployer_project; for a stage that does not promote, the rule.

    The rule (names.rules()["deploy_on_approval"]) matches an Approved package of the source
    group and starts the build with the package's ARN. Without it (prod), a human starts the
    build (or runs ``freight deploy`` locally): promotion stays a recorded human action.
    """

    def __init__(self, scope: Construct, id_: str, *, props: DeployerProps) -> None:
        super().__init__(scope, id_)
        names, region, account = props.names, props.region, props.account
        self.source = s3_assets.Asset(
            self, "Source", path=str(REPOSITORY), exclude=list(SOURCE_EXCLUDES)
        )
        self.key = kms.Key(
            self, "Key", enable_key_rotation=True,
            description=f"Encrypts the build outputs of {names.deployer_project}",
        )  # fmt: skip
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION)
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"Runs freight deploy for {names.stage}",
        )  # fmt: skip
        source = props.source
        sagemaker_arn = f"arn:aws:sagemaker:{region}:{account}"
        packages = f"{sagemaker_arn}:model-package/{source.model_package_group}/*"
        # Promotion checks the source endpoint and its alarms before touching the stage's.
        watched = dict.fromkeys([names, source])
        alarms = [
            f"arn:aws:cloudwatch:{region}:{account}:alarm:{n.alarm_prefix}-*" for n in watched
        ]
        statements = [
            iam.PolicyStatement(
                sid="AssumeCdkRoles", actions=["sts:AssumeRole"],
                resources=[f"arn:aws:iam::{account}:role/cdk-{CDK_QUALIFIER}-{role}-role-"
                           f"{account}-{region}" for role in CDK_BOOTSTRAP_ROLES],
            ),
            iam.PolicyStatement(
                sid="ListPackages", actions=["sagemaker:ListModelPackages"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="DescribePackages", actions=["sagemaker:DescribeModelPackage"],
                resources=[packages],
            ),
            iam.PolicyStatement(
                sid="DescribeEndpoint", actions=["sagemaker:DescribeEndpoint"],
                resources=[f"{sagemaker_arn}:endpoint/{n.endpoint}" for n in watched],
            ),
            iam.PolicyStatement(
                sid="DescribeAlarms", actions=["cloudwatch:DescribeAlarms"], resources=alarms
            ),
            iam.PolicyStatement(
                sid="ReadSource", actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[f"{self.source.bucket.bucket_arn}/{self.source.s3_object_key}"],
            ),
            iam.PolicyStatement(
                sid="SourceBucket", actions=["s3:GetBucketAcl", "s3:GetBucketLocation"],
                resources=[self.source.bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="BuildLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{self.log_group.log_group_arn}"],
            ),
            iam.PolicyStatement(
                sid="BuildKey", actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
            ),
        ]  # fmt: skip
        # What the source serves (its model's package), and the promotion recorded on it.
        generated = [f"{sagemaker_arn}:endpoint-config/*", f"{sagemaker_arn}:model/*"]
        if props.promotes:
            statements += [
                iam.PolicyStatement(
                    sid="ReadServedPackage",
                    actions=["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
                    resources=generated,
                ),
                iam.PolicyStatement(
                    sid="RecordPromotion", actions=["sagemaker:UpdateModelPackage"],
                    resources=[packages],
                ),
            ]  # fmt: skip
        added = [self.role.add_to_principal_policy(statement) for statement in statements]
        self.project = codebuild.CfnProject(
            self, "Project", name=names.deployer_project, service_role=self.role.role_arn,
            description=f"freight deploy --stage {names.stage} --package ${PACKAGE_VARIABLE}",
            source=codebuild.CfnProject.SourceProperty(
                type="S3", location=f"{self.source.s3_bucket_name}/{self.source.s3_object_key}",
                build_spec=json.dumps(
                    build_spec(deploy_command(names.stage, props.promotes), makefile_stamp()),
                    indent=1,
                ),
            ),
            artifacts=codebuild.CfnProject.ArtifactsProperty(type="NO_ARTIFACTS"),
            environment=codebuild.CfnProject.EnvironmentProperty(
                type="LINUX_CONTAINER", image=BUILD_IMAGE, compute_type=COMPUTE_TYPE,
                privileged_mode=False,
                environment_variables=[codebuild.CfnProject.EnvironmentVariableProperty(
                    name=PACKAGE_VARIABLE, value="", type="PLAINTEXT")],
            ),
            encryption_key=self.key.key_arn,
            logs_config=codebuild.CfnProject.LogsConfigProperty(
                cloud_watch_logs=codebuild.CfnProject.CloudWatchLogsConfigProperty(
                    status="ENABLED", group_name=self.log_group.log_group_name)),
            timeout_in_minutes=int(TIMEOUT.to_minutes()),
        )  # fmt: skip
        # A build fails until its role's policy exists.
        self.project.node.add_dependency(added[0].policy_dependable or self.role)
        self.project_arn = f"arn:aws:codebuild:{region}:{account}:project/{names.deployer_project}"
        self.rule: events.CfnRule | None = None
        if not props.promotes:
            self.rule = self._rule(names, account, source.model_package_group)
        wildcard_resources = {
            "*": "sagemaker:ListModelPackages has no resource-level permission",
            packages: "every version of the group the stage deploys from",
            **{arn: "an endpoint's alarms, all named with its stage's alarm prefix"
               for arn in alarms},
            **({arn: "CloudFormation generates these names; read-only describes of what the "
                "source endpoint serves" for arn in generated} if props.promotes else {}),
        }  # fmt: skip
        for resource, reason in wildcard_resources.items():
            Validations.of(self.role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason
                )
            )

    def _rule(self, names: ResourceNames, account: str, group: str) -> events.CfnRule:
        rule = events.CfnRule(
            self, "OnApproval", name=checked_rule_name(names.rules()["deploy_on_approval"]),
            description=f"Deploy an approved package of {group} to {names.endpoint}",
            state="ENABLED", event_pattern=approval_pattern(group),
        )  # fmt: skip
        self.invoker = iam.Role(
            self, "Invoker",
            assumed_by=iam.ServicePrincipal(
                EVENTS_SERVICE, conditions=source_conditions(account, [rule_arn(rule)])
            ),
            description="Lets the deploy-on-approval rule start the deployer",
        )  # fmt: skip
        self.invoker.add_to_policy(
            iam.PolicyStatement(actions=["codebuild:StartBuild"], resources=[self.project_arn])
        )
        # The package's ARN travels from the event into the build's environment.
        target_input = events.RuleTargetInput.from_object(
            {"environmentVariablesOverride": [{
                "name": PACKAGE_VARIABLE, "type": "PLAINTEXT",
                "value": events.EventField.from_path("$.detail.ModelPackageArn")}]}
        ).bind(events.Rule.from_event_rule_arn(self, "RuleRef", rule_arn(rule)))  # fmt: skip
        rule.targets = [
            events.CfnRule.TargetProperty(
                arn=self.project_arn, id="deployer", role_arn=self.invoker.role_arn,
                input_transformer=events.CfnRule.InputTransformerProperty(
                    input_template=str(target_input.input_template),
                    input_paths_map=target_input.input_paths_map,
                ),
            )
        ]  # fmt: skip
        return rule
