"""A tiny sweep with successive halving, end to end through `xstilts sweep submit`: the controller is
killed (SIGKILL) once the first rung is decided and started again; the search continues without running
any phase twice, the losing settings stop at rung 1, and the promoted setting's full intermediate model
is bit-identical to the same phase trained straight through in another store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_xstilts
from tests.e2e.sweeps import micro, write
from xstilts.backends.reconcile import write_specs
from xstilts.plan import expand
from xstilts.report import build_report
from xstilts.report.search import search_summary
from xstilts.spec import load_sweep
from xstilts.store import LocalStore

pytestmark = pytest.mark.xdist_group("search-e2e")


def model_files(store: Path, prefix: str) -> dict[str, str]:
    data = json.loads((store / prefix / "_COMPLETE").read_text())
    return {f["path"]: f["sha256"] for f in data["files"] if f["path"].startswith("model/")}


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the controller ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_successive_halving_survives_a_killed_controller(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the same float sums in every process
    monkeypatch.setenv("XSTILTS_STAGING", str(tmp_path / "staging"))
    # 6 steps, checkpoints every 4: the rung stops at step 2, between two regular checkpoints.
    training = {**micro()["training"], "max_steps": 6, "checkpoint_every": 4, "max_eval_examples": 20}
    sweep = micro(
        "halving", intermediate=[{"task": "mnli"}, {"task": "qqp"}, {"task": "sst2"}], targets=["pawsx"],
        training=training, search={"budget_fraction": 1 / 3, "eta": 3},
    )  # fmt: skip
    sweep_file, store = write(tmp_path, sweep), tmp_path / "store"
    plan = expand(load_sweep(sweep_file))
    layout = plan.search
    rung1 = [a for arm in layout.arms for ads in arm.targets[0].values() for a in ads]

    def complete(address: str) -> bool:
        return (store / plan.phases[address].prefix / "_COMPLETE").is_file()

    submit = ["sweep", "submit", str(sweep_file), "--store", str(store), "--no-report"]
    controller = subprocess.Popen(
        [sys.executable, "-m", "xstilts", *submit],
        cwd=REPO, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: all(complete(a) for a in rung1), 900, "rung 1 completes", controller)
    finally:
        controller.send_signal(signal.SIGKILL)
        controller.wait(timeout=60)
    ran_before = {
        a: (store / p.prefix / "lineage.json").read_text() for a, p in plan.phases.items() if complete(a)
    }
    assert set(rung1) <= set(ran_before)

    again = run_xstilts("sweep", "submit", str(sweep_file), "--store", str(store), "--no-report")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    for address, lineage in ran_before.items():  # nothing that had run ran again
        assert (store / plan.phases[address].prefix / "lineage.json").read_text() == lineage

    summary = search_summary(plan, LocalStore(store))
    states = {s["setting"]: (s["state"], s["stopped_at_rung"]) for s in summary["settings"]}
    finished = [s for s, (state, _) in states.items() if state == "finished"]
    assert len(finished) == 1, states
    assert sorted(v for s, v in states.items() if s not in finished) == [("stopped", 1), ("stopped", 1)]
    (decision,) = summary["decisions"]
    scores, losses = decision["scores"]["pawsx"], decision["losses"]["pawsx"]
    # The best English dev score went on (ties, as at chance after 2 steps: the lower training loss).
    assert finished == [min(scores, key=lambda s: (-scores[s], losses[s]))], (scores, losses)
    winner = next(arm for arm in layout.arms if arm.setting == finished[0])
    for arm in layout.arms:
        if arm is not winner:
            assert not any(complete(a) for a in arm.intermediates[-1])  # never trained in full
    # encoder, the baseline's target and evaluate, 3 rung-1 intermediates and their targets, the
    # winner's full intermediate, target and evaluate; the grid: every setting's 3 phases
    assert summary["phases_executed"] == 1 + 2 + 3 + 3 + 1 + 1 + 1
    assert summary["grid_phases"] == 1 + 2 + 3 * 3
    assert summary["gpu_hours"] > 0 and summary["grid_gpu_hours"] > 0
    report = build_report(plan, LocalStore(store), tmp_path / "report").markdown.read_text()
    assert "## Successive halving on the intermediate axis" in report
    for setting, (state, rung) in states.items():
        assert f"| {setting} | {state} | {rung or '-'} |" in report

    # The promoted setting's full model equals the same phase trained straight through.
    full = plan.phases[winner.intermediates[-1][0]]
    assert json.loads((store / full.prefix / "metrics.json").read_text())["resumed_from"] == 2
    straight = tmp_path / "straight"
    grid = expand(load_sweep(sweep_file).model_copy(update={"search": None}))
    write_specs(grid, LocalStore(straight))
    encoder = next(p for p in grid.ordered() if p.kind == "encoder")
    for address in (encoder.address, full.address):
        result = run_xstilts("phase", "run", address, "--store", str(straight))
        assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((straight / full.prefix / "metrics.json").read_text())["resumed_from"] is None
    assert model_files(store, full.prefix) == model_files(straight, full.prefix)
