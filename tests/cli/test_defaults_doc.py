"""docs/defaults.md states the defaults the code uses (checked, so that the two cannot drift apart)."""

from __future__ import annotations

import re
from pathlib import Path

from xstilts.spec.training import TrainingConfig
from xstilts.tasks import all_tasks

DOC = (Path(__file__).resolve().parents[2] / "docs" / "defaults.md").read_text()


def _documented(name: str) -> str:
    match = re.search(rf"^\| `{name}` \| ([^|]+) \|", DOC, re.M)
    assert match, f"docs/defaults.md lists `{name}`"
    return match[1].strip()


def test_every_training_default_is_documented_as_the_code_has_it():
    for name, field in TrainingConfig.model_fields.items():
        if field.default_factory is not None:
            continue
        expected = {None: "none", True: "true", False: "false"}.get(field.default, str(field.default))
        if isinstance(field.default, bool) or field.default is None:
            assert _documented(name) == expected, name
        else:
            assert _documented(name) in (str(field.default), repr(field.default)), name


def test_every_task_override_is_documented():
    for task in all_tasks():
        if task.hparams:
            settings = ", ".join(f"{k} {v}" for k, v in task.hparams.items())
            assert f"| {task.name} | {task.role.value} | {settings} |" in DOC, task.name
