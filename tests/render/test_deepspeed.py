"""DeepSpeed: the JSON config matches the chart's files and Accelerate's plugin reads it as meant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xstilts.render.deepspeed import deepspeed_config, launch_flags

CHART_FILES = Path(__file__).resolve().parents[2] / "charts" / "xstilts" / "files" / "accelerate"


@pytest.mark.parametrize("stage", [2, 3])
def test_config_without_offload_is_the_charts(stage: int) -> None:
    chart = json.loads((CHART_FILES / f"deepspeed-zero{stage}.json").read_text())
    assert deepspeed_config({"enabled": True, "stage": stage}) == chart


def test_defaults_offload_and_auto_values() -> None:
    default = deepspeed_config(None)
    assert (
        default["zero_optimization"]["stage"] == 2 and "offload_optimizer" not in default["zero_optimization"]
    )
    assert default["bf16"] == {"enabled": "auto"}
    for key in (
        "train_batch_size",
        "train_micro_batch_size_per_gpu",
        "gradient_accumulation_steps",
        "gradient_clipping",
    ):
        assert default[key] == "auto"
    offload = deepspeed_config({"enabled": True, "stage": 3, "offload_optimizer": True})
    assert offload["zero_optimization"]["offload_optimizer"] == {"device": "cpu", "pin_memory": True}
    assert offload["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_launch_flags() -> None:
    assert launch_flags({"enabled": True}) == [
        "--use_deepspeed",
        "--zero_stage",
        "2",
        "--offload_optimizer_device",
        "none",
    ]
    flags = launch_flags({"enabled": True, "stage": 3, "offload_optimizer": True}, nodes=2)
    assert flags[flags.index("--zero_stage") + 1] == "3"
    assert flags[flags.index("--offload_optimizer_device") + 1] == "cpu"
    assert flags[flags.index("--zero3_save_16bit_model") + 1] == "true"
    assert flags[flags.index("--deepspeed_multinode_launcher") + 1] == "standard"


@pytest.mark.parametrize(
    "block", [{"enabled": True}, {"enabled": True, "stage": 3, "offload_optimizer": True}]
)
def test_accelerate_plugin_reads_the_config(block: dict) -> None:
    from accelerate.utils import DeepSpeedPlugin

    plugin = DeepSpeedPlugin(
        hf_ds_config=deepspeed_config(block), gradient_accumulation_steps=4, gradient_clipping=1.0
    )
    assert plugin.zero_stage == block.get("stage", 2)
    assert plugin.offload_optimizer_device == ("cpu" if block.get("offload_optimizer") else "none")
    assert plugin.deepspeed_config["gradient_accumulation_steps"] == 4
    assert plugin.deepspeed_config["gradient_clipping"] == 1.0
