"""Validation gaps closed: each exits 3 with one line naming file, field and fix; patterns shown
literally and field paths without trailing dots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from xstilts.cli.main import app

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "tiny.yaml"
runner = CliRunner()


def _sweep(tmp_path: Path, **changes: Any) -> Path:
    data = yaml.safe_load(TINY.read_text())
    data.update(changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


CASES = [
    (
        {"resources": {"target": {"memory": "64GB"}}},
        "resources.target.memory",
        "'64GB' is not a Kubernetes",
        "Gi",
    ),
    (
        {"resources": {"target": {"cpu": "eight"}}},
        "resources.target.cpu",
        "'eight' is not a Kubernetes",
        "500m",
    ),
    (
        {"kubernetes": {"presets": {"intermediate": {"memory": "1.5 GB"}}}},
        "kubernetes.presets.intermediate.memory",
        "not a Kubernetes quantity",
        "64Gi",
    ),
    ({"seeds": [1, 2, 1]}, "seeds[2]", "seed 1 is listed twice", "list each seed once"),
    (
        {"languages": {"xnli": ["de"]}},
        "languages.xnli",
        "not one of the sweep's targets",
        "add xnli to targets",
    ),
    (
        {"resources": {"intermdiate": {"cpu": "2"}}},
        "resources.intermdiate'",
        "got 'intermdiate'",
        "use 'encoder'",
    ),
    ({"name": "Bad_Name"}, "name", "'^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'", "lowercase letters"),
]


@pytest.mark.parametrize(("changes", "field", "message", "fix"), CASES, ids=[c[1] for c in CASES])
def test_sweep_file_gaps_exit_3_naming_file_field_fix(tmp_path: Path, changes, field, message, fix):
    path = _sweep(tmp_path, **changes)
    result = runner.invoke(app, ["sweep", "plan", str(path), "--offline"])
    assert result.exit_code == 3, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert str(path) in line and f"field '{field}" in line and message in line, line
    assert "(fix: " in line and fix in line, line
    assert ".'" not in line.split("field ", 1)[1].split(":")[0], "no trailing dot in the field path"


def test_quantities_that_kubernetes_accepts_pass(tmp_path: Path):
    path = _sweep(tmp_path, resources={"target": {"cpu": "500m", "memory": "64Gi", "shmSize": "1G"}})
    assert runner.invoke(app, ["sweep", "plan", str(path), "--offline"]).exit_code == 0


def test_a_local_model_path_that_does_not_exist(tmp_path: Path):
    missing = tmp_path / "no-such-model"
    path = _sweep(tmp_path, encoders=[{"name": "mine", "model": str(missing)}])
    result = runner.invoke(app, ["sweep", "submit", str(path), "--store", str(tmp_path / "store")])
    assert result.exit_code == 3, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "field 'encoders[0].model'" in line and f"{missing} does not exist" in line and "fix:" in line
    assert not (tmp_path / "store").exists(), "refused before anything ran"
    plan = runner.invoke(app, ["sweep", "plan", str(path), "--offline"])
    assert plan.exit_code == 0, plan.output
    (warning,) = [line for line in plan.stderr.splitlines() if line.strip()]
    assert warning.startswith("warning: ") and "encoders[0].model" in warning


def test_tasks_list_unknown_role():
    result = runner.invoke(app, ["tasks", "list", "--role", "bogus"])
    assert result.exit_code == 3
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "--role" in line and "'bogus'" in line and "use intermediate or target" in line
    assert runner.invoke(app, ["tasks", "list", "--role", "target"]).exit_code == 0


def test_status_of_a_store_that_does_not_exist(tmp_path: Path):
    result = runner.invoke(app, ["sweep", "status", str(TINY), "--store", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert f"the store {tmp_path / 'nowhere'} does not exist" in line and "xstilts sweep submit" in line
