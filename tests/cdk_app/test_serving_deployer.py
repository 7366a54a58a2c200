"""The deployer: CodeBuild runs `freight deploy`, staging on approval, and its narrow roles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import cx_api
from aws_cdk.assertions import Template

from cdk_app.constructs.deployer import CDK_QUALIFIER, REPOSITORY, makefile_stamp
from stages.events import approval_pattern
from tests.cdk_app.conftest import ACCOUNT

STAGES = ("staging", "prod")
REGION = "eu-central-1"
SAGEMAKER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


def _project(template: Template) -> dict[str, Any]:
    (project,) = template.find_resources("AWS::CodeBuild::Project").values()
    return dict(project["Properties"])


def _statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _listed(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return sorted(resource if isinstance(resource, list) else [resource])


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


@pytest.mark.parametrize("stage", STAGES)
def test_project_runs_freight_deploy_unprivileged_encrypted_and_logged(
    serving_templates: dict[str, Template], stage: str
) -> None:
    template = serving_templates[stage]
    project = _project(template)
    assert project["Name"] == f"freight-pricing-{stage}-deployer"
    assert project["Environment"]["PrivilegedMode"] is False
    assert project["Environment"]["Image"].startswith("aws/codebuild/")
    (key,) = template.find_resources("AWS::KMS::Key")
    assert project["EncryptionKey"] == {"Fn::GetAtt": [key, "Arn"]}
    ((log_group_id, log_group),) = template.find_resources("AWS::Logs::LogGroup").items()
    assert log_group["Properties"]["RetentionInDays"] > 0
    assert project["LogsConfig"]["CloudWatchLogs"]["GroupName"] == {"Ref": log_group_id}
    assert 0 < project["TimeoutInMinutes"] <= 480
    spec = json.loads(project["Source"]["BuildSpec"])
    install = spec["phases"]["install"]["commands"]
    assert install[0] == f'make EXTRAS="--extra local --extra infra" {makefile_stamp()}'
    promote = " --promote" if stage == "prod" else ""  # prod is deployed only by promotion
    assert spec["phases"]["build"]["commands"][-1] == (
        f'.venv/bin/freight deploy --stage {stage}{promote} --package "$MODEL_PACKAGE_ARN"'
    )
    assert project["Source"]["Type"] == "S3"


def test_the_install_target_is_the_makefiles() -> None:
    makefile = (REPOSITORY / "Makefile").read_text(encoding="utf-8")
    assert "$(STAMP): $(UV) pyproject.toml uv.lock" in makefile
    assert "STAMP := $(VENV)/.synced-$(UV_VERSION)" in makefile
    assert makefile_stamp().startswith(".venv/.synced-")


def test_makefile_without_the_variables_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("all:\n\ttrue\n")
    with pytest.raises(ValueError, match="UV_VERSION, VENV not found"):
        makefile_stamp(tmp_path)


def test_staging_deploys_approved_packages_of_its_group_only(
    serving_templates: dict[str, Template],
) -> None:
    template = serving_templates["staging"]
    (rule,) = template.find_resources("AWS::Events::Rule").values()
    properties = rule["Properties"]
    assert properties["Name"] == "freight-pricing-staging-deploy-approved"
    assert properties["EventPattern"] == approval_pattern("freight-pricing-staging")
    assert properties["EventPattern"]["detail"]["ModelApprovalStatus"] == ["Approved"]
    (target,) = properties["Targets"]
    assert target["Arn"] == (
        f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/freight-pricing-staging-deployer"
    )
    transformer = target["InputTransformer"]
    (path,) = transformer["InputPathsMap"].values()
    assert path == "$.detail.ModelPackageArn"
    template_input = json.loads(transformer["InputTemplate"].replace(
        f"<{next(iter(transformer['InputPathsMap']))}>", '"ARN"'))  # fmt: skip
    assert template_input == {"environmentVariablesOverride": [
        {"name": "MODEL_PACKAGE_ARN", "type": "PLAINTEXT", "value": "ARN"}]}  # fmt: skip


def test_the_rule_may_start_the_deployer_and_nothing_else(
    serving_templates: dict[str, Template],
) -> None:
    template = serving_templates["staging"]
    (rule,) = template.find_resources("AWS::Events::Rule").values()
    (target,) = rule["Properties"]["Targets"]
    invoker_id = target["RoleArn"]["Fn::GetAtt"][0]
    invoker = template.find_resources("AWS::IAM::Role")[invoker_id]["Properties"]
    (trust,) = invoker["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {
        "ArnEquals": {"aws:SourceArn": [
            f"arn:aws:events:{REGION}:{ACCOUNT}:rule/freight-pricing-staging-deploy-approved"]},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }  # fmt: skip
    (statement,) = _statements(template, invoker_id)
    assert statement["Action"] == "codebuild:StartBuild"
    assert statement["Resource"] == target["Arn"]


def test_prod_is_promoted_by_a_human_never_on_approval(
    serving_templates: dict[str, Template],
) -> None:
    template = serving_templates["prod"]
    template.resource_count_is("AWS::Events::Rule", 0)
    assert _project(template)["Name"] == "freight-pricing-prod-deployer"


@pytest.mark.parametrize(("stage", "group"), [("staging", "staging"), ("prod", "staging")])
def test_deployer_role_may_only_deploy_through_cdk_and_read_what_it_checks(
    serving_templates: dict[str, Template], stage: str, group: str
) -> None:
    template = serving_templates[stage]
    role_id = _project(template)["ServiceRole"]["Fn::GetAtt"][0]
    statements = {s["Sid"]: s for s in _statements(template, role_id)}
    for statement in statements.values():
        assert not any(a == "*" or a.endswith("*") for a in _actions(statement)), statement
    assert sorted(statements["AssumeCdkRoles"]["Resource"]) == sorted(
        f"arn:aws:iam::{ACCOUNT}:role/cdk-{CDK_QUALIFIER}-{kind}-role-{ACCOUNT}-{REGION}"
        for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
    )
    assert statements["DescribePackages"]["Resource"] == (
        f"{SAGEMAKER}:model-package/freight-pricing-{group}/*"
    )
    # Promotion reads the source stage's endpoint and alarms too.
    watched = sorted({stage, group})
    assert _listed(statements["DescribeEndpoint"]) == [
        f"{SAGEMAKER}:endpoint/freight-pricing-{s}" for s in watched
    ]
    assert _listed(statements["DescribeAlarms"]) == [
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:freight-pricing-{s}-endpoint-*"
        for s in watched
    ]
    promotes = stage != group
    assert ("RecordPromotion" in statements) is promotes
    assert ("ReadServedPackage" in statements) is promotes
    if promotes:
        assert statements["RecordPromotion"]["Action"] == "sagemaker:UpdateModelPackage"
        assert statements["RecordPromotion"]["Resource"] == (
            f"{SAGEMAKER}:model-package/freight-pricing-{group}/*"
        )
    wildcards = [s for s in statements.values() if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcards] == ["sagemaker:ListModelPackages"]


def test_the_deployer_source_is_the_app_without_tests_caches_or_environments(
    assembly: cx_api.CloudAssembly,
) -> None:
    manifest = Path(assembly.directory) / "FreightPricing-staging-Serving.assets.json"
    files = json.loads(manifest.read_text(encoding="utf-8"))["files"].values()
    (source,) = [f for f in files if f["source"].get("packaging") == "zip"]
    staged = Path(assembly.directory) / source["source"]["path"]
    top = {path.name for path in staged.iterdir()}
    assert {"cdk_app", "stages", "pipelines", "processing", "cli", "Makefile",
            "pyproject.toml", "uv.lock", "package.json", "package-lock.json"} <= top  # fmt: skip
    assert not top & {"tests", "bench", "docs", ".venv", ".uv", ".git", "cdk.out", "work",
                      ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules"}  # fmt: skip
    assert not list(staged.rglob("__pycache__"))


@pytest.mark.parametrize(("stage", "source"), [("staging", "staging"), ("prod", "staging")])
def test_endpoint_role_reads_the_package_stage_and_writes_its_own_capture(
    serving_templates: dict[str, Template], stage: str, source: str
) -> None:
    template = serving_templates[stage]
    (role_id,) = [
        logical
        for logical, role in template.find_resources("AWS::IAM::Role").items()
        if role["Properties"].get("RoleName") == f"freight-pricing-{stage}-endpoint"
    ]
    statements = {s["Sid"]: s for s in _statements(template, role_id)}
    for statement in statements.values():
        assert not any(a == "*" or a.endswith("*") for a in _actions(statement)), statement
    assert statements["ReadModelData"]["Resource"] == (
        f"arn:aws:s3:::freight-pricing-{source}-artifacts-{ACCOUNT}/*"
    )
    assert statements["DecryptModelData"]["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": f"alias/freight-pricing-{source}-lake"}
    }
    assert statements["WriteCapture"]["Resource"] == (
        f"arn:aws:s3:::freight-pricing-{stage}-monitoring-{ACCOUNT}/capture/*"
    )
    assert statements["EndpointMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints*"}
    }
    assert statements["EndpointLogs"]["Resource"] == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/freight-pricing-{stage}*"
    )
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    served = model["Properties"]["PrimaryContainer"]["ModelPackageName"]
    assert statements["DescribeServedPackage"]["Resource"] == served
    wildcards = [s for s in statements.values() if s["Resource"] == "*"]
    assert sorted(str(s["Action"]) for s in wildcards) == [
        "cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"]  # fmt: skip
