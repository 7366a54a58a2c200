"""The expression language of a pipeline definition: Get, Std:Join, Std:JsonGet and conditions.

An :class:`Expressions` is fed with the run's parameter values, its execution variables and the
properties and property files of the steps that ran; it resolves any JSON value of the
definition into the run's concrete value and evaluates the conditions of Condition steps. It
never edits what it does not resolve: a value without expressions comes back equal.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# A step's properties, e.g. {"ModelArtifacts.S3ModelArtifacts": "s3://..."}, by step name.
Properties = dict[str, dict[str, Any]]
# A parsed parameter value: what the definition's Parameter types become.
ParameterValue = str | int | float | bool

STEP_PROPERTY = re.compile(r"^Steps\.([A-Za-z0-9-]+)\.(.+)$")
PROPERTY_FILE = re.compile(r"^PropertyFiles\.([A-Za-z0-9_-]+)$")
# One step of a JsonGet path: a key (``regression_metrics``) or an index (``[0]``).
JSON_PATH_PART = re.compile(r"[^.\[\]]+|\[\d+\]")
PARAMETERS_PREFIX = "Parameters."
EXECUTION_PREFIX = "Execution."
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
}


class PipelineRunError(RuntimeError):
    """The run stopped: a step failed, a Fail step was reached, or something is unsupported.

    Defined here, in the module every other part of the runner imports, so that one error type
    serves them all; ``local.runner`` re-exports it.
    """

    def __init__(self, message: str, step: str | None = None) -> None:
        super().__init__(f"step {step}: {message}" if step else message)
        self.step = step
        self.reason = message


def text(value: Any) -> str:
    """A resolved value as the pipeline service writes it into a string (booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_parameters(
    declared: Sequence[Mapping[str, Any]], overrides: Mapping[str, Any] | None = None
) -> dict[str, ParameterValue]:
    """Every declared parameter's value: its override if given, else its default, typed."""
    by_name = {parameter["Name"]: parameter for parameter in declared}
    unknown = sorted(set(overrides or {}) - set(by_name))
    if unknown:
        raise PipelineRunError(
            f"unknown parameter(s) {', '.join(unknown)}; the pipeline has {', '.join(by_name)}"
        )
    return {
        name: _parse_parameter(
            parameter, (overrides or {}).get(name, parameter.get("DefaultValue"))
        )
        for name, parameter in by_name.items()
    }


def _parse_parameter(parameter: Mapping[str, Any], raw: Any) -> ParameterValue:
    kind = parameter["Type"]
    try:
        if kind == "Integer":
            return int(raw)
        if kind == "Float":
            return float(raw)
        if kind == "Boolean":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() not in ("true", "false"):
                raise ValueError(raw)
            return str(raw).lower() == "true"
        return str(raw)
    except (TypeError, ValueError):
        raise PipelineRunError(
            f"parameter {parameter['Name']} must be {kind}, got {raw!r}"
        ) from None


def utc_now() -> dt.datetime:
    """The default clock of a run: now, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, kw_only=True)
class ExecutionVariables:
    """The values of ``Execution.*`` in one run; the clock gives CurrentDateTime."""

    execution_id: str
    pipeline_name: str
    region: str
    account: str
    started_at: dt.datetime
    clock: Callable[[], dt.datetime] = utc_now

    def __post_init__(self) -> None:
        if self.started_at.utcoffset() is None:
            raise PipelineRunError(
                f"started_at must carry a time zone, got {self.started_at.isoformat()}"
            )

    @property
    def pipeline_arn(self) -> str:
        """The ARN the pipeline would have in this region and account."""
        return f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{self.pipeline_name}"

    def value(self, name: str) -> str:
        """The value of ``Execution.<name>``."""
        values: dict[str, Callable[[], str]] = {
            "PipelineExecutionId": lambda: self.execution_id,
            "PipelineExecutionArn": lambda: f"{self.pipeline_arn}/execution/{self.execution_id}",
            "PipelineName": lambda: self.pipeline_name,
            "PipelineArn": lambda: self.pipeline_arn,
            "StartDateTime": lambda: _timestamp(self.started_at),
            "CurrentDateTime": lambda: _timestamp(self.clock()),
        }
        if name not in values:
            raise PipelineRunError(
                f"unsupported execution variable {name!r}; supported: {', '.join(values)}"
            )
        return values[name]()


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


@dataclass
class Expressions:
    """Resolves expressions against one run's state; the run adds properties as steps finish."""

    parameters: Mapping[str, ParameterValue]
    execution: ExecutionVariables
    properties: Properties = field(default_factory=dict)
    # Parsed JSON of each property file, by "<step>.<property file name>".
    property_files: dict[str, Any] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """Resolve Get, Std:Join and Std:JsonGet anywhere inside ``value``."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self.get(value["Get"])
        if set(value) == {"Std:Join"}:
            return self._join(value["Std:Join"])
        if set(value) == {"Std:JsonGet"}:
            return self.json_get(value["Std:JsonGet"])
        unsupported = [key for key in value if key.startswith("Std:") or key == "Get"]
        if unsupported:
            raise PipelineRunError(f"unsupported expression {unsupported[0]!r}")
        return {key: self.resolve(item) for key, item in value.items()}

    def get(self, path: str) -> Any:
        """The value of a ``Get`` reference: a parameter, an execution variable, a property."""
        if path.startswith(PARAMETERS_PREFIX):
            name = path.removeprefix(PARAMETERS_PREFIX)
            if name not in self.parameters:
                raise PipelineRunError(f"reference to undeclared parameter {name!r}")
            return self.parameters[name]
        if path.startswith(EXECUTION_PREFIX):
            return self.execution.value(path.removeprefix(EXECUTION_PREFIX))
        match = STEP_PROPERTY.match(path)
        if match is None:
            raise PipelineRunError(f"unsupported reference {path!r}")
        step, prop = match.groups()
        if step not in self.properties:
            raise PipelineRunError(f"reference to step {step} before it ran ({path})")
        if prop not in self.properties[step]:
            raise PipelineRunError(f"step {step} has no property {prop!r} in local mode")
        return self.properties[step][prop]

    def _join(self, join: Mapping[str, Any]) -> str:
        if not isinstance(join, Mapping) or "Values" not in join:
            raise PipelineRunError(f"Std:Join needs On and Values, got {join!r}")
        return text(join.get("On", "")).join(text(self.resolve(v)) for v in join["Values"])

    def json_get(self, spec: Mapping[str, Any]) -> Any:
        """The value at ``spec["Path"]`` in the property file ``spec["PropertyFile"]`` names."""
        source = spec.get("PropertyFile")
        reference = source.get("Get", "") if isinstance(source, Mapping) else ""
        match = STEP_PROPERTY.match(reference)
        file_match = PROPERTY_FILE.match(match.group(2)) if match else None
        if match is None or file_match is None:
            raise PipelineRunError(f"unsupported JsonGet property file {source!r}")
        key = f"{match.group(1)}.{file_match.group(1)}"
        if key not in self.property_files:
            raise PipelineRunError(f"property file {key} is not available")
        path = str(spec.get("Path", ""))
        document: Any = self.property_files[key]
        for part in JSON_PATH_PART.findall(path):
            try:
                document = document[int(part[1:-1])] if part.startswith("[") else document[part]
            except (KeyError, IndexError, TypeError):
                raise PipelineRunError(f"JsonGet path {path!r} not found in {key}") from None
        return document

    def evaluate(self, condition: Mapping[str, Any]) -> bool:
        """The outcome of one condition of a Condition step."""
        kind = condition.get("Type")
        if kind in COMPARISONS:
            left = self.resolve(condition["LeftValue"])
            right = self.resolve(condition["RightValue"])
            if isinstance(left, int | float) or isinstance(right, int | float):
                left, right = _number(left, kind), _number(right, kind)
            return COMPARISONS[kind](left, right)
        if kind == "Not":
            return not self.evaluate(condition["Expression"])
        if kind == "Or":
            return any(self.evaluate(c) for c in condition["Conditions"])
        if kind == "In":
            values = [self.resolve(v) for v in condition["Values"]]
            return self.resolve(condition["QueryValue"]) in values
        raise PipelineRunError(f"unsupported condition type {kind!r}")


def _number(value: Any, condition: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PipelineRunError(f"condition {condition} compares a number with {value!r}") from None
