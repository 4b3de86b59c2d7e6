"""Phase -> `V1Job` (and a headless `V1Service` for multi-node phases), built from the kubernetes
client's models. The local backend runs the very same Job's container command, args and env.

Rendered objects share their invariant parts (volumes, security contexts, the failure policy, ...)
with the other phases rendered under the same settings: that keeps rendering a 10,000-phase sweep
fast. Treat them as read-only; `model_copy(deep=True)` one before changing it in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from xstilts.errors import EXIT_CONFIG
from xstilts.plan.phase import Phase
from xstilts.render import deepspeed
from xstilts.render.dump import freeze
from xstilts.render.names import job_name, label_value, service_name, store_id
from xstilts.spec.cluster import ClusterSettings, ResourcePreset
from xstilts.spec.kinds import KINDS

CONTAINER = "phase"
STAGING = "/var/lib/xstilts/staging"
HF_HOME = "/var/cache/xstilts/hf"
CACHE = "/var/cache/xstilts/cache"
RENDEZVOUS_PORT = 29500
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
SWEEP_LABEL = "xstilts.io/sweep"
ADDRESS_LABEL = "xstilts.io/address"
# The short hash of the store URI (names.store_id): a Job belongs to one store.
STORE_LABEL = "xstilts.io/store"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# Lets a phase save a checkpoint after SIGTERM (preemption, drain, cancel) before it is killed.
GRACE_SECONDS = 120


def resources_for(phase: Phase, settings: ClusterSettings) -> ResourcePreset:
    """The phase's pod resources: built-in defaults <- the cluster's preset for the kind (chart
    `presets`, sweep `kubernetes.presets`) <- the fields the sweep's `resources:` block set.

    A phase from `expand()` remembers which fields the sweep set (pydantic's `model_fields_set`); a
    phase read back from a stored spec carries every field and so keeps its recorded resources.
    """
    base = settings.presets.get(KINDS[phase.kind].preset)
    explicit = phase.resources.model_fields_set
    if base is None or explicit >= set(ResourcePreset.model_fields):
        return phase.resources
    if not explicit:
        return base
    return base.model_copy(update={name: getattr(phase.resources, name) for name in explicit})


def labels_for(phase: Phase, sweep: str, store_uri: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "xstilts",
        "app.kubernetes.io/managed-by": "xstilts",
        "app.kubernetes.io/component": phase.kind,
        SWEEP_LABEL: label_value(sweep),
        STORE_LABEL: store_id(store_uri),
        "xstilts.io/phase": phase.kind,
        "xstilts.io/task": label_value(phase.label),
        ADDRESS_LABEL: label_value(phase.address),
    }


def phase_args(phase: Phase, store_uri: str) -> list[str]:
    return ["phase", "run", phase.address, "--store", store_uri]


def processes_per_node(phase: Phase, preset: ResourcePreset) -> int:
    """One per GPU for a kind that trains; other kinds are one process even when their pod has several
    GPUs (a second process would redo and re-commit the same work)."""
    return max(preset.gpu, 1) if KINDS[phase.kind].trains else 1


def _mixed_precision(phase: Phase) -> str:
    # The training loop passes its own choice to `Accelerator(mixed_precision=...)`, which takes
    # precedence over the launcher's; "auto" is decided there at run time (bf16 where the GPU has it),
    # so the launcher gets "no" rather than a guess that would fail on GPUs without bf16.
    value = str(getattr(phase.config, "training", {}).get("mixed_precision", "auto"))
    return value if value in ("no", "fp16", "bf16") else "no"


def _flags(**options: object) -> list[str]:
    return [part for key, value in options.items() for part in (f"--{key}", str(value))]


def command_and_args(phase: Phase, preset: ResourcePreset, store_uri: str) -> tuple[list[str], list[str]]:
    """`xstilts phase run ...`, or `accelerate launch` over every process of the phase.

    accelerate's `--num_processes` is the world size (all nodes); it runs torchrun with
    `num_processes // num_machines` workers per pod. `--multi_gpu` (or `--use_deepspeed`) must be
    explicit: without it accelerate falls back to one process when a pod sees a single GPU. On a
    multi-node phase every pod runs the same command and Kubernetes substitutes `$(NODE_RANK)` from
    the container's env (the Indexed Job's completion index); rank 0 is `<job>-0.<service>`.
    """
    nodes = preset.nodes
    processes = processes_per_node(phase, preset) * nodes
    if processes <= 1:
        return ["xstilts"], phase_args(phase, store_uri)
    spec = getattr(phase.config, "deepspeed", None)  # the kinds that train have one
    ds = spec.model_dump() if spec is not None else {}
    launch = ["launch"]
    launch += deepspeed.launch_flags(ds, nodes) if ds.get("enabled") else ["--multi_gpu"]
    launch += _flags(
        num_processes=processes,
        num_machines=nodes,
        mixed_precision=_mixed_precision(phase),
        dynamo_backend="no",
    )
    if nodes > 1:
        job, service = (f(phase.kind, phase.address, store_uri) for f in (job_name, service_name))
        rank0 = f"{job}-0.{service}"
        launch += _flags(
            machine_rank="$(NODE_RANK)", main_process_ip=rank0, main_process_port=RENDEZVOUS_PORT
        )
        launch += ["--same_network", *_flags(rdzv_backend="static")]
    return ["accelerate"], launch + ["-m", "xstilts", *phase_args(phase, store_uri)]


@dataclass(frozen=True)
class _Shared:
    """What a phase's Job takes from the settings and its resource preset alone, built (and
    validated) once: per phase only command, args, env, names and labels change, filled in with
    `model_copy` (a shallow copy, no re-validation)."""

    base_env: tuple[k8s.V1EnvVar, ...]
    node_rank: k8s.V1EnvVar | None
    cpu_processes: k8s.V1EnvVar | None
    container: k8s.V1Container
    pod_spec: k8s.V1PodSpec
    job_spec: k8s.V1JobSpec


_SHARED: dict[tuple[str, str], _Shared] = {}


def _shared(settings: ClusterSettings, preset: ResourcePreset) -> _Shared:
    key = (settings.model_dump_json(), preset.model_dump_json())
    found = _SHARED.get(key)
    if found is None:
        if len(_SHARED) > 256:
            _SHARED.clear()
        found = _SHARED[key] = _build_shared(settings, preset)
    return found


def _build_shared(settings: ClusterSettings, preset: ResourcePreset) -> _Shared:
    multi_node = preset.nodes > 1
    volumes, mounts = _volumes(settings, preset)
    pod_security, container_security = restricted_security()
    secret = settings.s3.secret_name
    node_rank = None
    if multi_node:
        path = f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"
        node_rank = k8s.V1EnvVar(
            name="NODE_RANK",
            value_from=k8s.V1EnvVarSource(field_ref=k8s.V1ObjectFieldSelector(field_path=path)),
        )
    container = k8s.V1Container(
        name=CONTAINER,
        image=settings.image,
        image_pull_policy=settings.image_pull_policy,
        command=["xstilts"],
        # Credentials only by reference: a manifest never holds a secret value.
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret))] if secret else None,
        resources=_resources(preset),
        volume_mounts=mounts,
        security_context=container_security,
        termination_message_policy="FallbackToLogsOnError",
        ports=[k8s.V1ContainerPort(container_port=RENDEZVOUS_PORT, name="rendezvous")]
        if multi_node
        else None,
    )
    pod_spec = k8s.V1PodSpec(
        restart_policy="Never",
        containers=[container],
        volumes=volumes,
        security_context=pod_security,
        service_account_name=settings.service_account_name,
        # Phases never call the API server: no token in the pod.
        automount_service_account_token=False,
        enable_service_links=False,
        node_selector=settings.node_selector or None,
        tolerations=[k8s.V1Toleration.model_validate(t) for t in settings.tolerations] or None,
        image_pull_secrets=[k8s.V1LocalObjectReference(name=n) for n in settings.image_pull_secrets] or None,
        termination_grace_period_seconds=GRACE_SECONDS,
    )
    job_spec = k8s.V1JobSpec(
        template=k8s.V1PodTemplateSpec(spec=pod_spec),
        backoff_limit=settings.backoff_limit,
        active_deadline_seconds=settings.active_deadline_seconds,
        # Safe to garbage-collect: `phase run` copies its log to <prefix>/logs/ in the store
        # periodically and at exit (xstilts/phases/context.py), so `sweep logs` still has it after.
        ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
        pod_failure_policy=failure_policy(),
        # Created suspended, Kueue unsuspends it on admission.
        suspend=True if settings.kueue.queue_name else None,
    )
    if multi_node:
        job_spec.completion_mode = "Indexed"
        job_spec.completions = preset.nodes
        job_spec.parallelism = preset.nodes
        # Do not start a replacement rank while the old pod is still terminating.
        job_spec.pod_replacement_policy = "Failed"
        job_spec.success_policy = k8s.V1SuccessPolicy(rules=[k8s.V1SuccessPolicyRule(succeeded_indexes="0")])
    base_env = tuple(_env(settings))
    cpu_processes = k8s.V1EnvVar(name="ACCELERATE_USE_CPU", value="1") if preset.gpu == 0 else None
    freeze(*base_env, node_rank, cpu_processes)
    for model, per_phase in ((container, {"command"}), (pod_spec, {"containers"}), (job_spec, {"template"})):
        freeze(*(value for name, value in model.__dict__.items() if name not in per_phase))
    return _Shared(
        base_env=base_env,
        node_rank=node_rank,
        # Several processes without GPUs (a CPU-only multi-node test): accelerate needs gloo.
        cpu_processes=cpu_processes,
        container=container,
        pod_spec=pod_spec,
        job_spec=job_spec,
    )


def _env(settings: ClusterSettings) -> list[k8s.V1EnvVar]:
    env = [
        k8s.V1EnvVar(name="XSTILTS_STAGING", value=STAGING),
        k8s.V1EnvVar(name="XSTILTS_CACHE", value=CACHE),
        k8s.V1EnvVar(name="HF_HOME", value=HF_HOME),
        k8s.V1EnvVar(name="TMPDIR", value="/tmp"),
        k8s.V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
        k8s.V1EnvVar(name="XSTILTS_IMAGE", value=settings.image),
        # torch otherwise starts one thread per core of the node, not of the pod's CPU request.
        k8s.V1EnvVar(
            name="OMP_NUM_THREADS",
            value_from=k8s.V1EnvVarSource(
                resource_field_ref=k8s.V1ResourceFieldSelector(
                    container_name=CONTAINER, resource="requests.cpu", divisor="1"
                )
            ),
        ),
    ]
    if settings.s3.endpoint_url:
        env.append(k8s.V1EnvVar(name="AWS_ENDPOINT_URL", value=settings.s3.endpoint_url))
    if settings.s3.region:
        env.append(k8s.V1EnvVar(name="AWS_DEFAULT_REGION", value=settings.s3.region))
    return env


def _volumes(
    settings: ClusterSettings, preset: ResourcePreset
) -> tuple[list[k8s.V1Volume], list[k8s.V1VolumeMount]]:
    """The root filesystem is read-only: everything a phase writes goes to these emptyDirs (or the
    optional Hugging Face cache PVC)."""
    volumes = [
        k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
        k8s.V1Volume(
            name="staging", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=preset.ephemeral_storage)
        ),
        k8s.V1Volume(name="cache", empty_dir=k8s.V1EmptyDirVolumeSource()),
        # DataLoader workers and NCCL need more than the runtime's 64 MB /dev/shm.
        k8s.V1Volume(
            name="dshm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=preset.shm_size)
        ),
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
    for data in settings.data_volumes:  # user-supplied corpora, read-only
        name = f"data-{data.name}"
        if data.claim_name:
            source = k8s.V1PersistentVolumeClaimVolumeSource(
                claim_name=data.claim_name, read_only=data.read_only
            )
            volumes.append(k8s.V1Volume(name=name, persistent_volume_claim=source))
        else:
            host = k8s.V1HostPathVolumeSource(path=data.host_path, type="Directory")
            volumes.append(k8s.V1Volume(name=name, host_path=host))
        mounts.append(k8s.V1VolumeMount(name=name, mount_path=data.mount_path, read_only=data.read_only))
    return volumes, mounts


def _resources(preset: ResourcePreset) -> k8s.V1ResourceRequirements:
    requests: dict[str, str] = {"cpu": preset.cpu, "memory": preset.memory}
    limits: dict[str, str] = {"memory": preset.memory}
    if preset.ephemeral_storage:
        requests["ephemeral-storage"] = preset.ephemeral_storage
    if preset.gpu:
        # Extended resources go in limits; Kubernetes sets the request equal to it.
        limits["nvidia.com/gpu"] = str(preset.gpu)
    return k8s.V1ResourceRequirements(requests=requests, limits=limits)


def restricted_security() -> tuple[k8s.V1PodSecurityContext, k8s.V1SecurityContext]:
    """Pod Security Standard "restricted"; the root filesystem is read-only, emptyDirs are writable."""
    seccomp = k8s.V1SeccompProfile(type="RuntimeDefault")
    pod = k8s.V1PodSecurityContext(
        run_as_non_root=True, run_as_user=1000, run_as_group=1000, fs_group=1000, seccomp_profile=seccomp
    )
    container = k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        run_as_non_root=True,
        run_as_user=1000,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=seccomp,
    )
    return pod, container


def failure_policy(container: str = CONTAINER) -> k8s.V1PodFailurePolicy:
    return k8s.V1PodFailurePolicy(
        rules=[
            # Preemption and eviction do not burn retries.
            k8s.V1PodFailurePolicyRule(
                action="Ignore",
                on_pod_conditions=[
                    k8s.V1PodFailurePolicyOnPodConditionsPattern(type="DisruptionTarget", status="True")
                ],
            ),
            # A configuration error will fail again: fail the Job at once.
            k8s.V1PodFailurePolicyRule(
                action="FailJob",
                on_exit_codes=k8s.V1PodFailurePolicyOnExitCodesRequirement(
                    container_name=container, operator="In", values=[EXIT_CONFIG]
                ),
            ),
        ]
    )


def render_phase(phase: Phase, sweep: str, store_uri: str, settings: ClusterSettings) -> list[Any]:
    """The Kubernetes objects of one phase: its Job, plus a headless Service when it spans nodes."""
    preset = resources_for(phase, settings)
    shared = _shared(settings, preset)
    multi_node = preset.nodes > 1
    name = job_name(phase.kind, phase.address, store_uri)
    subdomain = service_name(phase.kind, phase.address, store_uri) if multi_node else None
    labels = labels_for(phase, sweep, store_uri)
    command, args = command_and_args(phase, preset, store_uri)
    env = [*shared.base_env, k8s.V1EnvVar(name="XSTILTS_PHASE", value=phase.name)]
    if shared.node_rank is not None:
        env.append(shared.node_rank)  # defined in the container, so Kubernetes expands $(NODE_RANK) in args
    if command[0] == "accelerate" and shared.cpu_processes is not None and "--multi_gpu" in args:
        env.append(shared.cpu_processes)
    container = shared.container.model_copy(update={"command": command, "args": args, "env": env})
    pod_update: dict[str, Any] = {"containers": [container]}
    if subdomain:
        pod_update["subdomain"] = subdomain
    pod_spec = shared.pod_spec.model_copy(update=pod_update)
    template = k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod_spec)
    job_labels = dict(labels)
    if settings.kueue.queue_name:
        # On the Job only: Kueue admits the Job (unsuspends it) as a whole.
        job_labels[KUEUE_QUEUE_LABEL] = settings.kueue.queue_name
    job = k8s.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace=settings.namespace,
            labels=job_labels,
            annotations={"xstilts.io/phase-name": phase.name},
        ),
        spec=shared.job_spec.model_copy(update={"template": template}),
    )
    if not multi_node:
        return [job]
    service = k8s.V1Service(
        api_version="v1",
        kind="Service",
        metadata=k8s.V1ObjectMeta(name=subdomain, namespace=settings.namespace, labels=labels),
        spec=k8s.V1ServiceSpec(
            cluster_ip="None",
            selector={JOB_NAME_LABEL: name},
            # Rank 0's DNS name must resolve before its pod is Ready (it has no readiness probe).
            publish_not_ready_addresses=True,
            ports=[k8s.V1ServicePort(name="rendezvous", port=RENDEZVOUS_PORT)],
        ),
    )
    return [job, service]
