"""jobs/tiny.yaml on a real cluster, end to end: `xstilts sweep submit --backend kubernetes`.

Needs a cluster that KUBECONFIG reaches, prepared by k8s/minikube/setup.sh (images built inside
minikube, the chart installed with its S3 test server, a port-forward to it and the AWS_* exports it
prints). Without a reachable cluster the test is skipped, saying why: this is the suite's only skip.
Environment: XSTILTS_NAMESPACE (the release's namespace, else the context's), XSTILTS_CLUSTER_STORE
(default s3://xstilts/cluster-test-<time>, a fresh prefix so nothing is already done).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
TINY = REPO / "jobs" / "tiny.yaml"


def reachable_cluster() -> str | None:
    """None when the API server answers; else why not."""
    try:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(client_configuration=configuration)
        configuration.retries = 0
        with client.ApiClient(configuration) as api:
            client.VersionApi(api).get_code(_request_timeout=(3, 5))
    except Exception as exc:  # any failure means: no cluster to test against
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    problem = reachable_cluster()
    if problem:
        reason = (
            f"no reachable cluster: KUBECONFIG={os.environ.get('KUBECONFIG', '(unset: ~/.kube/config)')}: "
            f"{problem}; run k8s/minikube/setup.sh to test against minikube"
        )
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)


def xstilts(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    python = PYTHON if PYTHON.exists() else Path(sys.executable)
    return subprocess.run(
        [str(python), "-m", "xstilts", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.cluster
@pytest.mark.timeout(3600)
def test_tiny_sweep_runs_on_the_cluster(cluster: None) -> None:
    store = os.environ.get("XSTILTS_CLUSTER_STORE") or f"s3://xstilts/cluster-test-{int(time.time())}"
    submit = xstilts("sweep", "submit", str(TINY), "--backend", "kubernetes", "--store", store, timeout=3300)
    assert submit.returncode == 0, f"submit failed:\n{submit.stdout[-3000:]}\n{submit.stderr[-3000:]}"

    status = xstilts(
        "sweep", "status", str(TINY), "--backend", "kubernetes", "--store", store, "-o", "json", timeout=120
    )
    assert status.returncode == 0, status.stderr
    phases = json.loads(status.stdout)
    phases = phases.get("phases", phases) if isinstance(phases, dict) else phases
    assert phases and all(p["state"] == "done" for p in phases), phases

    # The Jobs are the rendered ones: deterministic names, the sweep's labels, all complete.
    from kubernetes import client, config

    from xstilts.render.release import current_namespace

    config.load_kube_config()
    namespace = os.environ.get("XSTILTS_NAMESPACE") or current_namespace()
    jobs = client.BatchV1Api().list_namespaced_job(namespace, label_selector="xstilts.io/sweep=tiny").items
    names = {j.metadata.name for j in jobs}
    assert {f"xst-{p['kind']}-{p['address']}" for p in phases} <= names
    for job in jobs:
        if job.metadata.labels.get("xstilts.io/address"):
            assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])

    # Resubmitting a finished sweep creates nothing and exits 0.
    again = xstilts(
        "sweep", "submit", str(TINY), "--backend", "kubernetes", "--store", store, "--detach", timeout=300
    )
    assert again.returncode == 0, again.stderr
