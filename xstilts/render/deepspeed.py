"""DeepSpeed from a sweep's `deepspeed:` block: the JSON config and the `accelerate launch` flags.

Both describe the same thing as the `DeepSpeedPlugin` the training loop builds from the phase's
`config["deepspeed"]` (enabled / stage / offload_optimizer): ZeRO stage and optimizer offload are
explicit, while batch sizes, accumulation, clipping and precision stay "auto" for Accelerate to fill
from the training arguments. The chart's `files/accelerate/deepspeed-zero{2,3}.json` are this config
without offload (tests keep them in step).
"""

from __future__ import annotations

from typing import Any

from xstilts.spec.models import DeepSpeedSpec


def as_spec(block: DeepSpeedSpec | dict[str, Any] | None) -> DeepSpeedSpec:
    if isinstance(block, DeepSpeedSpec):
        return block
    return DeepSpeedSpec.model_validate(block or {})


def deepspeed_config(block: DeepSpeedSpec | dict[str, Any] | None) -> dict[str, Any]:
    """The DeepSpeed JSON config (ZeRO-2 by default, ZeRO-3 on request, optional CPU optimizer offload)."""
    spec = as_spec(block)
    zero: dict[str, Any]
    if spec.stage == 3:
        zero = {
            "stage": 3,
            "overlap_comm": True,
            "contiguous_gradients": True,
            "sub_group_size": 1_000_000_000,
            "reduce_bucket_size": "auto",
            "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            "stage3_max_live_parameters": 1_000_000_000,
            "stage3_max_reuse_distance": 1_000_000_000,
            # save_pretrained needs the full weights gathered on rank 0.
            "stage3_gather_16bit_weights_on_model_save": True,
        }
    else:
        zero = {
            "stage": 2,
            "allgather_partitions": True,
            "allgather_bucket_size": 200_000_000,
            "overlap_comm": True,
            "reduce_scatter": True,
            "reduce_bucket_size": "auto",
            "contiguous_gradients": True,
        }
    if spec.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    return {
        "bf16": {"enabled": "auto"},
        "fp16": {
            "enabled": "auto",
            "loss_scale": 0,
            "loss_scale_window": 1000,
            "initial_scale_power": 16,
            "hysteresis": 2,
            "min_loss_scale": 1,
        },
        "zero_optimization": zero,
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "steps_per_print": 2000,
        "wall_clock_breakdown": False,
    }


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
