"""The config of each phase kind as a model: `Phase.config`, what the planner writes and the runners,
the renderer and the report read (by attribute).

A phase's content address hashes its config as a dict (`plan/phase.py:content_address`), and its
stored spec holds that dict, so a model must give back exactly the dict it was read from:
`parse_config(kind, config).dump() == config`, key for key and value for value (an int stays an int),
with no default added. Hence: a key every phase of the kind has is a required field; a key only some
have (added when used, so that the others keep their addresses) is optional and left out of the dump
unless it was given; the training and data settings stay the plain dicts `resolve_training` and the
sweep give (their numbers keep their JSON spelling). `tests/plan/test_configs.py` checks every planned
phase of every sweep in jobs/ (and of sweeps reaching the remaining optional keys) against its model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from xstilts.spec.kinds import KINDS
from xstilts.spec.models import DeepSpeedSpec, TinyModelSpec

Number = int | float  # kept as given: 1 and 1.0 hash differently


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict[str, Any]:
        """The config dict this model was read from (what the phase's address hashes): the fields that
        were given, nested models whole (a nested model built with its defaults keeps them all)."""
        full = self.model_dump(exclude={"kind"})
        return {name: value for name, value in full.items() if name in self.model_fields_set}


class EncoderConfig(_Config):
    kind: Literal["encoder"] = Field("encoder", exclude=True)
    model: str
    revision: str | None
    data: dict[str, Any] | None = None  # the tiny encoder's tokenizer is trained on the sweep's data
    # "masked-lm": the encoder with its pretrained LM head (older encoder phases saved the bare encoder)
    checkpoint: str | None = None
    tiny: TinyModelSpec | None = None


class MLMConfig(_Config):
    kind: Literal["mlm"] = Field("mlm", exclude=True)
    task: Literal["mlm"]
    corpus: str | None
    mask_probability: Number
    seed: int
    data: dict[str, Any]
    training: dict[str, Any]
    deepspeed: DeepSpeedSpec


class MixtureMLM(_Config):
    """MLM as a task of an intermediate mixture."""

    corpus: str | None
    mask_probability: Number


class IntermediateConfig(_Config):
    """An intermediate setting, a difficulty probe (`probe-<task>`) or a successive-halving rung."""

    kind: Literal["intermediate"] = Field("intermediate", exclude=True)
    task: str  # the setting's name
    tasks: list[str]
    seed: int
    data: dict[str, Any]
    training: dict[str, Any]
    deepspeed: DeepSpeedSpec
    size_match: list[str] | None = None  # `controls.size_match: smallest`: the pool of tasks
    augment: list[dict[str, Any]] | None = None
    match_steps: bool | None = None
    mlm: MixtureMLM | None = None
    stop_fraction: Number | None = None  # a rung: stop at this share of the full run's steps
    checkpoints_of: str | None = None  # a rung: the full run whose checkpoints it shares


class TargetConfig(_Config):
    kind: Literal["target"] = Field("target", exclude=True)
    task: str
    seed: int
    data: dict[str, Any]
    training: dict[str, Any]
    deepspeed: DeepSpeedSpec


class BuccProtocol(_Config):
    pairs: Literal["mining", "gold_only"]
    duplicates: Literal["drop", "all"]


class EvaluateConfig(_Config):
    kind: Literal["evaluate"] = Field("evaluate", exclude=True)
    task: str
    languages: list[str]
    data: dict[str, Any]
    max_length: int
    doc_stride: int
    max_eval_examples: int | None
    retrieval_layer: int | None
    perturbations: list[dict[str, Any]] | None = None  # robustness: perturbed evaluation data
    direction: Literal["en-xx", "xx-en"] | None = None  # Tatoeba
    bucc: BuccProtocol | None = None


class AnalysisConfig(_Config):
    kind: Literal["analysis"] = Field("analysis", exclude=True)
    task: Literal["domain-alignment"]
    intermediate_tasks: list[str]
    targets: list[str]
    data: dict[str, Any]
    max_examples: int
    # Optional: the analysis phases planned before these existed (stored specs) have none.
    seed: int | None = None
    same_corpus: Literal["flag", "exclude"] | None = None
    languages: dict[str, list[str]] | None = None
    retrieval_layer: int | None


class TaskembConfig(_Config):
    kind: Literal["taskemb"] = Field("taskemb", exclude=True)
    task: str
    data: dict[str, Any]
    retrieval_layer: int | None
    seed: int
    text_examples: int
    fisher_examples: int
    max_pool: int
    max_length: int
    doc_stride: int
    sketch_dim: int


PhaseConfig = Annotated[
    EncoderConfig
    | MLMConfig
    | IntermediateConfig
    | TargetConfig
    | EvaluateConfig
    | AnalysisConfig
    | TaskembConfig,
    Field(discriminator="kind"),
]
CONFIGS: dict[str, type[_Config]] = {
    model.model_fields["kind"].default: model
    for model in (
        EncoderConfig,
        MLMConfig,
        IntermediateConfig,
        TargetConfig,
        EvaluateConfig,
        AnalysisConfig,
        TaskembConfig,
    )
}
assert set(CONFIGS) == set(KINDS), "every phase kind has its config model"
_ADAPTER: TypeAdapter[Any] = TypeAdapter(PhaseConfig)


def parse_config(kind: str, config: dict[str, Any]) -> _Config:
    """The config of a phase of `kind` as its model (ValidationError when it does not fit)."""
    return _ADAPTER.validate_python({**config, "kind": kind})
