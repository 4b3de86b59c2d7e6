"""Progress of a running phase as JSON lines on stdout (for `kubectl logs` and the local controller)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


class ProgressLog:
    """Emits `{"event": ..., "phase": ..., ...}` lines; `step` events at most every `interval` seconds."""

    def __init__(self, phase: str, stream: TextIO | None = None, interval: float = 5.0):
        self.phase = phase
        self.stream = stream or sys.stdout
        self.interval = interval
        self._last = 0.0
        self._start = time.monotonic()

    def event(self, event: str, **fields: Any) -> None:
        record = {"event": event, "phase": self.phase, "time": round(time.time(), 3), **fields}
        self.stream.write(json.dumps(record, default=_jsonable) + "\n")
        self.stream.flush()

    def due(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            return True
        return False

    def step(self, step: int, total: int, **fields: Any) -> None:
        elapsed = time.monotonic() - self._start
        self.event("step", step=step, total=total, elapsed_s=round(elapsed, 1), **fields)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
