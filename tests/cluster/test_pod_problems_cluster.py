"""Pods that cannot start reach the user (issue 13): ErrImagePull / ImagePullBackOff, Unschedulable,
CreateContainerConfigError (a missing Secret) and CrashLoopBackOff show in `sweep status` with their
reason in one pass, and the reconcile loop fails the phase after `podProblemGraceSeconds` instead of
waiting for the Job's 7-day deadline. The scheduler and kubelet verdicts come from
tests/cluster/pod_faults.py, in front of the stand-in kubelet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import (
    SERVICE_ACCOUNT,
    Cluster,
    Namespace,
    drop_namespace,
    make_namespace,
)
from tests.cluster.pod_faults import PodFaults
from tests.cluster.sweeps import sweep_file, two_phases
from xstilts.testing.kube_loopback import requests_by, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("kube")]

GRACE = 8
CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    # sweep name: (its kubernetes: block, the reason, a fragment of the message)
    "pull": ({"image": "registry.invalid/xstilts/trainer:0.1.0"}, "ImagePullBackOff", "registry.invalid"),
    "unsched": ({"nodeSelector": {"nvidia.com/gpu.present": "true"}}, "Unschedulable", "didn't match"),
    "secret": (
        {"s3": {"secretName": "no-such-secret"}},
        "CreateContainerConfigError",
        '"no-such-secret" not found',
    ),
    "crash": ({"image": "ghcr.io/xstilts/xstilts-trainer:crash-loop"}, "CrashLoopBackOff", "back-off"),
}


@pytest.fixture(scope="module")
def faulty(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Namespace, PodFaults]]:
    kube.require_loopback("pod faults reported in front of the stand-in kubelet")
    tmp = tmp_path_factory.mktemp("pod-problems")
    ns = make_namespace(kube, f"t-pod-problems-{tmp.name[-2:].strip('-')}x", tmp / "ns", no_bind=True)
    try:
        ns.install_chart()
        assert ns.kubelet is not None
        with PodFaults(ns._api_client(), ns.name, ns.kubelet.node) as faults:
            yield ns, faults
    finally:
        drop_namespace(kube, ns)


def _status(ns: Namespace, sweep: Path) -> dict[str, Any]:
    store = ns.store(sweep.stem)
    result = ns.xstilts("sweep", "status", sweep, "--backend", "kubernetes", "--store", store, "-o", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)["phases"][0]  # the encoder: no inputs, submitted first


def test_pods_that_cannot_start_show_their_reason_and_fail_the_phase(
    faulty: tuple[Namespace, PodFaults],
) -> None:
    ns, faults = faulty
    sweeps = {}
    for name, (kubernetes, _, _) in CASES.items():
        block = {"backoffLimit": 0, "podProblemGraceSeconds": GRACE, **kubernetes}
        sweeps[name], _ = sweep_file(ns.tmp / name, two_phases(name, kubernetes=block))
        # A store each: the four sweeps' encoders are one phase, which a shared store would share.
        detached = ns.xstilts(
            "sweep", "submit", sweeps[name], "--backend", "kubernetes", "--store", ns.store(name), "--detach"
        )
        assert detached.returncode == 0, detached.stderr[-3000:]

    # Each pod's problem is in the very next `status` pass, with its reason and message.
    try:
        wait_for(
            lambda: len([p for p, r in faults.reported.items() if r != "ErrImagePull"]) >= 4 or faults.errors,
            120,
            "the four pod faults",
        )
    finally:
        pods = [
            (p.metadata.name, p.spec.node_name, p.status.phase)
            for p in ns.core().list_namespaced_pod(ns.name).items
        ]
        print("pods:", pods, "reported:", faults.reported, "errors:", faults.errors)
    assert faults.errors == [] and len(faults.reported) == 4, (faults.errors, faults.reported)
    for name, (_, reason, fragment) in CASES.items():
        encoder = wait_for(
            lambda name=name, reason=reason: _with_reason(_status(ns, sweeps[name]), reason), 60, reason
        )
        assert encoder["state"] == "pending", encoder
        assert fragment in encoder["reason"] and "pod xst-encoder-" in encoder["reason"], encoder

    # The reconcile loop fails each phase after the grace period; the dependants are blocked.
    controllers = {
        name: ns.popen_xstilts(
            "sweep",
            "submit",
            sweeps[name],
            "--backend",
            "kubernetes",
            "--store",
            ns.store(name),
            "--no-report",
            log=ns.tmp / f"{name}.log",
        )
        for name in CASES
    }
    for name, process in controllers.items():
        assert process.wait(timeout=300) == 1, (ns.tmp / f"{name}.log").read_text()[-3000:]
        log = (ns.tmp / f"{name}.log").read_text()
        assert "1 phase(s) failed, 1 blocked (first: encoder/" in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        # The hint names the backend and the store (issue 13, 6).
        assert f"logs: xstilts sweep logs {sweeps[name]} --backend kubernetes --store {ns.store(name)}" in log
    assert faults.errors == []
    for name, (_, reason, fragment) in CASES.items():
        encoder = _status(ns, sweeps[name])
        assert encoder["state"] == "failed" and encoder["reason"].startswith(f"{reason}: "), encoder
        assert "podProblemGraceSeconds" in encoder["reason"] and fragment in encoder["reason"], encoder
        # Failed for everyone: the Job itself failed (its deadline cut short), and its pod is gone.
        (job,) = ns.jobs(f"xstilts.io/sweep={name},xstilts.io/phase=encoder")
        assert any(c.type == "Failed" and c.status == "True" for c in job.status.conditions or []), job.status
        wait_for(
            lambda job=job: (
                not ns.core()
                .list_namespaced_pod(
                    ns.name, label_selector=f"batch.kubernetes.io/job-name={job.metadata.name}"
                )
                .items
            ),
            60,
            "the failed Job's pod to go",
        )

    # All of it as the chart's ServiceAccount, within its Role (failing a Job is a patch).
    loopback = ns.cluster.require_loopback("the audit log")
    requests = requests_by(loopback.audit_events(f"system:serviceaccount:{ns.name}:{SERVICE_ACCOUNT}"))
    assert not [k for k in requests if k[3] == 403], requests
    assert any(k[:3] == ("batch", "jobs", "patch") for k in requests), requests


def _with_reason(encoder: dict[str, Any], reason: str) -> dict[str, Any] | None:
    return encoder if reason in (encoder.get("reason") or "") else None
