"""The SageMaker entry points answer bad arguments with one ``error:`` line naming them, exit 2."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from processing import evaluate, lane_statistics, prepare
from processing.features import FEATURE_SPEC_FILE
from training import train

REPOSITORY = Path(__file__).resolve().parents[2]
EntryPoint = Callable[[Sequence[str] | None], int]


@pytest.fixture
def paths(tmp_path: Path) -> Path:
    """A file, a directory, a non-UTF-8 file, and training channels with a corrupt spec."""
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "latin1.json").write_bytes(b'{"eta": "0,1 \xe9"}')
    for channel in ("train", "validation", "artifacts"):
        (tmp_path / channel).mkdir()
    (tmp_path / "artifacts" / FEATURE_SPEC_FILE).write_text('{"version": ')
    return tmp_path


def _run(main: EntryPoint, arguments: list[str], paths: Path) -> int:
    argv = [argument.replace("{tmp}", str(paths)) for argument in arguments]
    try:
        return main(argv)
    except SystemExit as exit_info:  # argparse: a usage line, then its error line
        return int(str(exit_info.code))


def _the_error_line(err: str) -> str:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith(("error:", "python -m"))]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize(
    ("main", "arguments", "named"),
    [
        (prepare.main, ["--validation-days", "inf"], "--validation-days"),
        (prepare.main, ["--validation-days", "1e308"], "--validation-days"),
        (prepare.main, ["--test-days", "nan"], "--test-days"),
        (prepare.main, ["--input", "{tmp}/a-directory", "--output", "{tmp}/a-file"], "--output"),
        (prepare.main, ["--input", "{tmp}/a-directory", "--base-dir", "{tmp}/a-file"], "--output"),
        (lane_statistics.main, ["--validation-days", "inf"], "--validation-days"),
        (lane_statistics.main, ["--window-days", "5000"], "--window-days"),
        (lane_statistics.main, ["--execution-start", "soon"], "--execution-start"),
        (
            lane_statistics.main,
            ["--input", "{tmp}/a-directory", "--output", "{tmp}/a-file/statistics"],
            "--output",
        ),
        (evaluate.main, ["--base-dir", "{tmp}", "--output", "{tmp}/a-file"], "--output"),
        (evaluate.main, ["--base-dir", "{tmp}", "--report", "{tmp}/a-file"], "--report"),
        (evaluate.main, ["--model", "{tmp}/a-file", "--test", "{tmp}/train"], "--model"),
    ],
)
def test_processing_steps_name_the_bad_argument_before_any_work(
    main: EntryPoint,
    arguments: list[str],
    named: str,
    paths: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run(main, arguments, paths) == 2
    assert named in _the_error_line(capsys.readouterr().err)
    assert not (paths / "a-directory" / "train").exists()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--hyperparameters", "{tmp}/a-directory"], "--hyperparameters"),
        (["--hyperparameters", "{tmp}/missing.json"], "--hyperparameters"),
        (["--hyperparameters", "{tmp}/latin1.json"], "latin1.json"),
        (["--model-dir", "{tmp}/a-file"], "--model-dir"),
        ([], FEATURE_SPEC_FILE),
    ],
)
def test_training_names_the_bad_argument_in_the_error_and_the_failure_file(
    arguments: list[str], named: str, paths: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = paths / "job"
    channels = [f"--{name}={paths / name}" for name in ("train", "validation", "artifacts")]
    assert _run(train.main, ["--base-dir", str(base), *channels, *arguments], paths) == 2
    assert named in _the_error_line(capsys.readouterr().err)
    assert named in (base / "output" / "failure").read_text()
    assert not (base / "model").exists()


def test_training_with_an_unwritable_base_dir_says_so(
    paths: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train.main(["--base-dir", str(paths / "a-file")]) == 2
    assert "--base-dir" in _the_error_line(capsys.readouterr().err)


def test_the_training_command_with_a_directory_as_hyperparameters_exits_2_without_traceback(
    paths: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training.train", "--base-dir", str(paths / "job"),
         "--hyperparameters", str(paths / "a-directory")],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert _the_error_line(result.stderr).startswith("error: --hyperparameters: ")
    assert "is a directory" in (paths / "job" / "output" / "failure").read_text()
