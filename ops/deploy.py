"""Deployment operations: which package a stage serves, whether it may, and the update itself.

``freight deploy`` resolves a release here with boto3, then either runs ``cdk deploy`` with the
release as context (AWS stages: CloudFormation performs the endpoint update the serving stack
describes) or sends the SageMaker API requests itself (local mode, where the local hosting
service takes the update the emulator lacks). Both updates come from the same
``stages.serving.deployment_config``. Clients come in; sleep and clock are never needed here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ops.errors import OperationError
from ops.registry import resolve_package, update_package
from stages.names import ResourceNames
from stages.serving import (
    ENV_MODEL_PACKAGE_ARN,
    ENV_MODEL_VERSION,
    VARIANT_NAME,
    ServingConfig,
    deployment_config,
    endpoint_alarms,
)
from stages.serving import rollback_alarms as rollback_specs

APPROVED = "Approved"
# Endpoint states in which SageMaker refuses (or would queue) another update.
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/(?P<version>[1-9][0-9]*)$"
)
# Keys the promotion writes into the package's customer metadata.
PROMOTED_BY, PROMOTED_AT, PROMOTED_FROM = "promoted_by", "promoted_at", "promoted_from_endpoint"
# The CDK CLI that `freight deploy` runs for AWS stages: the one package.json pins (`npm ci`).
CDK_CLI = ("npx", "--no-install", "cdk")


@dataclass(frozen=True)
class Release:
    """An Approved model package, resolved for a deployment."""

    package_arn: str
    group: str
    version: int
    approval_status: str
    model_data_url: str
    image_uri: str
    # DriftCheckBaselines.ModelDataQuality: the monitor compares captured traffic with these.
    baseline_statistics: str | None = None
    baseline_constraints: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def parse_package_arn(arn: str) -> tuple[str, int]:
    """The group and version of a versioned model package ARN; ValueError otherwise."""
    match = PACKAGE_ARN.fullmatch(arn)
    if match is None:
        raise ValueError(
            f"{arn!r} is not a versioned model package ARN "
            "(arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION)"
        )
    return match["group"], int(match["version"])


def describe_release(sagemaker: Any, package_arn: str) -> Release:
    """The release of one package, whatever its approval status."""
    package = sagemaker.describe_model_package(ModelPackageName=package_arn)
    container = package["InferenceSpecification"]["Containers"][0]
    quality = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
    return Release(
        package_arn=package["ModelPackageArn"],
        group=package["ModelPackageGroupName"],
        version=int(package.get("ModelPackageVersion") or parse_package_arn(package_arn)[1]),
        approval_status=package["ModelApprovalStatus"],
        model_data_url=container["ModelDataUrl"],
        image_uri=container["Image"],
        baseline_statistics=quality.get("Statistics", {}).get("S3Uri"),
        baseline_constraints=quality.get("Constraints", {}).get("S3Uri"),
        metadata=dict(package.get("CustomerMetadataProperties", {})),
    )


def resolve_release(sagemaker: Any, group: str, package: str = "latest") -> Release:
    """The Approved package to deploy from ``group``: ``latest`` Approved, a version, an ARN.

    Raises OperationError naming the problem: no Approved package, a package of another group,
    or a package that is not Approved (a rejected package is never deployed).
    """
    if package == "latest":
        listed = sagemaker.list_model_packages(
            ModelPackageGroupName=group, ModelApprovalStatus=APPROVED,
            SortBy="CreationTime", SortOrder="Descending", MaxResults=1,
        )["ModelPackageSummaryList"]  # fmt: skip
        if not listed:
            raise OperationError(
                f"model package group {group!r} has no Approved package: approve one with "
                "`freight models approve VERSION`"
            )
        arn = listed[0]["ModelPackageArn"]
    else:
        arn = resolve_package(sagemaker, group, package)
        arn_group, _ = parse_package_arn(arn)
        if arn_group != group:
            raise OperationError(
                f"model package {arn} belongs to group {arn_group!r}, not to this stage's group "
                f"{group!r}"
            )
    release = describe_release(sagemaker, arn)
    if release.approval_status != APPROVED:
        raise OperationError(
            f"model package {arn} is {release.approval_status}, not Approved: only approved "
            "packages are deployed"
        )
    return release


def endpoint_status(sagemaker: Any, endpoint_name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when the endpoint does not exist."""
    try:
        described: dict[str, Any] = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if "Could not find endpoint" in error.response.get("Error", {}).get("Message", ""):
            return None
        raise
    return described


def check_not_busy(sagemaker: Any, endpoint_name: str) -> dict[str, Any] | None:
    """The endpoint (or None); OperationError while an update or rollback is in progress."""
    endpoint = endpoint_status(sagemaker, endpoint_name)
    if endpoint is not None and endpoint["EndpointStatus"] in BUSY_STATUSES:
        raise OperationError(
            f"endpoint {endpoint_name} is {endpoint['EndpointStatus']}: wait until it is "
            "InService before deploying again"
        )
    return endpoint


def served_package(sagemaker: Any, endpoint: dict[str, Any]) -> str | None:
    """The model package ARN the endpoint's current configuration serves (None: no package)."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    containers = model.get("Containers") or [model.get("PrimaryContainer", {})]
    arn: str | None = containers[0].get("ModelPackageName")
    return arn


@dataclass(frozen=True)
class StagingHealth:
    """What promotion checked in staging."""

    endpoint_name: str
    package_arn: str
    alarms_in_alarm: tuple[str, ...]


def check_promotable(
    sagemaker: Any, cloudwatch: Any, release: Release, staging: ResourceNames
) -> StagingHealth:
    """Refuse promotion unless ``release`` is Approved, serves staging, and staging is healthy.

    Healthy: the staging endpoint is InService and none of its alarms is in ALARM.
    """
    if release.approval_status != APPROVED:
        raise OperationError(f"model package {release.package_arn} is {release.approval_status}")
    endpoint = endpoint_status(sagemaker, staging.endpoint)
    if endpoint is None or endpoint["EndpointStatus"] != "InService":
        state = "missing" if endpoint is None else endpoint["EndpointStatus"]
        raise OperationError(f"staging endpoint {staging.endpoint} is {state}, not InService")
    serving = served_package(sagemaker, endpoint)
    if serving != release.package_arn:
        raise OperationError(
            f"staging endpoint {staging.endpoint} serves {serving}, not {release.package_arn}: "
            "promote what staging has proven"
        )
    pages = cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=staging.alarm_prefix,
        StateValue="ALARM",
        AlarmTypes=["MetricAlarm", "CompositeAlarm"],
    )
    alarming = tuple(
        alarm["AlarmName"]
        for page in pages
        for kind in ("MetricAlarms", "CompositeAlarms")
        for alarm in page.get(kind, [])
    )
    if alarming:
        raise OperationError(
            f"staging endpoint {staging.endpoint} is not healthy: {', '.join(alarming)} in ALARM"
        )
    return StagingHealth(staging.endpoint, release.package_arn, alarming)


def record_promotion(
    sagemaker: Any,
    release: Release,
    *,
    promoted_by: str,
    staging_endpoint: str,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, str]:
    """Write who promoted the package, when, and from which staging endpoint onto it."""
    record = {
        PROMOTED_BY: promoted_by,
        PROMOTED_AT: now().isoformat(timespec="seconds"),
        PROMOTED_FROM: staging_endpoint,
    }
    update_package(sagemaker, release.package_arn, {"CustomerMetadataProperties": record})
    return record


def cdk_context(stage: str, release: Release, instance_type: str | None = None) -> dict[str, str]:
    """The CDK context that makes the serving stack serve ``release``."""
    context = {"stage": stage, f"model_package_arn_{stage}": release.package_arn}
    if instance_type:
        context[f"instance_type_{stage}"] = instance_type
    return context


def cdk_deploy_command(stack: str, context: dict[str, str]) -> list[str]:
    """The ``cdk deploy`` command line of one stack with ``context``."""
    command = [*CDK_CLI, "deploy", stack, "--require-approval", "never"]
    for key, value in context.items():
        command += ["--context", f"{key}={value}"]
    return command


# -- the API path (local mode; the same requests CloudFormation sends) -----------------------------


def _digest(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class EndpointRequests:
    """The SageMaker API requests that make an endpoint serve a release."""

    create_model: dict[str, Any]
    create_endpoint_config: dict[str, Any]
    rollback_alarms: tuple[str, ...]

    @property
    def endpoint_config_name(self) -> str:
        """The new endpoint configuration's content-derived name."""
        name: str = self.create_endpoint_config["EndpointConfigName"]
        return name

    def update_endpoint(self, endpoint_name: str, serving: ServingConfig) -> dict[str, Any]:
        """UpdateEndpoint: blue/green with rollback alarms; the autoscaled count survives."""
        return {
            "EndpointName": endpoint_name,
            "EndpointConfigName": self.endpoint_config_name,
            "RetainAllVariantProperties": True,
            "DeploymentConfig": deployment_config(serving, list(self.rollback_alarms)),
        }


def endpoint_requests(
    release: Release,
    serving: ServingConfig,
    names: ResourceNames,
    *,
    role_arn: str,
    capture: dict[str, Any],
    instance_type: str | None = None,
) -> EndpointRequests:
    """CreateModel and CreateEndpointConfig for ``release``, with content-derived names.

    A changed input gives new names, so an update never collides with an existing
    configuration (SageMaker refuses to overwrite one).
    """
    model: dict[str, Any] = {
        "ExecutionRoleArn": role_arn,
        "PrimaryContainer": {
            "ModelPackageName": release.package_arn,
            "Environment": {
                ENV_MODEL_PACKAGE_ARN: release.package_arn,
                ENV_MODEL_VERSION: str(release.version),
            },
        },
        "Tags": [
            {"Key": "model-package-arn", "Value": release.package_arn},
            {"Key": "model-version", "Value": str(release.version)},
        ],
    }
    model["ModelName"] = f"{names.endpoint}-v{release.version}-{_digest(model)}"
    config: dict[str, Any] = {
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model["ModelName"],
                "InstanceType": serving.check_instance_type(instance_type or serving.instance_type),
                "InitialInstanceCount": serving.initial_instance_count,
            }
        ],
        "DataCaptureConfig": capture,
    }
    config["EndpointConfigName"] = f"{names.endpoint}-v{release.version}-{_digest(config)}"
    alarms = endpoint_alarms(
        names.alarm_prefix, names.endpoint, serving, config["EndpointConfigName"]
    )
    return EndpointRequests(model, config, tuple(alarm.name for alarm in rollback_specs(alarms)))


@dataclass(frozen=True)
class ApiDeployment:
    """What :func:`deploy_with_api` did."""

    endpoint_name: str
    endpoint_config_name: str
    action: str  # "created", "updated" or "unchanged"
    update_request: dict[str, Any] | None


def deploy_with_api(
    sagemaker: Any, requests: EndpointRequests, endpoint_name: str, serving: ServingConfig
) -> ApiDeployment:
    """Create the model and configuration, then create the endpoint or update it blue/green."""
    existing = check_not_busy(sagemaker, endpoint_name)
    _create_if_missing(sagemaker.create_model, requests.create_model)
    _create_if_missing(sagemaker.create_endpoint_config, requests.create_endpoint_config)
    if existing is None:
        sagemaker.create_endpoint(
            EndpointName=endpoint_name, EndpointConfigName=requests.endpoint_config_name
        )
        return ApiDeployment(endpoint_name, requests.endpoint_config_name, "created", None)
    if existing["EndpointConfigName"] == requests.endpoint_config_name:
        # The same release again (a repeated event, a second run): nothing to do.
        return ApiDeployment(endpoint_name, requests.endpoint_config_name, "unchanged", None)
    update = requests.update_endpoint(endpoint_name, serving)
    sagemaker.update_endpoint(**update)
    return ApiDeployment(endpoint_name, requests.endpoint_config_name, "updated", update)


def _create_if_missing(create: Callable[..., Any], request: dict[str, Any]) -> None:
    # Content-derived names: an existing resource of the same name has the same content.
    try:
        create(**request)
    except ClientError as error:
        # SageMaker: 'Cannot create already existing model "..."'.
        if "already exist" not in error.response.get("Error", {}).get("Message", ""):
            raise
