"""Every ``freight`` command answers bad input with one ``error:`` line naming it, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main as cli
from pipelines.parameters import PARAMETER_NAMES, check_overrides
from processing.contracts import MODEL_APPROVAL_STATUSES

# Created by the fixture below: a file, a directory, and a file that is not UTF-8.
FILE, DIRECTORY, NOT_UTF8 = "a-file", "a-directory", "latin1.json"


@pytest.fixture
def paths(tmp_path: Path) -> Path:
    (tmp_path / FILE).write_text("x")
    (tmp_path / DIRECTORY).mkdir()
    (tmp_path / NOT_UTF8).write_bytes(b'{"origin_region": "K\xf6ln"}')
    return tmp_path


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any AWS client or embedded AWS fails the test: checks come before them."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an AWS client or the embedded AWS was started")

    monkeypatch.setattr("local.embedded_aws.embedded_aws", refuse)
    monkeypatch.setattr("cli.arguments.sagemaker_client", refuse)
    monkeypatch.setattr("cli.pipeline.sagemaker_client", refuse)
    monkeypatch.setattr("cli.models.sagemaker_client", refuse)
    monkeypatch.setattr("boto3.Session", refuse)


@pytest.mark.usefixtures("no_aws")
@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["data", "generate", "--out", "{tmp}/a-file"], "--out"),
        (["data", "generate", "--out", "{tmp}/a-file/below"], "--out"),
        (["data", "generate", "--out", "s3:///no-bucket"], "S3 URI has no bucket"),
        (["quote", "--endpoint-name", "e", "--file", "{tmp}/a-directory"], "--file"),
        (["quote", "--endpoint-name", "e", "--file", "{tmp}/missing.json"], "--file"),
        (["quote", "--endpoint-name", "e", "--file", "{tmp}/latin1.json"], "--file"),
        (["quote", "--endpoint-name", "bad_name!", "--load", "{}"], "--endpoint-name"),
        (["quote", "--endpoint-name", "e", "--endpoint-url", "localhost"], "--endpoint-url"),
        (["quote", "--endpoint-name", "e", "--region", "not a region"], "--region"),
        (["serve", "--model-dir", "{tmp}/missing"], "--model-dir"),
        (["serve", "--model-dir", "{tmp}", "--port", "70000"], "--port"),
        (["serve", "--model-dir", "{tmp}", "--workers", "100000"], "--workers"),
        (["serve", "--model-dir", "{tmp}", "--busy-poll-us", "2000000"], "--busy-poll-us"),
        (["models", "approve", "abc"], "version"),
        (["models", "approve", "0"], "version"),
        (["models", "reject", "arn:aws:sagemaker:x"], "version"),
        (["models", "approve", "latest", "--description", "x" * 1025], "--description"),
        (["models", "list", "--region", "eu central"], "--region"),
        (["pipeline", "definition", "--out", "{tmp}/a-directory"], "--out"),
        (["pipeline", "definition", "--account", "12345"], "--account"),
        (["pipeline", "definition", "--role-arn", "admin"], "--role-arn"),
        (["pipeline", "definition", "--image-uri", "has space"], "--image-uri"),
        (["pipeline", "run-local", "--workdir", "{tmp}/a-file"], "--workdir"),
        (["pipeline", "run-local", "--param", "EndDate=2026-13-45"], "EndDate"),
        (["pipeline", "run-local", "--param", "NumRound=abc"], "NumRound"),
        (["pipeline", "run-local", "--param", "MaxMape=abc"], "MaxMape"),
        (["pipeline", "run-local", "--param", "MaxMape=12"], "MaxMape"),
        (["pipeline", "run-local", "--param", "ValidationDays=inf"], "ValidationDays"),
        (["pipeline", "run-local", "--param", "NoSuch=1"], "NoSuch"),
        (["pipeline", "run-local", "--param", "NumRound"], "--param"),
        (["pipeline", "start", "--param", "EndDate=2026-13-45"], "EndDate"),
        (["pipeline", "start", "--param", "MaxDepth=0"], "MaxDepth"),
        (["pipeline", "start", "--param", "Eta=nan"], "Eta"),
        (["pipeline", "start", "--param", "TrainingInstanceType=m5.large"], "TrainingInstanceType"),
        (["pipeline", "start", "--param", "ModelApprovalStatus=Yes"], "ModelApprovalStatus"),
        (["pipeline", "start", "--param", "PrepareInstanceCount=-1"], "PrepareInstanceCount"),
        (
            [
                "pipeline",
                "start",
                "--param",
                "StartDate=2026-02-01",
                "--param",
                "EndDate=2026-01-01",
            ],
            "StartDate",
        ),
        (["pipeline", "wait", "--timeout", "0"], "--timeout"),
        (["demo", "--workdir", "{tmp}/a-file"], "--workdir"),
    ],
)
def test_bad_input_is_one_error_line_naming_it_and_exit_2(
    arguments: list[str], named: str, paths: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [argument.replace("{tmp}", str(paths)) for argument in arguments]
    try:
        code = cli.main(argv)
    except SystemExit as exit_info:  # argparse: a usage line, then its error line
        code = exit_info.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith(("error:", "freight"))]
    assert len(errors) == 1, err
    assert named in errors[0], err


def test_a_bad_override_names_the_parameter_the_value_and_what_it_expects() -> None:
    with pytest.raises(ValueError, match=r"^NumRound: 'abc' is not an integer; expected an "
                       r"integer within \[1, 100000\] \(default 400\)$"):  # fmt: skip
        check_overrides({"NumRound": "abc"})


def test_good_overrides_pass_stripped() -> None:
    overrides = {"StartDate": "2026-01-01", "EndDate": " 2026-03-01", "WindowDays": "90",
                 "NumRound": "50 ", "Eta": "0.2", "MaxMape": "0.15",
                 "ModelApprovalStatus": "Approved"}  # fmt: skip
    expected = {name: value.strip() for name, value in overrides.items()}
    assert check_overrides(overrides) == expected
    assert check_overrides({"StartDate": "", "EndDate": ""}) == {"StartDate": "", "EndDate": ""}


def test_every_declared_parameter_has_a_check_and_its_default_passes() -> None:
    from pipelines.parameters import PARAMETERS, TRAINING_HYPERPARAMETERS, _checks

    assert set(_checks()) | set(TRAINING_HYPERPARAMETERS) == set(PARAMETER_NAMES)
    defaults = {parameter.name: str(parameter.default_value) for parameter in PARAMETERS}
    assert check_overrides(defaults) == defaults


def test_the_approval_statuses_are_the_apis() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    assert set(MODEL_APPROVAL_STATUSES) == set(model.shape_for("ModelApprovalStatus").enum)
