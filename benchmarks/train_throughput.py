"""Training throughput: xstilts' loop against the Hugging Face `Trainer`, same model, data and settings,
in one run.

    .venv/bin/python benchmarks/train_throughput.py [--examples 960] [--epochs 3] [--repeat 3]
        [--threads 2] [--spread uniform|long-tail] [--only xstilts|trainer] [--vary-seed]
        [--batching split|grouped|random] [--micro N] [--profile] [--cache-check N]

Both sides train the same tiny random-init XLM-R-shaped encoder (hidden 128, 4 layers, 4 heads, FFN
512; `build_tiny_encoder` on the fixture corpus) plus a RoBERTa classification head (dense + tanh +
projection on <s>), starting from the same weights (xstilts' head is given the HF head's initial
weights: the two libraries initialise heads differently), on the same NLI-style examples: premises of
1-12 fixture clauses, so lengths spread from ~35 to 256 tokens (truncated at `--max-length`);
`--spread uniform` (default: every clause count equally likely, mean ~170 tokens) or `long-tail` (most
premises 1-3 clauses, as in real NLI data, mean ~75 tokens).
Same effective batch (32), learning rate (1e-3: the model starts from random weights), linear schedule
with 10% warm-up, weight decay 0.01, clip 1.0, AdamW eps 1e-8, epochs, seed, fp32, sdpa attention,
dropout 0.1, thread count.

- xstilts: `xstilts.train.loop.train` with its default `training.batching: split`: random batches of
  32, each cut by length into 4 micro-batches (`--micro`: their nominal size, default 8) whose
  weighted gradients add up to the batch's, so the optimisation is that of random batches with little
  padding. `--batching grouped` (length-grouped batches) and `random` (random batches, padded to their
  longest) run the same loop with the other batchings. A checkpoint every epoch (as a phase writes
  them; the last window's mean is its `final_loss`); no dev evaluation.
- Trainer: `XLMRobertaForSequenceClassification` from the same encoder directory, `Trainer` with
  `DataCollatorWithPadding` (pads each batch to its longest example) and the default sampler
  (`train_sampling_strategy="random"`: no length grouping), `save_strategy="no"`,
  `logging_steps` = one epoch, `report_to="none"`, `use_cpu=True`, default optimizer
  (`adamw_torch_fused`, as xstilts' loop uses), `dataloader_num_workers=0`, no evaluation.

Tokens/s counts real (non-padding) tokens: every example once per epoch, identical for both sides,
over the wall time of the `train(...)` / `trainer.train()` call (and per CPU-second of this process,
less sensitive to other jobs on the machine). The sides alternate, `--repeat` rounds; the table shows
medians, and the ratio is given as the ratio of the medians and as the median of per-round ratios.
"Equal loss" is checked twice: the mean training loss of the last epoch (xstilts' `final_loss`, the
Trainer's last logged `loss`) and the loss and accuracy of both trained models on the same 600
held-out examples, scored by the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import io
import math
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from common import build_encoder, git_sha, length_summary, machine, median, nli_examples

import torch  # isort: skip


def steps_per_epoch(examples: int, batch_size: int) -> int:
    return math.ceil(examples / batch_size)


def mean_sd(values: list[float]) -> str:
    import statistics

    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


def last_logged_loss(history: list[dict[str, Any]]) -> float:
    """The Trainer's last logged training loss: the mean over the last logging window (one epoch)."""
    return [h["loss"] for h in history if "loss" in h][-1]


def features_of(tokenizer, examples: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    from xstilts.data.features import classification

    return classification(tokenizer, examples, max_length)


def initial_classifier(encoder_dir: Path, seed: int) -> torch.nn.Module:
    """The Trainer side's classification head as initialised (same seed, same construction)."""
    from transformers import XLMRobertaForSequenceClassification, set_seed

    set_seed(seed)
    model = XLMRobertaForSequenceClassification.from_pretrained(
        encoder_dir, num_labels=3, attn_implementation="sdpa"
    )
    return model.classifier


@torch.no_grad()
def copy_head(classifier: torch.nn.Module, head: torch.nn.Module) -> None:
    """Start both sides from the same weights: xstilts' head (PyTorch's default Linear init) takes the
    HF head's (normal, std 0.02, zero bias); the layers are the same (dense + tanh + projection)."""
    head.dense.weight.copy_(classifier.dense.weight)
    head.dense.bias.copy_(classifier.dense.bias)
    head.out.weight.copy_(classifier.out_proj.weight)
    head.out.bias.copy_(classifier.out_proj.bias)


def run_xstilts(encoder_dir: Path, features: list[dict], args: argparse.Namespace, work: Path) -> dict:
    from accelerate.utils import set_seed

    from xstilts.modeling.model import MultiTaskModel, load_encoder
    from xstilts.spec.training import TrainingConfig
    from xstilts.store import LocalStore
    from xstilts.tasks import get_task
    from xstilts.train.checkpoint import Checkpointer
    from xstilts.train.loop import train
    from xstilts.train.progress import ProgressLog

    task = get_task("mnli")
    config = TrainingConfig(
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        warmup_ratio=0.1,
        weight_decay=0.01,
        checkpoint_every=steps_per_epoch(len(features), args.batch_size),
        select_best=False,
        mixed_precision="no",
        batching=args.batching,
        per_device_batch_size=args.micro,
    )
    set_seed(args.seed)
    model = MultiTaskModel(load_encoder(encoder_dir), [task])
    copy_head(initial_classifier(encoder_dir, args.seed), model.heads[task.name])
    store = LocalStore(work / "store")
    progress = ProgressLog("bench", stream=io.StringIO(), interval=3600)
    started, cpu = time.perf_counter(), time.process_time()
    model, result = train(
        model,
        {task.name: features},
        config,
        args.seed,
        pad_token_id=1,
        checkpointer=Checkpointer(store, f"bench/{time.monotonic_ns()}", work / "staging"),
        progress=progress,
    )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "model": model,
        "cpu_seconds": cpu,
        "seconds": seconds,
        "tokens": result.train_tokens,
        "steps": result.steps,
        "train_loss": result.final_loss,
    }


def run_trainer(
    encoder_dir: Path, features: list[dict], tokenizer, args: argparse.Namespace, work: Path
) -> dict:
    import datasets
    from transformers import (
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        XLMRobertaForSequenceClassification,
        set_seed,
    )

    set_seed(args.seed)
    model = XLMRobertaForSequenceClassification.from_pretrained(
        encoder_dir, num_labels=3, attn_implementation="sdpa"
    )
    dataset = datasets.Dataset.from_dict(
        {"input_ids": [f["input_ids"] for f in features], "labels": [f["labels"] for f in features]}
    )
    training_args = TrainingArguments(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        weight_decay=0.01,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        warmup_steps=0.1,
        seed=args.seed,
        use_cpu=True,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="steps",
        logging_steps=steps_per_epoch(len(features), args.batch_size),
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    started, cpu = time.perf_counter(), time.process_time()
    output = trainer.train()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    tokens = sum(len(f["input_ids"]) for f in features) * args.epochs
    return {
        "model": trainer.model,
        "cpu_seconds": cpu,
        "seconds": seconds,
        "tokens": tokens,
        "steps": output.global_step,
        "train_loss": last_logged_loss(trainer.state.log_history),
        "sampler": training_args.train_sampling_strategy,
        "optim": str(training_args.optim),
    }


def cache_check(tokenizer, encoder_dir: Path, work: Path, examples: int, repeat: int) -> None:
    """Tokenizing a training set vs reading it back from the store's feature cache (LocalStore)."""
    from xstilts.data.cache import cached_features
    from xstilts.store import LocalStore

    texts = nli_examples(examples, 13)
    store = LocalStore(work / "cache-store")
    build_s, hit_s = [], []
    for r in range(repeat):
        args = ("mnli", "train", "en", {"source": "bench", "round": r}, 256, 128)
        started = time.perf_counter()
        built = cached_features(store, encoder_dir, *args, lambda: features_of(tokenizer, texts, 256))
        build_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        hit = cached_features(store, encoder_dir, *args, lambda: features_of(tokenizer, texts, 256))
        hit_s.append(time.perf_counter() - started)
        assert hit == built
    size = sum(o.size for o in store.list("cache/")) / repeat / 2**20
    print(f"feature cache, {examples} examples: miss (tokenize + write) {median(build_s):.2f} s, "
          f"hit (read + verify + unpickle) {median(hit_s):.2f} s, {size:.1f} MiB per entry "
          f"(medians of {repeat})")  # fmt: skip


@torch.no_grad()
def held_out(model: torch.nn.Module, features: list[dict], hf: bool) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on held-out features, the same batching for both models."""
    from xstilts.data.batching import collate, sorted_batches

    model.eval()
    total_loss, correct = 0.0, 0
    for idx in sorted_batches([len(f["input_ids"]) for f in features], 64):
        batch = collate([features[i] for i in idx], 1)
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        logits = model(**inputs).logits if hf else model("mnli", inputs)[0]
        labels = batch["labels"]
        total_loss += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        correct += int((logits.argmax(-1) == labels).sum())
    model.train()
    return total_loss / len(features), correct / len(features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=960)
    parser.add_argument("--held-out", type=int, default=600)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--only", choices=["xstilts", "trainer"], default=None)
    parser.add_argument("--spread", choices=["uniform", "long-tail"], default="uniform")
    parser.add_argument("--vary-seed", action="store_true",
                        help="round r uses seed --seed + r on both sides")  # fmt: skip
    parser.add_argument("--batching", choices=["grouped", "random", "split"], default="split",
                        help="xstilts side: `training.batching` (default split)")  # fmt: skip
    parser.add_argument("--micro", type=int, default=None,
                        help="xstilts side: per_device_batch_size (default: the loop's)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="cProfile one xstilts run, print the top 25")
    parser.add_argument("--cache-check", type=int, default=0, metavar="N",
                        help="only time the feature cache on N examples (miss vs hit)")  # fmt: skip
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    info = machine()
    print(f"date {datetime.date.today()}  git {git_sha()}  machine {info}")
    with tempfile.TemporaryDirectory(prefix="xstilts-bench-") as tmp:
        work = Path(tmp)
        encoder_dir = build_encoder(work / "encoder", hidden=args.hidden, layers=args.layers)
        tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
        train_examples = nli_examples(args.examples, 11, spread=args.spread)
        train_features = features_of(tokenizer, train_examples, args.max_length)
        dev_features = features_of(
            tokenizer, nli_examples(args.held_out, 12, spread=args.spread), args.max_length
        )
        lengths = [len(f["input_ids"]) for f in train_features]
        print(f"train: {len(train_features)} examples ({args.spread} premise lengths), tokens per example: "
              f"{length_summary(lengths)}")  # fmt: skip
        print(f"model: hidden {args.hidden}, {args.layers} layers; batch {args.batch_size}, lr {args.lr}, "
              f"epochs {args.epochs}, threads {torch.get_num_threads()}")  # fmt: skip

        if args.cache_check:
            cache_check(tokenizer, encoder_dir, work, args.cache_check, args.repeat)
            return

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run_xstilts(encoder_dir, train_features, args, work)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return

        sides = [s for s in ("xstilts", "trainer") if args.only in (None, s)]
        base_seed = args.seed
        runs: dict[str, list[dict]] = {s: [] for s in sides}
        for r in range(args.repeat):
            if args.vary_seed:
                args.seed = base_seed + r
            for side in sides:
                with contextlib.redirect_stderr(io.StringIO()):
                    out = (
                        run_xstilts(encoder_dir, train_features, args, work)
                        if side == "xstilts"
                        else run_trainer(encoder_dir, train_features, tokenizer, args, work)
                    )
                dev_loss, dev_acc = held_out(out.pop("model"), dev_features, hf=side == "trainer")
                out.update(
                    tokens_per_s=out["tokens"] / out["seconds"],
                    tokens_per_cpu_s=out["tokens"] / out["cpu_seconds"],
                    dev_loss=dev_loss,
                    dev_acc=dev_acc,
                )
                runs[side].append(out)
                print(f"  run {r + 1} seed {args.seed} {side:8s} {out['seconds']:7.2f} s  "
                      f"{out['tokens_per_s']:9.0f} tok/s  "
                      f"{out['tokens_per_cpu_s']:7.0f} tok/cpu-s  "
                      f"steps {out['steps']}  train loss {out['train_loss']:.4f}  "
                      f"held-out loss {dev_loss:.4f} acc {dev_acc:.3f}  (load {machine()['load_avg']})",
                      flush=True)  # fmt: skip

        print()
        print("| side | tokens/s (median) | runs (tokens/s) | tokens per CPU-s | seconds | steps | "
              "last-epoch train loss | held-out loss | held-out loss mean ± sd | held-out acc |")  # fmt: skip
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        medians = {}
        for side, outs in runs.items():
            medians[side] = median([o["tokens_per_s"] for o in outs])
            each = ", ".join(f"{o['tokens_per_s']:.0f}" for o in outs)
            print(
                f"| {side} | {medians[side]:.0f} | {each} | "
                f"{median([o['tokens_per_cpu_s'] for o in outs]):.0f} | "
                f"{median([o['seconds'] for o in outs]):.2f} | {outs[0]['steps']} | "
                f"{median([o['train_loss'] for o in outs]):.4f} | "
                f"{median([o['dev_loss'] for o in outs]):.4f} | {mean_sd([o['dev_loss'] for o in outs])} | "
                f"{median([o['dev_acc'] for o in outs]):.3f} |"
            )
        if len(medians) == 2:
            ratio = medians["xstilts"] / medians["trainer"]
            pairs = zip(runs["xstilts"], runs["trainer"], strict=True)
            paired = median([a["tokens_per_s"] / b["tokens_per_s"] for a, b in pairs])
            cpu = median([o["tokens_per_cpu_s"] for o in runs["xstilts"]]) / median(
                [o["tokens_per_cpu_s"] for o in runs["trainer"]]
            )
            print(f"\nratio xstilts / Trainer: {ratio:.2f}x of the median tokens/s, {paired:.2f}x median of "
                  f"the per-round ratios, {cpu:.2f}x of the median tokens per CPU-second")  # fmt: skip
        print(f"load average at the end: {machine()['load_avg']}")


if __name__ == "__main__":
    main()
