"""SageMaker's container paths and environment variable names, as named constants."""

from __future__ import annotations

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


def channel_env(channel: str) -> str:
    """Environment variable that names a training channel's directory, e.g. SM_CHANNEL_TRAIN."""
    return f"{ENV_CHANNEL_PREFIX}{channel.upper()}"
