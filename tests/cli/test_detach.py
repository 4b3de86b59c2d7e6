"""`submit --detach` on the local backend: the controller runs on in the background, with its pid and
log next to the store; `status` sees its phases, `cancel` stops it and them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import run_xstilts
from tests.e2e.sweeps import micro, write

pytestmark = pytest.mark.xdist_group("detach")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_detach_runs_a_background_controller_that_cancel_stops(tmp_path: Path):
    sweep = micro("detached", targets=["pawsx"])
    sweep["training"]["max_steps"] = 100000
    sweep_file = write(tmp_path, sweep)
    store = tmp_path / "store"
    result = run_xstilts("sweep", "submit", str(sweep_file), "--store", str(store), "--detach", timeout=120)
    assert result.returncode == 0, result.stderr
    match = re.search(r"controller pid (\d+), log (\S+)\. Watch: (.*); stop: (.*)$", result.stderr.strip())
    assert match, result.stderr
    pid, log = int(match[1]), Path(match[2])
    assert (store / "_local" / "controller.pid").read_text().strip() == str(pid)
    assert _alive(pid) and log.is_file()

    again = run_xstilts("sweep", "submit", str(sweep_file), "--store", str(store), "--detach")
    assert again.returncode == 2 and f"already has a background controller (pid {pid})" in again.stderr

    end = time.monotonic() + 300
    while time.monotonic() < end:
        status = run_xstilts("sweep", "status", str(sweep_file), "--store", str(store))
        if "running" in status.stdout:
            break
        time.sleep(1)
    assert "running" in status.stdout, (status.stdout, log.read_text())

    cancel = run_xstilts(*match[4].split()[1:])
    assert cancel.returncode == 0, cancel.stderr
    assert f"Stopped the background controller (pid {pid})" in cancel.stderr
    end = time.monotonic() + 60
    while time.monotonic() < end and _alive(pid):
        time.sleep(0.2)
    assert not _alive(pid)
    listed = run_xstilts("sweep", "list", "--store", str(store), "-o", "json")
    (row,) = json.loads(listed.stdout)
    assert row["sweep"] == "detached" and row["total"] == 6 and row["file"] == str(sweep_file)
