"""The reconcile loop rides out an API-server restart (issue 13, 2): kube-apiserver is killed and kept
down for 8 s while `sweep submit` waits on its phases; the controller retries with backoff and jitter
(and through the 403s of an apiserver whose authorizer is still starting), keeps its place, and
finishes the sweep without creating any Job twice."""

from __future__ import annotations

import json

import pytest

from tests.cluster.conftest import Cluster, Namespace
from tests.cluster.sweeps import sweep_file, two_phases
from xstilts.render.names import job_name
from xstilts.testing.kube_loopback import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("kube")]


def test_an_apiserver_restart_during_a_submit(kube: Cluster, ns: Namespace) -> None:
    loopback = kube.require_loopback("an apiserver to restart")
    ns.install_chart()
    sweep, plan = sweep_file(ns.tmp, two_phases())
    store = ns.store("outage")
    encoder = plan.ordered()[0]
    log = ns.tmp / "submit.log"
    controller = ns.popen_xstilts(
        "sweep", "submit", sweep, "--backend", "kubernetes", "--store", store, "--no-report", log=log
    )
    try:
        name = job_name(encoder.kind, encoder.address, store)

        def encoder_running() -> bool:
            assert controller.poll() is None, log.read_text()[-3000:]
            jobs = {j.metadata.name: j for j in ns.jobs()}
            return name in jobs and bool(jobs[name].status.active)

        wait_for(encoder_running, 240, "the encoder's pod to run")
        uid = ns.batch().read_namespaced_job(name, ns.name).metadata.uid
        down = loopback.restart_apiserver(down_seconds=8)
        assert down >= 8
        assert controller.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(timeout=30)
    text = log.read_text()
    assert "retrying for up to 600s (apiOutageSeconds)" in text and "answers again" in text, text[-3000:]
    assert text.count("2/2 phases done") == 1, text[-3000:]  # the final summary, once
    assert ns.batch().read_namespaced_job(name, ns.name).metadata.uid == uid  # kept its place
    assert sorted(j.metadata.name for j in ns.jobs()) == sorted(
        job_name(p.kind, p.address, store) for p in plan.ordered()
    )
    status = ns.xstilts("sweep", "status", sweep, "--backend", "kubernetes", "--store", store, "-o", "json")
    assert [p["state"] for p in json.loads(status.stdout)["phases"]] == ["done", "done"]
