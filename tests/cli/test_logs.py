"""`sweep logs`: readable lines by default (progress bars and library chatter left out), the raw log
with `-o json`, and `--follow` on the local backend until the phase's process ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import REPO, run_xstilts
from tests.e2e.sweeps import micro, write
from xstilts.cli.main import app
from xstilts.plan import expand
from xstilts.spec import load_sweep

runner = CliRunner()

RAW = [
    json.dumps({"event": "start", "phase": "P", "time": 1796178635.2, "kind": "intermediate"}),
    " 40%|████      | 4/10 [00:01<00:02,  3.10it/s]",
    "/x/site-packages/torch/a.py:12: UserWarning: something deprecated",
    "  warnings.warn(",
    json.dumps(
        {
            "event": "step",
            "phase": "P",
            "time": 1796178640.0,
            "step": 40,
            "total": 200,
            "loss": 0.51234,
            "lr": 0.001,
            "tokens_per_s": 1234,
            "eta_s": 30.4,
        }
    ),
    json.dumps({"event": "resume", "phase": "P", "time": 1796178641.0, "step": 40, "total": 200}),
    "Error: field 'data.ccgbank': not a directory",
]


def _setup(tmp_path: Path, lines: list[str]):
    sweep_file = write(tmp_path, micro())
    store = tmp_path / "store"
    phase = next(p for p in expand(load_sweep(sweep_file)).ordered() if p.kind == "intermediate")
    log = store / "_local" / "logs" / f"{phase.address}.log"
    log.parent.mkdir(parents=True)
    log.write_text("\n".join(lines) + "\n")
    return sweep_file, store, phase, log


def test_logs_are_readable_by_default_and_raw_as_json(tmp_path: Path):
    sweep_file, store, phase, _ = _setup(tmp_path, RAW)
    args = ["sweep", "logs", str(sweep_file), "--store", str(store), "--phase", phase.address[:6]]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    assert "start: kind intermediate" in lines[0]
    assert lines[1].endswith("P  step 40/200, loss 0.5123, 1234 tok/s, ETA 30s")
    assert "resumed from step 40/200" in lines[2]
    assert "Error: field 'data.ccgbank': not a directory" in lines[3]
    assert "it/s" not in result.stdout and "Warning" not in result.stdout
    raw = runner.invoke(app, [*args, "-o", "json"])
    assert raw.exit_code == 0 and raw.stdout.splitlines() == RAW


HOLDER = """
import fcntl, sys, time
lock, log = sys.argv[1], sys.argv[2]
with open(lock, "a") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
    with open(log, "a") as out:
        out.write('{"event": "step", "phase": "P", "time": 1796178650.0, "step": 80, "total": 200}\\n')
        out.flush()
    sys.stdin.readline()
"""


def test_logs_follow_streams_until_the_phase_ends(tmp_path: Path):
    sweep_file, store, phase, log = _setup(tmp_path, RAW[:1])
    lock = store / "_local" / "locks" / f"{phase.address}.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        follow = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xstilts",
                "sweep",
                "logs",
                str(sweep_file),
                "--store",
                str(store),
                "--phase",
                phase.name,
                "--follow",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        first = follow.stdout.readline()
        assert "start" in first, first
        holder.stdin.write("\n")
        holder.stdin.flush()
        second = follow.stdout.readline()
        assert "step 80/200" in second, second
        holder.stdin.write("\n")
        holder.stdin.flush()
        out, err = follow.communicate(timeout=120)
        assert follow.returncode == 0, err
    finally:
        holder.kill()
        holder.wait()


def test_logs_of_a_phase_that_never_ran(tmp_path: Path):
    sweep_file = write(tmp_path, micro())
    result = run_xstilts(
        "sweep", "logs", str(sweep_file), "--store", str(tmp_path / "s"), "--phase", "encoder"
    )
    assert result.returncode == 1 and "no log for encoder/" in result.stderr
