"""The kustomize base (k8s/base) for users without Helm: valid, restricted, minimal, and in step with
the chart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from xstilts.render.settings import PHASE_KINDS, SETTINGS_CONFIGMAP_KEY, ClusterSettings

from .conftest import (
    CHART,
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

NAMESPACE = "xstilts"


@pytest.fixture(scope="module")
def base(kubectl: Path) -> Rendered:
    proc = run_tool(kubectl, "kustomize", KUSTOMIZE_BASE)
    assert proc.returncode == 0, proc.stderr
    return parse_manifests(proc.stdout)


def test_objects_validate_against_kubernetes_openapi(base: Rendered) -> None:
    kinds = sorted(o["kind"] for o in base.objects)
    assert kinds == ["ConfigMap", "ConfigMap", "Namespace", "Role", "RoleBinding", "ServiceAccount"]
    assert validation_errors(base.objects) == []


def test_namespace_enforces_restricted_pod_security(base: Rendered) -> None:
    (ns,) = base.of_kind("Namespace")
    assert ns["metadata"]["name"] == NAMESPACE
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in base.objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "xstilts"
    problems = [
        p
        for obj in base.objects
        for where, spec in pod_specs(obj)
        for p in restricted_violations(where, spec)
    ]
    assert problems == []


def test_rbac_is_namespaced_and_minimal(base: Rendered) -> None:
    (sa,) = base.of_kind("ServiceAccount")
    assert rbac_problems(base.objects, NAMESPACE, sa["metadata"]["name"]) == []


def settings_of(rendered: Rendered) -> ClusterSettings:
    (cm,) = settings_configmaps(rendered.objects)
    return ClusterSettings.model_validate(yaml.safe_load(cm["data"][SETTINGS_CONFIGMAP_KEY]))


def test_settings_configmap_matches_cluster_settings(base: Rendered) -> None:
    (cm,) = settings_configmaps(base.objects)
    assert cm["metadata"]["name"] == "xstilts-settings"
    settings = settings_of(base)
    assert settings.namespace == NAMESPACE
    assert settings.service_account_name == base.one("ServiceAccount")["metadata"]["name"]
    assert settings.accelerate_config_map == base.one("ConfigMap", "-accelerate")["metadata"]["name"]
    assert settings.s3.secret_name == "xstilts-s3"
    assert set(settings.presets) == set(PHASE_KINDS)


def test_same_settings_and_rules_as_the_chart(base: Rendered, render_chart: Callable[..., Rendered]) -> None:
    chart = render_chart({"s3": {"existingSecret": "xstilts-s3"}}, release="xstilts")
    ignore = {"namespace"}
    assert settings_of(base).model_dump(exclude=ignore) == settings_of(chart).model_dump(exclude=ignore)
    assert base.one("Role")["rules"] == chart.one("Role")["rules"]


def test_accelerate_files_are_the_chart_files(base: Rendered) -> None:
    data = base.one("ConfigMap", "-accelerate")["data"]
    chart_files = {p.name: p.read_text() for p in (CHART / "files" / "accelerate").iterdir()}
    assert data == chart_files
