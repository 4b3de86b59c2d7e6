"""What the Kubernetes reconcile loop costs the API server: requests per pass and per phase, counted
by the server (its audit log, for the ServiceAccount the loop runs as) on a real control plane.

    .venv/bin/python benchmarks/kube_reconcile_cost.py                     # both sweeps, this checkout
    .venv/bin/python benchmarks/kube_reconcile_cost.py --before /path/to/older/checkout

Needs the loopback control plane (`<repo>/../shared/kube`, as in CI). For each sweep it starts that
control plane, installs the chart into a fresh namespace, and runs `xstilts sweep submit --backend
kubernetes` as the chart's ServiceAccount until the sweep is done:

- `tiny`: jobs/tiny.yaml (24 real phases on the stand-in kubelet, 2 at a time);
- `every-kind`: encoder -> mlm -> intermediate -> target -> evaluate (5 real phases);
- `synthetic`: jobs/tiny.yaml with 45 seeds (992 phases, 4 waves), whose phase pods only write their
  `_COMPLETE` marker (no training), 16 at a time: the loop's own cost at scale.

`--before CHECKOUT` runs the same with another checkout's `xstilts` and chart (e.g. the commit before
the watch-based loop), in a namespace of its own. Passes: counted by `on_pass` for this checkout; for
a checkout that lists once per pass, its `list jobs` requests.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from common import REPO, git_sha, machine

from xstilts.testing.kube_loopback import (
    LoopbackCluster,
    kube_dir_for,
    requests_by,
    service_account_kubeconfig,
)
from xstilts.testing.pod_images import write_shim

FAKE_PHASE = """#!{python}
# `xstilts phase run ADDRESS --store DIR` that only commits the phase's outputs: a metrics.json.
import json, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from xstilts.store.complete import commit_dir
from xstilts.store.local import LocalStore
address, store = sys.argv[3], Path(sys.argv[5])
kind = json.loads((store / "specs" / f"{{address}}.json").read_text())["kind"]
out = Path.cwd() / "out"
out.mkdir(exist_ok=True)
(out / "metrics.json").write_text("{{}}")
commit_dir(LocalStore(store), out, f"phases/{{kind}}/{{address}}")
"""


def every_kind_sweep() -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tests.cluster.sweeps import every_kind

    return every_kind("every-kind")


def synthetic_sweep(seeds: int) -> dict[str, Any]:
    sweep = yaml.safe_load((REPO / "jobs" / "tiny.yaml").read_text())
    sweep.update(name="synthetic", seeds=list(range(1, seeds + 1)))
    return sweep


def run(
    cluster: LoopbackCluster, checkout: Path, case: str, sweep: dict[str, Any], tmp: Path, max_running: int
) -> dict[str, Any]:
    name = f"bench-{case}-{'this' if checkout == REPO else 'before'}"
    cluster.namespace(name)
    work = tmp / name
    work.mkdir(parents=True)
    store = work / "store"
    if case == "synthetic":
        shim = work / "bin"
        shim.mkdir()
        (shim / "xstilts").write_text(FAKE_PHASE.format(python=sys.executable, repo=str(REPO)))
        (shim / "xstilts").chmod(0o755)
    else:
        shim = write_shim(work / "bin", REPO)
    kubelet = cluster.kubelet(
        [name], path=[shim], max_running=max_running, interval=0.2 if case == "synthetic" else 0.5
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "XSTILTS_NAMESPACE", "AWS_"))}
    env.update(
        KUBECONFIG=str(cluster.admin_kubeconfig), HOME=str(work), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1"
    )
    from xstilts.testing.tools import helm_binary

    values = work / "values.yaml"
    values.write_text(
        yaml.safe_dump({"store": "s3://unused/runs", "backoffLimit": 0, "ttlSecondsAfterFinished": None})
    )
    helm = subprocess.run(
        [
            str(helm_binary()),
            "install",
            "xstilts",
            str(checkout / "charts" / "xstilts"),
            "-n",
            name,
            "-f",
            str(values),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert helm.returncode == 0, helm.stderr
    kubeconfig = service_account_kubeconfig(cluster.admin_kubeconfig, name, "xstilts", work / "sa.kubeconfig")
    sweep_file = work / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({**sweep, "kubernetes": {"backoffLimit": 0}}))
    env.update(KUBECONFIG=str(kubeconfig), PYTHONPATH=str(checkout))
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "xstilts",
            "sweep",
            "submit",
            str(sweep_file),
            "--backend",
            "kubernetes",
            "--store",
            str(store),
            "--no-report",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=7200,
        cwd=work,
    )
    wall = time.monotonic() - started
    cluster.stop_kubelet(kubelet)
    assert proc.returncode == 0, proc.stderr[-3000:]
    phases = int(proc.stderr.rsplit("phases done", 1)[0].rsplit("/", 1)[1].split()[0])
    user = f"system:serviceaccount:{name}:xstilts"
    counted: Counter[str] = Counter()
    for (_group, resource, verb, _code), n in requests_by(cluster.audit_events(user)).items():
        counted[f"{verb} {resource}"] += n
    cost = _cost_line(proc.stderr)
    if cost is None:  # a checkout that does not print its cost: one list of the sweep's Jobs per pass
        listed = _jobs_listed(cluster.audit_events(user))
        size = _mean_job_bytes(cluster, name)
        cost = {"passes": counted["list jobs"], "listed": listed, "mb": round(listed * size / 1e6, 1)}
    return {
        "case": case,
        "checkout": "this" if checkout == REPO else str(checkout),
        "phases": phases,
        "wall_s": round(wall),
        "requests": dict(counted),
        **cost,
    }


def _cost_line(stderr: str) -> dict[str, Any] | None:
    """From `API: N requests in P passes (...); lists returned K objects, M MB`."""
    for line in stderr.splitlines():
        found = re.match(
            r"API: \d+ requests in (\d+) passes .*lists returned (\d+) objects, ([\d.]+) MB", line
        )
        if found:
            return {"passes": int(found[1]), "listed": int(found[2]), "mb": float(found[3])}
    return None


def _jobs_listed(events: Any) -> int:
    """Jobs the lists returned: at each `list jobs`, the Jobs created before it (none is deleted)."""
    creates, lists = [], []
    for event in events:
        ref = event.get("objectRef") or {}
        if ref.get("resource") != "jobs":
            continue
        when = event.get("requestReceivedTimestamp", "")
        if event.get("verb") == "create" and (event.get("responseStatus") or {}).get("code") == 201:
            creates.append(when)
        elif event.get("verb") == "list":
            lists.append(when)
    creates.sort()
    return sum(bisect.bisect_left(creates, when) for when in lists)


def _mean_job_bytes(cluster: LoopbackCluster, namespace: str) -> float:
    """The mean size of the namespace's Jobs as the API returns them (JSON)."""
    from kubernetes import client

    response = client.BatchV1Api(cluster.admin()).list_namespaced_job(namespace, _preload_content=False)
    jobs = json.loads(response.data)["items"]
    return sum(len(json.dumps(j, separators=(",", ":"))) for j in jobs) / max(len(jobs), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="another checkout to measure the same way")
    parser.add_argument("--seeds", type=int, default=45, help="seeds of the synthetic sweep (22 phases each)")
    parser.add_argument("--cases", default="tiny,every-kind,synthetic")
    args = parser.parse_args()
    kube_dir = kube_dir_for(REPO)
    results = []
    with tempfile.TemporaryDirectory(prefix="xstilts-kube-bench-") as tmp:
        cluster = LoopbackCluster.start(kube_dir, Path(tmp) / "kube")
        try:
            for case in args.cases.split(","):
                sweep = {
                    "tiny": lambda: yaml.safe_load((REPO / "jobs" / "tiny.yaml").read_text()),
                    "every-kind": every_kind_sweep,
                    "synthetic": lambda: synthetic_sweep(args.seeds),
                }[case]()
                for checkout in [REPO, *([args.before.resolve()] if args.before else [])]:
                    result = run(cluster, checkout, case, sweep, Path(tmp), 16 if case == "synthetic" else 2)
                    results.append(result)
                    print(json.dumps(result), flush=True)
        finally:
            cluster.stop()
    print(f"\nmachine: {machine()}, git {git_sha()}, {time.strftime('%Y-%m-%d')}")
    print(
        "\n| sweep | code | phases | passes | wall s | API requests | per pass | per phase | objects listed "
        "| list MB | by verb |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        total = sum(r["requests"].values())
        verbs = ", ".join(f"{k} {v}" for k, v in sorted(r["requests"].items(), key=lambda kv: -kv[1]))
        print(
            f"| {r['case']} | {r['checkout']} | {r['phases']} | {r['passes']} | {r['wall_s']} | {total} | "
            f"{total / max(r['passes'], 1):.2f} | {total / max(r['phases'], 1):.2f} | {r['listed']} | "
            f"{r['mb']} | {verbs} |"
        )


if __name__ == "__main__":
    main()
