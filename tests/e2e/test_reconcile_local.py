"""The reconcile loop through the local backend, for real: resubmission, a controller killed and
restarted mid-sweep, and a failed phase blocking its dependants."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO, run_xstilts
from tests.e2e.sweeps import micro, write
from xstilts.backends.local import is_locked
from xstilts.plan import expand
from xstilts.spec import load_sweep


def test_resubmission_reruns_nothing(tmp_path: Path):
    sweep = write(tmp_path, micro())
    store = tmp_path / "store"
    first = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert first.returncode == 0, first.stderr
    second = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert second.returncode == 0, second.stderr
    assert "already complete" in second.stderr and "nothing to run" in second.stderr
    status = run_xstilts("sweep", "status", str(sweep), "--store", str(store), "-o", "json")
    phases = json.loads(status.stdout)["phases"]
    assert phases and {p["state"] for p in phases} == {"done"}


def test_controller_killed_and_restarted_mid_sweep(tmp_path: Path):
    sweep_dict = micro(training={**micro()["training"], "max_steps": 300, "checkpoint_every": 100})
    sweep = write(tmp_path, sweep_dict)
    store = tmp_path / "store"
    plan = expand(load_sweep(sweep))
    intermediate = next(p for p in plan.ordered() if p.kind == "intermediate")
    lock = store / "_local" / "locks" / f"{intermediate.address}.lock"
    controller = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xstilts",
            "sweep",
            "submit",
            str(sweep),
            "--store",
            str(store),
            "--no-report",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not is_locked(lock):
            assert time.monotonic() < deadline, "the intermediate phase never started"
            assert controller.poll() is None, "the controller ended early"
            time.sleep(0.2)
        os.killpg(controller.pid, signal.SIGKILL)  # the controller dies; the phase process lives on
        controller.wait()
    finally:
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
    assert is_locked(lock), "the phase outlived its controller"
    restarted = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert restarted.returncode == 0, restarted.stderr
    log = (store / "_local" / "logs" / f"{intermediate.address}.log").read_text()
    assert log.count('"event": "start"') == 1, "the restarted controller adopted the running phase"
    assert (store / intermediate.prefix / "_COMPLETE").is_file()


def test_failed_phase_blocks_its_dependants(tmp_path: Path):
    sweep = write(tmp_path, micro(encoders=[{"name": "missing", "model": str(tmp_path / "no-such-model")}]))
    store = tmp_path / "store"
    result = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert result.returncode == 1
    assert "1 phase(s) failed" in result.stderr and "blocked" in result.stderr
    assert "Traceback" not in result.stderr
    status = run_xstilts("sweep", "status", str(sweep), "--store", str(store), "-o", "json")
    phases = {p["name"]: p for p in json.loads(status.stdout)["phases"]}
    encoder = next(p for name, p in phases.items() if name.startswith("encoder/"))
    assert encoder["state"] == "failed" and encoder["reason"].startswith("BackoffLimitExceeded")
    others = [p for name, p in phases.items() if not name.startswith("encoder/")]
    assert others and all(p["state"] == "blocked" for p in others)
    assert all(p["reason"].startswith("upstream ") for p in others)
