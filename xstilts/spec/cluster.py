"""Cluster settings the renderer needs: from the sweep file's `kubernetes:` block, the installed Helm
release's settings ConfigMap, or built-in defaults (in that order of precedence, sweep file first).

The Helm chart writes these as YAML under the key `settings.yaml` of a ConfigMap labelled
`app.kubernetes.io/name=xstilts` and `xstilts.io/settings=true`; `xstilts` reads it so that
`xstilts sweep submit --backend kubernetes` needs no repeated flags.
"""

from __future__ import annotations

import logging
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from xstilts.errors import ConfigError

log = logging.getLogger(__name__)

SETTINGS_CONFIGMAP_LABELS = {"app.kubernetes.io/name": "xstilts", "xstilts.io/settings": "true"}
SETTINGS_CONFIGMAP_KEY = "settings.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResourcePreset(_Strict):
    """Resources for one phase's pod. GPUs go to limits["nvidia.com/gpu"]; nodes > 1 means an Indexed Job."""

    cpu: str = "2"
    memory: str = "8Gi"
    gpu: int = 0
    nodes: int = 1
    shm_size: str = Field("1Gi", alias="shmSize")
    ephemeral_storage: str | None = Field(None, alias="ephemeralStorage")


class S3Settings(_Strict):
    endpoint_url: str | None = Field(None, alias="endpointUrl")
    # Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and optional AWS_* keys), mounted via envFrom.
    secret_name: str | None = Field(None, alias="secretName")
    region: str | None = None


class KueueSettings(_Strict):
    queue_name: str | None = Field(None, alias="queueName")


class DataVolume(_Strict):
    """A volume with user-supplied corpora (CCGbank, BUCC, Mewsli-X) mounted read-only into every phase
    pod: a PersistentVolumeClaim, or a node's directory (hostPath, where the cluster's Pod Security
    level allows it; the restricted level does not)."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=40)
    mount_path: str = Field(alias="mountPath", pattern=r"^/")
    claim_name: str | None = Field(None, alias="claimName")
    host_path: str | None = Field(None, alias="hostPath", pattern=r"^/")
    read_only: bool = Field(True, alias="readOnly")

    @model_validator(mode="after")
    def _one_source(self) -> DataVolume:
        if (self.claim_name is None) == (self.host_path is None):
            raise ValueError("give exactly one of claimName (a PersistentVolumeClaim) and hostPath")
        return self


class ClusterSettings(_Strict):
    namespace: str = "default"
    image: str = "ghcr.io/xstilts/xstilts-trainer:0.1.0"
    controller_image: str = Field("ghcr.io/xstilts/xstilts-controller:0.1.0", alias="controllerImage")
    image_pull_policy: str = Field("IfNotPresent", alias="imagePullPolicy")
    image_pull_secrets: list[str] = Field(default_factory=list, alias="imagePullSecrets")
    service_account_name: str | None = Field(None, alias="serviceAccountName")
    store: str | None = None
    s3: S3Settings = Field(default_factory=S3Settings)
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    kueue: KueueSettings = Field(default_factory=KueueSettings)
    presets: dict[str, ResourcePreset] = Field(default_factory=dict)
    backoff_limit: int = Field(3, alias="backoffLimit")
    active_deadline_seconds: int = Field(7 * 24 * 3600, alias="activeDeadlineSeconds")
    ttl_seconds_after_finished: int | None = Field(7 * 24 * 3600, alias="ttlSecondsAfterFinished")
    # Optional PVC for the Hugging Face cache; an emptyDir otherwise.
    hf_cache_claim: str | None = Field(None, alias="hfCacheClaim")
    # Volumes with user-supplied corpora, mounted read-only into every phase pod (`data.*_path` point there).
    data_volumes: list[DataVolume] = Field(default_factory=list, alias="dataVolumes")
    # How long the reconcile loop (`sweep submit` without --detach, the in-cluster controller) keeps
    # retrying an unreachable or restarting API server before it gives up.
    api_outage_seconds: float = Field(600, alias="apiOutageSeconds", ge=0)
    # How long a phase's pod may stay unable to start (image pull errors, Unschedulable, a missing
    # Secret or ConfigMap, CrashLoopBackOff) before the reconcile loop fails the phase; null: never
    # (wait for activeDeadlineSeconds). Raise it where phases queue for GPUs as Unschedulable pods
    # (Kueue's suspended Jobs have no pods, so they never count) or an autoscaler adds nodes slowly.
    pod_problem_grace_seconds: int | None = Field(900, alias="podProblemGraceSeconds", ge=0)

    @model_validator(mode="after")
    def _unique_data_volume_names(self) -> ClusterSettings:
        names = [volume.name for volume in self.data_volumes]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"dataVolumes: the name {twice[0]!r} is given twice; give each its own name")
        return self

    def preset(self, kind: str) -> ResourcePreset:
        return self.presets.get(kind, ResourcePreset())


def parse_settings(text: str, source: str, namespace: str | None = None) -> ClusterSettings:
    """The settings in `text`; with `namespace` (where the ConfigMap was found) that namespace, whatever
    the text says: a release's settings govern the namespace they are installed in, so a copy of the
    manifests re-namespaced by kustomize cannot point `xstilts` at another namespace's Jobs."""
    try:
        data = yaml.safe_load(text) or {}
        if namespace is not None and isinstance(data, dict):
            if data.get("namespace") not in (None, namespace):
                log.warning(
                    "%s says namespace %s; using %s, where it is installed",
                    source,
                    data["namespace"],
                    namespace,
                )
            data["namespace"] = namespace
        return ClusterSettings.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()
        raise ConfigError(
            f"invalid settings: {' '.join(first[:3])}",
            file=source,
            fix="reinstall the chart (helm upgrade) or fix the ConfigMap",
        ) from None


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _merge_by_name(base: list[dict[str, Any]], overrides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = {item["name"]: item for item in base}
    merged.update((item["name"], item) for item in overrides)
    return list(merged.values())


def merge_settings(base: ClusterSettings | None, overrides: dict[str, Any]) -> ClusterSettings:
    """`base` (the release's settings, or the defaults) with the sweep file's `kubernetes:` block on
    top. Mappings merge key by key (`presets: {target: {gpu: 8}}` keeps the preset's cpu and memory);
    `dataVolumes` merge by name (a sweep's entry replaces the release's of that name, others add);
    other lists and scalars replace. Keys may be camelCase (as in values.yaml) or snake_case."""
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
    merged = _deep_merge(data, top)
    if "dataVolumes" in data and "dataVolumes" in top:
        merged["dataVolumes"] = _merge_by_name(data["dataVolumes"], top["dataVolumes"])
    return ClusterSettings.model_validate(merged)
