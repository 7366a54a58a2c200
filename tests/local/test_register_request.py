"""Run-local sends CreateModelPackage exactly the request the deployed definition describes."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from local.embedded_aws import EmbeddedAws
from local.runner import LocalPipelineRun
from pipelines.config import PipelineConfig
from pipelines.definition import definition_json
from pipelines.register_request import register_arguments_the_api_accepts

CREATE_MODEL_PACKAGE = (
    botocore.session.get_session()
    .get_service_model("sagemaker")
    .operation_model("CreateModelPackage")
    .input_shape
)
# Sections of the request where the SDK writes empty dicts meaning "not given".
OPTIONAL_SECTIONS = ("ModelMetrics", "DriftCheckBaselines")
STARTED_AT = dt.datetime(2026, 11, 2, 6, 30, tzinfo=dt.UTC)
TINY_PARAMETERS = {
    "ModelApprovalStatus": "Approved",
    "ModelDataUrl": "s3://models/run-1/model.tar.gz",
    "DataWindowStart": "2025-11-01",
}
TINY_REGISTER: dict[str, Any] = {
    "ModelPackageGroupName": "tiny-group",
    "ModelPackageDescription": "resolved field for field",
    "InferenceSpecification": {
        "Containers": [
            {
                "Image": "111111111111.dkr.ecr.eu-central-1.amazonaws.com/freight-pricing:latest",
                "Environment": {},
                "ModelDataUrl": {"Get": "Parameters.ModelDataUrl"},
            }
        ],
        "SupportedContentTypes": ["application/json", "text/csv"],
        "SupportedResponseMIMETypes": ["application/json"],
        "SupportedRealtimeInferenceInstanceTypes": ["ml.c6i.large"],
    },
    "ModelMetrics": {
        "ModelQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": {
                    "Std:Join": {
                        "On": "/",
                        "Values": [
                            "s3://artifacts",
                            {"Get": "Execution.PipelineExecutionId"},
                            "evaluation.json",
                        ],
                    }
                },
            }
        }
    },
    "CustomerMetadataProperties": {
        "data_window_start": {"Get": "Parameters.DataWindowStart"},
        "started_at": {"Get": "Execution.StartDateTime"},
    },
    "ModelApprovalStatus": {"Get": "Parameters.ModelApprovalStatus"},
    "SkipModelValidation": "None",
}


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    with mock_aws():
        yield EmbeddedAws(endpoint_url=None)


def register_definition(arguments: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": n, "Type": "String", "DefaultValue": ""} for n in parameters],
        "Steps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": arguments}],
    }


def resolved(value: Any, values: dict[str, Any], files: dict[str, Any] | None = None) -> Any:
    """``value`` with its expressions resolved from ``values`` and ``files``.

    A Get is ``values[path]``, a Std:Join is joined, a Std:JsonGet is read from
    ``files[<step>.<property file>]`` along its dotted path.

    Deliberately independent of local.expressions: it is what the runner is checked against.
    """
    if isinstance(value, list):
        return [resolved(item, values, files) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return values[value["Get"]]
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(resolved(item, values, files)) for item in join["Values"])
    if set(value) == {"Std:JsonGet"}:
        json_get = value["Std:JsonGet"]
        step, _, name = (
            json_get["PropertyFile"]["Get"].removeprefix("Steps.").partition(".PropertyFiles.")
        )
        document = (files or {})[f"{step}.{name}"]
        for part in json_get["Path"].split("."):
            document = document[part]
        return document
    return {key: resolved(item, values, files) for key, item in value.items()}


def sent_requests(run: LocalPipelineRun) -> list[dict[str, Any]]:
    """The CreateModelPackage requests the run's client sends, as it sends them."""
    requests: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        requests.append(copy.deepcopy(params))

    run.sagemaker.meta.events.register(
        "provide-client-params.sagemaker.CreateModelPackage", capture
    )
    return requests


def assert_accepted_by_the_api(request: dict[str, Any]) -> None:
    assert CREATE_MODEL_PACKAGE is not None
    report = ParamValidator().validate(request, CREATE_MODEL_PACKAGE)
    assert not report.has_errors(), report.generate_report()


def run_register(
    aws: EmbeddedAws, tmp_path: Path, arguments: dict[str, Any], parameters: dict[str, str]
) -> tuple[LocalPipelineRun, list[dict[str, Any]], Any]:
    run = LocalPipelineRun(
        register_definition(arguments, parameters), aws, tmp_path, parameters,
        pipeline_name="tiny", log=lambda line: None, started_at=STARTED_AT,
    )  # fmt: skip
    requests = sent_requests(run)
    return run, requests, run.run()


def test_the_request_sent_is_the_definitions_arguments_resolved(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    run, requests, result = run_register(aws, tmp_path, TINY_REGISTER, TINY_PARAMETERS)
    assert result.status == "Succeeded", result.failure
    values = {
        **{f"Parameters.{name}": value for name, value in TINY_PARAMETERS.items()},
        "Execution.PipelineExecutionId": run.execution_id,
        "Execution.StartDateTime": "2026-11-02T06:30:00+00:00",
    }
    assert requests == [resolved(TINY_REGISTER, values)]
    assert_accepted_by_the_api(requests[0])
    package = aws.client("sagemaker").describe_model_package(
        ModelPackageName=result.model_package_arn
    )
    assert package["CustomerMetadataProperties"] == {
        "data_window_start": "2025-11-01",
        "started_at": "2026-11-02T06:30:00+00:00",
    }
    assert package["ModelApprovalStatus"] == "Approved"


def test_what_the_api_rejects_fails_the_run_instead_of_being_filtered(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    arguments = {**TINY_REGISTER, "Colour": "red"}
    _, requests, result = run_register(aws, tmp_path, arguments, TINY_PARAMETERS)
    assert result.status == "Failed"
    assert requests[0]["Colour"] == "red"  # sent as asked, not edited
    assert "step Register: CreateModelPackage failed" in (result.failure or "")
    assert 'Unknown parameter in input: "Colour"' in (result.failure or "")


# -- the deployed definition's Register step -----------------------------------------------


@pytest.fixture(scope="module")
def real_definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(definition_json(PipelineConfig()))
    return definition


@pytest.fixture(scope="module")
def real_register(real_definition: dict[str, Any]) -> dict[str, Any]:
    gate = next(step for step in real_definition["Steps"] if step["Type"] == "Condition")
    register: dict[str, Any] = next(
        s for s in gate["Arguments"]["IfSteps"] if s["Type"] == "RegisterModel"
    )
    return register


def unaccepted(value: Any, shape: Any, path: str, in_section: bool) -> list[str]:
    """Paths in ``value`` that are not members of ``shape``, or empty where empty means absent."""
    problems = []
    if isinstance(value, dict) and ("Get" in value or any(k.startswith("Std:") for k in value)):
        return []
    if in_section and value in ({}, []):
        problems.append(f"{path} is empty")
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{path}.{key} is not a member of {shape.name}")
            else:
                section = in_section or key in OPTIONAL_SECTIONS
                problems += unaccepted(item, shape.members[key], f"{path}.{key}", section)
    elif shape.type_name == "list" and isinstance(value, list):
        for item in value:
            problems += unaccepted(item, shape.member, f"{path}[]", in_section)
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            problems += unaccepted(item, shape.value, f"{path}.{key}", in_section)
    return problems


def test_the_real_register_step_asks_only_what_create_model_package_accepts(
    real_register: dict[str, Any],
) -> None:
    arguments = real_register["Arguments"]
    assert unaccepted(arguments, CREATE_MODEL_PACKAGE, "Arguments", False) == []
    assert set(arguments["ModelMetrics"]) == {"ModelQuality", "ModelDataQuality"}


def test_the_real_register_step_is_sent_field_for_field(
    aws: EmbeddedAws,
    tmp_path: Path,
    real_definition: dict[str, Any],
    real_register: dict[str, Any],
) -> None:
    # The real step alone, with its parameters; the steps it reads from are given as if they ran.
    definition = {**real_definition, "Steps": [real_register]}
    overrides = {"StartDate": "2025-11-01", "EndDate": "2026-10-31"}
    run = LocalPipelineRun(definition, aws, tmp_path, overrides, log=lambda line: None)
    values: dict[str, Any] = {
        f"Parameters.{p['Name']}": overrides.get(p["Name"], p.get("DefaultValue"))
        for p in real_definition["Parameters"]
    }
    text = json.dumps(real_register)
    for step, prop in re.findall(r'"Get": "Steps\.([A-Za-z0-9-]+)\.([^"]+)"', text):
        if prop.startswith("PropertyFiles."):
            continue
        values[f"Steps.{step}.{prop}"] = f"s3://artifacts/{step}/{re.sub(r'[^A-Za-z]', '', prop)}"
        run.expressions.properties.setdefault(step, {})[prop] = values[f"Steps.{step}.{prop}"]
    files: dict[str, dict[str, Any]] = {}
    for spec in re.findall(
        r'"Std:JsonGet": (\{"PropertyFile": \{[^}]*\}, "Path": "[^"]*"\})', text
    ):
        json_get = json.loads(spec)
        step, _, file_name = (
            json_get["PropertyFile"]["Get"].removeprefix("Steps.").partition(".PropertyFiles.")
        )
        document = files.setdefault(f"{step}.{file_name}", {})
        *parents, leaf = json_get["Path"].split(".")
        for parent in parents:
            document = document.setdefault(parent, {})
        document[leaf] = f"value of {json_get['Path']}"
    run.expressions.property_files.update(files)
    requests = sent_requests(run)
    result = run.run()
    assert result.status == "Succeeded", result.failure
    assert requests == [resolved(real_register["Arguments"], values, files)]
    assert_accepted_by_the_api(requests[0])


def test_the_post_processing_drops_empty_sections_and_unknown_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = {"Get": "Parameters.Statistics"}
    register = {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "g",
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": source}
                },
                "Bias": {},
                "Explainability": {"Report": {}},
            },
            "DriftCheckBaselines": {"Bias": {}},
            "InferenceSpecification": {
                "Containers": [{"Image": "i", "Environment": {}, "Shiny": True}],
                "SupportedContentTypes": [],
            },
            "PipelineOnly": "x",
        },
    }
    other = {"Name": "Prepare", "Type": "Processing", "Arguments": {"Anything": {}}}
    gate = {"Name": "Gate", "Type": "Condition", "Arguments": {"IfSteps": [register]}}
    text = json.dumps({"Steps": [other, gate]})
    with caplog.at_level(logging.WARNING, logger="pipelines.definition"):
        cleaned = json.loads(register_arguments_the_api_accepts(text))
    assert cleaned["Steps"][0] == other
    assert cleaned["Steps"][1]["Arguments"]["IfSteps"][0]["Arguments"] == {
        "ModelPackageGroupName": "g",
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": source}}
        },
        # Outside ModelMetrics and DriftCheckBaselines an empty value is a value.
        "InferenceSpecification": {"Containers": [{"Image": "i", "Environment": {}}],
                                   "SupportedContentTypes": []},
    }  # fmt: skip
    assert "Register.InferenceSpecification.Containers[].Shiny" in caplog.text
    assert "Register.PipelineOnly" in caplog.text
