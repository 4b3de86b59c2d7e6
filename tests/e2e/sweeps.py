"""Small sweep files for end-to-end tests (real phases, tiny model, fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from xstilts.plan import Phase, Plan, expand
from xstilts.spec import load_sweep


def micro(name: str = "micro", **overrides: Any) -> dict[str, Any]:
    """Encoder -> MNLI -> PAWS-X (+ Tatoeba): every phase kind, a few seconds of training."""
    sweep: dict[str, Any] = {
        "name": name,
        "data": {"source": "fixtures"},
        "encoders": [{"name": "tiny", "model": "tiny", "tiny": {"hidden_size": 32, "intermediate_size": 64}}],
        "intermediate": [{"task": "mnli"}],
        "targets": ["pawsx", "tatoeba"],
        "training": {
            "max_steps": 4,
            "max_length": 64,
            "learning_rate": 1e-3,
            "checkpoint_every": 2,
            "max_dev_examples": 20,
            "max_eval_examples": 30,
        },
        "kubernetes": {"backoffLimit": 0},
    }
    sweep.update(overrides)
    return sweep


def write(tmp_path: Path, sweep: dict[str, Any], name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def planned(sweep_file: Path) -> tuple[Plan, Phase, Phase]:
    """The sweep file's plan with its (first) encoder and intermediate phases."""
    plan = expand(load_sweep(sweep_file))
    encoder = next(p for p in plan.ordered() if p.kind == "encoder")
    intermediate = next(p for p in plan.ordered() if p.kind == "intermediate")
    return plan, encoder, intermediate
