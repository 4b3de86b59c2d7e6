"""Sweeps and settings that exercise every branch of the renderer, and the manifest checks they share:
strict OpenAPI validation (kubernetes_validate) against the oldest supported and a current
Kubernetes, the restricted Pod Security checker of tests/chart, names and labels."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import Any

import kubernetes_validate
import pytest

from tests.chart.conftest import pod_specs, restricted_violations
from xstilts.plan.expand import Plan, expand
from xstilts.render.dump import to_dict
from xstilts.render.job import render_phase
from xstilts.render.names import DNS_LABEL, LABEL_VALUE
from xstilts.spec.cluster import ClusterSettings
from xstilts.spec.kinds import TRAINING_KINDS as _TRAINING_KINDS
from xstilts.spec.load import parse_sweep

# The oldest Kubernetes with every Job field used GA or beta-on (podFailurePolicy GA 1.31,
# successPolicy beta 1.31), and a current one. kubernetes_validate bundles x.y.0 schemas only.
K8S_VERSIONS = ("1.31.0", "1.35.0")
STORE = "s3://xstilts/runs"

BASE_SWEEP: dict[str, Any] = {
    "name": "render-test",
    "encoders": [{"name": "xlmr", "model": "xlm-roberta-large", "retrieval_layer": 14}],
    "mlm": {"enabled": True, "corpus": "/data/mlm/corpus.txt"},  # a hub sweep with MLM names its corpus
    "intermediate": [{"task": "mnli"}, {"name": "mnli+squad", "tasks": ["mnli", "squad"]}],
    "targets": ["xnli", "panx", "xquad", "tatoeba"],
    "seeds": [1],
}
GPU = {"cpu": "8", "memory": "64Gi", "gpu": 1}
TRAINING_KINDS = tuple(sorted(_TRAINING_KINDS))

# name -> (sweep overrides, ClusterSettings overrides)
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "cpu-evaluation": ({"resources": {"evaluate": {"cpu": "4", "memory": "16Gi", "gpu": 0}}}, {}),
    "single-gpu": ({"resources": {k: GPU for k in (*TRAINING_KINDS, "evaluate")}}, {}),
    "multi-gpu": ({"resources": {k: {**GPU, "gpu": 8} for k in TRAINING_KINDS}}, {}),
    "multi-node": ({"resources": {k: {**GPU, "gpu": 8, "nodes": 2} for k in TRAINING_KINDS}}, {}),
    "zero2": (
        {"resources": {k: {**GPU, "gpu": 8} for k in TRAINING_KINDS}, "deepspeed": {"enabled": True}},
        {},
    ),
    "zero3-offload-multi-node": (
        {
            "resources": {k: {**GPU, "gpu": 4, "nodes": 2} for k in TRAINING_KINDS},
            "deepspeed": {"enabled": True, "stage": 3, "offload_optimizer": True},
        },
        {},
    ),
    "kueue": ({}, {"kueue": {"queueName": "team-a"}}),
    "scheduling": (
        {},
        {
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    ),
    "existing-pvc": (
        {},
        {
            "hfCacheClaim": "hf-cache",
            "imagePullSecrets": ["regcred"],
            "serviceAccountName": "xstilts",
            "s3": {
                "secretName": "xstilts-s3",
                "endpointUrl": "http://minio.minio:9000",
                "region": "us-east-1",
            },
        },
    ),
}


def sweep_for(overrides: dict[str, Any]) -> Any:
    data = copy.deepcopy(BASE_SWEEP)
    data.update(copy.deepcopy(overrides))
    return parse_sweep(data, "render-test.yaml")


def settings_for(overrides: dict[str, Any]) -> ClusterSettings:
    return ClusterSettings.model_validate({"namespace": "xstilts", **overrides})


@cache
def variant(name: str) -> tuple[Plan, ClusterSettings, list[list[dict[str, Any]]]]:
    """The plan, settings and rendered manifests (per phase, as API dicts) of a variant."""
    sweep_overrides, settings_overrides = VARIANTS[name]
    plan = expand(sweep_for(sweep_overrides))
    settings = settings_for(settings_overrides)
    rendered = [
        [to_dict(o) for o in render_phase(p, plan.sweep.name, STORE, settings)] for p in plan.ordered()
    ]
    return plan, settings, rendered


@pytest.fixture(params=sorted(VARIANTS))
def variant_name(request: pytest.FixtureRequest) -> str:
    return request.param


def _shape(value: Any) -> Any:
    """The structure of a manifest with scalars reduced to their type: manifests of one shape pass
    or fail OpenAPI validation together."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def validation_errors(objects: list[dict[str, Any]]) -> list[str]:
    """Strict validation of every distinct manifest shape against each version in K8S_VERSIONS."""
    errors, seen = [], set()
    for obj in objects:
        shape = json.dumps(_shape(obj), sort_keys=True)
        if shape in seen:
            continue
        seen.add(shape)
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(map(str, exc.absolute_path))
                errors.append(
                    f"{obj['kind']}/{obj['metadata']['name']} (k8s {version}) /{where}: {exc.message}"
                )
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(f"{obj['kind']}/{obj['metadata']['name']} (k8s {version}): {exc.message}")
    return errors


def pod_security_violations(objects: list[dict[str, Any]]) -> list[str]:
    return [
        p for obj in objects for where, spec in pod_specs(obj) for p in restricted_violations(where, spec)
    ]


_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def name_and_label_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj in objects:
        meta = obj["metadata"]
        name = meta["name"]
        if not DNS_LABEL.fullmatch(name):
            problems.append(f"{obj['kind']} name {name!r} is not an RFC 1035 label of at most 63 characters")
        label_sets = [meta.get("labels") or {}]
        if obj["kind"] == "Job":
            label_sets.append(obj["spec"]["template"]["metadata"].get("labels") or {})
            if obj["spec"].get("completionMode") == "Indexed" and len(name) + 3 > 63:
                problems.append(f"pod hostnames {name}-N would exceed 63 characters")
        for labels in label_sets:
            for key, value in labels.items():
                if len(key.split("/")[-1]) > 63 or not _LABEL_KEY.fullmatch(key):
                    problems.append(f"{name}: label key {key!r}")
                if not LABEL_VALUE.fullmatch(value):
                    problems.append(f"{name}: label {key}={value!r} is not a valid label value")
    return problems
