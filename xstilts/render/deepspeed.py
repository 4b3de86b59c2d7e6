"""DeepSpeed from a sweep's `deepspeed:` block: the `accelerate launch` flags.

They describe the same thing as the `DeepSpeedPlugin` the training loop builds from the phase's
`config["deepspeed"]` (enabled / stage / offload_optimizer): ZeRO stage and optimizer offload are
explicit, while batch sizes, accumulation, clipping and precision are left for Accelerate to fill from
the training arguments.
"""

from __future__ import annotations

from typing import Any

from xstilts.spec.models import DeepSpeedSpec


def as_spec(block: DeepSpeedSpec | dict[str, Any] | None) -> DeepSpeedSpec:
    if isinstance(block, DeepSpeedSpec):
        return block
    return DeepSpeedSpec.model_validate(block or {})


def launch_flags(block: DeepSpeedSpec | dict[str, Any] | None, nodes: int = 1) -> list[str]:
    """`accelerate launch` flags for DeepSpeed (checked against accelerate 1.x `commands/launch.py`).

    They become ACCELERATE_DEEPSPEED_* variables that agree with the plugin the training loop passes
    explicitly. `--zero3_init_flag false`: models are built before the Accelerator exists, so
    `deepspeed.zero.Init` would not apply anyway. `--deepspeed_multinode_launcher standard` runs
    torchrun in every pod; accelerate's default (pdsh) would try to ssh into the other nodes.
    """
    spec = as_spec(block)
    flags = [
        "--use_deepspeed",
        "--zero_stage",
        str(spec.stage),
        "--offload_optimizer_device",
        "cpu" if spec.offload_optimizer else "none",
    ]
    if spec.stage == 3:
        flags += ["--zero3_init_flag", "false", "--zero3_save_16bit_model", "true"]
    if nodes > 1:
        flags += ["--deepspeed_multinode_launcher", "standard"]
    return flags
