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
from xstilts.train import state as training_state
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
    stop_fraction: float | None = None,
    views: dict[str, int] | None = None,
    epoch_sizes: dict[str, int] | None = None,
) -> tuple[torch.nn.Module, TrainResult]:
    """Train a MultiTaskModel on `features` (task -> training features); return the selected model.
    `views` and `epoch_sizes`: re-sampled and augmented training data (`build_schedule`).

    `stop_fraction` trains only the first ceil(fraction x total) steps of the full run (a successive-
    halving rung, `xstilts.plan.search`): same schedule and learning-rate decay, a checkpoint at the stop, no
    model selection (the weights at the stop are returned). Continuing from that checkpoint is the full
    run: the stop adds no dev evaluation and no loss-window reset that a straight run would not have."""
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
        total_steps=config.total_steps,
        examples_cap=config.examples_cap,
        views=views,
        epoch_sizes=epoch_sizes,
    )
    total_steps = max(1, math.ceil(len(schedule) / per_step))
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    end = (
        total_steps
        if stop_fraction is None
        else max(1, min(total_steps, math.ceil(stop_fraction * total_steps)))
    )

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
    checkpointer.deepspeed = accelerator.state.deepspeed_plugin is not None

    result = TrainResult(steps=0, best_step=None, best_dev=None)
    step = 0
    # Counters that continue across resumes (saved in every checkpoint): this rank's tokens, seconds
    # trained, and the loss windows behind `final_loss` and the progress lines.
    counters: dict[str, Any] = {
        "tokens": 0,
        "seconds": 0.0,
        "window_sum": 0.0,
        "window_count": 0,
        "log_sum": 0.0,
        "log_count": 0,
    }
    resumed = checkpointer.latest(at_most=end)
    if resumed is not None:
        step, local, saved = resumed
        training_state.load(accelerator, model, optimizer, scheduler, local, checkpointer.where(step))
        accelerator.step = int(saved.get("accelerator_step", 0))
        counters.update({k: saved["counters"][k] for k in counters if k in saved.get("counters", {})})
        result.best_step, result.best_dev = saved.get("best_step"), saved.get("best_dev")
        result.history = saved.get("history", [])
        result.final_loss = saved.get("final_loss")
        result.resumed_from = step
        progress.event("resume", step=step, total=total_steps)
    if config.compile:
        model = torch.compile(model)

    device = accelerator.device
    loss_sum = torch.tensor(counters["log_sum"], dtype=torch.float32, device=device)
    loss_count = int(counters["log_count"])
    # Mean loss since the last checkpoint: step-based (not time-based), so a resumed run reports the same.
    window_sum = torch.tensor(counters["window_sum"], dtype=torch.float32, device=device)
    window_count = int(counters["window_count"])
    tokens = int(counters["tokens"])
    seconds_before = float(counters["seconds"])
    started = time.monotonic()

    def checkpoint(evaluate: bool) -> None:
        entry: dict[str, Any] = {"step": step}
        if evaluate and evaluate_dev is not None:
            dev = evaluate_dev(accelerator.unwrap_model(model))
            entry["dev"] = dev
            if result.best_dev is None or dev["score"] > result.best_dev["score"]:
                result.best_step, result.best_dev = step, dev
            progress.event("dev", step=step, **{k: v for k, v in dev.items() if isinstance(v, int | float)})
        result.history.append(entry)
        training_state.save(accelerator, model, optimizer, scheduler, checkpointer.local_dir(step))
        accelerator.wait_for_everyone()  # every rank's share is on disk before rank 0 uploads the directory
        if accelerator.is_main_process:
            checkpointer.commit(
                step,
                {
                    "step": step,
                    "total_steps": total_steps,
                    "accelerator_step": accelerator.step,
                    "best_step": result.best_step,
                    "best_dev": result.best_dev,
                    "history": result.history,
                    "final_loss": result.final_loss,
                    "counters": {
                        "tokens": tokens,
                        "seconds": seconds_before + time.monotonic() - started,
                        "window_sum": window_sum.item(),
                        "window_count": window_count,
                        "log_sum": loss_sum.item(),
                        "log_count": loss_count,
                    },
                },
            )
            keep = {step} | ({result.best_step} if result.best_step is not None else set())
            checkpointer.prune(keep)
        accelerator.wait_for_everyone()
        progress.event("checkpoint", step=step, evaluated=evaluate)

    # After each optimizer step (SMART's momentum teacher follows the parameters).
    stepped = getattr(accelerator.unwrap_model(model), "optimizer_stepped", None)
    # Batches go to the GPU from pinned memory: a copy from pageable memory first waits for the GPU's
    # queued work (a host sync per micro-batch), so the host could not collate and launch the next
    # micro-batch while the GPU still runs this one. Pinned + non_blocking keeps the host ahead.
    pin = device.type == "cuda"
    model.train()
    with _SigtermFlag() as sigterm:
        while step < end:
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
            if stepped is not None:
                stepped(step, total_steps)
            if progress.due(force=step == total_steps):
                elapsed = time.monotonic() - started
                mean_loss = (loss_sum / max(loss_count, 1)).item()
                rate = (step - (result.resumed_from or 0)) / elapsed if elapsed > 0 else 0.0
                progress.step(
                    step,
                    total_steps,
                    loss=round(mean_loss, 5),
                    lr=scheduler.get_last_lr()[0],
                    tokens_per_s=round(tokens * world / max(seconds_before + elapsed, 1e-9)),
                    eta_s=round((total_steps - step) / rate, 1) if rate else None,
                )
                loss_sum.zero_()
                loss_count = 0
            if step == total_steps:
                result.final_loss = (window_sum / max(window_count, 1)).item()
            if step % config.checkpoint_every == 0 or step == total_steps:
                window_sum.zero_()  # the next window starts here, for a resumed run too
                window_count = 0
                checkpoint(evaluate=config.select_best)
            elif sigterm.raised or step == end:
                checkpoint(evaluate=False)
            if sigterm.raised and step < total_steps:
                progress.event("preempted", step=step)
                raise Preempted()

    result.steps = step
    result.train_tokens = tokens * world
    result.train_seconds = seconds_before + time.monotonic() - started
    if end < total_steps:
        progress.event("stopped", step=step, total=total_steps)
    elif config.select_best and result.best_step is not None and result.best_step != step:
        best = checkpointer.fetch(result.best_step)
        training_state.load_weights(accelerator, model, best, checkpointer.where(result.best_step))
        progress.event(
            "selected", step=result.best_step, score=result.best_dev["score"] if result.best_dev else None
        )
    accelerator.wait_for_everyone()  # no rank may clean up staging while another still reads it
    return accelerator.unwrap_model(model), result
