"""`sweep render` says what will not work as rendered, and sweeps can mount data volumes (a PVC or a
hostPath) for user-supplied corpora; the manifests stay valid against the Kubernetes schema."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml
from typer.testing import CliRunner

from tests.render.conftest import K8S_VERSIONS
from xstilts.cli.main import app

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "tiny.yaml"
runner = CliRunner()


def _sweep(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(TINY.read_text())
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_render_warns_about_what_will_not_work(tmp_path: Path):
    sweep = _sweep(tmp_path, data={"ccg_path": "/data/ccgbank"})
    args = [
        "sweep",
        "render",
        str(sweep),
        "--out",
        str(tmp_path / "m"),
        "--no-release",
        "--store",
        "s3://b/r",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    warnings = _warnings(result.stderr)
    assert len(warnings) == 3, result.stderr
    assert "no S3 credentials" in warnings[0] and "kubernetes.s3.secretName" in warnings[0]
    assert "namespace 'default'" in warnings[1]
    assert "data.ccg_path /data/ccgbank" in warnings[2] and "kubernetes.dataVolumes" in warnings[2]


def test_a_data_volume_mounts_the_corpora_read_only(tmp_path: Path):
    kubernetes = {
        "namespace": "research",
        "s3": {"secretName": "xstilts-s3"},
        "dataVolumes": [
            {"name": "corpora", "mountPath": "/data", "claimName": "corpora"},
            {"name": "scratch", "mountPath": "/scratch", "hostPath": "/mnt/scratch"},
        ],
    }
    sweep = _sweep(tmp_path, data={"ccg_path": "/data/ccgbank"}, kubernetes=kubernetes)
    out = tmp_path / "m"
    result = runner.invoke(
        app, ["sweep", "render", str(sweep), "--out", str(out), "--no-release", "--store", "s3://b/r"]
    )
    assert result.exit_code == 0, result.output
    (warning,) = _warnings(result.stderr)
    assert "'scratch' is a hostPath" in warning
    files = sorted(out.glob("*.yaml"))
    assert files
    for path in files:
        for obj in yaml.safe_load_all(path.read_text()):
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)
            if obj["kind"] != "Job":
                continue
            pod = obj["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert volumes["data-corpora"]["persistentVolumeClaim"] == {
                "claimName": "corpora",
                "readOnly": True,
            }
            assert volumes["data-scratch"]["hostPath"] == {"path": "/mnt/scratch", "type": "Directory"}
            mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
            assert mounts["data-corpora"] == {"name": "data-corpora", "mountPath": "/data", "readOnly": True}


def test_a_data_volume_needs_exactly_one_source(tmp_path: Path):
    sweep = _sweep(tmp_path, kubernetes={"dataVolumes": [{"name": "x", "mountPath": "/data"}]})
    result = runner.invoke(app, ["sweep", "plan", str(sweep), "--offline"])
    assert result.exit_code == 3, result.output
    assert "kubernetes" in result.stderr and "claimName" in result.stderr


def test_the_readme_lists_every_kubernetes_key():
    from xstilts.spec.cluster import ClusterSettings, ResourcePreset

    readme = (REPO / "README.md").read_text()
    section = readme.split("The sweep's `kubernetes:` block", 1)[1].split("```yaml", 1)[0]
    for model in (ClusterSettings, ResourcePreset):
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert f"`{key}`" in section, key
