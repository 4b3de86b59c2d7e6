"""A failed phase's one-line explanation, from the end of its log: shared by the local backend (the
phase's log file) and the Kubernetes backend (the failed pod's log tail)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

TAIL_BYTES = 16384  # how much of a log's end is read for it

_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b(?::.*)?$")


def last_error_line_of(lines: Iterable[str]) -> str | None:
    """The last `Error: ...` line a phase printed (its one-line failure message), else the last line of
    a traceback (`OSError: Repo id must be ...`), if any."""
    lines = list(lines)
    for line in reversed(lines):
        if line.startswith("Error: "):
            return line[len("Error: ") :].strip()
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line.strip()) and not line.startswith("xstilts local backend:"):
            return line.strip()
    return None


def tail_lines(log_path: Path, tail_bytes: int = TAIL_BYTES) -> list[str] | None:
    """The lines of the last `tail_bytes` of a log file (None when it cannot be read)."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - tail_bytes))
            return handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None


def last_error_line(log_path: Path, tail_bytes: int = TAIL_BYTES) -> str | None:
    """`last_error_line_of` the end of the log file at `log_path` (None when it cannot be read)."""
    lines = tail_lines(log_path, tail_bytes)
    return None if lines is None else last_error_line_of(lines)
