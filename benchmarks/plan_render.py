"""Planning and rendering a 10,000-phase sweep: `expand()`, then every phase's Kubernetes objects and
their YAML, timed separately.

    .venv/bin/python benchmarks/plan_render.py [--phases 10000] [--repeat 3] [--profile]

The sweep is built in memory: one encoder, nine intermediate settings (the five single registry
tasks and four two-task mixtures), every target task, and as many seeds as it takes to reach
`--phases` phases. Rendering streams, as `xstilts sweep render` and the reconcile loop do: each
phase's objects are rendered, turned into YAML and dropped (only the text is kept), with the time
split between the two. Each step runs `--repeat` times in this process (the first run is the cold one
a CLI invocation pays; later ones have warm caches); the table shows the first run and the median.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import platform
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

from xstilts.plan.expand import Plan, expand
from xstilts.render.dump import to_yaml
from xstilts.render.job import render_phase
from xstilts.spec.cluster import ClusterSettings
from xstilts.spec.load import parse_sweep
from xstilts.spec.models import Sweep

STORE = "s3://xstilts/runs"
SETTINGS = ClusterSettings.model_validate({
    "namespace": "xstilts",
    "serviceAccountName": "xstilts",
    "s3": {"secretName": "xstilts-s3", "endpointUrl": "http://xstilts-s3.xstilts.svc:8080"},
    "presets": {kind: {"cpu": "8", "memory": "64Gi", "gpu": 1, "shmSize": "16Gi"}
                for kind in ("mlm", "intermediate", "target", "evaluate")},
})  # fmt: skip
INTERMEDIATE = [
    {"task": "mnli"}, {"task": "qqp"}, {"task": "sst2"}, {"task": "squad"}, {"task": "hellaswag"},
    {"tasks": ["mnli", "squad"]}, {"tasks": ["mnli", "hellaswag"]}, {"tasks": ["qqp", "squad"]},
    {"tasks": ["sst2", "hellaswag"], "sampling": "temperature"},
]  # fmt: skip


def sweep_with(seeds: int) -> Sweep:
    return parse_sweep({
        "name": "bench",
        "encoders": [{"name": "xlmr", "model": "xlm-roberta-large", "retrieval_layer": 14}],
        "intermediate": INTERMEDIATE,
        "targets": ["xnli", "pawsx", "panx", "udpos", "xquad", "tatoeba"],
        "seeds": list(range(1, seeds + 1)),
    }, "bench.yaml")  # fmt: skip


def sweep_of_size(phases: int) -> Sweep:
    one, two = len(expand(sweep_with(1)).phases), len(expand(sweep_with(2)).phases)
    per_seed = two - one
    return sweep_with(max(1, -(-(phases - (one - per_seed)) // per_seed)))


Clock = tuple[float, float]  # (wall, CPU) seconds


def now() -> Clock:
    return time.perf_counter(), time.process_time()


def since(start: Clock) -> Clock:
    wall, cpu = now()
    return wall - start[0], cpu - start[1]


def render_and_dump(plan: Plan) -> tuple[Clock, Clock, int]:
    """(wall, CPU) seconds spent rendering, the same in to_yaml, and bytes of YAML."""
    rendering, dumping = [0.0, 0.0], [0.0, 0.0]
    size = 0
    for phase in plan.ordered():
        start = now()
        objects = render_phase(phase, plan.sweep.name, STORE, SETTINGS)
        middle = now()
        size += len(to_yaml(objects))
        end = now()
        for i in (0, 1):
            rendering[i] += middle[i] - start[i]
            dumping[i] += end[i] - middle[i]
    return (rendering[0], rendering[1]), (dumping[0], dumping[1]), size


def timed(step: Callable[[], Any], repeat: int) -> tuple[list[Clock], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = now()
        result = step()
        times.append(since(start))
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the top functions of plan+render+YAML")
    args = parser.parse_args()

    sweep = sweep_of_size(args.phases)
    plan_times, plan = timed(lambda: expand(sweep), args.repeat)
    phases = len(plan.phases)
    runs = [render_and_dump(plan) for _ in range(args.repeat)]
    render_times, yaml_times = [r[0] for r in runs], [r[1] for r in runs]

    def add(*columns: list[Clock]) -> list[Clock]:
        return [(sum(c[0] for c in row), sum(c[1] for c in row)) for row in zip(*columns, strict=True)]

    both = add(render_times, yaml_times)
    total = add(plan_times, both)

    print(f"{phases} phases ({len(sweep.seeds)} seeds, {plan.requested} before dedupe), "
          f"{runs[0][2] / 1e6:.1f} MB of YAML")  # fmt: skip
    print(f"{datetime.date.today()}, nproc {os.cpu_count()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    print("| step | wall s, first run | wall s, median | CPU s, median | phases/s (wall median) |")
    print("|---|---:|---:|---:|---:|")
    rows = [("expand()", plan_times), ("render_phase (kubernetes models)", render_times),
            ("to_yaml (model -> YAML text)", yaml_times), ("render + YAML", both),
            ("plan + render + YAML", total)]  # fmt: skip
    for label, times in rows:
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        print(f"| {label} | {times[0][0]:.2f} | {wall:.2f} | {cpu:.2f} | {phases / wall:,.0f} |")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        render_and_dump(expand(sweep))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
