"""Shims that keep the SageMaker SDK (v3) offline and quiet while a definition is built.

The SDK creates AWS clients, configures logging and starts telemetry threads where our code
cannot pass a session; these context managers make each of those harmless for one block and
restore the process afterwards.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

TELEMETRY_OPT_OUT = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


@contextmanager
def offline_aws_environment(region: str) -> Iterator[None]:
    """Make the SDK's hidden AWS set-up harmless for the duration of a block, then restore it.

    The SDK creates boto3 clients where ours cannot be passed: at import (a class body in
    ``sagemaker/ai_registry/air_hub.py``) and in every ``ProcessingStep`` (its constructor builds
    a ``LocalSession`` from the default chain only to read a method name: ``steps.py`` in
    ``sagemaker/mlops/workflow``).
    Creating a client needs a region and resolves credentials; without any, the chain ends at the
    EC2 instance metadata endpoint, a network call. Dummy credentials stop the chain at its first
    link and make any call that slips through fail instead of reaching an account.
    ``SAGEMAKER_VALIDATE_ROLE`` is read only from the environment
    (``core/helper/iam_role_resolver.py``); without it ``ModelTrainer`` calls IAM when constructed.
    The SDK defaults files are pointed at an empty file so that a developer's
    ``~/.config/sagemaker/config.yaml`` (tags, KMS keys, subnets) cannot leak into the definition.

    The process environment is shared: do not build concurrently with threads that read it.
    """
    overrides: dict[str, str | None] = {
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_PROFILE": None,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": os.devnull,
        "SAGEMAKER_USER_CONFIG_OVERRIDE": os.devnull,
        "SAGEMAKER_VALIDATE_ROLE": "false",
    }
    previous = {name: os.environ.get(name) for name in overrides}
    default_session = boto3.DEFAULT_SESSION
    try:
        for name, value in overrides.items():
            _set_environment_variable(name, value)
        yield
    finally:
        for name, value in previous.items():
            _set_environment_variable(name, value)
        # The client created at import also creates boto3's default session, which would keep
        # the dummy credentials for every later boto3.client() call of the process.
        boto3.DEFAULT_SESSION = default_session


def _set_environment_variable(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextmanager
def root_logger_preserved() -> Iterator[None]:
    """Undo the SDK's import-time ``logging.basicConfig(level=INFO)``.

    ``sagemaker/core/experiments/_metrics.py`` configures the root logger when imported, which
    would turn on INFO logs of every library for the whole process (the CLI, ``cdk synth``).
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@contextmanager
def sdk_warnings_silenced() -> Iterator[None]:
    """Hide the SDK's expected build-time warnings (it "pops" job names it will set itself)."""
    sdk = logging.getLogger("sagemaker")
    level = sdk.level
    sdk.setLevel(logging.ERROR)
    try:
        yield
    finally:
        sdk.setLevel(level)


_TELEMETRY_OPT_OUT = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


@contextmanager
def telemetry_opted_out(session: Any) -> Iterator[None]:
    """Opt out of the SDK's telemetry around the calls it decorates (train and register).

    Each decorated call otherwise starts a thread that calls STS and GETs an S3 URL. The opt-out
    exists only as an SDK defaults value, and the SDK validates a non-empty defaults dict against
    its JSON schema at each of its ~80 config look-ups per build (60 ms each, see
    ``get_sagemaker_config_value`` in ``sagemaker/core/common_utils.py``): so it is set only here.
    """
    previous = session.sagemaker_config
    session.sagemaker_config = TELEMETRY_OPT_OUT
    try:
        yield
    finally:
        session.sagemaker_config = previous


@contextmanager
def sdk_imports() -> Iterator[None]:
    """Around an import of the SDK: its import-time client and logging set-up made harmless."""
    from stages.names import DEFAULT_REGION

    with offline_aws_environment(DEFAULT_REGION), root_logger_preserved():
        yield
