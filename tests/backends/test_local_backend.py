"""The local backend runs a rendered Job's container command and honours its Job semantics."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.conftest import example_config
from xstilts.backends.base import JobState
from xstilts.backends.local import LocalBackend
from xstilts.plan.phase import Phase
from xstilts.render.job import STAGING, render_phase
from xstilts.spec.cluster import ClusterSettings


def job_running(script: str, *, backoff: int = 2, deadline: int = 600):
    phase = Phase(kind="target", address="abc123abc123", label="pawsx", config=example_config("target"))
    settings = ClusterSettings(backoffLimit=backoff, activeDeadlineSeconds=deadline)
    objects = render_phase(phase, "t", "/tmp/store", settings)
    container = objects[0].spec.template.spec.containers[0]
    container.command = [sys.executable]
    container.args = ["-c", script]
    return phase, objects


def run_to_end(backend: LocalBackend, phase: Phase, objects, timeout: float = 60):
    assert backend.submit(phase, objects) is True
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        observed = backend.observe("t")[phase.address]
        if observed.state in (JobState.SUCCEEDED, JobState.FAILED):
            return observed
        backend.poll(0.2)
    raise AssertionError("job did not finish")


def test_success_and_env_mapped_from_mounts(tmp_path: Path):
    backend = LocalBackend(tmp_path, max_parallel=1)
    script = "import os,sys; print(os.environ['XSTILTS_STAGING']); print(os.environ['XSTILTS_PHASE'])"
    phase, objects = job_running(script)
    observed = run_to_end(backend, phase, objects)
    assert observed.state is JobState.SUCCEEDED and observed.attempts == 1
    log = (tmp_path / "logs" / f"{phase.address}.log").read_text()
    staging = log.splitlines()[0]
    assert staging.startswith(str(tmp_path)) and STAGING not in staging, (
        "the staging emptyDir became a local dir"
    )
    assert Path(staging).is_dir()
    assert "target/pawsx@abc123ab" in log
    assert backend.submit(phase, objects) is False, "a succeeded Job is not submitted twice"


def test_failures_are_retried_up_to_backoff_limit(tmp_path: Path):
    backend = LocalBackend(tmp_path, max_parallel=1)
    phase, objects = job_running("import sys; print('attempt'); sys.exit(1)", backoff=2)
    observed = run_to_end(backend, phase, objects)
    assert observed.state is JobState.FAILED
    assert observed.reason == "failed after 3 attempts"
    assert observed.attempts == 3  # the first try + backoffLimit retries
    assert (tmp_path / "logs" / f"{phase.address}.log").read_text().count("attempt\n") == 3


def test_configuration_error_fails_at_once(tmp_path: Path):
    backend = LocalBackend(tmp_path, max_parallel=1)
    phase, objects = job_running("import sys; sys.exit(3)", backoff=5)
    observed = run_to_end(backend, phase, objects)
    assert (observed.state, observed.reason, observed.attempts) == (
        JobState.FAILED,
        "configuration error, not retried",
        1,
    )


@pytest.mark.timeout(45)  # the process sleeps 60 s: only the deadline's kill ends the test in time
def test_active_deadline_kills_the_process(tmp_path: Path):
    backend = LocalBackend(tmp_path, max_parallel=1)
    phase, objects = job_running("import time; time.sleep(60)", deadline=1)
    observed = run_to_end(backend, phase, objects)
    assert observed.reason == "DeadlineExceeded"


@pytest.mark.parametrize("parallel", [1, 2])
def test_parallelism_is_bounded(tmp_path: Path, parallel: int):
    backend = LocalBackend(tmp_path, max_parallel=parallel)
    phases = []
    for i in range(3):
        phase, objects = job_running("import time; time.sleep(1.5)")
        phase = phase.model_copy(update={"address": f"{i:012d}"})
        backend.submit(phase, objects)
        phases.append(phase)
    states = backend.observe("t")
    assert sum(o.state is JobState.RUNNING for o in states.values()) == parallel
    backend.close()


def test_xstilts_commands_run_in_forked_children_with_the_job_env(tmp_path: Path):
    """`xstilts ...` Jobs run in children forked from a server that imported the training stack once;
    exit codes, logs and the Job's env are the same as a plain subprocess's."""
    backend = LocalBackend(tmp_path, max_parallel=1)
    phase = Phase(kind="target", address="feedfeedfeed", label="pawsx", config=example_config("target"))
    objects = render_phase(phase, "t", str(tmp_path / "empty-store"), ClusterSettings(backoffLimit=0))
    try:
        observed = run_to_end(backend, phase, objects, timeout=180)
        assert backend._forks is not None and backend._forks.alive(), "the fork server ran the phase"
    finally:
        backend.close()
    assert (observed.state, observed.reason, observed.attempts) == (
        JobState.FAILED,
        "failed after 1 attempt",
        1,
    )
    log = (tmp_path / "logs" / f"{phase.address}.log").read_text()
    assert "no phase spec specs/feedfeedfeed.json" in log and "Traceback" not in log


def test_a_phase_locked_by_another_process_is_adopted_not_started(tmp_path: Path):
    """A second controller on this machine must not start a phase that another process runs."""
    import fcntl

    from xstilts.backends.local import lock_path

    backend = LocalBackend(tmp_path, max_parallel=1)
    phase, objects = job_running("print('should not run')")
    path = lock_path(tmp_path, phase.address)
    path.parent.mkdir(parents=True)
    with open(path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert backend.submit(phase, objects) is False
        observed = backend.observe("t")[phase.address]
        assert observed.state is JobState.RUNNING and "adopted" in (observed.message or "")
    assert not (tmp_path / "logs" / f"{phase.address}.log").exists(), "no process was started"


def test_a_preempted_phase_is_retried_without_counting_a_failure(tmp_path: Path):
    """Exit 143 (SIGTERM after a checkpoint) is a disruption, as on a cluster: retried even with
    backoffLimit 0; a real failure after it still fails the Job."""
    marker = tmp_path / "preempted-once"
    script = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "sys.exit(1 if p.exists() else (p.touch() or 143))"
    )
    backend = LocalBackend(tmp_path, max_parallel=1)
    phase, objects = job_running(script, backoff=0)
    objects[0].spec.template.spec.containers[0].args.append(str(marker))
    observed = run_to_end(backend, phase, objects)
    assert marker.exists()
    assert observed.state is JobState.FAILED and observed.reason == "failed after 1 attempt"
    assert observed.attempts == 1, "the preemption did not count"
    log = (tmp_path / "logs" / f"{phase.address}.log").read_text()
    assert log.count("failed after 1 attempt") == 1


def test_cancel_never_stops_a_committed_phase(tmp_path: Path):
    backend = LocalBackend(tmp_path, max_parallel=2)
    phase, objects = job_running("import time; time.sleep(60)")
    assert backend.submit(phase, objects) is True
    try:
        assert backend.cancel("t", keep=lambda: {phase.address}) == 0
        assert backend.observe("t")[phase.address].state is JobState.RUNNING
    finally:
        assert backend.cancel("t") == 1
