"""A real Kubernetes control plane on 127.0.0.1 for tests and benchmarks: the loopback control plane
that CI checkouts find at `<repo>/../shared/kube` (kube-apiserver, kube-controller-manager and etcd,
started by its `start-cluster.sh`, with RBAC, PodSecurity admission and an audit log), plus its
stand-in kubelet `kubelet.py`, which runs each pod's command as a local process.

    cluster = LoopbackCluster.start(kube_dir, state_dir)   # free ports, chosen now
    ns = cluster.namespace("t-abc")                         # restricted Pod Security
    kubelet = cluster.kubelet([ns], path=[shim_dir])        # runs the pods of ns
    ...
    kubelet.stop(); cluster.delete_namespace(ns); cluster.stop()

Every port (apiserver, etcd client and peer, controller manager, each kubelet's log server) is
picked free at run time and the state lives in the given directory, so parallel runs on one machine
never meet. Nothing is written to `kube_dir`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xstilts.testing.s3_server import free_port

START_ATTEMPTS = 3
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def kube_dir_for(repo: Path) -> Path:
    """Where a checkout finds the loopback control plane (CI layout: a sibling `shared/` folder)."""
    return repo.resolve().parent / "shared" / "kube"


def mount_namespaces_work() -> str | None:
    """None when kubelet.py's --mountns can work here (a private mount namespace per pod, so that
    in-pod clients find their ServiceAccount token); else why not."""
    argv = ["unshare", "--mount", "--propagation", "private", "--", "true"]
    if os.geteuid() != 0:
        argv[1:1] = ["--user", "--map-root-user"]
    if shutil.which("unshare") is None:
        return "no unshare(1) on PATH"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return f"`{' '.join(argv)}` failed: {proc.stderr.strip() or proc.returncode}"
    return None


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Kubelet:
    """One kubelet.py process: a Node of its own, running the pods of its namespaces."""

    node: str
    namespaces: list[str]
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (it kills the pods it runs), then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no kubelet log)"


@dataclass
class LoopbackCluster:
    kube_dir: Path
    state: Path
    ports: dict[str, int]
    kubelets: list[Kubelet] = field(default_factory=list)
    _admin: Any = field(default=None, repr=False)

    # ---- lifecycle -------------------------------------------------------------------------------
    @classmethod
    def start(cls, kube_dir: Path, state: Path, timeout: float = 300.0) -> LoopbackCluster:
        """Start etcd, kube-apiserver and kube-controller-manager on free ports; retried with new
        ports when one was taken in between."""
        state.mkdir(parents=True, exist_ok=True)
        error = ""
        for _ in range(START_ATTEMPTS):
            ports = {name: free_port() for name in ("api", "etcd", "etcd_peer", "kcm")}
            cluster = cls(kube_dir=kube_dir, state=state, ports=ports)
            proc = cluster._script("start-cluster.sh", timeout)
            if proc.returncode == 0:
                cluster._wait_ready()
                return cluster
            error = (proc.stderr or proc.stdout).strip()[-2000:]
            cluster._script("stop-cluster.sh", 120)
        raise RuntimeError(f"the loopback control plane did not start ({kube_dir}): {error}")

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XSTILTS_KUBE_")}
        env.pop("KUBECONFIG", None)
        env.update(
            XSTILTS_KUBE_STATE=str(self.state),
            XSTILTS_KUBE_API_PORT=str(self.ports["api"]),
            XSTILTS_KUBE_ETCD_PORT=str(self.ports["etcd"]),
            XSTILTS_KUBE_ETCD_PEER_PORT=str(self.ports["etcd_peer"]),
            XSTILTS_KUBE_KCM_PORT=str(self.ports["kcm"]),
        )
        return env

    def _script(self, name: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.kube_dir / name)],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _wait_ready(self) -> None:
        from kubernetes import client

        def ready() -> bool:
            try:
                return self.core().read_namespaced_service_account("default", "default") is not None
            except (client.ApiException, OSError, Exception):  # noqa: BLE001 - not up yet
                return False

        wait_for(ready, 120, "the apiserver and the default ServiceAccount")

    def stop(self) -> None:
        for kubelet in self.kubelets:
            kubelet.stop()
        self.kubelets.clear()
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self._script("stop-cluster.sh", 180)

    def restart_apiserver(self, down_seconds: float = 0.0) -> float:
        """Kill kube-apiserver (SIGKILL, like a crash), keep it down `down_seconds`, start it again;
        returns how long it did not answer."""
        pid_file = self.state / "run" / "kube-apiserver.pid"
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30, "kube-apiserver to exit")
        time.sleep(down_seconds)
        proc = self._script("start-cluster.sh", 300)
        if proc.returncode != 0:
            raise RuntimeError(f"restarting kube-apiserver failed: {proc.stderr.strip()[-2000:]}")
        return time.monotonic() - killed

    # ---- access ----------------------------------------------------------------------------------
    @property
    def admin_kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['api']}"

    def admin(self) -> Any:
        """A kubernetes ApiClient with the admin (system:masters) credentials."""
        if self._admin is None:
            from kubernetes import config

            self._admin = config.new_client_from_config(config_file=str(self.admin_kubeconfig))
        return self._admin

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.admin())

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path, hours: int = 6) -> Path:
        """A kubeconfig that authenticates as ServiceAccount `namespace/name` (see the function)."""
        return service_account_kubeconfig(self.admin_kubeconfig, namespace, name, path, hours)

    # ---- namespaces and kubelets -----------------------------------------------------------------
    def namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        """Create namespace `name` enforcing the restricted Pod Security Standard; wait for its
        `default` ServiceAccount."""
        from kubernetes import client

        body = {"metadata": {"name": name, "labels": {**RESTRICTED, **(labels or {})}}}
        self.core().create_namespace(body)

        def has_default_sa() -> bool:
            try:
                return self.core().read_namespaced_service_account("default", name) is not None
            except client.ApiException:
                return False

        wait_for(has_default_sa, 60, f"ServiceAccount {name}/default")
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete the namespace without waiting; pods left on stopped kubelets go at once (grace 0)."""
        from kubernetes import client

        core = self.core()
        try:
            core.delete_namespace(name, propagation_policy="Background")
            for pod in core.list_namespaced_pod(name).items:
                core.delete_namespaced_pod(pod.metadata.name, name, grace_period_seconds=0)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def kubelet(
        self,
        namespaces: Sequence[str],
        *,
        node: str | None = None,
        path: Sequence[Path] = (),
        mountns: bool = False,
        keep_in_tmp: Sequence[Path] = (),
        no_bind: bool = False,
        skip_indexed: bool = True,
        max_running: int = 2,
        interval: float = 0.5,
        python: str = sys.executable,
    ) -> Kubelet:
        """Start kubelet.py for `namespaces` as Node `node`; return once the Node is registered.
        `path` goes first on the pods' PATH, before the Python's bin dir."""
        node = node or f"{namespaces[0]}-node"
        port = free_port()
        pods_path = [*map(str, path), str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        log_path = self.state / "log" / f"kubelet-{node}.log"
        argv = [
            python,
            str(self.kube_dir / "kubelet.py"),
            "--state",
            str(self.state),
            "--node",
            node,
            "--port",
            str(port),
            "--path",
            ":".join(pods_path),
            "--max-running",
            str(max_running),
            "--interval",
            str(interval),
        ]
        for ns in namespaces:
            argv += ["-n", ns]
        if mountns:
            argv.append("--mountns")
            for keep in keep_in_tmp or ["none"]:
                argv += ["--keep-in-tmp", str(keep)]
        if no_bind:
            argv.append("--no-bind")
        if skip_indexed:
            argv.append("--skip-indexed")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self._env()
            )
        kubelet = Kubelet(node, list(namespaces), port, process, log_path)
        self.kubelets.append(kubelet)

        def registered() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"kubelet.py exited ({process.returncode}): {kubelet.log_tail()}")
            return f"registered node {node}" in log_path.read_text(errors="replace") or _node_ready(
                self, node
            )

        wait_for(registered, 90, f"kubelet.py to register Node {node}")
        return kubelet

    def stop_kubelet(self, kubelet: Kubelet) -> None:
        from kubernetes import client

        kubelet.stop()
        if kubelet in self.kubelets:
            self.kubelets.remove(kubelet)
        try:
            self.core().delete_node(kubelet.node)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    # ---- the audit log ---------------------------------------------------------------------------
    def audit_events(self, user: str | None = None) -> Iterator[dict[str, Any]]:
        """The apiserver's audit events (Metadata level, stage ResponseComplete), optionally of one
        user, e.g. `system:serviceaccount:NS:NAME`."""
        logs = sorted((self.state / "log").glob("audit*.log"))
        for path in logs:
            with open(path, errors="replace") as f:
                for line in f:
                    try:
                        event = json.loads(line)
                    except ValueError:  # a line being written
                        continue
                    if event.get("stage") not in (None, "ResponseComplete"):
                        continue
                    if user is None or (event.get("user") or {}).get("username") == user:
                        yield event


def service_account_kubeconfig(
    admin_kubeconfig: Path, namespace: str, name: str, path: Path, hours: int = 6
) -> Path:
    """A kubeconfig that authenticates as ServiceAccount `namespace/name` with a bound token (what
    `kubectl create token` gives), current namespace `namespace`, for any cluster `admin_kubeconfig`
    reaches."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(admin_kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        token = client.CoreV1Api(api).create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": hours * 3600}}
        )
    cluster: dict[str, Any] = {"server": configuration.host}
    if configuration.ssl_ca_cert:
        cluster["certificate-authority-data"] = base64.b64encode(
            Path(configuration.ssl_ca_cert).read_bytes()
        ).decode()
    user = f"{namespace}-{name}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token.status.token}}],
        "contexts": [{"name": user, "context": {"cluster": "cluster", "user": user, "namespace": namespace}}],
        "current-context": user,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    return path


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _node_ready(cluster: LoopbackCluster, node: str) -> bool:
    from kubernetes import client

    try:
        return cluster.core().read_node(node) is not None
    except client.ApiException:
        return False


def requests_by(events: Iterator[dict[str, Any]]) -> Counter[tuple[str, str, str, int]]:
    """(API group, resource[/subresource], verb, response code) -> count, as RBAC sees them."""
    out: Counter[tuple[str, str, str, int]] = Counter()
    for event in events:
        ref = event.get("objectRef") or {}
        resource = ref.get("resource")
        if not resource:
            continue
        if ref.get("subresource"):
            resource = f"{resource}/{ref['subresource']}"
        code = int((event.get("responseStatus") or {}).get("code") or 0)
        out[(ref.get("apiGroup") or "", resource, event.get("verb", ""), code)] += 1
    return out
