"""``freight deploy`` for AWS stages: flags checked first, then resolution, refusal, promotion."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cli import main as cli
from ops import deploy
from stages.config import stage_configs
from stages.names import ResourceNames

REGION = "eu-central-1"
STAGING, PROD = ResourceNames(stage="staging"), ResourceNames(stage="prod")
IMAGE = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/freight:1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--stage", "dev"], "--stage: stage dev has no endpoint"),
        (["--stage", "prod"], "--stage prod is deployed only by promotion"),
        (["--stage", "staging", "--promote"], "--promote: stage staging does not promote"),
        (["--instance-type", "ml.p4d.24xlarge"], "--instance-type: instance type"),
    ],
)
def test_flags_that_do_not_fit_the_stage_fail_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    arguments: list[str], message: str,
) -> None:  # fmt: skip
    monkeypatch.setattr("boto3.Session", lambda **_: pytest.fail("an AWS session was created"))
    assert cli.main(["deploy", *arguments]) == cli.USAGE_EXIT_CODE
    assert message in capsys.readouterr().err


def test_a_bad_package_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["deploy", "--package", "v2"])
    assert exited.value.code == 2
    assert "neither a version number, 'latest' nor a model package ARN" in capsys.readouterr().err


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_model_package_group(ModelPackageGroupName=STAGING.model_package_group)
        for status in ("Approved", "Rejected"):
            sagemaker.create_model_package(
                ModelPackageGroupName=STAGING.model_package_group, ModelApprovalStatus=status,
                InferenceSpecification={
                    "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://a/model.tar.gz"}],
                    "SupportedContentTypes": ["application/json"],
                    "SupportedResponseMIMETypes": ["application/json"],
                },
            )  # fmt: skip
        yield sagemaker


def test_staging_dry_run_resolves_the_latest_approved_package(
    account: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["deploy", "--stage", "staging", "--dry-run"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model_version"] == 1
    assert summary["endpoint"] == STAGING.endpoint
    assert f"model_package_arn_staging={summary['model_package_arn']}" in summary["command"]


def test_a_rejected_version_is_refused_with_one_line(
    account: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["deploy", "--stage", "staging", "--package", "2"]) == cli.SERVICE_EXIT_CODE
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert "is Rejected, not Approved" in err
    assert len(err.splitlines()) == 1


def test_promotion_deploys_what_staging_serves_and_records_who(
    account: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["deploy", "--stage", "prod", "--promote"]) == cli.SERVICE_EXIT_CODE
    assert f"staging endpoint {STAGING.endpoint} does not exist" in capsys.readouterr().err
    serving = stage_configs("123456789012")["staging"].require_serving()
    release = deploy.resolve_release(account, STAGING.model_package_group)
    capture = {
        "EnableCapture": False,
        "InitialSamplingPercentage": 0,
        "DestinationS3Uri": "s3://m/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}],
    }
    requests = deploy.endpoint_requests(
        release, serving, STAGING, role_arn="arn:aws:iam::123456789012:role/r", capture=capture
    )
    deploy.deploy_with_api(account, requests, STAGING.endpoint, serving)
    ran: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr("cli.deploy.subprocess.run", run)
    assert cli.main(["deploy", "--stage", "prod", "--promote"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert ran
    assert "FreightPricing-prod-Serving" in ran[0]
    assert f"model_package_arn_prod={release.package_arn}" in ran[0]
    assert summary["promotion"]["promoted_from_endpoint"] == STAGING.endpoint
    stored = account.describe_model_package(ModelPackageName=release.package_arn)
    assert stored["CustomerMetadataProperties"]["promoted_by"].startswith("arn:aws:")
    assert stored["ModelApprovalStatus"] == "Approved"
