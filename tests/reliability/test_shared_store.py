"""Controllers that share a sweep: two controllers on two hosts (two caches, so two lock directories)
against one S3 bucket run each phase once, through the phase leases in the store, on a server that
honours conditional writes (moto) and on one that ignores them (rclone: the settle-and-read-back
fallback). A controller stopped with SIGTERM submits nothing more, exits 143 and leaves its running
phase to finish; the next controller adopts it."""

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
from xstilts.backends.local import is_locked
from xstilts.plan import expand
from xstilts.spec import load_sweep
from xstilts.testing.s3_server import env_for, s3_server


def xstilts(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "xstilts", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


# rclone, the suite's S3 server, ignores conditional writes: this exercises the lease's fallback end to
# end; the conditional path (moto) is covered by tests/store/test_lease.py.
@pytest.mark.parametrize("server", ["rclone"])
def test_two_controllers_two_caches_one_bucket_run_each_phase_once(tmp_path: Path, server: str) -> None:
    sweep = write(tmp_path, micro(training={**micro()["training"], "max_steps": 20, "checkpoint_every": 10}))
    plan = expand(load_sweep(sweep))
    with s3_server(tmp_path / "s3", server=server) as info:
        bucket = info.create_bucket()
        uri = f"s3://{bucket}/runs"
        hosts = [tmp_path / "host-a", tmp_path / "host-b"]
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        envs = [
            {
                **base,
                **env_for(info),
                "XSTILTS_CACHE": str(host / "cache"),
                "XSTILTS_STAGING": str(host / "staging"),
                "XSTILTS_LEASE_SETTLE_S": "0.5",
            }
            for host in hosts
        ]
        controllers = [
            xstilts("sweep", "submit", str(sweep), "--store", uri, "--no-report", env=e) for e in envs
        ]
        outputs = [c.communicate(timeout=600) for c in controllers]
        for controller, (_, err) in zip(controllers, outputs, strict=True):
            assert controller.returncode == 0, err[-3000:]
        client = info.client()
        for phase in plan.ordered():
            starts = 0
            for host in hosts:
                log = host / "cache" / "local" / "micro" / "logs" / f"{phase.address}.log"
                starts += log.read_text().count('"event": "start"') if log.is_file() else 0
            assert starts == 1, f"{phase.name} ran {starts} times"
            client.head_object(Bucket=bucket, Key=f"runs/{phase.prefix}/_COMPLETE")
        leases = client.list_objects_v2(Bucket=bucket, Prefix="runs/leases/").get("KeyCount", 0)
        assert leases == 0, "every lease was given up"


def test_sigterm_stops_the_controller_and_leaves_the_running_phase(tmp_path: Path) -> None:
    sweep = write(tmp_path, micro(training={**micro()["training"], "max_steps": 120, "checkpoint_every": 60}))
    store = tmp_path / "store"
    plan = expand(load_sweep(sweep))
    intermediate = next(p for p in plan.ordered() if p.kind == "intermediate")
    lock = store / "_local" / "locks" / f"{intermediate.address}.lock"
    controller = xstilts(
        "sweep", "submit", str(sweep), "--store", str(store), "--no-report", env=dict(os.environ)
    )
    try:
        deadline = time.monotonic() + 240
        while not is_locked(lock):
            assert controller.poll() is None, controller.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the intermediate phase never started"
            time.sleep(0.1)
        controller.send_signal(signal.SIGTERM)
        _, err = controller.communicate(timeout=60)
    finally:
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
    assert controller.returncode == 143, err[-3000:]
    assert "Stopped on SIGTERM" in err and "Traceback" not in err
    assert is_locked(lock), "the running phase was left running"
    restarted = run_xstilts("sweep", "submit", str(sweep), "--store", str(store), "--no-report")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    log = (store / "_local" / "logs" / f"{intermediate.address}.log").read_text()
    assert log.count('"event": "start"') == 1, "the phase was adopted, not started again"
    status = run_xstilts("sweep", "status", str(sweep), "--store", str(store), "-o", "json")
    assert {p["state"] for p in json.loads(status.stdout)["phases"]} == {"done"}
