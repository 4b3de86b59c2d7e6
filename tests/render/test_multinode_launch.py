"""The rendered multi-node launch command really forms one process group: the two pods of an Indexed
Job are played by two local `accelerate launch` processes with the args as rendered, after what
Kubernetes and DNS would do ($(NODE_RANK) -> the completion index, `<job>-0.<service>` -> 127.0.0.1).
CPU only (gloo), so the phase itself is replaced by a probe that all-reduces the ranks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import example_config
from xstilts.plan.phase import Phase
from xstilts.render.dump import to_dict
from xstilts.render.job import render_phase
from xstilts.render.names import store_id
from xstilts.spec.cluster import ClusterSettings, ResourcePreset

# torch.distributed's env:// init reads what the launcher's torchrun set (RANK, WORLD_SIZE, MASTER_*).
PROBE = """
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
print(f"rank {dist.get_rank()} of {dist.get_world_size()}: sum {value.item():.0f}", flush=True)
# Both ranks alive while the group is torn down: a rank leaving first can leave the other's exit hanging.
dist.barrier()
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_pods_rendezvous_with_the_rendered_args(tmp_path: Path) -> None:
    phase = Phase(
        kind="target",
        address="0123456789ab",
        label="xnli",
        config=example_config("target"),
        resources=ResourcePreset(gpu=0, nodes=2),
    )
    job = to_dict(render_phase(phase, "s", "s3://b/r", ClusterSettings())[0])
    assert job["metadata"]["name"] == f"xst-target-0123456789ab-{store_id('s3://b/r')}"
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert container["command"] == ["accelerate"] and env["ACCELERATE_USE_CPU"] == "1"
    args = container["args"][1:]  # after "launch"
    args = args[: args.index("-m")] + ["-m", "probe"]  # the probe instead of `xstilts phase run`
    (tmp_path / "probe.py").write_text(PROBE)
    port = str(free_port())
    pods = []
    for index in ("0", "1"):
        pod_args = [a.replace("$(NODE_RANK)", index) for a in args]
        assert (
            pod_args[pod_args.index("--main_process_ip") + 1]
            == f"{job['metadata']['name']}-0.{job['metadata']['name']}"
        )
        pod_args[pod_args.index("--main_process_ip") + 1] = "127.0.0.1"
        pod_args[pod_args.index("--main_process_port") + 1] = port
        pod_env = {**os.environ, **env, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
        pods.append(
            subprocess.Popen(
                [sys.executable, "-m", "accelerate.commands.launch", *pod_args],
                cwd=tmp_path,
                env=pod_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for pod in pods:
            outputs.append(pod.communicate(timeout=180)[0])
    finally:
        for pod in pods:
            if pod.poll() is None:
                pod.kill()
                pod.wait()
    for index, (pod, output) in enumerate(zip(pods, outputs, strict=True)):
        assert pod.returncode == 0, output[-3000:]
        assert f"rank {index} of 2: sum 3" in output, output[-3000:]
