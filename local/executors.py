"""One executor per step type of a pipeline definition, run on this machine.

An executor takes the step's JSON and the run's :class:`StepContext` and returns a
:class:`StepOutcome` (its properties, property files, outputs and what follows it); it raises
:class:`~local.expressions.PipelineRunError` when the step fails. Processing and Training run
our container's entry point in subprocesses (one per instance) with /opt/ml mapped to a work
folder; QualityCheck computes the data-quality baseline in Model Monitor's formats; RegisterModel
sends CreateModelPackage exactly the resolved Arguments of the definition.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.expressions import Expressions, PipelineRunError, text
from local.staging import CONTAINER_ROOT, S3Staging, container_path
from monitoring.data_quality import CONSTRAINTS_FILE, STATISTICS_FILE, write_baseline

REPOSITORY = Path(__file__).resolve().parent.parent
# Our image's entry points: `python -m <module>`; the runner starts the same module here.
ENTRYPOINT_PREFIX = ["python", "-m"]
TRAINING_MODULE = "training.train"
PROCESSING_FOLDER = "/opt/ml/processing"
MODEL_ARCHIVE = "model.tar.gz"
LOG_TAIL_LINES = 5


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """What every executor of one run shares."""

    workdir: Path  # the execution's folder; each step works in <workdir>/<step>/<host>
    execution_id: str
    expressions: Expressions
    staging: S3Staging
    sagemaker: Any  # the emulator's SageMaker client


@dataclass
class StepOutcome:
    """What a step produced."""

    properties: dict[str, Any] = field(default_factory=dict)
    # Parsed property files, by property file name.
    property_files: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    work_seconds: float = 0.0  # time inside the step's own work (subprocesses, the analysis)
    next_steps: list[Mapping[str, Any]] = field(default_factory=list)


Executor = Callable[[Mapping[str, Any], StepContext], StepOutcome]


def run_processes(commands: list[tuple[list[str], Path]]) -> float:
    """Run one subprocess per instance, all at once, each logging to its file; their wall time."""
    started = time.perf_counter()
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    processes = []
    for command, log_path in commands:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=REPOSITORY
            )
        processes.append((process, log_path))
    failures = []
    for process, log_path in processes:
        if process.wait() != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-LOG_TAIL_LINES:]
            failures.append(f"exit {process.returncode}: {' | '.join(tail)} (log {log_path})")
    if failures:
        raise PipelineRunError("; ".join(failures))
    return time.perf_counter() - started


def _entry_module(arguments: Mapping[str, Any]) -> str:
    entrypoint = arguments.get("AppSpecification", {}).get("ContainerEntrypoint")
    if not entrypoint or entrypoint[:2] != ENTRYPOINT_PREFIX or len(entrypoint) != 3:
        raise PipelineRunError(
            f"only our image's `python -m <module>` entry points run locally, got {entrypoint}"
        )
    return str(entrypoint[2])


def _hosts(count: int) -> list[str]:
    return [f"algo-{index + 1}" for index in range(count)]


def _outputs(arguments: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(arguments.get("ProcessingOutputConfig", {}).get("Outputs", []))


def _container_arguments(root: Path, arguments: Mapping[str, Any]) -> list[str]:
    # Paths under /opt/ml in the arguments point into this instance's folder.
    return [
        str(container_path(root, value)) if str(value).startswith(CONTAINER_ROOT) else text(value)
        for value in arguments.get("AppSpecification", {}).get("ContainerArguments", [])
    ]


def run_processing(step: Mapping[str, Any], context: StepContext) -> StepOutcome:
    """A ProcessingStep: inputs staged per instance, one subprocess per instance, outputs up."""
    name = step["Name"]
    arguments = context.expressions.resolve(step["Arguments"])
    module = _entry_module(arguments)
    count = int(arguments["ProcessingResources"]["ClusterConfig"]["InstanceCount"])
    hosts = _hosts(count)
    roots = [context.workdir / name / host for host in hosts]
    commands = []
    for index, (host, root) in enumerate(zip(hosts, roots, strict=True)):
        config = container_path(root, "/opt/ml/config")
        config.mkdir(parents=True, exist_ok=True)
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": host, "hosts": hosts})
        )
        for item in arguments.get("ProcessingInputs", []):
            source = item["S3Input"]
            sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
            context.staging.download(
                source["S3Uri"],
                container_path(root, source["LocalPath"]),
                (index, count) if sharded else None,
            )
        for item in _outputs(arguments):
            container_path(root, item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        base = container_path(root, PROCESSING_FOLDER)
        command = [
            sys.executable, "-m", module, *_container_arguments(root, arguments),
            "--base-dir", str(base),
        ]  # fmt: skip
        commands.append((command, root / "logs" / "stdout.log"))
    outcome = StepOutcome(work_seconds=run_processes(commands))
    for item in _outputs(arguments):
        uri = item["S3Output"]["S3Uri"]
        for root in roots:
            context.staging.upload(container_path(root, item["S3Output"]["LocalPath"]), uri)
        output_property = f"ProcessingOutputConfig.Outputs['{item['OutputName']}'].S3Output.S3Uri"
        outcome.properties[output_property] = uri
        outcome.outputs[item["OutputName"]] = uri
    for property_file in step.get("PropertyFiles", []):
        outcome.property_files[property_file["PropertyFileName"]] = _read_property_file(
            roots[0], arguments, property_file
        )
    return outcome


def _read_property_file(
    root: Path, arguments: Mapping[str, Any], property_file: Mapping[str, Any]
) -> Any:
    output = next(
        (item for item in _outputs(arguments) if item["OutputName"] == property_file["OutputName"]),
        None,
    )
    if output is None:
        raise PipelineRunError(
            f"property file {property_file['PropertyFileName']} names the output "
            f"{property_file['OutputName']!r}, which the step does not have"
        )
    path = container_path(root, output["S3Output"]["LocalPath"]) / property_file["FilePath"]
    if not path.exists():
        raise PipelineRunError(f"property file {property_file['PropertyFileName']}: no {path}")
    return json.loads(path.read_text())


def run_training(step: Mapping[str, Any], context: StepContext) -> StepOutcome:
    """A TrainingStep on one instance: channels staged, training.train run, model archived up."""
    name = step["Name"]
    arguments = context.expressions.resolve(step["Arguments"])
    count = int(arguments["ResourceConfig"]["InstanceCount"])
    if count != 1:
        raise PipelineRunError(
            f"local training runs one instance; set TrainingInstanceCount=1 (got {count})"
        )
    root = context.workdir / name / _hosts(1)[0]
    ml = container_path(root, CONTAINER_ROOT)
    for channel in arguments.get("InputDataConfig", []):
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        context.staging.download(uri, ml / "input" / "data" / channel["ChannelName"])
    config = ml / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    hyperparameters = {key: text(v) for key, v in arguments.get("HyperParameters", {}).items()}
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    command = [sys.executable, "-m", TRAINING_MODULE, "--base-dir", str(ml)]
    try:
        work_seconds = run_processes([(command, root / "logs" / "stdout.log")])
    except PipelineRunError as error:
        # The training script writes why it failed where SageMaker reads it.
        failure = ml / "output" / "failure"
        raise PipelineRunError(
            failure.read_text().strip() if failure.exists() else error.reason
        ) from None
    archive = ml / "output" / MODEL_ARCHIVE
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:  # speed over size
        for path in sorted((ml / "model").iterdir()):
            tar.add(path, arcname=path.name)
    job = f"pipelines-{context.execution_id}-{name}"
    output_path = arguments["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    artifacts = f"{output_path}/{job}/output/{MODEL_ARCHIVE}"
    context.staging.upload_file(archive, artifacts)
    return StepOutcome(
        properties={"ModelArtifacts.S3ModelArtifacts": artifacts},
        outputs={"model": artifacts},
        work_seconds=work_seconds,
    )


def run_quality_check(step: Mapping[str, Any], context: StepContext) -> StepOutcome:
    """A DATA_QUALITY QualityCheckStep, computed by monitoring.data_quality."""
    if step.get("CheckType") != "DATA_QUALITY":
        raise PipelineRunError(f"unsupported quality check {step.get('CheckType')!r}")
    resolve = context.expressions.resolve
    arguments = resolve(step["Arguments"])
    root = context.workdir / step["Name"] / _hosts(1)[0]
    dataset = arguments["ProcessingInputs"][0]["S3Input"]
    local_dataset = container_path(root, dataset["LocalPath"])
    context.staging.download(dataset["S3Uri"], local_dataset)
    output = arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    local_output = container_path(root, output["LocalPath"])
    started = time.perf_counter()
    write_baseline(local_dataset, local_output)
    work_seconds = time.perf_counter() - started
    context.staging.upload(local_output, output["S3Uri"])
    statistics = f"{output['S3Uri'].rstrip('/')}/{STATISTICS_FILE}"
    constraints = f"{output['S3Uri'].rstrip('/')}/{CONSTRAINTS_FILE}"
    supplied_statistics = resolve(step.get("SuppliedBaselineStatistics"))
    supplied_constraints = resolve(step.get("SuppliedBaselineConstraints"))
    new_baseline = bool(step.get("RegisterNewBaseline")) or not supplied_statistics
    return StepOutcome(
        properties={
            "CalculatedBaselineStatistics": statistics,
            "CalculatedBaselineConstraints": constraints,
            "BaselineUsedForDriftCheckStatistics": (
                statistics if new_baseline else supplied_statistics
            ),
            "BaselineUsedForDriftCheckConstraints": (
                constraints if new_baseline else supplied_constraints
            ),
        },
        outputs={"statistics": statistics, "constraints": constraints},
        work_seconds=work_seconds,
    )


def run_condition(step: Mapping[str, Any], context: StepContext) -> StepOutcome:
    """A ConditionStep: all its conditions hold -> IfSteps follow, else ElseSteps."""
    arguments = step["Arguments"]
    outcome = all(context.expressions.evaluate(c) for c in arguments["Conditions"])
    branch = arguments["IfSteps"] if outcome else arguments["ElseSteps"]
    return StepOutcome(
        properties={"Outcome": outcome},
        outputs={"Outcome": text(outcome)},
        next_steps=list(branch),
    )


def run_register(step: Mapping[str, Any], context: StepContext) -> StepOutcome:
    """A RegisterModel step: CreateModelPackage with the resolved Arguments, unchanged.

    The definition is responsible for asking only what the API accepts (pipelines/definition.py
    makes sure of it); editing the request here would let a local run pass where AWS fails.
    The one liberty taken: the model package group is created when missing, as the deployed
    stack does.
    """
    request = context.expressions.resolve(step["Arguments"])
    group = request.get("ModelPackageGroupName")
    if not isinstance(group, str) or not group:
        raise PipelineRunError("RegisterModel needs a ModelPackageGroupName")
    try:
        _ensure_model_package_group(context.sagemaker, group)
        arn = context.sagemaker.create_model_package(**request)["ModelPackageArn"]
    except (BotoCoreError, ClientError) as error:
        raise PipelineRunError(f"CreateModelPackage failed: {error}") from None
    return StepOutcome(properties={"ModelPackageArn": arn}, outputs={"ModelPackageArn": arn})


def _ensure_model_package_group(sagemaker: Any, group: str) -> None:
    listed = sagemaker.list_model_package_groups(NameContains=group)
    if not any(g["ModelPackageGroupName"] == group for g in listed["ModelPackageGroupSummaryList"]):
        sagemaker.create_model_package_group(ModelPackageGroupName=group)


def run_fail(step: Mapping[str, Any], context: StepContext) -> StepOutcome:
    """A FailStep: the run ends with its resolved message."""
    message = text(context.expressions.resolve(step.get("Arguments", {}).get("ErrorMessage", "")))
    raise PipelineRunError(message)


EXECUTORS: dict[str, Executor] = {
    "Processing": run_processing,
    "Training": run_training,
    "QualityCheck": run_quality_check,
    "Condition": run_condition,
    "RegisterModel": run_register,
    "Fail": run_fail,
}


def executor_for(step_type: str) -> Executor:
    """The executor of ``step_type``; an unsupported type is an error naming it."""
    if step_type not in EXECUTORS:
        raise PipelineRunError(f"unsupported step type {step_type!r}")
    return EXECUTORS[step_type]
