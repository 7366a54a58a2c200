from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from inference import server
from training import train

REPOSITORY = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPOSITORY / "container" / "Dockerfile").read_text()
RUNTIME_PACKAGES = {"processing", "training", "inference", "monitoring"}


def test_serve_and_train_commands_dispatch_to_the_entry_points() -> None:
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts")}
    assert scripts["serve"].load() is server.console_main
    assert scripts["train"].load() is train.console_main


def test_image_runs_the_runtime_set_as_a_non_root_user() -> None:
    final_stage = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER freight$", final_stage, re.MULTILINE)
    assert 'CMD ["serve"]' in final_stage
    assert "EXPOSE 8080" in final_stage
    installs = re.findall(r"^RUN uv sync (.*)$", DOCKERFILE, re.MULTILINE)
    assert installs, "the image installs from the lock file"
    for flags in installs:
        assert "--frozen" in flags
        assert "--extra" not in flags
        assert "--all-extras" not in flags
    copied = set(re.findall(r"^COPY (\w+) \./\1$", DOCKERFILE, re.MULTILINE))
    assert copied == RUNTIME_PACKAGES
    # The project itself is not installed: its wheel would carry the non-runtime packages.
    assert all("--no-install-project" in flags for flags in installs)


def test_container_commands_run_the_same_entry_points_as_the_console_scripts() -> None:
    # In the image, `serve` and `train` are the scripts in container/bin (the project is not
    # installed there); they must start the modules whose console_main the scripts name.
    for name, module in (("serve", "inference.server"), ("train", "training.train")):
        script = (REPOSITORY / "container" / "bin" / name).read_text()
        assert f'exec python -m {module} "$@"' in script
        assert f"container/bin/{name}" in DOCKERFILE
        source = (REPOSITORY / Path(*module.split("."))).with_suffix(".py").read_text()
        assert 'if __name__ == "__main__":\n    console_main()' in source or (
            'if __name__ == "__main__":\n    sys.exit(main())' in source
        )


def test_dockerignore_admits_only_what_the_image_copies() -> None:
    lines = [
        line.strip()
        for line in (REPOSITORY / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is ignored first, then the image's files admitted"
    admitted = {line.removeprefix("!").rstrip("/") for line in lines if line.startswith("!")}
    assert admitted == {*RUNTIME_PACKAGES, "container", "pyproject.toml", "uv.lock", "README.md"}


def test_runtime_packages_import_without_the_extras() -> None:
    # The image has no pandas, awswrangler, moto, SageMaker SDK, CDK or MLflow. Block them
    # (as if not installed) and import every runtime module; matplotlib is in the image but
    # must load only when a report is drawn.
    code = """
import sys
BLOCKED = {"pandas", "awswrangler", "moto", "sagemaker", "aws_cdk", "cdk_nag", "mlflow"}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not in the image")
sys.meta_path.insert(0, Block())
import processing.prepare, processing.evaluate, processing.lane_statistics, processing.lake
import training.train, inference.server, inference.client, monitoring.data_quality
print("matplotlib" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPOSITORY, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_serve_command_rejects_a_bad_environment(tmp_path: Path) -> None:
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": "eighty", "FREIGHT_MODEL_DIR": str(tmp_path)}
    result = subprocess.run([_script("serve")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "SAGEMAKER_BIND_TO_PORT must be an integer, got 'eighty'" in result.stderr


def test_serve_command_needs_a_model(tmp_path: Path) -> None:
    env = {**os.environ, "FREIGHT_MODEL_DIR": str(tmp_path / "missing")}
    result = subprocess.run([_script("serve")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_train_command_follows_the_training_contract(tmp_path: Path) -> None:
    # Channels from SageMaker's variables; the failure file under the base directory.
    env = {**os.environ, "SM_MODEL_DIR": str(tmp_path / "model")}
    for channel in ("train", "validation", "artifacts"):
        env[f"SM_CHANNEL_{channel.upper()}"] = str(tmp_path / "nowhere" / channel)
    result = subprocess.run(
        [_script("train"), "--base-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "training channel 'train'" in result.stderr
    assert "training channel 'train'" in (tmp_path / "output" / "failure").read_text()
