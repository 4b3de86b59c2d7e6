"""Cluster settings the renderer needs: from the sweep file's `kubernetes:` block, the installed Helm
release's settings ConfigMap, or built-in defaults (in that order of precedence, sweep file first).

The Helm chart writes these as YAML under the key `settings.yaml` of a ConfigMap labelled
`app.kubernetes.io/name=xstilts` and `xstilts.io/settings=true`; `xstilts` reads it so that
`xstilts sweep submit --backend kubernetes` needs no repeated flags.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SETTINGS_CONFIGMAP_LABELS = {"app.kubernetes.io/name": "xstilts", "xstilts.io/settings": "true"}
SETTINGS_CONFIGMAP_KEY = "settings.yaml"
PHASE_KINDS = ("encoder", "mlm", "intermediate", "target", "evaluate", "controller")


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
    # ConfigMap holding the default accelerate / DeepSpeed configs (mounted at /etc/xstilts/accelerate).
    accelerate_config_map: str | None = Field(None, alias="accelerateConfigMap")
    # Optional PVC for the Hugging Face cache; an emptyDir otherwise.
    hf_cache_claim: str | None = Field(None, alias="hfCacheClaim")

    def preset(self, kind: str) -> ResourcePreset:
        return self.presets.get(kind, ResourcePreset())
