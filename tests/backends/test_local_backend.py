"""The local backend runs a rendered Job's container command and honours its Job semantics."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from xstilts.backends.base import JobState
from xstilts.backends.local import LocalBackend
from xstilts.plan.phase import Phase
from xstilts.render.job import STAGING, render_phase
from xstilts.render.settings import ClusterSettings


def job_running(script: str, *, backoff: int = 2, deadline: int = 600):
    phase = Phase(kind="target", address="abc123abc123", label="pawsx", config={})
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
    assert observed.reason == "BackoffLimitExceeded"
    assert observed.attempts == 3  # the first try + backoffLimit retries
    assert (tmp_path / "logs" / f"{phase.address}.log").read_text().count("attempt\n") == 3


def test_configuration_error_fails_at_once(tmp_path: Path):
    backend = LocalBackend(tmp_path, max_parallel=1)
    phase, objects = job_running("import sys; sys.exit(3)", backoff=5)
    observed = run_to_end(backend, phase, objects)
    assert (observed.state, observed.reason, observed.attempts) == (JobState.FAILED, "PodFailurePolicy", 1)


def test_active_deadline_kills_the_process(tmp_path: Path):
    backend = LocalBackend(tmp_path, max_parallel=1)
    phase, objects = job_running("import time; time.sleep(60)", deadline=1)
    started = time.monotonic()
    observed = run_to_end(backend, phase, objects)
    assert observed.reason == "DeadlineExceeded"
    assert time.monotonic() - started < 30


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
    phase = Phase(kind="target", address="feedfeedfeed", label="pawsx", config={})
    objects = render_phase(phase, "t", str(tmp_path / "empty-store"), ClusterSettings(backoffLimit=0))
    try:
        observed = run_to_end(backend, phase, objects, timeout=180)
        assert backend._forks is not None and backend._forks.alive(), "the fork server ran the phase"
    finally:
        backend.close()
    assert (observed.state, observed.reason, observed.attempts) == (
        JobState.FAILED,
        "BackoffLimitExceeded",
        1,
    )
    log = (tmp_path / "logs" / f"{phase.address}.log").read_text()
    assert "no phase spec specs/feedfeedfeed.json" in log and "Traceback" not in log
