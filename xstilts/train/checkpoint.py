"""Checkpoints for resume: `<phase prefix>/checkpoints/step-N/` with a `_COMPLETE` marker of their own,
so a half-uploaded checkpoint is never resumed from. The store keeps the latest and the best one.

What a checkpoint may hold is fixed (`xstilts.train.state`): safetensors and JSON only. Its manifest is
checked before anything is downloaded, so a checkpoint with a pickle in it is refused, not loaded."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from xstilts.errors import UntrustedContentError
from xstilts.store import Store, join_key
from xstilts.store.complete import MARKER, commit_dir, fetch_complete, read_manifest
from xstilts.store.lease import verify_active
from xstilts.train.state import FORMAT, TRAINER_STATE, check_files

STATE_FILE = TRAINER_STATE
_STEP = re.compile(r"checkpoints/step-(\d+)/" + MARKER + "$")


class Checkpointer:
    def __init__(self, store: Store, phase_prefix: str, staging: Path, *, deepspeed: bool = False):
        self.store = store
        self.prefix = join_key(phase_prefix, "checkpoints")
        self.staging = Path(staging) / "checkpoints"
        self.deepspeed = deepspeed

    def local_dir(self, step: int) -> Path:
        return self.staging / f"step-{step}"

    def key(self, step: int) -> str:
        return join_key(self.prefix, f"step-{step}")

    def where(self, step: int) -> str:
        return f"{self.store.describe()}/{self.key(step)}"

    def complete_steps(self) -> list[int]:
        steps = []
        for obj in self.store.list(self.prefix + "/"):
            match = _STEP.search(obj.key)
            if match:
                steps.append(int(match.group(1)))
        return sorted(steps)

    def commit(self, step: int, state: dict[str, Any]) -> None:
        """Write the trainer state next to the saved training state, then upload with a marker. A runner
        whose phase lease was taken over commits nothing (LeaseLostError)."""
        local = self.local_dir(step)
        (local / STATE_FILE).write_text(json.dumps({**state, "format": FORMAT}, indent=1, sort_keys=True))
        verify_active()
        commit_dir(self.store, local, self.key(step))

    def fetch(self, step: int) -> Path:
        """A verified local copy of a complete checkpoint that holds only xstilts' formats (refused with
        UntrustedContentError before any download otherwise)."""
        entries = read_manifest(self.store, self.key(step))
        if entries is None:
            raise FileNotFoundError(f"{self.where(step)} has no {MARKER} marker")
        check_files([e.path for e in entries], self.where(step), deepspeed=self.deepspeed)
        local = fetch_complete(self.store, self.key(step), self.local_dir(step))
        self._check_format(step, local)
        return local

    def _check_format(self, step: int, local: Path) -> dict[str, Any]:
        try:
            state = json.loads((local / STATE_FILE).read_text())
        except (OSError, ValueError):
            state = None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise UntrustedContentError(
                f"checkpoint {self.where(step)} is not in xstilts' checkpoint format {FORMAT}: refusing to "
                f"resume from it (fix: delete {self.where(step)})"
            )
        return state

    def latest(self, at_most: int | None = None) -> tuple[int, Path, dict[str, Any]] | None:
        """The latest complete checkpoint (at or before step `at_most` when given: a successive-halving
        rung resumes from its own prefix of the run, never from further on)."""
        steps = [s for s in self.complete_steps() if at_most is None or s <= at_most]
        if not steps:
            return None
        step = steps[-1]
        local = self.fetch(step)
        return step, local, self._check_format(step, local)

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
