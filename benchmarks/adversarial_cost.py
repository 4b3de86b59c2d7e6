"""What embedding-space adversarial training costs per micro-batch, against plain training, in one run.

    .venv/bin/python benchmarks/adversarial_cost.py [--batch 16] [--length 128] [--repeat 10] [--threads 2]

One random-init XLM-R-shaped encoder (hidden 128, 4 layers, 4 heads, FFN 512; `build_encoder`) with an
MNLI classification head, in training mode (dropout 0.1), fp32, on one fixed batch of random token ids
(`--batch` sequences of `--length` tokens, no padding). For each `training.adversarial` setting with its
paper defaults (`none`, `r3f`, `freelb`, `smart`), the model computes its training loss and backward
(`model(task, batch)` then `loss.backward()`, as the loop does per micro-batch) `--repeat` times after
two warm-up rounds; the settings alternate round by round. The table shows the median wall time of
one micro-batch, its ratio to `none`, how many encoder passes the forward made (counted with a forward
hook), and the state the model holds beyond its parameters (SMART's teacher).
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

from common import build_encoder, git_sha, machine, median

import torch  # isort: skip

KINDS = ("none", "r3f", "freelb", "smart")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from xstilts.modeling.model import MultiTaskModel, load_encoder
    from xstilts.tasks import get_task

    task = get_task("mnli")
    with tempfile.TemporaryDirectory() as tmp:
        encoder_dir = build_encoder(Path(tmp) / "encoder")
        models = {}
        for kind in KINDS:
            torch.manual_seed(0)
            models[kind] = MultiTaskModel(load_encoder(encoder_dir), [task], adversarial=kind).train()
    generator = torch.Generator().manual_seed(1)
    vocab = models["none"].encoder.config.vocab_size
    batch = {
        "input_ids": torch.randint(5, vocab, (args.batch, args.length), generator=generator),
        "attention_mask": torch.ones(args.batch, args.length, dtype=torch.long),
        "labels": torch.randint(0, 3, (args.batch,), generator=generator),
    }

    calls: list[int] = []
    for model in models.values():
        model.encoder.register_forward_hook(lambda *_: calls.append(1))
    passes: dict[str, int] = {}
    seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for round_ in range(args.repeat + 2):
        for kind in KINDS:
            model = models[kind]
            calls.clear()
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            _, loss = model("mnli", batch)
            loss.backward()
            elapsed = time.perf_counter() - start
            passes[kind] = len(calls)
            if round_ >= 2:
                seconds[kind].append(elapsed)

    print(f"# adversarial cost, {datetime.date.today()}, git {git_sha()}")
    print(f"machine: {machine()}")
    print(f"batch {args.batch} x {args.length} tokens, {args.repeat} rounds, {args.threads} threads\n")
    params = sum(p.numel() * p.element_size() for p in models["none"].parameters())
    print("| adversarial | encoder passes | s / micro-batch | vs none | extra state MiB |")
    print("|---|---:|---:|---:|---:|")
    base = median(seconds["none"])
    for kind in KINDS:
        model = models[kind]
        extra = sum(b.numel() * b.element_size() for n, b in model.named_buffers() if n.startswith("smart_"))
        print(
            f"| {kind} | {passes[kind]} | {median(seconds[kind]):.3f} | {median(seconds[kind]) / base:.2f} "
            f"| {extra / 2**20:.1f} (parameters: {params / 2**20:.1f}) |"
        )


if __name__ == "__main__":
    main()
