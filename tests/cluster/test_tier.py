"""How the cluster tier picks its cluster, and what it says when it has none (no cluster needed)."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

from tests.cluster.conftest import KUBE_DIR, REPO, _reachable, no_cluster_reason


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_loopback_control_plane_is_looked_for_next_to_the_checkout() -> None:
    assert KUBE_DIR == REPO.resolve().parent / "shared" / "kube"


def test_an_unreachable_kubeconfig_is_named_in_the_skip_message(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    problem = _reachable(str(kubeconfig))
    assert problem is not None and "refused" in problem.lower(), problem
    reason = no_cluster_reason(str(kubeconfig), problem, tmp_path / "shared" / "kube")
    assert reason.startswith(f"no cluster to test against: {problem} (KUBECONFIG={kubeconfig})")
    assert f"no loopback control plane at {tmp_path / 'shared' / 'kube'}" in reason
    assert "k8s/minikube/setup.sh" in reason


def test_no_kubeconfig_says_so() -> None:
    reason = no_cluster_reason(None, "KUBECONFIG is not set", Path("/nowhere/shared/kube"))
    assert "KUBECONFIG is not set (KUBECONFIG=unset)" in reason
    assert "/nowhere/shared/kube" in reason
