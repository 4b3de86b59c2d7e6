"""A rendered Job -> the argv and env of its local process: a pure function of the Job and the host."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import example_config
from xstilts.backends.job_process import HostPaths, JobProcess, job_process
from xstilts.plan.phase import Phase
from xstilts.render.dump import to_dict
from xstilts.render.job import CACHE, HF_HOME, STAGING, render_phase
from xstilts.spec.cluster import ClusterSettings, ResourcePreset

STORE = "s3://bucket/runs"
PYTHON = "/opt/python/bin/python3"
THREADS = {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}


def rendered(kind: str = "evaluate", settings: ClusterSettings | None = None, **resources) -> dict:
    phase = Phase(
        kind=kind,
        address="0123456789ab",
        label="pawsx",
        config=example_config(kind),
        resources=ResourcePreset.model_validate(resources),
    )
    return to_dict(render_phase(phase, "sweep", STORE, settings or ClusterSettings())[0])


def hosts(tmp_path: Path) -> HostPaths:
    return HostPaths(work_dir=tmp_path / "work", cache=tmp_path / "cache", hf_home=tmp_path / "hf")


def translate(job: dict, tmp_path: Path, environ: dict[str, str] | None = None) -> JobProcess:
    return job_process(job, hosts(tmp_path), environ or {}, THREADS, PYTHON)


def test_an_xstilts_job_runs_under_this_python_with_its_mounts_on_host_paths(tmp_path: Path) -> None:
    job = rendered(settings=ClusterSettings.model_validate({"s3": {"endpointUrl": "http://s3:8080"}}))
    name = job["metadata"]["name"]
    environ = {"AWS_ACCESS_KEY_ID": "key", "XSTILTS_IMAGE": "img:1", "AWS_ENDPOINT_URL": "http://old"}
    process = translate(job, tmp_path, environ)
    assert process.argv == [PYTHON, "-m", "xstilts", "phase", "run", "0123456789ab", "--store", STORE]
    scratch = tmp_path / "work" / "volumes" / name
    env = process.env
    assert env["XSTILTS_STAGING"] == str(scratch / "staging") and STAGING not in env["XSTILTS_STAGING"]
    assert (env["XSTILTS_CACHE"], env["HF_HOME"]) == (str(tmp_path / "cache"), str(tmp_path / "hf"))
    assert CACHE not in env.values() and HF_HOME not in env.values()
    assert env["TMPDIR"] == str(scratch / "tmp")
    assert env["XSTILTS_LOCK_DIR"] == str(tmp_path / "work" / "locks")
    assert env["AWS_ACCESS_KEY_ID"] == "key", "credentials come from the environment, as envFrom gives them"
    assert env["AWS_ENDPOINT_URL"] == "http://s3:8080", "the Job's literal values win"
    assert "XSTILTS_IMAGE" not in env, "a local phase runs no image"
    # OMP_NUM_THREADS is a valueFrom (the pod's CPU request) in the Job: the host's count instead
    assert env["OMP_NUM_THREADS"] == "4" and env["MKL_NUM_THREADS"] == "4"
    assert set(process.directories) == {
        scratch / "tmp",
        scratch / "staging",
        tmp_path / "cache",
        tmp_path / "hf",
        Path("/dev/shm"),
    }


def test_it_is_pure(tmp_path: Path) -> None:
    job = rendered()
    before = repr(job)
    environ = {"OMP_NUM_THREADS": "1"}
    first = translate(job, tmp_path, environ)
    assert first == translate(job, tmp_path, environ)
    assert first.env["OMP_NUM_THREADS"] == "1", "the caller's own thread count is kept"
    assert environ == {"OMP_NUM_THREADS": "1"} and repr(job) == before, "its inputs are left alone"
    assert not tmp_path.joinpath("work").exists(), "it creates no directory: the backend does"


def test_a_multi_gpu_training_job_runs_accelerate_under_this_python(tmp_path: Path) -> None:
    process = translate(rendered("target", gpu=2), tmp_path)
    assert process.argv[:4] == [PYTHON, "-m", "accelerate.commands.launch", "--multi_gpu"]
    assert process.argv[-7:] == ["-m", "xstilts", "phase", "run", "0123456789ab", "--store", STORE]
    assert (
        "--num_processes" in process.argv and process.argv[process.argv.index("--num_processes") + 1] == "2"
    )


def test_data_volumes_are_not_mapped(tmp_path: Path) -> None:
    settings = ClusterSettings.model_validate(
        {"dataVolumes": [{"name": "corpora", "mountPath": "/data", "claimName": "corpora"}]}
    )
    job = rendered(settings=settings)
    mounts = job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert any(m["mountPath"] == "/data" for m in mounts)
    process = translate(job, tmp_path)
    assert not any("corpora" in str(d) or str(d).endswith("data") for d in process.directories)


def test_host_paths_follow_the_environment(tmp_path: Path) -> None:
    paths = HostPaths.from_environment(tmp_path, {"XSTILTS_CACHE": "/c", "HF_HOME": "/h"})
    assert (paths.cache, paths.hf_home, paths.work_dir) == (Path("/c"), Path("/h"), tmp_path)
    default = HostPaths.from_environment(tmp_path, {})
    assert default.cache == Path.home() / ".cache" / "xstilts"
    assert default.hf_home == Path.home() / ".cache" / "huggingface"
