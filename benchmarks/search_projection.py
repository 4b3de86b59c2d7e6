"""What successive halving would cost at paper scale (XLM-R Large, the real datasets' sizes), against the
full grid, from the planned DAG and the GPU-hour model of `sweep_cost.py`. Planning only: nothing trains.

    .venv/bin/python benchmarks/search_projection.py [--targets pawsx xnli ...] [--seeds 3] [--eta 3]
        [--budget-fraction 0.1111] [--target-fraction 0.1]

`search_cost.py` runs both arms for real on the tiny model: it measures whether halving picks the same
intermediate task, but a tiny phase costs mostly process start and data loading, so its hours say
little about a real grid. This prices the same DAG shape at paper scale. Per target: the paper's nine
intermediate settings and their multi-task mixture (no baseline: it costs both arms the same), one
target, the given seeds; the grid is that sweep, the search the same sweep with `search:`. Each
executed phase costs what `sweep_cost.phase_seconds` says, a rung of an intermediate run its share of
the full run (rung r continues rung r-1's checkpoint, so it trains `f_r - f_(r-1)` of it; the full
phase the rest). Which settings survive a rung is decided by dev scores the model cannot know, so the
search is priced twice: when the cheapest settings survive every rung and when the costliest do. Its
real cost lies between the two.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import math
import sys
from pathlib import Path
from statistics import mean

from common import git_sha, machine
from sweep_cost import ASSUMED, Rates, paper_sweep, phase_seconds, recorded_figures

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from xstilts.plan import expand  # noqa: E402
from xstilts.plan.expand import Plan  # noqa: E402
from xstilts.plan.search import Arm, SearchPlan  # noqa: E402
from xstilts.spec.models import SearchSpec, Sweep  # noqa: E402


def target_sweep(paper: Sweep, target: str, seeds: int, search: SearchSpec | None) -> Sweep:
    """The paper's intermediate settings and one target, without the baseline."""
    return paper.model_copy(
        update={"baseline": False, "targets": [target], "seeds": list(range(1, seeds + 1)), "search": search}
    )


def phase_cost(plan: Plan, address: str, rates: Rates, share: dict[str, float]) -> float:
    return phase_seconds(plan.phases[address], rates) * share.get(address, 1.0)


def rung_shares(layout: SearchPlan) -> dict[str, float]:
    """Each intermediate phase's share of its full run: rung r trains f_r - f_(r-1), the full phase the
    rest (it continues the last rung's checkpoint)."""
    share: dict[str, float] = {}
    bounds = [0.0, *layout.fractions]
    for arm in layout.arms:
        for rung, addresses in enumerate(arm.intermediates):
            for address in addresses:
                share[address] = bounds[rung + 1] - bounds[rung]
    return share


def search_costs(plan: Plan, rates: Rates) -> tuple[list[float], int, list[list[str]]]:
    """GPU-seconds of the search for every way the rungs can go (at each rung the best ceil(n / eta) of
    the n settings still running are kept: every such choice, nested), the phases it plans, and what
    is kept when the costliest settings win every rung."""
    layout: SearchPlan = plan.search
    share = rung_shares(layout)
    cost = {a: phase_cost(plan, a, rates, share) for a in plan.phases}
    total = sum(cost.values())
    after = {
        (arm.setting, rung): arm.phases_after(rung)
        for arm in layout.arms
        for rung in range(-1, len(layout.fractions) - 1)
    }

    def outcomes(alive: list[Arm], rung: int, held: frozenset[str]) -> list[float]:
        if rung == len(layout.fractions) - 1:
            return [total - sum(cost[a] for a in held)]
        keep = max(1, math.ceil(len(alive) / layout.eta))
        found = []
        for kept in itertools.combinations(alive, keep):
            stopped = [arm for arm in alive if arm not in kept]
            more = held.union(*(after[(arm.setting, rung)] for arm in stopped))
            found += outcomes(list(kept), rung + 1, frozenset(more))
        return found

    def arm_total(arm: Arm) -> float:
        return sum(cost[a] for a in after[(arm.setting, -1)])

    costliest = sorted(layout.arms, key=arm_total, reverse=True)
    kept_per_rung, alive = [], costliest
    for _ in layout.fractions[:-1]:
        alive = alive[: max(1, math.ceil(len(alive) / layout.eta))]
        kept_per_rung.append([arm.setting for arm in alive])
    return outcomes(list(layout.arms), 0, frozenset()), len(plan.phases), kept_per_rung


def grid_cost(plan: Plan, rates: Rates) -> float:
    return sum(phase_seconds(p, rates) for p in plan.phases.values())


def rates_from_docs() -> tuple[Rates, str]:
    recorded = recorded_figures()
    values = {name: recorded.get(name, default) for name, default in ASSUMED.items()}
    origin = "measured (docs/benchmarks.md)" if recorded else "sweep_cost.py ASSUMPTIONS"
    return Rates(**values), origin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="+", default=["xnli", "pawsx", "panx", "udpos", "xquad", "tydiqa"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--budget-fraction", type=float, default=1 / 9)
    parser.add_argument("--target-fraction", type=float, default=0.1)
    args = parser.parse_args()
    rates, origin = rates_from_docs()
    search = SearchSpec(
        budget_fraction=args.budget_fraction, eta=args.eta, target_fraction=args.target_fraction
    )
    paper = paper_sweep()
    print(f"# search projection: {datetime.date.today()} · {machine()} · {git_sha()}")
    print(f"XLM-R Large rates: {origin}; seeds {args.seeds}; rungs {search.fractions()} (eta {args.eta}); "
          f"rung target share {args.target_fraction}")  # fmt: skip
    print("| target | grid phases | grid GPU-h | search phases planned | search GPU-h: least / mean / most "
          "| search / grid: least / mean / most | kept when the costliest win |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|")
    for target in args.targets:
        grid = expand(target_sweep(paper, target, args.seeds, None))
        halving = expand(target_sweep(paper, target, args.seeds, search))
        g = grid_cost(grid, rates)
        outcomes, planned, kept = search_costs(halving, rates)
        low, middle, high = min(outcomes), mean(outcomes), max(outcomes)
        print(f"| {target} | {len(grid.phases)} | {g / 3600:.1f} | {planned} | {low / 3600:.1f} / "
              f"{middle / 3600:.1f} / {high / 3600:.1f} | "
              f"{low / g:.0%} / {middle / g:.0%} / {high / g:.0%} | "
              f"{' then '.join(', '.join(k) for k in kept)} |")  # fmt: skip


if __name__ == "__main__":
    main()
