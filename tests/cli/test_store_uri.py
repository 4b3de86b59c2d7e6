"""Store addresses as users type them: only a local path and s3:// are stores, an unusable local path is
one line, and planning works without the store (no credentials, an unreachable endpoint, --offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from xstilts.cli.main import app

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "tiny.yaml"
SHIPPED = sorted((REPO / "jobs").glob("*.yaml"))
runner = CliRunner()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture
def no_s3_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize("command", [["sweep", "plan"], ["sweep", "submit"], ["sweep", "status"]])
def test_unknown_scheme_on_the_command_line_exits_3(command: list[str], tmp_path: Path):
    result = runner.invoke(app, [*command, str(TINY), "--store", "gs://bucket/x"])
    assert result.exit_code == 3, result.output
    (line,) = _lines(result.stderr)
    assert "--store" in line and "gs://" in line and "s3://bucket/prefix" in line and "local path" in line
    assert not Path("gs:").exists() and "Traceback" not in result.output


def test_unknown_scheme_in_the_sweep_file_names_file_and_field(tmp_path: Path):
    sweep = yaml.safe_load(TINY.read_text())
    sweep["store"] = "http://example.com/runs"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(sweep))
    result = runner.invoke(app, ["sweep", "plan", str(bad)])
    assert result.exit_code == 3, result.output
    (line,) = _lines(result.stderr)
    assert str(bad) in line and "field 'store'" in line and "'http://'" in line and "fix:" in line


@pytest.mark.parametrize("command", [["sweep", "plan"], ["sweep", "submit"]])
def test_a_file_as_the_local_store_is_one_line(command: list[str], tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a store")
    for store in (blocker, blocker / "runs"):
        result = runner.invoke(app, [*command, str(TINY), "--store", str(store)])
        assert result.exit_code == 1, result.output
        (line,) = _lines(result.stderr)
        assert "is a file, not a directory" in line and "fix:" in line
        assert "Traceback" not in result.output
    assert blocker.read_text() == "not a store"


def test_a_store_where_no_directory_can_be_made_is_one_line():
    result = runner.invoke(app, ["sweep", "plan", str(TINY), "--store", "/proc/xstilts-store"])
    assert result.exit_code == 1, result.output
    (line,) = _lines(result.stderr)
    assert "cannot create the local store /proc/xstilts-store" in line and "fix:" in line


@pytest.mark.parametrize("sweep_file", SHIPPED, ids=[p.name for p in SHIPPED])
def test_plan_of_every_shipped_sweep_needs_no_credentials(sweep_file: Path, no_s3_credentials: None):
    result = runner.invoke(app, ["sweep", "plan", str(sweep_file), "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    states = {p["status"] for p in data["phase_list"]}
    if data["store"].startswith("s3://"):
        (warning,) = _lines(result.stderr)
        assert warning.startswith("warning: cannot read the store") and "credentials" in warning
        assert states == {"unknown"} and data["done"] is None
    else:
        assert states == {"pending"}


def test_plan_with_an_unreachable_endpoint_warns_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    result = runner.invoke(app, ["sweep", "plan", str(TINY), "--store", "s3://bucket/runs"])
    assert result.exit_code == 0, result.output
    (warning,) = _lines(result.stderr)
    assert "unreachable" in warning and "127.0.0.1:9" in warning
    assert "states unknown" in result.stdout


def test_plan_offline_reads_no_store(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = runner.invoke(
        app, ["sweep", "plan", str(TINY), "--offline", "--store", str(blocker), "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == ""
    assert {p["status"] for p in json.loads(result.stdout)["phase_list"]} == {"unknown"}


def test_tables_at_80_columns_do_not_break_names(tmp_path: Path):
    result = runner.invoke(
        app, ["sweep", "plan", str(TINY), "--store", str(tmp_path)], env={"COLUMNS": "80"}, terminal_width=80
    )
    assert result.exit_code == 0, result.output
    data = json.loads(runner.invoke(app, ["sweep", "plan", str(TINY), "--offline", "-o", "json"]).stdout)
    table_lines = result.stdout.splitlines()
    for phase in data["phase_list"]:
        assert any(phase["name"] in line for line in table_lines), phase["name"]
    assert all(len(line) <= 80 for line in table_lines[:-1]), "the table fits 80 columns"
