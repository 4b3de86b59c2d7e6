"""Hyperparameters of a training phase, and how defaults and overrides resolve."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_serializer,
)

from xstilts.errors import ConfigError
from xstilts.spec.adversarial import ADVERSARIAL_OPTIONS, FreeLBOptions, R3FOptions, SmartOptions


class TrainingConfig(BaseModel):
    """Resolved hyperparameters of one training phase (defaults: docs/defaults.md, after jiant)."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(1e-5, gt=0)
    epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps")
    batch_size: int = Field(32, gt=0, description="effective batch size (all processes, accumulation)")
    per_device_batch_size: int | None = Field(
        None, gt=0, description="micro-batch; accumulation fills the rest (split: a quarter of the batch)"
    )
    max_length: int = Field(256, ge=16)
    doc_stride: int = Field(128, ge=8)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.01, ge=0)
    adam_epsilon: float = Field(1e-8, gt=0)
    max_grad_norm: float = Field(1.0, gt=0)
    checkpoint_every: int = Field(
        1000, gt=0, description="optimizer steps between checkpoints and dev evaluations"
    )
    select_best: bool = Field(True, description="keep the checkpoint with the best English dev score")
    max_train_examples: int | None = Field(
        None, gt=0, description="cap per training set: a seeded random sample of this many rows"
    )
    train_sample_seed: int = Field(0, description="the seed of the max_train_examples sample")
    total_steps: int | None = Field(
        None, gt=0, description="exactly this many optimizer steps, however many epochs they take"
    )
    max_dev_examples: int | None = Field(500, gt=0, description="dev subset for model selection (jiant: 500)")
    max_eval_examples: int | None = Field(None, gt=0, description="per-language cap in evaluation")
    sampling: Literal["proportional", "temperature", "uniform"] = "proportional"
    temperature: float = Field(2.0, gt=0)
    examples_cap: int | None = Field(
        None,
        gt=0,
        description="mixtures: a task's size counts as at most this many examples in the sampling weights "
        "(jiant's examples_cap, T5's examples-proportional mixing limit K)",
    )
    batching: Literal["split", "grouped", "random"] = Field(
        "split",
        description="split: random batches, each cut by length into its micro-batches (the random batch's "
        "gradient, with little padding); grouped: batches of similar lengths (least padding, but they train "
        "differently); random: random batches padded to their longest (jiant, the Trainer's default)",
    )
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    compile: bool = False
    gradient_checkpointing: bool = False
    adversarial: Literal["none", "r3f", "freelb", "smart"] = "none"
    adversarial_weight: float = Field(1.0, ge=0, description="R3F's lambda, SMART's lambda_s")
    r3f: R3FOptions = Field(default_factory=R3FOptions)
    freelb: FreeLBOptions = Field(default_factory=FreeLBOptions)
    smart: SmartOptions = Field(default_factory=SmartOptions)

    @field_validator("adversarial_weight")
    @classmethod
    def _freelb_has_no_weight(cls, weight: float, info: ValidationInfo) -> float:
        if info.data.get("adversarial") == "freelb" and weight != 1.0:
            raise ValueError(
                f"FreeLB's adversarial loss replaces the task loss, so it takes no weight (got {weight})"
            )
        return weight

    @model_serializer(mode="wrap")
    def _only_the_used_options(self, handler: Any) -> dict[str, Any]:
        """The option block of the selected method only: a phase's content address covers what it
        trains with, and phases without adversarial training keep the addresses they had before."""
        data = handler(self)
        for kind in ADVERSARIAL_OPTIONS:
            if kind != self.adversarial:
                data.pop(kind, None)
        # Controls added later appear only when they change something, for the same reason.
        for key in ("total_steps", "examples_cap"):
            if data.get(key) is None:
                data.pop(key, None)
        if self.max_train_examples is None:
            data.pop("train_sample_seed", None)
        return data

    @property
    def adversarial_options(self) -> BaseModel | None:
        """The option block of the selected adversarial method (None for `none`)."""
        return getattr(self, self.adversarial) if self.adversarial in ADVERSARIAL_OPTIONS else None


def _optional(annotation: Any, metadata: list[Any]) -> Any:
    """The same type and constraints (gt, ge, ...), or None; an option block becomes a partial one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _partial(annotation) | None
    return (Annotated[(annotation, *metadata)] if metadata else annotation) | None


def _partial(model: type[BaseModel]) -> Any:
    """Partial overrides: the same fields, all optional, unknown keys rejected."""
    return create_model(  # type: ignore[call-overload]
        model.__name__.removesuffix("Config") + "Overrides",
        __config__=ConfigDict(extra="forbid"),
        **{name: (_optional(f.annotation, f.metadata), None) for name, f in model.model_fields.items()},
    )


TrainingOverrides = _partial(TrainingConfig)


def resolve_training(*layers: dict[str, Any] | BaseModel | None) -> TrainingConfig:
    """Merge override layers left to right (later wins) over the defaults; only set fields count, and
    an option block (`freelb: {adv_steps: 3}`) merges key by key with the blocks of earlier layers.
    A combination no single layer shows as wrong raises ConfigError naming the field."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        if isinstance(layer, BaseModel):
            layer = layer.model_dump(exclude_none=True)
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **{k: v for k, v in value.items() if v is not None}}
            elif value is not None:
                merged[key] = value
    try:
        return TrainingConfig.model_validate(merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in ("training", *error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        fix = (
            "set it to 1.0 or remove it" if field == "training.adversarial_weight" else "change this setting"
        )
        raise ConfigError(message, field=field, fix=fix) from None
