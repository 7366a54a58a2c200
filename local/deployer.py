"""The local deployer: `freight deploy`'s path against the embedded AWS and the local hosting.

The release is resolved and checked by ``ops.deploy`` exactly as for an AWS stage; the model,
endpoint configuration and endpoint requests go to the embedded SageMaker API, except the two
calls the emulator cannot serve (it runs no endpoint and has no UpdateEndpoint), which the
local hosting service takes. Approvals reach it as events (``local.approvals``), as they reach
the staging deployer in AWS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from local.approvals import ApprovalQueue, receive_approvals
from local.embedded_aws import LOCAL_ACCOUNT, EmbeddedAws
from local.hosting import LocalHosting, UpdateOutcome
from ops.deploy import ApiDeployment, Release, deploy_with_api, endpoint_requests, resolve_release
from processing.contracts import CONTENT_TYPES
from stages.serving import data_capture_config


class LocalSageMaker:
    """The embedded SageMaker client, with CreateEndpoint and UpdateEndpoint served locally."""

    def __init__(self, client: Any, hosting: LocalHosting, *, fault_percent: float = 0.0) -> None:
        self._client = client
        self._hosting = hosting
        self._fault_percent = fault_percent
        self.outcome: UpdateOutcome | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create_endpoint(self, **request: Any) -> dict[str, Any]:
        """Start the endpoint's fleet (and the emulator's record of it)."""
        return self._hosting.create_endpoint(request)

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        """A blue/green update; blocks until it took over or rolled back."""
        self.outcome = self._hosting.update_endpoint(request, fault_percent=self._fault_percent)
        return {"EndpointArn": self._client.describe_endpoint(
            EndpointName=request["EndpointName"])["EndpointArn"]}  # fmt: skip


@dataclass(frozen=True)
class LocalDeployment:
    """One local deployment: what was deployed, and how a blue/green update ended."""

    release: Release
    deployment: ApiDeployment
    outcome: UpdateOutcome | None


def deploy_local(
    aws: EmbeddedAws, hosting: LocalHosting, package: str = "latest", *, fault_percent: float = 0.0
) -> LocalDeployment:
    """Resolve ``package`` in the local group (Approved only) and deploy it to the hosting."""
    names, serving = hosting.names, hosting.serving
    client = aws.client("sagemaker")
    if hosting.endpoint_config_name is None:
        # A record left by an earlier local hosting, whose fleets are gone: what runs is the
        # truth, so this hosting creates the endpoint anew.
        with contextlib.suppress(ClientError):
            client.delete_endpoint(EndpointName=names.endpoint)
    sagemaker = LocalSageMaker(client, hosting, fault_percent=fault_percent)
    release = resolve_release(sagemaker, names.model_package_group, package)
    capture = data_capture_config(serving, names.capture_uri, None, CONTENT_TYPES)
    requests = endpoint_requests(
        release, serving, names, role_arn=names.sagemaker_role_arn(LOCAL_ACCOUNT), capture=capture
    )
    deployment = deploy_with_api(sagemaker, requests, names.endpoint, serving)
    return LocalDeployment(release, deployment, sagemaker.outcome)


def deploy_approvals(
    aws: EmbeddedAws,
    hosting: LocalHosting,
    queue: ApprovalQueue,
    *,
    fault_percent: float = 0.0,
    wait_seconds: int = 1,
    report: Callable[[LocalDeployment], None] = lambda _: None,
) -> list[LocalDeployment]:
    """Deploy every approval waiting in ``queue``, in order; each one is reported when done."""
    done: list[LocalDeployment] = []
    for package_arn in receive_approvals(aws, queue, wait_seconds):
        deployment = deploy_local(aws, hosting, package_arn, fault_percent=fault_percent)
        report(deployment)
        done.append(deployment)
    return done
