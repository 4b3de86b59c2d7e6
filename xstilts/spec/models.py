"""The sweep file: pydantic models. `xstilts.spec.load` turns YAML into these with one-line errors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xstilts.spec.cluster import ClusterSettings, ResourcePreset
from xstilts.spec.kinds import PHASE_PRESETS
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


PerturbationName = Literal[
    "char_noise", "word_perturb", "code_switch", "code_mixed", "code_mixed_adversarial"
]


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
    seeds: list[int] | None = Field(
        None,
        min_length=1,
        description="robustness only: perturb with each of these seeds (instead of `seed`); the report gives "
        "the gap's mean and interval over them",
    )
    budget: int = Field(
        3, ge=1, le=32, description="code_mixed_adversarial: substitutions per example at most"
    )
    candidates: int = Field(
        16, ge=1, le=256, description="code_mixed_adversarial: substitutions tried per example and step"
    )
    copies: int = Field(1, ge=1, le=8, description="augmentation only: perturbed copies per training example")
    mode: Literal["resample", "copies"] | None = Field(
        None,
        description="augmentation only: resample (CoSDA-ML: the perturbation is drawn anew on every pass "
        "over the data, replacing the example; code-switching's default) or copies (`copies` fixed "
        "perturbed copies beside the originals; the default of the other perturbations)",
    )
    sentence_rate: float = Field(
        1.0, ge=0, le=1, description="augmentation only: the share of texts perturbed at all (CoSDA-ML)"
    )

    @model_validator(mode="after")
    def _dictionary_when_needed(self) -> PerturbationSpec:
        if self.name in ("code_switch", "code_mixed", "code_mixed_adversarial") and not self.dictionary:
            raise ValueError(f"{self.name} needs a 'dictionary' (a MUSE-style file: word<TAB>translation)")
        return self

    @property
    def label(self) -> str:
        if self.name == "code_mixed_adversarial":
            return f"{self.name}-b{self.budget}"
        return f"{self.name}-{self.rate:g}"

    def evaluation_config(self) -> dict[str, Any]:
        """What a robustness evaluation reads of the spec (no augmentation fields, none left at a
        default that did not exist before, so that existing evaluate phases keep their addresses)."""
        config = self.model_dump(exclude={"copies", "mode", "sentence_rate", "seeds", "budget", "candidates"})
        if self.seeds is not None:
            config["seeds"] = list(self.seeds)
        if self.name == "code_mixed_adversarial":
            config.update(budget=self.budget, candidates=self.candidates)
        return config


class SubsetsSpec(_Strict):
    """Intermediate settings generated from a task pool: every k-subset, or `count` seeded random ones."""

    pool: list[str] = Field(min_length=2)
    k: int = Field(ge=1)
    count: int | None = Field(None, ge=1, description="random subsets instead of all of them")
    seed: int = 0
    sampling: Literal["proportional", "temperature", "uniform"] = "proportional"
    temperature: float = Field(2.0, gt=0)
    examples_cap: int | None = Field(None, gt=0, description="mixtures: jiant's examples_cap per task")
    total_steps: int | None = Field(
        None,
        gt=0,
        description="every generated setting trains exactly this many optimizer steps, so subsets of "
        "different sizes get the same number of updates ('more tasks' is not 'more steps')",
    )

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
    examples_cap: int | None = Field(
        None,
        gt=0,
        description="mixtures: a task's size counts as at most this many examples in the sampling weights "
        "(jiant's examples_cap)",
    )
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
            if spec.name == "code_mixed_adversarial":
                raise ValueError("code_mixed_adversarial is an evaluation (it searches against a model); "
                                 "augment with code_switch instead")  # fmt: skip
            if spec.dictionary and "{lang}" in spec.dictionary and not spec.languages:
                raise ValueError(
                    f"augment '{spec.name}': dictionary {spec.dictionary!r} has a {{lang}} placeholder; "
                    "list the languages to switch into in 'languages', e.g. de and es"
                )
        return self

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks) if self.tasks else [self.task]  # type: ignore[list-item]

    @property
    def uses_mlm(self) -> bool:
        return "mlm" in self.task_names


class DataSpec(_Strict):
    source: Literal["hub", "fixtures"] = "hub"
    fixtures_size: Literal["tiny", "small"] = "tiny"
    ccg_path: str | None = Field(None, description="CCGbank in jiant's TSV format (licensed; user-provided)")
    bucc_path: str | None = Field(
        None,
        description="the BUCC 2018 files (<xx>-en/<xx>-en.{sample,training}.{xx,en,gold}); without them "
        "BUCC mines the hub's gold pairs only and is labelled bucc_f1_gold_only",
    )
    mewsli_x_path: str | None = Field(
        None, description="Mewsli-X data from xtreme's get-mewsli-x.sh (not on the hub)"
    )


class MLMSpec(_Strict):
    """Multilingual MLM: `enabled` adds an MLM phase before every intermediate setting (the baseline stays
    MLM-free); listing `mlm` among an intermediate mixture's tasks trains it alongside them instead.
    Both read `corpus`, which hub sweeps must give."""

    enabled: bool = False
    corpus: str | None = Field(None, description="text file, one example per line; fixtures when omitted")
    mask_probability: float = Field(0.15, gt=0, lt=1)
    training: TrainingOverrides | None = None  # type: ignore[valid-type]


class TatoebaSpec(_Strict):
    direction: Literal["en-xx", "xx-en"] = Field(
        "en-xx",
        description="en-xx (XTREME): the foreign sentences are indexed and each English sentence "
        "queries them; xx-en: each foreign sentence queries the English ones (LASER, jiant)",
    )


class BuccSpec(_Strict):
    duplicates: Literal["drop", "all"] = Field(
        "drop",
        description="drop (XTREME's read_sent2id): pairs with a sentence that repeats on its side are "
        "discarded; all: a repeated sentence maps to every id carrying it (jiant)",
    )
    pairs: Literal["auto", "mining", "gold_only"] = Field(
        "auto",
        description="mining: every sentence of the BUCC files (fixtures, or data.bucc_path); gold_only: the "
        "hub's gold pairs, scored as bucc_f1_gold_only; auto: mining when the files are available",
    )


class EvaluationSpec(_Strict):
    """Protocol options of the official evaluation (defaults: XTREME's)."""

    tatoeba: TatoebaSpec = Field(default_factory=TatoebaSpec)
    bucc: BuccSpec = Field(default_factory=BuccSpec)


class AnalysisSpec(_Strict):
    domain_alignment: bool = Field(False, description="measure intermediate-target dataset closeness")
    max_examples: int = Field(2000, ge=10, description="examples per dataset for the alignment measures")
    seed: int = Field(0, description="the seed of the random samples the measures read")
    difficulty_probe: bool = Field(
        False,
        description="measure each intermediate task's difficulty: the baseline encoder's English dev score "
        "after `probe_steps` optimizer steps on the task (difficulty = 100 - that score)",
    )
    probe_steps: int = Field(50, ge=1, description="the fixed training budget of the difficulty probe")
    same_corpus: Literal["flag", "exclude"] = Field(
        "flag",
        description="pairs whose intermediate and target data are one corpus (mnli/xnli, squad/xquad/mlqa): "
        "flag them (shown, left out of the correlations) or exclude them from the analysis",
    )


class ControlsSpec(_Strict):
    """Controls that keep a comparison about what it compares (docs/research-methods.md)."""

    size_match: Literal["smallest"] | int | None = Field(
        None,
        description="cap every intermediate task's training set: 'smallest' (the size of the sweep's "
        "smallest intermediate task) or a number of examples; a seeded random sample",
    )
    match_steps: bool = Field(
        True,
        description="augmented settings train as many optimizer steps as their plain counterpart",
    )

    @field_validator("size_match")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError("size_match must be 'smallest' or a positive number of examples")
        return value


class SearchSpec(_Strict):
    """Budget-aware search over the intermediate axis (xstilts.plan.search): successive halving. Rung r trains
    every surviving intermediate setting for the first `budget_fraction * eta**r` of its full run (the
    last rung: all of it), fine-tunes its targets and scores them on the English dev data; the best
    1/eta per target go on, continuing from their checkpoints."""

    strategy: Literal["successive_halving"] = "successive_halving"
    budget_fraction: float = Field(1 / 9, gt=0, lt=1, description="the first rung's share of the full run")
    eta: int = Field(3, ge=2, description="keep the best 1/eta of the settings at each rung")
    rungs: int | None = Field(
        None, ge=2, le=8, description="rungs, the full run included (default: until the budget reaches 1)"
    )
    target_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="share of each target fine-tuning run for rung decisions (default: the rung share)",
    )

    def fractions(self) -> list[float]:
        """Each rung's share of the full run; the last is 1."""
        import math

        # A share within 1 % of the full run is the full run (1/9 written 0.1111 reaches 0.9999).
        near_full = 0.99
        count = self.rungs or max(2, 1 + math.ceil(math.log(near_full / self.budget_fraction, self.eta)))
        shares = [min(1.0, self.budget_fraction * self.eta**r) for r in range(count - 1)]
        shares = [round(f, 6) for f in shares if f < near_full]
        return [*dict.fromkeys(shares), 1.0]


class DeepSpeedSpec(_Strict):
    enabled: bool = False
    stage: Literal[2, 3] = 2
    offload_optimizer: bool = False


class Sweep(_Strict):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=40)
    description: str = ""
    store: str | None = None
    benchmark: Literal["xtreme", "xtreme-r", "custom"] = Field(
        "xtreme",
        description="the benchmark whose tasks and languages the sweep evaluates and averages: xtreme "
        "(Hu et al. 2020) or xtreme-r (Ruder et al. 2021); custom: targets from both, each in all its "
        "registered languages (its averages are not a benchmark score)",
    )
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
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    controls: ControlsSpec = Field(default_factory=ControlsSpec)
    training: TrainingOverrides | None = None  # type: ignore[valid-type]
    intermediate_training: TrainingOverrides | None = None  # type: ignore[valid-type]
    target_training: TrainingOverrides | None = None  # type: ignore[valid-type]
    task_training: dict[str, TrainingOverrides] = Field(default_factory=dict)  # type: ignore[valid-type]
    # Keyed by resource preset (spec/kinds.py: the analysis phase takes the evaluate phases' preset).
    resources: dict[Literal[PHASE_PRESETS], ResourcePreset] = Field(  # type: ignore[valid-type]
        default_factory=dict
    )
    deepspeed: DeepSpeedSpec = Field(default_factory=DeepSpeedSpec)
    search: SearchSpec | None = Field(None, description="successive halving on the intermediate axis")
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
                entry: dict[str, Any] = {"task": subset[0]} if len(subset) == 1 else {"tasks": subset}
                if spec.total_steps is not None:
                    entry["training"] = {"total_steps": spec.total_steps}
                self.intermediate.append(
                    IntermediateSpec(
                        name=name,
                        sampling=spec.sampling,
                        temperature=spec.temperature,
                        examples_cap=spec.examples_cap,
                        **entry,
                    )  # fmt: skip
                )
        self.intermediate_subsets = []
        return self

    @property
    def uses_mlm(self) -> bool:
        """MLM as a phase or as a task in some intermediate mixture."""
        return self.mlm.enabled or any(spec.uses_mlm for spec in self.intermediate)

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
