"""Options of the embedding-space adversarial training methods (`TrainingConfig.adversarial`), with
their papers' defaults; docs/research-methods.md gives the formulas and sources."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class R3FOptions(BaseModel):
    """R3F (Aghajanyan et al. 2020; fairseq's defaults). Its weight is `adversarial_weight` (lambda)."""

    model_config = ConfigDict(extra="forbid")

    eps: float = Field(1e-5, ge=0, description="noise scale: U(-eps, eps), or N(0, eps^2) for normal")
    noise: Literal["uniform", "normal"] = "uniform"


class FreeLBOptions(BaseModel):
    """FreeLB (Zhu et al. 2020; the reference implementation's MNLI settings). Its loss replaces the task
    loss, so it takes no `adversarial_weight`."""

    model_config = ConfigDict(extra="forbid")

    adv_steps: int = Field(2, ge=1, le=32, description="K: ascent steps, each a forward and backward pass")
    adv_lr: float = Field(0.1, ge=0, description="ascent step size (alpha)")
    adv_init_mag: float = Field(0.1, ge=0, description="magnitude of the random start delta_0")
    max_norm: float = Field(0.3, ge=0, description="norm bound (epsilon) per example; 0: unbounded")
    norm: Literal["l2", "linf"] = "l2"
    same_dropout: bool = Field(True, description="one dropout mask for all K passes, as the paper does")


class SmartOptions(BaseModel):
    """SMART (Jiang et al. 2020; the paper's settings). Its smoothness weight lambda_s is
    `adversarial_weight`."""

    model_config = ConfigDict(extra="forbid")

    adv_steps: int = Field(1, ge=1, le=32, description="T_x: projected ascent steps on the perturbation")
    step_size: float = Field(1e-3, ge=0, description="eta: ascent step size")
    eps: float = Field(1e-5, gt=0, description="epsilon: perturbation bound")
    noise_std: float = Field(1e-5, ge=0, description="sigma: standard deviation of the random start")
    norm: Literal["linf", "l2"] = "linf"
    mu: float = Field(1.0, ge=0, description="weight of the Bregman proximal term; 0: no teacher")
    beta: float = Field(0.99, ge=0, le=1, description="teacher momentum for the first beta_switch of steps")
    beta_late: float = Field(0.999, ge=0, le=1, description="teacher momentum afterwards")
    beta_switch: float = Field(0.1, ge=0, le=1, description="fraction of optimizer steps that use beta")


# The option block of each adversarial method (a TrainingConfig field named like the method).
ADVERSARIAL_OPTIONS: dict[str, type[BaseModel]] = {
    "r3f": R3FOptions,
    "freelb": FreeLBOptions,
    "smart": SmartOptions,
}
