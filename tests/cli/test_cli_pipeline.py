from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cli import main as cli

ROLE = "arn:aws:iam::123456789012:role/freight-pricing-sagemaker"


@pytest.fixture
def sagemaker() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name="eu-central-1")


def test_definition_to_a_file_names_the_stage_resources(tmp_path: Path) -> None:
    out = tmp_path / "definition.json"
    code = cli.main(["pipeline", "definition", "--stage", "staging", "--account", "123456789012",
                     "--code-version", "abc123", "--out", str(out)])  # fmt: skip
    assert code == 0
    text = out.read_text()
    definition = json.loads(text)
    assert [step["Name"] for step in definition["Steps"]][:2] == ["LaneStatistics", "Prepare"]
    assert "s3://freight-pricing-staging-raw-123456789012/raw/loads" in text
    assert "freight-pricing-staging-artifacts-123456789012" in text
    assert "abc123" in text


def test_upsert_start_status_and_models_against_the_sagemaker_api(
    sagemaker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["pipeline", "upsert", "--stage", "dev", "--role-arn", ROLE,
                     "--code-version", "abc123"]) == 0  # fmt: skip
    arn = capsys.readouterr().out.strip()
    assert arn.endswith(":pipeline/freight-pricing-dev")
    assert (
        "Prepare"
        in sagemaker.describe_pipeline(PipelineName="freight-pricing-dev")["PipelineDefinition"]
    )
    assert cli.main(["pipeline", "start", "--stage", "dev", "--param", "StartDate=2026-01-01",
                     "--param", "MaxMape=0.2", "--wait", "--poll", "1"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    execution = lines[0]
    assert json.loads(lines[1])["status"] == "Succeeded"
    parameters = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution)
    assert {p["Name"]: p["Value"] for p in parameters["PipelineParameters"]} == {
        "StartDate": "2026-01-01",
        "MaxMape": "0.2",
    }
    assert cli.main(["pipeline", "status", "--stage", "dev"]) == 0
    assert json.loads(capsys.readouterr().out)["arn"] == execution
    assert cli.main(["pipeline", "wait", "--stage", "dev", "--execution-arn", execution]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "Succeeded"

    sagemaker.create_model_package_group(ModelPackageGroupName="freight-pricing-dev")
    package = sagemaker.create_model_package(
        ModelPackageGroupName="freight-pricing-dev",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.eu-central-1.amazonaws.com/x:1"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    assert cli.main(["models", "list", "--stage", "dev"]) == 0
    assert json.loads(capsys.readouterr().out)["approval_status"] == "PendingManualApproval"
    assert cli.main(["models", "approve", "latest", "--stage", "dev"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "model_package_arn": package,
        "approval_status": "Approved",
    }
    assert sagemaker.describe_model_package(ModelPackageName=package)["ModelApprovalStatus"] == (
        "Approved"
    )


def test_bad_pipeline_input_is_reported(sagemaker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["pipeline", "start", "--stage", "dev", "--param", "Colour=red"]) == 2
    assert "unknown pipeline parameter 'Colour'" in capsys.readouterr().err
    assert cli.main(["pipeline", "status", "--stage", "prod"]) != 0
    assert "error:" in capsys.readouterr().err
    assert cli.main(["pipeline", "definition", "--role-arn", "admin"]) == 2
    assert "role_arn" in capsys.readouterr().err
    assert cli.main(["models", "approve", "3", "--stage", "dev"]) != 0
    assert "error:" in capsys.readouterr().err
