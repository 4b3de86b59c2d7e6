"""Manifests against the real API server: every kind `xstilts` renders and every object of the chart
pass a server-side dry run (schema, defaulting, admission, Pod Security "restricted" with no
warning); `kubectl apply -k k8s/base` works in any namespace and through an overlay into another
one; and `sweep render` renders with the installed release's settings, as `submit` does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import (
    CHART,
    REPO,
    SERVICE_ACCOUNT,
    Cluster,
    Namespace,
    drop_namespace,
    make_namespace,
)
from tests.cluster.sweeps import sweep_file, two_phases
from tests.render.conftest import VARIANTS, variant
from xstilts.render.controller import render_controller
from xstilts.render.dump import to_dict

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("kube")]

BASE = REPO / "k8s" / "base"


def dry_run(ns: Namespace, objects: list[dict[str, Any]], path: Path) -> str:
    """`kubectl create --dry-run=server` of `objects` in `ns`; returns what it printed (warnings too)."""
    for obj in objects:
        obj.setdefault("metadata", {})["namespace"] = ns.name
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    result = ns.kubectl("create", "--dry-run=server", "-f", path, "-o", "name")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Warning" not in result.stderr, result.stderr[-4000:]
    return result.stdout


def _distinct_shapes(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One object per (kind, set of spec keys, ...): manifests of one shape pass or fail together."""
    seen, out = set(), []
    for obj in objects:
        spec = obj.get("spec") or {}
        template = ((spec.get("template") or {}).get("spec")) or {}
        key = (
            obj["kind"],
            tuple(sorted(spec)),
            tuple(sorted(template)),
            json.dumps(template.get("volumes"), sort_keys=True),
        )
        if key not in seen:
            seen.add(key)
            out.append(obj)
    return out


def test_every_rendered_kind_passes_a_server_side_dry_run(ns: Namespace) -> None:
    objects = []
    for name in sorted(VARIANTS):
        _, settings, rendered = variant(name)
        objects += [dict(o) for phase_objects in rendered for o in phase_objects]
    _, settings, _ = variant("existing-pvc")
    objects += [
        to_dict(o) for o in render_controller("name: x\n", "render-test", "s3://xstilts/runs", settings)
    ]
    shapes = _distinct_shapes([json.loads(json.dumps(o)) for o in objects])
    kinds = {
        (o["kind"], (o.get("spec") or {}).get("completionMode"), bool((o.get("spec") or {}).get("suspend")))
        for o in shapes
    }
    assert {
        ("Job", None, False),
        ("Job", "Indexed", False),
        ("Job", None, True),
        ("Service", None, False),
        ("ConfigMap", None, False),
    } <= kinds
    printed = dry_run(ns, shapes, ns.tmp / "rendered.yaml")
    assert len(printed.splitlines()) == len(shapes), printed
    # The control: the same Job without its security context draws Pod Security's warning.
    loose = json.loads(json.dumps(next(o for o in shapes if o["kind"] == "Job")))
    for spec in (loose["spec"]["template"]["spec"], *loose["spec"]["template"]["spec"]["containers"]):
        spec.pop("securityContext", None)
    (ns.tmp / "loose.yaml").write_text(yaml.safe_dump(loose))
    warned = ns.kubectl("create", "--dry-run=server", "-f", ns.tmp / "loose.yaml")
    assert warned.returncode == 0 and 'would violate PodSecurity "restricted' in warned.stderr, warned.stderr


def test_every_chart_object_passes_a_server_side_dry_run(ns: Namespace) -> None:
    values = ns.tmp / "values.yaml"
    everything = {
        "s3": {"accessKeyId": "k", "secretAccessKey": "s"},
        "s3TestServer": {"enabled": True},
        "hfCache": {"enabled": True},
        "kueue": {"queueName": "q"},
        "imagePullSecrets": [{"name": "regcred"}],
    }
    values.write_text(yaml.safe_dump(everything))
    template = ns.helm("template", "xstilts", CHART, "-f", values)
    assert template.returncode == 0, template.stderr
    objects = [o for o in yaml.safe_load_all(template.stdout) if o]
    assert {"Deployment", "PersistentVolumeClaim", "Pod", "Role", "RoleBinding", "Secret", "Service"} <= {
        o["kind"] for o in objects
    }
    # The ServiceAccount for real (the pods' admission looks it up), everything else as a dry run.
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    objects.remove(account)
    dry_run(ns, [account], ns.tmp / "account.yaml")
    created = ns.kubectl("create", "-f", ns.tmp / "account.yaml")
    assert created.returncode == 0, created.stderr
    printed = dry_run(ns, objects, ns.tmp / "chart.yaml")
    assert len(printed.splitlines()) == len(objects), printed


def _can_i(ns: Namespace, verb: str, resource: str, namespace: str, service_account: str) -> bool:
    result = ns.run_tool(
        "kubectl", "auth", "can-i", verb, resource, "-n", namespace, f"--as={service_account}"
    )
    return result.stdout.strip() == "yes"


def test_kustomize_base_applies_in_any_namespace_and_through_an_overlay(
    kube: Cluster, ns: Namespace, tmp_path: Path
) -> None:
    """Issue 13, 4: nothing in k8s/base names a namespace; an overlay sets it everywhere, the
    RoleBinding's subject included, and the settings follow the namespace they are in."""
    from xstilts.backends.release import load_release_settings

    applied = ns.run_tool("kubectl", "apply", "-k", BASE, "-n", ns.name)
    assert applied.returncode == 0, applied.stderr
    sa = f"system:serviceaccount:{ns.name}:{SERVICE_ACCOUNT}"
    assert _can_i(ns, "create", "jobs", ns.name, sa) and _can_i(ns, "watch", "jobs", ns.name, sa)
    assert not _can_i(ns, "create", "jobs", "default", sa)
    assert (
        ns.core().read_namespace(ns.name).metadata.labels["pod-security.kubernetes.io/enforce"]
        == "restricted"
    )
    assert [n.metadata.name for n in ns.core().list_namespace().items if n.metadata.name == "xstilts"] == []

    other = make_namespace(kube, f"{ns.name}-o", tmp_path / "other", kubelet=False)
    try:
        overlay = tmp_path / "overlay"
        overlay.mkdir()
        # A user's overlay elsewhere on disk: it names the base by a relative path.
        base = os.path.relpath(BASE, overlay)
        (overlay / "kustomization.yaml").write_text(
            yaml.safe_dump({"namespace": other.name, "resources": [base]})
        )
        applied = ns.run_tool("kubectl", "apply", "-k", overlay)
        assert applied.returncode == 0, applied.stderr
        rb = json.loads(
            ns.run_tool("kubectl", "-n", other.name, "get", "rolebinding", "xstilts", "-o", "json").stdout
        )
        assert rb["subjects"] == [
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": other.name}
        ]
        other_sa = f"system:serviceaccount:{other.name}:{SERVICE_ACCOUNT}"
        assert _can_i(ns, "create", "jobs", other.name, other_sa)
        assert not _can_i(ns, "create", "jobs", ns.name, other_sa)
        # Each namespace's settings are that namespace's, though the manifests are the same.
        for namespace in (ns.name, other.name):
            settings = load_release_settings(namespace, api=other.core())
            assert settings is not None and settings.namespace == namespace
            assert settings.service_account_name == SERVICE_ACCOUNT
    finally:
        drop_namespace(kube, other)


def test_render_uses_the_installed_release_unless_told_not_to(ns: Namespace) -> None:
    """Issue 13, 5: `sweep render` renders what `submit` would create; the release's dataVolumes
    (issue 17) are mounted read-only, merged by name with the sweep's."""
    kube_sa = ns.install_chart(
        image={"repository": "registry.example.com/xstilts-trainer", "tag": "7"},
        dataVolumes=[
            {"name": "corpora", "mountPath": "/data", "claimName": "corpora"},
            {"name": "bucc", "mountPath": "/bucc", "claimName": "bucc"},
        ],
    )
    mine = {"dataVolumes": [{"name": "bucc", "mountPath": "/bucc", "claimName": "bucc-mine"}]}
    sweep, plan = sweep_file(ns.tmp, two_phases(kubernetes=mine))
    out = ns.tmp / "manifests"
    result = ns.xstilts("sweep", "render", sweep, "--out", out, kubeconfig=kube_sa)
    assert result.returncode == 0, result.stderr
    job = yaml.safe_load(next(out.glob("encoder-*.yaml")).read_text())
    pod = job["spec"]["template"]["spec"]
    assert job["metadata"]["namespace"] == ns.name
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert pod["containers"][0]["image"] == "registry.example.com/xstilts-trainer:7"
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "xstilts-s3"}}]
    assert pod["containers"][0]["args"][-1] == ns.store("runs")  # the release's store
    claims = {v["name"]: v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {
        "data-corpora": {"claimName": "corpora", "readOnly": True},
        "data-bucc": {"claimName": "bucc-mine", "readOnly": True},
    }
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"] if m["name"].startswith("data-")}
    assert {(m["mountPath"], m["readOnly"]) for m in mounts.values()} == {("/data", True), ("/bucc", True)}
    # What render wrote is what the server accepts, and what submit then creates.
    dry_run(ns, [job], ns.tmp / "rendered.yaml")
    plain = ns.tmp / "plain"
    result = ns.xstilts(
        "sweep", "render", sweep, "--out", plain, "--no-release", kubeconfig=ns.tmp / "no-such-kubeconfig"
    )
    assert result.returncode == 0, result.stderr
    job = yaml.safe_load(next(plain.glob("encoder-*.yaml")).read_text())
    assert (
        job["metadata"]["namespace"] == "default"
        and "serviceAccountName" not in job["spec"]["template"]["spec"]
    )
    assert len(list(out.glob("*.yaml"))) == len(plan.phases)
