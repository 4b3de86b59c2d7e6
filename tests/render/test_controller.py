"""The in-cluster controller: a ConfigMap with the sweep file and a restricted Job running the same
reconcile loop with the chart's ServiceAccount."""

from __future__ import annotations

from pathlib import Path

from tests.render.conftest import (
    STORE,
    name_and_label_problems,
    pod_security_violations,
    settings_for,
    validation_errors,
)
from xstilts.render.controller import render_controller
from xstilts.render.dump import to_dict
from xstilts.render.names import store_id

TINY = Path(__file__).resolve().parents[2] / "jobs" / "tiny.yaml"
SETTINGS = {
    "serviceAccountName": "xstilts",
    "controllerImage": "xstilts-controller:dev",
    "s3": {"secretName": "xstilts-s3", "endpointUrl": "http://xstilts-s3.xstilts.svc:8080"},
    "presets": {"controller": {"cpu": "250m", "memory": "512Mi"}},
}


def rendered() -> tuple[dict, dict]:
    config_map, job = render_controller(TINY.read_text(), "tiny", STORE, settings_for(SETTINGS))
    return to_dict(config_map), to_dict(job)


def test_controller_objects_are_valid_restricted_and_named() -> None:
    config_map, job = rendered()
    name = f"xst-controller-tiny-{store_id(STORE)}"
    assert config_map["metadata"]["name"] == job["metadata"]["name"] == name
    assert config_map["data"] == {"sweep.yaml": TINY.read_text()}
    assert validation_errors([config_map, job]) == []
    assert pod_security_violations([job]) == []
    assert name_and_label_problems([config_map, job]) == []


def test_controller_runs_the_reconcile_loop_with_the_service_account() -> None:
    _, job = rendered()
    labels = job["metadata"]["labels"]
    assert labels["xstilts.io/sweep"] == "tiny" and labels["xstilts.io/phase"] == "controller"
    assert labels["xstilts.io/store"] == store_id(STORE)
    assert "xstilts.io/address" not in labels  # not mistaken for a phase by the backend's listing
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "xstilts-controller:dev"
    assert container["command"] + container["args"] == [
        "xstilts",
        "sweep",
        "submit",
        "/etc/xstilts/sweep/sweep.yaml",
        "--backend",
        "kubernetes",
        "--store",
        STORE,
    ]
    assert pod["serviceAccountName"] == "xstilts" and pod["automountServiceAccountToken"] is True
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert container["envFrom"] == [{"secretRef": {"name": "xstilts-s3"}}]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/xstilts/sweep"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/xstilts/sweep"]["name"]]["configMap"]["name"] == job["metadata"]["name"]
    assert "activeDeadlineSeconds" not in job["spec"]
    assert job["spec"]["podFailurePolicy"]["rules"][1]["onExitCodes"]["values"] == [3]
