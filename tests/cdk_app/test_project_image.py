"""The project image's asset: it hashes the files the image uses and nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aws_cdk import App, FileSystem, Stack, cx_api

from cdk_app.constructs.project_image import (
    DOCKER_IGNORE,
    DOCKERFILE,
    IMAGE_IGNORE_MODE,
    REPOSITORY,
    ProjectImage,
    docker_ignore_patterns,
)

# What the image copies (container/Dockerfile), plus the .dockerignore CDK always includes.
IMAGE_INPUTS = {"pyproject.toml", "uv.lock", "README.md", "container", "processing", "training",
                "inference", "monitoring", DOCKER_IGNORE}  # fmt: skip


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A small build context: the real .dockerignore and Dockerfile, stub packages."""
    shutil.copy(REPOSITORY / DOCKER_IGNORE, tmp_path / DOCKER_IGNORE)
    (tmp_path / "container").mkdir()
    shutil.copy(REPOSITORY / DOCKERFILE, tmp_path / DOCKERFILE)
    for relative, text in {
        "pyproject.toml": "[project]\nname = 'x'\n",
        "uv.lock": "version = 1\n",
        "processing/prepare.py": "ROWS = 1\n",
        "training/train.py": "ROUNDS = 1\n",
        "tests/test_prepare.py": "def test(): ...\n",
        "docs/adr/0001.md": "# A decision\n",
    }.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _fingerprint(directory: Path) -> str:
    return FileSystem.fingerprint(
        str(directory), exclude=docker_ignore_patterns(directory), ignore_mode=IMAGE_IGNORE_MODE
    )


def _asset_hash(directory: Path) -> str:
    return ProjectImage(Stack(App(), "Image"), "Image", directory=directory).asset.asset_hash


@pytest.mark.parametrize(
    "relative",
    [".hypothesis/examples/x", "tests/test_new.py", "docs/new.md", "bench/run.py",
     "processing/__pycache__/prepare.cpython-311.pyc", "cdk.out/manifest.json", ".venv/x"],
)  # fmt: skip
def test_files_the_image_does_not_use_leave_the_hash_alone(context: Path, relative: str) -> None:
    before = _fingerprint(context), _asset_hash(context)
    path = context / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("changed")
    assert (_fingerprint(context), _asset_hash(context)) == before


@pytest.mark.parametrize("relative", ["processing/prepare.py", "processing/new.py", "uv.lock"])
def test_a_change_the_image_uses_changes_the_hash(context: Path, relative: str) -> None:
    before_fingerprint, before_asset = _fingerprint(context), _asset_hash(context)
    (context / relative).write_text("changed")
    assert _fingerprint(context) != before_fingerprint
    assert _asset_hash(context) != before_asset


def test_comments_and_blank_lines_are_not_patterns(tmp_path: Path) -> None:
    (tmp_path / DOCKER_IGNORE).write_text("# why\n*\n\n  !processing/  \n")
    assert docker_ignore_patterns(tmp_path) == ["*", "!processing/"]


def test_a_missing_dockerignore_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"\.dockerignore is missing"):
        docker_ignore_patterns(tmp_path)


def test_the_synthesized_asset_holds_only_what_the_image_uses(
    assembly: cx_api.CloudAssembly,
) -> None:
    # The asset manifest names the image's staged directory (the app stages other assets too).
    manifest = Path(assembly.directory) / "FreightPricing-dev-MlPipeline.assets.json"
    (image,) = json.loads(manifest.read_text(encoding="utf-8"))["dockerImages"].values()
    staged = Path(assembly.directory) / image["source"]["directory"]
    assert {path.name for path in staged.iterdir()} <= IMAGE_INPUTS
    assert not list(staged.rglob("__pycache__"))
