"""Sweep files to start from (`sweep init`) and a sweep with every default filled in (`sweep show`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from xstilts.errors import ConfigError, UsageError
from xstilts.plan.expand import Plan

JOBS = Path(__file__).resolve().parents[2] / "jobs"
PRESET_ALIASES = {"paper": "xstilts-paper", "tiny-paper": "tiny-xstilts-paper"}


def presets() -> dict[str, Path]:
    """Preset name -> the shipped sweep file (jobs/*.yaml of the source checkout)."""
    found = {path.stem: path for path in sorted(JOBS.glob("*.yaml"))}
    for alias, stem in PRESET_ALIASES.items():
        if stem in found:
            found[alias] = found[stem]
    return found


HEADER = """\
# Sweep file written by `xstilts sweep init --preset {preset}` (from jobs/{source}).
# Check it:             xstilts sweep plan {file}
# Every default filled: xstilts sweep show {file}
# Run it locally:       xstilts sweep submit {file}
# Every field: README.md ("The sweep file"); the training defaults: docs/defaults.md.
"""


def init_text(preset: str, file: Path) -> str:
    available = presets()
    if preset not in available:
        raise UsageError(
            f"--preset {preset!r} is not a preset (fix: use one of {', '.join(sorted(available))})"
        )
    source = available[preset]
    text = source.read_text(encoding="utf-8")
    name = re.sub(r"[^a-z0-9-]+", "-", file.stem.lower()).strip("-")[:40] or "my-sweep"
    text = re.sub(r"(?m)^name: .*$", f"name: {name}", text, count=1)
    return HEADER.format(preset=preset, source=source.name, file=file) + text


def write_init(preset: str, file: Path, force: bool) -> None:
    if file.exists() and not force:
        raise ConfigError("the file exists", file=str(file), fix="choose another name, or pass --force")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(init_text(preset, file), encoding="utf-8")


def resolved(plan: Plan) -> dict[str, Any]:
    """The sweep with every default in place, and per phase kind and task the settings its phases run
    with (hyperparameters, languages, resources); seeds differ only by `seed`, so one phase per
    kind/task/setting stands for them."""
    sweep = plan.sweep.model_dump(mode="json", by_alias=True, exclude={"intermediate_subsets"})
    per_phase: dict[str, Any] = {}
    for phase in plan.ordered():
        key = phase.name.split("@", 1)[0]
        if key in per_phase:
            per_phase[key]["phases"] += 1
            continue
        config = {k: v for k, v in phase.config.dump().items() if k != "seed"}
        per_phase[key] = {
            "phases": 1,
            "config": config,
            "resources": phase.resources.model_dump(mode="json", by_alias=True),
        }
    return {"sweep": sweep, "phases": per_phase}
