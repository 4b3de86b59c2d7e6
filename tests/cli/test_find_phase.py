"""Phases found as users name them: `--phase` by address prefix, display name or kind/task, with the
candidates listed when ambiguous; `phase run` by a unique prefix, with the local backend's threads."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import run_xstilts
from tests.e2e.sweeps import micro, write
from xstilts.backends.local import thread_env
from xstilts.backends.reconcile import write_specs
from xstilts.cli.main import app
from xstilts.plan import expand
from xstilts.spec import load_sweep
from xstilts.store import open_store

runner = CliRunner()


def _sweep_with_a_log(tmp_path: Path):
    sweep_file = write(tmp_path, micro())
    store = tmp_path / "store"
    plan = expand(load_sweep(sweep_file))
    intermediate = next(p for p in plan.ordered() if p.kind == "intermediate")
    logs = store / "_local" / "logs"
    logs.mkdir(parents=True)
    (logs / f"{intermediate.address}.log").write_text('{"event": "start", "phase": "x"}\nhello from mnli\n')
    return sweep_file, store, plan, intermediate


def test_phase_option_accepts_prefix_name_and_kind_task(tmp_path: Path):
    sweep_file, store, _plan, intermediate = _sweep_with_a_log(tmp_path)
    kind_task = intermediate.name.split("@")[0]
    for text in (intermediate.address, intermediate.address[:5], intermediate.name, kind_task):
        result = runner.invoke(
            app, ["sweep", "logs", str(sweep_file), "--store", str(store), "--phase", text, "-o", "json"]
        )
        assert result.exit_code == 0, (text, result.output)
        assert "hello from mnli" in result.stdout


def test_ambiguous_phase_lists_the_candidates(tmp_path: Path):
    sweep_file, store, plan, _ = _sweep_with_a_log(tmp_path)
    targets = [p for p in plan.ordered() if p.kind == "target"]
    assert len(targets) > 1
    result = runner.invoke(
        app, ["sweep", "logs", str(sweep_file), "--store", str(store), "--phase", "target"]
    )
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert f"matches {len(targets)} phases" in line
    assert all(p.address in line and p.name in line for p in targets)
    unknown = runner.invoke(app, ["sweep", "logs", str(sweep_file), "--store", str(store), "--phase", "zzz"])
    assert unknown.exit_code == 2 and "names no phase" in unknown.stderr


def test_logs_without_phase_suggests_a_pasteable_command(tmp_path: Path):
    sweep_file, store, plan, _ = _sweep_with_a_log(tmp_path)
    result = runner.invoke(app, ["sweep", "logs", str(sweep_file), "--store", str(store)])
    assert result.exit_code == 2
    first = plan.ordered()[0]
    assert f"xstilts sweep logs {sweep_file} --store {store} --phase {first.address}" in result.stderr


def test_phase_run_by_prefix_with_the_backend_threads(tmp_path: Path):
    sweep_file = write(tmp_path, micro())
    store = tmp_path / "store"
    plan = expand(load_sweep(sweep_file))
    write_specs(plan, open_store(str(store)))
    encoder = next(p for p in plan.ordered() if p.kind == "encoder")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    ambiguous = run_xstilts("phase", "run", "", "--store", str(store))
    assert ambiguous.returncode == 3, ambiguous.stderr
    result = run_xstilts("phase", "run", encoder.address[:6], "--store", str(store), env=env)
    assert result.returncode == 0, result.stderr
    lineage = json.loads((store / encoder.prefix / "lineage.json").read_text())
    assert lineage["address"] == encoder.address
    assert lineage["torch_threads"] == int(thread_env()["OMP_NUM_THREADS"])
    missing = run_xstilts("phase", "run", "fffff", "--store", str(store))
    assert missing.returncode == 2 and "no phase spec" in missing.stderr and "Traceback" not in missing.stderr
