"""Fixtures for the Helm chart and kustomize tests: the real helm/kubectl binaries, cached renders,
and checkers (Kubernetes OpenAPI validation, Pod Security Standard "restricted", minimal RBAC)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from xstilts.testing.tools import helm_binary, kubectl_binary

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "xstilts"
KUSTOMIZE_BASE = REPO / "k8s" / "base"
RELEASE = "xstilts"
NAMESPACE = "xstilts-test"
# The oldest Kubernetes the chart supports (podFailurePolicy GA) and a current one.
K8S_VERSIONS = ("1.31.0", "1.35.0")

# The Role: exactly the requests xstilts makes. tests/cluster/test_rbac_cluster.py derives this from the
# API server's audit log of a sweep run as the chart's ServiceAccount and fails when the two differ.
EXPECTED_RBAC = {
    ("batch", "jobs"): {"create", "get", "list", "watch", "delete", "patch"},
    ("", "pods"): {"list", "watch"},
    ("", "pods/log"): {"get"},
    ("", "services"): {"create", "list", "delete"},
    ("", "configmaps"): {"get", "list", "create", "update"},
}

_RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        return helm_binary()
    except RuntimeError as exc:
        reason = f"SKIPPED: no helm binary, chart not checked: {exc}"
        print(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def kubectl() -> Path:
    try:
        return kubectl_binary()
    except RuntimeError as exc:
        reason = f"SKIPPED: no kubectl binary, kustomize base not checked: {exc}"
        print(reason)
        pytest.skip(reason)


@dataclass
class Rendered:
    objects: list[dict[str, Any]]
    sources: set[str]  # template files that produced output, e.g. "templates/rbac.yaml"

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, (
            f"expected one {kind} named *{name_suffix}, got {[o['metadata']['name'] for o in found]}"
        )
        return found[0]


def run_tool(binary: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=120)


def parse_manifests(text: str) -> Rendered:
    sources = {line.split("/", 1)[1] for line in text.splitlines() if line.startswith("# Source: ")}
    objects = [doc for doc in yaml.safe_load_all(text) if doc]
    return Rendered(objects=objects, sources=sources)


@pytest.fixture(scope="session")
def values_file(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], Path]:
    directory = tmp_path_factory.mktemp("values")
    counter = iter(range(10_000))

    def write(values: dict[str, Any]) -> Path:
        path = directory / f"values-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(values))
        return path

    return write


@pytest.fixture(scope="session")
def render_chart(helm: Path, values_file: Callable[[dict[str, Any]], Path]) -> Callable[..., Rendered]:
    """`helm template` the chart with the given values (cached per values)."""
    cache: dict[str, Rendered] = {}

    def render(values: dict[str, Any] | None = None, release: str = RELEASE) -> Rendered:
        key = json.dumps([values or {}, release], sort_keys=True)
        if key not in cache:
            proc = run_tool(
                helm, "template", release, CHART, "--namespace", NAMESPACE, "-f", values_file(values or {})
            )
            assert proc.returncode == 0, f"helm template failed:\n{proc.stderr}"
            cache[key] = parse_manifests(proc.stdout)
        return cache[key]

    return render


def validation_errors(objects: list[dict[str, Any]]) -> list[str]:
    """Strict OpenAPI validation of every object against each Kubernetes version in K8S_VERSIONS."""
    errors = []
    for obj in objects:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(map(str, getattr(exc.caught_exception, "absolute_path", []) or []))
                first = str(exc).splitlines()[0]
                errors.append(f"{obj['kind']}/{obj['metadata']['name']} (k8s {version}) at /{where}: {first}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(f"{obj['kind']}/{obj['metadata']['name']} (k8s {version}): {exc}")
    return errors


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind == "Pod":
        yield name, spec
    elif kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        yield name, spec["template"]["spec"]
    elif kind == "CronJob":
        yield name, spec["jobTemplate"]["spec"]["template"]["spec"]


def restricted_violations(where: str, spec: dict[str, Any]) -> list[str]:
    """Pod Security Standard "restricted", plus this project's rules: uid 1000, a read-only root
    filesystem and /tmp an emptyDir."""
    out = []
    psc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"{where}: {field} is true")
    volume_types = {}
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        volume_types[vol["name"]] = kinds
        if not kinds <= _RESTRICTED_VOLUME_TYPES:
            out.append(f"{where}: volume {vol['name']} uses {sorted(kinds - _RESTRICTED_VOLUME_TYPES)}")
    for sysctl in psc.get("sysctls") or []:
        if sysctl["name"] not in _SAFE_SYSCTLS:
            out.append(f"{where}: unsafe sysctl {sysctl['name']}")
    containers = [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]
    main_containers = {c["name"] for c in spec.get("containers") or []}
    if not main_containers:
        out.append(f"{where}: no containers")
    for c in containers:
        here = f"{where} container {c['name']}"
        sc = c.get("securityContext") or {}

        def effective(field: str, sc: dict[str, Any] = sc) -> Any:
            return sc.get(field, psc.get(field))

        if sc.get("privileged"):
            out.append(f"{here}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{here}: allowPrivilegeEscalation must be false")
        if effective("runAsNonRoot") is not True:
            out.append(f"{here}: runAsNonRoot must be true")
        if effective("runAsUser") != 1000:
            out.append(f"{here}: runAsUser must be 1000, got {effective('runAsUser')}")
        seccomp = (effective("seccompProfile") or {}).get("type")
        if seccomp not in {"RuntimeDefault", "Localhost"}:
            out.append(f"{here}: seccompProfile.type must be RuntimeDefault, got {seccomp}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{here}: capabilities.drop must include ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{here}: capabilities.add {caps['add']}")
        se_type = (effective("seLinuxOptions") or {}).get("type")
        if se_type not in {
            None,
            "",
            "container_t",
            "container_init_t",
            "container_kvm_t",
            "container_engine_t",
        }:
            out.append(f"{here}: seLinuxOptions.type {se_type}")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"{here}: procMount {sc['procMount']}")
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{here}: readOnlyRootFilesystem must be true")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            out.append(f"{here}: hostPort")
        tmp = [m for m in c.get("volumeMounts") or [] if m["mountPath"] == "/tmp"]
        if c["name"] in main_containers and not (tmp and volume_types.get(tmp[0]["name"]) == {"emptyDir"}):
            out.append(f"{here}: /tmp must be an emptyDir mount (the root filesystem is read-only)")
    return out


def rbac_problems(objects: list[dict[str, Any]], namespace: str | None, service_account: str) -> list[str]:
    """Only a namespaced Role with exactly EXPECTED_RBAC, bound to the chart's ServiceAccount.
    `namespace` None: namespace-neutral manifests (no namespace on the objects or the subject)."""
    out = []
    for obj in objects:
        if obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
            out.append(f"cluster-scoped RBAC object {obj['kind']}/{obj['metadata']['name']}")
    roles = [o for o in objects if o["kind"] == "Role"]
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    if len(roles) != 1 or len(bindings) != 1:
        return out + [f"expected one Role and one RoleBinding, got {len(roles)} and {len(bindings)}"]
    role, binding = roles[0], bindings[0]
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        if set(rule) - {"apiGroups", "resources", "verbs"}:
            out.append(f"rule with {sorted(set(rule) - {'apiGroups', 'resources', 'verbs'})}: {rule}")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    if any("*" in key or "*" in verbs for key, verbs in granted.items()):
        out.append(f"wildcard in Role rules: {role['rules']}")
    if granted != EXPECTED_RBAC:
        out.append(f"Role grants {granted}, expected exactly {EXPECTED_RBAC}")
    if role["metadata"].get("namespace") != namespace or binding["metadata"].get("namespace") != namespace:
        out.append("Role and RoleBinding must be in the release namespace")
    if binding["roleRef"] != {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }:
        out.append(f"RoleBinding refers to {binding['roleRef']}")
    subject = {"kind": "ServiceAccount", "name": service_account}
    expected_subject = [{**subject, "namespace": namespace} if namespace else subject]
    if binding["subjects"] != expected_subject:
        out.append(f"RoleBinding subjects {binding['subjects']}, expected {expected_subject}")
    return out


def settings_configmaps(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["kind"] == "ConfigMap"
        and o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "xstilts"
        and o["metadata"].get("labels", {}).get("xstilts.io/settings") == "true"
    ]
