"""The Kubernetes backend's logic that needs no server (Job and pod states), and the faults a real API
server cannot be made to produce on demand, on the fake server (tests/backends/k8s_fake.py): injected
5xx answers, the 403s of an apiserver that has just restarted, an outage longer than the window, an
expired watch. Everything else runs against a real API server: tests/cluster/test_backend_cluster.py."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.backends.k8s_fake import FakeApiServer
from xstilts.backends.base import JobState
from xstilts.backends.kubernetes import FAILED_ANNOTATION, KubeApi, KubernetesBackend, job_state, pod_problem
from xstilts.errors import XstiltsError
from xstilts.plan.expand import Plan, expand
from xstilts.render.dump import to_dict
from xstilts.render.job import render_phase
from xstilts.spec.cluster import ClusterSettings
from xstilts.spec.load import load_sweep

TINY = Path(__file__).resolve().parents[2] / "jobs" / "tiny.yaml"
SETTINGS = ClusterSettings(namespace="xs")
STORE_URI = "s3://xstilts/runs"
T0 = "2026-11-22T10:00:00Z"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return expand(load_sweep(TINY))


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as srv:
        yield srv


class Clock:
    """Time that passes only when the code sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def connect(url: str, clock: Clock | None = None, jitter: float = 1.0, **kwargs) -> KubeApi:
    clock = clock or Clock()
    return KubeApi.from_configuration(
        client.Configuration(host=url), "xs", sleep=clock.sleep, clock=clock, jitter=lambda: jitter, **kwargs
    )


def job(status: dict, **meta) -> dict:
    return {"metadata": {"name": "xst-j", **meta}, "spec": {}, "status": status}


def condition(kind: str, reason: str | None = None, message: str | None = None) -> dict:
    return {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": T0}


def test_job_states_from_job_status() -> None:
    cases = [
        (job({"conditions": [condition("Complete")], "succeeded": 1}), (JobState.SUCCEEDED, None)),
        (job({"conditions": [condition("SuccessCriteriaMet")], "active": 1}), (JobState.SUCCEEDED, None)),
        (
            job({"conditions": [condition("Failed", "BackoffLimitExceeded")], "failed": 4}),
            (JobState.FAILED, "BackoffLimitExceeded"),
        ),
        (
            job({"conditions": [condition("FailureTarget", "PodFailurePolicy")], "active": 1}),
            (JobState.FAILED, "PodFailurePolicy"),
        ),
        (
            job(
                {"active": 1, "ready": 0},
                annotations={FAILED_ANNOTATION: "Unschedulable: pod p could not start"},
            ),
            (JobState.FAILED, "Unschedulable"),
        ),
        (
            job({}, labels={"kueue.x-k8s.io/queue-name": "q"}) | {"spec": {"suspend": True}},
            (JobState.PENDING, "Suspended"),
        ),
        (job({"startTime": T0, "active": 1, "ready": 1}), (JobState.RUNNING, None)),
        (job({"startTime": T0, "active": 1, "ready": 0}), (JobState.PENDING, "PodsStarting")),
        (job({"startTime": T0, "failed": 1}), (JobState.PENDING, "Retrying")),
        (job({}), (JobState.PENDING, "Created")),
    ]
    for manifest, expected in cases:
        observed = job_state(manifest)
        assert (observed.state, observed.reason) == expected, manifest
    failed_by_us = job_state(cases[4][0])
    assert failed_by_us.message == "pod p could not start"
    assert job_state(cases[6][0]).started == pytest.approx(1795341600.0)
    assert job_state(cases[2][0]).attempts == 4


def test_pod_problems_from_pod_status() -> None:
    def pod(**status) -> dict:
        return {"metadata": {"name": "p"}, "status": status}

    waiting = lambda reason, message="": {"state": {"waiting": {"reason": reason, "message": message}}}  # noqa: E731
    assert pod_problem(pod(containerStatuses=[waiting("ImagePullBackOff", "Back-off pulling")])) == (
        "ImagePullBackOff",
        "Back-off pulling",
    )
    assert (
        pod_problem(pod(initContainerStatuses=[waiting("CreateContainerConfigError")]))[0]
        == "CreateContainerConfigError"
    )
    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes",
    }
    assert pod_problem(pod(conditions=[unschedulable])) == ("Unschedulable", "0/3 nodes")
    # Starting normally: not a problem.
    assert pod_problem(pod(containerStatuses=[waiting("ContainerCreating")])) is None
    assert pod_problem(pod(conditions=[{"type": "PodScheduled", "status": "True"}])) is None


def test_server_errors_are_retried_with_backoff_and_jitter(server: FakeApiServer, plan: Plan) -> None:
    clock = Clock()
    backend = KubernetesBackend(SETTINGS, STORE_URI, api=connect(server.url, clock, jitter=0.5))
    server.cluster.fail_next("POST", "/jobs", 500)
    phase = plan.ordered()[0]
    assert backend.submit(phase, render_phase(phase, "tiny", STORE_URI, SETTINGS)) is True
    assert clock.sleeps == [0.375] and len(server.cluster.calls("POST", "jobs")) == 2  # 0.5 s, jittered
    server.cluster.fail_next("GET", "/jobs", 503, count=100)
    with pytest.raises(XstiltsError, match=r"failed to list jobs .*503"):
        backend.observe("tiny")
    assert clock.sleeps[1:] == [0.375, 0.75, 1.5, 3.0]  # truncated exponential backoff, then give up
    assert backend.api.calls["list jobs"] == 5 and backend.api.calls["create jobs"] == 2


def test_forbidden_is_retried_only_right_after_an_outage(server: FakeApiServer) -> None:
    """An apiserver that has just restarted answers 403 until its RBAC caches are ready (seen on the
    loopback control plane): within a minute of a connection failure, 403 is retried like a 503."""
    clock = Clock()
    api = connect(server.url, clock, outage_seconds=600)
    server.cluster.fail_next("GET", "/jobs", 403)
    with pytest.raises(XstiltsError, match="refused to list jobs"):
        api.list("jobs", "a=b")
    assert clock.sleeps == []
    api.note_unreachable()
    server.cluster.fail_next("GET", "/jobs", 403, count=2)
    assert api.list("jobs", "a=b") == []
    assert len(clock.sleeps) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(60)  # a non-controller backend gives up at once; the timeout turns a hang into a failure
def test_unreachable_server_fails_quickly_with_a_clear_message(plan: Plan) -> None:
    port = _closed_port()
    api = KubeApi.from_configuration(client.Configuration(host=f"http://127.0.0.1:{port}"), "xs")
    backend = KubernetesBackend(SETTINGS, STORE_URI, api=api)
    with pytest.raises(XstiltsError) as info:
        backend.observe("tiny")
    message = str(info.value)
    assert f"cannot reach the Kubernetes API server at http://127.0.0.1:{port} (namespace xs)" in message
    assert "Connection refused" in message and "\n" not in message


def test_the_reconcile_loop_rides_out_an_outage_for_its_window_only() -> None:
    """Issue 13, 2: with a window (apiOutageSeconds), connection errors are retried with capped
    exponential backoff and jitter until the window has passed; then one clear line."""
    clock = Clock()
    jitters = iter([0.0, 1.0] * 100)
    api = KubeApi.from_configuration(
        client.Configuration(host=f"http://127.0.0.1:{_closed_port()}"),
        "xs",
        outage_seconds=60,
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: next(jitters),
    )
    with pytest.raises(XstiltsError) as info:
        api.list("jobs", "a=b")
    assert "retried for 60s, apiOutageSeconds" in str(info.value) and "Connection refused" in str(info.value)
    assert sum(clock.sleeps) == pytest.approx(60)
    assert clock.sleeps[:6] == [0.25, 1.0, 1.0, 4.0, 4.0, 8.0]  # 0.5 * 2^n, capped at 8 s, halved at random
    assert max(clock.sleeps) <= 8.0


def test_an_expired_watch_falls_back_to_a_list(server: FakeApiServer, plan: Plan) -> None:
    server.cluster.watch_events = [
        {
            "type": "ERROR",
            "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
        }
    ]
    backend = KubernetesBackend(SETTINGS, STORE_URI, api=connect(server.url), controller=True)
    try:
        assert backend.observe("tiny") == {}
        backend.poll(5.0)
        backend.observe("tiny")
    finally:
        backend.close()
    kinds = [("watch" if c.query.get("watch") else "list") for c in server.cluster.calls("GET", "jobs")]
    assert kinds == ["list", "watch", "list"]
    assert server.cluster.calls("GET", "jobs")[1].query["resourceVersion"] == "1"  # from the first list


def test_no_configured_cluster_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(XstiltsError, match="no Kubernetes cluster configured"):
        KubernetesBackend(SETTINGS, STORE_URI)


def test_a_log_that_cannot_be_read_leaves_the_failure_without_its_line_once(
    server: FakeApiServer, plan: Plan, caplog: pytest.LogCaptureFixture
) -> None:
    """A Role without pods/log (403): the failed phase shows its Job's reason, one warning, and the log
    is not asked for again on the next pass."""
    phase = plan.ordered()[0]
    manifest = to_dict(render_phase(phase, "tiny", STORE_URI, SETTINGS)[0])
    manifest["status"] = {"conditions": [condition("Failed", "BackoffLimitExceeded", "backoff limit")]}
    name = manifest["metadata"]["name"]
    server.cluster.put("jobs", manifest)
    labels = {**manifest["spec"]["template"]["metadata"]["labels"], "batch.kubernetes.io/job-name": name}
    server.cluster.put(
        "pods", {"metadata": {"name": f"{name}-x1", "labels": labels}, "status": {"phase": "Failed"}}
    )
    server.cluster.fail_next("GET", "/log", 403)
    backend = KubernetesBackend(SETTINGS, STORE_URI, api=connect(server.url))
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                observed = backend.observe("tiny")[phase.address]
                assert (observed.state, observed.message) == (JobState.FAILED, "backoff limit")
    finally:
        backend.close()
    assert caplog.text.count("the last error line of pod") == 1, caplog.text
    assert backend.api.calls["get pods/log"] == 1 and backend.api.calls["list pods"] == 1, backend.api.calls
