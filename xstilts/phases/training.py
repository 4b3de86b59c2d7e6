"""Intermediate, target and MLM phases: build the model from the upstream encoder, train with the
shared loop, save the selected model. Target phases load the encoder only (fresh heads). MLM runs either
as its own phase before intermediate training or as a task in an intermediate mixture (`tasks: [mnli,
mlm]`, the paper's form); both continue the upstream checkpoint's pretrained LM head."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xstilts.augment.examples import augment_examples, augmentation_mode, resampled_view
from xstilts.data.cache import cached_features
from xstilts.data.features import featurize
from xstilts.data.load import count_examples, load_examples, resolve_labels
from xstilts.data.mlm import mask_features
from xstilts.errors import ConfigError
from xstilts.phases.context import PhaseContext
from xstilts.plan.phase import phase_prefix
from xstilts.spec.training import TrainingConfig
from xstilts.store import Store
from xstilts.tasks import Format, TaskDef, get_task


def dev_evaluator(
    tasks: list[TaskDef],
    data: dict[str, Any],
    tokenizer,
    config: TrainingConfig,
    *,
    store: Store | None = None,
    tokenizer_dir: Path | None = None,
    on_event: Callable[..., None] | None = None,
):
    """English dev score (mean over tasks) for model selection; the examples are loaded once. With a
    store and the tokenizer's directory, the dev features come from the store's feature cache."""
    from xstilts.evaluate.predict import predict
    from xstilts.evaluate.scoring import score

    dev = {}
    for task in tasks:
        if task.dev is None:
            continue
        examples = load_examples(task, "dev", data, "en", limit=config.max_dev_examples)
        features = cached_features(
            store if tokenizer_dir is not None else None,
            tokenizer_dir or "",
            task.name,
            "dev",
            "en",
            data,
            config.max_length,
            config.doc_stride,
            lambda task=task, examples=examples: featurize(
                task, tokenizer, examples, config.max_length, config.doc_stride
            ),
            limit=config.max_dev_examples,
            on_event=on_event,
        )
        dev[task.name] = (examples, features)
    if not dev:
        return None

    def evaluate(model) -> dict[str, Any]:
        scores = {}
        for task in tasks:
            if task.name not in dev:
                continue
            examples, features = dev[task.name]
            outputs = predict(model, task, features, tokenizer.pad_token_id)
            metrics, _ = score(task, examples, features, outputs)
            scores[task.name] = metrics["score"]
        return {"score": sum(scores.values()) / len(scores), **{f"{k}_score": v for k, v in scores.items()}}

    return evaluate


def _cache_extra(config: TrainingConfig, **more: Any) -> dict[str, Any] | None:
    """Cache-key fields beyond the split's: the random sample behind a capped training set."""
    extra = {k: v for k, v in more.items() if v}
    if config.max_train_examples is not None:
        extra["sample_seed"] = config.train_sample_seed
    return extra or None


def size_matched(config: TrainingConfig, pool: list[str] | None, data: dict[str, Any]) -> TrainingConfig:
    """`controls.size_match: smallest`: every task of the phase capped at the training size of the smallest
    task in `pool` (the sweep's intermediate tasks), so bigger tasks do not get more data."""
    if not pool:
        return config
    smallest = min(count_examples(get_task(name), data) for name in pool)
    cap = min(smallest, config.max_train_examples or smallest)
    return config.model_copy(update={"max_train_examples": cap})


def _example_count(features: list[dict[str, Any]]) -> int:
    """Examples behind a feature list (QA windows and multiple-choice rows share an example_index)."""
    return 1 + max((f.get("example_index", -1) for f in features), default=-1)


MAX_VIEWS = 32  # re-sampled versions of a training set at most; later passes reuse them cyclically


@dataclass
class Stage:
    """The training data of one stage: task -> features, and what the schedule must know about them
    (`xstilts.train.schedule.build_schedule`): re-sampled versions, and epochs counted on the plain data."""

    features: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    views: dict[str, int] = field(default_factory=dict)
    epoch_sizes: dict[str, int] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)  # per pass (originals and fixed copies)


def views_needed(config: TrainingConfig, per_pass: int, epoch_size: int) -> int:
    """Versions of a re-sampled training set the run can read: one per pass over its `per_pass`
    features, plus one for a batch that spans two passes, at most MAX_VIEWS."""
    steps = config.total_steps or config.max_steps
    by_steps = steps * config.batch_size / per_pass if steps else math.inf
    by_epochs = config.epochs * epoch_size / per_pass if config.total_steps is None else math.inf
    return max(1, min(MAX_VIEWS, math.ceil(min(by_steps, by_epochs)) + 1))


def _stages(
    ctx: PhaseContext, tasks: list[TaskDef], config: TrainingConfig, tokenizer, tokenizer_dir: Path
) -> list[Stage]:
    """Training features per stage. One stage, except for tasks trained in stages (XCOPA: SIQA, then
    COPA), which a phase trains one after the other on the same model and head. Features come from the
    store's feature cache (`xstilts.data.cache`): a sweep tokenizes each training set once, whichever
    phases read it.

    Augmentation (the config's `augment`, xstilts.augment): `copies`-mode specs add fixed perturbed copies
    beside the plain features; `resample`-mode specs (CoSDA-ML) replace the data by a new version on every
    pass (`views`). With `match_steps` an epoch counts the plain examples, so the augmented setting trains
    as many optimizer steps as the plain one."""
    augment = getattr(ctx.config, "augment", None) or []  # intermediate phases only
    match_steps = bool(getattr(ctx.config, "match_steps", None))
    per_task: dict[str, list[Stage]] = {}
    for task in tasks:
        if task.format is Format.MLM:
            mixture = getattr(ctx.config, "mlm", None)
            settings = mixture.model_dump() if mixture is not None else {}
            features = mlm_features(ctx, config, tokenizer, tokenizer_dir, settings)
            per_task[task.name] = [Stage({task.name: features})]
            ctx.progress.event(
                "data", task=task.name, stage=0, examples=len(features), features=len(features)
            )
            continue
        per_task[task.name] = []
        # As `load_training_stages`: stage i of `train_stages`, else the `train` source (stage None).
        stages = list(range(len(task.train_stages))) if task.train_stages else [None]
        for number, stage in enumerate(stages):
            built = _training_set(ctx, task, stage, config, tokenizer, tokenizer_dir, augment, match_steps)
            per_task[task.name].append(built)
            features = built.features[task.name]
            examples = built.examples.get(task.name, _example_count(features))
            ctx.progress.event("data", task=task.name, stage=number, examples=examples,
                               features=len(features), views=built.views.get(task.name, 1))  # fmt: skip
    if len(tasks) > 1 and any(len(v) > 1 for v in per_task.values()):
        raise ConfigError(
            "tasks trained in stages (e.g. xcopa) cannot be part of a multi-task mixture",
            field="intermediate",
            fix="train the staged task alone",
        )
    merged = []
    for k in range(max(len(v) for v in per_task.values())):
        out = Stage()
        for stages_of_task in per_task.values():
            part = stages_of_task[k]
            out.features.update(part.features)
            out.views.update(part.views)
            out.epoch_sizes.update(part.epoch_sizes)
        merged.append(out)
    return merged


def _training_set(
    ctx: PhaseContext,
    task: TaskDef,
    stage: int | None,
    config: TrainingConfig,
    tokenizer,
    tokenizer_dir: Path,
    augment: list[dict[str, Any]],
    match_steps: bool,
) -> Stage:
    data = ctx.config.data

    def examples() -> list[dict[str, Any]]:
        return load_examples(task, "train", data, "en", config.max_train_examples, stage=stage,
                             sample_seed=config.train_sample_seed)  # fmt: skip

    def cached(build: Callable[[], list[dict[str, Any]]], **extra: Any) -> list[dict[str, Any]]:
        return cached_features(ctx.store, tokenizer_dir, task.name, "train", "en", data, config.max_length,
                               config.doc_stride, build, limit=config.max_train_examples, stage=stage,
                               extra=_cache_extra(config, **extra), on_event=ctx.progress.event)  # fmt: skip

    def featurized(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return featurize(task, tokenizer, items, config.max_length, config.doc_stride)

    plain = cached(lambda: featurized(examples()))
    if not augment:
        return Stage({task.name: plain})
    resample = [a for a in augment if augmentation_mode(a) == "resample"]
    with_copies = any(augmentation_mode(a) == "copies" for a in augment)
    epoch_sizes = {task.name: len(plain)} if match_steps else {}
    if not resample:  # fixed copies beside the plain features (cached apart: the plain ones are shared)

        def build_copies() -> list[dict[str, Any]]:
            base = examples()
            return featurized(augment_examples(task, base, augment, data)[len(base) :])

        return Stage(
            {task.name: plain + cached(build_copies, augment=augment, part="copies")}, {}, epoch_sizes
        )
    per_pass = len(plain) * (
        1 + sum(int(a.get("copies", 1)) for a in augment if augmentation_mode(a) == "copies")
    )
    views = views_needed(config, per_pass, len(plain) if match_steps else per_pass)

    def build_views() -> list[dict[str, Any]]:
        pool = augment_examples(task, examples(), augment, data)  # with the copies, if any
        out: list[dict[str, Any]] = []
        for view in range(views):
            features = featurized(resampled_view(task, pool, augment, data, view))
            if out and len(features) != len(out) // view:
                raise ConfigError(
                    f"re-sampled code-switching of '{task.name}' gives a different number of features per "
                    "pass (long contexts cut into windows)",
                    field="augment.mode",
                    fix="use mode: copies for this task",
                )
            out += features
        return out

    features = cached(build_views, augment=augment, views=views)
    return Stage({task.name: features}, {task.name: views}, epoch_sizes if with_copies else {})


def mlm_features(
    ctx: PhaseContext, config: TrainingConfig, tokenizer, tokenizer_dir: Path, settings: dict[str, Any]
) -> list[dict[str, Any]]:
    """The MLM corpus (`settings["corpus"]`; the fixture corpus when none) tokenized through the feature
    cache, then masked (`settings["mask_probability"]`) with the phase's seed."""
    corpus = settings.get("corpus")
    data = {**ctx.config.data, **({"mlm_corpus": corpus} if corpus else {})}
    task = get_task("mlm")

    def build() -> list[dict[str, Any]]:
        lines = load_examples(task, "train", data, "en", config.max_train_examples,
                              sample_seed=config.train_sample_seed)  # fmt: skip
        return featurize(task, tokenizer, lines, config.max_length)

    features = cached_features(
        ctx.store, tokenizer_dir, task.name, "train", "multi", data, config.max_length, config.doc_stride,
        build, limit=config.max_train_examples, extra=_cache_extra(config), on_event=ctx.progress.event,
    )  # fmt: skip
    return mask_features(features, tokenizer, settings.get("mask_probability", 0.15), int(ctx.config.seed))


def train_tasks(ctx: PhaseContext, tasks: list[TaskDef]) -> dict[str, Any]:
    from accelerate.utils import set_seed
    from transformers import AutoTokenizer

    from xstilts.modeling.model import MultiTaskModel, load_encoder
    from xstilts.train.checkpoint import Checkpointer
    from xstilts.train.loop import train

    config = TrainingConfig.model_validate(ctx.config.training)
    data = ctx.config.data
    config = size_matched(config, getattr(ctx.config, "size_match", None), data)
    seed = int(ctx.config.seed)
    upstream = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(upstream)
    tasks = [resolve_labels(t, data) for t in tasks]  # CCG's supertag set comes from its data
    stages = _stages(ctx, tasks, config, tokenizer, upstream)

    set_seed(seed)
    model = MultiTaskModel(
        load_encoder(upstream),
        tasks,
        config.adversarial,
        config.adversarial_weight,
        config.adversarial_options,
        pretrained=upstream,
    )
    stage_steps = []
    # A successive-halving rung (xstilts.plan.search) is a prefix of the full run: it checkpoints where the
    # full phase does, so the next rung and the full phase continue from it.
    run_prefix = getattr(ctx.config, "checkpoints_of", None)
    run_prefix = phase_prefix(ctx.phase.kind, run_prefix) if run_prefix else ctx.phase.prefix
    stop_fraction = getattr(ctx.config, "stop_fraction", None)
    if stop_fraction is not None and len(stages) > 1:
        raise ConfigError(
            "a search rung cannot train a staged task", field="search", fix="search over others"
        )
    for number, stage in enumerate(stages):
        last = number == len(stages) - 1
        prefix = run_prefix if last else f"{run_prefix}/stage-{number}"
        staging = ctx.staging if last else ctx.staging / f"stage-{number}"
        model, result = train(
            model,
            stage.features,
            config if last else config.model_copy(update={"select_best": False}),
            seed,
            pad_token_id=tokenizer.pad_token_id,
            checkpointer=Checkpointer(ctx.store, prefix, staging),
            progress=ctx.progress,
            evaluate_dev=dev_evaluator(
                tasks,
                data,
                tokenizer,
                config,
                store=ctx.store,
                tokenizer_dir=upstream,
                on_event=ctx.progress.event,
            )
            if config.select_best and last
            else None,
            deepspeed=ctx.config.deepspeed.model_dump(),
            stop_fraction=stop_fraction if last else None,
            views=stage.views or None,
            epoch_sizes=stage.epoch_sizes or None,
        )
        stage_steps.append(result.steps)
    # A fresh copy of the upstream tokenizer: the one used here carries the truncation state of its last
    # call, which depends on whether the features came from the cache (a resumed phase's often do).
    model.save(ctx.out / "model", AutoTokenizer.from_pretrained(upstream))
    return {
        "tasks": [t.name for t in tasks],
        "max_train_examples": config.max_train_examples,
        "steps": result.steps,
        "stage_steps": stage_steps,
        "best_step": result.best_step,
        "dev": result.best_dev,
        "final_loss": result.final_loss,
        "train_tokens": result.train_tokens,
        "train_seconds": round(result.train_seconds, 3),
        "tokens_per_s": round(result.train_tokens / result.train_seconds, 1)
        if result.train_seconds
        else None,
        "resumed_from": result.resumed_from,
        "history": result.history,
    }


def run_intermediate(ctx: PhaseContext) -> dict[str, Any]:
    return train_tasks(ctx, [get_task(name) for name in ctx.config.tasks])


def run_target(ctx: PhaseContext) -> dict[str, Any]:
    return train_tasks(ctx, [get_task(ctx.config.task)])


def run_mlm(ctx: PhaseContext) -> dict[str, Any]:
    """Continued multilingual MLM on a text corpus (one example per line), statically masked by seed,
    from the upstream checkpoint's pretrained LM head (refused when it has none)."""
    from accelerate.utils import set_seed
    from torch import nn
    from transformers import AutoTokenizer

    from xstilts.modeling.mlm import load_masked_lm
    from xstilts.train.checkpoint import Checkpointer
    from xstilts.train.loop import train

    config = TrainingConfig.model_validate(ctx.config.training)
    seed = int(ctx.config.seed)
    upstream = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(upstream)
    settings = {"corpus": ctx.config.corpus, "mask_probability": ctx.config.mask_probability}
    features = mlm_features(ctx, config, tokenizer, upstream, settings)
    lm = load_masked_lm(upstream)

    class MaskedLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm = lm

        def forward(self, _task: str, batch: dict):
            out = self.lm(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
            )
            return out.logits, out.loss

    set_seed(seed)
    model, result = train(
        MaskedLM(),
        {"mlm": features},
        config.model_copy(update={"select_best": False}),
        seed,
        pad_token_id=tokenizer.pad_token_id,
        checkpointer=Checkpointer(ctx.store, ctx.phase.prefix, ctx.staging),
        progress=ctx.progress,
        deepspeed=ctx.config.deepspeed.model_dump(),
    )
    model.lm.save_pretrained(ctx.out / "model")
    AutoTokenizer.from_pretrained(upstream).save_pretrained(ctx.out / "model")  # as in train_tasks
    return {"steps": result.steps, "final_loss": result.final_loss, "train_tokens": result.train_tokens}
