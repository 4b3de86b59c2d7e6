"""Each phase kind's config model reads every config the planner writes and gives back the very same
dict, so a typed config never moves a content address."""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import example_config
from xstilts.plan.configs import CONFIGS, EncoderConfig, TargetConfig, parse_config
from xstilts.plan.expand import expand
from xstilts.plan.phase import Phase, content_address
from xstilts.spec.kinds import KINDS
from xstilts.spec.load import load_sweep, parse_sweep
from xstilts.suggest.embeddings import taskemb_phase
from xstilts.suggest.service import choose_encoder

JOBS = Path(__file__).resolve().parents[2] / "jobs"
# Sweeps that reach the optional keys no sweep file of jobs/ sets.
EXTRA: dict[str, dict[str, Any]] = {
    "size-match": {
        "intermediate": [{"task": "mnli"}, {"task": "squad"}],
        "targets": ["pawsx"],
        "controls": {"size_match": "smallest"},
    },
    "mlm-phase": {
        "data": {"source": "fixtures"},
        "mlm": {"enabled": True, "mask_probability": 0.2},
        "intermediate": [{"task": "mnli"}],
        "targets": ["pawsx"],
    },
    "search": {
        "data": {"source": "fixtures"},
        "intermediate": [{"task": "mnli"}, {"task": "squad"}, {"task": "qqp"}],
        "targets": ["pawsx"],
        "search": {"budget_fraction": 1 / 3, "eta": 3, "target_fraction": 0.5},
    },
    "mlm-mixture": {
        "data": {"source": "fixtures"},
        "intermediate": [{"name": "mnli+mlm", "tasks": ["mnli", "mlm"]}],
        "targets": ["pawsx"],
    },
}


class EmptyStore:
    """A store view with no encoder phase yet: `suggest` plans a new one."""

    def encoders(self) -> list[Phase]:
        return []


def canonical(config: dict[str, Any]) -> str:
    """The config as its address hashes it: key order aside, every key, value and number type."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


@cache
def planned() -> list[Phase]:
    phases: list[Phase] = []
    for path in sorted(JOBS.glob("*.yaml")):
        phases += expand(load_sweep(path)).ordered()
    for name, fields in EXTRA.items():
        data = {"name": name, "encoders": [{"name": "tiny", "model": "tiny"}], **fields}
        phases += expand(parse_sweep(data, f"{name}.yaml")).ordered()
    encoders = [p for p in phases if p.kind == "encoder"]
    phases += [taskemb_phase(encoders[0], "mnli", retrieval_layer=3), taskemb_phase(encoders[-1], "xnli")]
    phases += [choose_encoder(EmptyStore(), model, {}, data) for model in ("tiny", "xlm-roberta-base")
               for data in ("fixtures", "hub")]  # fmt: skip
    return phases


def test_every_planned_config_reads_back_as_the_same_dict() -> None:
    for phase in planned():
        assert isinstance(phase.config, CONFIGS[phase.kind])
        config = phase.config.dump()
        dumped = parse_config(phase.kind, config).dump()
        assert dumped == config, phase.name
        assert canonical(dumped) == canonical(config), f"{phase.name}: a value changed type"
        assert content_address(phase.kind, dumped, phase.inputs) == phase.address


def test_the_sweeps_reach_every_field_of_every_kind() -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for phase in planned():
        seen[phase.kind] |= set(phase.config.dump())
    assert set(seen) == set(KINDS)
    for kind, model in CONFIGS.items():
        assert seen[kind] == set(model.model_fields) - {"kind"}, kind


def test_a_stored_spec_reads_back_with_its_config() -> None:
    for phase in planned():
        stored = Phase.model_validate_json(phase.model_dump_json())
        assert stored.config.dump() == phase.config.dump() and stored.computed_address() == phase.address
        assert json.loads(phase.model_dump_json())["config"] == phase.config.dump(), "the spec holds the dict"


def test_a_config_that_does_not_fit_its_kind_is_refused() -> None:
    target = next(p for p in planned() if p.kind == "target")
    config = target.config.dump()
    with pytest.raises(ValidationError, match="typo"):
        parse_config("target", {**config, "typo": 1})
    with pytest.raises(ValidationError, match="seed"):
        parse_config("target", {k: v for k, v in config.items() if k != "seed"})
    with pytest.raises(ValidationError):
        parse_config("encoder", config)
    assert isinstance(parse_config("target", config), TargetConfig)
    spec = json.loads(target.model_dump_json())
    with pytest.raises(ValidationError, match="typo"):  # a stored spec with a key no model has
        Phase.model_validate({**spec, "config": {**config, "typo": 1}})
    with pytest.raises(ValidationError, match="a target config for a evaluate phase"):
        Phase(kind="evaluate", address=target.address, label="x", config=target.config)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_example_configs_of_the_tests_fit_their_kind(kind: str) -> None:
    assert parse_config(kind, example_config(kind)).dump() == example_config(kind)


def test_an_analysis_spec_from_before_its_seed_and_languages_still_reads() -> None:
    older = {"task": "domain-alignment", "intermediate_tasks": ["mnli"], "targets": ["xnli"],
             "data": {"source": "hub"}, "max_examples": 2000, "retrieval_layer": None}  # fmt: skip
    assert parse_config("analysis", older).dump() == older


def test_optional_keys_stay_out_unless_given() -> None:
    hub = EncoderConfig(model="xlm-roberta-large", revision=None, checkpoint="masked-lm")
    assert hub.dump() == {"model": "xlm-roberta-large", "revision": None, "checkpoint": "masked-lm"}
