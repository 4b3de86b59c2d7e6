"""Shared pieces of the training and evaluation benchmarks: the machine line, an NLI-style data set
with a realistic spread of lengths, the tiny encoder, medians."""

from __future__ import annotations

import os
import platform
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python benchmarks/x.py` from the repository root
    sys.path.insert(0, str(REPO))

NLI_LABELS = ("entailment", "neutral", "contradiction")


def machine() -> dict[str, Any]:
    """nproc, memory, load average, Python/torch versions, GPU (if any)."""
    import torch

    try:
        mem_kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        memory = f"{mem_kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        memory = "unknown"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "nproc": os.cpu_count(),
        "memory": memory,
        "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": gpu,
        "torch_threads": torch.get_num_threads(),
    }


def git_sha() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def nli_examples(
    n: int, seed: int, *, lang: str = "en", max_clauses: int = 12, spread: str = "uniform"
) -> list[dict[str, Any]]:
    """Pair-classification examples whose premises are 1..`max_clauses` fixture clauses long, so a
    randomly batched run pads a lot. `spread="uniform"`: every count equally likely (lengths ~35-256
    tokens, mean ~165); `"long-tail"`: 1 + a geometric count (p 0.45), capped, so most premises are
    short and a few are long, like real NLI data (mean ~2.2 clauses, ~60 tokens). The label is carried
    by the hypothesis (restated / negated / hedged last clause), as in the MNLI fixture."""
    from xstilts.data import lexicon as lx
    from xstilts.data.fixtures import _nli_pair

    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = i % 3
        clause = lx.random_clause(rng)
        premise, hypothesis = _nli_pair(rng, lang, clause, label)
        if spread == "uniform":
            extra_clauses = rng.randint(0, max_clauses - 1)
        elif spread == "long-tail":
            extra_clauses = 0
            while extra_clauses < max_clauses - 1 and rng.random() > 0.45:
                extra_clauses += 1
        else:
            raise ValueError(f"unknown spread {spread!r}")
        extra = [lx.text(lx.realise(lx.random_clause(rng), lang)) for _ in range(extra_clauses)]
        out.append({"text_a": " ".join([*extra, premise]), "text_b": hypothesis, "label": label})
    rng.shuffle(out)
    return out


def build_encoder(out_dir: Path, *, hidden: int = 128, layers: int = 4, heads: int = 4) -> Path:
    """The tiny XLM-R-shaped random-init encoder and its fixture tokenizer (seeded, offline)."""
    from xstilts.data.fixtures import corpus_lines
    from xstilts.modeling.tiny import build_tiny_encoder

    spec = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": hidden * 4,
        "vocab_size": 2000,
        "init_seed": 0,
    }
    return build_tiny_encoder(out_dir, corpus_lines(), spec)


def length_summary(lengths: list[int]) -> str:
    ordered = sorted(lengths)
    q = [ordered[int(p * (len(ordered) - 1))] for p in (0.0, 0.25, 0.5, 0.75, 1.0)]
    mean = sum(lengths) / len(lengths)
    return f"min {q[0]}, p25 {q[1]}, median {q[2]}, p75 {q[3]}, max {q[4]}, mean {mean:.1f}"
