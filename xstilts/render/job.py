"""Phase -> `V1Job` (and a headless `V1Service` for multi-node phases), built from the kubernetes
client's models. The local backend runs the very same Job's container command, args and env."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from xstilts.errors import EXIT_CONFIG
from xstilts.plan.phase import Phase
from xstilts.render.names import job_name, label_value, service_name
from xstilts.render.settings import ClusterSettings, ResourcePreset

CONTAINER = "phase"
STAGING = "/var/lib/xstilts/staging"
HF_HOME = "/var/cache/xstilts/hf"
CACHE = "/var/cache/xstilts/cache"
ACCELERATE_CONFIG_DIR = "/etc/xstilts/accelerate"
RENDEZVOUS_PORT = 29500
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def labels_for(phase: Phase, sweep: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "xstilts",
        "app.kubernetes.io/managed-by": "xstilts",
        "app.kubernetes.io/component": phase.kind,
        "xstilts.io/sweep": label_value(sweep),
        "xstilts.io/phase": phase.kind,
        "xstilts.io/task": label_value(phase.label),
        "xstilts.io/address": phase.address,
    }


def phase_args(phase: Phase, store_uri: str) -> list[str]:
    return ["phase", "run", phase.address, "--store", store_uri]


def command_and_args(phase: Phase, preset: ResourcePreset, store_uri: str, name: str) -> tuple[list[str], list[str]]:
    """`xstilts phase run ...`, or `accelerate launch` across the pod's GPUs (and nodes) when there are several."""
    processes = max(preset.gpu, 1) * preset.nodes
    if processes <= 1:
        return ["xstilts"], phase_args(phase, store_uri)
    launch = ["accelerate", "launch", "--num_processes", str(processes), "--num_machines", str(preset.nodes)]
    if preset.nodes > 1:
        launch += [
            "--machine_rank", "$(NODE_RANK)",
            "--main_process_ip", f"{name}-0.{service_name(phase.kind, phase.address)}",
            "--main_process_port", str(RENDEZVOUS_PORT),
        ]  # fmt: skip
    else:
        launch += ["--multi_gpu"]
    return launch[:1], launch[1:] + ["-m", "xstilts"] + phase_args(phase, store_uri)


def _env(phase: Phase, settings: ClusterSettings, preset: ResourcePreset) -> list[k8s.V1EnvVar]:
    env = [
        k8s.V1EnvVar(name="XSTILTS_STAGING", value=STAGING),
        k8s.V1EnvVar(name="XSTILTS_CACHE", value=CACHE),
        k8s.V1EnvVar(name="HF_HOME", value=HF_HOME),
        k8s.V1EnvVar(name="TMPDIR", value="/tmp"),
        k8s.V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
        k8s.V1EnvVar(name="XSTILTS_IMAGE", value=settings.image),
        k8s.V1EnvVar(name="XSTILTS_PHASE", value=phase.name),
    ]
    if settings.s3.endpoint_url:
        env.append(k8s.V1EnvVar(name="AWS_ENDPOINT_URL", value=settings.s3.endpoint_url))
    if settings.s3.region:
        env.append(k8s.V1EnvVar(name="AWS_DEFAULT_REGION", value=settings.s3.region))
    if preset.nodes > 1:
        source = k8s.V1EnvVarSource(
            field_ref=k8s.V1ObjectFieldSelector(field_path=f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']")
        )
        env.append(k8s.V1EnvVar(name="NODE_RANK", value_from=source))
    return env


def _volumes(settings: ClusterSettings, preset: ResourcePreset) -> tuple[list[k8s.V1Volume], list[k8s.V1VolumeMount]]:
    volumes = [
        k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
        k8s.V1Volume(name="staging", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=preset.ephemeral_storage)),
        k8s.V1Volume(name="cache", empty_dir=k8s.V1EmptyDirVolumeSource()),
        k8s.V1Volume(name="dshm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=preset.shm_size)),
    ]
    if settings.hf_cache_claim:
        claim = k8s.V1PersistentVolumeClaimVolumeSource(claim_name=settings.hf_cache_claim)
        volumes.append(k8s.V1Volume(name="hf-cache", persistent_volume_claim=claim))
    else:
        volumes.append(k8s.V1Volume(name="hf-cache", empty_dir=k8s.V1EmptyDirVolumeSource()))
    mounts = [
        k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
        k8s.V1VolumeMount(name="staging", mount_path=STAGING),
        k8s.V1VolumeMount(name="cache", mount_path=CACHE),
        k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm"),
        k8s.V1VolumeMount(name="hf-cache", mount_path=HF_HOME),
    ]
    if settings.accelerate_config_map:
        cm = k8s.V1ConfigMapVolumeSource(name=settings.accelerate_config_map)
        volumes.append(k8s.V1Volume(name="accelerate-config", config_map=cm))
        mounts.append(k8s.V1VolumeMount(name="accelerate-config", mount_path=ACCELERATE_CONFIG_DIR, read_only=True))
    return volumes, mounts


def _resources(preset: ResourcePreset) -> k8s.V1ResourceRequirements:
    requests: dict[str, str] = {"cpu": preset.cpu, "memory": preset.memory}
    limits: dict[str, str] = {"memory": preset.memory}
    if preset.ephemeral_storage:
        requests["ephemeral-storage"] = preset.ephemeral_storage
    if preset.gpu:
        limits["nvidia.com/gpu"] = str(preset.gpu)
    return k8s.V1ResourceRequirements(requests=requests, limits=limits)


def _security() -> tuple[k8s.V1PodSecurityContext, k8s.V1SecurityContext]:
    """Pod Security Standard "restricted"; the root filesystem is read-only, emptyDirs are writable."""
    seccomp = k8s.V1SeccompProfile(type="RuntimeDefault")
    pod = k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=1000, run_as_group=1000, fs_group=1000,
                                   seccomp_profile=seccomp)  # fmt: skip
    container = k8s.V1SecurityContext(
        allow_privilege_escalation=False, run_as_non_root=True, read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]), seccomp_profile=seccomp,
    )  # fmt: skip
    return pod, container


def render_phase(phase: Phase, sweep: str, store_uri: str, settings: ClusterSettings) -> list[Any]:
    """The Kubernetes objects of one phase: its Job, plus a headless Service when it spans nodes."""
    preset = phase.resources
    name = job_name(phase.kind, phase.address)
    labels = labels_for(phase, sweep)
    if settings.kueue.queue_name:
        labels["kueue.x-k8s.io/queue-name"] = settings.kueue.queue_name
    command, args = command_and_args(phase, preset, store_uri, name)
    volumes, mounts = _volumes(settings, preset)
    pod_security, container_security = _security()
    secret = settings.s3.secret_name
    container = k8s.V1Container(
        name=CONTAINER,
        image=settings.image,
        image_pull_policy=settings.image_pull_policy,
        command=command,
        args=args,
        env=_env(phase, settings, preset),
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret))] if secret else None,
        resources=_resources(preset),
        volume_mounts=mounts,
        security_context=container_security,
        termination_message_policy="FallbackToLogsOnError",
        ports=[k8s.V1ContainerPort(container_port=RENDEZVOUS_PORT, name="rendezvous")] if preset.nodes > 1 else None,
    )
    pod_spec = k8s.V1PodSpec(
        restart_policy="Never",
        containers=[container],
        volumes=volumes,
        security_context=pod_security,
        service_account_name=settings.service_account_name,
        node_selector=settings.node_selector or None,
        tolerations=[k8s.V1Toleration(**_snake(t)) for t in settings.tolerations] or None,
        image_pull_secrets=[k8s.V1LocalObjectReference(name=n) for n in settings.image_pull_secrets] or None,
        subdomain=service_name(phase.kind, phase.address) if preset.nodes > 1 else None,
        termination_grace_period_seconds=120,
    )
    failure_policy = k8s.V1PodFailurePolicy(rules=[
        # Preemption and eviction do not burn retries.
        k8s.V1PodFailurePolicyRule(action="Ignore", on_pod_conditions=[
            k8s.V1PodFailurePolicyOnPodConditionsPattern(type="DisruptionTarget", status="True")]),
        # A configuration error will fail again: fail the Job at once.
        k8s.V1PodFailurePolicyRule(action="FailJob", on_exit_codes=k8s.V1PodFailurePolicyOnExitCodesRequirement(
            container_name=CONTAINER, operator="In", values=[EXIT_CONFIG])),
    ])  # fmt: skip
    spec = k8s.V1JobSpec(
        template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=dict(labels)), spec=pod_spec),
        backoff_limit=settings.backoff_limit,
        active_deadline_seconds=settings.active_deadline_seconds,
        ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
        pod_failure_policy=failure_policy,
        suspend=True if settings.kueue.queue_name else None,
    )
    if preset.nodes > 1:
        spec.completion_mode = "Indexed"
        spec.completions = preset.nodes
        spec.parallelism = preset.nodes
        spec.pod_replacement_policy = "Failed"
        spec.success_policy = k8s.V1SuccessPolicy(rules=[k8s.V1SuccessPolicyRule(succeeded_indexes="0")])
    job = k8s.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=k8s.V1ObjectMeta(name=name, namespace=settings.namespace, labels=labels,
                                  annotations={"xstilts.io/phase-name": phase.name}),  # fmt: skip
        spec=spec,
    )
    objects: list[Any] = [job]
    if preset.nodes > 1:
        objects.append(k8s.V1Service(
            api_version="v1", kind="Service",
            metadata=k8s.V1ObjectMeta(name=service_name(phase.kind, phase.address), namespace=settings.namespace,
                                      labels=labels),
            spec=k8s.V1ServiceSpec(cluster_ip="None", selector={"job-name": name},
                                   ports=[k8s.V1ServicePort(name="rendezvous", port=RENDEZVOUS_PORT)]),
        ))  # fmt: skip
    return objects


def _snake(data: dict[str, Any]) -> dict[str, Any]:
    """camelCase keys (as in values.yaml) -> the client's snake_case keyword arguments."""
    out = {}
    for key, value in data.items():
        out["".join("_" + c.lower() if c.isupper() else c for c in key)] = value
    return out
