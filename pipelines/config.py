"""What differs between deployments of the pipeline, and the one way a stage becomes one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stages.names import DEFAULT_REGION, ResourceNames

DEFAULT_PIPELINE_NAME = "freight-pricing"
# Placeholders: the CDK app substitutes its tokens into the definition's JSON text, never into
# the SDK (a token inside an S3 URI breaks the SDK's URL parsing).
DEFAULT_ROLE_ARN = "arn:aws:iam::111111111111:role/freight-pricing-sagemaker"
DEFAULT_IMAGE_URI = "111111111111.dkr.ecr.eu-central-1.amazonaws.com/freight-pricing:latest"
DEFAULT_ARTIFACTS_BUCKET = "freight-pricing-artifacts"
DEFAULT_RAW_LOADS_URI = "s3://freight-pricing-raw/raw/loads"
DEFAULT_MODEL_PACKAGE_GROUP_NAME = "freight-pricing"
DEFAULT_CODE_VERSION = "unknown"

_PIPELINE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")
_MODEL_PACKAGE_GROUP_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
# A full ARN: the SDK calls IAM to expand a bare role name.
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_IMAGE_URI = re.compile(r"\S{1,255}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?")
# The character set of a model package's customer metadata values.
_METADATA_VALUE = re.compile(r"[\w .:/=+@-]{1,256}")


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """What differs between deployments of the pipeline; what differs between runs is a parameter.

    The defaults are placeholders: plain strings that the CDK app replaces in the JSON text.
    """

    pipeline_name: str = DEFAULT_PIPELINE_NAME
    region: str = DEFAULT_REGION
    role_arn: str = DEFAULT_ROLE_ARN
    image_uri: str = DEFAULT_IMAGE_URI
    artifacts_bucket: str = DEFAULT_ARTIFACTS_BUCKET
    raw_loads_uri: str = DEFAULT_RAW_LOADS_URI
    model_package_group_name: str = DEFAULT_MODEL_PACKAGE_GROUP_NAME
    code_version: str = DEFAULT_CODE_VERSION

    def __post_init__(self) -> None:
        patterns = {
            "pipeline_name": _PIPELINE_NAME,
            "region": _REGION,
            "role_arn": _ROLE_ARN,
            "image_uri": _IMAGE_URI,
            "artifacts_bucket": _BUCKET,
            "raw_loads_uri": _S3_URI,
            "model_package_group_name": _MODEL_PACKAGE_GROUP_NAME,
            "code_version": _METADATA_VALUE,
        }
        for field, pattern in patterns.items():
            value = getattr(self, field)
            if not pattern.fullmatch(value):
                raise ValueError(
                    f"PipelineConfig.{field} is invalid: {value!r} (expected {pattern.pattern})"
                )


def pipeline_config(
    names: ResourceNames,
    *,
    region: str = DEFAULT_REGION,
    account: str | None = None,
    role_arn: str | None = None,
    image_uri: str = DEFAULT_IMAGE_URI,
    code_version: str = DEFAULT_CODE_VERSION,
) -> PipelineConfig:
    """The pipeline of one stage: every name from ``names``, the role from the account if given.

    The one way the CLI, the local runner and the CDK app turn a stage into a PipelineConfig.
    """
    if role_arn is None:
        role_arn = names.sagemaker_role_arn(account) if account else DEFAULT_ROLE_ARN
    return PipelineConfig(
        pipeline_name=names.pipeline,
        region=region,
        role_arn=role_arn,
        image_uri=image_uri,
        artifacts_bucket=names.artifacts_bucket,
        raw_loads_uri=names.raw_loads_uri,
        model_package_group_name=names.model_package_group,
        code_version=code_version,
    )
