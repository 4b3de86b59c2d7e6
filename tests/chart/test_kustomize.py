"""The kustomize base (k8s/base) for users without Helm: valid, restricted, minimal, namespace-neutral,
and in step with the chart; the overlay k8s/overlays/xstilts puts it in namespace `xstilts`. Applying
both to a real API server: tests/cluster/test_manifests_cluster.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from xstilts.spec.cluster import SETTINGS_CONFIGMAP_KEY, ClusterSettings
from xstilts.spec.kinds import PRESETS

from .conftest import (
    KUSTOMIZE_BASE,
    Rendered,
    parse_manifests,
    pod_specs,
    rbac_problems,
    restricted_violations,
    run_tool,
    settings_configmaps,
    validation_errors,
)

OVERLAY = KUSTOMIZE_BASE.parent / "overlays" / "xstilts"
NAMESPACE = "xstilts"


def kustomize(kubectl: Path, directory: Path) -> Rendered:
    proc = run_tool(kubectl, "kustomize", directory)
    assert proc.returncode == 0, proc.stderr
    return parse_manifests(proc.stdout)


@pytest.fixture(scope="module")
def base(kubectl: Path) -> Rendered:
    return kustomize(kubectl, KUSTOMIZE_BASE)


@pytest.fixture(scope="module")
def overlay(kubectl: Path) -> Rendered:
    return kustomize(kubectl, OVERLAY)


def test_objects_validate_against_kubernetes_openapi(base: Rendered, overlay: Rendered) -> None:
    assert sorted(o["kind"] for o in base.objects) == [
        "ConfigMap",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    assert sorted(o["kind"] for o in overlay.objects) == sorted(
        [*(o["kind"] for o in base.objects), "Namespace"]
    )
    assert validation_errors(base.objects + overlay.objects) == []


def test_base_is_namespace_neutral(base: Rendered) -> None:
    """`kubectl apply -k k8s/base -n ANY` works: nothing names a namespace."""
    for obj in base.objects:
        assert "namespace" not in obj["metadata"], f"{obj['kind']}/{obj['metadata']['name']} pins a namespace"
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "xstilts"
    assert "namespace" not in base.one("RoleBinding")["subjects"][0]
    assert "namespace" not in yaml.safe_load(
        settings_configmaps(base.objects)[0]["data"][SETTINGS_CONFIGMAP_KEY]
    )
    (sa,) = base.of_kind("ServiceAccount")
    assert rbac_problems(base.objects, None, sa["metadata"]["name"]) == []


def test_overlay_sets_the_namespace_everywhere(overlay: Rendered) -> None:
    (ns,) = overlay.of_kind("Namespace")
    assert ns["metadata"]["name"] == NAMESPACE
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in overlay.objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE
    (sa,) = overlay.of_kind("ServiceAccount")
    assert rbac_problems(overlay.objects, NAMESPACE, sa["metadata"]["name"]) == []


def test_pods_follow_restricted_pod_security(base: Rendered) -> None:
    problems = [
        p
        for obj in base.objects
        for where, spec in pod_specs(obj)
        for p in restricted_violations(where, spec)
    ]
    assert problems == []


def settings_of(rendered: Rendered) -> ClusterSettings:
    (cm,) = settings_configmaps(rendered.objects)
    return ClusterSettings.model_validate(yaml.safe_load(cm["data"][SETTINGS_CONFIGMAP_KEY]))


def test_settings_configmap_matches_cluster_settings(base: Rendered) -> None:
    (cm,) = settings_configmaps(base.objects)
    assert cm["metadata"]["name"] == "xstilts-settings"
    settings = settings_of(base)
    assert settings.service_account_name == base.one("ServiceAccount")["metadata"]["name"]
    assert settings.s3.secret_name == "xstilts-s3"
    assert set(settings.presets) == set(PRESETS)


def test_same_settings_and_rules_as_the_chart(base: Rendered, render_chart: Callable[..., Rendered]) -> None:
    chart = render_chart({"s3": {"existingSecret": "xstilts-s3"}}, release="xstilts")
    ignore = {"namespace"}
    assert settings_of(base).model_dump(exclude=ignore) == settings_of(chart).model_dump(exclude=ignore)
    assert base.one("Role")["rules"] == chart.one("Role")["rules"]
