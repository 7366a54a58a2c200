"""Runs a SageMaker pipeline definition JSON on this machine, against the embedded AWS.

The very definition that is deployed is executed: steps are ordered by their DependsOn and
property references; Parameters (defaults and overrides), ExecutionVariables, Std:Join,
Std:JsonGet on PropertyFiles and step properties are resolved; Processing and Training steps
run our container's entry point in subprocesses with SageMaker's paths mapped to a work
folder (one subprocess per instance), with inputs and outputs moved through the embedded S3;
the data-quality QualityCheck step is computed by monitoring.data_quality in Model Monitor's
formats; conditions are evaluated; RegisterModel calls CreateModelPackage; a Fail step ends
the run with its message. Anything else fails with an error naming it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.embedded_aws import LOCAL_ACCOUNT, EmbeddedAws
from monitoring.data_quality import CONSTRAINTS_FILE, STATISTICS_FILE, write_baseline

REPOSITORY = Path(__file__).resolve().parent.parent
CONTAINER_ROOT = "/opt/ml/"
STEP_PROPERTY = re.compile(r"^Steps\.([A-Za-z0-9-]+)\.(.+)$")
OUTPUT_PROPERTY = re.compile(r"^ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri$")
PROPERTY_FILE = re.compile(r"^PropertyFiles\.([A-Za-z0-9_-]+)$")
TRANSFER_THREADS = 8
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda left, right: left == right,
    "GreaterThan": lambda left, right: left > right,
    "GreaterThanOrEqualTo": lambda left, right: left >= right,
    "LessThan": lambda left, right: left < right,
    "LessThanOrEqualTo": lambda left, right: left <= right,
}


class PipelineRunError(RuntimeError):
    """The run stopped: a step failed, a Fail step was reached, or something is unsupported."""

    def __init__(self, message: str, step: str | None = None) -> None:
        super().__init__(f"step {step}: {message}" if step else message)
        self.step = step
        self.reason = message


@dataclass
class StepReport:
    """What one step did."""

    name: str
    type: str
    status: str = "NotStarted"
    seconds: float = 0.0
    work_seconds: float = 0.0  # time inside the step's own subprocesses
    outputs: dict[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass
class RunResult:
    """The outcome of a local run."""

    execution_id: str
    status: str
    steps: list[StepReport]
    seconds: float
    model_package_arn: str | None = None
    failure: str | None = None

    @property
    def work_seconds(self) -> float:
        """Time spent in the steps' own work (their entry points, the baseline analysis)."""
        return sum(step.work_seconds for step in self.steps)

    @property
    def overhead_seconds(self) -> float:
        """The runner's own time: S3 transfers, archiving, resolving, registering."""
        return self.seconds - self.work_seconds


def _parse_parameter(definition: Mapping[str, Any], raw: Any) -> Any:
    kind = definition["Type"]
    name = definition["Name"]
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
        raise PipelineRunError(f"parameter {name} must be {kind}, got {raw!r}") from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class LocalPipelineRun:
    """One execution of a definition; create it, then call :meth:`run`."""

    def __init__(
        self,
        definition: str | Mapping[str, Any],
        aws: EmbeddedAws,
        workdir: Path,
        parameters: Mapping[str, Any] | None = None,
        pipeline_name: str = "local-pipeline",
        log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        self.definition = json.loads(definition) if isinstance(definition, str) else definition
        self.aws = aws
        self.s3 = aws.client("s3")
        self.sagemaker = aws.client("sagemaker")
        self.execution_id = f"local-{uuid.uuid4().hex[:12]}"
        self.workdir = workdir / self.execution_id
        self.pipeline_name = pipeline_name
        self.log = log
        self.started = dt.datetime.now(dt.UTC)
        declared = {p["Name"]: p for p in self.definition.get("Parameters", [])}
        unknown = sorted(set(parameters or {}) - set(declared))
        if unknown:
            raise PipelineRunError(
                f"unknown parameter(s) {', '.join(unknown)}; the pipeline has {', '.join(declared)}"
            )
        self.parameters = {
            name: _parse_parameter(p, (parameters or {}).get(name, p.get("DefaultValue")))
            for name, p in declared.items()
        }
        self._transfers = ThreadPoolExecutor(max_workers=TRANSFER_THREADS)
        self.properties: dict[str, dict[str, Any]] = {}
        self.property_files: dict[str, dict[str, Any]] = {}
        self.reports: list[StepReport] = []

    # -- expressions ----------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """Resolve Get, Std:Join and Std:JsonGet anywhere inside ``value``."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self._get(value["Get"])
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return str(join["On"]).join(_text(self.resolve(v)) for v in join["Values"])
        if set(value) == {"Std:JsonGet"}:
            return self._json_get(value["Std:JsonGet"])
        unsupported = [key for key in value if key.startswith("Std:")]
        if unsupported:
            raise PipelineRunError(f"unsupported expression {unsupported[0]!r}")
        return {key: self.resolve(item) for key, item in value.items()}

    def _get(self, path: str) -> Any:
        if path.startswith("Parameters."):
            name = path.removeprefix("Parameters.")
            if name not in self.parameters:
                raise PipelineRunError(f"reference to undeclared parameter {name!r}")
            return self.parameters[name]
        if path.startswith("Execution."):
            return self._execution_variable(path.removeprefix("Execution."))
        match = STEP_PROPERTY.match(path)
        if match is None:
            raise PipelineRunError(f"unsupported reference {path!r}")
        step, prop = match.groups()
        if step not in self.properties:
            raise PipelineRunError(f"reference to step {step} before it ran ({path})")
        if prop not in self.properties[step]:
            raise PipelineRunError(f"step {step} has no property {prop!r} in local mode")
        return self.properties[step][prop]

    def _execution_variable(self, name: str) -> str:
        arn = (
            f"arn:aws:sagemaker:{self.aws.region}:{LOCAL_ACCOUNT}:pipeline/"
            f"{self.pipeline_name}/execution/{self.execution_id}"
        )
        variables = {
            "PipelineExecutionId": self.execution_id,
            "PipelineExecutionArn": arn,
            "PipelineName": self.pipeline_name,
            "PipelineArn": arn.split("/execution/")[0],
            "StartDateTime": self.started.isoformat(),
            "CurrentDateTime": dt.datetime.now(dt.UTC).isoformat(),
        }
        if name not in variables:
            raise PipelineRunError(f"unsupported execution variable {name!r}")
        return variables[name]

    def _json_get(self, spec: Mapping[str, Any]) -> Any:
        reference = spec["PropertyFile"]["Get"] if isinstance(spec["PropertyFile"], dict) else ""
        match = STEP_PROPERTY.match(reference)
        file_match = PROPERTY_FILE.match(match.group(2)) if match else None
        if match is None or file_match is None:
            raise PipelineRunError(f"unsupported JsonGet property file {spec['PropertyFile']!r}")
        key = f"{match.group(1)}.{file_match.group(1)}"
        if key not in self.property_files:
            raise PipelineRunError(f"property file {key} is not available")
        document: Any = self.property_files[key]
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", spec["Path"]):
            try:
                document = document[int(part[1:-1])] if part.startswith("[") else document[part]
            except (KeyError, IndexError, TypeError):
                raise PipelineRunError(
                    f"JsonGet path {spec['Path']!r} not found in {key}"
                ) from None
        return document

    # -- S3 -------------------------------------------------------------------------------

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        if not uri.startswith("s3://"):
            raise PipelineRunError(f"not an S3 URI: {uri!r}")
        bucket, _, prefix = uri[5:].partition("/")
        return bucket, prefix.rstrip("/")

    def _objects(self, uri: str) -> list[tuple[str, str]]:
        """(key, ETag) of every object under ``uri``, sorted by key."""
        bucket, prefix = self._split(uri)
        objects: list[tuple[str, str]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects.extend((item["Key"], item["ETag"]) for item in page.get("Contents", []))
        return sorted(objects)

    def _cached(self, bucket: str, key: str, etag: str) -> Path:
        # Objects are immutable per ETag: a step that reads what an earlier step read or wrote
        # gets a local copy instead of another transfer through the emulator.
        digest = uuid.uuid5(uuid.NAMESPACE_URL, f"{bucket}/{key}/{etag}").hex
        return self.workdir / ".s3-cache" / digest

    def _download(self, uri: str, target: Path, shard: tuple[int, int] | None = None) -> None:
        bucket, prefix = self._split(uri)
        objects = self._objects(uri)
        if not objects:
            raise PipelineRunError(f"no objects under {uri}")
        if shard is not None:
            index, count = shard
            objects = objects[index::count]

        def fetch(item: tuple[str, str]) -> None:
            key, etag = item
            relative = key[len(prefix) :].lstrip("/") or Path(key).name
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            cached = self._cached(bucket, key, etag)
            if not cached.exists():
                cached.parent.mkdir(parents=True, exist_ok=True)
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                partial = cached.with_suffix(f".{uuid.uuid4().hex}")
                partial.write_bytes(body)
                partial.replace(cached)
            shutil.copyfile(cached, path)

        # Daily files are many and small: transfer them concurrently (boto3 clients are
        # thread-safe), as SageMaker's own input staging does.
        list(self._transfers.map(fetch, objects))

    def _upload(self, source: Path, uri: str) -> None:
        bucket, prefix = self._split(uri)

        def put(path: Path) -> None:
            key = f"{prefix}/{path.relative_to(source).as_posix()}" if prefix else path.name
            body = path.read_bytes()
            etag = self.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
            cached = self._cached(bucket, key, etag)
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, cached)

        list(self._transfers.map(put, sorted(p for p in source.rglob("*") if p.is_file())))

    # -- steps ----------------------------------------------------------------------------

    def _container_path(self, root: Path, path: str) -> Path:
        if not path.startswith(CONTAINER_ROOT):
            raise PipelineRunError(f"container path {path!r} is outside {CONTAINER_ROOT}")
        return root / "opt" / "ml" / path.removeprefix(CONTAINER_ROOT)

    def _run_processes(self, step: str, commands: list[tuple[list[str], Path]]) -> float:
        """Run one subprocess per instance, all at once; returns their wall time."""
        started = time.perf_counter()
        environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
        processes = []
        for command, log_path in commands:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("wb") as log:
                processes.append(
                    (
                        subprocess.Popen(
                            command,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=environment,
                            cwd=REPOSITORY,
                        ),
                        log_path,
                    )
                )
        failures = []
        for process, log_path in processes:
            if process.wait() != 0:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
                failures.append(f"exit {process.returncode}: {' | '.join(tail)} (log {log_path})")
        if failures:
            raise PipelineRunError("; ".join(failures), step)
        return time.perf_counter() - started

    def _module(self, step: str, arguments: Mapping[str, Any]) -> str:
        entrypoint = arguments.get("AppSpecification", {}).get("ContainerEntrypoint")
        if not entrypoint or entrypoint[:2] != ["python", "-m"] or len(entrypoint) != 3:
            raise PipelineRunError(
                f"only our image's `python -m <module>` entry points run locally, got {entrypoint}",
                step,
            )
        return str(entrypoint[2])

    def _processing(self, step: Mapping[str, Any], report: StepReport) -> None:
        name = step["Name"]
        arguments = self.resolve(step["Arguments"])
        module = self._module(name, arguments)
        count = int(arguments["ProcessingResources"]["ClusterConfig"]["InstanceCount"])
        hosts = [f"algo-{index + 1}" for index in range(count)]
        commands = []
        for index, host in enumerate(hosts):
            root = self.workdir / name / host
            config = root / "opt" / "ml" / "config"
            config.mkdir(parents=True, exist_ok=True)
            (config / "resourceconfig.json").write_text(
                json.dumps({"current_host": host, "hosts": hosts})
            )
            for item in arguments.get("ProcessingInputs", []):
                source = item["S3Input"]
                sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
                self._download(
                    source["S3Uri"],
                    self._container_path(root, source["LocalPath"]),
                    (index, count) if sharded else None,
                )
            for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
                self._container_path(root, item["S3Output"]["LocalPath"]).mkdir(
                    parents=True, exist_ok=True
                )
            container_arguments = [
                str(self._container_path(root, a))
                if str(a).startswith(CONTAINER_ROOT)
                else _text(a)
                for a in arguments.get("AppSpecification", {}).get("ContainerArguments", [])
            ]
            base = self._container_path(root, "/opt/ml/processing")
            commands.append(
                (
                    [sys.executable, "-m", module, *container_arguments, "--base-dir", str(base)],
                    root / "logs" / "stdout.log",
                )
            )
        report.work_seconds = self._run_processes(name, commands)
        properties: dict[str, Any] = {}
        for item in arguments.get("ProcessingOutputConfig", {}).get("Outputs", []):
            uri = item["S3Output"]["S3Uri"]
            for host in hosts:
                local = self._container_path(
                    self.workdir / name / host, item["S3Output"]["LocalPath"]
                )
                self._upload(local, uri)
            properties[f"ProcessingOutputConfig.Outputs['{item['OutputName']}'].S3Output.S3Uri"] = (
                uri
            )
            report.outputs[item["OutputName"]] = uri
        self.properties[name] = properties
        for property_file in step.get("PropertyFiles", []):
            output = next(
                item for item in arguments["ProcessingOutputConfig"]["Outputs"]
                if item["OutputName"] == property_file["OutputName"]
            )  # fmt: skip
            path = (
                self._container_path(
                    self.workdir / name / hosts[0], output["S3Output"]["LocalPath"]
                )
                / property_file["FilePath"]
            )
            self.property_files[f"{name}.{property_file['PropertyFileName']}"] = json.loads(
                path.read_text()
            )

    def _training(self, step: Mapping[str, Any], report: StepReport) -> None:
        name = step["Name"]
        arguments = self.resolve(step["Arguments"])
        count = int(arguments["ResourceConfig"]["InstanceCount"])
        if count != 1:
            raise PipelineRunError(
                f"local training runs one instance; set TrainingInstanceCount=1 (got {count})", name
            )
        root = self.workdir / name / "algo-1"
        ml = root / "opt" / "ml"
        for channel in arguments.get("InputDataConfig", []):
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            self._download(uri, ml / "input" / "data" / channel["ChannelName"])
        config = ml / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        hyperparameters = {k: _text(v) for k, v in arguments.get("HyperParameters", {}).items()}
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        command = [sys.executable, "-m", "training.train", "--base-dir", str(ml)]
        try:
            report.work_seconds = self._run_processes(
                name, [(command, root / "logs" / "stdout.log")]
            )
        except PipelineRunError as error:
            failure = ml / "output" / "failure"
            reason = failure.read_text().strip() if failure.exists() else error.reason
            raise PipelineRunError(reason, name) from None
        archive = ml / "output" / "model.tar.gz"
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:gz", compresslevel=1) as tar:  # speed over size
            for path in sorted((ml / "model").iterdir()):
                tar.add(path, arcname=path.name)
        job = f"pipelines-{self.execution_id}-{name}"
        output_uri = f"{arguments['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job}/output"
        bucket, prefix = self._split(output_uri)
        self.s3.upload_file(str(archive), bucket, f"{prefix}/model.tar.gz")
        artifacts = f"{output_uri}/model.tar.gz"
        self.properties[name] = {"ModelArtifacts.S3ModelArtifacts": artifacts}
        report.outputs["model"] = artifacts

    def _quality_check(self, step: Mapping[str, Any], report: StepReport) -> None:
        name = step["Name"]
        if step.get("CheckType") != "DATA_QUALITY":
            raise PipelineRunError(f"unsupported quality check {step.get('CheckType')!r}", name)
        arguments = self.resolve(step["Arguments"])
        root = self.workdir / name / "algo-1"
        dataset = arguments["ProcessingInputs"][0]["S3Input"]
        local_dataset = self._container_path(root, dataset["LocalPath"])
        self._download(dataset["S3Uri"], local_dataset)
        output = arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
        local_output = self._container_path(root, output["LocalPath"])
        started = time.perf_counter()
        write_baseline(local_dataset, local_output)
        report.work_seconds = time.perf_counter() - started
        self._upload(local_output, output["S3Uri"])
        statistics = f"{output['S3Uri'].rstrip('/')}/{STATISTICS_FILE}"
        constraints = f"{output['S3Uri'].rstrip('/')}/{CONSTRAINTS_FILE}"
        supplied_statistics = self.resolve(step.get("SuppliedBaselineStatistics"))
        supplied_constraints = self.resolve(step.get("SuppliedBaselineConstraints"))
        new_baseline = bool(step.get("RegisterNewBaseline")) or not supplied_statistics
        self.properties[name] = {
            "CalculatedBaselineStatistics": statistics,
            "CalculatedBaselineConstraints": constraints,
            "BaselineUsedForDriftCheckStatistics": statistics
            if new_baseline
            else supplied_statistics,
            "BaselineUsedForDriftCheckConstraints": constraints
            if new_baseline
            else supplied_constraints,
        }
        report.outputs.update(statistics=statistics, constraints=constraints)

    def _condition(self, step: Mapping[str, Any], report: StepReport) -> list[Mapping[str, Any]]:
        arguments = step["Arguments"]
        outcome = all(self._evaluate(condition) for condition in arguments["Conditions"])
        report.outputs["Outcome"] = str(outcome).lower()
        self.properties[step["Name"]] = {"Outcome": outcome}
        branch = arguments["IfSteps"] if outcome else arguments["ElseSteps"]
        return list(branch)

    def _evaluate(self, condition: Mapping[str, Any]) -> bool:
        kind = condition["Type"]
        if kind in COMPARISONS:
            left = self.resolve(condition["LeftValue"])
            right = self.resolve(condition["RightValue"])
            if isinstance(left, int | float) or isinstance(right, int | float):
                left, right = float(left), float(right)
            return COMPARISONS[kind](left, right)
        if kind == "Not":
            return not self._evaluate(condition["Expression"])
        if kind == "Or":
            return any(self._evaluate(c) for c in condition["Conditions"])
        if kind == "In":
            values = [self.resolve(v) for v in condition["Values"]]
            return self.resolve(condition["QueryValue"]) in values
        raise PipelineRunError(f"unsupported condition type {kind!r}")

    def _register(self, step: Mapping[str, Any], report: StepReport) -> None:
        arguments = self.resolve(step["Arguments"])
        group = arguments["ModelPackageGroupName"]
        groups = self.sagemaker.list_model_package_groups(NameContains=group)
        if not any(
            g["ModelPackageGroupName"] == group for g in groups["ModelPackageGroupSummaryList"]
        ):
            self.sagemaker.create_model_package_group(ModelPackageGroupName=group)
        request = {
            key: value
            for key, value in arguments.items()
            if key in (
                "ModelPackageGroupName", "ModelPackageDescription", "InferenceSpecification",
                "ModelApprovalStatus", "ModelMetrics", "DriftCheckBaselines",
                "CustomerMetadataProperties", "MetadataProperties",
            )
        }  # fmt: skip
        if "ModelMetrics" in request:  # the SDK writes empty sections AWS would reject
            request["ModelMetrics"] = {k: v for k, v in request["ModelMetrics"].items() if v}
        arn = self.sagemaker.create_model_package(**request)["ModelPackageArn"]
        self.properties[step["Name"]] = {"ModelPackageArn": arn}
        report.outputs["ModelPackageArn"] = arn

    # -- the run --------------------------------------------------------------------------

    def _order(self, steps: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        names = {step["Name"] for step in steps}
        needs = {
            step["Name"]: (set(step.get("DependsOn", [])) | _references(step)) & names
            for step in steps
        }
        done: set[str] = set()
        while len(done) < len(steps):
            ready = [s for s in steps if s["Name"] not in done and needs[s["Name"]] <= done]
            if not ready:
                raise PipelineRunError(f"steps {sorted(names - done)} depend on each other")
            for step in ready:
                done.add(step["Name"])
                yield step

    def _execute(self, step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        report = StepReport(step["Name"], step["Type"], status="Executing")
        self.reports.append(report)
        self.log(f"  {step['Name']:<22}{step['Type']:<15}running")
        started = time.perf_counter()
        follow_up: list[Mapping[str, Any]] = []
        try:
            kind = step["Type"]
            if kind == "Processing":
                self._processing(step, report)
            elif kind == "Training":
                self._training(step, report)
            elif kind == "QualityCheck":
                self._quality_check(step, report)
            elif kind == "Condition":
                follow_up = self._condition(step, report)
            elif kind == "RegisterModel":
                self._register(step, report)
            elif kind == "Fail":
                message = _text(self.resolve(step["Arguments"].get("ErrorMessage", "")))
                report.status, report.message = "Failed", message
                raise PipelineRunError(message, step["Name"])
            else:
                raise PipelineRunError(f"unsupported step type {kind!r}", step["Name"])
        except PipelineRunError as error:
            report.status, report.message = "Failed", error.reason
            report.seconds = time.perf_counter() - started
            raise
        report.status = "Succeeded"
        report.seconds = time.perf_counter() - started
        outputs = ", ".join(f"{k}={v}" for k, v in report.outputs.items())
        self.log(
            f"  {step['Name']:<22}{step['Type']:<15}succeeded in {report.seconds:.1f} s  {outputs}"
        )
        return follow_up

    def run(self) -> RunResult:
        """Execute every step; never raises for a step failure (see the result)."""
        with self._transfers:
            return self._run()

    def _run(self) -> RunResult:
        started = time.perf_counter()
        self.log(f"local execution {self.execution_id} of {self.pipeline_name}")
        try:
            pending = list(self._order(list(self.definition.get("Steps", []))))
            while pending:
                step = pending.pop(0)
                pending = list(self._order(self._execute(step))) + pending
        except PipelineRunError as error:
            self.log(f"  failed: {error}")
            return RunResult(self.execution_id, "Failed", self.reports,
                             time.perf_counter() - started, failure=str(error))  # fmt: skip
        arn = next(
            (r.outputs["ModelPackageArn"] for r in self.reports if "ModelPackageArn" in r.outputs),
            None,
        )
        return RunResult(self.execution_id, "Succeeded", self.reports,
                         time.perf_counter() - started, model_package_arn=arn)  # fmt: skip


def _references(step: Mapping[str, Any]) -> set[str]:
    """Names of the steps whose properties ``step`` reads (anywhere in its JSON)."""
    text = json.dumps(step)
    return set(re.findall(r'"Steps\.([A-Za-z0-9-]+)\.', text)) - {step["Name"]}
