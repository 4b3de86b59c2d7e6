"""The in-cluster sweep controller (`xstilts sweep submit --in-cluster`): a ConfigMap holding the sweep
file and a Job that runs the same reconcile loop as a laptop would, with the pod's ServiceAccount.

It keeps no state of its own (the store and the cluster hold it), so a restarted or resubmitted
controller continues where the last one stopped, and a closed laptop does not stop the sweep.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from xstilts.render.job import STORE_LABEL, SWEEP_LABEL, failure_policy, restricted_security
from xstilts.render.names import controller_name, label_value, store_id
from xstilts.spec.cluster import ClusterSettings, ResourcePreset

SWEEP_DIR = "/etc/xstilts/sweep"
SWEEP_KEY = "sweep.yaml"
CONTAINER = "controller"
CACHE = "/var/cache/xstilts/cache"
DEFAULT_PRESET = ResourcePreset(cpu="500m", memory="1Gi", shm_size="64Mi")


def controller_labels(sweep_name: str, store_uri: str) -> dict[str, str]:
    # No xstilts.io/address: the backend's listing and watch of phase Jobs skip the controller.
    return {
        "app.kubernetes.io/name": "xstilts",
        "app.kubernetes.io/managed-by": "xstilts",
        "app.kubernetes.io/component": "controller",
        SWEEP_LABEL: label_value(sweep_name),
        STORE_LABEL: store_id(store_uri),
        "xstilts.io/phase": "controller",
    }


def controller_args(store_uri: str) -> list[str]:
    return ["sweep", "submit", f"{SWEEP_DIR}/{SWEEP_KEY}", "--backend", "kubernetes", "--store", store_uri]


def render_controller(
    sweep_file_text: str, sweep_name: str, store_uri: str, settings: ClusterSettings
) -> list[Any]:
    """[ConfigMap, Job], both named `xst-controller-<sweep>-<store id>`."""
    name = controller_name(sweep_name, store_uri)
    labels = controller_labels(sweep_name, store_uri)
    preset = settings.presets.get("controller") or DEFAULT_PRESET
    meta = k8s.V1ObjectMeta(name=name, namespace=settings.namespace, labels=labels)
    config_map = k8s.V1ConfigMap(
        api_version="v1", kind="ConfigMap", metadata=meta, data={SWEEP_KEY: sweep_file_text}
    )
    env = [
        k8s.V1EnvVar(name="XSTILTS_CACHE", value=CACHE),
        k8s.V1EnvVar(name="TMPDIR", value="/tmp"),
        k8s.V1EnvVar(name="HOME", value="/tmp"),
        k8s.V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
        # The phases' namespace: the controller renders into the namespace it runs in.
        k8s.V1EnvVar(name="XSTILTS_NAMESPACE", value=settings.namespace),
    ]
    if settings.s3.endpoint_url:
        env.append(k8s.V1EnvVar(name="AWS_ENDPOINT_URL", value=settings.s3.endpoint_url))
    if settings.s3.region:
        env.append(k8s.V1EnvVar(name="AWS_DEFAULT_REGION", value=settings.s3.region))
    secret = settings.s3.secret_name
    pod_security, container_security = restricted_security()
    requests = {"cpu": preset.cpu, "memory": preset.memory}
    container = k8s.V1Container(
        name=CONTAINER,
        image=settings.controller_image,
        image_pull_policy=settings.image_pull_policy,
        command=["xstilts"],
        args=controller_args(store_uri),
        env=env,
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret))] if secret else None,
        resources=k8s.V1ResourceRequirements(requests=requests, limits={"memory": preset.memory}),
        volume_mounts=[
            k8s.V1VolumeMount(name="sweep", mount_path=SWEEP_DIR, read_only=True),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
            k8s.V1VolumeMount(name="cache", mount_path=CACHE),
        ],
        security_context=container_security,
        termination_message_policy="FallbackToLogsOnError",
    )
    pod_spec = k8s.V1PodSpec(
        restart_policy="Never",
        containers=[container],
        # It talks to the API server: the ServiceAccount's token is mounted (the chart's Role).
        service_account_name=settings.service_account_name,
        automount_service_account_token=True,
        enable_service_links=False,
        security_context=pod_security,
        image_pull_secrets=[k8s.V1LocalObjectReference(name=n) for n in settings.image_pull_secrets] or None,
        volumes=[
            k8s.V1Volume(name="sweep", config_map=k8s.V1ConfigMapVolumeSource(name=name)),
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
            k8s.V1Volume(name="cache", empty_dir=k8s.V1EmptyDirVolumeSource()),
        ],
    )
    spec = k8s.V1JobSpec(
        template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod_spec),
        # A crash or a lost API connection restarts it, and it continues: it holds no state. The
        # sweep may run for weeks, so there is no deadline.
        backoff_limit=settings.backoff_limit,
        ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
        # Disruptions do not count; an invalid sweep file stays invalid (the phases' policy).
        pod_failure_policy=failure_policy(CONTAINER),
    )
    job = k8s.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=k8s.V1ObjectMeta(name=name, namespace=settings.namespace, labels=labels),
        spec=spec,
    )
    return [config_map, job]
