"""The local runner executes the deployed definition against moto (in-process)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from local.embedded_aws import EmbeddedAws, create_lake
from local.pipeline_run import local_pipeline_config, run_local_pipeline
from local.runner import LocalPipelineRun, PipelineRunError
from market.generator import MarketConfig, generate
from pipelines.definition import definition_json
from processing.lake import write_partitions
from processing.lineage import lineage_properties
from stages.names import ResourceNames
from tests.conftest import SMALL_MARKET

NAMES = ResourceNames(stage="local")
WINDOW = {
    "StartDate": SMALL_MARKET.start_date.isoformat(),
    "EndDate": SMALL_MARKET.dates()[-1].isoformat(),
    "ValidationDays": "7",
    "TestDays": "7",
    "NumRound": "40",
}


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with mock_aws():
        aws = EmbeddedAws(endpoint_url=None)
        create_lake(aws, NAMES)
        write_partitions(generate(SMALL_MARKET), NAMES.raw_loads_uri, s3_client=aws.client("s3"))
        yield aws


def _s3_json(aws: EmbeddedAws, uri: str) -> Any:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def _packages(aws: EmbeddedAws) -> list[dict[str, Any]]:
    sagemaker = aws.client("sagemaker")
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    if not groups:
        return []
    summaries = sagemaker.list_model_packages(ModelPackageGroupName=NAMES.model_package_group)
    return [
        sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"])
        for s in summaries["ModelPackageSummaryList"]
    ]


def test_run_registers_one_package_whose_metrics_and_baselines_exist(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    before = len(_packages(aws))
    # Two Prepare instances: the multi-host path that SageMaker takes, where each instance
    # writes its own summary and training has to merge them.
    parameters = {**WINDOW, "PrepareInstanceCount": "2"}
    result = run_local_pipeline(aws, tmp_path, parameters, code_version="test-version")
    assert result.status == "Succeeded", result.failure
    assert [s.name for s in result.steps] == [
        "LaneStatistics", "Prepare", "DataQualityBaseline", "Train", "Evaluate", "Gate",
        "Register",
    ]  # fmt: skip
    packages = _packages(aws)
    assert len(packages) == before + 1
    package = next(p for p in packages if p["ModelPackageArn"] == result.model_package_arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    metrics = package["ModelMetrics"]
    evaluation = _s3_json(aws, metrics["ModelQuality"]["Statistics"]["S3Uri"])
    assert set(evaluation["regression_metrics"]) == {"mae", "mse", "rmse", "r2", "mape"}
    statistics = _s3_json(aws, metrics["ModelDataQuality"]["Statistics"]["S3Uri"])
    assert statistics["dataset"]["item_count"] > 0
    constraints = _s3_json(aws, metrics["ModelDataQuality"]["Constraints"]["S3Uri"])
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] == (
        "Robust"
    )
    drift = package["DriftCheckBaselines"]["ModelDataQuality"]
    assert _s3_json(aws, drift["Statistics"]["S3Uri"]) == statistics
    assert _s3_json(aws, drift["Constraints"]["S3Uri"]) == constraints
    registered = package["CustomerMetadataProperties"]
    model_uri = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    bucket, _, key = model_uri.removeprefix("s3://").partition("/")
    archive = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert "xgboost-model.ubj" in tar.getnames()
        metadata = json.load(tar.extractfile("model_metadata.json"))  # type: ignore[arg-type]
    assert metadata["trees"] <= 40  # the NumRound override reached training
    # The model names its data: window, row and quarantine counts, code version...
    data = metadata["data"]
    assert data["window"] == {"start": WINDOW["StartDate"], "end": WINDOW["EndDate"]}
    assert data["code_version"] == "test-version"
    assert data["prepare_instances"] == 2
    rows = data["rows"]
    assert rows["in"] == SMALL_MARKET.days * SMALL_MARKET.rows_per_day
    assert rows["in"] == rows["valid"] + rows["quarantined"]
    assert rows["valid"] == rows["train"] + rows["validation"] + rows["test"]
    assert rows["quarantined"] > 0
    assert sum(data["quarantine_by_reason"].values()) == rows["quarantined"]
    # ... and so does its package in the registry, key for key.
    assert registered == lineage_properties(metadata)
    assert registered["data_window_start"] == WINDOW["StartDate"]
    assert registered["rows_train"] == str(rows["train"])
    assert registered["code_version"] == "test-version"


def test_gate_failure_ends_in_the_fail_step_and_registers_nothing(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    before = len(_packages(aws))
    result = run_local_pipeline(aws, tmp_path, {**WINDOW, "MaxMape": "0.0001"})
    assert result.status == "Failed"
    assert result.steps[-1].name == "Fail"
    assert result.steps[-1].status == "Failed"
    assert "quality gate failed: MAPE" in (result.failure or "")
    assert "(max 0.0001)" in (result.failure or "")
    assert result.model_package_arn is None
    assert len(_packages(aws)) == before


def test_a_failing_step_surfaces_its_error(aws: EmbeddedAws, tmp_path: Path) -> None:
    result = run_local_pipeline(aws, tmp_path, {**WINDOW, "StartDate": "2027-01-01"})
    assert result.status == "Failed"
    assert result.steps[0].name == "LaneStatistics"
    assert result.steps[0].status == "Failed"
    assert "step LaneStatistics" in (result.failure or "")
    assert "is after --end-date" in (result.failure or "")


def _prepared_rows(aws: EmbeddedAws, uri: str) -> tuple[set[str], np.ndarray]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = aws.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
              for k in keys]  # fmt: skip
    table = pa.concat_tables(tables)
    matrix = np.column_stack([column.to_numpy() for column in table.columns])
    hosts = {key.rsplit("/", 1)[1].rsplit("-", 1)[0] for key in keys}
    return hosts, matrix[np.lexsort(matrix.T[::-1])]


def test_one_and_three_prepare_instances_give_the_same_features(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    # Only the two data steps of the deployable definition: the rest does not matter here.
    definition = json.loads(definition_json(local_pipeline_config("x")))
    definition["Steps"] = [
        s for s in definition["Steps"] if s["Name"] in ("LaneStatistics", "Prepare")
    ]
    rows = {}
    for instances in ("1", "3"):
        parameters = {**WINDOW, "PrepareInstanceCount": instances}
        result = LocalPipelineRun(definition, aws, tmp_path, parameters).run()
        assert result.status == "Succeeded", result.failure
        hosts, rows[instances] = _prepared_rows(aws, result.steps[1].outputs["train"])
        assert hosts == {f"part-algo-{i + 1}" for i in range(int(instances))}
    np.testing.assert_array_equal(rows["1"], rows["3"])


def test_unknown_parameters_and_unsupported_steps_are_named(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    with pytest.raises(PipelineRunError, match="unknown parameter"):
        LocalPipelineRun({"Parameters": [], "Steps": []}, aws, tmp_path, {"Colour": "red"})
    lambda_step = {"Steps": [{"Name": "Notify", "Type": "Lambda", "Arguments": {}}]}
    result = LocalPipelineRun(lambda_step, aws, tmp_path).run()
    assert result.failure == "step Notify: unsupported step type 'Lambda'"
    expression = {
        "Steps": [{"Name": "Stop", "Type": "Fail",
                   "Arguments": {"ErrorMessage": {"Std:Unknown": {}}}}]
    }  # fmt: skip
    assert "unsupported expression 'Std:Unknown'" in (
        LocalPipelineRun(expression, aws, tmp_path).run().failure or ""
    )
    bad_type = {"Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 1}], "Steps": []}
    with pytest.raises(PipelineRunError, match="parameter N must be Integer"):
        LocalPipelineRun(bad_type, aws, tmp_path, {"N": "many"})


def test_the_local_definition_is_the_deployable_one() -> None:
    config = local_pipeline_config("x")
    assert config.raw_loads_uri == NAMES.raw_loads_uri
    assert config.pipeline_name == NAMES.pipeline
    assert MarketConfig().start_date.isoformat() == "2025-11-01"
