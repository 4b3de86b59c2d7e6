"""What successive halving on the intermediate axis saves against the full grid, on a tiny grid where
some intermediate tasks truly help (the fixtures of the known-answer test: MNLI-like NLI teaches PAWS-X
and XNLI what they need), and whether it picks the same best intermediate task per target.

    .venv/bin/python benchmarks/search_cost.py [--out DIR] [--settings mnli qqp ...] [--targets pawsx xnli]
        [--seeds 1 2 3] [--budget-fraction 0.25] [--eta 4] [--target-fraction 0.2] [--parallel 2]

Both arms run for real through `xstilts sweep submit` on the local backend, each in a fresh store: the
full grid (every setting x target x seed) and the same sweep with `search: {strategy:
successive_halving, ...}`; neither has the baseline (it would cost both the same). For each arm: phases
executed, optimizer steps trained (a hardware-independent cost: every phase's steps minus those it
resumed past), accelerator-hours (each phase's wall time from its lineage x its GPUs, at least one: on
this CPU machine, the hours a GPU phase of the same work is estimated at), and the CPU seconds that
the controller and its phase processes used (getrusage of the children: the controller, its fork
server and the phases it forked, all reaped). The picks: per target, the setting with the best mean
English dev score of its target phases (what a user picks without looking at the evaluation split)
and the one with the best mean zero-shot evaluation score.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Any

import yaml
from common import git_sha, machine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from xstilts.plan import expand  # noqa: E402
from xstilts.plan.expand import BASELINE  # noqa: E402
from xstilts.spec import load_sweep  # noqa: E402
from xstilts.store import LocalStore  # noqa: E402
from xstilts.store.complete import complete_prefixes  # noqa: E402


def sweep(args: argparse.Namespace, search: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "search-cost-halving" if search else "search-cost-grid",
        "data": {"source": "fixtures"},
        "encoders": [{"name": "tiny", "model": "tiny"}],
        "baseline": False,  # both arms would train it alike: the comparison is the intermediate axis
        "intermediate": [{"task": t} for t in args.settings],
        "targets": args.targets,
        "languages": {t: ["en", "de", "es"] for t in args.targets},
        "seeds": args.seeds,
        "training": {
            "learning_rate": 1e-3,
            "max_length": 96,
            "checkpoint_every": 1000,
            "max_eval_examples": 60,
        },
        "intermediate_training": {"epochs": args.intermediate_epochs},
        "target_training": {"epochs": args.target_epochs},
    }
    if search:
        spec["search"] = {
            "strategy": "successive_halving",
            "budget_fraction": args.budget_fraction,
            "eta": args.eta,
            "target_fraction": args.target_fraction,
        }
    return spec


def run_arm(path: Path, store: Path, parallel: int) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    command = [sys.executable, "-m", "xstilts", "sweep", "submit", str(path), "--store", str(store),
               "--no-report", "--parallel", str(parallel)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": time.monotonic() - started, "cpu_s": cpu}


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def measure(path: Path, store: Path) -> dict[str, Any]:
    plan = expand(load_sweep(path))
    prefixes = complete_prefixes(LocalStore(store), [p.prefix for p in plan.ordered()])
    executed = [p for p in plan.ordered() if p.prefix in prefixes]
    steps, hours = 0, 0.0
    for phase in executed:
        metrics = _json(store / phase.prefix / "metrics.json")
        if "steps" in metrics:
            steps += int(metrics["steps"]) - int(metrics.get("resumed_from") or 0)
        lineage = _json(store / phase.prefix / "lineage.json")
        start = datetime.datetime.fromisoformat(lineage["started_at"].replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(lineage["finished_at"].replace("Z", "+00:00"))
        hours += (end - start).total_seconds() * max(1, phase.resources.gpu) / 3600
    dev: dict[tuple[str, str], list[float]] = {}
    test: dict[tuple[str, str], list[float]] = {}
    for run in plan.runs:
        evaluate = plan.phases[run.evaluate]
        if evaluate.prefix not in prefixes or run.setting == BASELINE:
            continue
        target = plan.phases[evaluate.inputs["model"]]
        score = _json(store / target.prefix / "metrics.json").get("dev") or {}
        dev.setdefault((run.target, run.setting), []).append(float(score.get("score", float("nan"))))
        zero_shot = _json(store / evaluate.prefix / "metrics.json")["average_zero_shot"]
        test.setdefault((run.target, run.setting), []).append(float(zero_shot))
    picks = {}
    for target in plan.sweep.targets:
        on_dev = {s: mean(v) for (t, s), v in dev.items() if t == target}
        on_test = {s: mean(v) for (t, s), v in test.items() if t == target}
        picks[target] = {
            "dev": min(on_dev, key=lambda s: (-on_dev[s], s)),  # ties: the first name, as the search ranks
            "test": min(on_test, key=lambda s: (-on_test[s], s)),
            "test_scores": {s: round(v, 2) for s, v in sorted(on_test.items())},
        }
    return {
        "phases": len(executed),
        "planned": len(plan.phases),
        "steps": steps,
        "hours": hours,
        "picks": picks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/xstilts-search-cost"))
    parser.add_argument("--settings", nargs="+", default=["mnli", "qqp", "sst2", "anli-r1"])
    parser.add_argument("--targets", nargs="+", default=["pawsx", "xnli"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--budget-fraction", type=float, default=0.25)
    parser.add_argument("--eta", type=int, default=4)
    parser.add_argument("--target-fraction", type=float, default=0.2)
    parser.add_argument("--intermediate-epochs", type=float, default=3)
    parser.add_argument("--target-epochs", type=float, default=8)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    results = {}
    for arm, search in (("grid", False), ("halving", True)):
        path = args.out / f"{arm}.yaml"
        path.write_text(yaml.safe_dump(sweep(args, search), sort_keys=False))
        store = args.out / f"store-{arm}"
        if store.exists():
            raise SystemExit(f"{store} exists: give another --out (the arms must start from empty stores)")
        timing = run_arm(path, store, args.parallel)
        results[arm] = {**measure(path, store), **timing}
        if search:
            from xstilts.report.search import search_summary

            summary = search_summary(expand(load_sweep(path)), LocalStore(store))
            results[arm]["stopped"] = {s["setting"]: s["stopped_at_rung"] for s in summary["settings"]}
            results[arm]["rungs"] = summary["rungs"]

    grid, halving = results["grid"], results["halving"]
    print(f"# search cost: {datetime.date.today()} · {machine()} · {git_sha()}")
    print(f"settings {' '.join(args.settings)}; targets {' '.join(args.targets)}; seeds {args.seeds}; "
          f"rungs {halving['rungs']} (eta {args.eta})")  # fmt: skip
    print("| | phases executed | optimizer steps | accelerator-hours | CPU seconds | wall seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for arm in ("grid", "halving"):
        r = results[arm]
        cells = [r["phases"], r["steps"], f"{r['hours']:.4f}", f"{r['cpu_s']:.0f}", f"{r['wall_s']:.0f}"]
        print(f"| {arm} | " + " | ".join(map(str, cells)) + " |")
    ratios = [f"{halving[k] / grid[k]:.0%}" for k in ("phases", "steps", "hours", "cpu_s", "wall_s")]
    print("| halving / grid | " + " | ".join(ratios) + " |")
    print("stopped at rung:", halving["stopped"])
    for target in args.targets:
        g, h = grid["picks"][target], halving["picks"][target]
        print(
            f"{target}: grid best on dev {g['dev']}, on test {g['test']}; halving best on dev {h['dev']}, "
            f"on test {h['test']}; same pick (dev): {g['dev'] == h['dev']}, (test): {g['test'] == h['test']}"
        )
        print(f"  grid zero-shot scores: {g['test_scores']}")
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
