"""The SageMaker Pipeline "freight-pricing", built offline and deterministically with SDK v3.

The steps are in pipelines/steps.py, the parameters in pipelines/parameters.py, what differs
between deployments in pipelines/config.py; this module assembles them into the definition
JSON that CDK deploys and the local runner executes.
"""

from __future__ import annotations

import warnings

from pipelines.config import PipelineConfig
from pipelines.parameters import PARAMETERS
from pipelines.register_request import register_arguments_the_api_accepts
from pipelines.sdk_offline import (
    offline_aws_environment,
    sdk_imports,
    sdk_warnings_silenced,
)
from pipelines.step_io import offline_session
from pipelines.steps import (
    DATA_WINDOW,
    EVALUATION_REPORT,
    LINEAGE_REPORT,
    data_quality_baseline_step,
    evaluate_step,
    gate_step,
    lane_statistics_step,
    prepare_step,
    register_step,
    train_step,
)
from processing.contracts import (
    EVALUATION_FILE,
    EVALUATION_OUTPUT,
    LANE_STATISTICS_OUTPUT,
    LINEAGE_FILE,
    WINDOW_FILE,
)

with sdk_imports():
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.pipeline import Pipeline


def build_pipeline(config: PipelineConfig) -> Pipeline:
    """The pipeline for one deployment, built without any AWS call or upload."""
    with offline_aws_environment(config.region), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Running within a PipelineSession")
        session = offline_session(config)
        data_window = PropertyFile(
            name=DATA_WINDOW, output_name=LANE_STATISTICS_OUTPUT, path=WINDOW_FILE
        )
        lane_statistics = lane_statistics_step(config, session, data_window)
        prepare = prepare_step(config, session, lane_statistics, data_window)
        baseline = data_quality_baseline_step(config, session, prepare)
        train = train_step(config, session, prepare)
        evaluation_report = PropertyFile(
            name=EVALUATION_REPORT, output_name=EVALUATION_OUTPUT, path=EVALUATION_FILE
        )
        lineage = PropertyFile(
            name=LINEAGE_REPORT, output_name=EVALUATION_OUTPUT, path=LINEAGE_FILE
        )
        evaluate = evaluate_step(config, session, prepare, train, [evaluation_report, lineage])
        register = register_step(config, session, train, evaluate, baseline, lineage)
        gate = gate_step(evaluate, evaluation_report, register)
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
    return register_arguments_the_api_accepts(text)
