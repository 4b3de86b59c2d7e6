"""The phase Job renderer: every phase kind in every resource/cluster variant renders manifests that
validate against Kubernetes 1.31 and 1.35, follow Pod Security "restricted", and carry the fields
DESIGN.md section 3 lists."""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml

from tests.conftest import example_config
from tests.render.conftest import (
    STORE,
    VARIANTS,
    name_and_label_problems,
    pod_security_violations,
    settings_for,
    validation_errors,
    variant,
)
from xstilts.errors import EXIT_CONFIG
from xstilts.plan.phase import Phase
from xstilts.render.dump import to_dict, to_yaml
from xstilts.render.job import render_phase, resources_for
from xstilts.render.names import (
    controller_name,
    dns_label,
    job_name,
    label_value,
    service_name,
    store_id,
)
from xstilts.spec.cluster import ClusterSettings, ResourcePreset

SECRET_ENV = {"AWS_ACCESS_KEY_ID": "AKIASENTINEL1234", "AWS_SECRET_ACCESS_KEY": "sentinel/secret+value"}


def jobs_of(name: str, kind: str | None = None) -> list[dict[str, Any]]:
    _, _, rendered = variant(name)
    jobs = [objs[0] for objs in rendered]
    return [j for j in jobs if kind is None or j["metadata"]["labels"]["xstilts.io/phase"] == kind]


def container(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]["containers"][0]


def argv(job: dict[str, Any]) -> list[str]:
    return container(job)["command"] + container(job)["args"]


def env(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(job).get("env", [])}


def test_every_variant_is_valid_restricted_and_well_named(variant_name: str) -> None:
    plan, _, rendered = variant(variant_name)
    assert {p.kind for p in plan.ordered()} == {"encoder", "mlm", "intermediate", "target", "evaluate"}
    assert any(p.kind == "evaluate" and p.label == "tatoeba" for p in plan.ordered())  # retrieval, no target
    objects = [o for objs in rendered for o in objs]
    assert validation_errors(objects) == []
    assert pod_security_violations(objects) == []
    assert name_and_label_problems(objects) == []


def test_the_checks_catch_bad_manifests() -> None:
    job = yaml.safe_load(yaml.safe_dump(jobs_of("single-gpu", "target")[0]))
    job["spec"]["template"]["spec"]["containers"][0]["resurces"] = {}
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    job["metadata"]["name"] = "Xst_bad"
    job["metadata"]["labels"]["xstilts.io/task"] = "-bad-"
    assert any("resurces" in e for e in validation_errors([job]))
    assert any("allowPrivilegeEscalation" in p for p in pod_security_violations([job]))
    assert len(name_and_label_problems([job])) == 2


def test_job_fields_from_the_design() -> None:
    job = jobs_of("single-gpu", "target")[0]
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert "generateName" not in job["metadata"]
    labels = job["metadata"]["labels"]
    assert labels["xstilts.io/store"] == store_id(STORE)
    assert job["metadata"]["name"] == f"xst-target-{labels['xstilts.io/address']}-{store_id(STORE)}"
    assert set(job["metadata"]["labels"]) >= {
        "xstilts.io/store",
        "app.kubernetes.io/name",
        "app.kubernetes.io/managed-by",
        "xstilts.io/sweep",
        "xstilts.io/phase",
        "xstilts.io/task",
        "xstilts.io/address",
    }
    assert job["metadata"]["labels"]["xstilts.io/sweep"] == "render-test"
    assert spec["template"]["metadata"]["labels"] == job["metadata"]["labels"]
    assert pod["restartPolicy"] == "Never"
    assert spec["backoffLimit"] == 3 and spec["activeDeadlineSeconds"] == 7 * 24 * 3600
    assert spec["ttlSecondsAfterFinished"] == 7 * 24 * 3600
    assert spec["podFailurePolicy"]["rules"] == [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "phase", "operator": "In", "values": [EXIT_CONFIG]},
        },
    ]
    assert "suspend" not in spec and "completionMode" not in spec
    c = container(job)
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["command"] == ["xstilts"] and c["args"][:3] == [
        "phase",
        "run",
        job["metadata"]["labels"]["xstilts.io/address"],
    ]
    assert c["args"][3:] == ["--store", STORE]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    for path in ("/tmp", env(job)["HF_HOME"], env(job)["XSTILTS_STAGING"], env(job)["XSTILTS_CACHE"]):
        assert "emptyDir" in volumes[mounts[path]], path
    assert pod["automountServiceAccountToken"] is False
    assert env(job)["XSTILTS_PHASE"] == job["metadata"]["annotations"]["xstilts.io/phase-name"]


def test_cpu_only_evaluation_has_no_gpu() -> None:
    for job in jobs_of("cpu-evaluation", "evaluate"):
        assert "nvidia.com/gpu" not in container(job)["resources"].get("limits", {})
        assert container(job)["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}
        assert argv(job)[:3] == ["xstilts", "phase", "run"]


def test_multi_gpu_training_uses_accelerate_in_one_pod() -> None:
    for job in (
        jobs_of("multi-gpu", "target") + jobs_of("multi-gpu", "intermediate") + jobs_of("multi-gpu", "mlm")
    ):
        args = argv(job)
        assert args[:3] == ["accelerate", "launch", "--multi_gpu"]
        assert (
            args[args.index("--num_processes") + 1] == "8" and args[args.index("--num_machines") + 1] == "1"
        )
        assert args[args.index("-m") :][:4] == ["-m", "xstilts", "phase", "run"]
        assert "--machine_rank" not in args
        assert container(job)["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert "completionMode" not in job["spec"]


def test_only_training_phases_start_several_processes() -> None:
    phase = Phase(
        kind="evaluate",
        address="0123456789ab",
        label="xnli",
        config=example_config("evaluate"),
        resources=ResourcePreset(gpu=8),
    )
    (job,) = render_phase(phase, "s", STORE, ClusterSettings())
    assert to_dict(job)["spec"]["template"]["spec"]["containers"][0]["command"] == ["xstilts"]


def test_multi_node_is_an_indexed_job_with_a_headless_service() -> None:
    _, _, rendered = variant("multi-node")
    multi = [
        objs for objs in rendered if objs[0]["metadata"]["labels"]["xstilts.io/phase"] in ("mlm", "target")
    ]
    assert multi and all(len(objs) == 2 for objs in multi)
    for job, service in multi:
        name, spec = job["metadata"]["name"], job["spec"]
        assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 2
        assert spec["successPolicy"] == {"rules": [{"succeededIndexes": "0"}]}
        assert spec["podReplacementPolicy"] == "Failed"
        assert spec["template"]["spec"]["subdomain"] == service["metadata"]["name"]
        assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
        assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": name}
        node_rank = env(job)["NODE_RANK"]
        assert node_rank == {
            "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
        }
        args = argv(job)
        assert (
            args[args.index("--num_processes") + 1] == "16" and args[args.index("--num_machines") + 1] == "2"
        )
        assert args[args.index("--machine_rank") + 1] == "$(NODE_RANK)"
        assert args[args.index("--main_process_ip") + 1] == f"{name}-0.{service['metadata']['name']}"
        assert container(job)["ports"] == [{"containerPort": 29500, "name": "rendezvous"}]
    # Encoder and evaluate phases stay single-node Jobs.
    assert all(
        len(objs) == 1 for objs in rendered if objs[0]["metadata"]["labels"]["xstilts.io/phase"] == "encoder"
    )


def test_deepspeed_launch_matches_the_phase_config() -> None:
    plan2, _, rendered2 = variant("zero2")
    plan3, _, rendered3 = variant("zero3-offload-multi-node")
    for plan, rendered in ((plan2, rendered2), (plan3, rendered3)):
        for phase, (job, *_) in zip(plan.ordered(), rendered, strict=True):
            args = argv(job)
            if phase.kind not in ("mlm", "intermediate", "target"):
                assert "--use_deepspeed" not in args
                continue
            ds = phase.config.deepspeed.model_dump()
            assert "--use_deepspeed" in args and "--multi_gpu" not in args
            assert args[args.index("--zero_stage") + 1] == str(ds["stage"])
            offload = args[args.index("--offload_optimizer_device") + 1]
            assert offload == ("cpu" if ds["offload_optimizer"] else "none")
            assert ("--zero3_save_16bit_model" in args) == (ds["stage"] == 3)
            multi_node = "--machine_rank" in args
            assert ("--deepspeed_multinode_launcher" in args) == multi_node


def test_accelerate_accepts_the_rendered_launch_commands() -> None:
    """The rendered args parse with accelerate's own launcher parser (after Kubernetes substituted
    $(NODE_RANK) in the pod of index 1)."""
    from accelerate.commands.launch import launch_command_parser

    parser = launch_command_parser()
    cases = {
        "multi-gpu": "target",
        "multi-node": "target",
        "zero2": "intermediate",
        "zero3-offload-multi-node": "mlm",
    }
    for name, kind in cases.items():
        job = jobs_of(name, kind)[0]
        args = [a.replace("$(NODE_RANK)", "1") for a in argv(job)[2:]]
        parsed = parser.parse_args(args)
        assert parsed.module and parsed.training_script == "xstilts"
        assert parsed.training_script_args[:2] == ["phase", "run"] and parsed.training_script_args[-2:] == [
            "--store",
            STORE,
        ]
        assert parsed.num_processes == (16 if name == "multi-node" else 8)
        assert parsed.multi_gpu != parsed.use_deepspeed
        if "multi-node" in name:
            assert parsed.machine_rank == 1 and parsed.same_network and parsed.rdzv_backend == "static"
            assert parsed.main_process_ip == f"{job['metadata']['name']}-0.{job['metadata']['name']}"
        if name.startswith("zero3"):
            assert parsed.zero_stage == 3 and parsed.offload_optimizer_device == "cpu"
            assert parsed.deepspeed_multinode_launcher == "standard"


def test_kueue_queue_suspends_the_job() -> None:
    for job in jobs_of("kueue"):
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
        assert job["spec"]["suspend"] is True
        assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]


def test_scheduling_values_reach_every_pod() -> None:
    for job in jobs_of("scheduling"):
        pod = job["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_existing_pvc_config_map_and_secret() -> None:
    for job in jobs_of("existing-pvc"):
        pod, c = job["spec"]["template"]["spec"], container(job)
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["hf-cache"] == {"name": "hf-cache", "persistentVolumeClaim": {"claimName": "hf-cache"}}
        assert "accelerate-config" not in volumes  # accelerate launch takes its flags on the command line
        assert pod["imagePullSecrets"] == [{"name": "regcred"}] and pod["serviceAccountName"] == "xstilts"
        assert c["envFrom"] == [{"secretRef": {"name": "xstilts-s3"}}]
        assert env(job)["AWS_ENDPOINT_URL"] == "http://minio.minio:9000"
        assert env(job)["AWS_DEFAULT_REGION"] == "us-east-1"


def test_no_literal_credentials_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRET_ENV.items():
        monkeypatch.setenv(key, value)
    variant.cache_clear()
    try:
        for name in VARIANTS:
            plan, settings, _ = variant(name)
            text = to_yaml(
                [o for p in plan.ordered() for o in render_phase(p, plan.sweep.name, STORE, settings)]
            )
            assert not any(secret in text for secret in SECRET_ENV.values())
            for job in jobs_of(name):
                for var in container(job).get("env", []):
                    if any(word in var["name"] for word in ("SECRET", "PASSWORD", "TOKEN", "ACCESS_KEY")):
                        raise AssertionError(f"{name}: literal credential variable {var['name']}")
    finally:
        variant.cache_clear()
    assert os.environ["AWS_ACCESS_KEY_ID"] == SECRET_ENV["AWS_ACCESS_KEY_ID"]


def test_resources_come_from_cluster_presets_unless_the_sweep_sets_them() -> None:
    settings = settings_for(
        {"presets": {"target": {"cpu": "16", "memory": "128Gi", "gpu": 4, "shmSize": "32Gi"}}}
    )
    plain = Phase(kind="target", address="0123456789ab", label="xnli", config=example_config("target"))
    assert resources_for(plain, settings) == settings.presets["target"]
    assert resources_for(plain, ClusterSettings()) == ResourcePreset()
    partial = Phase(
        kind="target",
        address="0123456789ab",
        label="xnli",
        config=example_config("target"),
        resources=ResourcePreset.model_validate({"gpu": 8}),
    )
    merged = resources_for(partial, settings)
    assert (merged.cpu, merged.memory, merged.gpu, merged.shm_size) == ("16", "128Gi", 8, "32Gi")
    stored = Phase.model_validate_json(plain.model_dump_json())  # a spec read back from the store
    assert resources_for(stored, settings) == ResourcePreset()


def test_an_analysis_phase_takes_the_evaluate_preset_as_its_sweep_resources_do() -> None:
    """The analysis phase encodes evaluation texts: the sweep's `resources.evaluate` and the cluster's
    `presets.evaluate` both size it (the cluster preset used to be looked up as `presets.analysis`,
    which no chart has, so a cluster ran it with the built-in defaults)."""
    evaluate = {"cpu": "4", "memory": "32Gi", "gpu": 1, "shmSize": "8Gi"}
    settings = settings_for({"presets": {"evaluate": evaluate}})
    analysis = Phase(
        kind="analysis", address="0123456789ab", label="domain-alignment", config=example_config("analysis")
    )
    assert resources_for(analysis, settings) == settings.presets["evaluate"]


def test_names_and_label_values() -> None:
    sid = store_id(STORE)
    assert len(sid) == 8 and sid == store_id(STORE + "/") == store_id("S3" + STORE[2:])
    assert sid != store_id("s3://xstilts/other")
    assert job_name("intermediate", "0123456789ab", STORE) == f"xst-intermediate-0123456789ab-{sid}"
    assert job_name("intermediate", "0123456789ab", "s3://xstilts/other") != job_name(
        "intermediate", "0123456789ab", STORE
    )
    assert service_name("target", "0123456789ab", STORE) == job_name("target", "0123456789ab", STORE)
    assert controller_name("paper-grid", STORE) == f"xst-controller-paper-grid-{sid}"
    long = controller_name("x" * 80, STORE)
    assert len(long) <= 63 and long.endswith(f"-{sid}") and long != controller_name("x" * 81, STORE)
    assert dns_label("Mixed_Case") != dns_label("mixed-case") and dns_label("9lives")[0].isalpha()
    assert label_value("mnli+squad") == "mnli-squad"
    assert label_value("..-weird name-..") == "weird-name"
    assert label_value("a" * 70 + "-b") == "a" * 63
    assert label_value("+++") == "none"


def test_rendering_is_deterministic_and_settings_sensitive() -> None:
    plan, settings, rendered = variant("existing-pvc")
    again = [[to_dict(o) for o in render_phase(p, plan.sweep.name, STORE, settings)] for p in plan.ordered()]
    assert again == rendered
    other = settings.model_copy(update={"image": "example.org/trainer:2"})
    job = to_dict(render_phase(plan.ordered()[0], plan.sweep.name, STORE, other)[0])
    assert container(job)["image"] == "example.org/trainer:2"
    assert container(rendered[0][0])["image"] == settings.image
