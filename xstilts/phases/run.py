"""`xstilts phase run ADDRESS --store URI`: read the phase spec from the store, run it in a staging
directory, write lineage and metrics, and commit the outputs (the `_COMPLETE` marker last)."""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from xstilts import __version__
from xstilts.errors import PhaseFailedError
from xstilts.phases.context import LOG_NAME, PhaseContext, read_phase, staging_root
from xstilts.store import Store, open_store
from xstilts.store.complete import commit_dir, is_complete
from xstilts.train.progress import ProgressLog


def _git_revision() -> str | None:
    if os.environ.get("XSTILTS_GIT_SHA"):
        return os.environ["XSTILTS_GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def lineage(ctx: PhaseContext, started: float) -> dict[str, Any]:
    import torch
    import transformers

    inputs = {}
    for role, address in ctx.phase.inputs.items():
        upstream = read_phase(ctx.store, address)
        inputs[role] = {
            "address": address,
            "name": upstream.name,
            "uri": f"{ctx.store.describe()}/{upstream.prefix}",
        }
    return {
        "phase": ctx.phase.name,
        "kind": ctx.phase.kind,
        "address": ctx.phase.address,
        "inputs": inputs,
        "config": ctx.phase.config,
        "xstilts_version": __version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "image": os.environ.get("XSTILTS_IMAGE"),
        "git_revision": _git_revision(),
        "host": platform.node(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _dispatch(ctx: PhaseContext) -> dict[str, Any]:
    from xstilts.phases import analysis, encoder, evaluate, training

    runners = {
        "encoder": encoder.run,
        "mlm": training.run_mlm,
        "intermediate": training.run_intermediate,
        "target": training.run_target,
        "evaluate": evaluate.run,
        "analysis": analysis.run,
    }
    return runners[ctx.phase.kind](ctx)


def _hold_lock(address: str):
    """An exclusive lock held while the phase runs, so a restarted local controller adopts the process
    instead of starting the phase twice. Raises if another process runs this phase."""
    directory = Path(os.environ.get("XSTILTS_LOCK_DIR") or staging_root() / "locks")
    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / f"{address}.lock", "a")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise PhaseFailedError(f"phase {address} is already running in another process") from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _rank() -> int:
    """This process's global rank under `accelerate launch`/torchrun (0 when launched alone)."""
    return int(os.environ.get("RANK", "0"))


TRAINING_KINDS = ("mlm", "intermediate", "target")


def run_phase(address: str, store: Store | str) -> str:
    """Run one phase and commit it. Returns 'done' or 'skipped' (already complete).

    Under a multi-process launch every rank trains; rank 0 alone holds the lock, logs, writes the
    outputs and commits them."""
    store = open_store(store) if isinstance(store, str) else store
    if _rank() != 0:
        return _run_worker(address, store)
    lock = _hold_lock(address)
    try:
        return _run_locked(address, store)
    finally:
        lock.close()


def _run_worker(address: str, store: Store) -> str:
    phase = read_phase(store, address)
    if phase.kind not in TRAINING_KINDS or is_complete(store, phase.prefix):
        return "skipped"
    with open(os.devnull, "w") as quiet:
        staging = staging_root() / address
        ctx = PhaseContext(
            store=store, phase=phase, staging=staging, progress=ProgressLog(phase.name, stream=quiet)
        )
        scratch = staging_root() / f"{address}-rank-{_rank()}"
        ctx.out = scratch  # outputs of non-main ranks are discarded
        try:
            _dispatch(ctx)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return "done"


def _run_locked(address: str, store: Store) -> str:
    phase = read_phase(store, address)
    progress = ProgressLog(phase.name)
    if is_complete(store, phase.prefix):
        progress.event("skipped", reason="already complete")
        return "skipped"
    staging = staging_root() / address
    ctx = PhaseContext(store=store, phase=phase, staging=staging, progress=progress)
    missing = ctx.inputs_complete()
    if missing:
        raise PhaseFailedError(f"{phase.name}: upstream phases are not complete: {', '.join(missing)}")
    started = time.time()
    ctx.start_logs()
    try:
        progress.event("start", kind=phase.kind, address=address, store=store.describe())
        metrics = _dispatch(ctx)
        ctx.write_json("metrics.json", metrics)
        ctx.write_json("lineage.json", lineage(ctx, started))
        progress.event("finished", seconds=round(time.time() - started, 2))
    finally:
        ctx.stop_logs()
    (ctx.out / "logs").mkdir(exist_ok=True)
    shutil.copyfile(ctx.log_path, ctx.out / "logs" / LOG_NAME)
    commit_dir(store, ctx.out, phase.prefix)
    progress.event("committed", prefix=phase.prefix)
    shutil.rmtree(staging, ignore_errors=True)
    return "done"
