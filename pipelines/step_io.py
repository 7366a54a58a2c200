"""The building blocks the step factories share: session, processors, inputs, outputs, URIs."""

from __future__ import annotations

from typing import Any

import boto3

from pipelines.config import PipelineConfig
from pipelines.parameters import PROCESSING_INSTANCE_TYPE, TEST_DAYS, VALIDATION_DAYS
from pipelines.sdk_offline import sdk_imports

with sdk_imports():
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterInteger
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep

# Every execution writes under s3://<bucket>/pipelines/<pipeline>/<execution id>/<step>/...
ARTIFACTS_PREFIX = "pipelines"
# Steps that depend only on the data window reuse a successful run of the same window.
CACHE_EXPIRE_AFTER = "P30D"


def offline_session(config: PipelineConfig) -> PipelineSession:
    """A pipeline session with dummy credentials and our bucket: it never asks AWS anything."""
    boto_session = boto3.Session(
        aws_access_key_id="offline", aws_secret_access_key="offline", region_name=config.region
    )
    # Every S3 location below is explicit, so nothing calls default_bucket() (which would ask S3
    # whether the bucket exists); naming ours keeps any SDK default path out of the account's
    # sagemaker-<region>-<account> bucket.
    return PipelineSession(boto_session=boto_session, default_bucket=config.artifacts_bucket)


def execution_uri(config: PipelineConfig, *parts: str) -> Join:
    """An S3 URI under this execution's own prefix."""
    # One prefix per execution: outputs of different runs never overwrite each other, so a
    # registered package's metrics and baselines stay what they were when it was registered.
    return Join(
        on="/",
        values=[
            "s3:/",
            config.artifacts_bucket,
            ARTIFACTS_PREFIX,
            config.pipeline_name,
            ExecutionVariables.PIPELINE_EXECUTION_ID,
            *parts,
        ],
    )


def output_uri(step: ProcessingStep, output_name: str) -> Any:
    """The S3 URI of a processing step's named output (a step property)."""
    return step.properties.ProcessingOutputConfig.Outputs[output_name].S3Output.S3Uri


def entry_point_processor(
    config: PipelineConfig,
    session: PipelineSession,
    entrypoint: tuple[str, ...],
    instance_count: int | ParameterInteger,
) -> Processor:
    """A processor running one of our entry points in our image."""
    return Processor(
        role=config.role_arn,
        image_uri=config.image_uri,
        entrypoint=list(entrypoint),
        instance_count=instance_count,
        instance_type=PROCESSING_INSTANCE_TYPE,
        sagemaker_session=session,
    )


def processing_input(
    name: str, source: Any, destination: str, distribution: str = "FullyReplicated"
) -> ProcessingInput:
    """A processing input from S3, copied to ``destination`` when the job starts."""
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=source,
            local_path=destination,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type=distribution,
        ),
    )


def execution_output(
    config: PipelineConfig, step_name: str, name: str, source: str
) -> ProcessingOutput:
    """A processing output uploaded to this execution's prefix at the end of the job."""
    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=execution_uri(config, step_name, name),
            local_path=source,
            s3_upload_mode="EndOfJob",
        ),
    )


def split_arguments() -> list[Any]:
    """The split options every window step takes, as strings."""
    # Container arguments are strings: numeric parameters are converted at run time.
    return [
        "--validation-days", VALIDATION_DAYS.to_string(),
        "--test-days", TEST_DAYS.to_string(),
    ]  # fmt: skip


def window_day(step: ProcessingStep, data_window: PropertyFile, end: str) -> JsonGet:
    """The first or last day (``start``/``end``) of the resolved window."""
    return JsonGet(step_name=step.name, property_file=data_window, json_path=end)


def cache_config() -> CacheConfig:
    """Cache a step whose arguments pin its inputs."""
    return CacheConfig(enable_caching=True, expire_after=CACHE_EXPIRE_AFTER)
