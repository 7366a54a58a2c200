from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cli import main as cli
from processing.lake import read_partitions


def test_generate_writes_daily_partitions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "raw"
    code = cli.main(["data", "generate", "--days", "3", "--rows-per-day", "200", "--seed", "4",
                     "--start-date", "2026-05-01", "--out", str(out)])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 3
    assert summary["rows"] == 600
    assert sorted(p.name for p in out.iterdir()) == [
        "dt=2026-05-01",
        "dt=2026-05-02",
        "dt=2026-05-03",
    ]
    assert read_partitions(out).num_rows == 600


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--days", "0"], "argument --days: '0' must be at least 1"),
        (["--rows-per-day", "many"], "argument --rows-per-day: 'many' is not an integer"),
        (["--seed", "-1"], "argument --seed: '-1' must be at least 0"),
        (["--start-date", "yesterday"], "argument --start-date: 'yesterday' is not a date"),
        (["--dirty-share", "0.9"], "argument --dirty-share: '0.9' must be within [0, 0.5]"),
    ],
)
def test_generate_rejects_bad_values_naming_the_argument(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "generate", "--out", str(tmp_path), *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_glue_needs_s3_and_both_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["data", "generate", "--days", "1", "--rows-per-day", "10", "--out", str(tmp_path)]
    assert cli.main([*base, "--glue-database", "lake"]) == 2
    assert "must be given together" in capsys.readouterr().err
    assert cli.main([*base, "--glue-database", "lake", "--glue-table", "raw_loads"]) == 2
    assert "needs an s3:// --out" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_generate_lands_data_in_the_s3_lake_with_glue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        code = cli.main(["data", "generate", "--days", "2", "--rows-per-day", "50",
                         "--start-date", "2026-05-01", "--out", "s3://lake/raw/loads",
                         "--glue-database", "freight", "--glue-table", "raw_loads"])  # fmt: skip
        assert code == 0
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]]
        assert keys == [
            "raw/loads/dt=2026-05-01/part-00000.parquet",
            "raw/loads/dt=2026-05-02/part-00000.parquet",
        ]
        partitions = boto3.client("glue").get_partitions(
            DatabaseName="freight", TableName="raw_loads"
        )
        assert sorted(p["Values"][0] for p in partitions["Partitions"]) == [
            "2026-05-01",
            "2026-05-02",
        ]
    assert json.loads(capsys.readouterr().out)["written"] == 2


def test_demo_runs_end_to_end_at_small_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["demo", "--workdir", str(tmp_path), "--days", "50", "--rows-per-day", "300"])
    assert code == 0
    out = capsys.readouterr().out
    assert "predictor" in out
    assert "lane_median" in out
    assert "price_per_km" in out
    assert str(tmp_path) in out
    # The closing quotes came through boto3 from the served model: five rows with prices.
    quotes = out.split("80% interval", 1)[1].strip().splitlines()[:5]
    assert len(quotes) == 5
    for row in quotes:
        booked, quote = (float(value) for value in row.split()[5:7])
        assert 0.5 < quote / booked < 2.0
    # The approval event deployed the endpoint, whose capture holds every quote request.
    assert "endpoint freight-pricing-local: created" in out
    # quote_many sends the five loads in one request: one record.
    assert "data capture: 1 record (one per request)" in out
    evaluation = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert evaluation["improvement"]["mape_reduction_vs_lane_median"] >= 0.30
    assert evaluation["improvement"]["mape_reduction_vs_price_per_km"] >= 0.40
    assert (tmp_path / "model" / "xgboost-model.ubj").exists()
    assert (tmp_path / "report" / "index.html").exists()


def test_console_script_reports_usage_errors() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo", "--days", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "argument --days: '3' must be at least 45" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--busy-poll-us", "-1"], "argument --busy-poll-us: '-1' must be within [0, 1000000]"),
        (["--busy-poll-us", "2000000"], "--busy-poll-us: '2000000' must be within [0, 1000000]"),
        (["--port", "0"], "argument --port: '0' must be within [1, 65535]"),
    ],
)
def test_serve_rejects_bad_settings_naming_them(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # argparse exits on a malformed flag; the settings check returns the usage error code.
    try:
        code = cli.main(["serve", "--model-dir", str(tmp_path), *arguments])
    except SystemExit as exit_info:
        code = exit_info.code
    assert code == 2
    assert message in capsys.readouterr().err
