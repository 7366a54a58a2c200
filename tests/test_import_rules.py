"""The import contracts of pyproject.toml hold, and a forbidden import really breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, so its packages shadow the editable install's.
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root, env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def copy_of_the_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layout")
    for package in CONFIG["root_packages"]:
        shutil.copytree(
            REPOSITORY / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPOSITORY / "pyproject.toml", root / "pyproject.toml")
    return root


def test_every_package_of_the_layout_is_under_contract() -> None:
    packages = {path.parent.name for path in REPOSITORY.glob("*/__init__.py")}
    assert packages - {"tests", "bench"} == set(CONFIG["root_packages"])


def test_the_layout_keeps_every_contract(copy_of_the_packages: Path) -> None:
    result = _lint(copy_of_the_packages)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("inference/hooks.py", "import aws_cdk", "The runtime (the image) imports only"),
        ("processing/model.py", "import market.generator", "The runtime (the image) imports"),
        ("processing/features.py", "import inference.parsing", "Runtime layers"),
        ("stages/names.py", "import boto3", "Stage names and configuration are pure"),
        ("local/embedded_aws.py", "import cli.main", "Nothing imports the command line"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    copy_of_the_packages: Path, tmp_path: Path, module: str, statement: str, contract: str
) -> None:
    root = tmp_path / "broken"
    shutil.copytree(copy_of_the_packages, root)
    path = root / module
    path.write_text(path.read_text() + f"\n{statement}  # noqa\n")
    result = _lint(root)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout[-3000:]
