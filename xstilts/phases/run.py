"""`xstilts phase run ADDRESS --store URI`: read the phase spec from the store, run it in a staging
directory, write lineage and metrics, and commit the outputs (the `_COMPLETE` marker last)."""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xstilts import __version__
from xstilts.errors import EXIT_PREEMPTED, PhaseFailedError
from xstilts.phases.context import LOG_NAME, PhaseContext, read_phase, staging_root
from xstilts.plan.phase import Phase, check_address
from xstilts.spec.kinds import KINDS
from xstilts.store import Store, open_store
from xstilts.store.complete import commit_dir, is_complete
from xstilts.store.lease import Lease, LeaseRecord
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
        "config": ctx.phase.config.dump(),
        "xstilts_version": __version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "image": os.environ.get("XSTILTS_IMAGE"),
        "git_revision": _git_revision(),
        "host": platform.node(),
        "torch_threads": torch.get_num_threads(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _dispatch(ctx: PhaseContext) -> dict[str, Any]:
    return KINDS[ctx.phase.kind].resolve_runner()(ctx)


def lock_root() -> Path:
    return Path(os.environ.get("XSTILTS_LOCK_DIR") or staging_root() / "locks").resolve()


def _hold_lock(address: str, progress: ProgressLog):
    """An exclusive lock held while the phase runs, so a restarted local controller adopts the process
    instead of starting the phase twice. If another process on this machine runs the phase, wait for it
    to end (the caller then finds the phase complete, or runs it if that process died)."""
    root = lock_root()
    path = (root / f"{check_address(address)}.lock").resolve()
    if path.parent != root:  # unreachable for a checked address; the lock never names a file elsewhere
        raise PhaseFailedError(f"lock path {path} is outside the lock directory {root}")
    root.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        progress.event("waiting", reason=f"running in another process on this machine (pid {holder})")
        fcntl.flock(handle, fcntl.LOCK_EX)  # until that process ends, whichever way
    handle.seek(0)
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


_committed = threading.Event()  # set once this process committed its phase: SIGTERM no longer stops it


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM ends the phase with the retryable exit code through the normal unwinding (the lease is
    given up, logs are copied), outside the training loop too, which saves a checkpoint first itself.
    Once the phase is committed, SIGTERM changes nothing: the process ends as a success."""
    _committed.clear()

    def stop(_signum: int, _frame: Any) -> None:
        if not _committed.is_set():
            raise SystemExit(EXIT_PREEMPTED)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _rank() -> int:
    """This process's global rank under `accelerate launch`/torchrun (0 when launched alone)."""
    return int(os.environ.get("RANK", "0"))


def run_phase(address: str, store: Store | str) -> str:
    """Run one phase and commit it. Returns 'done' or 'skipped' (already complete, or completed by
    another runner while this one waited for the phase's lease).

    The address is checked before anything else (no path or key is built from unchecked text). Under a
    multi-process launch every rank trains; rank 0 alone holds the lock and the lease, logs, writes the
    outputs and commits them."""
    check_address(address)
    store = open_store(store) if isinstance(store, str) else store
    if _rank() != 0:
        return _run_worker(address, store)
    phase = read_phase(store, address)
    progress = ProgressLog(phase.name)
    with _sigterm_exits():
        lock = _hold_lock(address, progress)
        try:
            return _run_leased(phase, store, progress)
        finally:
            lock.close()


def _run_leased(phase: Phase, store: Store, progress: ProgressLog) -> str:
    """Take the phase's lease in the store (waiting while another runner, anywhere, holds it), run the
    phase, commit it, give the lease up."""
    if is_complete(store, phase.prefix):
        progress.event("skipped", reason="already complete")
        return "skipped"
    lease = Lease(store, phase.address, owner=phase.name)

    def waiting(holder: LeaseRecord) -> None:
        progress.event("waiting", reason=f"running elsewhere: {holder.describe()}")

    if not lease.acquire(give_up=lambda: is_complete(store, phase.prefix), on_wait=waiting):
        progress.event("skipped", reason="completed by another runner")
        return "skipped"
    try:
        if is_complete(store, phase.prefix):  # completed between the first check and the lease
            progress.event("skipped", reason="already complete")
            return "skipped"
        lease.keep_renewed()
        return _run_locked(phase, store, progress, lease)
    finally:
        lease.release()


def _run_worker(address: str, store: Store) -> str:
    phase = read_phase(store, address)
    if not KINDS[phase.kind].trains or is_complete(store, phase.prefix):
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


def _run_locked(phase: Phase, store: Store, progress: ProgressLog, lease: Lease) -> str:
    address = phase.address
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
    lease.verify()  # a runner whose lease was taken over commits nothing
    commit_dir(store, ctx.out, phase.prefix)
    _committed.set()
    progress.event("committed", prefix=phase.prefix)
    shutil.rmtree(staging, ignore_errors=True)
    return "done"
