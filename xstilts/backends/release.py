"""The installed xstilts release: the settings its Helm chart publishes.

The chart writes `ClusterSettings` as YAML under `settings.yaml` in the ConfigMap `<fullname>-settings`,
labelled `app.kubernetes.io/name=xstilts,xstilts.io/settings=true`. `load_release_settings` reads it so
that `xstilts sweep submit --backend kubernetes` needs no repeated flags; the sweep file's
`kubernetes:` block still wins (`merge_settings`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from xstilts.backends.kubeconfig import cluster_configuration, current_namespace
from xstilts.backends.kubernetes import KubeApi
from xstilts.errors import ConfigError
from xstilts.spec.cluster import (
    SETTINGS_CONFIGMAP_KEY,
    SETTINGS_CONFIGMAP_LABELS,
    ClusterSettings,
    parse_settings,
)

log = logging.getLogger(__name__)

SETTINGS_SELECTOR = ",".join(f"{k}={v}" for k, v in SETTINGS_CONFIGMAP_LABELS.items())
DEFAULT_SETTINGS_NAME = "xstilts-settings"
RELEASE_ENV = "XSTILTS_RELEASE"


def _pick(items: list[dict[str, Any]], namespace: str) -> dict[str, Any]:
    if len(items) == 1:
        return items[0]
    names = sorted(i["metadata"]["name"] for i in items)
    release = os.environ.get(RELEASE_ENV)
    if release:
        wanted = {f"{release}-settings", f"{release}-xstilts-settings"}
        found = [
            i
            for i in items
            if i["metadata"]["name"] in wanted
            or (i["metadata"].get("labels") or {}).get("app.kubernetes.io/instance") == release
        ]
        if len(found) == 1:
            return found[0]
        raise ConfigError(
            f"{RELEASE_ENV}={release} matches {len(found)} of the settings ConfigMaps in namespace "
            f"{namespace} ({', '.join(names)})",
            fix=f"set {RELEASE_ENV} to one release's name",
        )
    for item in items:
        if item["metadata"]["name"] == DEFAULT_SETTINGS_NAME:
            return item
    raise ConfigError(
        f"several xstilts releases in namespace {namespace} ({', '.join(names)})",
        fix=f"set {RELEASE_ENV} to the Helm release to use",
    )


def load_release_settings(namespace: str | None, api: Any = None) -> ClusterSettings | None:
    """The installed release's settings, or None when no cluster is configured at all.

    `namespace` None: the current context's namespace. With several releases in the namespace, the
    one named by `XSTILTS_RELEASE`, else `xstilts-settings`, else a ConfigError. A reachable cluster
    without the chart gives the built-in defaults in that namespace (with a warning). `api` is a
    `CoreV1Api` (tests pass one); otherwise it is built from the kubeconfig or the pod's ServiceAccount.
    """
    if api is None:
        configuration = cluster_configuration()
        if configuration is None:
            return None
        namespace = namespace or current_namespace()
        kube = KubeApi.from_configuration(configuration, namespace)
    else:
        namespace = namespace or "default"
        kube = KubeApi(api.api_client, namespace)
    try:
        items = kube.list("configmaps", SETTINGS_SELECTOR)
    finally:
        if api is None:
            kube.close()
    if not items:
        log.warning(
            "no xstilts settings ConfigMap (%s) in namespace %s: using built-in defaults; install the "
            "chart (charts/xstilts) or set `kubernetes:` in the sweep file",
            SETTINGS_SELECTOR,
            namespace,
        )
        return ClusterSettings(namespace=namespace)
    chosen = _pick(items, namespace)
    source = f"configmap/{chosen['metadata']['name']} (namespace {namespace})"
    text = (chosen.get("data") or {}).get(SETTINGS_CONFIGMAP_KEY)
    if text is None:
        raise ConfigError(f"no key {SETTINGS_CONFIGMAP_KEY}", file=source, fix="reinstall the chart")
    return parse_settings(text, source, namespace)
