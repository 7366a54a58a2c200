"""SageMaker's EventBridge events that the stacks and local mode react to, spelled once."""

from __future__ import annotations

from typing import Any

SAGEMAKER_SOURCE = "aws.sagemaker"
PIPELINE_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
APPROVED = "Approved"


def approval_pattern(group: str) -> dict[str, Any]:
    """The event pattern of an Approved package of ``group`` (rejections fire events too)."""
    return {
        "source": [SAGEMAKER_SOURCE],
        "detail-type": [MODEL_PACKAGE_STATE_CHANGE],
        "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": [APPROVED]},
    }


def model_package_state_change(package: dict[str, Any]) -> dict[str, Any]:
    """The PutEvents entry SageMaker sends when ``package`` (DescribeModelPackage) changes state.

    The emulator sends none: local mode puts this entry itself after an approval or rejection.
    """
    return {
        "Source": SAGEMAKER_SOURCE,
        "DetailType": MODEL_PACKAGE_STATE_CHANGE,
        "Resources": [package["ModelPackageArn"]],
        "Detail": {
            "ModelPackageGroupName": package["ModelPackageGroupName"],
            "ModelPackageArn": package["ModelPackageArn"],
            "ModelPackageVersion": package.get("ModelPackageVersion"),
            "ModelApprovalStatus": package["ModelApprovalStatus"],
        },
    }
