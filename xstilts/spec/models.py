"""The sweep file: pydantic models. `xstilts.spec.load` turns YAML into these with one-line errors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xstilts.render.settings import ClusterSettings, ResourcePreset
from xstilts.spec.training import TrainingOverrides


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TinyModelSpec(_Strict):
    """Shape of the offline tiny encoder (random init, XLM-R architecture)."""

    hidden_size: int = Field(64, ge=8)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(128, ge=8)
    vocab_size: int = Field(2000, ge=200)
    max_position_embeddings: int = Field(514, ge=64)
    init_seed: int = 0

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> TinyModelSpec:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        return self


class EncoderSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$", max_length=40)
    model: str = Field(description="'tiny' (offline random-init), a Hugging Face id, or a local path")
    revision: str | None = None
    retrieval_layer: int | None = Field(None, ge=0, description="hidden-states index for BUCC/Tatoeba")
    tiny: TinyModelSpec = Field(default_factory=TinyModelSpec)


PerturbationName = Literal["char_noise", "word_perturb", "code_switch", "code_mixed"]


class PerturbationSpec(_Strict):
    """A text perturbation (xstilts.augment): for augmenting intermediate training data, or for
    robustness evaluation beside the clean data."""

    name: PerturbationName
    rate: float = Field(0.1, ge=0, le=1)
    dictionary: str | None = Field(
        None,
        description="bilingual dictionary (MUSE format) for code_switch/code_mixed; '{lang}' stands for "
        "each language, a 'fixtures:' prefix for the fixtures root (xstilts.augment.dictionaries)",
    )
    languages: list[str] | None = Field(
        None, description="code_switch target languages (default: all in the file)"
    )
    seed: int = 0
    copies: int = Field(1, ge=1, le=8, description="augmentation only: perturbed copies per training example")

    @model_validator(mode="after")
    def _dictionary_when_needed(self) -> PerturbationSpec:
        if self.name in ("code_switch", "code_mixed") and not self.dictionary:
            raise ValueError(f"{self.name} needs a 'dictionary' (a MUSE-style file: word<TAB>translation)")
        return self

    @property
    def label(self) -> str:
        return f"{self.name}-{self.rate:g}"


class SubsetsSpec(_Strict):
    """Intermediate settings generated from a task pool: every k-subset, or `count` seeded random ones."""

    pool: list[str] = Field(min_length=2)
    k: int = Field(ge=1)
    count: int | None = Field(None, ge=1, description="random subsets instead of all of them")
    seed: int = 0
    sampling: Literal["proportional", "temperature", "uniform"] = "proportional"
    temperature: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _k_fits_pool(self) -> SubsetsSpec:
        if self.k > len(self.pool):
            raise ValueError(f"k={self.k} is larger than the pool ({len(self.pool)} tasks)")
        return self

    def subsets(self) -> list[list[str]]:
        import itertools
        import random

        every = [list(c) for c in itertools.combinations(self.pool, self.k)]
        if self.count is None or self.count >= len(every):
            return every
        return sorted(random.Random(self.seed).sample(every, self.count))


class IntermediateSpec(_Strict):
    """One intermediate setting: a single task, or a multi-task mixture with a shared encoder."""

    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.+-]*$", max_length=40)
    task: str | None = None
    tasks: list[str] | None = None
    sampling: Literal["proportional", "temperature", "uniform"] = "proportional"
    temperature: float = Field(2.0, gt=0)
    training: TrainingOverrides | None = None  # type: ignore[valid-type]
    augment: list[PerturbationSpec] = Field(
        default_factory=list, description="augmented copies of training text"
    )

    @model_validator(mode="after")
    def _one_of_task_or_tasks(self) -> IntermediateSpec:
        if (self.task is None) == (self.tasks is None):
            raise ValueError("give exactly one of 'task' (single task) or 'tasks' (a mixture)")
        if self.tasks is not None and len(self.tasks) < 2:
            raise ValueError("a mixture needs at least two tasks; use 'task' for one")
        if self.tasks is not None and self.name is None:
            self.name = "+".join(self.tasks)
        if self.name is None:
            self.name = self.task
        return self

    @model_validator(mode="after")
    def _augment_dictionaries_name_languages(self) -> IntermediateSpec:
        for spec in self.augment:
            if spec.dictionary and "{lang}" in spec.dictionary and not spec.languages:
                raise ValueError(
                    f"augment '{spec.name}': dictionary {spec.dictionary!r} has a {{lang}} placeholder; "
                    "list the languages to switch into in 'languages', e.g. de and es"
                )
        return self

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks) if self.tasks else [self.task]  # type: ignore[list-item]


class DataSpec(_Strict):
    source: Literal["hub", "fixtures"] = "hub"
    fixtures_size: Literal["tiny", "small"] = "tiny"
    ccg_path: str | None = Field(None, description="CCGbank in jiant's TSV format (licensed; user-provided)")
    mewsli_x_path: str | None = Field(
        None, description="Mewsli-X data from xtreme's get-mewsli-x.sh (not on the hub)"
    )


class MLMSpec(_Strict):
    enabled: bool = False
    corpus: str | None = Field(None, description="text file, one example per line; fixtures when omitted")
    mask_probability: float = Field(0.15, gt=0, lt=1)
    training: TrainingOverrides | None = None  # type: ignore[valid-type]


class AnalysisSpec(_Strict):
    domain_alignment: bool = Field(False, description="measure intermediate-target dataset closeness")
    max_examples: int = Field(2000, ge=10, description="examples per dataset for the alignment measures")


class DeepSpeedSpec(_Strict):
    enabled: bool = False
    stage: Literal[2, 3] = 2
    offload_optimizer: bool = False


class Sweep(_Strict):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=40)
    description: str = ""
    store: str | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    encoders: list[EncoderSpec] = Field(min_length=1)
    baseline: bool = True
    mlm: MLMSpec = Field(default_factory=MLMSpec)
    intermediate: list[IntermediateSpec] = Field(default_factory=list)
    intermediate_subsets: list[SubsetsSpec] = Field(default_factory=list, description="generated mixtures")
    targets: list[str] = Field(min_length=1)
    languages: dict[str, list[str]] = Field(default_factory=dict, description="per-target language subsets")
    seeds: list[int] = Field(default_factory=lambda: [1], min_length=1)
    robustness: list[PerturbationSpec] = Field(default_factory=list, description="perturbed evaluation data")
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    training: TrainingOverrides | None = None  # type: ignore[valid-type]
    intermediate_training: TrainingOverrides | None = None  # type: ignore[valid-type]
    target_training: TrainingOverrides | None = None  # type: ignore[valid-type]
    task_training: dict[str, TrainingOverrides] = Field(default_factory=dict)  # type: ignore[valid-type]
    resources: dict[Literal["encoder", "mlm", "intermediate", "target", "evaluate"], ResourcePreset] = Field(
        default_factory=dict
    )
    deepspeed: DeepSpeedSpec = Field(default_factory=DeepSpeedSpec)
    kubernetes: dict[str, Any] = Field(default_factory=dict, description="ClusterSettings overrides")

    @field_validator("kubernetes")
    @classmethod
    def _valid_cluster_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        ClusterSettings.model_validate(value)
        return value

    @model_validator(mode="after")
    def _expand_subsets(self) -> Sweep:
        for spec in self.intermediate_subsets:
            for subset in spec.subsets():
                name = "+".join(subset)
                if len(name) > 40:
                    import hashlib

                    name = f"k{len(subset)}-" + hashlib.sha256(name.encode()).hexdigest()[:8]
                if any(i.name == name for i in self.intermediate):
                    continue
                entry = {"task": subset[0]} if len(subset) == 1 else {"tasks": subset}
                self.intermediate.append(
                    IntermediateSpec(name=name, sampling=spec.sampling, temperature=spec.temperature, **entry)
                )
        self.intermediate_subsets = []
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> Sweep:
        for label, names in (
            ("encoders", [e.name for e in self.encoders]),
            ("intermediate", [i.name for i in self.intermediate]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label} names must be unique; repeated: {', '.join(map(str, dupes))}")
        return self
