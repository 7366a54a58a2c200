"""SageMaker's container paths and environment variable names, as named constants."""

from __future__ import annotations

import json
from pathlib import Path

# Processing jobs mount inputs and outputs under this directory.
PROCESSING_BASE = Path("/opt/ml/processing")
# Training jobs and hosting use this one.
ML_BASE = Path("/opt/ml")

# Relative to ML_BASE (training contract).
INPUT_DATA = Path("input/data")
HYPERPARAMETERS = Path("input/config/hyperparameters.json")
MODEL = Path("model")
FAILURE = Path("output/failure")
OUTPUT_DATA = Path("output/data")

# Environment variables SageMaker sets in training and hosting containers.
ENV_MODEL_DIR = "SM_MODEL_DIR"
ENV_CHANNEL_PREFIX = "SM_CHANNEL_"
ENV_BIND_TO_PORT = "SAGEMAKER_BIND_TO_PORT"

MODEL_ARCHIVE = "model.tar.gz"
# Relative to ML_BASE: which host of a multi-instance job this container is.
RESOURCE_CONFIG = Path("config/resourceconfig.json")


def channel_env(channel: str) -> str:
    """Environment variable that names a training channel's directory, e.g. SM_CHANNEL_TRAIN."""
    return f"{ENV_CHANNEL_PREFIX}{channel.upper()}"


def current_host(ml_base: Path = ML_BASE) -> str | None:
    """The container's host name in a SageMaker job (``algo-1``...), or None outside one.

    Instances of a multi-instance processing job upload their outputs to the same S3 prefix,
    so every file they write must carry the host name to not overwrite each other.
    """
    path = ml_base / RESOURCE_CONFIG
    if not path.exists():
        return None
    host = json.loads(path.read_text()).get("current_host")
    return str(host) if host else None
