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


class IntermediateSpec(_Strict):
    """One intermediate setting: a single task, or a multi-task mixture with a shared encoder."""

    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.+-]*$", max_length=40)
    task: str | None = None
    tasks: list[str] | None = None
    sampling: Literal["proportional", "temperature", "uniform"] = "proportional"
    temperature: float = Field(2.0, gt=0)
    training: TrainingOverrides | None = None  # type: ignore[valid-type]

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

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks) if self.tasks else [self.task]  # type: ignore[list-item]


class DataSpec(_Strict):
    source: Literal["hub", "fixtures"] = "hub"
    fixtures_size: Literal["tiny", "small"] = "tiny"
    ccg_path: str | None = Field(None, description="CCGbank in jiant's TSV format (licensed; user-provided)")


class MLMSpec(_Strict):
    enabled: bool = False
    corpus: str | None = Field(None, description="text file, one example per line; fixtures when omitted")
    mask_probability: float = Field(0.15, gt=0, lt=1)
    training: TrainingOverrides | None = None  # type: ignore[valid-type]


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
    targets: list[str] = Field(min_length=1)
    languages: dict[str, list[str]] = Field(default_factory=dict, description="per-target language subsets")
    seeds: list[int] = Field(default_factory=lambda: [1], min_length=1)
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
    def _unique_names(self) -> Sweep:
        for label, names in (
            ("encoders", [e.name for e in self.encoders]),
            ("intermediate", [i.name for i in self.intermediate]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label} names must be unique; repeated: {', '.join(map(str, dupes))}")
        return self
