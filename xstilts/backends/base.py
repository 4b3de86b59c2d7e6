"""The interface both backends implement: submit rendered Jobs, observe them, read logs, cancel."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from xstilts.plan.phase import Phase


class JobState(str, Enum):
    PENDING = "pending"  # created but not running yet (queued, suspended by Kueue, pulling images)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class Observed:
    """What the backend knows about one phase's Job."""

    state: JobState
    reason: str | None = None  # BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy, ...
    message: str | None = None
    started: float | None = None
    finished: float | None = None
    pod: str | None = None
    attempts: int = 0


class Backend(ABC):
    name: str

    @abstractmethod
    def submit(self, phase: Phase, objects: list[Any]) -> bool:
        """Create the phase's objects. Returns False when they already existed (already submitted)."""

    @abstractmethod
    def observe(self, sweep: str) -> dict[str, Observed]:
        """The sweep's Jobs by phase address, from one listing."""

    def poll(self, timeout: float) -> None:  # noqa: B027 - optional hook
        """Wait up to `timeout` seconds for something to change (default: sleep)."""
        import time

        time.sleep(timeout)

    @abstractmethod
    def logs(self, phase: Phase, follow: bool = False) -> Iterator[str] | None:
        """The phase's live log lines, or None when no pod/process holds them any more."""

    @abstractmethod
    def cancel(
        self, sweep: str, addresses: Collection[str] = (), keep: Callable[[], Collection[str]] = tuple
    ) -> int:
        """Stop and delete the sweep's running Jobs; returns how many were stopped.

        `addresses` are the sweep's phases, for a backend that finds running phases by address (the
        local one: processes an earlier controller started); `keep()` the phases committed to the
        store, never stopped, asked only by a backend that needs it (so a cancel that does not reads
        no store)."""

    # Whether the reconcile loop, told to retry failures, retries each failed phase itself (`forget`,
    # then submit, once its inputs are done). A backend that clears them all up front in `retry_failed`
    # says False.
    retries_in_loop: bool = True

    def retry_failed(self, sweep: str, done: Callable[[str], bool]) -> int:
        """Before a submit that retries failures: make the sweep's failed phases submittable again.
        `done(address)` says whether the store has the phase complete. Returns how many failed Jobs it
        deleted here (by default none: the reconcile loop retries each one, see `retries_in_loop`)."""
        return 0

    def forget(self, address: str) -> None:  # noqa: B027 - optional hook
        """Drop a failed Job so that its phase can be submitted again."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (local processes keep running only if detached)."""
