"""Live sweep progress: a rich display on a terminal, one line per change elsewhere (pods, CI)."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from xstilts.backends.reconcile import BLOCKED, DONE, FAILED, RUNNING, PhaseStatus
from xstilts.cli.output import err

STATE_STYLE = {
    "done": "green",
    "running": "cyan",
    "pending": "yellow",
    "waiting": "dim",
    "failed": "red",
    "blocked": "magenta",
}


def last_step(log_path: Path) -> dict | None:
    """The last `step` progress event of a phase log (step, total, loss, ETA)."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 8192))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith('{"event": "step"'):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def counts_line(statuses: list[PhaseStatus]) -> str:
    counts = Counter(s.state for s in statuses)
    order = ["done", "running", "pending", "waiting", "failed", "blocked"]
    parts = [f"{counts[k]} {k}" for k in order if counts[k]]
    return f"{counts[DONE]}/{len(statuses)} phases done · " + ", ".join(parts)


def status_table(statuses: list[PhaseStatus], *, all_rows: bool = True) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for col in ("phase", "task", "state", "reason", "duration", "pod"):
        table.add_column(col, overflow="fold")
    for s in statuses:
        if not all_rows and s.state not in (RUNNING, FAILED, BLOCKED):
            continue
        duration = f"{s.duration:.0f}s" if s.duration is not None else ""
        table.add_row(
            s.name,
            s.task,
            Text(s.state, style=STATE_STYLE.get(s.state, "")),
            s.reason or "",
            duration,
            s.pod or "",
        )
    return table


class SweepDisplay:
    """Receives every reconcile pass (`on_pass`)."""

    def __init__(self, log_dir: Path | None = None, live: bool | None = None):
        self.log_dir = log_dir
        self.live_enabled = sys.stderr.isatty() if live is None else live
        self._live: Live | None = None
        self._last: dict[str, str] = {}
        self.started = time.monotonic()

    def __enter__(self) -> SweepDisplay:
        if self.live_enabled:
            self._live = Live(console=err, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._live.__exit__(None, None, None)

    def _running_lines(self, statuses: list[PhaseStatus]) -> list[str]:
        lines = []
        for s in statuses:
            if s.state != RUNNING:
                continue
            info = last_step(self.log_dir / f"{s.address}.log") if self.log_dir else None
            if info:
                eta = f", ETA {info['eta_s']:.0f}s" if info.get("eta_s") is not None else ""
                lines.append(
                    f"  {s.name}: step {info['step']}/{info['total']}, loss {info.get('loss')}, "
                    f"{info.get('tokens_per_s', 0)} tok/s{eta}"
                )
            else:
                lines.append(f"  {s.name}: running")
        return lines

    def __call__(self, statuses: list[PhaseStatus]) -> None:
        if self._live:
            header = Text(counts_line(statuses) + f" · {time.monotonic() - self.started:.0f}s", style="bold")
            body = [header, Text("\n".join(self._running_lines(statuses)))]
            problems = [s for s in statuses if s.state in (FAILED, BLOCKED)]
            if problems:
                body.append(status_table(problems))
            self._live.update(Group(*body))
            return
        for s in statuses:
            if self._last.get(s.address) != s.state:
                if s.address in self._last or s.state not in ("waiting", "done"):
                    reason = f" ({s.reason})" if s.reason else ""
                    err.print(f"{s.name}: {s.state}{reason}", highlight=False)
                self._last[s.address] = s.state
