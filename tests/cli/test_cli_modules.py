from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cli import main as cli
from cli.arguments import pipeline_config_from
from cli.demo import metrics_table
from processing.contracts import (
    BASELINES,
    IMPROVEMENT,
    IMPROVEMENT_PREFIX,
    MAX_PAYLOAD_BYTES,
    REGRESSION_METRICS,
)

REPOSITORY = Path(__file__).resolve().parents[2]


def _metrics(mape: float) -> dict[str, dict[str, float]]:
    return {name: {"value": value} for name, value in
            (("mape", mape), ("mae", 100.0), ("rmse", 150.0), ("r2", 0.9))}  # fmt: skip


def test_metrics_table_shows_the_model_and_every_baseline() -> None:
    evaluation = {
        REGRESSION_METRICS: _metrics(0.05),
        "baselines": {name: {REGRESSION_METRICS: _metrics(0.1)} for name in BASELINES},
        IMPROVEMENT: {f"{IMPROVEMENT_PREFIX}{name}": 0.5 for name in BASELINES},
    }
    lines = metrics_table(evaluation).splitlines()
    assert lines[0].split() == ["predictor", "MAPE", "MAE", "EUR", "RMSE", "EUR", "R2"]
    assert lines[2].split()[:2] == ["model", "5.00%"]
    assert [line.split()[0] for line in lines[3 : 3 + len(BASELINES)]] == list(BASELINES)
    assert lines[-len(BASELINES) :] == [
        f"MAPE is 50.0% lower than the {name} baseline" for name in BASELINES
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give the load(s) with --load JSON or --file PATH"),
        (["--load", "{"], "--load is not valid JSON"),
        (["--load", "[1, 2]"], "--load must hold a load object or a list of load objects"),
        (["--load", '{"instances": []}'], "must hold a load object or a list of load objects"),
    ],
)
def test_quote_rejects_bad_loads_before_calling_the_endpoint(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["quote", "--endpoint-name", "freight-pricing-dev", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_serve_accepts_at_most_the_invoke_endpoint_payload_by_default(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(["serve", "--model-dir", str(tmp_path)])
    assert args.max_body_bytes == MAX_PAYLOAD_BYTES


def test_pipeline_config_comes_from_the_stage_names() -> None:
    parser = cli.build_parser()
    base = ["pipeline", "definition", "--stage", "staging", "--code-version", "abc123"]
    with_account = pipeline_config_from(parser.parse_args([*base, "--account", "123456789012"]))
    assert with_account.pipeline_name == "freight-pricing-staging"
    assert with_account.artifacts_bucket == "freight-pricing-staging-artifacts-123456789012"
    assert with_account.role_arn == (
        "arn:aws:iam::123456789012:role/freight-pricing-staging-sagemaker"
    )
    assert with_account.code_version == "abc123"
    role = "arn:aws:iam::123456789012:role/custom"
    explicit = pipeline_config_from(
        parser.parse_args([*base, "--role-arn", role, "--region", "eu-west-1"])
    )
    assert (explicit.role_arn, explicit.region) == (role, "eu-west-1")


def _imports_cli(path: Path) -> bool:
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return any(module == "cli" or module.startswith("cli.") for module in modules)


def test_every_command_module_stays_thin() -> None:
    modules = sorted((REPOSITORY / "cli").glob("*.py"))
    assert {path.name for path in modules} >= {"main.py", "data.py", "demo.py", "serving.py",
                                               "pipeline.py", "models.py", "errors.py"}  # fmt: skip
    assert [path.name for path in modules if len(path.read_text().splitlines()) >= 400] == []
