"""The CDK app entry: the only place that reads context and the environment."""

from __future__ import annotations

import os
import re
from dataclasses import replace

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from cdk_app.constructs.serving_model import ModelPackage
from cdk_app.stacks.data_lake import DataLakeStack
from cdk_app.stacks.ml_pipeline import MlPipelineStack
from cdk_app.stacks.serving import ServingStack, ServingStackProps
from stages.config import StageConfig, stage_configs
from stages.names import DEFAULT_REGION

DEFAULT_ACCOUNT = "111111111111"  # synth without credentials; deploy with -c account=<id>
# A versioned model package: arn:aws:sagemaker:<region>:<account>:model-package/<group>/<n>.
_PACKAGE_ARN = re.compile(
    r"arn:aws:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[A-Za-z0-9-]+)/(?P<version>[1-9][0-9]*)"
)


def package_context_key(stage: str) -> str:
    """The context key naming the package a stage's endpoint serves."""
    return f"model_package_arn_{stage}"


def model_package(value: object, key: str, source: StageConfig) -> ModelPackage:
    """``value`` as a package of ``source``'s group in its account and region, else ValueError."""
    match = _PACKAGE_ARN.fullmatch(str(value))
    if match is None:
        raise ValueError(
            f"context {key}: {value!r} is no versioned model package ARN "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
        )
    expected = {"region": source.region, "account": source.account,
                "group": source.names.model_package_group}  # fmt: skip
    wrong = [f"{part} {match[part]!r} (expected {want!r})"
             for part, want in expected.items() if match[part] != want]  # fmt: skip
    if wrong:
        raise ValueError(f"context {key}: {value!r} has the wrong {', '.join(wrong)}")
    return ModelPackage(arn=str(value), group=match["group"], version=int(match["version"]))


def with_instance_type(app: App, config: StageConfig) -> StageConfig:
    """``config`` with the instance type context ``instance_type_<stage>`` gives, if allowed.

    ``freight deploy --instance-type`` passes it; the stage's allowed types bound it.
    """
    key = f"instance_type_{config.stage}"
    value = app.node.try_get_context(key)
    if not value or config.serving is None:
        return config
    try:
        instance_type = config.serving.check_instance_type(str(value))
    except ValueError as error:
        raise ValueError(f"context {key}: {error}") from None
    return replace(config, serving=replace(config.serving, instance_type=instance_type))


def package_source(config: StageConfig, configs: dict[str, StageConfig]) -> StageConfig:
    """The stage whose group ``config``'s endpoint serves packages of (prod: staging)."""
    return configs[config.promote_from] if config.promote_from else config


def context_packages(
    app: App, configs: dict[str, StageConfig], selected: list[str]
) -> dict[str, ModelPackage]:
    """The validated package of each ``selected`` serving stage that context names one for."""
    packages = {}
    for name in selected:
        config = configs[name]
        key = package_context_key(name)
        value = app.node.try_get_context(key)
        if config.serving is not None and value:
            packages[name] = model_package(value, key, package_source(config, configs))
    return packages


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
    selected = [name for name in configs if requested is None or name == requested]
    # Checked before any stack is built: a bad ARN fails at once, naming its context key.
    packages = context_packages(app, configs, selected)
    for name in selected:
        config = with_instance_type(app, configs[name])
        environment = Environment(account=config.account, region=config.region)
        lake = DataLakeStack(app, f"FreightPricing-{name}-DataLake", config=config, env=environment)
        pipeline = MlPipelineStack(
            app, f"FreightPricing-{name}-MlPipeline", config=config, lake=lake,
            code_version=code_version, env=environment,
        )  # fmt: skip
        if config.serving is None:
            continue
        ServingStack(
            app, f"FreightPricing-{name}-Serving",
            props=ServingStackProps(
                config=config, lake=lake, pipeline=pipeline,
                source_names=package_source(config, configs).names, package=packages.get(name),
                context_key=package_context_key(name),
            ),
            env=environment,
        )  # fmt: skip
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
