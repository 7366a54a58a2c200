"""The pipeline parameters, declared once, and checks of overrides before any AWS call.

SageMaker accepts any string for a String parameter and fails an Integer or Float one only
when the execution starts; a bad date or a MaxMape of 12 (meaning 12 %) would fail (or pass
the gate) hours later. Every override is checked here against the value its parameter
declares, with the ranges of the step that consumes it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pipelines.sdk_offline import sdk_imports
from processing.arguments import float_within, int_within, optional_date, split_days, window_days
from processing.contracts import MODEL_APPROVAL_STATUSES
from processing.window import MAX_WINDOW_DAYS

with sdk_imports():
    from sagemaker.core.workflow.parameters import (
        Parameter,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )


# The pipeline parameters, declared once; the step factories below use these objects.
# An empty StartDate/EndDate means "relative to the execution": the window ends the day before
# the execution starts and spans WindowDays days; explicit dates override.
START_DATE = ParameterString(name="StartDate", default_value="")
END_DATE = ParameterString(name="EndDate", default_value="")
WINDOW_DAYS = ParameterInteger(name="WindowDays", default_value=365)
VALIDATION_DAYS = ParameterFloat(name="ValidationDays", default_value=14.0)
TEST_DAYS = ParameterFloat(name="TestDays", default_value=14.0)
PROCESSING_INSTANCE_TYPE = ParameterString(
    name="ProcessingInstanceType", default_value="ml.m5.xlarge"
)
PREPARE_INSTANCE_COUNT = ParameterInteger(name="PrepareInstanceCount", default_value=1)
TRAINING_INSTANCE_TYPE = ParameterString(name="TrainingInstanceType", default_value="ml.m5.2xlarge")
TRAINING_INSTANCE_COUNT = ParameterInteger(name="TrainingInstanceCount", default_value=1)
NUM_ROUND = ParameterInteger(name="NumRound", default_value=400)
MAX_DEPTH = ParameterInteger(name="MaxDepth", default_value=7)
ETA = ParameterFloat(name="Eta", default_value=0.12)
MAX_MAPE = ParameterFloat(name="MaxMape", default_value=0.12)
MIN_IMPROVEMENT_OVER_LANE_MEDIAN = ParameterFloat(
    name="MinImprovementOverLaneMedian", default_value=0.30
)
MODEL_APPROVAL_STATUS = ParameterString(
    name="ModelApprovalStatus", default_value="PendingManualApproval"
)
PARAMETERS: tuple[Parameter, ...] = (
    START_DATE,
    END_DATE,
    WINDOW_DAYS,
    VALIDATION_DAYS,
    TEST_DAYS,
    PROCESSING_INSTANCE_TYPE,
    PREPARE_INSTANCE_COUNT,
    TRAINING_INSTANCE_TYPE,
    TRAINING_INSTANCE_COUNT,
    NUM_ROUND,
    MAX_DEPTH,
    ETA,
    MAX_MAPE,
    MIN_IMPROVEMENT_OVER_LANE_MEDIAN,
    MODEL_APPROVAL_STATUS,
)
PARAMETER_NAMES: tuple[str, ...] = tuple(parameter.name for parameter in PARAMETERS)

INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
# SageMaker's default quota per job; prepare shards the window across instances.
MAX_INSTANCE_COUNT = 100
# Hyperparameters named as in training.train.Hyperparameters, which owns their ranges.
TRAINING_HYPERPARAMETERS = {"NumRound": "num_round", "MaxDepth": "max_depth", "Eta": "eta"}


@dataclass(frozen=True)
class ParameterCheck:
    """How one parameter's override is parsed (raising ArgumentTypeError) and what it expects."""

    parse: Callable[[str], object]
    expected: str


def _instance_type(value: str) -> str:
    if not INSTANCE_TYPE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an instance type")
    return value


def _approval_status(value: str) -> str:
    if value not in MODEL_APPROVAL_STATUSES:
        raise argparse.ArgumentTypeError(f"{value!r} is not an approval status")
    return value


def _training_check(name: str) -> ParameterCheck:
    # Imported here: training imports xgboost, which only these three overrides need.
    from training.train import Hyperparameters

    hyperparameter = TRAINING_HYPERPARAMETERS[name]
    low, high = Hyperparameters.ranges()[hyperparameter]
    if name == "Eta":
        return ParameterCheck(float_within(low, high), f"a number within [{low:g}, {high:g}]")
    return ParameterCheck(
        int_within(int(low), int(high)), f"an integer within [{int(low)}, {int(high)}]"
    )


def _checks() -> dict[str, ParameterCheck]:
    """Every declared parameter but the training ones (see ``_training_check``)."""
    instance_count = ParameterCheck(
        int_within(1, MAX_INSTANCE_COUNT), f"an integer within [1, {MAX_INSTANCE_COUNT}]"
    )
    date = ParameterCheck(
        optional_date, "a date YYYY-MM-DD, or empty for a window relative to the execution"
    )
    days = ParameterCheck(split_days, f"a positive number of days, at most {MAX_WINDOW_DAYS}")
    instance_type = ParameterCheck(_instance_type, f"an instance type ({INSTANCE_TYPE.pattern})")
    return {
        "StartDate": date,
        "EndDate": date,
        "WindowDays": ParameterCheck(window_days, f"an integer within [1, {MAX_WINDOW_DAYS}]"),
        "ValidationDays": days,
        "TestDays": days,
        "ProcessingInstanceType": instance_type,
        "PrepareInstanceCount": instance_count,
        "TrainingInstanceType": instance_type,
        "TrainingInstanceCount": instance_count,
        # MAPE is a share: 0.12 is 12 %; a 12 would let every model through the gate.
        "MaxMape": ParameterCheck(
            float_within(0.0, 1.0, low_inclusive=False), "a share within (0, 1], e.g. 0.12"
        ),
        # The relative MAPE reduction over the lane-median baseline; negative tolerates worse.
        "MinImprovementOverLaneMedian": ParameterCheck(
            float_within(-1.0, 1.0), "a share within [-1, 1], e.g. 0.3"
        ),
        "ModelApprovalStatus": ParameterCheck(
            _approval_status, f"one of {', '.join(MODEL_APPROVAL_STATUSES)}"
        ),
    }


def check_overrides(overrides: Mapping[str, str]) -> dict[str, str]:
    """The overrides, stripped, if every one fits its declared parameter; else ValueError.

    The message names the parameter, the value and what the parameter expects.
    """
    declared = {parameter.name: parameter for parameter in PARAMETERS}
    checks = _checks()
    checked: dict[str, str] = {}
    parsed: dict[str, object] = {}
    for name, raw in overrides.items():
        if name not in declared:
            raise ValueError(f"unknown pipeline parameter {name!r}; known: {', '.join(declared)}")
        if name in TRAINING_HYPERPARAMETERS:
            check = _training_check(name)
        else:
            check = checks.get(name) or _type_check(declared[name].parameter_type.python_type)
        value = raw.strip()
        try:
            parsed[name] = check.parse(value)
        except argparse.ArgumentTypeError as error:
            default = declared[name].default_value
            raise ValueError(
                f"{name}: {error}; expected {check.expected} (default {default!r})"
            ) from None
        checked[name] = value
    start, end = parsed.get(START_DATE.name), parsed.get(END_DATE.name)
    if isinstance(start, dt.date) and isinstance(end, dt.date) and start > end:
        raise ValueError(
            f"{START_DATE.name}: {checked[START_DATE.name]!r} is after "
            f"{END_DATE.name} {checked[END_DATE.name]!r}"
        )
    return checked


def _type_check(python_type: type) -> ParameterCheck:
    """A declared parameter without a range of its own: only its type is checked."""
    if python_type is int:
        return ParameterCheck(int_within(-(2**63), 2**63 - 1), "an integer")
    if python_type is float:
        return ParameterCheck(float_within(-float("inf"), float("inf")), "a finite number")
    return ParameterCheck(str, "a string")
