"""The interface both backends implement: submit rendered Jobs, observe them, read logs, cancel."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
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
    def cancel(self, sweep: str) -> int:
        """Stop and delete the sweep's running Jobs; returns how many were deleted."""

    def forget(self, address: str) -> None:  # noqa: B027 - optional hook
        """Drop a failed Job so that its phase can be submitted again."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (local processes keep running only if detached)."""
