"""The phase-kind registry: every kind declares what the other layers need, and they all read it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import get_args

import pytest

from xstilts.plan.phase import Phase, phase_prefix
from xstilts.spec.kinds import (
    CONTROLLER_PRESET,
    KINDS,
    PHASE_PRESETS,
    PRESETS,
    TRAINING_KINDS,
    KindDef,
    PhaseKind,
)
from xstilts.spec.models import Sweep

REPO = Path(__file__).resolve().parents[2]


def test_the_kind_type_names_exactly_the_registered_kinds() -> None:
    assert get_args(PhaseKind) == tuple(KINDS)
    assert get_args(Phase.model_fields["kind"].annotation) == tuple(KINDS)


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kind_declares_what_the_other_layers_need(name: str) -> None:
    kind = KINDS[name]
    assert isinstance(kind, KindDef) and kind.name == name
    assert re.fullmatch(r"xstilts\.phases\.[a-z_]+:[a-z_]+", kind.runner), kind.runner
    assert isinstance(kind.trains, bool)
    assert kind.preset in PHASE_PRESETS and kind.preset != CONTROLLER_PRESET
    assert kind.outputs, f"{name}: say what the phase commits"
    assert phase_prefix(name, "0" * 12) == f"phases/{name}/{'0' * 12}"


@pytest.mark.parametrize("name", list(KINDS))
def test_each_runner_reference_resolves_to_a_function_of_the_phase_context(name: str) -> None:
    runner = KINDS[name].resolve_runner()
    assert callable(runner)
    assert list(inspect.signature(runner).parameters) == ["ctx"]


def test_derived_sets_follow_the_registry() -> None:
    assert {"mlm", "intermediate", "target"} == TRAINING_KINDS
    assert PRESETS == (*PHASE_PRESETS, CONTROLLER_PRESET)
    # a sweep's `resources:` takes exactly the phase presets; the analysis phase shares evaluate's
    assert KINDS["analysis"].preset == "evaluate"
    Sweep.model_validate(
        {
            "name": "s",
            "encoders": [{"name": "t", "model": "tiny"}],
            "targets": ["xnli"],
            "resources": {preset: {"cpu": "1"} for preset in PHASE_PRESETS},
        }  # fmt: skip
    )
    with pytest.raises(ValueError, match="resources"):
        Sweep.model_validate(
            {
                "name": "s",
                "encoders": [{"name": "t", "model": "tiny"}],
                "targets": ["xnli"],
                "resources": {"controller": {"cpu": "1"}},
            }  # fmt: skip
        )


def test_the_architecture_doc_lists_every_kind() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    listed = re.findall(r"^\| `([a-z]+)` \|", text.split("## Phase kinds", 1)[1].split("\n## ", 1)[0], re.M)
    assert listed == list(KINDS)
