"""The reconcile loop through the local backend, for real: resubmission, a controller killed and
restarted mid-sweep, and a failed phase blocking its dependants."""

from __future__ import annotations

import json
import os
import re
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
    # The final summary (`N/N phases done · N done · Ns`) is printed once, not by the display as well.
    summary = [line for line in (first.stdout + first.stderr).splitlines() if " phases done · " in line]
    assert len(summary) == 1 and re.fullmatch(r"(\d+)/\1 phases done · \1 done · \d+s", summary[0]), summary
    second = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert second.returncode == 0, second.stderr
    assert "already complete" in second.stderr and "nothing to run" in second.stderr
    status = run_xstilts("sweep", "status", str(sweep), "--store", str(store), "-o", "json")
    phases = json.loads(status.stdout)["phases"]
    assert phases and {p["state"] for p in phases} == {"done"}
    # `report` without --out writes where submit does: the store's reports/<sweep>/.
    report = run_xstilts("report", str(sweep), "--store", str(store), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert (store / "reports" / "micro" / "report.md").is_file()
    listed = json.loads(run_xstilts("sweep", "list", "--store", str(store), "-o", "json").stdout)
    assert [(r["sweep"], r["done"], r["total"]) for r in listed] == [("micro", len(phases), len(phases))]


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
    sweep = write(tmp_path, micro(encoders=[{"name": "missing", "model": "xstilts-test/no-such-model"}]))
    store = tmp_path / "store"
    result = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert result.returncode == 1
    assert "1 phase(s) failed" in result.stderr and "blocked" in result.stderr
    assert "Traceback" not in result.stderr
    status = run_xstilts("sweep", "status", str(sweep), "--store", str(store), "-o", "json")
    phases = {p["name"]: p for p in json.loads(status.stdout)["phases"]}
    encoder = next(p for name, p in phases.items() if name.startswith("encoder/"))
    assert encoder["state"] == "failed" and encoder["reason"].startswith("configuration error")
    others = [p for name, p in phases.items() if not name.startswith("encoder/")]
    assert others and all(p["state"] == "blocked" for p in others)
    assert all(p["reason"].startswith("upstream ") for p in others)


def test_a_second_controller_on_the_same_machine_adopts_instead_of_failing(tmp_path: Path):
    """Two controllers started together on one store: neither burns its retries on "already running in
    another process"; each phase runs once and both controllers end with every phase done."""
    sweep = write(tmp_path, micro(training={**micro()["training"], "max_steps": 40, "checkpoint_every": 20}))
    store = tmp_path / "store"
    command = [sys.executable, "-m", "xstilts", "sweep", "submit", str(sweep), "--store", str(store)]
    controllers = [
        subprocess.Popen(
            [*command, "--no-report"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [c.communicate(timeout=600) for c in controllers]
    for controller, (_, err) in zip(controllers, outputs, strict=True):
        assert controller.returncode == 0, err[-3000:]
    for phase in expand(load_sweep(sweep)).ordered():
        log = (store / "_local" / "logs" / f"{phase.address}.log").read_text()
        assert log.count('"event": "start"') == 1, f"{phase.name} ran {log.count('start')} times"
        assert (store / phase.prefix / "_COMPLETE").is_file()


def test_a_phase_started_twice_on_one_machine_waits_for_the_first(tmp_path: Path):
    """`phase run` of a phase that another process on this machine runs (holds its lock) waits for that
    process to end instead of failing with "already running in another process", then runs it."""
    import fcntl

    from tests.e2e.sweeps import planned
    from xstilts.backends.reconcile import write_specs
    from xstilts.store import LocalStore

    plan, encoder, _ = planned(write(tmp_path, micro()))
    store = tmp_path / "store"
    write_specs(plan, LocalStore(store))
    env = {**os.environ, "XSTILTS_LOCK_DIR": str(tmp_path / "locks"), "XSTILTS_STAGING": str(tmp_path / "s")}
    lock = tmp_path / "locks" / f"{encoder.address}.lock"
    lock.parent.mkdir()
    with open(lock, "a+") as held:  # the "other process": this test
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write(str(os.getpid()))
        held.flush()
        second = subprocess.Popen(
            [sys.executable, "-m", "xstilts", "phase", "run", encoder.address, "--store", str(store)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert second.stdout is not None
        first_line = second.stdout.readline()  # blocks until the phase says what it does
        if '"event": "waiting"' not in first_line or f"pid {os.getpid()}" not in first_line:
            second.kill()
            raise AssertionError(
                f"expected a waiting event, got: {first_line} {second.communicate()[1][-2000:]}"
            )
    out, err = second.communicate(timeout=300)  # the lock is free: it runs the phase now
    assert second.returncode == 0, err[-2000:]
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert events[0] == "start" and events[-1] == "committed"
    assert (store / encoder.prefix / "_COMPLETE").is_file()
