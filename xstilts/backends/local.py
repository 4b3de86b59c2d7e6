"""The local backend: runs each rendered Job's container command, args and env as a subprocess.

What a cluster would provide is emulated from the Job itself: volume mounts become local directories
(the caches are shared between phases, scratch volumes are per Job), `backoffLimit` bounds retries,
`activeDeadlineSeconds` kills the process, and the `podFailurePolicy` exit code for configuration errors
fails the Job at once, and the reserved exit code of a preempted phase (143, SIGTERM after a
checkpoint) retries it without counting against `backoffLimit`, as a cluster's pod disruption does.
Credentials come from the environment (what `envFrom: secretRef` gives a pod).

A phase process holds a lock file while it runs, so a restarted controller, or a second controller on
the same machine, adopts it instead of starting it twice. Closing the backend leaves running phases
running (they carry on in their own sessions and are adopted by the next controller); only `cancel`
stops them.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xstilts.backends import forkserver
from xstilts.backends.base import Backend, JobState, Observed
from xstilts.backends.errorline import last_error_line
from xstilts.backends.job_process import HostPaths, job_process
from xstilts.errors import EXIT_PREEMPTED
from xstilts.plan.phase import Phase
from xstilts.render.dump import to_dict

MAX_PREEMPTIONS = 20  # retries after exit 143 that do not count against backoffLimit

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def default_parallel() -> int:
    """Phases the local backend runs at once: XSTILTS_LOCAL_PARALLEL, else min(2, cores)."""
    return int(os.environ.get("XSTILTS_LOCAL_PARALLEL", min(2, os.cpu_count() or 1)))


def thread_env(parallel: int | None = None) -> dict[str, str]:
    """The math libraries' thread counts for one phase: the cores shared by the phases that run at once
    (without them each phase starts a thread per core and, side by side, they oversubscribe the CPU).
    The same for a phase the backend starts and one run by hand (`xstilts phase run`)."""
    threads = str(max(1, (os.cpu_count() or 1) // (parallel or default_parallel())))
    return dict.fromkeys(THREAD_VARIABLES, threads)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _signal_group(pid: int, signum: int) -> None:
    """Signal a phase's process group; one that is already gone is not an error."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def lock_path(work_dir: Path, address: str) -> Path:
    return Path(work_dir) / "locks" / f"{address}.lock"


def is_locked(path: Path) -> bool:
    """Whether another process holds the lock (a running phase)."""
    if not path.exists():
        return False
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


@dataclass
class _Run:
    phase: Phase
    job: dict[str, Any]
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    attempts: int = 0
    preemptions: int = 0
    started: float = 0.0
    finished: float | None = None
    state: JobState = JobState.PENDING
    reason: str | None = None
    message: str | None = None
    log_handle: Any = field(default=None, repr=False)


class LocalBackend(Backend):
    name = "local"

    def __init__(self, work_dir: Path, max_parallel: int | None = None, quiet_env: bool = False):
        self.work_dir = Path(work_dir).resolve()
        self.max_parallel = max_parallel or default_parallel()
        self.runs: dict[str, _Run] = {}
        self._forks: forkserver.ForkServer | None = None

    # ---- Backend ---------------------------------------------------------------------------------
    def submit(self, phase: Phase, objects: list[Any]) -> bool:
        existing = self.runs.get(phase.address)
        if existing is not None and existing.state in (
            JobState.PENDING,
            JobState.RUNNING,
            JobState.SUCCEEDED,
        ):
            return False
        if existing is None and is_locked(lock_path(self.work_dir, phase.address)):
            return False  # another controller's process runs it: adopted (see `observe`)
        job = to_dict(objects[0])
        hosts = HostPaths.from_environment(self.work_dir, os.environ)
        process = job_process(job, hosts, os.environ, thread_env(self.max_parallel), sys.executable)
        for directory in process.directories:
            directory.mkdir(parents=True, exist_ok=True)
        command, env = process.argv, process.env
        log_path = self.work_dir / "logs" / f"{phase.address}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.runs[phase.address] = _Run(phase, job, command, env, log_path)
        self._start_pending()
        return True

    def _running(self) -> int:
        return sum(1 for r in self.runs.values() if r.state is JobState.RUNNING)

    def _start_pending(self) -> None:
        for run in self.runs.values():
            if run.state is JobState.PENDING and self._running() < self.max_parallel:
                self._launch(run)

    def _launch(self, run: _Run) -> None:
        run.attempts += 1
        if self._forkable(run.command):
            run.process = self._fork_server().spawn(  # type: ignore[assignment]
                ["xstilts", *run.command[3:]], run.env, run.log_path, os.getcwd()
            )
            run.started = run.started or time.time()
            run.state = JobState.RUNNING
            return
        run.log_handle = open(run.log_path, "ab")  # noqa: SIM115 - closed when the process ends
        run.process = subprocess.Popen(
            run.command,
            env=run.env,
            stdout=run.log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        run.started = run.started or time.time()
        run.state = JobState.RUNNING

    def _forkable(self, command: list[str]) -> bool:
        return forkserver.enabled() and command[:3] == [sys.executable, "-m", "xstilts"]

    def _fork_server(self) -> forkserver.ForkServer:
        if self._forks is None or not self._forks.alive():
            self._forks = forkserver.ForkServer()
        return self._forks

    def _update(self, run: _Run) -> None:
        if run.state is not JobState.RUNNING or run.process is None:
            return
        spec = run.job["spec"]
        deadline = spec.get("activeDeadlineSeconds")
        code = run.process.poll()
        if code is None:
            if deadline and time.time() - run.started > deadline:
                self._kill(run)
                self._finish(run, JobState.FAILED, "DeadlineExceeded", f"ran longer than {deadline}s")
            return
        if run.log_handle:
            run.log_handle.close()
        if code == 0:
            self._finish(run, JobState.SUCCEEDED)
            return
        fail_codes = set()
        for rule in spec.get("podFailurePolicy", {}).get("rules", []):
            if rule["action"] == "FailJob" and "onExitCodes" in rule:
                fail_codes |= set(rule["onExitCodes"]["values"])
        error = last_error_line(run.log_path)
        said = f": {error}" if error else ""
        if code in fail_codes:
            self._finish(run, JobState.FAILED, "configuration error, not retried", f"exit code {code}{said}")
        elif code == EXIT_PREEMPTED and run.preemptions < MAX_PREEMPTIONS:
            run.preemptions += 1  # stopped by SIGTERM after a checkpoint: a disruption, not a failure
            run.attempts -= 1
            run.state = JobState.PENDING
        elif run.attempts > spec.get("backoffLimit", 6):
            self._finish(
                run,
                JobState.FAILED,
                f"failed after {_count(run.attempts, 'attempt')}",
                f"exit code {code}{said}",
            )
        else:
            run.state = JobState.PENDING  # retried (from its last checkpoint) when a slot is free

    def _record_path(self, address: str) -> Path:
        return self.work_dir / "jobs" / f"{address}.json"

    def _save(self, run: _Run) -> None:
        """Persist the Job's outcome, as a cluster keeps finished Job objects for `sweep status`."""
        path = self._record_path(run.phase.address)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "state": run.state.value,
            "reason": run.reason,
            "message": run.message,
            "started": run.started,
            "finished": run.finished,
            "attempts": run.attempts,
        }
        path.write_text(json.dumps(record))

    def _records(self) -> dict[str, Observed]:
        out = {}
        directory = self.work_dir / "jobs"
        if directory.is_dir():
            for path in directory.glob("*.json"):
                try:
                    r = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError):
                    continue
                if r["state"] in (JobState.FAILED.value, JobState.SUCCEEDED.value):
                    out[path.stem] = Observed(
                        JobState(r["state"]),
                        r["reason"],
                        r["message"],
                        r["started"],
                        r["finished"],
                        attempts=r["attempts"],
                    )
        return out

    def forget(self, address: str) -> None:
        """Drop a finished Job so that the phase can be submitted again (retry after a failure)."""
        self.runs.pop(address, None)
        self._record_path(address).unlink(missing_ok=True)

    def _finish(
        self, run: _Run, state: JobState, reason: str | None = None, message: str | None = None
    ) -> None:
        run.state, run.reason, run.message, run.finished = state, reason, message, time.time()
        self._save(run)
        if message:
            with open(run.log_path, "a", encoding="utf-8") as handle:
                handle.write(f"xstilts local backend: {reason}: {message}\n")

    def _kill(self, run: _Run) -> None:
        if run.process and run.process.poll() is None:
            _signal_group(run.process.pid, signal.SIGTERM)
            try:
                run.process.wait(30)
            except subprocess.TimeoutExpired:
                _signal_group(run.process.pid, signal.SIGKILL)
                run.process.wait(10)
        if run.log_handle and not run.log_handle.closed:
            run.log_handle.close()

    # ---- Ctrl-C at the terminal --------------------------------------------------------------------
    def interrupt(self, keep: set[str] | None = None) -> list[str]:
        """SIGTERM this controller's running phases (not those in `keep`): each saves a checkpoint and
        exits 143. Nothing is recorded as failed: the next `submit` resumes them. Returns the addresses."""
        keep = keep or set()
        stopping = []
        for address, run in self.runs.items():
            if run.state is JobState.RUNNING and run.process and address not in keep:
                if run.process.poll() is None:
                    _signal_group(run.process.pid, signal.SIGTERM)
                stopping.append(address)
        return stopping

    def wait_stopped(self, addresses: list[str], timeout: float) -> dict[str, int | None]:
        """Wait (up to `timeout` seconds) for the interrupted phases to exit; their exit codes (None:
        still running). A KeyboardInterrupt while waiting reaches the caller, which calls `kill_now`."""
        end = time.monotonic() + timeout
        codes: dict[str, int | None] = {a: None for a in addresses}
        while time.monotonic() < end:
            for address in addresses:
                process = self.runs[address].process
                if codes[address] is None and process is not None:
                    codes[address] = process.poll()
            if all(code is not None for code in codes.values()):
                break
            time.sleep(0.1)
        for address in addresses:
            run = self.runs[address]
            if run.log_handle and not run.log_handle.closed and codes[address] is not None:
                run.log_handle.close()
        return codes

    def kill_now(self, addresses: list[str]) -> None:
        """SIGKILL the phases at once (a second Ctrl-C): they resume from their last saved checkpoint."""
        for address in addresses:
            process = self.runs[address].process
            if process is not None:
                _signal_group(process.pid, signal.SIGKILL)

    def observe(self, sweep: str) -> dict[str, Observed]:
        for run in self.runs.values():
            self._update(run)
        self._start_pending()
        observed = {
            address: Observed(
                run.state,
                run.reason,
                run.message,
                run.started,
                run.finished,
                pod=f"pid {run.process.pid}" if run.process else None,
                attempts=run.attempts,
            )
            for address, run in self.runs.items()
        }
        for address, record in self._records().items():
            observed.setdefault(address, record)
        locks = self.work_dir / "locks"
        if locks.is_dir():
            for path in locks.glob("*.lock"):
                address = path.stem
                if (address not in observed or address not in self.runs) and is_locked(path):
                    observed[address] = Observed(
                        JobState.RUNNING, message="adopted: started by an earlier controller"
                    )
        return observed

    def poll(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            running = [r for r in self.runs.values() if r.state is JobState.RUNNING and r.process]
            if any(r.process.poll() is not None for r in running):  # type: ignore[union-attr]
                return
            time.sleep(0.1)

    def logs(self, phase: Phase, follow: bool = False) -> Iterator[str] | None:
        """The phase's log; with `follow`, new lines as they are written, until its process ends (the
        phase's lock is free)."""
        path = self.work_dir / "logs" / f"{phase.address}.log"
        if not path.is_file():
            return None
        if not follow:
            return iter(path.read_text(encoding="utf-8", errors="replace").splitlines())
        return self._follow(path, lock_path(self.work_dir, phase.address))

    @staticmethod
    def _follow(path: Path, lock: Path, interval: float = 0.5) -> Iterator[str]:
        with open(path, encoding="utf-8", errors="replace") as handle:
            partial = ""
            while True:
                chunk = handle.read()
                if chunk:
                    partial += chunk
                    *complete, partial = partial.split("\n")
                    yield from complete
                    continue
                if not is_locked(lock):
                    chunk = handle.read()  # what it wrote before it ended
                    rest = (partial + chunk).split("\n")
                    yield from (line for line in rest if line)
                    return
                time.sleep(interval)

    def cancel(
        self, sweep: str, addresses: Collection[str] = (), keep: Callable[[], Collection[str]] = tuple
    ) -> int:
        """Stop this controller's processes and, for `addresses`, phases adopted from an earlier one;
        phases in `keep()` (committed ones) are never stopped: one may be exiting after its commit."""
        keep = set(keep())
        count = 0
        for address, run in self.runs.items():
            if run.state is JobState.RUNNING and address not in keep:
                self._kill(run)
                self._finish(run, JobState.FAILED, "Cancelled", "cancelled by the user")
                count += 1
        for address in set(addresses) - keep:
            path = lock_path(self.work_dir, address)
            if address in self.runs or not is_locked(path):
                continue
            try:
                pid = int(path.read_text().strip())
                if pid <= 1:
                    continue  # a damaged lock file must not make us signal our own or init's group
                os.killpg(pid, signal.SIGTERM)
                count += 1
            except (ValueError, ProcessLookupError, PermissionError):
                continue
        return count

    def running(self) -> int:
        """This controller's phase processes still running."""
        for run in self.runs.values():
            self._update(run)
        return self._running()

    def close(self) -> None:
        """Stop the fork server; phase processes carry on (their own sessions) and are adopted by the next
        controller through their locks."""
        for run in self.runs.values():
            if (
                run.log_handle
                and not run.log_handle.closed
                and run.process
                and run.process.poll() is not None
            ):
                run.log_handle.close()
        if self._forks is not None:
            self._forks.close()
