"""How to reach the cluster: the kubeconfig's current context, or the pod's ServiceAccount."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from xstilts.errors import XstiltsError

IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def in_cluster() -> bool:
    """Whether this process runs in a pod with a ServiceAccount token (the in-cluster controller)."""
    from kubernetes.config.incluster_config import SERVICE_HOST_ENV_NAME, SERVICE_TOKEN_FILENAME

    return bool(os.environ.get(SERVICE_HOST_ENV_NAME)) and Path(SERVICE_TOKEN_FILENAME).is_file()


def _kubeconfig_paths() -> list[Path]:
    raw = os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def cluster_configuration(use_in_cluster: bool | None = None) -> Any | None:
    """A `kubernetes.client.Configuration` for the current context, or None when no cluster is
    configured (no kubeconfig file and not in a pod).

    A kubeconfig named by `KUBECONFIG` wins; otherwise a pod uses its ServiceAccount, and a laptop
    `~/.kube/config`. The default configuration of the kubernetes package is left untouched.
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    if use_in_cluster is None:
        use_in_cluster = in_cluster() and not os.environ.get("KUBECONFIG")
    try:
        if use_in_cluster:
            config.load_incluster_config(client_configuration=configuration)
            return configuration
        paths = _kubeconfig_paths()
        if not any(p.is_file() for p in paths):
            return None
        config.load_kube_config(
            config_file=os.pathsep.join(map(str, paths)), client_configuration=configuration
        )
    except config.ConfigException as exc:
        raise XstiltsError(f"cannot load the Kubernetes configuration: {exc}") from None
    return configuration


def current_namespace(use_in_cluster: bool | None = None) -> str:
    """The namespace of the kubeconfig's current context (or the pod's), else "default"."""
    if use_in_cluster or (use_in_cluster is None and in_cluster() and not os.environ.get("KUBECONFIG")):
        try:
            return IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or "default"
        except OSError:
            return "default"
    try:
        from kubernetes import config

        paths = [p for p in _kubeconfig_paths() if p.is_file()]
        if paths:
            _, active = config.list_kube_config_contexts(config_file=os.pathsep.join(map(str, paths)))
            return (active or {}).get("context", {}).get("namespace") or "default"
    except Exception:  # a broken kubeconfig is reported when the client loads it
        pass
    return "default"
