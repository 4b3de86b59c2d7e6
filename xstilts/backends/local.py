"""The local backend: runs each rendered Job's container command, args and env as a subprocess.

What a cluster would provide is emulated from the Job itself: volume mounts become local directories
(the caches are shared between phases, scratch volumes are per Job), `backoffLimit` bounds retries,
`activeDeadlineSeconds` kills the process, and the `podFailurePolicy` exit code for configuration errors
fails the Job at once. Credentials come from the environment (what `envFrom: secretRef` gives a pod).
A phase process holds a lock file while it runs, so a restarted controller adopts it instead of
starting it twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xstilts.backends import forkserver
from xstilts.backends.base import Backend, JobState, Observed
from xstilts.plan.phase import Phase
from xstilts.render.dump import to_dict

SHARED_VOLUMES = ("cache", "hf-cache")


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
        cores = os.cpu_count() or 1
        self.max_parallel = max_parallel or int(os.environ.get("XSTILTS_LOCAL_PARALLEL", min(2, cores)))
        self.runs: dict[str, _Run] = {}
        self._forks: forkserver.ForkServer | None = None

    # ---- translating the Job ---------------------------------------------------------------------
    def _host_path(self, job_name: str, volume: str) -> Path:
        if volume == "cache":
            return Path(os.environ.get("XSTILTS_CACHE", Path.home() / ".cache" / "xstilts"))
        if volume == "hf-cache":
            return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
        if volume == "dshm":
            return Path("/dev/shm")
        return self.work_dir / "volumes" / job_name / volume

    def _translate(self, job: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
        pod = job["spec"]["template"]["spec"]
        container = pod["containers"][0]
        mounts = {}
        for mount in container.get("volumeMounts", []):
            host = self._host_path(job["metadata"]["name"], mount["name"])
            host.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = str(host)
        env = dict(os.environ)
        for var in container.get("env", []):
            if "value" not in var:
                continue
            value = var["value"]
            for container_path, host in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
                if value == container_path or value.startswith(container_path + "/"):
                    value = host + value[len(container_path) :]
                    break
            env[var["name"]] = value
        env.pop("XSTILTS_IMAGE", None)
        env["XSTILTS_LOCK_DIR"] = str(self.work_dir / "locks")
        threads = max(1, (os.cpu_count() or 1) // self.max_parallel)
        env.setdefault("OMP_NUM_THREADS", str(threads))
        command = list(container.get("command", [])) + list(container.get("args", []))
        if command and command[0] == "xstilts":
            command = [sys.executable, "-m", "xstilts"] + command[1:]
        elif command and command[0] == "accelerate":
            command = [sys.executable, "-m", "accelerate.commands.launch"] + command[2:]
        return command, env

    # ---- Backend ---------------------------------------------------------------------------------
    def submit(self, phase: Phase, objects: list[Any]) -> bool:
        existing = self.runs.get(phase.address)
        if existing is not None and existing.state in (
            JobState.PENDING,
            JobState.RUNNING,
            JobState.SUCCEEDED,
        ):
            return False
        job = to_dict(objects[0])
        command, env = self._translate(job)
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
        if code in fail_codes:
            self._finish(run, JobState.FAILED, "PodFailurePolicy", f"exit code {code}: configuration error")
        elif run.attempts > spec.get("backoffLimit", 6):
            self._finish(
                run,
                JobState.FAILED,
                "BackoffLimitExceeded",
                f"exit code {code} after {run.attempts} attempts",
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
            os.killpg(run.process.pid, signal.SIGTERM)
            try:
                run.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(run.process.pid, signal.SIGKILL)
                run.process.wait()
        if run.log_handle and not run.log_handle.closed:
            run.log_handle.close()

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
        path = self.work_dir / "logs" / f"{phase.address}.log"
        if not path.is_file():
            return None
        return iter(path.read_text(encoding="utf-8", errors="replace").splitlines())

    def cancel(self, sweep: str, addresses: set[str] | None = None) -> int:
        """Stop this controller's processes and, for `addresses`, phases adopted from an earlier one."""
        count = 0
        for run in self.runs.values():
            if run.state is JobState.RUNNING:
                self._kill(run)
                self._finish(run, JobState.FAILED, "Cancelled", "cancelled by the user")
                count += 1
        for address in addresses or set():
            path = lock_path(self.work_dir, address)
            if address in self.runs or not is_locked(path):
                continue
            try:
                os.killpg(int(path.read_text().strip()), signal.SIGTERM)
                count += 1
            except (ValueError, ProcessLookupError, PermissionError):
                continue
        return count

    def close(self) -> None:
        self.cancel("")
        if self._forks is not None:
            self._forks.close()
