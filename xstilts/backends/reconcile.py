"""The reconcile loop, the same for both backends. Stateless: the truth is the store (`_COMPLETE`
markers) and the backend's Jobs, so a restarted controller continues and a resubmitted sweep
duplicates nothing. One pass: for each phase (in DAG order) that is neither done nor submitted and
whose inputs are done, create its Job; a failed phase blocks its dependants, with the reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from xstilts.backends.base import Backend, JobState
from xstilts.plan.expand import Plan
from xstilts.plan.phase import Phase, spec_key
from xstilts.render.job import render_phase
from xstilts.render.settings import ClusterSettings
from xstilts.store import Store
from xstilts.store.complete import is_complete

DONE, RUNNING, PENDING, FAILED, BLOCKED, WAITING = (
    "done",
    "running",
    "pending",
    "failed",
    "blocked",
    "waiting",
)
TERMINAL = {DONE, FAILED, BLOCKED}


@dataclass
class PhaseStatus:
    address: str
    name: str
    kind: str
    task: str
    # done | running | pending (submitted, not started) | waiting (inputs not done) | failed | blocked
    state: str
    reason: str | None = None
    started: float | None = None
    finished: float | None = None
    pod: str | None = None
    attempts: int = 0

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": round(self.duration, 1) if self.duration is not None else None}


def write_specs(plan: Plan, store: Store) -> int:
    """Write each phase's spec to the store (read by `xstilts phase run`); existing specs are kept."""
    written = 0
    for phase in plan.ordered():
        key = spec_key(phase.address)
        if not store.exists(key):
            store.put_text(key, phase.model_dump_json(indent=1))
            written += 1
    return written


class Reconciler:
    def __init__(
        self,
        plan: Plan,
        store: Store,
        backend: Backend,
        store_uri: str,
        settings: ClusterSettings,
        retry_failed: bool = False,
    ):
        self.plan = plan
        self.store = store
        self.backend = backend
        self.store_uri = store_uri
        self.settings = settings
        self.sweep = plan.sweep.name
        self._done: set[str] = set()  # completion never reverts: check the store once per phase
        self.retry_failed = retry_failed  # resubmit phases that failed before this controller started
        self._retried: set[str] = set()

    def done(self, phase: Phase) -> bool:
        if phase.address not in self._done and is_complete(self.store, phase.prefix):
            self._done.add(phase.address)
        return phase.address in self._done

    def status(self, submit: bool) -> list[PhaseStatus]:
        """One pass. With `submit`, create the Jobs whose inputs are done."""
        observed = self.backend.observe(self.sweep)
        states: dict[str, PhaseStatus] = {}
        for phase in self.plan.ordered():
            status = PhaseStatus(phase.address, phase.name, phase.kind, phase.label, WAITING)
            obs = observed.get(phase.address)
            if obs is not None:
                status.started, status.finished, status.pod, status.attempts = (
                    obs.started,
                    obs.finished,
                    obs.pod,
                    obs.attempts,
                )
            inputs = [states[a] for a in phase.inputs.values()]
            if self.done(phase):
                status.state = DONE
            elif any(s.state in (FAILED, BLOCKED) for s in inputs):
                bad = next(s for s in inputs if s.state in (FAILED, BLOCKED))
                status.state, status.reason = BLOCKED, f"upstream {bad.name} {bad.state}"
            elif (
                submit
                and self.retry_failed
                and obs is not None
                and obs.state is JobState.FAILED
                and phase.address not in self._retried
                and all(s.state == DONE for s in inputs)
            ):
                self._retried.add(phase.address)
                self.backend.forget(phase.address)
                self.backend.submit(phase, render_phase(phase, self.sweep, self.store_uri, self.settings))
                status.state, status.reason = PENDING, "retrying an earlier failure"
            elif obs is not None and obs.state is JobState.FAILED:
                status.state, status.reason = (
                    FAILED,
                    f"{obs.reason}: {obs.message}" if obs.message else obs.reason,
                )
            elif obs is not None and obs.state is JobState.SUCCEEDED:
                # The Job succeeded but left no marker: something is wrong with the store.
                status.state, status.reason = FAILED, "job succeeded but the phase has no _COMPLETE marker"
            elif obs is not None:
                status.state = RUNNING if obs.state is JobState.RUNNING else PENDING
                status.reason = obs.message
            elif all(s.state == DONE for s in inputs):
                if submit:
                    objects = render_phase(phase, self.sweep, self.store_uri, self.settings)
                    created = self.backend.submit(phase, objects)
                    status.state = PENDING
                    status.reason = None if created else "already submitted"
                else:
                    status.state = PENDING
                    status.reason = "ready to submit"
            states[phase.address] = status
        return list(states.values())

    def run(
        self,
        *,
        detach: bool = False,
        poll_interval: float = 2.0,
        on_pass: Callable[[list[PhaseStatus]], None] | None = None,
    ) -> list[PhaseStatus]:
        """Reconcile until every phase is done, failed or blocked (one pass with `detach`)."""
        write_specs(self.plan, self.store)
        while True:
            statuses = self.status(submit=True)
            if on_pass:
                on_pass(statuses)
            if detach or all(s.state in TERMINAL for s in statuses):
                return statuses
            self.backend.poll(poll_interval)
