"""DeepSpeed: the `accelerate launch` flags of a sweep's `deepspeed:` block."""

from __future__ import annotations

from xstilts.render.deepspeed import launch_flags


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
