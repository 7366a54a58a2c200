"""What a hosting request asks for: the configuration to serve and the blue/green rollout.

The served configuration is resolved from the embedded SageMaker API's records (endpoint
configuration -> variant -> model -> model package -> model data in the embedded S3, unpacked);
the rollout comes from UpdateEndpoint's DeploymentConfig.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processing.lake import split_s3_uri
from processing.model import resolve_model_dir
from stages.serving import VARIANT_NAME


class HostingError(ValueError):
    """A request the local hosting cannot take; the message names the field or resource."""


@dataclass(frozen=True)
class ServedConfig:
    """What one endpoint configuration serves, resolved from the emulator's records."""

    endpoint_config_name: str
    variant_name: str
    model_dir: Path
    data_capture: dict[str, Any] | None
    instance_count: int = 1


@dataclass(frozen=True)
class Rollout:
    """The blue/green policy of one UpdateEndpoint request."""

    canary_percent: int
    wait_seconds: int
    alarm_names: tuple[str, ...]


def resolve_config(sagemaker: Any, s3: Any, name: str, workdir: Path) -> ServedConfig:
    """Endpoint configuration -> variant -> model -> (model package) -> model data, unpacked."""
    from botocore.exceptions import ClientError

    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=name)
    except ClientError:
        raise HostingError(f"endpoint configuration {name!r} does not exist") from None
    variants = config["ProductionVariants"]
    variant = next((v for v in variants if v["VariantName"] == VARIANT_NAME), variants[0])
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    url = container.get("ModelDataUrl")
    if container.get("ModelPackageName"):
        package = sagemaker.describe_model_package(ModelPackageName=container["ModelPackageName"])
        url = package["InferenceSpecification"]["Containers"][0].get("ModelDataUrl")
    if not url:
        raise HostingError(
            f"model {variant['ModelName']!r} names no model data (ModelDataUrl or ModelPackageName)"
        )
    target = workdir / "models" / name
    target.mkdir(parents=True, exist_ok=True)
    bucket, key = split_s3_uri(url)
    archive = target / "model.tar.gz"
    s3.download_file(bucket, key, str(archive))
    model_dir = resolve_model_dir(archive, scratch=target / "model")
    return ServedConfig(
        name, variant["VariantName"], model_dir, config.get("DataCaptureConfig"),
        int(variant.get("InitialInstanceCount", 1)),
    )  # fmt: skip


def parse_rollout(deployment: Mapping[str, Any] | None, instance_count: int) -> Rollout:
    """The canary share, bake and rollback alarms of an UpdateEndpoint DeploymentConfig."""
    if not deployment:
        return Rollout(100, 0, ())
    policy = deployment.get("BlueGreenUpdatePolicy")
    if policy is None:
        raise HostingError(
            "DeploymentConfig: the local hosting takes BlueGreenUpdatePolicy only "
            f"(got {', '.join(deployment) or 'nothing'})"
        )
    routing = policy.get("TrafficRoutingConfiguration") or {}
    kind = routing.get("Type")
    if kind == "ALL_AT_ONCE":
        percent = 100
    elif kind == "CANARY":
        size = routing.get("CanarySize") or {}
        if size.get("Type") == "CAPACITY_PERCENT":
            percent = int(size.get("Value", 0))
        elif size.get("Type") == "INSTANCE_COUNT":
            percent = round(100 * int(size.get("Value", 0)) / max(1, instance_count))
        else:
            raise HostingError(
                "DeploymentConfig...CanarySize.Type must be CAPACITY_PERCENT or INSTANCE_COUNT, "
                f"got {size.get('Type')!r}"
            )
        if not 1 <= percent <= 100:
            raise HostingError(f"DeploymentConfig...CanarySize gives {percent} %, not 1-100")
    else:
        raise HostingError(
            "DeploymentConfig...TrafficRoutingConfiguration.Type must be ALL_AT_ONCE or CANARY "
            f"locally, got {kind!r}"
        )
    alarms = deployment.get("AutoRollbackConfiguration", {}).get("Alarms", [])
    return Rollout(
        percent, int(routing.get("WaitIntervalInSeconds", 0)),
        tuple(alarm["AlarmName"] for alarm in alarms),
    )  # fmt: skip


def required(request: Mapping[str, Any], key: str) -> str:
    """``request[key]`` as a non-empty string, else HostingError naming the key."""
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise HostingError(f"the request needs {key} (a non-empty string)")
    return value
