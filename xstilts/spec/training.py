"""Hyperparameters of a training phase, and how defaults and overrides resolve."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model


class TrainingConfig(BaseModel):
    """Resolved hyperparameters of one training phase (defaults: DESIGN.md section 4, jiant)."""

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
    max_train_examples: int | None = Field(None, gt=0)
    max_dev_examples: int | None = Field(500, gt=0, description="dev subset for model selection (jiant: 500)")
    max_eval_examples: int | None = Field(None, gt=0, description="per-language cap in evaluation")
    sampling: Literal["proportional", "temperature", "uniform"] = "proportional"
    temperature: float = Field(2.0, gt=0)
    batching: Literal["split", "grouped", "random"] = Field(
        "split",
        description="split: random batches, each cut by length into its micro-batches (the random batch's "
        "gradient, with little padding); grouped: batches of similar lengths (least padding, but they train "
        "differently); random: random batches padded to their longest (jiant, the Trainer's default)",
    )
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    compile: bool = False
    gradient_checkpointing: bool = False
    adversarial: Literal["none", "r3f", "freelb"] = "none"
    adversarial_weight: float = Field(1.0, ge=0)


def _optional(annotation: Any, metadata: list[Any]) -> Any:
    """The same type and constraints (gt, ge, ...), or None."""
    return (Annotated[(annotation, *metadata)] if metadata else annotation) | None


# Partial overrides: the same fields, all optional, unknown keys rejected.
TrainingOverrides = create_model(  # type: ignore[call-overload]
    "TrainingOverrides",
    __config__=ConfigDict(extra="forbid"),
    **{name: (_optional(f.annotation, f.metadata), None) for name, f in TrainingConfig.model_fields.items()},
)


def resolve_training(*layers: dict[str, Any] | BaseModel | None) -> TrainingConfig:
    """Merge override layers left to right (later wins) over the defaults; only set fields count."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        if isinstance(layer, BaseModel):
            layer = layer.model_dump(exclude_none=True)
        merged.update({k: v for k, v in layer.items() if v is not None})
    return TrainingConfig.model_validate(merged)
