"""The steps of the freight-pricing pipeline: one small factory per step, SDK v3, offline."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig
from pipelines.parameters import (
    END_DATE,
    ETA,
    MAX_DEPTH,
    MAX_MAPE,
    MIN_IMPROVEMENT_OVER_LANE_MEDIAN,
    MODEL_APPROVAL_STATUS,
    NUM_ROUND,
    PREPARE_INSTANCE_COUNT,
    PROCESSING_INSTANCE_TYPE,
    START_DATE,
    TRAINING_INSTANCE_COUNT,
    TRAINING_INSTANCE_TYPE,
    WINDOW_DAYS,
)
from pipelines.sdk_offline import sdk_imports, telemetry_opted_out
from pipelines.step_io import (
    cache_config,
    entry_point_processor,
    execution_output,
    execution_uri,
    output_uri,
    processing_input,
    split_arguments,
    window_day,
)
from processing.contracts import (
    CONTENT_TYPES,
    EVALUATION_FILE,
    EVALUATION_OUTPUT,
    IMPROVEMENT_OVER_LANE_MEDIAN_PATH,
    JSON_CONTENT_TYPE,
    LANE_STATISTICS_OUTPUT,
    LOADS_INPUT,
    MAPE_PATH,
    MODEL_INPUT,
    PREPARE_OUTPUTS,
    REPORT_OUTPUT,
    TEST_INPUT,
    TRAINING_CHANNELS,
)
from processing.lineage import LINEAGE_KEYS

with sdk_imports():
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.model_monitor.dataset_format import DatasetFormat
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
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.quality_check_step import (
        DataQualityCheckConfig,
        QualityCheckStep,
    )
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.model_trainer import ModelTrainer

PROCESSING_BASE = "/opt/ml/processing"
# The SDK's default is one hour; a year of loads on one instance may need more.
TRAINING_MAX_RUNTIME_SECONDS = 24 * 60 * 60
INFERENCE_INSTANCE_TYPES = ("ml.c6i.large", "ml.c6i.xlarge")
LANE_STATISTICS_ENTRYPOINT = ("python", "-m", "processing.lane_statistics")
PREPARE_ENTRYPOINT = ("python", "-m", "processing.prepare")
EVALUATE_ENTRYPOINT = ("python", "-m", "processing.evaluate")
EVALUATION_REPORT = "EvaluationReport"
LINEAGE_REPORT = "Lineage"
DATA_WINDOW = "DataWindow"


def lane_statistics_step(
    config: PipelineConfig, session: PipelineSession, data_window: PropertyFile
) -> ProcessingStep:
    """Resolves the data window (window.json) and fits the lane statistics on it.

    Empty StartDate/EndDate make the window relative to the execution's start, so the step is
    not cached: its arguments change with every execution. The steps after it read the
    resolved dates, and those are cached on them.
    """
    name = "LaneStatistics"
    processor = entry_point_processor(config, session, LANE_STATISTICS_ENTRYPOINT, instance_count=1)
    output = LANE_STATISTICS_OUTPUT
    arguments = [
        "--start-date", START_DATE,
        "--end-date", END_DATE,
        "--window-days", WINDOW_DAYS.to_string(),
        "--execution-start", ExecutionVariables.START_DATETIME,
        *split_arguments(),
    ]  # fmt: skip
    step_args = processor.run(
        inputs=[
            processing_input(
                LOADS_INPUT, config.raw_loads_uri, f"{PROCESSING_BASE}/input/{LOADS_INPUT}"
            )
        ],
        outputs=[execution_output(config, name, output, f"{PROCESSING_BASE}/output/{output}")],
        arguments=arguments,
    )
    return ProcessingStep(name=name, step_args=step_args, property_files=[data_window])


def prepare_step(
    config: PipelineConfig,
    session: PipelineSession,
    lane_statistics: ProcessingStep,
    data_window: PropertyFile,
) -> ProcessingStep:
    """Validates, splits and featurises the window, sharded by day files over its instances."""
    name = "Prepare"
    statistics_path = f"{PROCESSING_BASE}/input/statistics"
    processor = entry_point_processor(
        config, session, PREPARE_ENTRYPOINT, instance_count=PREPARE_INSTANCE_COUNT
    )
    arguments = [
        "--start-date", window_day(lane_statistics, data_window, "start"),
        "--end-date", window_day(lane_statistics, data_window, "end"),
        *split_arguments(),
        "--statistics", statistics_path,
        "--code-version", config.code_version,
    ]  # fmt: skip
    step_args = processor.run(
        inputs=[
            # Each instance reads its share of the daily files; the lane statistics, fitted on the
            # whole window, keep the features the same whatever the number of instances.
            processing_input(
                LOADS_INPUT,
                config.raw_loads_uri,
                f"{PROCESSING_BASE}/input/{LOADS_INPUT}",
                distribution="ShardedByS3Key",
            ),
            processing_input(
                LANE_STATISTICS_OUTPUT,
                output_uri(lane_statistics, LANE_STATISTICS_OUTPUT),
                statistics_path,
            ),
        ],
        outputs=[
            execution_output(config, name, output, f"{PROCESSING_BASE}/output/{output}")
            for output in PREPARE_OUTPUTS
        ],
        arguments=arguments,
    )
    return ProcessingStep(name=name, step_args=step_args, cache_config=cache_config())


def data_quality_baseline_step(
    config: PipelineConfig, session: PipelineSession, prepare: ProcessingStep
) -> QualityCheckStep:
    """Baselines Prepare's request-shaped sample with Model Monitor's analyzer (QualityCheck)."""
    name = "DataQualityBaseline"
    return QualityCheckStep(
        name=name,
        quality_check_config=DataQualityCheckConfig(
            # A step property, not a pipeline parameter (SDK v3 issue 6206).
            baseline_dataset=output_uri(prepare, "baseline"),
            dataset_format=DatasetFormat.csv(header=True),
            # Without it the SDK builds a path from a timestamped job name: a new definition
            # on every build.
            output_s3_uri=execution_uri(config, name),
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
        cache_config=cache_config(),
    )


def train_step(
    config: PipelineConfig, session: PipelineSession, prepare: ProcessingStep
) -> TrainingStep:
    """Trains the booster on Prepare's splits in our image (SageMaker's training contract)."""
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
        output_data_config=OutputDataConfig(s3_output_path=execution_uri(config, name)),
    )
    with telemetry_opted_out(session):
        step_args = trainer.train(
            input_data_config=[
                InputData(channel_name=channel, data_source=output_uri(prepare, channel))
                for channel in TRAINING_CHANNELS
            ]
        )
    return TrainingStep(name=name, step_args=step_args)


def evaluate_step(
    config: PipelineConfig,
    session: PipelineSession,
    prepare: ProcessingStep,
    train: TrainingStep,
    property_files: list[PropertyFile],
) -> ProcessingStep:
    """Scores the model and the naive baselines on the test split; writes evaluation and lineage."""
    name = "Evaluate"
    processor = entry_point_processor(config, session, EVALUATE_ENTRYPOINT, instance_count=1)
    step_args = processor.run(
        inputs=[
            processing_input(
                MODEL_INPUT,
                train.properties.ModelArtifacts.S3ModelArtifacts,
                f"{PROCESSING_BASE}/input/{MODEL_INPUT}",
            ),
            processing_input(
                TEST_INPUT, output_uri(prepare, TEST_INPUT), f"{PROCESSING_BASE}/input/test"
            ),
        ],
        outputs=[
            execution_output(config, name, output, f"{PROCESSING_BASE}/{output}")
            for output in (EVALUATION_OUTPUT, REPORT_OUTPUT)
        ],
    )
    return ProcessingStep(name=name, step_args=step_args, property_files=property_files)


def _metrics_source(s3_uri: Any) -> MetricsSource:
    return MetricsSource(content_type=JSON_CONTENT_TYPE, s3_uri=s3_uri)


def register_step(
    config: PipelineConfig,
    session: PipelineSession,
    train: TrainingStep,
    evaluate: ProcessingStep,
    baseline: QualityCheckStep,
    lineage: PropertyFile,
) -> ModelStep:
    """Registers the model package with its metrics, drift baselines and lineage."""
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
    evaluation_uri = Join(on="/", values=[output_uri(evaluate, EVALUATION_OUTPUT), EVALUATION_FILE])
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


def gate_step(
    evaluate: ProcessingStep, evaluation_report: PropertyFile, register: ModelStep
) -> ConditionStep:
    """Registers the model when it passes the quality thresholds, else fails naming them."""
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
