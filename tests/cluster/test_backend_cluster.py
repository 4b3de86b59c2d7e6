"""The Kubernetes backend against a real API server and the real Job controller: creates and 409s,
Job states from real Job conditions, a Job's identity including its store, cancel with garbage
collection, retries of failed phases, logs from real pods, the in-cluster controller's Job, and what
a pass costs in API calls. (Faults a real server cannot be made to produce on demand stay on the fake
server: tests/backends/test_kubernetes_backend.py.)"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Cluster, Namespace, drop_namespace, make_namespace
from tests.cluster.sweeps import sweep_file, two_phases
from xstilts.backends.base import JobState
from xstilts.backends.kubernetes import KubeApi, KubernetesBackend, submit_controller
from xstilts.errors import XstiltsError
from xstilts.plan.expand import Plan, expand
from xstilts.plan.phase import Phase, spec_key
from xstilts.render.controller import render_controller
from xstilts.render.dump import to_dict
from xstilts.render.job import render_phase
from xstilts.render.names import job_name, store_id
from xstilts.spec.cluster import ClusterSettings
from xstilts.spec.load import load_sweep
from xstilts.testing.kube_loopback import service_account_kubeconfig, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("kube")]

TINY = Path(__file__).resolve().parents[2] / "jobs" / "tiny.yaml"
STORE = "s3://bucket-a/runs"
OTHER_STORE = "s3://bucket-b/runs"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return expand(load_sweep(TINY))


@pytest.fixture(autouse=True)
def _loopback(kube: Cluster) -> None:
    kube.require_loopback("its stand-in kubelet runs `sh -c` in place of the phases' images")


def settings_for(ns: Namespace, **overrides: Any) -> ClusterSettings:
    return ClusterSettings.model_validate({"namespace": ns.name, "backoffLimit": 0, **overrides})


def backend_for(ns: Namespace, store: str = STORE, **overrides: Any) -> KubernetesBackend:
    settings = settings_for(ns, **overrides)
    api = KubeApi.from_configuration(ns.configuration(), ns.name)
    return KubernetesBackend(settings, store, api=api, controller=True)


def first(plan: Plan, kind: str, n: int = 0) -> Phase:
    return [p for p in plan.ordered() if p.kind == kind][n]


def rendered(
    backend: KubernetesBackend, phase: Phase, sweep: str = "tiny", script: str | None = None
) -> list[Any]:
    """The phase's real manifests; with `script`, its container runs `sh -c script` instead."""
    objects = [
        copy.deepcopy(to_dict(o)) for o in render_phase(phase, sweep, backend.store_uri, backend.settings)
    ]
    if script is not None:
        container = objects[0]["spec"]["template"]["spec"]["containers"][0]
        container["command"], container["args"] = ["sh", "-c", script], None
    return objects


def observe_until(
    backend: KubernetesBackend, expected: dict[str, tuple[JobState, str | None]], timeout: float = 120
) -> dict[str, Any]:
    """Reconcile-loop style (observe, then poll on the watch) until every address has its state."""
    last: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal last
        last = backend.observe("tiny")
        got = {a: (last[a].state, last[a].reason) if a in last else None for a in expected}
        if got == expected:
            return True
        backend.poll(5.0)
        return False

    try:
        wait_for(reached, timeout, f"Job states {expected}", interval=0)
    except AssertionError:
        raise AssertionError(
            f"states: { {a: (o.state, o.reason, o.message) for a, o in last.items()} }"
        ) from None
    return last


def test_submit_creates_the_job_once(ns: Namespace, plan: Plan) -> None:
    backend = backend_for(ns)
    phase = first(plan, "encoder")
    objects = rendered(backend, phase, script="sleep 30")
    assert backend.submit(phase, objects) is True
    assert backend.submit(phase, objects) is False  # 409 AlreadyExists: already submitted
    assert [j.metadata.name for j in ns.jobs()] == [job_name("encoder", phase.address, STORE)]
    assert backend.observe("tiny")[phase.address].state in (JobState.PENDING, JobState.RUNNING)


def test_the_same_sweep_against_two_stores_shares_no_job(ns: Namespace, plan: Plan) -> None:
    """Issue 13, 1: a second store in the same namespace never adopts the first store's Jobs (nor an
    earlier run's Job without a store), and each store's --retry-failed leaves the other's alone."""
    a, b = backend_for(ns, STORE), backend_for(ns, OTHER_STORE)
    phase = first(plan, "encoder")
    assert a.submit(phase, rendered(a, phase, script="exit 0")) is True
    # An earlier version's Job for the same phase: no store in its name or labels.
    legacy = rendered(a, phase, script="exit 0")[0]
    legacy["metadata"]["name"] = f"xst-encoder-{phase.address}"
    for labels in (legacy["metadata"]["labels"], legacy["spec"]["template"]["metadata"]["labels"]):
        del labels["xstilts.io/store"]
    ns.batch().create_namespaced_job(ns.name, legacy)
    observe_until(a, {phase.address: (JobState.SUCCEEDED, None)})

    assert phase.address not in b.observe("tiny")  # store B: not submitted yet
    assert b.submit(phase, rendered(b, phase, script="exit 1")) is True
    observe_until(b, {phase.address: (JobState.FAILED, "BackoffLimitExceeded")})
    names = sorted(j.metadata.name for j in ns.jobs())
    assert names == sorted(
        [
            legacy["metadata"]["name"],
            job_name("encoder", phase.address, STORE),
            job_name("encoder", phase.address, OTHER_STORE),
        ]
    )
    assert a.observe("tiny")[phase.address].state is JobState.SUCCEEDED  # A's view is A's Job
    # Store B's phase failed; deleting it for a retry leaves store A's Job alone.
    assert b.delete_failed("tiny", done=lambda address: False) == 1
    assert sorted(j.metadata.name for j in ns.jobs()) == sorted(
        [legacy["metadata"]["name"], job_name("encoder", phase.address, STORE)]
    )


def test_a_job_of_the_name_from_another_store_is_a_conflict_not_adopted(ns: Namespace, plan: Plan) -> None:
    backend = backend_for(ns)
    phase = first(plan, "encoder")
    squatter = rendered(backend, phase, script="exit 0")[0]
    squatter["metadata"]["labels"]["xstilts.io/store"] = "00000000"
    ns.batch().create_namespaced_job(ns.name, squatter)
    assert backend.submit(phase, rendered(backend, phase)) is False
    observed = backend.observe("tiny")[phase.address]
    assert (observed.state, observed.reason) == (JobState.FAILED, "NameConflict")
    assert "does not belong to this store" in (observed.message or "")


def test_job_states_come_from_the_real_job_controller(ns: Namespace, plan: Plan) -> None:
    backend = backend_for(ns)
    phases = [first(plan, "evaluate", n) for n in range(6)]
    scripts = ["exit 0", "exit 1", "exit 3", "sleep 60", "sleep 60", None]
    for phase, script in zip(phases, scripts, strict=True):
        objects = rendered(backend, phase, script=script or "sleep 60")
        spec = objects[0]["spec"]
        if phase is phases[3]:
            spec["activeDeadlineSeconds"] = 3
        if script is None:  # as Kueue leaves it until admission
            spec["suspend"] = True
            objects[0]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = "team-a"
        assert backend.submit(phase, objects) is True
    before = backend.api.calls.copy()
    observed = observe_until(
        backend,
        {
            phases[0].address: (JobState.SUCCEEDED, None),
            phases[1].address: (JobState.FAILED, "BackoffLimitExceeded"),
            phases[2].address: (JobState.FAILED, "PodFailurePolicy"),  # exit 3: a configuration error
            phases[3].address: (JobState.FAILED, "DeadlineExceeded"),
            phases[4].address: (JobState.RUNNING, None),
            phases[5].address: (JobState.PENDING, "Suspended"),
        },
    )
    assert "exit code 3" in (observed[phases[2].address].message or "")
    assert observed[phases[5].address].message == "suspended (waiting for Kueue admission)"
    assert observed[phases[0].address].finished is not None and observed[phases[0].address].attempts == 1
    calls = backend.api.calls - before
    # The loop's cost: one list of each, then watches (a watch lasts up to WATCH_SECONDS); and for the
    # failures' error lines a list of the failed pods in a pass that sees new failures (a deadline's
    # Job once more when its pod has stopped) and one log read per failed pod.
    failed = 3
    assert calls["list jobs"] <= 1 and calls["watch jobs"] >= 1, calls
    assert calls["list pods"] <= 1 + 2 * failed and calls["get pods/log"] <= failed, calls
    assert set(calls) <= {"list jobs", "watch jobs", "list pods", "watch pods", "get pods/log"}, calls


def test_cancel_deletes_unfinished_jobs_and_their_services(ns: Namespace, plan: Plan) -> None:
    backend = backend_for(ns, presets={"target": {"gpu": 0, "nodes": 2}})
    done, multi, running = first(plan, "encoder"), first(plan, "target"), first(plan, "evaluate")
    other = first(plan, "target", 1)
    backend.submit(done, rendered(backend, done, script="exit 0"))
    objects = rendered(backend, multi, script="sleep 60")  # an Indexed Job (not run: no DNS here)
    assert [o["kind"] for o in objects] == ["Job", "Service"]
    backend.submit(multi, objects)
    backend.submit(running, rendered(backend, running, script="sleep 60"))
    backend.submit(other, rendered(backend, other, sweep="other-sweep", script="sleep 60"))
    controller = to_dict(render_controller("name: tiny", "tiny", STORE, backend.settings)[1])
    controller["spec"]["template"]["spec"]["containers"][0].update(command=["sleep", "60"], args=None)
    ns.batch().create_namespaced_job(ns.name, controller)
    name = job_name("target", multi.address, STORE)
    service = ns.core().read_namespaced_service(name, ns.name)
    (owner,) = service.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == (
        "Job",
        name,
        ns.batch().read_namespaced_job(name, ns.name).metadata.uid,
    )
    # A controller that stopped between the two creates: resubmitting restores the Service.
    ns.core().delete_namespaced_service(name, ns.name)
    assert backend.submit(multi, objects) is False
    assert ns.core().read_namespaced_service(name, ns.name).metadata.owner_references[0].name == name
    observe_until(
        backend, {done.address: (JobState.SUCCEEDED, None), running.address: (JobState.RUNNING, None)}
    )

    # The controller (first, so that it cannot resubmit), the multi-node and the running phase; not
    # the finished phase, nor the other sweep's Job.
    assert backend.cancel("tiny") == 3
    remaining = lambda: sorted(j.metadata.name for j in ns.jobs())  # noqa: E731
    wait_for(
        lambda: (
            remaining()
            == sorted([job_name("encoder", done.address, STORE), job_name("target", other.address, STORE)])
        ),
        60,
        "the cancelled Jobs to go",
    )
    # The other sweep's multi-node phase keeps its Service.
    services = [s.metadata.name for s in ns.core().list_namespaced_service(ns.name).items]
    assert services == [job_name("target", other.address, STORE)]
    # Background propagation: the garbage collector removes the cancelled Jobs' pods.
    wait_for(
        lambda: (
            not [
                p
                for p in ns.core().list_namespaced_pod(ns.name).items
                if p.metadata.labels.get("xstilts.io/address") in (multi.address, running.address)
            ]
        ),
        60,
        "the cancelled Jobs' pods to go",
    )


def test_failed_and_unmarked_jobs_are_deleted_for_a_retry(ns: Namespace, plan: Plan) -> None:
    backend = backend_for(ns)
    failed, unmarked, marked = (first(plan, "evaluate", n) for n in range(3))
    backend.submit(failed, rendered(backend, failed, script="exit 1"))
    backend.submit(unmarked, rendered(backend, unmarked, script="exit 0"))
    backend.submit(marked, rendered(backend, marked, script="exit 0"))
    observe_until(
        backend,
        {
            failed.address: (JobState.FAILED, "BackoffLimitExceeded"),
            unmarked.address: (JobState.SUCCEEDED, None),
            marked.address: (JobState.SUCCEEDED, None),
        },
    )
    # A succeeded Job whose phase the store lacks (a wiped store) is retried too; a done one stays.
    assert backend.delete_failed("tiny", done=lambda address: address == marked.address) == 2
    observed = backend.observe("tiny")
    assert failed.address not in observed and unmarked.address not in observed
    assert backend.submit(failed, rendered(backend, failed, script="exit 0")) is True  # the next pass


def test_a_failed_pods_last_error_line_is_in_status_read_once(ns: Namespace) -> None:
    """Issue 17: `status` says why a phase failed, as the local backend does: the last error line of the
    failed pod's log, read once per failure (no log read for a Job that succeeded)."""
    sweep, plan = sweep_file(ns.tmp, two_phases("errline"))
    store = ns.store("errline")
    backend = backend_for(ns, store=store)
    encoder, evaluate = first(plan, "encoder"), first(plan, "evaluate")
    error = "OSError: [Errno 28] No space left on device: '/cache/features'"
    failing = f"echo 'Traceback (most recent call last):'; echo \"{error}\" >&2; echo 'exiting'; exit 1"
    backend.submit(encoder, rendered(backend, encoder, "errline", script=failing))
    backend.submit(evaluate, rendered(backend, evaluate, "errline", script="exit 0"))
    observed = observe_until(
        backend,
        {
            encoder.address: (JobState.FAILED, "BackoffLimitExceeded"),
            evaluate.address: (JobState.SUCCEEDED, None),
        },
    )
    assert (observed[encoder.address].message or "").endswith(f": {error}"), observed[encoder.address]
    for _ in range(3):
        assert backend.observe("errline")[encoder.address].message == observed[encoder.address].message
    assert backend.api.calls["get pods/log"] == 1, backend.api.calls

    # What a user sees: `sweep status --backend kubernetes` (the store has the specs a submit writes).
    bucket, _, prefix = store[len("s3://") :].partition("/")
    for phase in (encoder, evaluate):
        key = f"{prefix}/{spec_key(phase.address)}"
        ns.s3_client().put_object(Bucket=bucket, Key=key, Body=phase.model_dump_json().encode())
    status = ns.xstilts("sweep", "status", sweep, "--backend", "kubernetes", "--store", store, "-o", "json")
    assert status.returncode == 0, status.stderr[-3000:]
    phases = {p["address"]: p for p in json.loads(status.stdout)["phases"]}
    assert phases[encoder.address]["state"] == "failed", phases
    assert error in phases[encoder.address]["reason"], phases[encoder.address]


def test_logs_come_from_the_newest_pod_while_it_exists(ns: Namespace, plan: Plan) -> None:
    backend = backend_for(ns)
    phase = first(plan, "target")
    assert backend.logs(phase) is None  # no Job yet: the CLI reads the store's copy
    script = 'echo \'{"event": "step", "step": 1}\'; echo \'{"event": "step", "step": 2}\'; sleep 60'
    backend.submit(phase, rendered(backend, phase, script=script))
    lines = wait_for(lambda: list(backend.logs(phase) or []), 60, "the pod's log")
    assert lines[:2] == ['{"event": "step", "step": 1}', '{"event": "step", "step": 2}']
    ns.batch().delete_namespaced_job(
        job_name("target", phase.address, STORE), ns.name, propagation_policy="Background"
    )
    wait_for(lambda: backend.logs(phase) is None, 60, "no pod left after the Job's deletion")


def test_logs_of_a_pod_deleted_after_it_was_listed_are_none(
    ns: Namespace, plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod can go between the list that found it and the read of its log (a Job deleted or
    replaced meanwhile): the real server answers 404, which means no live log, not a failure."""
    backend = backend_for(ns)
    phase = first(plan, "target")
    gone = {"metadata": {"name": "xst-target-gone-pod"}, "status": {"phase": "Running"}}
    monkeypatch.setattr(backend, "_newest_pod", lambda name: gone)
    assert backend.logs(phase) is None
    assert backend.logs(phase, follow=True) is None


def test_submit_controller_is_idempotent_and_replaces_a_finished_one(kube: Cluster, tmp_path: Path) -> None:
    ns = make_namespace(kube, f"t-controller-{store_id(str(tmp_path))[:4]}", tmp_path / "ns", kubelet=False)
    try:
        settings = settings_for(ns)
        api = KubeApi.from_configuration(ns.configuration(), ns.name)
        text = TINY.read_text()
        name = submit_controller(text, "tiny", STORE, settings, api=api)
        assert name == f"xst-controller-tiny-{store_id(STORE)}"
        assert ns.core().read_namespaced_config_map(name, ns.name).data["sweep.yaml"] == text
        uid = ns.batch().read_namespaced_job(name, ns.name).metadata.uid
        # Unfinished: left alone (the sweep file is refreshed for its next restart).
        assert submit_controller(text + "\n# edited\n", "tiny", STORE, settings, api=api) == name
        assert ns.batch().read_namespaced_job(name, ns.name).metadata.uid == uid
        assert ns.core().read_namespaced_config_map(name, ns.name).data["sweep.yaml"].endswith("# edited\n")
        # Another store's controller of the same sweep is a different Job.
        assert submit_controller(text, "tiny", OTHER_STORE, settings, api=api) != name
        # Finished (failed, here by its deadline): a new controller Job.
        ns.batch().patch_namespaced_job(name, ns.name, {"spec": {"activeDeadlineSeconds": 1}})
        wait_for(
            lambda: any(
                c.type == "Failed"
                for c in ns.batch().read_namespaced_job(name, ns.name).status.conditions or []
            ),
            60,
            "the controller Job to fail",
        )
        submit_controller(text, "tiny", STORE, settings, api=api)
        assert ns.batch().read_namespaced_job(name, ns.name).metadata.uid != uid
    finally:
        drop_namespace(kube, ns)


def test_forbidden_is_one_clear_line_without_retries(kube: Cluster, ns: Namespace) -> None:
    """A ServiceAccount without the chart's Role: the real server's 403, reported once, not retried."""
    token = ns.tmp / "default-sa.kubeconfig"
    service_account_kubeconfig(kube.admin_kubeconfig, ns.name, "default", token)
    api = KubeApi.from_configuration(ns.configuration(token), ns.name, outage_seconds=600)
    backend = KubernetesBackend(settings_for(ns), STORE, api=api, controller=True)
    with pytest.raises(XstiltsError) as info:
        backend.observe("tiny")
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 1
    assert f"(namespace {ns.name}) refused to list jobs" in message and "403" in message
    assert f'"system:serviceaccount:{ns.name}:default" cannot list resource "jobs"' in message
    assert api.calls["list jobs"] == 1


def test_lists_come_in_pages(ns: Namespace, plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xstilts.backends.kubernetes.PAGE", 2)
    backend = backend_for(ns)
    phases = [first(plan, "evaluate", n) for n in range(5)]
    for phase in phases:
        objects = rendered(backend, phase, script="exit 0")
        objects[0]["spec"]["suspend"] = True  # never runs: only listed
        backend.submit(phase, objects)
    backend._jobs = None  # a fresh pass
    assert set(backend.observe("tiny")) == {p.address for p in phases}
    assert backend.api.calls["list jobs"] == 3  # 2 + 2 + 1, following `continue`
