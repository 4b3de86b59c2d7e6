"""`sweep logs` for people: phase progress events as `time phase event details` lines, errors kept,
progress bars and library chatter dropped. `-o json` prints the log as it is."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

# Lines that libraries print and that say nothing about the phase: tqdm bars, warnings and their
# source lines, Hugging Face's advice on fine-tuning.
_NOISE = (
    re.compile(r"\d+%\|"),  # tqdm: " 40%|████      | 4/10 [00:01<00:02, 3.1it/s]"
    re.compile(r"\d+(?:\.\d+)?\s*(?:it|s)/(?:s|it)\]"),
    re.compile(r"^\s*warnings\.warn\("),
    re.compile(r"(?:User|Future|Deprecation|Runtime)Warning:"),
    re.compile(r"^Some weights of .* (?:were not|are newly) initialized"),
    re.compile(r"^You should probably TRAIN this model"),
    re.compile(r"^- This IS (?:NOT )?expected if"),
    re.compile(r"^\[(?:W|I)\d*\s"),  # torch's C++ log lines ([W socket.cpp...])
)

_SKIP_FIELDS = {"event", "phase", "time"}


def is_noise(line: str) -> bool:
    return not line.strip() or any(p.search(line) for p in _NOISE)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _details(record: dict[str, Any]) -> str:
    event = record.get("event")
    if event == "step":
        parts = [f"step {record.get('step')}/{record.get('total')}"]
        if record.get("loss") is not None:
            parts.append(f"loss {_number(record['loss'])}")
        if record.get("tokens_per_s") is not None:
            parts.append(f"{record['tokens_per_s']} tok/s")
        if record.get("eta_s") is not None:
            parts.append(f"ETA {record['eta_s']:.0f}s")
        return ", ".join(parts)
    if event == "resume":
        return f"resumed from step {record.get('step')}/{record.get('total')}"
    fields = [
        f"{key} {_number(value)}"
        for key, value in record.items()
        if key not in _SKIP_FIELDS and isinstance(value, str | int | float | bool) and value is not None
    ]
    return f"{event}" + (f": {', '.join(fields)}" if fields else "")


def format_line(line: str, phase: str | None = None) -> str | None:
    """One human-readable line, or None for noise."""
    text = line.rstrip("\n")
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and "event" in record:
            stamp = (
                time.strftime("%H:%M:%S", time.localtime(record["time"])) if "time" in record else "--:--:--"
            )
            return f"{stamp}  {record.get('phase', phase or '')}  {_details(record)}"
    if is_noise(text):
        return None
    return f"{'':8}  {phase or ''}  {text}".rstrip() if phase else text


def readable(lines: Iterable[str], phase: str | None = None) -> Iterator[str]:
    for line in lines:
        formatted = format_line(line, phase)
        if formatted is not None:
            yield formatted
