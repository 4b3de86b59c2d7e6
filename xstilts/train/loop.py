"""The training loop shared by every training phase.

Accelerate drives devices, mixed precision, DDP and DeepSpeed. The loop adds what phases need:
length-sorted dynamic-padded micro-batches from a deterministic (multi-task) schedule, AdamW with
linear warm-up, clipping and accumulation, dev evaluation and checkpoints every `checkpoint_every`
optimizer steps, model selection on the dev score, resume from the latest complete checkpoint, and a
checkpoint on SIGTERM followed by the retryable exit code.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from xstilts.data.batching import collate, loss_units
from xstilts.data.features import Feature, feature_length, real_tokens
from xstilts.errors import EXIT_PREEMPTED
from xstilts.spec.training import TrainingConfig
from xstilts.train.checkpoint import Checkpointer
from xstilts.train.progress import ProgressLog
from xstilts.train.schedule import MicroBatch, build_schedule

SPLIT_PARTS = 4  # micro-batches per process and step under `split` batching, unless set

DevEvaluator = Callable[[torch.nn.Module], dict[str, Any]]  # returns {"score": float, ...}


class Preempted(SystemExit):
    """Raised after the SIGTERM checkpoint is committed; exits with the retryable code."""

    def __init__(self) -> None:
        super().__init__(EXIT_PREEMPTED)


@dataclass
class TrainResult:
    steps: int
    best_step: int | None
    best_dev: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    train_tokens: int = 0
    train_seconds: float = 0.0
    final_loss: float | None = None
    resumed_from: int | None = None


class _SigtermFlag:
    def __init__(self) -> None:
        self.raised = False
        self._previous: Any = None

    def __enter__(self) -> _SigtermFlag:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, _signum: int, _frame: Any) -> None:
        self.raised = True

    def __exit__(self, *_: Any) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def _mixed_precision(setting: str) -> str:
    if setting != "auto":
        return setting
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def make_accelerator(
    config: TrainingConfig, accumulation: int, deepspeed: dict[str, Any] | None, multi_task: bool
):
    from accelerate import Accelerator
    from accelerate.utils import DeepSpeedPlugin, DistributedDataParallelKwargs

    kwargs: dict[str, Any] = {
        "mixed_precision": _mixed_precision(config.mixed_precision),
        "gradient_accumulation_steps": accumulation,
    }
    if deepspeed and deepspeed.get("enabled"):
        kwargs["deepspeed_plugin"] = DeepSpeedPlugin(
            zero_stage=deepspeed.get("stage", 2),
            gradient_accumulation_steps=accumulation,
            gradient_clipping=config.max_grad_norm,
            offload_optimizer_device="cpu" if deepspeed.get("offload_optimizer") else "none",
        )
    elif multi_task:
        # Each micro-batch trains one task's head; the others get no gradient on that rank.
        kwargs["kwargs_handlers"] = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    return Accelerator(**kwargs)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(
            param
        )
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def default_micro_batch(config: TrainingConfig, world: int) -> int:
    """Micro-batch size when the sweep sets none: up to 32 examples; with `split` batching, a quarter of
    each process's share of the batch, so a step has four parts to sort lengths into."""
    if config.batching == "split":
        return max(1, config.batch_size // (world * SPLIT_PARTS))
    return min(config.batch_size, 32)


def step_loss_weights(
    schedule: list[MicroBatch], features: dict[str, list[Feature]], step: int, per_step: int, batching: str
) -> list[float] | None:
    """`split` batching: per micro-batch of the step, the factor that turns its mean loss into its share
    of the whole batch's (loss units / the step's units, times the micro-batches that Accelerate and DDP
    average over). None for the other batchings: their micro-batches weigh the same."""
    if batching != "split":
        return None
    start = step * per_step
    units = [
        loss_units([features[mb.task][i] for i in mb.indices])
        for mb in (schedule[(start + j) % len(schedule)] for j in range(per_step))
    ]
    total = sum(units) or 1
    return [u * per_step / total for u in units]


def _fused_adamw_on_cpu() -> bool:
    """PyTorch's fused AdamW has a CPU kernel from 2.4 (the Trainer's default `adamw_torch_fused`)."""
    try:
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def train(
    model: torch.nn.Module,
    features: dict[str, list[Feature]],
    config: TrainingConfig,
    seed: int,
    *,
    pad_token_id: int,
    checkpointer: Checkpointer,
    progress: ProgressLog,
    evaluate_dev: DevEvaluator | None = None,
    deepspeed: dict[str, Any] | None = None,
) -> tuple[torch.nn.Module, TrainResult]:
    """Train a MultiTaskModel on `features` (task -> training features); return the selected model."""
    from accelerate import PartialState
    from transformers import get_linear_schedule_with_warmup

    state = PartialState()
    world, rank = state.num_processes, state.process_index
    micro = config.per_device_batch_size or default_micro_batch(config, world)
    accumulation = max(1, config.batch_size // (micro * world))
    accelerator = make_accelerator(config, accumulation, deepspeed, multi_task=len(features) > 1)
    if accelerator.state.deepspeed_plugin is not None:
        accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = micro

    lengths = {t: [feature_length(f) for f in fs] for t, fs in features.items()}
    per_step = accumulation * world
    schedule = build_schedule(
        lengths,
        micro,
        config.epochs,
        seed,
        config.sampling,
        config.temperature,
        batching=config.batching,
        parts=per_step,
    )
    total_steps = max(1, math.ceil(len(schedule) / per_step))
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    if config.gradient_checkpointing and hasattr(model, "encoder"):
        model.encoder.gradient_checkpointing_enable()
    fused = deepspeed is None and (torch.cuda.is_available() or _fused_adamw_on_cpu())
    optimizer = torch.optim.AdamW(
        _param_groups(model, config.weight_decay),
        lr=config.learning_rate,
        eps=config.adam_epsilon,
        **({"fused": True} if fused else {}),
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    if config.compile:
        model = torch.compile(model)

    result = TrainResult(steps=0, best_step=None, best_dev=None)
    step = 0
    resumed = checkpointer.latest()
    if resumed is not None:
        step, local, saved = resumed
        accelerator.load_state(str(local))
        result.best_step, result.best_dev = saved.get("best_step"), saved.get("best_dev")
        result.history = saved.get("history", [])
        result.resumed_from = step
        progress.event("resume", step=step, total=total_steps)

    def checkpoint(evaluate: bool) -> None:
        entry: dict[str, Any] = {"step": step}
        if evaluate and evaluate_dev is not None:
            dev = evaluate_dev(accelerator.unwrap_model(model))
            entry["dev"] = dev
            if result.best_dev is None or dev["score"] > result.best_dev["score"]:
                result.best_step, result.best_dev = step, dev
            progress.event("dev", step=step, **{k: v for k, v in dev.items() if isinstance(v, int | float)})
        result.history.append(entry)
        accelerator.save_state(str(checkpointer.local_dir(step)))
        if accelerator.is_main_process:
            checkpointer.commit(
                step,
                {
                    "step": step,
                    "total_steps": total_steps,
                    "best_step": result.best_step,
                    "best_dev": result.best_dev,
                    "history": result.history,
                },
            )
            keep = {step} | ({result.best_step} if result.best_step is not None else set())
            checkpointer.prune(keep)
        accelerator.wait_for_everyone()
        progress.event("checkpoint", step=step, evaluated=evaluate)

    device = accelerator.device
    # Batches go to the GPU from pinned memory: a copy from pageable memory first waits for the GPU's
    # queued work (a host sync per micro-batch), so the host could not collate and launch the next
    # micro-batch while the GPU still runs this one. Pinned + non_blocking keeps the host ahead.
    pin = device.type == "cuda"
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    # Mean loss since the last checkpoint: step-based (not time-based), so a resumed run reports the same.
    window_sum = torch.zeros((), device=device)
    window_count = 0
    tokens = 0
    started = time.monotonic()
    model.train()
    with _SigtermFlag() as sigterm:
        while step < total_steps:
            weights = step_loss_weights(schedule, features, step, per_step, config.batching)
            for k in range(accumulation):
                position = k * world + rank
                mb = schedule[(step * per_step + position) % len(schedule)]
                batch_features = [features[mb.task][i] for i in mb.indices]
                tokens += sum(real_tokens(f) for f in batch_features)
                batch = {
                    key: (v.pin_memory() if pin else v).to(device, non_blocking=pin)
                    for key, v in collate(batch_features, pad_token_id).items()
                }
                with accelerator.accumulate(model):
                    output, loss = model(mb.task, batch)
                    if weights is not None:
                        # A part with no labelled token has a NaN mean loss; it must add nothing.
                        loss = loss * weights[position] if weights[position] else output.sum() * 0.0
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                loss_sum += loss.detach()
                loss_count += 1
                window_sum += loss.detach()
                window_count += 1
            scheduler.step()
            step += 1
            if progress.due(force=step == total_steps):
                elapsed = time.monotonic() - started
                mean_loss = (loss_sum / max(loss_count, 1)).item()
                rate = step / elapsed if elapsed > 0 else 0.0
                progress.step(
                    step,
                    total_steps,
                    loss=round(mean_loss, 5),
                    lr=scheduler.get_last_lr()[0],
                    tokens_per_s=round(tokens * world / max(elapsed, 1e-9)),
                    eta_s=round((total_steps - step) / rate, 1) if rate else None,
                )
                loss_sum.zero_()
                loss_count = 0
            if step == total_steps:
                result.final_loss = (window_sum / max(window_count, 1)).item()
            if step % config.checkpoint_every == 0 or step == total_steps:
                checkpoint(evaluate=config.select_best)
                window_sum.zero_()
                window_count = 0
            elif sigterm.raised:
                checkpoint(evaluate=False)
            if sigterm.raised and step < total_steps:
                progress.event("preempted", step=step)
                raise Preempted()

    result.steps = step
    result.train_tokens = tokens * world
    result.train_seconds = time.monotonic() - started
    if config.select_best and result.best_step is not None and result.best_step != step:
        accelerator.load_state(str(checkpointer.fetch(result.best_step)))
        progress.event(
            "selected", step=result.best_step, score=result.best_dev["score"] if result.best_dev else None
        )
    accelerator.wait_for_everyone()  # no rank may clean up staging while another still reads it
    return accelerator.unwrap_model(model), result
