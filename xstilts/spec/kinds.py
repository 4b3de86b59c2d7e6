"""The phase kinds: each declared once, with what the other layers need to know about it.

The planner (`plan/expand.py`) produces phases of these kinds, the renderer sizes their pods and
launches the training ones over every GPU, the local backend and `xstilts phase run` start their
runner. Adding a kind is one entry here plus its runner module in `xstilts/phases/` (and the planner
producing it). The runner is named as "module:function", resolved only when a phase runs, so that this
bottom layer imports nothing above it (and `xstilts sweep plan` no training stack).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

# The kinds as a type, for the `Phase.kind` field; tests/spec/test_kinds.py checks it equals KINDS.
PhaseKind = Literal["encoder", "mlm", "intermediate", "target", "evaluate", "analysis", "taskemb"]

# The resource preset of the in-cluster controller's Job (`render/controller.py`), which is no phase.
CONTROLLER_PRESET = "controller"


@dataclass(frozen=True)
class KindDef:
    """One phase kind."""

    name: str
    runner: str  # "module:function" taking the PhaseContext and returning the phase's metrics
    trains: bool = False  # runs a distributed training loop: one process per GPU (`accelerate launch`)
    # Its resource preset: the key under the sweep's `resources:` and the cluster's `presets`.
    preset: str = ""
    outputs: str = ""  # what it commits under `phases/<kind>/<address>/`, besides metrics and lineage

    def __post_init__(self) -> None:
        if not self.preset:
            object.__setattr__(self, "preset", self.name)

    def resolve_runner(self) -> Callable[[Any], dict[str, Any]]:
        module, _, function = self.runner.partition(":")
        return getattr(importlib.import_module(module), function)


# In DAG order.
KINDS: dict[str, KindDef] = {
    kind.name: kind
    for kind in (
        KindDef(
            "encoder",
            runner="xstilts.phases.encoder:run",
            outputs="model/: the base encoder and tokenizer (the tiny random-init one, or a hub model)",
        ),
        KindDef(
            "mlm",
            runner="xstilts.phases.training:run_mlm",
            trains=True,
            outputs="model/: the encoder after masked-LM training",
        ),
        KindDef(
            "intermediate",
            runner="xstilts.phases.training:run_intermediate",
            trains=True,
            outputs="model/: the encoder and heads after English intermediate training",
        ),
        KindDef(
            "target",
            runner="xstilts.phases.training:run_target",
            trains=True,
            outputs="model/: fine-tuned on the target task's English data",
        ),
        KindDef(
            "evaluate",
            runner="xstilts.phases.evaluate:run",
            outputs="metrics.json per language, predictions/<lang>.jsonl",
        ),
        KindDef(
            "analysis",
            runner="xstilts.phases.analysis:run",
            preset="evaluate",  # it encodes evaluation texts, as an evaluate phase does
            outputs="metrics.json: domain alignment of each (intermediate, target) pair",
        ),
        KindDef(
            "taskemb",
            runner="xstilts.phases.taskemb:run",
            outputs="metrics.json: the task's text and Fisher task embeddings (`xstilts suggest`)",
        ),
    )
}

TRAINING_KINDS = frozenset(name for name, kind in KINDS.items() if kind.trains)
# The presets a sweep's `resources:` may set (one per kind, some shared), in DAG order.
PHASE_PRESETS: tuple[str, ...] = tuple(dict.fromkeys(kind.preset for kind in KINDS.values()))
# Every preset of the cluster settings (the chart's `presets`): the phases' and the controller's.
PRESETS: tuple[str, ...] = (*PHASE_PRESETS, CONTROLLER_PRESET)
