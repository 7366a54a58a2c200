"""The whole app synthesized once per session, with CloudFormation validation and cdk-nag."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, cx_api
from aws_cdk.assertions import Template

from cdk_app.app import build_app

ACCOUNT = "123456789012"
CODE_VERSION = "abc123"
PACKAGES = f"arn:aws:sagemaker:eu-central-1:{ACCOUNT}:model-package"
# The packages the session's serving stacks deploy: prod serves one promoted from staging.
STAGING_PACKAGE = f"{PACKAGES}/freight-pricing-staging/3"
PROD_PACKAGE = f"{PACKAGES}/freight-pricing-staging/2"
SESSION_CONTEXT = {
    "account": ACCOUNT,
    "code_version": CODE_VERSION,
    "model_package_arn_staging": STAGING_PACKAGE,
    "model_package_arn_prod": PROD_PACKAGE,
}


@pytest.fixture(scope="session")
def assembly() -> cx_api.CloudAssembly:
    """Every stack of every stage, the serving stacks with a package each.

    Synthesis raises ValidationFailed on a cdk-nag error.
    """
    app = build_app(App(context=dict(SESSION_CONTEXT)))
    return app.synth()


@pytest.fixture(scope="session")
def ml_template(assembly: cx_api.CloudAssembly) -> Template:
    """The dev stage's ML pipeline stack."""
    return Template.from_json(assembly.get_stack_by_name("FreightPricing-dev-MlPipeline").template)


@pytest.fixture(scope="session")
def deployed_definition(ml_template: Template) -> dict[str, Any]:
    """The dev pipeline's definition as deployed, each token (the image URI) read as IMAGE."""
    (pipeline,) = ml_template.find_resources("AWS::SageMaker::Pipeline").values()
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return dict(json.loads("".join(p if isinstance(p, str) else "IMAGE" for p in parts)))


@pytest.fixture(scope="session")
def serving_templates(assembly: cx_api.CloudAssembly) -> dict[str, Template]:
    """The serving stacks of staging and prod, by stage."""
    return {
        stage: Template.from_json(
            assembly.get_stack_by_name(f"FreightPricing-{stage}-Serving").template
        )
        for stage in ("staging", "prod")
    }
