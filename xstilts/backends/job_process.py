"""A rendered Job as a local process: its container's command, args and env, with the pod's volume
mounts mapped to directories of this machine. Pure, like accelerate's `prepare_*_env` builders: the
Job manifest and the host's paths in, the argv and environment out; the local backend creates the
directories and starts the process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Whatever the Job says, a local phase has no image, and it takes its locks in the backend's directory.
DROPPED_ENV = ("XSTILTS_IMAGE",)


@dataclass(frozen=True)
class HostPaths:
    """Where this machine keeps what a cluster mounts into a phase's pod."""

    work_dir: Path  # the local backend's directory: per-Job scratch volumes, locks
    cache: Path  # the `cache` volume: xstilts' feature and model cache
    hf_home: Path  # the `hf-cache` volume: the Hugging Face cache
    shm: Path = Path("/dev/shm")  # the `dshm` volume

    @classmethod
    def from_environment(cls, work_dir: Path, environ: Mapping[str, str]) -> HostPaths:
        """The caches a phase run by hand would use (XSTILTS_CACHE, HF_HOME, else under ~/.cache)."""
        home = Path.home() / ".cache"
        return cls(
            work_dir=Path(work_dir),
            cache=Path(environ.get("XSTILTS_CACHE", home / "xstilts")),
            hf_home=Path(environ.get("HF_HOME", home / "huggingface")),
        )

    def volume(self, job_name: str, volume: str) -> Path:
        shared = {"cache": self.cache, "hf-cache": self.hf_home, "dshm": self.shm}
        return shared.get(volume) or self.work_dir / "volumes" / job_name / volume

    @property
    def locks(self) -> Path:
        return self.work_dir / "locks"


@dataclass(frozen=True)
class JobProcess:
    """How to start a Job's container here."""

    argv: list[str]
    env: dict[str, str]
    directories: tuple[Path, ...]  # host directories of the pod's volume mounts, to exist before the start


def job_process(
    job: Mapping[str, Any],
    hosts: HostPaths,
    environ: Mapping[str, str],
    threads: Mapping[str, str],
    python: str,
) -> JobProcess:
    """The process that runs `job` (a Job manifest as a dict) on this machine.

    The env is `environ` (credentials, as `envFrom: secretRef` gives a pod), then the container's
    literal values with container paths rewritten to host paths (the longest mount first), then the
    backend's lock directory; `threads` (the math libraries' thread counts) fill in what neither set.
    Data volumes are not mapped: the sweep's data paths are this machine's own. `xstilts ...` and
    `accelerate launch ...` run under `python`, the interpreter of this xstilts."""
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    mounts: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        if mount["name"].startswith("data-"):
            continue
        mounts[mount["mountPath"]] = str(hosts.volume(job["metadata"]["name"], mount["name"]))
    longest_first = sorted(mounts.items(), key=lambda kv: -len(kv[0]))
    env = dict(environ)
    for var in container.get("env", []):
        if "value" in var:  # valueFrom (the pod's own fields) means nothing outside a pod
            env[var["name"]] = _host_value(var["value"], longest_first)
    for name in DROPPED_ENV:
        env.pop(name, None)
    env["XSTILTS_LOCK_DIR"] = str(hosts.locks)
    for name, value in threads.items():
        env.setdefault(name, value)
    argv = [*container.get("command", []), *container.get("args", [])]
    if argv and argv[0] == "xstilts":
        argv = [python, "-m", "xstilts", *argv[1:]]
    elif argv and argv[0] == "accelerate":  # `accelerate launch ...`
        argv = [python, "-m", "accelerate.commands.launch", *argv[2:]]
    return JobProcess(argv, env, tuple(Path(p) for p in mounts.values()))


def _host_value(value: str, mounts: list[tuple[str, str]]) -> str:
    for container_path, host in mounts:
        if value == container_path or value.startswith(container_path + "/"):
            return host + value[len(container_path) :]
    return value
