"""The cluster tier: tests against a real Kubernetes API server, in every run that can have one.

Which cluster:
1. `KUBECONFIG` names a cluster that answers (minikube prepared by k8s/minikube/setup.sh): that one.
   Tests that need the loopback control plane's own tools (its stand-in kubelet, audit log, an
   apiserver to restart) are skipped there, saying so.
2. Else, when the checkout has the loopback control plane at `<repo>/../shared/kube` (the CI layout):
   the session starts it (etcd, kube-apiserver, kube-controller-manager) with its state in a temporary
   directory and ports chosen free at run time, so parallel runs never meet, and stops it at the end.
   Each test gets a fresh namespace enforcing the restricted Pod Security Standard and a stand-in
   kubelet (xstilts.testing.kube_loopback) that runs that namespace's pods as local processes; a
   loopback S3 server (`rclone serve s3`) is the store.
3. Else every test here is skipped with one message that names what is missing.

All cluster tests share one xdist group (`kube`), so a `-n 2` run starts one control plane.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from xstilts.testing.kube_loopback import (
    Kubelet,
    LoopbackCluster,
    kube_dir_for,
    mount_namespaces_work,
    service_account_kubeconfig,
)
from xstilts.testing.pod_images import write_shim
from xstilts.testing.s3_server import S3ServerInfo, s3_server
from xstilts.testing.tools import helm_binary, kubectl_binary

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "xstilts"
KUBE_DIR = kube_dir_for(REPO)
RELEASE = "xstilts"
SERVICE_ACCOUNT = "xstilts"  # the chart's, for release "xstilts"


def _reachable(kubeconfig: str) -> str | None:
    """None when the kubeconfig's API server answers; else why not."""
    try:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.retries = 0
        with client.ApiClient(configuration) as api:
            client.VersionApi(api).get_code(_request_timeout=(3, 5))
    except Exception as exc:  # any failure means: no cluster to test against
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def no_cluster_reason(configured: str | None, problem: str, kube_dir: Path) -> str:
    """The one skip message of the tier when neither a cluster nor the loopback control plane is there."""
    return (
        f"no cluster to test against: {problem} (KUBECONFIG={configured or 'unset'}) and no loopback "
        f"control plane at {kube_dir}; run k8s/minikube/setup.sh and export its KUBECONFIG"
    )


@dataclass
class Cluster:
    kind: str  # "loopback" or "external"
    admin_kubeconfig: Path
    tmp: Path
    loopback: LoopbackCluster | None = None
    s3: S3ServerInfo | None = None
    shim: Path | None = None
    mountns_problem: str | None = None

    def require_loopback(self, what: str) -> LoopbackCluster:
        if self.loopback is None:
            reason = f"needs the loopback control plane ({what}); KUBECONFIG points at another cluster"
            print(f"SKIPPED: {reason}")
            pytest.skip(reason)
        return self.loopback

    def require_in_pod_api(self) -> None:
        """In-pod API clients (helm test, the in-cluster controller) need their ServiceAccount token
        at the standard path: kubelet.py's --mountns."""
        if self.mountns_problem:
            reason = (
                f"pods cannot get a private mount namespace here ({self.mountns_problem}), so in-pod "
                "clients find no ServiceAccount token; run as root or allow unprivileged user namespaces"
            )
            print(f"SKIPPED: {reason}")
            pytest.skip(reason)

    def keep_in_tmp(self) -> list[Path]:
        """Host paths that pods with their own /tmp must still see."""
        candidates = [self.shim, REPO, Path(sys.prefix).resolve(), Path(sys.executable).resolve().parents[1]]
        return [p for p in candidates if p is not None and str(p).startswith("/tmp/")]


@dataclass
class Namespace:
    """A fresh namespace of the cluster, with (loopback) a kubelet running its pods and an S3 bucket."""

    cluster: Cluster
    name: str
    tmp: Path
    kubelet: Kubelet | None = None
    bucket: str | None = None
    sa_kubeconfig: Path | None = None
    owned: bool = True  # created for the test (else: an existing release's namespace, kept)
    store_root: str = ""  # a prefix of this run in a shared bucket (an existing release's)
    _clients: dict[str, Any] = field(default_factory=dict)

    # ---- tools -----------------------------------------------------------------------------------
    def run_tool(
        self, tool: str, *args: str | Path, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        binary = helm_binary() if tool == "helm" else kubectl_binary()
        env = {**os.environ, "KUBECONFIG": str(self.cluster.admin_kubeconfig), "HOME": str(self.tmp)}
        return subprocess.run(
            [str(binary), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
        )

    def kubectl(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run_tool("kubectl", "-n", self.name, *args, timeout=timeout)

    def helm(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run_tool("helm", "-n", self.name, *args, timeout=timeout)

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """The environment of an `xstilts` command: this cluster, the store's S3 server, offline HF."""
        own_s3 = self.cluster.s3 is not None  # else the exports of k8s/minikube/setup.sh
        drop = ("KUBERNETES_", "XSTILTS_NAMESPACE", "XSTILTS_RELEASE", *(("AWS_",) if own_s3 else ()))
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env["KUBECONFIG"] = str(kubeconfig or self.sa_kubeconfig or self.cluster.admin_kubeconfig)
        if kubeconfig is None and self.sa_kubeconfig is None:
            env["XSTILTS_NAMESPACE"] = self.name  # the admin kubeconfig has no current namespace
        env["PYTHONPATH"] = str(REPO)
        env["HF_HUB_OFFLINE"] = env["HF_DATASETS_OFFLINE"] = "1"
        s3 = self.cluster.s3
        if s3 is not None:
            env.update(
                AWS_ENDPOINT_URL=s3.endpoint_url,
                AWS_ACCESS_KEY_ID=s3.access_key,
                AWS_SECRET_ACCESS_KEY=s3.secret_key,
                AWS_DEFAULT_REGION=s3.region,
            )
        return env

    def xstilts(
        self, *args: str | Path, kubeconfig: Path | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "xstilts", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(kubeconfig),
            cwd=self.tmp,
        )

    def popen_xstilts(self, *args: str | Path, log: Path, kubeconfig: Path | None = None) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "xstilts", *map(str, args)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(kubeconfig),
                cwd=self.tmp,
                start_new_session=True,
            )

    # ---- clients ---------------------------------------------------------------------------------
    def _api_client(self) -> Any:
        if "admin" not in self._clients:
            from kubernetes import config

            self._clients["admin"] = config.new_client_from_config(
                config_file=str(self.cluster.admin_kubeconfig)
            )
        return self._clients["admin"]

    def batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self._api_client())

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self._api_client())

    def jobs(self, selector: str = "") -> list[Any]:
        return self.batch().list_namespaced_job(self.name, label_selector=selector).items

    def configuration(self, kubeconfig: Path | None = None) -> Any:
        """A client Configuration for `kubeconfig` (default: the admin's)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(kubeconfig or self.cluster.admin_kubeconfig), client_configuration=configuration
        )
        return configuration

    def store(self, prefix: str) -> str:
        assert self.bucket, "no S3 server for this cluster"
        return f"s3://{self.bucket}/{self.store_root}{prefix}"

    def s3_client(self) -> Any:
        if self.cluster.s3 is not None:
            return self.cluster.s3.client()
        import boto3

        return boto3.client("s3")  # the exports of k8s/minikube/setup.sh

    def read(self, store: str, key: str) -> str:
        bucket, _, prefix = store[len("s3://") :].partition("/")
        body = self.s3_client().get_object(Bucket=bucket, Key=f"{prefix}/{key}".lstrip("/"))["Body"]
        return body.read().decode()

    # ---- the chart -------------------------------------------------------------------------------
    def chart_values(self, **overrides: Any) -> dict[str, Any]:
        s3 = self.cluster.s3
        # The chart's test S3 server settings, pointed at the loopback S3 server: pods run on the
        # host, so 127.0.0.1 reaches it. (Elsewhere a placeholder: only for rendering.)
        endpoint, key, secret = (
            (s3.endpoint_url, s3.access_key, s3.secret_key) if s3 else ("http://s3.invalid", "k", "s")
        )
        values: dict[str, Any] = {
            "store": self.store("runs"),
            "s3": {
                "endpointUrl": endpoint,
                "accessKeyId": key,
                "secretAccessKey": secret,
                "region": "us-east-1",
            },
            "backoffLimit": 0,
            "activeDeadlineSeconds": 1800,
            "ttlSecondsAfterFinished": None,
        }
        values.update(overrides)
        return values

    def install_chart(self, **overrides: Any) -> Path:
        """`helm install` the chart into this namespace; returns a kubeconfig of its ServiceAccount
        (a token, never admin), which `xstilts` commands of this namespace then use."""
        values = self.tmp / "values.yaml"
        values.write_text(yaml.safe_dump(self.chart_values(**overrides)))
        proc = self.helm("install", RELEASE, CHART, "-f", values, "--wait", "--timeout", "3m")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return self.use_service_account()

    def use_service_account(self) -> Path:
        """From now on `xstilts` commands run as the chart's ServiceAccount (a token kubeconfig)."""
        self.sa_kubeconfig = service_account_kubeconfig(
            self.cluster.admin_kubeconfig, self.name, SERVICE_ACCOUNT, self.tmp / "sa.kubeconfig"
        )
        return self.sa_kubeconfig

    def close(self) -> None:
        for api in self._clients.values():
            api.close()


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    configured = os.environ.get("KUBECONFIG")
    problem = _reachable(configured) if configured else "KUBECONFIG is not set"
    if configured and problem is None:
        yield Cluster("external", Path(configured), tmp)
        return
    if not KUBE_DIR.is_dir():
        reason = no_cluster_reason(configured, problem, KUBE_DIR)
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    # A short state path: unix socket paths and the kubelet's pod dirs live under it.
    loopback = LoopbackCluster.start(KUBE_DIR, tmp / "kube")
    try:
        with s3_server(tmp / "s3") as s3:
            yield Cluster(
                "loopback",
                loopback.admin_kubeconfig,
                tmp,
                loopback=loopback,
                s3=s3,
                shim=write_shim(tmp / "bin", REPO),
                mountns_problem=mount_namespaces_work(),
            )
    finally:
        loopback.stop()


def _namespace_name(node: pytest.Item) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", node.name.lower().removeprefix("test_"))[:40].strip("-")
    return f"t-{base}-{secrets.token_hex(2)}"


def make_namespace(
    kube: Cluster, name: str, tmp: Path, *, kubelet: bool = True, **kubelet_options: Any
) -> Namespace:
    """A fresh restricted namespace (and, on the loopback cluster, its kubelet and S3 bucket)."""
    tmp.mkdir(parents=True, exist_ok=True)
    namespace = Namespace(kube, name, tmp)
    if kube.loopback is not None:
        kube.loopback.namespace(name)
        if kubelet:
            namespace.kubelet = kube.loopback.kubelet(
                [name],
                path=[kube.shim] if kube.shim else [],
                mountns=kube.mountns_problem is None,
                keep_in_tmp=kube.keep_in_tmp(),
                **kubelet_options,
            )
        assert kube.s3 is not None
        namespace.bucket = kube.s3.create_bucket()
    else:
        labels = {"pod-security.kubernetes.io/enforce": "restricted"}
        namespace.core().create_namespace({"metadata": {"name": name, "labels": labels}})
        namespace.bucket = os.environ.get("XSTILTS_CLUSTER_BUCKET") or "xstilts"
    return namespace


def release_namespace(kube: Cluster, tmp: Path, max_running: int = 2) -> Namespace:
    """A namespace with the chart installed, run as its ServiceAccount: on the loopback cluster a fresh
    one (the chart's S3 settings pointed at the loopback S3 server); on a cluster KUBECONFIG names,
    the release k8s/minikube/setup.sh installed (XSTILTS_NAMESPACE, default xstilts; its bucket
    XSTILTS_CLUSTER_BUCKET, default xstilts), with a fresh store prefix."""
    if kube.loopback is not None:
        namespace = make_namespace(kube, f"t-release-{secrets.token_hex(3)}", tmp, max_running=max_running)
        namespace.install_chart()
        return namespace
    tmp.mkdir(parents=True, exist_ok=True)
    name = os.environ.get("XSTILTS_NAMESPACE") or "xstilts"
    bucket = os.environ.get("XSTILTS_CLUSTER_BUCKET") or "xstilts"
    namespace = Namespace(
        kube, name, tmp, bucket=bucket, owned=False, store_root=f"cluster-test-{int(time.time())}/"
    )
    namespace.use_service_account()
    return namespace


def drop_namespace(kube: Cluster, namespace: Namespace) -> None:
    if not namespace.owned:
        namespace.close()
        return
    if namespace.kubelet is not None and kube.loopback is not None:
        kube.loopback.stop_kubelet(namespace.kubelet)
    if kube.loopback is not None:
        kube.loopback.delete_namespace(namespace.name)
    else:
        namespace.core().delete_namespace(namespace.name)
    namespace.close()


@pytest.fixture
def ns(kube: Cluster, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Namespace]:
    """A fresh namespace per test (restricted Pod Security), deleted afterwards."""
    namespace = make_namespace(kube, _namespace_name(request.node), tmp_path / "ns")
    try:
        yield namespace
    finally:
        drop_namespace(kube, namespace)
