"""What the X-STILTs paper grid costs: phases executed (deduplicated DAG) vs the naive expansion, and
an estimate of GPU-hours on one H100 for both.

    .venv/bin/python benchmarks/sweep_cost.py [SWEEP_FILE] [--seeds 1] [--tokens-per-s N]

SWEEP_FILE defaults to `jobs/xstilts-paper.yaml`; when that does not exist the paper grid is built in
code (`paper_sweep`): XLM-R Large; intermediate settings ANLI (rounds 1-3 as one proportional mixture),
CCG, CommonsenseQA, Cosmos QA, HellaSwag, MNLI, QQP, SQuAD, SST-2, a multi-task mixture of all of them,
and the baseline (no intermediate phase); targets: the XTREME tasks in the registry (XNLI, PAWS-X,
PAN-X, UD-POS, XQuAD, MLQA, TyDiQA-GoldP, BUCC, Tatoeba). Hyperparameters are the resolved defaults
of DESIGN.md section 4 (plus the sweep's overrides when a file is given).

Cost model (per phase, from its resolved config). A training phase runs
`ceil(examples x epochs / micro-batch)` micro-batches (the micro-batch is `per_device_batch_size`, else
min(batch, 32); accumulation and data parallelism do not change the count) of
`micro-batch x mean tokens per example` real tokens each (`DATASETS`, below). One micro-batch takes
`max(tokens / R, floor)` GPU-seconds: R is the compute-bound training rate, and `floor` the time a
forward+backward of XLM-R Large takes however few tokens it holds (kernel launches, Python); each
optimizer step adds `opt` seconds (AdamW over 560M parameters). Dev evaluations (`max_dev_examples`
every `checkpoint_every` steps) and evaluation phases (every language's evaluation set) are forward
passes at 3R tokens/s. `max_train_examples` / `max_steps` caps are honoured. Encoder phases (a
download) cost nothing here. GPU-hours are single-GPU compute; a phase whose preset asks for G GPUs
takes about 1/G of that in wall time (ZeRO-2 splits the optimizer work too).

R, floor and opt come from docs/benchmarks.md ("## GPU path": the lines
`xlmr_large_h100_train_tokens_per_s: N`, `xlmr_large_h100_step_floor_ms: N`,
`xlmr_large_h100_optimizer_step_ms: N`, written from `benchmarks/gpu_train.py` in a GPU session) when
recorded; else from `--tokens-per-s` / `--floor-ms` / `--optimizer-ms`; else from the labelled
ASSUMPTIONS below.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from xstilts.plan.expand import Plan, expand  # noqa: E402
from xstilts.spec.load import load_sweep, parse_sweep  # noqa: E402
from xstilts.spec.models import Sweep  # noqa: E402
from xstilts.spec.training import TrainingConfig  # noqa: E402
from xstilts.train.loop import default_micro_batch  # noqa: E402

PAPER_SWEEP = REPO / "jobs" / "xstilts-paper.yaml"
DOCS = REPO / "docs" / "benchmarks.md"
DOCS_FIGURES = {
    "tokens_per_s": "xlmr_large_h100_train_tokens_per_s",
    "floor_ms": "xlmr_large_h100_step_floor_ms",
    "optimizer_ms": "xlmr_large_h100_optimizer_step_ms",
}

# ASSUMPTIONS (used until a GPU session records measured figures), for one H100 SXM, bf16:
# - R: XLM-R Large has ~303M non-embedding parameters, so training costs ~6 x 303M = 1.82 GFLOP per token
#   (+2% attention at ~128 tokens). At 25% MFU of 989 dense bf16 TFLOP/s (typical of unfused eager HF
#   encoders) that is ~135,000 real tokens/s; length-grouped, dynamically padded batches pay little
#   padding on top.
# - floor: ~1,500 kernels per forward+backward of 24 layers plus HF's Python per module: ~25 ms.
# - opt: fused AdamW reads and writes ~16 bytes x 4 tensors per parameter (560M, fp32 master weights,
#   two moments, gradients): ~16 GB of HBM traffic at ~3 TB/s: ~6 ms, ~10 ms with clipping and zeroing.
ASSUMED = {"tokens_per_s": 135_000.0, "floor_ms": 25.0, "optimizer_ms": 10.0}


@dataclass(frozen=True)
class Data:
    """One task's data: training examples (features for QA: doc-stride windows), mean real tokens per
    training example (all choices of a multiple-choice example; XLM-R SentencePiece, specials included),
    evaluation examples per language and their mean tokens, and where the sizes come from."""

    train: int
    tokens: float
    eval_per_lang: float = 0.0
    eval_tokens: float = 0.0
    dev: int = 0
    source: str = ""


# Sizes: xtreme-facts.md section 5 (HellaSwag, ANLI, CommonsenseQA, Cosmos QA), the XTREME paper's
# Table 1 (XTREME targets: train / mean test examples per language), GLUE and SQuAD papers (MNLI, QQP,
# SST-2, SQuAD), CCGbank sections 02-21. Tokens per example: ESTIMATES from mean word counts (~1.3 XLM-R
# pieces per English word), not measured on the real data (no network here).
DATASETS: dict[str, Data] = {
    "mnli": Data(392_702, 45, dev=9_815, source="GLUE; 392,702 train"),
    "qqp": Data(363_846, 32, dev=40_430, source="GLUE; 363,846 train"),
    "sst2": Data(67_349, 14, dev=872, source="GLUE; 67,349 train (phrases)"),
    "squad": Data(88_600, 180, dev=10_570, source="SQuAD v1.1 87,599 questions -> ~88.6k windows at 384/128"),
    "hellaswag": Data(39_905, 4 * 80, dev=10_042, source="xtreme-facts: 39,905 / 10,042; 4 endings"),
    "anli-r1": Data(16_946, 100, dev=1_000, source="xtreme-facts: 16,946"),
    "anli-r2": Data(45_460, 100, dev=1_000, source="xtreme-facts: 45,460"),
    "anli-r3": Data(100_459, 90, dev=1_200, source="xtreme-facts: 100,459"),
    "commonsenseqa": Data(9_741, 5 * 22, dev=1_221, source="xtreme-facts: 9,741 / 1,221; 5 choices"),
    "cosmosqa": Data(25_262, 4 * 120, dev=2_985, source="xtreme-facts: 25,262 / 2,985; 4 answers"),
    "ccg": Data(39_604, 32, dev=1_913, source="CCGbank sections 02-21 / 00"),
    # XTREME targets: English training data, evaluation examples per language (mean over languages).
    "xnli": Data(392_702, 45, 5_010, 48, 2_490, "MNLI train; test 5,010 x 15 languages"),
    "pawsx": Data(49_401, 60, 2_000, 62, 2_000, "49,401 train; test 2,000 x 7"),
    "panx": Data(20_000, 14, 4_000, 16, 10_000, "20,000 train; test 1,000-10,000 x 40 (~4,000 mean)"),
    "udpos": Data(21_253, 28, 2_300, 30, 3_974, "21,253 train; test 47-20,436 x 33 (~2,300 mean)"),
    "xquad": Data(88_600, 180, 1_190, 200, 10_570, "SQuAD train windows; test 1,190 x 11"),
    "mlqa": Data(88_600, 180, 6_000, 210, 10_570, "SQuAD train windows; test 4,517-11,590 x 7"),
    "tydiqa": Data(3_700, 200, 1_000, 200, 1_000, "3,696 English GoldP train; test 323-2,719 x 9"),
    "bucc": Data(0, 0, 2 * 8_000, 40, 0, "no training; gold pairs 1,896-14,330 x 5, both sides"),
    "tatoeba": Data(0, 0, 2 * 1_000, 16, 0, "no training; 1,000 pairs x 36, both sides"),
}

PAPER_INTERMEDIATE = ["anli", "ccg", "commonsenseqa", "cosmosqa", "hellaswag", "mnli", "qqp", "squad", "sst2"]
PAPER_TARGETS = ["xnli", "pawsx", "panx", "udpos", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba"]


def paper_sweep(seeds: int = 1) -> Sweep:
    """The paper grid from the registry's tasks (ANLI: rounds 1-3 as one proportional mixture)."""
    from xstilts.tasks import REGISTRY

    settings: list[dict[str, Any]] = []
    names: list[str] = []
    for name in PAPER_INTERMEDIATE:
        if name == "anli":
            rounds = [r for r in ("anli-r1", "anli-r2", "anli-r3") if r in REGISTRY]
            if rounds:
                settings.append({"name": "anli", "tasks": rounds} if len(rounds) > 1 else {"task": rounds[0]})
                names += rounds
        elif name in REGISTRY:
            settings.append({"task": name})
            names.append(name)
    settings.append({"name": "multitask", "tasks": names, "sampling": "proportional"})
    return parse_sweep(
        {
            "name": "xstilts-paper",
            "encoders": [{"name": "xlmr-large", "model": "xlm-roberta-large", "retrieval_layer": 14}],
            "baseline": True,
            "intermediate": settings,
            "targets": [t for t in PAPER_TARGETS if t in REGISTRY],
            "seeds": list(range(1, seeds + 1)),
            "data": {"source": "hub", "ccg_path": "/data/ccgbank"},
        },
        "xstilts-paper (built in code)",
    )


def recorded_figures(docs: Path = DOCS) -> dict[str, float]:
    """The GPU benchmark's figures recorded in docs/benchmarks.md (absent ones left out)."""
    text = docs.read_text(encoding="utf-8") if docs.is_file() else ""
    found = {}
    for name, label in DOCS_FIGURES.items():
        match = re.search(re.escape(label) + r"\s*[:=]\s*([0-9][0-9,_]*(?:\.[0-9]+)?)", text)
        if match:
            found[name] = float(match.group(1).replace(",", "").replace("_", ""))
    return found


@dataclass(frozen=True)
class Rates:
    tokens_per_s: float
    floor_ms: float
    optimizer_ms: float

    def micro_batch_s(self, tokens: float) -> float:
        return max(tokens / self.tokens_per_s, self.floor_ms / 1000)


def training_seconds(config: dict[str, Any], tasks: list[str], rates: Rates) -> float:
    """GPU-seconds of one training phase: its micro-batches, optimizer steps and dev evaluations."""
    training = config["training"]
    batch = training["batch_size"]
    micro = training.get("per_device_batch_size") or default_micro_batch(TrainingConfig(**training), world=1)
    limit = training.get("max_train_examples")
    sizes = {n: min(DATASETS[n].train, limit) if limit else DATASETS[n].train for n in tasks}
    epochs = training["epochs"]
    micro_batches = {n: math.ceil(size / micro) * epochs for n, size in sizes.items()}
    steps = math.ceil(sum(micro_batches.values()) * micro / batch)
    if training.get("max_steps") and training["max_steps"] < steps:
        scale = training["max_steps"] / steps
        micro_batches = {n: count * scale for n, count in micro_batches.items()}
        steps = training["max_steps"]
    seconds = sum(
        count * rates.micro_batch_s(micro * DATASETS[n].tokens) for n, count in micro_batches.items()
    )
    seconds += steps * rates.optimizer_ms / 1000
    if training.get("select_best", True):
        evaluations = math.ceil(steps / training["checkpoint_every"])
        dev_cap = training.get("max_dev_examples")
        for n in tasks:
            examples = min(DATASETS[n].dev, dev_cap) if dev_cap else DATASETS[n].dev
            seconds += evaluations * forward_seconds(examples, DATASETS[n].tokens, rates)
    return seconds


def forward_seconds(examples: float, tokens: float, rates: Rates, batch: int = 64) -> float:
    """Inference in batches of 64 (`predict`): a third of the training cost per token, same floor / 3."""
    batches = math.ceil(examples / batch)
    per_batch = max(batch * tokens / (3 * rates.tokens_per_s), rates.floor_ms / 3000)
    return batches * per_batch


def phase_seconds(phase: Any, rates: Rates) -> float:
    config = phase.config.dump()  # the planned config as the store keeps it
    if phase.kind == "encoder":
        return 0.0
    if phase.kind in ("intermediate", "target"):
        return training_seconds(
            config, config["tasks"] if phase.kind == "intermediate" else [config["task"]], rates
        )
    if phase.kind == "evaluate":
        data = DATASETS[config["task"]]
        limit = config.get("max_eval_examples")
        per_lang = min(data.eval_per_lang, limit) if limit else data.eval_per_lang
        return len(config["languages"]) * forward_seconds(per_lang, data.eval_tokens, rates)
    raise ValueError(f"no cost model for {phase.kind} phases (not part of the paper grid)")


def costs(plan: Plan, rates: Rates) -> dict[str, Any]:
    per_phase = {a: phase_seconds(p, rates) for a, p in plan.phases.items()}

    def chain(address: str) -> float:
        phase = plan.phases[address]
        return per_phase[address] + sum(chain(a) for a in phase.inputs.values())

    by_kind: dict[str, list[float]] = {}
    wall = 0.0
    for address, phase in plan.phases.items():
        by_kind.setdefault(phase.kind, []).append(per_phase[address])
        wall += per_phase[address] / max(1, phase.resources.gpu or 1)
    return {
        "executed_s": sum(per_phase.values()),
        "naive_s": sum(chain(run.evaluate) for run in plan.runs),
        "by_kind": {k: (len(v), sum(v)) for k, v in by_kind.items()},
        "serial_wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", nargs="?", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the built-in paper grid")
    parser.add_argument(
        "--builtin", action="store_true", help="the paper grid built in code, even if the file exists"
    )
    parser.add_argument("--what-if-micro", type=int, default=None, help="also cost this micro-batch size")
    parser.add_argument("--tokens-per-s", type=float, default=None, help="XLM-R Large training tokens/s")
    parser.add_argument("--floor-ms", type=float, default=None, help="least time of one forward+backward")
    parser.add_argument("--optimizer-ms", type=float, default=None, help="time of one optimizer step")
    args = parser.parse_args()

    if args.sweep is not None:
        sweep, origin = load_sweep(args.sweep), str(args.sweep)
    elif PAPER_SWEEP.is_file() and not args.builtin:
        sweep, origin = load_sweep(PAPER_SWEEP), str(PAPER_SWEEP.relative_to(REPO))
    else:
        sweep, origin = paper_sweep(args.seeds), "the paper grid built in code (`paper_sweep`)"
    plan = expand(sweep)

    recorded = recorded_figures()
    given = {"tokens_per_s": args.tokens_per_s, "floor_ms": args.floor_ms, "optimizer_ms": args.optimizer_ms}
    values, origins = {}, {}
    for name, default in ASSUMED.items():
        if given[name] is not None:
            values[name], origins[name] = given[name], "command line"
        elif name in recorded:
            values[name], origins[name] = recorded[name], "measured (docs/benchmarks.md, GPU path)"
        else:
            values[name], origins[name] = default, "ASSUMPTION"
    rates = Rates(**values)

    print(f"sweep: {origin}")
    print(f"  encoders {[e.name for e in sweep.encoders]}, intermediate settings "
          f"{[str(s.name) for s in sweep.intermediate]}, baseline {sweep.baseline}, targets {sweep.targets}, "
          f"seeds {sweep.seeds}")  # fmt: skip
    print(f"result cells: {len(plan.runs)}")
    print(f"phases: naive expansion {plan.requested}, executed {len(plan.phases)} "
          f"(deduplicated {plan.deduplicated}, {plan.requested / len(plan.phases):.2f}x fewer)")  # fmt: skip
    print(f"XLM-R Large on one H100: R = {rates.tokens_per_s:,.0f} training tokens/s "
          f"[{origins['tokens_per_s']}], floor {rates.floor_ms:g} ms per micro-batch "
          f"[{origins['floor_ms']}], "
          f"optimizer step {rates.optimizer_ms:g} ms [{origins['optimizer_ms']}]")  # fmt: skip
    result = costs(plan, rates)
    print()
    print("| phase kind | executed phases | GPU-hours |")
    print("|---|---:|---:|")
    for kind, (count, seconds) in result["by_kind"].items():
        print(f"| {kind} | {count} | {seconds / 3600:.1f} |")
    print(f"| **total executed** | {len(plan.phases)} | {result['executed_s'] / 3600:.1f} |")
    print(f"| naive (every cell runs its own chain) | {plan.requested} | {result['naive_s'] / 3600:.1f} |")
    saved = 1 - result["executed_s"] / result["naive_s"] if result["naive_s"] else 0.0
    print(f"\nGPU-hours: executed {result['executed_s'] / 3600:.1f} vs naive {result['naive_s'] / 3600:.1f} "
          f"({saved:.0%} saved by deduplication)")  # fmt: skip
    wall = result["serial_wall_s"] / 3600
    print(f"wall time if the phases ran one after another, each on its preset's GPUs: {wall:.1f} h")
    if args.what_if_micro:
        for phase in plan.phases.values():
            training = getattr(phase.config, "training", None)
            if training is not None:
                training["per_device_batch_size"] = args.what_if_micro
        what_if = costs(plan, rates)["executed_s"] / 3600
        micro = args.what_if_micro
        print(f"what if per_device_batch_size were {micro} everywhere: {what_if:.1f} GPU-hours executed")


if __name__ == "__main__":
    main()
