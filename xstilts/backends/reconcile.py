"""The reconcile loop, the same for both backends. Stateless: the truth is the store (`_COMPLETE`
markers, phase leases) and the backend's Jobs, so a restarted controller continues and a resubmitted
sweep duplicates nothing. One pass: for each phase (in DAG order) that is neither done nor submitted and
whose inputs are done, create its Job, unless another runner (another controller, a cluster, a stale
pod) holds the phase's lease: then it counts as running elsewhere. A failed phase blocks its
dependants, with the reason.

The store is read in bulk: one existence check for all undecided markers per pass (one listing on
S3), and leases only for phases about to be submitted. `stop()` (the controller's SIGTERM) ends the
loop after the current pass without submitting anything more; running phases are left to finish."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from xstilts.backends.base import Backend, JobState
from xstilts.plan.expand import Plan
from xstilts.plan.phase import Phase, spec_key
from xstilts.render.job import render_phase
from xstilts.spec.cluster import ClusterSettings
from xstilts.store import Store
from xstilts.store.complete import complete_prefixes
from xstilts.store.lease import lease_key, live_holder

DONE, RUNNING, PENDING, FAILED, BLOCKED, WAITING = (
    "done",
    "running",
    "pending",
    "failed",
    "blocked",
    "waiting",
)
STOPPED = "stopped"  # a successive-halving search (xstilts.plan.search) stopped the phase's setting
TERMINAL = {DONE, FAILED, BLOCKED, STOPPED}


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
    """Write each phase's spec to the store (read by `xstilts phase run`); existing specs are kept (a
    phase verifies its spec against its address when it reads it)."""
    phases = plan.ordered()
    present = store.existing(spec_key(p.address) for p in phases)
    written = 0
    for phase in phases:
        key = spec_key(phase.address)
        if key not in present:
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
        # Resubmit phases that failed before this controller started (where the backend leaves that to
        # this loop: `Backend.retries_in_loop`).
        self.retry_failed = retry_failed and backend.retries_in_loop
        self._retried: set[str] = set()
        self._submitted: set[str] = set()  # failures of these happened in this run: not retried here
        self._stop = threading.Event()

    def stop(self) -> None:
        """Submit nothing more; `run` returns after the pass in progress (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def refresh_done(self) -> None:
        """Check every phase not yet known to be done, together (completion never reverts)."""
        undecided = [p for p in self.plan.ordered() if p.address not in self._done]
        if undecided:
            complete = complete_prefixes(self.store, [p.prefix for p in undecided])
            self._done.update(p.address for p in undecided if p.prefix in complete)

    def done(self, phase: Phase) -> bool:
        return phase.address in self._done

    def _held_elsewhere(self, phases: list[Phase]) -> dict[str, str]:
        """Phases among `phases` whose lease another runner holds now: address -> who."""
        if not phases:
            return {}
        keys = {lease_key(p.address): p.address for p in phases}
        held = {}
        for key in self.store.existing(keys):
            holder = live_holder(self.store, keys[key])
            if holder is not None:
                held[keys[key]] = f"running elsewhere: {holder.describe()}"
        return held

    def status(self, submit: bool) -> list[PhaseStatus]:
        """One pass. With `submit`, create the Jobs whose inputs are done (not once stopping)."""
        submit = submit and not self.stopping
        observed = self.backend.observe(self.sweep)
        self.refresh_done()
        # Successive halving: phases held for a rung's decision or stopped, decided from the store.
        held = self.plan.search.gate(self.plan, self.store, self._done).held if self.plan.search else {}
        ready = [
            p
            for p in self.plan.ordered()
            if p.address not in self._done
            and p.address not in held
            and p.address not in observed
            and all(a in self._done for a in p.inputs.values())
        ]
        elsewhere = self._held_elsewhere(ready)
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
            elif phase.address in held and obs is None:
                status.state, status.reason = held[phase.address]
            elif any(s.state in (FAILED, BLOCKED) for s in inputs):
                bad = next(s for s in inputs if s.state in (FAILED, BLOCKED))
                status.state, status.reason = BLOCKED, f"upstream {bad.name} {bad.state}"
            elif (
                submit
                and self.retry_failed
                and obs is not None
                and obs.state is JobState.FAILED
                and phase.address not in self._retried
                and phase.address not in self._submitted
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
            elif phase.address in elsewhere:
                status.state, status.reason = RUNNING, elsewhere[phase.address]
            elif all(s.state == DONE for s in inputs):
                if submit:
                    objects = render_phase(phase, self.sweep, self.store_uri, self.settings)
                    created = self.backend.submit(phase, objects)
                    self._submitted.add(phase.address)
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
        """Reconcile until every phase is done, failed or blocked (one pass with `detach`), or until
        `stop()`: then after the pass in progress, leaving running phases to finish on their own."""
        write_specs(self.plan, self.store)
        while True:
            statuses = self.status(submit=True)
            if on_pass:
                on_pass(statuses)
            if detach or self.stopping or all(s.state in TERMINAL for s in statuses):
                return statuses
            self.backend.poll(poll_interval)
            if self.stopping:
                return statuses
