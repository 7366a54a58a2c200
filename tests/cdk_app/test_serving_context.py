"""The package to serve comes from CDK context: validated, and without it no endpoint at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, cx_api
from aws_cdk.assertions import Template

from cdk_app.app import (
    build_app,
    context_packages,
    model_package,
    package_context_key,
    with_instance_type,
)
from cdk_app.constructs.serving_model import ModelPackage
from cdk_app.stacks.serving import NO_PACKAGE_INFO
from stages.config import stage_configs
from tests.cdk_app.conftest import ACCOUNT, PACKAGES, STAGING_PACKAGE

STAGING = stage_configs(ACCOUNT)["staging"]
# What only a stage with a package has.
ENDPOINT_KINDS = (
    "AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm", "AWS::CloudWatch::Dashboard",
)  # fmt: skip


@pytest.fixture(scope="module")
def without_package() -> cx_api.CloudFormationStackArtifact:
    """The staging stage alone, synthesized without a package (the one extra synthesis)."""
    # Without CloudFormation validation: the session's synthesis validates the same resources.
    app = App(context={"account": ACCOUNT, "stage": "staging"},
              builtin_cloud_formation_validation=False)  # fmt: skip
    return build_app(app).synth().get_stack_by_name("FreightPricing-staging-Serving")


def test_a_stage_without_a_package_creates_no_endpoint(
    without_package: cx_api.CloudFormationStackArtifact,
) -> None:
    template = Template.from_json(without_package.template)
    for kind in ENDPOINT_KINDS:
        template.resource_count_is(kind, 0)
    # What the first deployment needs before any package: the role, the deployer, the rule.
    template.has_resource_properties(
        "AWS::IAM::Role", {"RoleName": "freight-pricing-staging-endpoint"}
    )
    template.has_resource_properties(
        "AWS::CodeBuild::Project", {"Name": "freight-pricing-staging-deployer"}
    )
    template.has_resource_properties(
        "AWS::Events::Rule", {"Name": "freight-pricing-staging-deploy-approved"}
    )


def test_a_stage_without_a_package_says_so(
    without_package: cx_api.CloudFormationStackArtifact,
) -> None:
    # Read from the assembly's manifest, not through jsii: two installed distributions ship
    # aws_cdk/cloud_assembly_schema, and the one installed last decides which names jsii knows.
    directory = Path(without_package.assembly.directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    artifact = manifest["artifacts"][without_package.id]
    metadata = json.loads((directory / artifact["additionalMetadataFile"]).read_text())
    infos = [entry["data"] for entries in metadata.values() for entry in entries
             if entry["type"] == "aws:cdk:info"]  # fmt: skip
    assert NO_PACKAGE_INFO.format(key="model_package_arn_staging") in infos


def test_the_context_package_is_parsed() -> None:
    key = package_context_key("staging")
    assert key == "model_package_arn_staging"
    assert model_package(STAGING_PACKAGE, key, STAGING) == ModelPackage(
        arn=STAGING_PACKAGE, group="freight-pricing-staging", version=3
    )


@pytest.mark.parametrize(
    ("arn", "problem"),
    [
        (f"{PACKAGES}/freight-pricing-dev/3", "wrong group 'freight-pricing-dev'"),
        (STAGING_PACKAGE.replace(ACCOUNT, "210987654321"), "wrong account"),
        (STAGING_PACKAGE.replace("eu-central-1", "eu-west-1"), "wrong region"),
        (f"{PACKAGES}/freight-pricing-staging", "no versioned model package ARN"),
        (f"{PACKAGES}/freight-pricing-staging/0", "no versioned model package ARN"),
        ("freight-pricing-staging/3", "no versioned model package ARN"),
    ],
)
def test_a_bad_package_is_refused_naming_the_context_key(arn: str, problem: str) -> None:
    with pytest.raises(ValueError, match="context model_package_arn_staging: ") as raised:
        model_package(arn, "model_package_arn_staging", STAGING)
    assert problem in str(raised.value)


def test_prod_serves_only_packages_promoted_from_staging() -> None:
    with pytest.raises(ValueError, match=r"context model_package_arn_prod: .*wrong group"):
        build_app(App(context={
            "account": ACCOUNT, "stage": "prod",
            "model_package_arn_prod": f"{PACKAGES}/freight-pricing-prod/1"}))  # fmt: skip


def test_the_app_refuses_another_groups_package_for_staging() -> None:
    with pytest.raises(ValueError, match=r"context model_package_arn_staging: .*wrong group"):
        build_app(App(context={
            "account": ACCOUNT, "stage": "staging",
            "model_package_arn_staging": f"{PACKAGES}/freight-pricing-dev/1"}))  # fmt: skip


def test_only_the_requested_stages_packages_are_checked() -> None:
    bad = {"model_package_arn_prod": f"{PACKAGES}/freight-pricing-prod/1"}
    configs = stage_configs(ACCOUNT)
    assert context_packages(App(context=bad), configs, ["staging"]) == {}
    with pytest.raises(ValueError, match="context model_package_arn_prod"):
        context_packages(App(context=bad), configs, ["staging", "prod"])


def test_dev_serves_nothing_whatever_the_context() -> None:
    dev = {"model_package_arn_dev": f"{PACKAGES}/freight-pricing-dev/1"}
    assert context_packages(App(context=dev), stage_configs(ACCOUNT), ["dev"]) == {}


def test_an_allowed_instance_type_from_context_replaces_the_stages() -> None:
    app = App(context={"instance_type_staging": "ml.m5.xlarge"})
    changed = with_instance_type(app, STAGING)
    assert changed.serving is not None
    assert changed.serving.instance_type == "ml.m5.xlarge"
    assert with_instance_type(App(), STAGING) is STAGING


def test_an_instance_type_the_stage_does_not_allow_is_refused_naming_the_key() -> None:
    app = App(context={"instance_type_staging": "ml.p4d.24xlarge"})
    with pytest.raises(ValueError, match=r"context instance_type_staging: .*not allowed"):
        with_instance_type(app, STAGING)
