"""A sweep through the real API server as a user runs it: the chart installed into a restricted
namespace, `helm test`, then `xstilts sweep ...` as the chart's ServiceAccount (a token kubeconfig,
never admin) on the smallest sweep that crosses every phase kind:

- store A from a laptop-side controller that is killed (SIGKILL) mid-sweep and started again;
- at the same time store B, the same sweep in the same namespace, through `--in-cluster` (the
  controller Job runs to completion with the controller image's dependencies only, and writes the
  report to the store);
- then status, logs (from the pod, and from the store once the Job is gone), a resubmission, cancel,
  and a multi-node phase (Indexed Job + headless Service) submitted and cancelled.

The API server's audit log of all this is the evidence for the Role (test_rbac_matches_the_requests).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import (
    RELEASE,
    SERVICE_ACCOUNT,
    Cluster,
    Namespace,
    drop_namespace,
    release_namespace,
)
from tests.cluster.sweeps import VOLATILE_METRICS, every_kind, sweep_file
from tests.conftest import run_xstilts
from xstilts.plan.expand import Plan
from xstilts.render.names import job_name, store_id
from xstilts.testing.kube_loopback import requests_by, wait_for

# The first test pays for the whole journey (its module fixture): minutes on a loaded machine.
pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("kube"), pytest.mark.timeout(2400)]

# Verbs the Role grants that this journey does not use, each with the reason and where it is used.
NOT_EXERCISED_HERE = {
    ("batch", "jobs", "patch"): "fails a phase whose pod cannot start; test_pod_problems_cluster.py",
}


@dataclass
class Journey:
    ns: Namespace
    plan: Plan
    sweep: Path
    store_a: str
    store_b: str
    local_metrics: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    uids_before_kill: dict[str, str] = field(default_factory=dict)

    def read(self, store: str, key: str) -> str:
        return self.ns.read(store, key)

    def metrics(self, store: str) -> dict[str, Any]:
        out = {}
        for phase in self.plan.ordered():
            data = json.loads(self.read(store, f"{phase.prefix}/metrics.json"))
            out[phase.name] = {k: v for k, v in data.items() if k not in VOLATILE_METRICS}
        return out

    def jobs(self, store: str) -> dict[str, Any]:
        return {j.metadata.name: j for j in self.ns.jobs(f"xstilts.io/store={store_id(store)}")}

    def sa(self, *args: str, timeout: float = 600) -> Any:
        return self.ns.xstilts(*args, timeout=timeout)


def _local_reference(tmp: Path, sweep: Path, plan: Plan) -> dict[str, Any]:
    """The same sweep on the local backend: the metrics the cluster run must reproduce."""
    store = tmp / "local-store"
    # One thread per phase, as in the pods: the Jobs set OMP_NUM_THREADS from the CPU request, which the
    # stand-in kubelet resolves to 1 (float sums differ in the last digits between thread counts).
    result = run_xstilts(
        "sweep",
        "submit",
        str(sweep),
        "--store",
        str(store),
        "--no-report",
        env={"OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = {}
    for phase in plan.ordered():
        data = json.loads((store / phase.prefix / "metrics.json").read_text())
        out[phase.name] = {k: v for k, v in data.items() if k not in VOLATILE_METRICS}
    return out


def _kill_mid_sweep(j: Journey, log: Path) -> None:
    """Start the laptop-side controller of store A; SIGKILL it once a later phase's pod runs."""
    second = j.plan.ordered()[1]
    name = job_name(second.kind, second.address, j.store_a)
    controller = j.ns.popen_xstilts(
        "sweep", "submit", j.sweep, "--backend", "kubernetes", "--store", j.store_a, "--no-report", log=log
    )

    def second_phase_running() -> bool:
        assert controller.poll() is None, f"the controller ended early: {log.read_text()[-3000:]}"
        job = j.jobs(j.store_a).get(name)
        return job is not None and bool(job.status.active) and bool(job.status.ready)

    try:
        wait_for(second_phase_running, 300, f"{second.name}'s pod to run")
        j.uids_before_kill = {n: job.metadata.uid for n, job in j.jobs(j.store_a).items()}
        os.killpg(controller.pid, signal.SIGKILL)
    finally:
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
        controller.wait(timeout=30)


@pytest.fixture(scope="module")
def journey(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    kube.require_in_pod_api()
    tmp = tmp_path_factory.mktemp("journey")
    ns = release_namespace(kube, tmp / "ns", max_running=3)
    try:
        sweep, plan = sweep_file(tmp, every_kind())
        j = Journey(ns, plan, sweep, ns.store("a"), ns.store("b"), _local_reference(tmp, sweep, plan))
        out = j.outputs
        out["helm_test"] = ns.helm("test", RELEASE, "--logs", "--timeout", "5m")

        # Store B in the cluster, store A from here; the same sweep, the same namespace, at once.
        controller = f"xst-controller-{plan.sweep.name}-{store_id(j.store_b)}"
        out["in_cluster"] = j.sa("sweep", "submit", sweep, "--in-cluster", "--store", j.store_b)
        ok(out["in_cluster"])
        out["controller_uid"] = ns.batch().read_namespaced_job(controller, ns.name).metadata.uid
        out["in_cluster_again"] = j.sa("sweep", "submit", sweep, "--in-cluster", "--store", j.store_b)
        out["controller_uid_again"] = ns.batch().read_namespaced_job(controller, ns.name).metadata.uid
        _kill_mid_sweep(j, tmp / "killed-controller.log")
        out["restarted"] = j.sa(
            "sweep", "submit", sweep, "--backend", "kubernetes", "--store", j.store_a, "--no-report"
        )

        # The controller ends once every phase's `_COMPLETE` marker is in the store; the last pod exits
        # and the Job controller marks its Job succeeded a moment later.
        def store_a_jobs_finished() -> dict[str, Any] | None:
            jobs = j.jobs(j.store_a)
            return jobs if all(job.status.succeeded or job.status.failed for job in jobs.values()) else None

        out["jobs_after_restart"] = wait_for(store_a_jobs_finished, 120, "every Job of store A finished")

        def controller_finished() -> Any:
            job = ns.batch().read_namespaced_job(controller, ns.name)
            return next(
                (
                    c.type
                    for c in job.status.conditions or []
                    if c.status == "True" and c.type in ("Complete", "Failed")
                ),
                None,
            )

        out["controller_result"] = wait_for(
            controller_finished, 600, "the in-cluster controller Job to finish", 2
        )
        out["controller_log"] = ns.kubectl("logs", f"job/{controller}", "--tail=40").stdout

        evaluate = plan.ordered()[-1]
        out["status"] = j.sa(
            "sweep", "status", sweep, "--backend", "kubernetes", "--store", j.store_a, "-o", "json"
        )

        def evaluate_log() -> Any:
            return j.sa(
                "sweep", "logs", sweep, "--backend", "kubernetes", "--store", j.store_a,
                "--phase", evaluate.address, "-o", "json",
            )  # fmt: skip

        out["pod_log"] = evaluate_log()
        name = job_name(evaluate.kind, evaluate.address, j.store_a)
        ns.batch().delete_namespaced_job(name, ns.name, propagation_policy="Foreground")
        wait_for(
            lambda: (
                not ns.core()
                .list_namespaced_pod(ns.name, label_selector=f"batch.kubernetes.io/job-name={name}")
                .items
            ),
            120,
            "the deleted Job's pod to go",
        )
        out["store_log"] = evaluate_log()
        out["jobs_before_resubmit"] = {n: job.metadata.uid for n, job in j.jobs(j.store_a).items()}
        out["resubmit"] = j.sa(
            "sweep", "submit", sweep, "--backend", "kubernetes", "--store", j.store_a, "--detach"
        )
        out["jobs_after_resubmit"] = {n: job.metadata.uid for n, job in j.jobs(j.store_a).items()}

        # cancel, on a fresh store (nothing done yet) with a multi-node first phase: Job + Service.
        multi, _ = sweep_file(
            tmp / "multi",
            every_kind("multi", kubernetes={"backoffLimit": 0, "presets": {"encoder": {"nodes": 2}}}),
        )
        store_c = ns.store("c")
        out["multi_submit"] = j.sa(
            "sweep", "submit", multi, "--backend", "kubernetes", "--store", store_c, "--detach"
        )
        out["multi_objects"] = (
            sorted(job.metadata.name for job in j.jobs(store_c).values()),
            sorted(s.metadata.name for s in ns.core().list_namespaced_service(ns.name).items),
        )
        out["cancel"] = j.sa("sweep", "cancel", multi, "--backend", "kubernetes", "--store", store_c)
        out["after_cancel"] = sorted(j.jobs(store_c))

        # A succeeded Job whose phase the store has lost (a wiped prefix): status calls it failed, and
        # --retry-failed deletes that Job and submits the phase again.
        lost = plan.ordered()[1]
        bucket, _, root = j.store_a[len("s3://") :].partition("/")
        ns.s3_client().delete_object(Bucket=bucket, Key=f"{root}/{lost.prefix}/_COMPLETE")
        lost_job = job_name(lost.kind, lost.address, j.store_a)
        out["lost_uid"] = ns.batch().read_namespaced_job(lost_job, ns.name).metadata.uid
        out["lost_status"] = j.sa(
            "sweep", "status", sweep, "--backend", "kubernetes", "--store", j.store_a, "-o", "json"
        )
        out["retry"] = j.sa(
            "sweep",
            "submit",
            sweep,
            "--backend",
            "kubernetes",
            "--store",
            j.store_a,
            "--retry-failed",
            "--detach",
        )
        out["retried_uid"] = ns.batch().read_namespaced_job(lost_job, ns.name).metadata.uid
        yield j
    finally:
        drop_namespace(kube, ns)


def ok(result: Any) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


def test_helm_test_passes_against_the_loopback_s3_server(journey: Journey) -> None:
    text = ok(journey.outputs["helm_test"])
    assert f"ok: s3://{journey.ns.bucket}/runs is reachable, readable and writable" in text
    assert f"ok: {SERVICE_ACCOUNT} may create Jobs in {journey.ns.name}" in text


def test_the_sweep_as_the_service_account_survives_a_killed_controller(journey: Journey) -> None:
    ok(journey.outputs["restarted"])
    jobs = journey.outputs["jobs_after_restart"]
    expected = {job_name(p.kind, p.address, journey.store_a) for p in journey.plan.ordered()}
    assert set(jobs) == expected
    # The Jobs that existed when the controller was killed were followed, not created again.
    assert journey.uids_before_kill and all(
        jobs[n].metadata.uid == uid for n, uid in journey.uids_before_kill.items()
    )
    for job in jobs.values():
        assert job.status.succeeded == 1 and not job.status.failed, job.metadata.name


def test_cluster_metrics_equal_the_local_backend(journey: Journey) -> None:
    ok(journey.outputs["restarted"])
    assert journey.metrics(journey.store_a) == journey.local_metrics


def test_status_shows_every_phase_done(journey: Journey) -> None:
    ok(journey.outputs["status"])
    phases = json.loads(journey.outputs["status"].stdout)["phases"]
    assert [p["state"] for p in phases] == ["done"] * len(journey.plan.phases)


def test_logs_come_from_the_pod_then_from_the_store(journey: Journey) -> None:
    evaluate = journey.plan.ordered()[-1]
    start = f'"event": "start", "phase": "{evaluate.name}"'
    assert start in ok(journey.outputs["pod_log"])
    assert start in ok(journey.outputs["store_log"])


def test_resubmitting_a_finished_sweep_creates_no_job(journey: Journey) -> None:
    text = ok(journey.outputs["resubmit"])
    assert "already complete" in text and "nothing to run" in text
    assert journey.outputs["jobs_after_resubmit"] == journey.outputs["jobs_before_resubmit"]


def test_the_same_sweep_in_cluster_against_a_second_store(journey: Journey) -> None:
    """Issue 13, 1 and 3: store B's in-cluster controller, next to store A's Jobs, runs its own Jobs
    to completion as the chart's ServiceAccount, with the controller image's dependencies, and
    writes the report into the store (its working directory is not where reports go)."""
    first, again = ok(journey.outputs["in_cluster"]), ok(journey.outputs["in_cluster_again"])
    assert "--backend kubernetes" in first and f"--store {journey.store_b}" in first
    # Submitted again while it runs: the same controller Job, left alone.
    assert "Controller Job" in again
    assert journey.outputs["controller_uid_again"] == journey.outputs["controller_uid"]
    assert journey.outputs["controller_result"] == "Complete", journey.outputs["controller_log"]
    b = journey.jobs(journey.store_b)
    assert set(b) == {job_name(p.kind, p.address, journey.store_b) for p in journey.plan.ordered()} | {
        f"xst-controller-{journey.plan.sweep.name}-{store_id(journey.store_b)}"
    }
    assert journey.metrics(journey.store_b) == journey.local_metrics
    report = journey.read(journey.store_b, f"reports/{journey.plan.sweep.name}/report.md")
    assert "pawsx" in report


def test_cancel_deletes_the_sweeps_jobs_and_services(journey: Journey) -> None:
    text = ok(journey.outputs["multi_submit"])
    assert "--backend kubernetes" in text  # the printed hint names the backend
    jobs, services = journey.outputs["multi_objects"]
    assert len(jobs) == 1 and services == jobs  # the encoder's Indexed Job and its headless Service
    assert "Cancelled 1 running phase(s)" in ok(journey.outputs["cancel"])
    assert journey.outputs["after_cancel"] == []


def test_retry_failed_clears_a_succeeded_job_whose_phase_the_store_lost(journey: Journey) -> None:
    ok(journey.outputs["lost_status"])
    lost = json.loads(journey.outputs["lost_status"].stdout)["phases"][1]
    assert lost["state"] == "failed" and "no _COMPLETE marker" in lost["reason"], lost
    assert "Deleted 1 failed Job(s)" in ok(journey.outputs["retry"])
    assert journey.outputs["retried_uid"] != journey.outputs["lost_uid"]  # submitted again


def test_rbac_matches_the_requests(journey: Journey) -> None:
    """The Role allows every request the code made as the ServiceAccount (no 403), and allows nothing
    the code did not use, except NOT_EXERCISED_HERE (each with its reason)."""
    for key in ("restarted", "in_cluster", "resubmit", "cancel"):
        ok(journey.outputs[key])
    loopback = journey.ns.cluster.require_loopback("the audit log")
    user = f"system:serviceaccount:{journey.ns.name}:{SERVICE_ACCOUNT}"
    requests = requests_by(loopback.audit_events(user))
    denied = sorted({(g, r, v) for (g, r, v, code) in requests if code == 403})
    assert denied == [], f"the Role denied requests the code makes: {denied}"
    used = {(g, r, v) for (g, r, v, _) in requests}
    role = journey.ns.run_tool("kubectl", "-n", journey.ns.name, "get", "role", RELEASE, "-o", "json")
    granted = {
        (group, resource, verb)
        for rule in json.loads(role.stdout)["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert used <= granted
    unused = granted - used - set(NOT_EXERCISED_HERE)
    assert unused == set(), f"the Role grants verbs the code never used: {sorted(unused)}"
    assert set(NOT_EXERCISED_HERE) <= granted - used, "an allow-listed verb is used after all: drop it"
