"""The SageMaker Pipeline "freight-pricing", built offline and deterministically with SDK v3."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import boto3

from pipelines.sdk_offline import (
    offline_aws_environment,
    root_logger_preserved,
    sdk_warnings_silenced,
    telemetry_opted_out,
)
from processing.contracts import (
    CONTENT_TYPES,
    EVALUATION_FILE,
    EVALUATION_OUTPUT,
    IMPROVEMENT_OVER_LANE_MEDIAN_PATH,
    JSON_CONTENT_TYPE,
    LANE_STATISTICS_OUTPUT,
    LINEAGE_FILE,
    LOADS_INPUT,
    MAPE_PATH,
    MODEL_INPUT,
    PREPARE_OUTPUTS,
    REPORT_OUTPUT,
    TEST_INPUT,
    TRAINING_CHANNELS,
    WINDOW_FILE,
)
from processing.lineage import LINEAGE_KEYS
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

with offline_aws_environment(DEFAULT_REGION), root_logger_preserved():
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.model_monitor.dataset_format import DatasetFormat
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.training.configs import (
        Compute,
        InputData,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.core.workflow.conditions import (
        ConditionGreaterThanOrEqualTo,
        ConditionLessThanOrEqualTo,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import (
        Parameter,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.quality_check_step import (
        DataQualityCheckConfig,
        QualityCheckStep,
    )
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.model_trainer import ModelTrainer

PROCESSING_BASE = "/opt/ml/processing"
# Every execution writes under s3://<bucket>/pipelines/<pipeline>/<execution id>/<step>/...
ARTIFACTS_PREFIX = "pipelines"
# Steps that depend only on the data window reuse a successful run of the same window.
CACHE_EXPIRE_AFTER = "P30D"
# The SDK's default is one hour; a year of loads on one instance may need more.
TRAINING_MAX_RUNTIME_SECONDS = 24 * 60 * 60
INFERENCE_INSTANCE_TYPES = ("ml.c6i.large", "ml.c6i.xlarge")
LANE_STATISTICS_ENTRYPOINT = ("python", "-m", "processing.lane_statistics")
PREPARE_ENTRYPOINT = ("python", "-m", "processing.prepare")
EVALUATE_ENTRYPOINT = ("python", "-m", "processing.evaluate")
EVALUATION_REPORT = "EvaluationReport"
LINEAGE_REPORT = "Lineage"
DATA_WINDOW = "DataWindow"

# The pipeline parameters, declared once; the step factories below use these objects.
# An empty StartDate/EndDate means "relative to the execution": the window ends the day before
# the execution starts and spans WindowDays days; explicit dates override.
START_DATE = ParameterString(name="StartDate", default_value="")
END_DATE = ParameterString(name="EndDate", default_value="")
WINDOW_DAYS = ParameterInteger(name="WindowDays", default_value=365)
VALIDATION_DAYS = ParameterFloat(name="ValidationDays", default_value=14.0)
TEST_DAYS = ParameterFloat(name="TestDays", default_value=14.0)
PROCESSING_INSTANCE_TYPE = ParameterString(
    name="ProcessingInstanceType", default_value="ml.m5.xlarge"
)
PREPARE_INSTANCE_COUNT = ParameterInteger(name="PrepareInstanceCount", default_value=1)
TRAINING_INSTANCE_TYPE = ParameterString(name="TrainingInstanceType", default_value="ml.m5.2xlarge")
TRAINING_INSTANCE_COUNT = ParameterInteger(name="TrainingInstanceCount", default_value=1)
NUM_ROUND = ParameterInteger(name="NumRound", default_value=400)
MAX_DEPTH = ParameterInteger(name="MaxDepth", default_value=7)
ETA = ParameterFloat(name="Eta", default_value=0.12)
MAX_MAPE = ParameterFloat(name="MaxMape", default_value=0.12)
MIN_IMPROVEMENT_OVER_LANE_MEDIAN = ParameterFloat(
    name="MinImprovementOverLaneMedian", default_value=0.30
)
MODEL_APPROVAL_STATUS = ParameterString(
    name="ModelApprovalStatus", default_value="PendingManualApproval"
)
PARAMETERS: tuple[Parameter, ...] = (
    START_DATE,
    END_DATE,
    WINDOW_DAYS,
    VALIDATION_DAYS,
    TEST_DAYS,
    PROCESSING_INSTANCE_TYPE,
    PREPARE_INSTANCE_COUNT,
    TRAINING_INSTANCE_TYPE,
    TRAINING_INSTANCE_COUNT,
    NUM_ROUND,
    MAX_DEPTH,
    ETA,
    MAX_MAPE,
    MIN_IMPROVEMENT_OVER_LANE_MEDIAN,
    MODEL_APPROVAL_STATUS,
)
PARAMETER_NAMES: tuple[str, ...] = tuple(parameter.name for parameter in PARAMETERS)

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


def build_pipeline(config: PipelineConfig) -> Pipeline:
    """The pipeline for one deployment, built without any AWS call or upload."""
    with offline_aws_environment(config.region), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Running within a PipelineSession")
        session = _offline_session(config)
        data_window = PropertyFile(
            name=DATA_WINDOW, output_name=LANE_STATISTICS_OUTPUT, path=WINDOW_FILE
        )
        lane_statistics = _lane_statistics_step(config, session, data_window)
        prepare = _prepare_step(config, session, lane_statistics, data_window)
        baseline = _data_quality_baseline_step(config, session, prepare)
        train = _train_step(config, session, prepare)
        evaluation_report = PropertyFile(
            name=EVALUATION_REPORT, output_name=EVALUATION_OUTPUT, path=EVALUATION_FILE
        )
        lineage = PropertyFile(
            name=LINEAGE_REPORT, output_name=EVALUATION_OUTPUT, path=LINEAGE_FILE
        )
        evaluate = _evaluate_step(config, session, prepare, train, [evaluation_report, lineage])
        register = _register_step(config, session, train, evaluate, baseline, lineage)
        gate = _gate_step(evaluate, evaluation_report, register)
        return Pipeline(
            name=config.pipeline_name,
            parameters=list(PARAMETERS),
            steps=[lane_statistics, prepare, baseline, train, evaluate, gate],
            sagemaker_session=session,
            # The SDK default (an Experiments trial per execution) applies only in some regions,
            # which would make the definition depend on the region; lineage is carried by the
            # model package's metadata instead.
            pipeline_experiment_config=None,
        )


def definition_json(config: PipelineConfig) -> str:
    """The pipeline definition: the JSON text that CDK deploys and the local runner executes."""
    with sdk_warnings_silenced():
        pipeline = build_pipeline(config)
        # definition() runs the captured processor/trainer calls again.
        with offline_aws_environment(config.region):
            text = str(pipeline.definition())
    return _register_arguments_the_api_accepts(text)


def _register_arguments_the_api_accepts(definition_text: str) -> str:
    """The definition with every RegisterModel step asking only what CreateModelPackage accepts.

    The pipeline service sends a RegisterModel step's Arguments to CreateModelPackage, which
    rejects keys outside its input shape and the empty sections the SDK writes into ModelMetrics
    (``Bias: {}``, ``Explainability: {}``). Keys are checked against botocore's service model
    (the one boto3 validates requests with), recursively through structures, lists and maps;
    expressions are left to be resolved at run time. Empty dicts and lists are dropped inside
    ModelMetrics and DriftCheckBaselines only, where empty means "not given". A dropped key that
    had a value is logged: it is something the SDK meant to send that the API does not know.
    """
    # Imported here: only this post-processing needs them.
    import json
    import logging

    import botocore.loaders
    import botocore.model

    # The model botocore.session.get_session().get_service_model("sagemaker") returns, read by
    # the loader alone: a session would read the AWS configuration (a missing AWS_PROFILE
    # raises), and the build must not depend on it.
    service_model = botocore.model.ServiceModel(
        botocore.loaders.create_loader().load_service_model("sagemaker", "service-2"),
        service_name="sagemaker",
    )
    shape_of_request = service_model.operation_model("CreateModelPackage").input_shape
    optional_sections = ("ModelMetrics", "DriftCheckBaselines")
    dropped: list[str] = []

    def accepted(value: Any, shape: Any, path: str, prune_empty: bool) -> Any:
        if isinstance(value, dict) and any(k == "Get" or k.startswith("Std:") for k in value):
            return value
        if shape.type_name == "structure" and isinstance(value, dict):
            kept = {}
            for key, item in value.items():
                if key not in shape.members:
                    if item not in ({}, [], None):
                        dropped.append(f"{path}.{key}")
                    continue
                prune_item = prune_empty or key in optional_sections
                item = accepted(item, shape.members[key], f"{path}.{key}", prune_item)
                if not (prune_item and item in ({}, [])):
                    kept[key] = item
            return kept
        if shape.type_name == "list" and isinstance(value, list):
            return [accepted(item, shape.member, f"{path}[]", prune_empty) for item in value]
        if shape.type_name == "map" and isinstance(value, dict):
            return {
                key: accepted(item, shape.value, f"{path}.{key}", prune_empty)
                for key, item in value.items()
            }
        return value

    def register_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = []
        for step in steps:
            if step.get("Type") == "RegisterModel":
                found.append(step)
            if step.get("Type") == "Condition":
                branches = step.get("Arguments", {})
                found += register_steps(branches.get("IfSteps", []) + branches.get("ElseSteps", []))
        return found

    definition = json.loads(definition_text)
    for step in register_steps(definition.get("Steps", [])):
        step["Arguments"] = accepted(step["Arguments"], shape_of_request, step["Name"], False)
    if dropped:
        logging.getLogger(__name__).warning(
            "CreateModelPackage does not accept %s; dropped from the definition", dropped
        )
    return json.dumps(definition)


def _offline_session(config: PipelineConfig) -> PipelineSession:
    boto_session = boto3.Session(
        aws_access_key_id="offline", aws_secret_access_key="offline", region_name=config.region
    )
    # Every S3 location below is explicit, so nothing calls default_bucket() (which would ask S3
    # whether the bucket exists); naming ours keeps any SDK default path out of the account's
    # sagemaker-<region>-<account> bucket.
    return PipelineSession(boto_session=boto_session, default_bucket=config.artifacts_bucket)


def _execution_uri(config: PipelineConfig, *parts: str) -> Join:
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


def _output_uri(step: ProcessingStep, output_name: str) -> Any:
    return step.properties.ProcessingOutputConfig.Outputs[output_name].S3Output.S3Uri


def _processor(
    config: PipelineConfig,
    session: PipelineSession,
    entrypoint: tuple[str, ...],
    instance_count: int | ParameterInteger,
) -> Processor:
    return Processor(
        role=config.role_arn,
        image_uri=config.image_uri,
        entrypoint=list(entrypoint),
        instance_count=instance_count,
        instance_type=PROCESSING_INSTANCE_TYPE,
        sagemaker_session=session,
    )


def _input(
    name: str, source: Any, destination: str, distribution: str = "FullyReplicated"
) -> ProcessingInput:
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


def _output(config: PipelineConfig, step_name: str, name: str, source: str) -> ProcessingOutput:
    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=_execution_uri(config, step_name, name),
            local_path=source,
            s3_upload_mode="EndOfJob",
        ),
    )


def _split_arguments() -> list[Any]:
    # Container arguments are strings: numeric parameters are converted at run time.
    return [
        "--validation-days", VALIDATION_DAYS.to_string(),
        "--test-days", TEST_DAYS.to_string(),
    ]  # fmt: skip


def _window_day(step: ProcessingStep, data_window: PropertyFile, end: str) -> JsonGet:
    return JsonGet(step_name=step.name, property_file=data_window, json_path=end)


def _cache_config() -> CacheConfig:
    return CacheConfig(enable_caching=True, expire_after=CACHE_EXPIRE_AFTER)


def _lane_statistics_step(
    config: PipelineConfig, session: PipelineSession, data_window: PropertyFile
) -> ProcessingStep:
    """Resolves the data window (window.json) and fits the lane statistics on it.

    Empty StartDate/EndDate make the window relative to the execution's start, so the step is
    not cached: its arguments change with every execution. The steps after it read the
    resolved dates, and those are cached on them.
    """
    name = "LaneStatistics"
    processor = _processor(config, session, LANE_STATISTICS_ENTRYPOINT, instance_count=1)
    output = LANE_STATISTICS_OUTPUT
    arguments = [
        "--start-date", START_DATE,
        "--end-date", END_DATE,
        "--window-days", WINDOW_DAYS.to_string(),
        "--execution-start", ExecutionVariables.START_DATETIME,
        *_split_arguments(),
    ]  # fmt: skip
    step_args = processor.run(
        inputs=[
            _input(LOADS_INPUT, config.raw_loads_uri, f"{PROCESSING_BASE}/input/{LOADS_INPUT}")
        ],
        outputs=[_output(config, name, output, f"{PROCESSING_BASE}/output/{output}")],
        arguments=arguments,
    )
    return ProcessingStep(name=name, step_args=step_args, property_files=[data_window])


def _prepare_step(
    config: PipelineConfig,
    session: PipelineSession,
    lane_statistics: ProcessingStep,
    data_window: PropertyFile,
) -> ProcessingStep:
    name = "Prepare"
    statistics_path = f"{PROCESSING_BASE}/input/statistics"
    processor = _processor(
        config, session, PREPARE_ENTRYPOINT, instance_count=PREPARE_INSTANCE_COUNT
    )
    arguments = [
        "--start-date", _window_day(lane_statistics, data_window, "start"),
        "--end-date", _window_day(lane_statistics, data_window, "end"),
        *_split_arguments(),
        "--statistics", statistics_path,
        "--code-version", config.code_version,
    ]  # fmt: skip
    step_args = processor.run(
        inputs=[
            # Each instance reads its share of the daily files; the lane statistics, fitted on the
            # whole window, keep the features the same whatever the number of instances.
            _input(
                LOADS_INPUT,
                config.raw_loads_uri,
                f"{PROCESSING_BASE}/input/{LOADS_INPUT}",
                distribution="ShardedByS3Key",
            ),
            _input(
                LANE_STATISTICS_OUTPUT,
                _output_uri(lane_statistics, LANE_STATISTICS_OUTPUT),
                statistics_path,
            ),
        ],
        outputs=[
            _output(config, name, output, f"{PROCESSING_BASE}/output/{output}")
            for output in PREPARE_OUTPUTS
        ],
        arguments=arguments,
    )
    return ProcessingStep(name=name, step_args=step_args, cache_config=_cache_config())


def _data_quality_baseline_step(
    config: PipelineConfig, session: PipelineSession, prepare: ProcessingStep
) -> QualityCheckStep:
    name = "DataQualityBaseline"
    return QualityCheckStep(
        name=name,
        quality_check_config=DataQualityCheckConfig(
            # A step property, not a pipeline parameter (SDK v3 issue 6206).
            baseline_dataset=_output_uri(prepare, "baseline"),
            dataset_format=DatasetFormat.csv(header=True),
            # Without it the SDK builds a path from a timestamped job name: a new definition
            # on every build.
            output_s3_uri=_execution_uri(config, name),
        ),
        # No image given: the job runs AWS's model-monitor analyzer of the session's region.
        check_job_config=CheckJobConfig(
            role=config.role_arn,
            instance_count=1,
            instance_type=PROCESSING_INSTANCE_TYPE,
            sagemaker_session=session,
        ),
        skip_check=True,
        register_new_baseline=True,
        model_package_group_name=config.model_package_group_name,
        cache_config=_cache_config(),
    )


def _train_step(
    config: PipelineConfig, session: PipelineSession, prepare: ProcessingStep
) -> TrainingStep:
    name = "Train"
    trainer = ModelTrainer(
        training_image=config.image_uri,
        role=config.role_arn,
        sagemaker_session=session,
        compute=Compute(
            instance_type=TRAINING_INSTANCE_TYPE, instance_count=TRAINING_INSTANCE_COUNT
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=TRAINING_MAX_RUNTIME_SECONDS),
        # Hyperparameter values are strings in the training API.
        hyperparameters={
            "num_round": NUM_ROUND.to_string(),
            "max_depth": MAX_DEPTH.to_string(),
            "eta": ETA.to_string(),
        },
        output_data_config=OutputDataConfig(s3_output_path=_execution_uri(config, name)),
    )
    with telemetry_opted_out(session):
        step_args = trainer.train(
            input_data_config=[
                InputData(channel_name=channel, data_source=_output_uri(prepare, channel))
                for channel in TRAINING_CHANNELS
            ]
        )
    return TrainingStep(name=name, step_args=step_args)


def _evaluate_step(
    config: PipelineConfig,
    session: PipelineSession,
    prepare: ProcessingStep,
    train: TrainingStep,
    property_files: list[PropertyFile],
) -> ProcessingStep:
    name = "Evaluate"
    processor = _processor(config, session, EVALUATE_ENTRYPOINT, instance_count=1)
    step_args = processor.run(
        inputs=[
            _input(
                MODEL_INPUT,
                train.properties.ModelArtifacts.S3ModelArtifacts,
                f"{PROCESSING_BASE}/input/{MODEL_INPUT}",
            ),
            _input(TEST_INPUT, _output_uri(prepare, TEST_INPUT), f"{PROCESSING_BASE}/input/test"),
        ],
        outputs=[
            _output(config, name, output, f"{PROCESSING_BASE}/{output}")
            for output in (EVALUATION_OUTPUT, REPORT_OUTPUT)
        ],
    )
    return ProcessingStep(name=name, step_args=step_args, property_files=property_files)


def _metrics_source(s3_uri: Any) -> MetricsSource:
    return MetricsSource(content_type=JSON_CONTENT_TYPE, s3_uri=s3_uri)


def _register_step(
    config: PipelineConfig,
    session: PipelineSession,
    train: TrainingStep,
    evaluate: ProcessingStep,
    baseline: QualityCheckStep,
    lineage: PropertyFile,
) -> ModelStep:
    builder = ModelBuilder(
        image_uri=config.image_uri,
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
        role_arn=config.role_arn,
        sagemaker_session=session,
        # Given, so that ModelBuilder does not look up a default instance type.
        instance_type=INFERENCE_INSTANCE_TYPES[0],
        # The deprecated default {"auto": True} sends register() down the script-mode path: it
        # asks S3 for the default bucket and adds SAGEMAKER_PROGRAM and SAGEMAKER_REGION to the
        # container (_prepare_container_def_base in sagemaker/serve/model_builder.py).
        dependencies=None,
        # The default (DEBUG) sets the level of the SDK's shared logger for the whole process.
        log_level=None,
    )
    evaluation_uri = Join(
        on="/", values=[_output_uri(evaluate, EVALUATION_OUTPUT), EVALUATION_FILE]
    )
    properties = baseline.properties
    with telemetry_opted_out(session):
        step_args = builder.register(
            model_package_group_name=config.model_package_group_name,
            content_types=list(CONTENT_TYPES),
            response_types=list(CONTENT_TYPES),
            inference_instances=list(INFERENCE_INSTANCE_TYPES),
            approval_status=MODEL_APPROVAL_STATUS,
            model_metrics=ModelMetrics(
                model_statistics=_metrics_source(evaluation_uri),
                model_data_statistics=_metrics_source(properties.CalculatedBaselineStatistics),
                model_data_constraints=_metrics_source(properties.CalculatedBaselineConstraints),
            ),
            drift_check_baselines=DriftCheckBaselines(
                model_data_statistics=_metrics_source(
                    properties.BaselineUsedForDriftCheckStatistics
                ),
                model_data_constraints=_metrics_source(
                    properties.BaselineUsedForDriftCheckConstraints
                ),
            ),
            # The data window (resolved), row and quarantine counts and code version, from the
            # evaluated model's own metadata.
            customer_metadata_properties={
                key: JsonGet(step_name=evaluate.name, property_file=lineage, json_path=key)
                for key in LINEAGE_KEYS
            },
        )
    return ModelStep(name="Register", step_args=step_args)


def _gate_step(
    evaluate: ProcessingStep, evaluation_report: PropertyFile, register: ModelStep
) -> ConditionStep:
    mape = JsonGet(step_name=evaluate.name, property_file=evaluation_report, json_path=MAPE_PATH)
    improvement = JsonGet(
        step_name=evaluate.name,
        property_file=evaluation_report,
        json_path=IMPROVEMENT_OVER_LANE_MEDIAN_PATH,
    )
    return ConditionStep(
        name="Gate",
        conditions=[
            ConditionLessThanOrEqualTo(left=mape, right=MAX_MAPE),
            ConditionGreaterThanOrEqualTo(left=improvement, right=MIN_IMPROVEMENT_OVER_LANE_MEDIAN),
        ],
        if_steps=[register],
        else_steps=[_fail_step(mape, improvement)],
    )


def _fail_step(mape: JsonGet, improvement: JsonGet) -> FailStep:
    message = [
        "quality gate failed: MAPE ", mape,
        " (max ", MAX_MAPE,
        "), improvement over lane median ", improvement,
        " (min ", MIN_IMPROVEMENT_OVER_LANE_MEDIAN, ")",
    ]  # fmt: skip
    return FailStep(name="Fail", error_message=Join(on="", values=message))
