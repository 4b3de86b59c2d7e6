"""A full or read-only local store ends in one line naming the path and the fix (exit 1), in a phase
and in the controller, and the same command run again after the fix finishes. The store is a small
tmpfs mounted in a private mount namespace (`unshare --mount --map-root-user`): real ENOSPC and EROFS,
no root needed, nothing left mounted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.e2e.sweeps import micro, planned, write
from xstilts.backends.reconcile import write_specs
from xstilts.store import LocalStore

UNSHARE = shutil.which("unshare") or "unshare"


def in_mount_namespace(script: str, out: Path, env: dict[str, str] | None = None) -> None:
    """Run a bash script as root of a new user and mount namespace; its steps record their results
    under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [UNSHARE, "--mount", "--map-root-user", "bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        env={**os.environ, **(env or {}), "PY": sys.executable, "OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"the namespace script failed: {done.stdout[-2000:]} {done.stderr[-2000:]}"


def step(out: Path, name: str) -> tuple[int, str, str]:
    return (
        int((out / f"{name}.rc").read_text()),
        (out / f"{name}.out").read_text(),
        (out / f"{name}.err").read_text(),
    )


RUN = (
    '{ "$PY" -m xstilts "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" && echo 0 || echo $?; } > "$OUT/$name.rc"'
)
PRELUDE = f"run() {{ name=$1; shift; {RUN}; }}\n"


def assert_one_disk_line(err: str, store: Path, problem: str) -> str:
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: ") and problem in last and str(store) in last and "(fix: " in last, last
    return last


def test_full_and_read_only_store_in_a_phase(tmp_path: Path) -> None:
    sweep_file = write(tmp_path, micro())
    plan, encoder, _ = planned(sweep_file)
    seed, store, out = tmp_path / "seed", tmp_path / "store", tmp_path / "out"
    write_specs(plan, LocalStore(seed))
    store.mkdir()
    staging = tmp_path / "staging"
    script = (
        PRELUDE
        + f"""
mount -t tmpfs -o size=96k xstilts-test "{store}"
cp -r "{seed}/." "{store}/"
run full phase run {encoder.address} --store "{store}"
mount -o remount,ro "{store}"
run readonly phase run {encoder.address} --store "{store}"
mount -o remount,rw,size=64m "{store}"
run fixed phase run {encoder.address} --store "{store}"
test -f "{store}/{encoder.prefix}/_COMPLETE" && touch "$OUT/complete"
"""
    )
    in_mount_namespace(script, out, {"XSTILTS_STAGING": str(staging)})
    code, _, err = step(out, "full")
    assert code == 1
    assert_one_disk_line(err, store, "no space left on the device")
    code, _, err = step(out, "readonly")
    assert code == 1
    assert_one_disk_line(err, store, "read-only")
    code, _, err = step(out, "fixed")
    assert code == 0, err[-3000:]
    assert (out / "complete").exists()


def test_full_and_read_only_store_in_the_controller(tmp_path: Path) -> None:
    sweep_file = write(tmp_path, micro())
    store, out = tmp_path / "store", tmp_path / "out"
    store.mkdir()
    script = (
        PRELUDE
        + f"""
mount -t tmpfs -o size=16k xstilts-test "{store}"
run full sweep submit "{sweep_file}" --store "{store}" --no-report
mount -o remount,ro "{store}"
run readonly sweep submit "{sweep_file}" --store "{store}" --no-report
mount -o remount,rw,size=64m "{store}"
run fixed sweep submit "{sweep_file}" --store "{store}" --no-report
run status sweep status "{sweep_file}" --store "{store}" -o json
"""
    )
    in_mount_namespace(script, out, {"XSTILTS_STAGING": str(tmp_path / "staging")})
    code, _, err = step(out, "full")
    assert code == 1
    assert_one_disk_line(err, store, "no space left on the device")
    code, _, err = step(out, "readonly")
    assert code == 1
    assert_one_disk_line(err, store, "read-only")
    code, _, err = step(out, "fixed")
    assert code == 0, err[-3000:]
    phases = json.loads(step(out, "status")[1])["phases"]
    assert phases and {p["state"] for p in phases} == {"done"}
