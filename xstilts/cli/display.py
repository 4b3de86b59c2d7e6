"""Live sweep progress: a rich display on a terminal, one line per change elsewhere (pods, CI)."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from xstilts.backends.errorline import tail_lines
from xstilts.backends.reconcile import BLOCKED, DONE, FAILED, RUNNING, PhaseStatus
from xstilts.cli.output import err
from xstilts.plan.expand import Plan

STATE_STYLE = {
    "done": "green",
    "running": "cyan",
    "pending": "yellow",
    "waiting": "dim",
    "failed": "red",
    "blocked": "magenta",
    "unknown": "dim",
}


def _last_event(log_path: Path, event: str, tail: int = 8192) -> dict | None:
    lines = tail_lines(log_path, tail)
    if lines is None:
        return None
    for line in reversed(lines):
        if line.startswith(f'{{"event": "{event}"'):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def last_step(log_path: Path) -> dict | None:
    """The last `step` progress event of a phase log (step, total, loss, ETA)."""
    return _last_event(log_path, "step")


def resumed_from(log_path: Path) -> int | None:
    """The step this attempt of the phase resumed from (its last `resume` event), if it resumed."""
    record = _last_event(log_path, "resume", tail=65536)
    return record.get("step") if record else None


def sweep_eta(statuses: list[PhaseStatus], running_eta: dict[str, float], parallel: int) -> float | None:
    """Seconds until the whole sweep is done, from measured rates: a running phase's own ETA (from its
    steps), else the mean duration of the finished phases of its kind (of all finished phases when none
    of its kind has finished), spread over the phases that run at once. None before any phase finished
    or reported a rate."""
    durations: dict[str, list[float]] = {}
    for s in statuses:
        if s.state == DONE and s.duration:
            durations.setdefault(s.kind, []).append(s.duration)
    every = [d for ds in durations.values() for d in ds]
    if not every and not running_eta:
        return None
    overall = sum(every) / len(every) if every else max(running_eta.values())

    def typical(kind: str) -> float:
        own = durations.get(kind)
        return sum(own) / len(own) if own else overall

    work = 0.0
    for s in statuses:
        if s.state == RUNNING:
            work += running_eta.get(s.address, max(0.0, typical(s.kind) - (s.duration or 0.0)))
        elif s.state in ("pending", "waiting"):
            work += typical(s.kind)
    return work / max(1, parallel)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def counts_line(statuses: list[PhaseStatus]) -> str:
    counts = Counter(s.state for s in statuses)
    order = ["done", "running", "pending", "waiting", "failed", "blocked"]
    parts = [f"{counts[k]} {k}" for k in order if counts[k]]
    return f"{counts[DONE]}/{len(statuses)} phases done · " + ", ".join(parts)


WIDE = 120  # columns from which tables show every column


def status_table(statuses: list[PhaseStatus], *, all_rows: bool = True, width: int | None = None) -> Table:
    """Per-phase state. Names never break inside a word: at 80 columns the task column (the name holds
    it) is left out and only the reason wraps, at its spaces."""
    width = width or err.width
    wide = width >= WIDE
    shown = [s for s in statuses if all_rows or s.state in (RUNNING, FAILED, BLOCKED)]
    pods = any(s.pod for s in shown)
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("phase", no_wrap=True)
    if wide:
        table.add_column("task", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("duration", no_wrap=True, justify="right")
    if pods:
        table.add_column("pod", no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=1)
    for s in shown:
        row: list[Any] = [Text(s.name)]
        if wide:
            row.append(Text(s.task))
        row += [
            Text(s.state, style=STATE_STYLE.get(s.state, "")),
            f"{s.duration:.0f}s" if s.duration is not None else "",
        ]
        if pods:
            row.append(Text(s.pod or ""))
        row.append(Text(s.reason or ""))  # the reason quotes messages: literal text, never markup
        table.add_row(*row)
    return table


def plan_table(plan: Plan, rows: list[dict[str, Any]], width: int) -> Table:
    """The phase DAG. Wide: name, address, inputs by name, status. Narrower: the address column goes
    (the name carries its first 8 digits, which every command accepts) and inputs are named by kind
    and task, so that no name is broken inside a word."""
    wide = width >= WIDE
    table = Table(title=f"sweep {plan.sweep.name}", show_edge=False, pad_edge=False)
    table.add_column("phase", no_wrap=True)
    if wide:
        table.add_column("address", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("inputs", ratio=1)
    for r in rows:
        names = list(r["inputs"].values())
        if not wide:
            names = list(dict.fromkeys(n.split("@", 1)[0] for n in names))
        cells: list[Any] = [Text(r["name"])]
        if wide:
            cells.append(r["address"])
        cells += [Text(r["status"], style=STATE_STYLE.get(r["status"], "")), Text(", ".join(names))]
        table.add_row(*cells)
    return table


class SweepDisplay:
    """Receives every reconcile pass (`on_pass`)."""

    def __init__(self, log_dir: Path | None = None, live: bool | None = None, parallel: int = 1):
        self.log_dir = log_dir
        self.parallel = parallel
        self._eta: dict[str, float] = {}
        self.live_enabled = sys.stderr.isatty() if live is None else live
        self._live: Live | None = None
        self._last: dict[str, str] = {}
        self._resumed: set[str] = set()
        self._active: set[str] = set()  # phases seen running in this display
        self.started = time.monotonic()

    def __enter__(self) -> SweepDisplay:
        if self.live_enabled:
            # Transient: the last frame goes when the sweep ends, and `submit` prints the summary once.
            self._live = Live(console=err, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._live.__exit__(None, None, None)

    def _running_lines(self, statuses: list[PhaseStatus]) -> list[str]:
        lines = []
        self._eta = {}
        for s in statuses:
            if s.state != RUNNING:
                continue
            log = self.log_dir / f"{s.address}.log" if self.log_dir else None
            info = last_step(log) if log else None
            resumed = resumed_from(log) if log else None
            since = f", resumed from step {resumed}" if resumed else ""
            if info:
                eta = ""
                if info.get("eta_s") is not None:
                    self._eta[s.address] = float(info["eta_s"])
                    eta = f", ETA {_clock(info['eta_s'])}"
                lines.append(
                    f"  {s.name}: step {info['step']}/{info['total']}, loss {info.get('loss')}, "
                    f"{info.get('tokens_per_s', 0)} tok/s{eta}{since}"
                )
            else:
                lines.append(f"  {s.name}: starting{since}")
        return lines

    def header(self, statuses: list[PhaseStatus]) -> str:
        text = counts_line(statuses) + f" · {_clock(time.monotonic() - self.started)}"
        eta = sweep_eta(statuses, self._eta, self.parallel)
        if eta is not None and not all(s.state in (DONE, FAILED, BLOCKED) for s in statuses):
            text += f" · sweep ETA {_clock(eta)}"
        return text

    def _announce_resumes(self, statuses: list[PhaseStatus]) -> None:
        """A phase that this controller ran and that resumed from a checkpoint is said once, as a line that
        stays (above the live frame), even when the phase finished between two passes."""
        if not self.log_dir:
            return
        for s in statuses:
            if s.state not in (DONE, FAILED, BLOCKED):
                self._active.add(s.address)
            if s.address in self._resumed or s.address not in self._active or s.state not in (RUNNING, DONE):
                continue
            resumed = resumed_from(self.log_dir / f"{s.address}.log")
            if resumed:
                self._resumed.add(s.address)
                err.print(Text(f"{s.name}: resumed from step {resumed}"))

    def __call__(self, statuses: list[PhaseStatus]) -> None:
        self._announce_resumes(statuses)
        if self._live:
            running = self._running_lines(statuses)
            body = [Text(self.header(statuses), style="bold"), Text("\n".join(running))]
            problems = [s for s in statuses if s.state in (FAILED, BLOCKED)]
            if problems:
                body.append(status_table(problems))
            self._live.update(Group(*body))
            return
        for s in statuses:
            if self._last.get(s.address) != s.state:
                if s.address in self._last or s.state not in ("waiting", "done"):
                    reason = f" ({s.reason})" if s.reason else ""
                    err.print(f"{s.name}: {s.state}{reason}", highlight=False, markup=False)
                self._last[s.address] = s.state
