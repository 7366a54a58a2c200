"""The pipeline definition: its structure, that it builds offline, and that it is deterministic."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipelines.config import PipelineConfig
from pipelines.definition import build_pipeline, definition_json
from pipelines.parameters import PARAMETER_NAMES
from pipelines.register_request import register_arguments_the_api_accepts
from pipelines.step_io import CACHE_EXPIRE_AFTER
from processing.lineage import LINEAGE_KEYS

REPO_ROOT = Path(__file__).resolve().parents[2]
# The public schema of pipeline definitions, kept next to the repository (see its SOURCE.md).
# shared/ sits beside the repository, locally and in CI.
SCHEMA_PATH = (
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "pipeline-definition.schema.json"
)
CONFIG = PipelineConfig()
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}
MONITOR_ANALYZER = "sagemaker-model-monitor-analyzer"

EXPECTED_PARAMETERS = [
    ("StartDate", "String", ""),
    ("EndDate", "String", ""),
    ("WindowDays", "Integer", 365),
    ("ValidationDays", "Float", 14.0),
    ("TestDays", "Float", 14.0),
    ("ProcessingInstanceType", "String", "ml.m5.xlarge"),
    ("PrepareInstanceCount", "Integer", 1),
    ("TrainingInstanceType", "String", "ml.m5.2xlarge"),
    ("TrainingInstanceCount", "Integer", 1),
    ("NumRound", "Integer", 400),
    ("MaxDepth", "Integer", 7),
    ("Eta", "Float", 0.12),
    ("MaxMape", "Float", 0.12),
    ("MinImprovementOverLaneMedian", "Float", 0.30),
    ("ModelApprovalStatus", "String", "PendingManualApproval"),
]


def get(parameter: str) -> dict[str, str]:
    return {"Get": f"Parameters.{parameter}"}


def as_string(parameter: str) -> dict[str, Any]:
    """A numeric parameter converted to a string at run time (the SDK's ``to_string()``)."""
    return {"Std:Join": {"On": "", "Values": [get(parameter)]}}


def output_uri(step: str, output: str) -> dict[str, str]:
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"}


def execution_uri(*parts: str, config: PipelineConfig = CONFIG) -> dict[str, Any]:
    values = ["s3:/", config.artifacts_bucket, "pipelines", config.pipeline_name, EXECUTION_ID]
    return {"Std:Join": {"On": "/", "Values": [*values, *parts]}}


def json_get(path: str, step: str = "Evaluate", report: str = "EvaluationReport") -> dict[str, Any]:
    source = {"Get": f"Steps.{step}.PropertyFiles.{report}"}
    return {"Std:JsonGet": {"PropertyFile": source, "Path": path}}


def all_steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step by name, including those inside the condition's branches."""
    steps: dict[str, dict[str, Any]] = {}
    pending = list(definition["Steps"])
    while pending:
        step = pending.pop(0)
        steps[step["Name"]] = step
        if step["Type"] == "Condition":
            pending += step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]
    return steps


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every value of a JSON document with the key that holds it ("" in a list), depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield "", item
            yield from walk(item)


def referenced_steps(node: Any) -> set[str]:
    """Names of the steps whose properties or property files a part of the definition uses."""
    return {
        value.split(".")[1]
        for key, value in walk(node)
        if key == "Get" and isinstance(value, str) and value.startswith("Steps.")
    }


def referenced_parameters(node: Any) -> set[str]:
    return {
        value.removeprefix("Parameters.")
        for key, value in walk(node)
        if key == "Get" and isinstance(value, str) and value.startswith("Parameters.")
    }


def input_named(step: dict[str, Any], name: str) -> dict[str, Any]:
    inputs = {item["InputName"]: item for item in step["Arguments"]["ProcessingInputs"]}
    return inputs[name]["S3Input"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def definition_text() -> str:
    return definition_json(CONFIG)


@pytest.fixture(scope="module")
def definition(definition_text: str) -> dict[str, Any]:
    return json.loads(definition_text)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return all_steps(definition)


# -- parameters ---------------------------------------------------------------------------------


def test_parameters_have_their_types_and_defaults_in_order(definition: dict[str, Any]) -> None:
    declared = [(p["Name"], p["Type"], p["DefaultValue"]) for p in definition["Parameters"]]
    assert declared == EXPECTED_PARAMETERS
    assert [name for name, _, _ in EXPECTED_PARAMETERS] == list(PARAMETER_NAMES)


def test_every_parameter_is_used_and_every_use_is_declared(definition: dict[str, Any]) -> None:
    assert referenced_parameters(definition["Steps"]) == set(PARAMETER_NAMES)


# -- steps and their dependencies ---------------------------------------------------------------


def test_steps_have_their_names_and_types(definition: dict[str, Any]) -> None:
    top_level = [(step["Name"], step["Type"]) for step in definition["Steps"]]
    assert top_level == [
        ("LaneStatistics", "Processing"),
        ("Prepare", "Processing"),
        ("DataQualityBaseline", "QualityCheck"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("Gate", "Condition"),
    ]
    gate = definition["Steps"][-1]["Arguments"]
    # ModelStep(register()) renders as one RegisterModel step under its own name in SDK v3.
    assert [(step["Name"], step["Type"]) for step in gate["IfSteps"]] == [
        ("Register", "RegisterModel")
    ]
    assert [(step["Name"], step["Type"]) for step in gate["ElseSteps"]] == [("Fail", "Fail")]


def test_steps_depend_on_each_other_through_properties(steps: dict[str, dict[str, Any]]) -> None:
    dependencies = {name: referenced_steps(step["Arguments"]) for name, step in steps.items()}
    dependencies["Gate"] = referenced_steps(steps["Gate"]["Arguments"]["Conditions"])
    assert dependencies == {
        "LaneStatistics": set(),
        "Prepare": {"LaneStatistics"},
        "DataQualityBaseline": {"Prepare"},
        "Train": {"Prepare"},
        "Evaluate": {"Prepare", "Train"},
        "Gate": {"Evaluate"},
        "Register": {"Train", "Evaluate", "DataQualityBaseline"},
        "Fail": {"Evaluate"},
    }
    assert not any("DependsOn" in step for step in steps.values())


def test_prepare_reads_the_lane_statistics_output(steps: dict[str, dict[str, Any]]) -> None:
    statistics = input_named(steps["Prepare"], "statistics")
    assert statistics["S3Uri"] == output_uri("LaneStatistics", "statistics")
    assert statistics["LocalPath"] == "/opt/ml/processing/input/statistics"


def test_prepare_shards_the_raw_loads_across_its_instances(
    steps: dict[str, dict[str, Any]],
) -> None:
    prepare = steps["Prepare"]["Arguments"]
    loads = input_named(steps["Prepare"], "loads")
    assert loads["S3Uri"] == CONFIG.raw_loads_uri
    assert loads["LocalPath"] == "/opt/ml/processing/input/loads"
    assert loads["S3DataDistributionType"] == "ShardedByS3Key"
    assert input_named(steps["Prepare"], "statistics")["S3DataDistributionType"] == (
        "FullyReplicated"
    )
    assert prepare["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == get(
        "PrepareInstanceCount"
    )
    lane_statistics = input_named(steps["LaneStatistics"], "loads")
    assert lane_statistics["S3Uri"] == CONFIG.raw_loads_uri
    assert lane_statistics["S3DataDistributionType"] == "FullyReplicated"


@pytest.mark.parametrize(
    ("step", "module"),
    [
        ("LaneStatistics", "processing.lane_statistics"),
        ("Prepare", "processing.prepare"),
        ("Evaluate", "processing.evaluate"),
    ],
)
def test_processing_steps_run_our_entry_points_in_our_image(
    steps: dict[str, dict[str, Any]], step: str, module: str
) -> None:
    arguments = steps[step]["Arguments"]
    assert arguments["AppSpecification"]["ImageUri"] == CONFIG.image_uri
    assert arguments["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", module]
    assert arguments["RoleArn"] == CONFIG.role_arn
    assert arguments["ProcessingResources"]["ClusterConfig"]["InstanceType"] == get(
        "ProcessingInstanceType"
    )


def test_lane_statistics_resolves_the_window_relative_to_the_execution(
    steps: dict[str, dict[str, Any]],
) -> None:
    split = ["--validation-days", as_string("ValidationDays"), "--test-days", as_string("TestDays")]
    lane_statistics = steps["LaneStatistics"]
    assert lane_statistics["Arguments"]["AppSpecification"]["ContainerArguments"] == [
        "--start-date", get("StartDate"),
        "--end-date", get("EndDate"),
        "--window-days", as_string("WindowDays"),
        "--execution-start", {"Get": "Execution.StartDateTime"},
        *split,
    ]  # fmt: skip
    assert lane_statistics["PropertyFiles"] == [
        {"PropertyFileName": "DataWindow", "OutputName": "statistics", "FilePath": "window.json"}
    ]


def test_prepare_reads_the_resolved_window(steps: dict[str, dict[str, Any]]) -> None:
    window = {"Get": "Steps.LaneStatistics.PropertyFiles.DataWindow"}
    prepare = steps["Prepare"]["Arguments"]["AppSpecification"]
    assert prepare["ContainerArguments"] == [
        "--start-date", {"Std:JsonGet": {"PropertyFile": window, "Path": "start"}},
        "--end-date", {"Std:JsonGet": {"PropertyFile": window, "Path": "end"}},
        "--validation-days", as_string("ValidationDays"),
        "--test-days", as_string("TestDays"),
        "--statistics", "/opt/ml/processing/input/statistics",
        "--code-version", CONFIG.code_version,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("step", "outputs"),
    [
        ("LaneStatistics", {"statistics": "/opt/ml/processing/output/statistics"}),
        (
            "Prepare",
            {
                name: f"/opt/ml/processing/output/{name}"
                for name in ("train", "validation", "test", "baseline", "quarantine", "artifacts")
            },
        ),
        (
            "Evaluate",
            {"evaluation": "/opt/ml/processing/evaluation", "report": "/opt/ml/processing/report"},
        ),
    ],
)
def test_processing_outputs_go_under_the_execution_prefix(
    steps: dict[str, dict[str, Any]], step: str, outputs: dict[str, str]
) -> None:
    written = {
        output["OutputName"]: output["S3Output"]
        for output in steps[step]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    }
    assert {name: s3["LocalPath"] for name, s3 in written.items()} == outputs
    for name, s3 in written.items():
        assert s3["S3Uri"] == execution_uri(step, name)
        assert s3["S3UploadMode"] == "EndOfJob"


def test_only_the_steps_of_a_resolved_window_are_cached(steps: dict[str, dict[str, Any]]) -> None:
    # LaneStatistics reads the execution's start time: a cache entry could never match.
    cached = {name: step.get("CacheConfig") for name, step in steps.items()}
    window_cache = {"Enabled": True, "ExpireAfter": CACHE_EXPIRE_AFTER}
    assert cached == {
        "LaneStatistics": None,
        "Prepare": window_cache,
        "DataQualityBaseline": window_cache,
        "Train": None,
        "Evaluate": None,
        "Gate": None,
        "Register": None,
        "Fail": None,
    }


def test_baseline_checks_prepares_baseline_with_the_monitor_analyzer(
    steps: dict[str, dict[str, Any]],
) -> None:
    # Imported here: isort would place a module-level SDK import before pipelines.definition,
    # and the SDK cannot be imported before that module has provided a region.
    from sagemaker.core import image_uris

    baseline = steps["DataQualityBaseline"]
    arguments = baseline["Arguments"]
    assert baseline["CheckType"] == "DATA_QUALITY"
    assert baseline["SkipCheck"] is True
    assert baseline["RegisterNewBaseline"] is True
    assert baseline["ModelPackageGroupName"] == CONFIG.model_package_group_name
    dataset = arguments["ProcessingInputs"][0]["S3Input"]
    assert dataset["S3Uri"] == output_uri("Prepare", "baseline")
    assert json.loads(arguments["Environment"]["dataset_format"]) == {
        "csv": {"header": True, "output_columns_position": "START"}
    }
    assert arguments["Environment"]["dataset_source"] == dataset["LocalPath"]
    analyzer = image_uris.retrieve(framework="model-monitor", region=CONFIG.region)
    assert arguments["AppSpecification"] == {"ImageUri": analyzer}
    assert analyzer.endswith(f".dkr.ecr.{CONFIG.region}.amazonaws.com/{MONITOR_ANALYZER}")
    assert arguments["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    assert arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == (
        execution_uri("DataQualityBaseline")
    )


def test_training_runs_our_image_on_prepares_outputs(steps: dict[str, dict[str, Any]]) -> None:
    arguments = steps["Train"]["Arguments"]
    assert arguments["AlgorithmSpecification"] == {
        "TrainingInputMode": "File",
        "TrainingImage": CONFIG.image_uri,
    }
    assert arguments["HyperParameters"] == {
        "num_round": as_string("NumRound"),
        "max_depth": as_string("MaxDepth"),
        "eta": as_string("Eta"),
    }
    channels = {
        channel["ChannelName"]: channel["DataSource"]["S3DataSource"]["S3Uri"]
        for channel in arguments["InputDataConfig"]
    }
    assert channels == {name: output_uri("Prepare", name) for name in channels}
    assert list(channels) == ["train", "validation", "artifacts"]
    assert arguments["ResourceConfig"]["InstanceType"] == get("TrainingInstanceType")
    assert arguments["ResourceConfig"]["InstanceCount"] == get("TrainingInstanceCount")
    assert arguments["OutputDataConfig"]["S3OutputPath"] == execution_uri("Train")
    assert arguments["RoleArn"] == CONFIG.role_arn


def test_evaluation_reads_the_model_and_the_test_split(
    steps: dict[str, dict[str, Any]],
) -> None:
    evaluate = steps["Evaluate"]
    model = input_named(evaluate, "model")
    assert model["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert model["LocalPath"] == "/opt/ml/processing/input/model"
    test = input_named(evaluate, "test")
    assert test["S3Uri"] == output_uri("Prepare", "test")
    assert test["LocalPath"] == "/opt/ml/processing/input/test"
    assert evaluate["PropertyFiles"] == [
        {
            "PropertyFileName": "EvaluationReport",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        },
        {"PropertyFileName": "Lineage", "OutputName": "evaluation", "FilePath": "lineage.json"},
    ]


def test_gate_compares_the_evaluation_with_the_thresholds(
    steps: dict[str, dict[str, Any]],
) -> None:
    conditions = steps["Gate"]["Arguments"]["Conditions"]
    assert conditions == [
        {
            "Type": "LessThanOrEqualTo",
            "LeftValue": json_get("regression_metrics.mape.value"),
            "RightValue": get("MaxMape"),
        },
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": json_get("improvement.mape_reduction_vs_lane_median"),
            "RightValue": get("MinImprovementOverLaneMedian"),
        },
    ]


def test_failure_names_the_thresholds_and_the_observed_values(
    steps: dict[str, dict[str, Any]],
) -> None:
    message = steps["Fail"]["Arguments"]["ErrorMessage"]["Std:Join"]
    assert message["On"] == ""
    assert message["Values"] == [
        "quality gate failed: MAPE ",
        json_get("regression_metrics.mape.value"),
        " (max ",
        get("MaxMape"),
        "), improvement over lane median ",
        json_get("improvement.mape_reduction_vs_lane_median"),
        " (min ",
        get("MinImprovementOverLaneMedian"),
        ")",
    ]


def test_register_describes_the_package(steps: dict[str, dict[str, Any]]) -> None:
    arguments = steps["Register"]["Arguments"]
    assert arguments["ModelPackageGroupName"] == CONFIG.model_package_group_name
    assert arguments["ModelApprovalStatus"] == get("ModelApprovalStatus")
    specification = arguments["InferenceSpecification"]
    assert specification["Containers"] == [
        {
            "Image": CONFIG.image_uri,
            "Environment": {},
            "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
        }
    ]
    assert specification["SupportedContentTypes"] == ["application/json", "text/csv"]
    assert specification["SupportedResponseMIMETypes"] == ["application/json", "text/csv"]
    assert specification["SupportedRealtimeInferenceInstanceTypes"] == [
        "ml.c6i.large",
        "ml.c6i.xlarge",
    ]
    # The lineage of the evaluated model (resolved window, counts, code version).
    assert arguments["CustomerMetadataProperties"] == {
        key: json_get(key, report="Lineage") for key in LINEAGE_KEYS
    }
    assert {"data_window_start", "data_window_end", "rows_train", "code_version"} <= set(
        LINEAGE_KEYS
    )


def test_register_points_metrics_and_baselines_at_step_properties(
    steps: dict[str, dict[str, Any]],
) -> None:
    arguments = steps["Register"]["Arguments"]

    def source(s3_uri: Any) -> dict[str, Any]:
        return {"ContentType": "application/json", "S3Uri": s3_uri}

    def baseline(name: str) -> dict[str, str]:
        return {"Get": f"Steps.DataQualityBaseline.{name}"}

    evaluation = {
        "Std:Join": {"On": "/", "Values": [output_uri("Evaluate", "evaluation"), "evaluation.json"]}
    }
    metrics = arguments["ModelMetrics"]
    assert metrics["ModelQuality"] == {"Statistics": source(evaluation)}
    assert metrics["ModelDataQuality"] == {
        "Statistics": source(baseline("CalculatedBaselineStatistics")),
        "Constraints": source(baseline("CalculatedBaselineConstraints")),
    }
    assert arguments["DriftCheckBaselines"] == {
        "ModelDataQuality": {
            "Statistics": source(baseline("BaselineUsedForDriftCheckStatistics")),
            "Constraints": source(baseline("BaselineUsedForDriftCheckConstraints")),
        }
    }


# -- nothing uploaded, nothing but our image and AWS's analyzer --------------------------------


def test_no_local_code_is_uploaded(definition: dict[str, Any], definition_text: str) -> None:
    lowered = definition_text.lower()
    for marker in ("sourcedir", "source_dir", "sagemaker_program", "sagemaker_submit_directory",
                   "sm_drivers", "/code", "runproc", "sagemaker-eu-central-1"):  # fmt: skip
        assert marker not in lowered
    steps = all_steps(definition)
    channels = [c["ChannelName"] for c in steps["Train"]["Arguments"]["InputDataConfig"]]
    assert channels == ["train", "validation", "artifacts"]
    assert "ContainerEntrypoint" not in steps["Train"]["Arguments"]["AlgorithmSpecification"]
    inputs = {
        name: [item["InputName"] for item in step["Arguments"].get("ProcessingInputs", [])]
        for name, step in steps.items()
        if step["Type"] in ("Processing", "QualityCheck")
    }
    assert inputs == {
        "LaneStatistics": ["loads"],
        "Prepare": ["loads", "statistics"],
        "DataQualityBaseline": ["baseline_dataset_input"],
        "Evaluate": ["model", "test"],
    }


def test_images_are_ours_or_the_monitor_analyzer(definition: dict[str, Any]) -> None:
    images = {
        value
        for key, value in walk(definition)
        if key in ("ImageUri", "TrainingImage", "Image") and isinstance(value, str)
    }
    assert CONFIG.image_uri in images
    others = images - {CONFIG.image_uri}
    assert len(others) == 1
    assert others.pop().endswith(f"/{MONITOR_ANALYZER}")


def test_s3_locations_are_the_configured_ones(definition: dict[str, Any]) -> None:
    literal_uris = {
        value for _, value in walk(definition) if isinstance(value, str) and "s3:/" in value
    }
    assert literal_uris == {CONFIG.raw_loads_uri, "s3:/"}
    joined = [
        value["Std:Join"]["Values"]
        for _, value in walk(definition)
        if isinstance(value, dict) and value.get("Std:Join", {}).get("Values", [None])[0] == "s3:/"
    ]
    assert joined
    assert all(values[1:5] == execution_uri()["Std:Join"]["Values"][1:] for values in joined)


# -- offline and deterministic ------------------------------------------------------------------


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every attempt to open a connection or resolve a name fails, and is recorded."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture
def started_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    start = threading.Thread.start

    def record(self: threading.Thread) -> None:
        names.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", record)
    return names


def test_builds_with_every_connection_refused(
    network_attempts: list[str], started_threads: list[str], definition_text: str
) -> None:
    pipeline = build_pipeline(CONFIG)
    # definition() runs the captured job calls again, outside the build's environment; what
    # definition_json adds is only the cut to what CreateModelPackage accepts.
    assert register_arguments_the_api_accepts(pipeline.definition()) == definition_text
    assert definition_json(CONFIG) == definition_text
    assert network_attempts == []
    assert "sagemaker-telemetry" not in started_threads


def test_builds_in_a_fresh_process_without_aws_configuration_network_or_log_setup(
    tmp_path: Path, definition_text: str
) -> None:
    script = """
import logging, socket, sys
root_logger = (logging.root.level, list(logging.root.handlers))
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network access in an offline build")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
from pipelines.config import PipelineConfig
from pipelines.definition import definition_json
if (logging.root.level, logging.root.handlers) != root_logger:
    sys.exit("importing the definition reconfigured the root logger")
text = definition_json(PipelineConfig())
if attempts:
    sys.exit(f"network attempts: {attempts}")
sys.stdout.write(text)
"""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "SAGEMAKER_", "BOTO_"))
    }
    environment.update(HOME=str(tmp_path), PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Byte-identical across processes, too.
    assert result.stdout == definition_text
    assert list(tmp_path.iterdir()) == []


def test_build_leaves_the_environment_and_boto3_as_it_found_them(
    monkeypatch: pytest.MonkeyPatch, network_attempts: list[str], definition_text: str
) -> None:
    # Settings that would make the SDK call AWS if the build did not override them.
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "true")
    monkeypatch.setenv("AWS_PROFILE", "a-profile-that-does-not-exist")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    environment = dict(os.environ)
    default_session = boto3.DEFAULT_SESSION
    assert definition_json(CONFIG) == definition_text
    assert dict(os.environ) == environment
    assert boto3.DEFAULT_SESSION is default_session
    assert network_attempts == []


def test_another_code_version_changes_only_the_prepare_argument(
    definition: dict[str, Any],
) -> None:
    changed = json.loads(definition_json(dataclasses.replace(CONFIG, code_version="4f2c1e9")))
    expected = copy.deepcopy(definition)
    prepare = all_steps(expected)["Prepare"]
    arguments = prepare["Arguments"]["AppSpecification"]["ContainerArguments"]
    arguments[arguments.index("--code-version") + 1] = "4f2c1e9"
    assert changed == expected


def test_another_bucket_changes_only_the_artifact_locations(definition: dict[str, Any]) -> None:
    config = dataclasses.replace(CONFIG, artifacts_bucket="other-artifacts")
    text = definition_json(config)
    assert CONFIG.artifacts_bucket not in text
    assert json.loads(text.replace("other-artifacts", CONFIG.artifacts_bucket)) == definition


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role_arn", "freight-pricing-sagemaker"),
        ("role_arn", "arn:aws:iam::1111:role/short-account"),
        ("raw_loads_uri", "freight-pricing-raw/raw/loads"),
        ("artifacts_bucket", "Freight_Artifacts"),
        ("pipeline_name", "freight pricing"),
        ("model_package_group_name", "-freight"),
        ("region", "Frankfurt"),
        ("image_uri", ""),
        ("code_version", "a version with a ; in it"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"PipelineConfig.{field} is invalid"):
        PipelineConfig(**{field: value})


def test_config_is_frozen_and_keyword_only() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONFIG.code_version = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        PipelineConfig("freight-pricing")  # type: ignore[call-arg]


# -- the public JSON schema ---------------------------------------------------------------------

# Keys of the RegisterModel step that SDK v3 emits and the public schema (2025-04) predates.
# Their values are asserted by test_register_describes_the_package and the test after it.
REGISTER_KEYS_NEWER_THAN_THE_SCHEMA = (
    "CustomerMetadataProperties",
    "DriftCheckBaselines",
    "ModelApprovalStatus",
    "SkipModelValidation",
)


def schema_with_known_gaps_closed() -> dict[str, Any]:
    """The public schema, extended where it lags what the service accepts and the SDK emits.

    Each extension is narrow and named; everything else, including every additionalProperties
    restriction, is checked as published.
    """
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    definitions = schema["definitions"]
    get_function = {"$ref": "#/definitions/GetFunction"}
    definitions["StdJsonGet"] = {
        "type": "object",
        "properties": {
            "Std:JsonGet": {
                "type": "object",
                "properties": {"PropertyFile": get_function, "Path": {"type": "string"}},
                "required": ["PropertyFile", "Path"],
                "additionalProperties": False,
            }
        },
        "required": ["Std:JsonGet"],
        "additionalProperties": False,
    }
    # The schema's own JoinFunction forbids every key (its keywords sit one level too high).
    definitions["StdJoin"] = {
        "type": "object",
        "properties": {
            "Std:Join": {
                "type": "object",
                "properties": {
                    "On": {"type": "string"},
                    "Values": {
                        "type": "array",
                        "items": {
                            "anyOf": [
                                {"type": ["string", "number"]},
                                get_function,
                                {"$ref": "#/definitions/StdJsonGet"},
                            ]
                        },
                    },
                },
                "required": ["On", "Values"],
                "additionalProperties": False,
            }
        },
        "required": ["Std:Join"],
        "additionalProperties": False,
    }
    # Gap: Join (what to_string() emits) and JsonGet are accepted where a string is.
    definitions["StringArgumentValue"]["oneOf"] += [
        {"$ref": "#/definitions/StdJoin"},
        {"$ref": "#/definitions/StdJsonGet"},
    ]
    # Gap: the SDK always writes these two top-level keys (null when unused).
    for key in ("PipelineExperimentConfig", "MlflowConfig"):
        schema["properties"][key] = {"type": ["object", "null"]}
    # Gap: property files of processing steps, which JsonGet reads.
    definitions["ProcessingStep"]["properties"]["PropertyFiles"] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                key: {"type": "string"} for key in ("PropertyFileName", "OutputName", "FilePath")
            },
            "required": ["PropertyFileName", "OutputName", "FilePath"],
            "additionalProperties": False,
        },
    }
    # Gap: FailOnViolation, and null for supplied baselines that are not given.
    quality_check = definitions["QualityCheckStep"]["properties"]
    quality_check["FailOnViolation"] = {"$ref": "#/definitions/BooleanArgumentValue"}
    for key in ("SuppliedBaselineStatistics", "SuppliedBaselineConstraints"):
        quality_check[key] = {"anyOf": [{"type": "null"}, quality_check[key]]}
    # Gap: the compression of the model archive.
    training_output = definitions["TrainingStep"]["properties"]["Arguments"]["properties"][
        "OutputDataConfig"
    ]
    training_output["properties"]["CompressionType"] = {"enum": ["GZIP", "NONE"]}
    return schema


def test_definition_validates_against_the_public_schema(definition: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA_PATH.exists():
        pytest.skip(f"{SCHEMA_PATH} is not available")
    document = copy.deepcopy(definition)
    register = all_steps(document)["Register"]["Arguments"]
    for key in REGISTER_KEYS_NEWER_THAN_THE_SCHEMA:
        register.pop(key)
    for container in register["InferenceSpecification"]["Containers"]:
        assert container.pop("Environment") == {}
    validator = jsonschema.Draft7Validator(schema_with_known_gaps_closed())
    errors = [
        f"{list(error.absolute_path)}: {error.message[:300]}"
        for error in validator.iter_errors(document)
    ]
    assert errors == []


if __name__ == "__main__":
    start = time.perf_counter()
    text = definition_json(CONFIG)
    print(f"build_pipeline + definition(): {time.perf_counter() - start:.2f} s, {len(text)} bytes")
