"""The CDK app entry: the only place that reads context and the environment."""

from __future__ import annotations

import os

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from cdk_app.stacks.data_lake import DataLakeStack
from cdk_app.stacks.ml_pipeline import MlPipelineStack
from stages.config import stage_configs
from stages.names import DEFAULT_REGION

DEFAULT_ACCOUNT = "111111111111"  # synth without credentials; deploy with -c account=<id>


def build_app(app: App | None = None) -> App:
    """Every stack of every requested stage (context ``stage``: one, or all when absent)."""
    app = app or App()
    account = str(app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT")
                  or DEFAULT_ACCOUNT)  # fmt: skip
    region = str(app.node.try_get_context("region") or DEFAULT_REGION)
    # The commit being deployed, stamped into registered models (cdk deploy -c code_version=...).
    code_version = str(app.node.try_get_context("code_version") or "unknown")
    configs = stage_configs(account, region)
    requested = app.node.try_get_context("stage")
    if requested is not None and requested not in configs:
        raise ValueError(f"context stage must be one of {', '.join(configs)}, got {requested!r}")
    for name, config in configs.items():
        if requested is not None and name != requested:
            continue
        environment = Environment(account=config.account, region=config.region)
        lake = DataLakeStack(app, f"FreightPricing-{name}-DataLake", config=config, env=environment)
        MlPipelineStack(
            app, f"FreightPricing-{name}-MlPipeline", config=config, lake=lake,
            code_version=code_version, env=environment,
        )  # fmt: skip
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
