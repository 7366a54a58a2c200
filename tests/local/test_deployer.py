"""Local deploy on approval: `freight models approve` -> the event -> the deployer -> endpoint."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli import main as cli
from local.approvals import ApprovalQueue, receive_approvals, subscribe_approvals
from local.deployer import deploy_approvals, deploy_local
from local.embedded_aws import EmbeddedAws, embedded_aws
from local.hosting import LocalHosting
from local.market_data import LOCAL_NAMES
from ops.errors import OperationError
from ops.registry import set_approval
from processing.contracts import JSON_CONTENT_TYPE
from tests.inference.test_parsing import VALID_LOAD
from tests.local.test_hosting import _publish_model

GROUP = LOCAL_NAMES.model_package_group


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with embedded_aws(LOCAL_NAMES, threaded_server=True, environment={}) as embedded:
        yield embedded


@pytest.fixture(scope="module")
def packages(
    aws: EmbeddedAws, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    """Two pending packages of the local group, each with its model in the embedded S3."""
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    work = tmp_path_factory.mktemp("packages")
    arns = []
    for version in ("deploy-1", "deploy-2"):
        url = _publish_model(aws, model_dir, version, work)
        arns.append(sagemaker.create_model_package(
            ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval",
            CustomerMetadataProperties={"code_version": "test"},
            InferenceSpecification={
                "Containers": [{"Image": "freight:local", "ModelDataUrl": url}],
                "SupportedContentTypes": [JSON_CONTENT_TYPE],
                "SupportedResponseMIMETypes": [JSON_CONTENT_TYPE],
            },
        )["ModelPackageArn"])  # fmt: skip
    return arns


@pytest.fixture(scope="module")
def queue(aws: EmbeddedAws) -> ApprovalQueue:
    return subscribe_approvals(aws, LOCAL_NAMES)


def test_a_rejection_reaches_no_deployer(
    aws: EmbeddedAws, packages: list[str], queue: ApprovalQueue
) -> None:
    set_approval(aws.client("sagemaker"), packages[1], "Rejected", events=aws.client("events"))
    assert receive_approvals(aws, queue, wait_seconds=0) == []


def test_cli_approval_deploys_through_the_event(
    aws: EmbeddedAws,
    packages: list[str],
    queue: ApprovalQueue,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert aws.endpoint_url is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
    assert cli.main(["models", "approve", "1", "--stage", "local", "--region", aws.region]) == 0
    capsys.readouterr()
    with LocalHosting(aws, workdir=tmp_path) as hosting:
        (done,) = deploy_approvals(aws, hosting, queue)
        assert done.release.package_arn == packages[0]
        assert done.deployment.action == "created"
        sagemaker = aws.client("sagemaker")
        endpoint = sagemaker.describe_endpoint(EndpointName=LOCAL_NAMES.endpoint)
        assert endpoint["EndpointStatus"] == "InService"
        assert endpoint["EndpointConfigName"] == done.deployment.endpoint_config_name
        runtime: Any = aws.session().client("sagemaker-runtime", endpoint_url=hosting.url)
        answer = runtime.invoke_endpoint(
            EndpointName=LOCAL_NAMES.endpoint, ContentType=JSON_CONTENT_TYPE,
            Body=json.dumps(VALID_LOAD), InferenceId="load-1",
        )  # fmt: skip
        assert json.loads(answer["Body"].read())["predictions"][0]["price_eur"] > 0
        # The same approval again (SageMaker repeats events): nothing to update.
        set_approval(sagemaker, packages[0], "Approved", events=aws.client("events"))
        (again,) = deploy_approvals(aws, hosting, queue)
        assert again.deployment.action == "unchanged"
        # A rejected package named explicitly is refused, and the endpoint keeps serving.
        with pytest.raises(OperationError, match="is Rejected, not Approved"):
            deploy_local(aws, hosting, packages[1])
        assert hosting.endpoint_config_name == done.deployment.endpoint_config_name


def test_the_deploy_rule_is_the_stacks_pattern(aws: EmbeddedAws, queue: ApprovalQueue) -> None:
    from stages.events import approval_pattern

    rule = aws.client("events").describe_rule(Name=queue.rule_name)
    assert json.loads(rule["EventPattern"]) == approval_pattern(GROUP)
    assert queue.rule_name == LOCAL_NAMES.rules()["deploy_on_approval"]


def test_freight_deploy_local_serves_again_after_a_restart(
    aws: EmbeddedAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # The endpoint's record from the test above outlived its hosting (and its fleet). The
    # command hosts its own embedded AWS: here, this module's.
    monkeypatch.setattr(
        "local.embedded_aws.embedded_aws", lambda names: contextlib.nullcontext(aws)
    )
    code = cli.main(["deploy", "--local", "--serve-seconds", "1", "--workdir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["action"] == "created"
    assert "sagemaker describe-endpoint --endpoint-name freight-pricing-local" in err
    endpoint = aws.client("sagemaker").describe_endpoint(EndpointName=LOCAL_NAMES.endpoint)
    assert endpoint["EndpointStatus"] == "InService"


def test_freight_deploy_local_flags_that_do_not_apply(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["deploy", "--local", "--stage", "prod"]) == cli.USAGE_EXIT_CODE
    assert "--local deploys the local stage" in capsys.readouterr().err
    assert cli.main(["deploy", "--fault-percent", "50"]) == cli.USAGE_EXIT_CODE
    assert "--fault-percent is a drill of the local endpoint" in capsys.readouterr().err


def test_freight_deploy_local_refuses_an_external_emulator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert cli.main(["deploy", "--local"]) == cli.USAGE_EXIT_CODE
    assert "unset AWS_ENDPOINT_URL" in capsys.readouterr().err
