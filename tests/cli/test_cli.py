"""The command line as users and scripts see it: output modes, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from xstilts.cli.main import app

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "tiny.yaml"
runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("xstilts ")


def test_plan_json_is_machine_readable(tmp_path: Path):
    result = runner.invoke(app, ["sweep", "plan", str(TINY), "--store", str(tmp_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sweep"] == "tiny"
    assert data["phases"] == len(data["phase_list"]) and data["done"] == 0
    assert data["requested"] > data["phases"] and data["deduplicated"] == data["requested"] - data["phases"]
    kinds = {p["kind"] for p in data["phase_list"]}
    assert kinds == {"encoder", "intermediate", "target", "evaluate"}
    assert all(p["status"] == "pending" for p in data["phase_list"])


def test_plan_table(tmp_path: Path):
    result = runner.invoke(app, ["sweep", "plan", str(TINY), "--store", str(tmp_path)])
    assert result.exit_code == 0
    assert "intermediate/mnli@" in result.stdout and "shared" in result.stdout


def test_invalid_sweep_exits_3_with_one_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    sweep = yaml.safe_load(TINY.read_text())
    sweep["targets"] = ["pawz-x"]
    bad.write_text(yaml.safe_dump(sweep))
    for command in (
        ["sweep", "plan"],
        ["sweep", "render", "--out", str(tmp_path / "m")],
        ["sweep", "submit"],
    ):
        result = runner.invoke(app, [*command[:2], str(bad), *command[2:]])
        assert result.exit_code == 3, (command, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert str(bad) in lines[0] and "targets[0]" in lines[0] and "did you mean pawsx" in lines[0]
        assert "Traceback" not in result.output


def test_usage_error_exits_2():
    assert runner.invoke(app, ["sweep", "plan"]).exit_code == 2
    assert runner.invoke(app, ["sweep", "submit", str(TINY), "--backend", "slurm"]).exit_code == 2


def test_render_writes_one_valid_manifest_per_phase(tmp_path: Path):
    out = tmp_path / "manifests"
    result = runner.invoke(app, ["sweep", "render", str(TINY), "--out", str(out), "--store", "s3://b/runs"])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.yaml"))
    plan = json.loads(
        runner.invoke(app, ["sweep", "plan", str(TINY), "-o", "json", "--store", str(tmp_path)]).stdout
    )
    assert len(files) == plan["phases"]
    for path in files:
        (job,) = yaml.safe_load_all(path.read_text())
        assert job["kind"] == "Job" and job["metadata"]["name"].startswith("xst-")
        assert job["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--store", "s3://b/runs"]


def test_tasks_list_json():
    result = runner.invoke(app, ["tasks", "list", "-o", "json"])
    assert result.exit_code == 0
    tasks = {t["name"]: t for t in json.loads(result.stdout)}
    assert tasks["xnli"]["role"] == "target" and "sw" in tasks["xnli"]["languages"]
    assert tasks["mnli"]["metric"] == "accuracy"


def test_phase_run_unknown_address_is_a_clean_error(tmp_path: Path):
    result = runner.invoke(app, ["phase", "run", "0123456789ab", "--store", str(tmp_path)])
    assert result.exit_code == 1
    assert "no phase spec" in result.stderr and "Traceback" not in result.output


def test_logs_needs_a_phase(tmp_path: Path):
    result = runner.invoke(app, ["sweep", "logs", str(TINY), "--store", str(tmp_path)])
    assert result.exit_code == 2 and "--phase" in result.stderr


def test_tiny_model_and_fixtures_load_offline(tmp_path: Path):
    from transformers import AutoModel, AutoTokenizer

    assert (
        runner.invoke(
            app, ["model", "tiny", "--out", str(tmp_path / "model"), "--hidden-size", "32"]
        ).exit_code
        == 0
    )
    model = AutoModel.from_pretrained(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert model.config.hidden_size == 32
    ids = tokenizer("der hund и кот")["input_ids"]
    assert tokenizer.unk_token_id not in ids, "the tokenizer covers every fixture script"
    assert runner.invoke(app, ["data", "fixtures", "--out", str(tmp_path / "data")]).exit_code == 0
    xnli = tmp_path / "data" / "google" / "xtreme" / "XNLI" / "test.jsonl"
    row = json.loads(xnli.read_text().splitlines()[0])
    assert set(row) == {"language", "sentence1", "sentence2", "gold_label"}
    assert row["gold_label"] in ("entailment", "neutral", "contradiction")
