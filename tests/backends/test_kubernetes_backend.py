"""The Kubernetes backend against a fake API server over real HTTP (tests/backends/k8s_fake.py): Job
creation and 409s, one list call per pass, states from Job conditions, logs, cancel with background
propagation, retries, clear errors; then the real reconcile loop on top of it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.backends.k8s_fake import FakeApiServer
from xstilts.backends.base import JobState
from xstilts.backends.kubernetes import KubeApi, KubernetesBackend, submit_controller
from xstilts.backends.reconcile import DONE, Reconciler
from xstilts.errors import XstiltsError
from xstilts.plan.expand import Plan, expand
from xstilts.plan.phase import Phase
from xstilts.render.controller import render_controller
from xstilts.render.dump import to_dict
from xstilts.render.job import render_phase
from xstilts.render.names import job_name
from xstilts.render.settings import ClusterSettings
from xstilts.spec.load import load_sweep
from xstilts.store import LocalStore
from xstilts.store.complete import commit_dir

TINY = Path(__file__).resolve().parents[2] / "jobs" / "tiny.yaml"
SETTINGS = ClusterSettings(namespace="xs")
STORE_URI = "s3://xstilts/runs"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return expand(load_sweep(TINY))


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as srv:
        yield srv


def connect(url: str, sleeps: list[float] | None = None) -> KubeApi:
    sleep = sleeps.append if sleeps is not None else (lambda _: None)
    return KubeApi.from_configuration(client.Configuration(host=url), "xs", sleep=sleep)


def backend_for(
    server: FakeApiServer, settings: ClusterSettings = SETTINGS, **kwargs: Any
) -> KubernetesBackend:
    return KubernetesBackend(settings, api=connect(server.url, **kwargs))


def submit(
    backend: KubernetesBackend, phase: Phase, sweep: str = "tiny", settings: ClusterSettings = SETTINGS
) -> bool:
    return backend.submit(phase, render_phase(phase, sweep, STORE_URI, settings))


def first(plan: Plan, kind: str, n: int = 0) -> Phase:
    return [p for p in plan.ordered() if p.kind == kind][n]


def test_submit_creates_the_job_once(server: FakeApiServer, plan: Plan) -> None:
    backend = backend_for(server)
    phase = first(plan, "encoder")
    assert submit(backend, phase) is True
    assert submit(backend, phase) is False  # 409 AlreadyExists: already submitted
    assert server.cluster.names("jobs") == [job_name("encoder", phase.address)]
    posts = server.cluster.calls("POST", "jobs")
    assert len(posts) == 2 and posts[0].path == "/apis/batch/v1/namespaces/xs/jobs"
    assert posts[0].body == to_dict(render_phase(phase, "tiny", STORE_URI, SETTINGS)[0])


def test_multi_node_service_is_owned_by_its_job(server: FakeApiServer, plan: Plan) -> None:
    settings = ClusterSettings.model_validate(
        {"namespace": "xs", "presets": {"target": {"gpu": 2, "nodes": 2}}}
    )
    backend = backend_for(server, settings)
    phase = first(plan, "target")
    assert submit(backend, phase, settings=settings) is True
    name = job_name("target", phase.address)
    service = server.cluster.get("services", name)
    assert service is not None and service["spec"]["clusterIP"] == "None"
    (owner,) = service["metadata"]["ownerReferences"]
    assert owner["kind"] == "Job" and owner["name"] == name
    assert owner["uid"] == server.cluster.get("jobs", name)["metadata"]["uid"]
    # A controller that stopped between the two creates: resubmitting restores the Service.
    server.cluster.objects.pop(("services", "xs", name))
    assert submit(backend, phase, settings=settings) is False
    assert server.cluster.get("services", name) is not None


def test_observe_is_one_list_call_and_maps_job_conditions(server: FakeApiServer, plan: Plan) -> None:
    backend = backend_for(server)
    phases = plan.ordered()[:9]
    for phase in phases:
        submit(backend, phase)
    names = [job_name(p.kind, p.address) for p in phases]
    cluster = server.cluster
    cluster.complete(names[0])
    cluster.fail(names[1], "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    cluster.fail(names[2], "DeadlineExceeded", "Job was active longer than specified deadline")
    cluster.fail(names[3], "PodFailurePolicy", "Container phase for pod xs/p failed with exit code 3")
    cluster.get("jobs", names[4])["spec"]["suspend"] = True
    cluster.get("jobs", names[4])["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = "team-a"
    cluster.set_status(names[5], {"startTime": "2026-11-22T10:00:00Z", "active": 1, "ready": 1})
    cluster.set_status(names[6], {"startTime": "2026-11-22T10:00:00Z", "active": 1, "ready": 0})
    cluster.set_status(names[7], {"startTime": "2026-11-22T10:00:00Z", "failed": 1})
    # Not this sweep's phases: another sweep's Job and this sweep's controller.
    cluster.put(
        "jobs",
        {
            "metadata": {
                "name": "xst-encoder-other",
                "labels": {"xstilts.io/sweep": "other", "xstilts.io/address": "ffffffffffff"},
            }
        },
    )
    cluster.put("jobs", to_dict(render_controller("name: tiny", "tiny", STORE_URI, SETTINGS)[1]))

    before = len(cluster.requests)
    observed = backend.observe("tiny")
    calls = cluster.requests[before:]
    assert [(c.method, c.path) for c in calls] == [("GET", "/apis/batch/v1/namespaces/xs/jobs")]
    assert calls[0].query["labelSelector"] == "xstilts.io/sweep=tiny,xstilts.io/address"

    state = {p.address: observed[p.address] for p in phases}
    got = [(state[p.address].state, state[p.address].reason) for p in phases]
    assert got == [
        (JobState.SUCCEEDED, None),
        (JobState.FAILED, "BackoffLimitExceeded"),
        (JobState.FAILED, "DeadlineExceeded"),
        (JobState.FAILED, "PodFailurePolicy"),
        (JobState.PENDING, "Suspended"),
        (JobState.RUNNING, None),
        (JobState.PENDING, "PodsStarting"),
        (JobState.PENDING, "Retrying"),
        (JobState.PENDING, "Created"),
    ]
    assert set(observed) == {p.address for p in phases}
    assert state[phases[4].address].message == "suspended (waiting for Kueue admission)"
    assert "exit code 3" in (state[phases[3].address].message or "")
    assert state[phases[0].address].finished is not None and state[phases[0].address].attempts == 1
    assert state[phases[1].address].attempts == 4 and state[phases[7].address].attempts == 1
    assert state[phases[5].address].started == pytest.approx(1795341600.0)


def test_a_phase_shared_with_another_sweep_is_followed_by_name(server: FakeApiServer, plan: Plan) -> None:
    phase = first(plan, "encoder")
    server.cluster.put("jobs", to_dict(render_phase(phase, "other-sweep", STORE_URI, SETTINGS)[0]))
    backend = backend_for(server)
    assert submit(backend, phase) is False
    assert backend.observe("tiny")[phase.address].state is JobState.PENDING
    server.cluster.complete(job_name("encoder", phase.address))
    before = len(server.cluster.requests)
    assert backend.observe("tiny")[phase.address].state is JobState.SUCCEEDED
    assert [c.method for c in server.cluster.requests[before:]] == ["GET", "GET"]  # the list, then the Job
    server.cluster.objects.clear()
    assert backend.observe("tiny") == {} and backend.adopted == {}
    assert backend.cancel("tiny") == 0


def test_cancel_deletes_unfinished_jobs_with_background_propagation(
    server: FakeApiServer, plan: Plan
) -> None:
    settings = ClusterSettings.model_validate(
        {"namespace": "xs", "presets": {"target": {"gpu": 2, "nodes": 2}}}
    )
    backend = backend_for(server, settings)
    phases = [
        first(plan, "encoder"),
        first(plan, "intermediate"),
        first(plan, "target"),
        first(plan, "evaluate"),
    ]
    for phase in phases:
        submit(backend, phase, settings=settings)
    server.cluster.complete(job_name("encoder", phases[0].address))
    server.cluster.put("jobs", to_dict(render_controller("name: tiny", "tiny", STORE_URI, settings)[1]))
    server.cluster.put(
        "jobs", to_dict(render_phase(first(plan, "target", 1), "other", STORE_URI, settings)[0])
    )
    before = len(server.cluster.requests)

    assert backend.cancel("tiny") == 4  # three phases and the controller; the done encoder stays

    deletes = [c for c in server.cluster.requests[before:] if c.method == "DELETE"]
    assert deletes[0].path.endswith("/jobs/xst-controller-tiny")  # first, so it cannot resubmit
    assert all(c.body == {"propagationPolicy": "Background"} for c in deletes)
    remaining = server.cluster.names("jobs")
    assert remaining == sorted(
        [job_name("encoder", phases[0].address), job_name("target", first(plan, "target", 1).address)]
    )
    assert server.cluster.names("services") == []


def test_failed_jobs_can_be_deleted_for_a_retry(server: FakeApiServer, plan: Plan) -> None:
    backend = backend_for(server)
    phases = [first(plan, "encoder"), first(plan, "intermediate"), first(plan, "target")]
    for phase in phases:
        submit(backend, phase)
    server.cluster.fail(job_name("intermediate", phases[1].address), "BackoffLimitExceeded", "out of memory")
    server.cluster.complete(job_name("encoder", phases[0].address))
    assert backend.delete_failed("tiny") == 1
    assert phases[1].address not in backend.observe("tiny")
    assert submit(backend, phases[1]) is True  # the next pass submits it again
    assert len(server.cluster.names("jobs")) == 3


def test_server_errors_are_retried_with_backoff(server: FakeApiServer, plan: Plan) -> None:
    sleeps: list[float] = []
    backend = backend_for(server, sleeps=sleeps)
    server.cluster.fail_next("POST", "/jobs", 500)
    assert submit(backend, first(plan, "encoder")) is True
    assert sleeps == [0.5] and len(server.cluster.calls("POST", "jobs")) == 2
    server.cluster.fail_next("GET", "/jobs", 503, count=100)
    with pytest.raises(XstiltsError, match=r"failed to list jobs .*503"):
        backend.observe("tiny")
    assert sleeps[1:] == [0.5, 1.0, 2.0, 4.0]  # truncated exponential backoff, then give up


def test_forbidden_is_one_clear_line_without_retries(server: FakeApiServer, plan: Plan) -> None:
    backend = backend_for(server)
    server.cluster.fail_next("GET", "/jobs", 403)
    with pytest.raises(XstiltsError) as info:
        backend.observe("tiny")
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 1
    assert f"API server at {server.url} (namespace xs) refused to list jobs" in message and "403" in message
    assert len(server.cluster.calls("GET", "jobs")) == 1


def test_unreachable_server_fails_quickly_with_a_clear_message(plan: Plan) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = KubernetesBackend(
        SETTINGS, api=KubeApi.from_configuration(client.Configuration(host=f"http://127.0.0.1:{port}"), "xs")
    )
    start = time.monotonic()
    with pytest.raises(XstiltsError) as info:
        backend.observe("tiny")
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert f"cannot reach the Kubernetes API server at http://127.0.0.1:{port} (namespace xs)" in message
    assert "Connection refused" in message and "\n" not in message


def test_no_configured_cluster_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(XstiltsError, match="no Kubernetes cluster configured"):
        KubernetesBackend(SETTINGS)


def test_logs_come_from_the_newest_pod_while_it_exists(server: FakeApiServer, plan: Plan) -> None:
    backend = backend_for(server)
    phase = first(plan, "target")
    name = job_name("target", phase.address)
    submit(backend, phase)
    assert backend.logs(phase) is None  # no pod yet: the CLI reads the store's copy
    server.cluster.add_pod(
        name, f"{name}-a", phase="Failed", lines=["attempt 1"], created="2026-11-22T10:00:00Z"
    )
    server.cluster.add_pod(name, f"{name}-b", phase="Pending", created="2026-11-22T10:05:00Z")
    assert backend.logs(phase) is None  # the newest has not started: nothing to read yet
    server.cluster.get("pods", f"{name}-b")["status"]["phase"] = "Running"
    server.cluster.logs[f"{name}-b"] = ['{"event": "step", "step": 1}', '{"event": "step", "step": 2}']
    assert list(backend.logs(phase) or []) == ['{"event": "step", "step": 1}', '{"event": "step", "step": 2}']
    streamed = list(backend.logs(phase, follow=True) or [])
    assert len(streamed) == 2
    log_call = server.cluster.calls("GET", "pods")[-1]
    assert log_call.path.endswith(f"/pods/{name}-b/log") and log_call.query["follow"] == "true"
    assert log_call.query["container"] == "phase"


def test_logs_of_a_multi_node_phase_come_from_rank_0(server: FakeApiServer, plan: Plan) -> None:
    backend = backend_for(server)
    phase = first(plan, "target")
    name = job_name("target", phase.address)
    server.cluster.add_pod(name, f"{name}-0-x", lines=["rank 0"], created="2026-11-22T10:00:00Z", index="0")
    server.cluster.add_pod(name, f"{name}-1-y", lines=["rank 1"], created="2026-11-22T10:01:00Z", index="1")
    assert list(backend.logs(phase) or []) == ["rank 0"]


def test_submit_controller_is_idempotent_and_replaces_a_finished_one(server: FakeApiServer) -> None:
    api = connect(server.url)
    text = TINY.read_text()
    assert submit_controller(text, "tiny", STORE_URI, SETTINGS, api=api) == "xst-controller-tiny"
    assert server.cluster.get("configmaps", "xst-controller-tiny")["data"]["sweep.yaml"] == text
    uid = server.cluster.get("jobs", "xst-controller-tiny")["metadata"]["uid"]
    # Running: left alone (the sweep file is refreshed for its next restart).
    submit_controller(text + "\n# edited\n", "tiny", STORE_URI, SETTINGS, api=api)
    assert server.cluster.get("jobs", "xst-controller-tiny")["metadata"]["uid"] == uid
    assert server.cluster.get("configmaps", "xst-controller-tiny")["data"]["sweep.yaml"].endswith(
        "# edited\n"
    )
    # Finished (say a phase failed and was fixed): a new controller Job.
    server.cluster.fail("xst-controller-tiny", "BackoffLimitExceeded", "a phase failed")
    submit_controller(text, "tiny", STORE_URI, SETTINGS, api=api)
    job = server.cluster.get("jobs", "xst-controller-tiny")
    assert job["metadata"]["uid"] != uid and not job["status"]


# ---- the reconcile loop on the Kubernetes backend ---------------------------------------------------
def play(server: FakeApiServer, store: LocalStore, plan: Plan, tmp_path: Path) -> int:
    """What the phases' pods would do: commit outputs with a _COMPLETE marker; then the Job completes."""
    played = 0
    outputs = tmp_path / "outputs"
    outputs.mkdir(exist_ok=True)
    (outputs / "metrics.json").write_text("{}")
    for (resource, _, name), job in list(server.cluster.objects.items()):
        if resource != "jobs" or job["status"].get("conditions"):
            continue
        phase = plan.phases[job["metadata"]["labels"]["xstilts.io/address"]]
        commit_dir(store, outputs, phase.prefix)
        server.cluster.complete(name)
        played += 1
    return played


def reconcile_pass(server: FakeApiServer, store: LocalStore, plan: Plan) -> list[Any]:
    """One pass of a fresh controller: new backend and Reconciler objects, nothing carried over."""
    backend = backend_for(server)
    try:
        return Reconciler(plan, store, backend, str(store.root), SETTINGS).run(detach=True)
    finally:
        backend.close()


def test_reconcile_loop_on_the_kubernetes_backend(server: FakeApiServer, plan: Plan, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    creates = lambda: [c.body["metadata"]["name"] for c in server.cluster.calls("POST", "jobs")]  # noqa: E731

    # Pass 1 submits what has no inputs (the encoder); a resubmission before it ran creates nothing.
    statuses = reconcile_pass(server, store, plan)
    assert len(creates()) == 1
    assert {s.state for s in statuses} == {"pending", "waiting"}
    reconcile_pass(server, store, plan)
    assert len(creates()) == 1

    # Passes until done, each by a new ("restarted") controller, with the phases played in between.
    for _ in range(10):
        if play(server, store, plan, tmp_path) == 0:
            break
        statuses = reconcile_pass(server, store, plan)
    assert all(s.state == DONE for s in statuses), [(s.name, s.state, s.reason) for s in statuses]
    assert sorted(creates()) == sorted(
        job_name(p.kind, p.address) for p in plan.ordered()
    )  # each exactly once

    # Resubmitting the finished sweep creates nothing and lists once.
    before = len(server.cluster.requests)
    assert all(s.state == DONE for s in reconcile_pass(server, store, plan))
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in server.cluster.requests[before:]] == [
        ("GET", "jobs")
    ]
