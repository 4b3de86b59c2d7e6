"""XLM-R Large training on one GPU: xstilts' loop, the Hugging Face `Trainer`, and xstilts' loop with
DeepSpeed ZeRO-2 through Accelerate, at sequence lengths 128 and 256, in one run.

    .venv/bin/python benchmarks/gpu_train.py [--seq 128 256] [--batch 32] [--steps 20] [--warmup 5]
    .venv/bin/python benchmarks/gpu_train.py --smoke      # CPU: the same code path, tiny config, 3 steps

The model is built from XLM-R Large's config (`XLMRobertaConfig(vocab_size=250002, hidden_size=1024,
num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, max_position_embeddings=514)`),
random weights, nothing downloaded, sdpa attention, with a 3-label classification head; batches are
synthetic (random token ids, every sequence exactly `--seq` long, so every token is real). Each side
runs in its own process (its own peak memory, its own DeepSpeed state):

- xstilts: `xstilts.train.loop.train`, bf16 autocast (Accelerate `mixed_precision="bf16"`), fused
  AdamW, micro-batch = `--batch` (no accumulation).
- trainer: `XLMRobertaForSequenceClassification` + `Trainer` (`bf16=True`, default fused AdamW,
  `DataCollatorWithPadding`, default sampler, `save_strategy="no"`, `report_to="none"`).
- zero2: xstilts' loop with `deepspeed: {enabled: true, stage: 2}` (Accelerate's DeepSpeed plugin,
  one process: world size 1).

Reported per side and length: tokens/s over `--steps` timed optimizer steps after `--warmup` untimed
ones, step time, peak memory (`torch.cuda.max_memory_allocated`), and MFU against a measured peak:
the first thing the run does is time a large bf16 matmul (8192^3, best of 3 rounds of 20). Model
FLOPs per token = 6 x non-embedding parameters + 12 x layers x length x hidden (attention scores and
values, forward and backward). For `benchmarks/sweep_cost.py` the run also measures the floor of one
forward+backward (batch 1 x 16 tokens) and the time of one optimizer step, and prints the three
`xlmr_large_<gpu>_...` lines to record in docs/benchmarks.md.

Without a CUDA device (and without `--smoke`) the script prints "no CUDA device: skipped" and exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LARGE = {
    "vocab_size": 250002,
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "max_position_embeddings": 514,
}
TINY = {
    "vocab_size": 1000,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 514,
}
SIDES = ("xstilts", "trainer", "zero2")
RESULT = "RESULT "


def model_config(smoke: bool):
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(**(TINY if smoke else LARGE), num_labels=3, pad_token_id=1)


def flops_per_token(config, seq: int) -> float:
    """Training FLOPs per token: 6 x non-embedding parameters + attention (12 x layers x seq x hidden)."""
    h, layers, ffn = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_layer = 4 * h * h + 4 * h + 2 * h * ffn + ffn + h + 4 * h  # attention, FFN, 2 LayerNorms
    non_embedding = layers * per_layer + h * h + h + h * config.num_labels  # + classification head
    return 6 * non_embedding + 12 * layers * seq * h


def matmul_peak(device, smoke: bool) -> float:
    """Measured dense matmul FLOP/s (bf16 on GPU; fp32 and small on CPU): best of 3 rounds."""
    import torch

    n, iters = (512, 5) if smoke else (8192, 20)
    dtype = torch.float32 if smoke else torch.bfloat16
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        _sync(device)
        started = time.perf_counter()
        for _ in range(iters):
            a @ b
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 * iters / best


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def synthetic_features(n: int, seq: int, vocab: int, seed: int = 0) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    return [
        {
            "input_ids": [0] + [rng.randrange(5, vocab) for _ in range(seq - 2)] + [2],
            "labels": rng.randrange(3),
        }
        for _ in range(n)
    ]


class _Timer:
    """A ProgressLog stand-in: the loop calls `due()` once per optimizer step and `step()` after syncing
    the loss to the host; the timer marks the end of the warm-up and the end of the run."""

    def __init__(self, warmup: int, total: int):
        self.warmup, self.total = warmup, total
        self.calls = 0
        self.marks: dict[int, float] = {}
        self.stream = io.StringIO()

    def due(self, force: bool = False) -> bool:
        self.calls += 1
        return self.calls in (self.warmup, self.total)

    def step(self, step: int, total: int, **_: Any) -> None:
        self.marks[step] = time.perf_counter()

    def event(self, *_: Any, **__: Any) -> None:
        pass


def _local_checkpoints():
    """A Checkpointer that keeps the loop's final `save_state` on local disk and uploads nothing: the
    sha256 + store copy of XLM-R Large's ~6.7 GB state would cost a GPU session a minute per side."""
    from xstilts.train.checkpoint import Checkpointer

    class LocalOnly(Checkpointer):
        def commit(self, step: int, state: dict[str, Any]) -> None:
            pass

        def prune(self, keep: set[int]) -> None:
            pass

    return LocalOnly


def run_xstilts(args: argparse.Namespace, deepspeed: bool) -> dict[str, Any]:
    import torch
    from accelerate import PartialState
    from accelerate.utils import set_seed
    from transformers import AutoModel

    from xstilts.modeling.model import MultiTaskModel
    from xstilts.spec.training import TrainingConfig
    from xstilts.store import LocalStore
    from xstilts.tasks import get_task
    from xstilts.train.loop import train

    if deepspeed and not torch.cuda.is_available():
        PartialState(backend="gloo")  # DeepSpeed on CPU (smoke) talks gloo (ENVIRONMENT.md)
    config = model_config(args.smoke)
    set_seed(0)
    task = get_task("mnli")
    encoder = AutoModel.from_config(config, add_pooling_layer=False, attn_implementation="sdpa")
    model = MultiTaskModel(encoder, [task])
    total = args.warmup + args.steps
    features = synthetic_features(args.batch * total, args.seq, config.vocab_size)
    training = TrainingConfig(
        learning_rate=1e-5,
        epochs=1,
        max_steps=total,
        batch_size=args.batch,
        per_device_batch_size=args.batch,
        max_length=max(args.seq, 16),
        checkpoint_every=10**9,
        select_best=False,
        mixed_precision="no" if args.smoke else "bf16",
    )
    timer = _Timer(args.warmup, total)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="xstilts-gpu-bench-") as tmp:
        trained, result = train(
            model,
            {task.name: features},
            training,
            0,
            pad_token_id=1,
            checkpointer=_local_checkpoints()(
                LocalStore(Path(tmp) / "store"), "bench", Path(tmp) / "staging"
            ),
            progress=timer,  # type: ignore[arg-type]
            deepspeed={"enabled": True, "stage": 2} if deepspeed else None,
        )
    seconds = timer.marks[total] - timer.marks[args.warmup]
    out = _measured(args, seconds, device)
    out["final_loss"] = result.final_loss
    if not deepspeed:
        out.update(floor_and_optimizer(trained, task.name, device, config, args))
    return out


def floor_and_optimizer(model, task: str, device, config, args: argparse.Namespace) -> dict[str, float]:
    """Least time of one forward+backward (1 x 16 tokens) and time of one fused AdamW step, in ms."""
    import torch

    model.train()
    ids = torch.randint(5, config.vocab_size, (1, 16), device=device)
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.zeros(1, dtype=torch.long),
    }
    batch["labels"] = batch["labels"].to(device)
    autocast = torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and not args.smoke
    )

    def fwd_bwd() -> None:
        with autocast:
            _, loss = model(task, batch)
        loss.backward()

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-5, **({"fused": True} if device.type == "cuda" else {})
    )

    def opt_step() -> None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)

    times = {}
    for name, fn in (("floor_ms", fwd_bwd), ("optimizer_ms", opt_step)):
        for _ in range(3):
            fn()
        _sync(device)
        started = time.perf_counter()
        repeats = 3 if args.smoke else 20
        for _ in range(repeats):
            fn()
        _sync(device)
        times[name] = (time.perf_counter() - started) / repeats * 1000
    return times


def run_trainer(args: argparse.Namespace) -> dict[str, Any]:
    import datasets
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        XLMRobertaTokenizerFast,
    )

    config = model_config(args.smoke)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    total = args.warmup + args.steps
    features = synthetic_features(args.batch * total, args.seq, config.vocab_size)
    dataset = datasets.Dataset.from_dict(
        {"input_ids": [f["input_ids"] for f in features], "labels": [f["labels"] for f in features]}
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    marks: dict[int, float] = {}

    class Marks(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):  # noqa: ANN001
            if state.global_step in (args.warmup, total):
                _sync(device)
                marks[state.global_step] = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="xstilts-gpu-bench-") as tmp:
        tokenizer = _pad_only_tokenizer(XLMRobertaTokenizerFast, Path(tmp))
        training_args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=args.batch,
            max_steps=total,
            learning_rate=1e-5,
            weight_decay=0.01,
            warmup_steps=0.1,
            bf16=not args.smoke,
            use_cpu=args.smoke,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=dataset,
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=[Marks()],
        )
        output = trainer.train()
    out = _measured(args, marks[total] - marks[args.warmup], device)
    out["final_loss"] = output.training_loss
    return out


def _pad_only_tokenizer(cls, directory: Path):
    """The collator only pads: a minimal fast tokenizer with XLM-R's pad id (1) is enough."""
    from tokenizers import Tokenizer, models

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    return cls(
        tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def _measured(args: argparse.Namespace, seconds: float, device) -> dict[str, Any]:
    import torch

    tokens = args.batch * args.seq * args.steps
    return {
        "tokens_per_s": tokens / seconds,
        "step_ms": seconds / args.steps * 1000,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
    }


def child(args: argparse.Namespace) -> None:
    if args.child == "trainer":
        out = run_trainer(args)
    else:
        out = run_xstilts(args, deepspeed=args.child == "zero2")
    print(RESULT + json.dumps(out), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(side: str, seq: int, args: argparse.Namespace) -> dict[str, Any]:
    """One side at one length in a fresh process; returns its RESULT (or the error's last lines)."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if side == "zero2":  # what `accelerate launch` sets for one DeepSpeed process
        env.update(ACCELERATE_USE_DEEPSPEED="true", RANK="0", LOCAL_RANK="0", WORLD_SIZE="1",
                   LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))  # fmt: skip
        env.pop("ACCELERATE_USE_CPU", None)
    command = [sys.executable, __file__, "--child", side, "--seq", str(seq), "--batch", str(args.batch),
               "--steps", str(args.steps), "--warmup", str(args.warmup)]  # fmt: skip
    if args.smoke:
        command.append("--smoke")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
    return {"error": f"exit {done.returncode}: {tail}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--smoke", action="store_true", help="CPU, tiny config, 3 steps: checks the code path"
    )
    parser.add_argument("--seq", type=int, nargs="+", default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument(
        "--sides", default=",".join(SIDES), help="comma-separated subset of " + ",".join(SIDES)
    )
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        defaults = {"seq": [32, 64], "batch": 4, "steps": 3, "warmup": 1}
    else:
        defaults = {"seq": [128, 256], "batch": 32, "steps": 20, "warmup": 5}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.child:
        args.seq = args.seq[0]
        child(args)
        return

    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("no CUDA device: skipped (run on a GPU machine, or --smoke for the CPU code-path check)")
        return
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (smoke)"
    print(f"date {datetime.date.today()}  device {gpu}  torch {torch.__version__}  nproc {os.cpu_count()}")
    peak = matmul_peak(device, args.smoke)
    print(
        f"measured matmul peak ({'fp32 512^3' if args.smoke else 'bf16 8192^3'}): {peak / 1e12:.1f} TFLOP/s"
    )
    config = model_config(args.smoke)
    print(f"model: {'tiny smoke config' if args.smoke else 'XLM-R Large'} "
          f"({config.num_hidden_layers} layers, hidden {config.hidden_size}); batch {args.batch}, "
          f"{args.steps} timed steps after {args.warmup} warm-up steps")  # fmt: skip
    print()
    print("| side | length | tokens/s | step ms | peak memory GiB | MFU | final loss |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    failed = False
    for seq in args.seq:
        for side in args.sides.split(","):
            out = spawn(side, seq, args)
            results[(side, seq)] = out
            if "error" in out:
                failed = True
                print(f"| {side} | {seq} | failed | | | | |\n{out['error']}", flush=True)
                continue
            mfu = out["tokens_per_s"] * flops_per_token(config, seq) / peak
            memory = f"{out['peak_memory_gib']:.1f}" if out["peak_memory_gib"] is not None else "n/a (CPU)"
            print(f"| {side} | {seq} | {out['tokens_per_s']:,.0f} | {out['step_ms']:.1f} | {memory} | "
                  f"{mfu:.1%} | {out['final_loss']:.4f} |", flush=True)  # fmt: skip
    reference = results.get(("xstilts", max(args.seq)), {})
    if "tokens_per_s" in reference:
        label = "smoke" if args.smoke else gpu.lower().replace("nvidia ", "").split()[0].replace("-", "_")
        print("\nfor docs/benchmarks.md (read by benchmarks/sweep_cost.py):")
        print(f"xlmr_large_{label}_train_tokens_per_s: {reference['tokens_per_s']:.0f}")
        print(f"xlmr_large_{label}_step_floor_ms: {reference['floor_ms']:.1f}")
        print(f"xlmr_large_{label}_optimizer_step_ms: {reference['optimizer_ms']:.1f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
