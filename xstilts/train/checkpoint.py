"""Checkpoints for resume: `<phase prefix>/checkpoints/step-N/` with a `_COMPLETE` marker of their own,
so a half-uploaded checkpoint is never resumed from. The store keeps the latest and the best one."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from xstilts.store import Store, join_key
from xstilts.store.complete import MARKER, commit_dir, fetch_complete

STATE_FILE = "trainer_state.json"
_STEP = re.compile(r"checkpoints/step-(\d+)/" + MARKER + "$")


class Checkpointer:
    def __init__(self, store: Store, phase_prefix: str, staging: Path):
        self.store = store
        self.prefix = join_key(phase_prefix, "checkpoints")
        self.staging = Path(staging) / "checkpoints"

    def local_dir(self, step: int) -> Path:
        return self.staging / f"step-{step}"

    def key(self, step: int) -> str:
        return join_key(self.prefix, f"step-{step}")

    def complete_steps(self) -> list[int]:
        steps = []
        for obj in self.store.list(self.prefix + "/"):
            match = _STEP.search(obj.key)
            if match:
                steps.append(int(match.group(1)))
        return sorted(steps)

    def commit(self, step: int, state: dict[str, Any]) -> None:
        """Write the trainer state next to the saved accelerator state, then upload with a marker."""
        local = self.local_dir(step)
        (local / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True))
        commit_dir(self.store, local, self.key(step))

    def fetch(self, step: int) -> Path:
        """A local copy of a complete checkpoint (reused when already staged and verified)."""
        return fetch_complete(self.store, self.key(step), self.local_dir(step))

    def latest(self) -> tuple[int, Path, dict[str, Any]] | None:
        steps = self.complete_steps()
        if not steps:
            return None
        step = steps[-1]
        local = self.fetch(step)
        return step, local, json.loads((local / STATE_FILE).read_text())

    def prune(self, keep: set[int]) -> None:
        """Delete stored and staged checkpoints not in `keep` (marker first, so none looks complete)."""
        for step in self.complete_steps():
            if step not in keep:
                self.store.delete_prefix(join_key(self.key(step), MARKER))
                self.store.delete_prefix(self.key(step))
        if self.staging.is_dir():
            for child in self.staging.iterdir():
                match = re.fullmatch(r"step-(\d+)", child.name)
                if match and int(match.group(1)) not in keep:
                    shutil.rmtree(child, ignore_errors=True)
