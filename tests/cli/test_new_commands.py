"""The commands peers have: `sweep init`, `sweep show`, `sweep list`, `env`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from xstilts.cli.main import app

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "tiny.yaml"
runner = CliRunner()


@pytest.mark.parametrize("preset", ["tiny", "paper", "rq-difficulty"])
def test_init_writes_a_commented_sweep_that_plans(tmp_path: Path, preset: str):
    file = tmp_path / "My Sweep.yaml"
    result = runner.invoke(app, ["sweep", "init", "--preset", preset, str(file)])
    assert result.exit_code == 0, result.output
    text = file.read_text()
    assert text.startswith("# Sweep file written by `xstilts sweep init") and "xstilts sweep show" in text
    assert yaml.safe_load(text)["name"] == "my-sweep"
    plan = runner.invoke(app, ["sweep", "plan", str(file), "--offline", "-o", "json"])
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.stdout)["sweep"] == "my-sweep"


def test_init_refuses_to_overwrite_and_unknown_presets(tmp_path: Path):
    file = tmp_path / "s.yaml"
    file.write_text("mine")
    result = runner.invoke(app, ["sweep", "init", str(file)])
    assert result.exit_code == 3 and "--force" in result.stderr and file.read_text() == "mine"
    assert runner.invoke(app, ["sweep", "init", "--force", str(file)]).exit_code == 0
    bad = runner.invoke(app, ["sweep", "init", "--preset", "nope", str(tmp_path / "x.yaml")])
    assert bad.exit_code == 2 and "rq-difficulty" in bad.stderr and "paper" in bad.stderr


def test_show_fills_in_every_default_per_phase_kind_and_task():
    result = runner.invoke(app, ["sweep", "show", str(TINY), "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sweep"]["name"] == "tiny" and data["sweep"]["seeds"] == [1]
    mnli = data["phases"]["intermediate/mnli"]["config"]["training"]
    assert mnli["epochs"] == 3 and mnli["learning_rate"] == 1e-3  # from the file
    assert mnli["warmup_ratio"] == 0.1 and mnli["weight_decay"] == 0.01  # defaults the file does not name
    assert data["phases"]["target/pawsx"]["config"]["training"]["epochs"] == 15
    assert data["phases"]["target/pawsx"]["resources"]["memory"]
    table = runner.invoke(app, ["sweep", "show", str(TINY)])
    assert table.exit_code == 0 and "warmup_ratio: 0.1" in table.stdout


def test_list_of_an_empty_and_a_missing_store(tmp_path: Path):
    empty = runner.invoke(app, ["sweep", "list", "--store", str(tmp_path)])
    assert empty.exit_code == 0 and "no sweeps recorded" in empty.stdout
    missing = runner.invoke(app, ["sweep", "list", "--store", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr


def test_env_reports_versions_devices_store_and_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hidden")
    result = runner.invoke(app, ["env", "--store", str(tmp_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["packages"]["torch"] and info["devices"]["cpu_cores"] >= 1
    assert info["store"] == {"uri": str(tmp_path), "reachable": True, "detail": "writable"}
    assert info["cluster"]["configured"] is False
    assert "hidden" not in result.stdout
    table = runner.invoke(
        app, ["env", "--store", "s3://bucket/x"], env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    )
    assert table.exit_code == 0 and "store: s3://bucket/x: NOT reachable" in table.stdout
