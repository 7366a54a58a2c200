"""Model-registry operations over the SageMaker API (AWS or the embedded one).

Each function takes a boto3 ``sagemaker`` client, as Studio's registry view and approve button do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ops.errors import OperationError
from processing.contracts import MODEL_APPROVAL_STATUSES
from stages.events import model_package_state_change

APPROVAL_STATUSES = MODEL_APPROVAL_STATUSES


@dataclass(frozen=True)
class ModelPackage:
    """One version in the model registry."""

    arn: str
    version: int
    approval_status: str
    created: str


def list_model_packages(sagemaker: Any, group: str) -> list[ModelPackage]:
    """Every version of the group, newest first."""
    packages: list[ModelPackage] = []
    token: str | None = None
    while True:
        arguments: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        }
        if token:
            arguments["NextToken"] = token
        response = sagemaker.list_model_packages(**arguments)
        packages.extend(
            ModelPackage(
                arn=summary["ModelPackageArn"],
                version=int(summary.get("ModelPackageVersion", 0)),
                approval_status=summary["ModelApprovalStatus"],
                created=str(summary.get("CreationTime", "")),
            )
            for summary in response.get("ModelPackageSummaryList", [])
        )
        token = response.get("NextToken")
        if not token:
            return packages


def resolve_package(sagemaker: Any, group: str, version_or_arn: str) -> str:
    """A package ARN from an ARN, a version number, or ``latest``."""
    if version_or_arn.startswith("arn:"):
        return version_or_arn
    packages = list_model_packages(sagemaker, group)
    if not packages:
        raise OperationError(f"model package group {group!r} has no versions")
    if version_or_arn == "latest":
        return packages[0].arn
    if not version_or_arn.isdigit():
        raise ValueError(
            f"model version must be a number, 'latest' or an ARN, got {version_or_arn!r}"
        )
    for package in packages:
        if package.version == int(version_or_arn):
            return package.arn
    raise OperationError(f"group {group!r} has no version {version_or_arn}")


def set_approval(
    sagemaker: Any, package_arn: str, status: str, description: str = "", *, events: Any = None
) -> dict[str, Any]:
    """Approve or reject a model package (what Studio's button does); returns the package.

    ``events``: an EventBridge client on which to put the state-change event SageMaker sends
    (local mode: the emulator sends none, and the local deployer reacts to it).
    """
    if status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status must be one of {', '.join(APPROVAL_STATUSES)}")
    arguments: dict[str, Any] = {"ModelPackageArn": package_arn, "ModelApprovalStatus": status}
    if description:
        arguments["ApprovalDescription"] = description
    update_package(sagemaker, package_arn, arguments)
    package: dict[str, Any] = sagemaker.describe_model_package(ModelPackageName=package_arn)
    if events is not None:
        entry = model_package_state_change(package)
        response = events.put_events(Entries=[{**entry, "Detail": json.dumps(entry["Detail"])}])
        if response.get("FailedEntryCount"):
            raise OperationError(f"the approval event was not accepted: {response['Entries']}")
    return package


def update_package(sagemaker: Any, package_arn: str, arguments: dict[str, Any]) -> None:
    """UpdateModelPackage that leaves what it does not set as it was.

    SageMaker merges the given customer metadata into the stored one and keeps the approval
    status when none is given; the emulator replaces the metadata (with none given, it drops the
    lineage) and clears the status. Sending the stored values merged with the new ones is right
    for both.
    """
    stored = sagemaker.describe_model_package(ModelPackageName=package_arn)
    properties = {
        **stored.get("CustomerMetadataProperties", {}),
        **arguments.get("CustomerMetadataProperties", {}),
    }
    request = {
        "ModelApprovalStatus": stored["ModelApprovalStatus"],
        **arguments,
        "ModelPackageArn": package_arn,
    }
    if properties:
        request["CustomerMetadataProperties"] = properties
    sagemaker.update_model_package(**request)
