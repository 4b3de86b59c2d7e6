"""The installed xstilts release: how to reach its cluster, and the settings its Helm chart publishes.

The chart writes `ClusterSettings` as YAML under `settings.yaml` in the ConfigMap `<fullname>-settings`,
labelled `app.kubernetes.io/name=xstilts,xstilts.io/settings=true`. `load_release_settings` reads it so
that `xstilts sweep submit --backend kubernetes` needs no repeated flags; the sweep file's
`kubernetes:` block still wins (`merge_settings`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from xstilts.errors import ConfigError, XstiltsError
from xstilts.render.settings import SETTINGS_CONFIGMAP_KEY, SETTINGS_CONFIGMAP_LABELS, ClusterSettings

log = logging.getLogger(__name__)

SETTINGS_SELECTOR = ",".join(f"{k}={v}" for k, v in SETTINGS_CONFIGMAP_LABELS.items())
DEFAULT_SETTINGS_NAME = "xstilts-settings"
RELEASE_ENV = "XSTILTS_RELEASE"
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


def parse_settings(text: str, source: str) -> ClusterSettings:
    try:
        data = yaml.safe_load(text) or {}
        return ClusterSettings.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()
        raise ConfigError(
            f"invalid settings: {' '.join(first[:3])}",
            file=source,
            fix="reinstall the chart (helm upgrade) or fix the ConfigMap",
        ) from None


def load_release_settings(namespace: str | None, api: Any = None) -> ClusterSettings | None:
    """The installed release's settings, or None when no cluster is configured at all.

    `namespace` None: the current context's namespace. With several releases in the namespace, the
    one named by `XSTILTS_RELEASE`, else `xstilts-settings`, else a ConfigError. A reachable cluster
    without the chart gives the built-in defaults in that namespace (with a warning). `api` is a
    `CoreV1Api` (tests pass one); otherwise it is built from the kubeconfig or the pod's ServiceAccount.
    """
    from xstilts.backends.kubernetes import KubeApi

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
    return parse_settings(text, source)


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def merge_settings(base: ClusterSettings | None, overrides: dict[str, Any]) -> ClusterSettings:
    """`base` (the release's settings, or the defaults) with the sweep file's `kubernetes:` block on
    top. Mappings merge key by key (`presets: {target: {gpu: 8}}` keeps the preset's cpu and memory);
    lists and scalars replace. Keys may be camelCase (as in values.yaml) or snake_case."""
    try:
        # Validating the overrides alone gives one spelling (the aliases) and only the keys they set.
        top = ClusterSettings.model_validate(overrides).model_dump(by_alias=True, exclude_unset=True)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid kubernetes settings: {' '.join(str(exc).splitlines()[1:3])}",
            field="kubernetes",
            fix="see charts/xstilts/values.yaml for the keys",
        ) from None
    data = base.model_dump(by_alias=True, exclude_unset=True) if base is not None else {}
    return ClusterSettings.model_validate(_deep_merge(data, top))
