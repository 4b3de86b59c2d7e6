"""Intermediate, target and MLM phases: build the model from the upstream encoder, train with the
shared loop, save the selected model. Target phases load the encoder only (fresh heads)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xstilts.augment.examples import augment_examples
from xstilts.data.cache import cached_features
from xstilts.data.features import featurize
from xstilts.data.load import load_examples, read_corpus, resolve_labels
from xstilts.errors import ConfigError
from xstilts.phases.context import PhaseContext
from xstilts.spec.training import TrainingConfig
from xstilts.store import Store
from xstilts.tasks import TaskDef, get_task


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


def _example_count(features: list[dict[str, Any]]) -> int:
    """Examples behind a feature list (QA windows and multiple-choice rows share an example_index)."""
    return 1 + max((f.get("example_index", -1) for f in features), default=-1)


def _stages(
    ctx: PhaseContext, tasks: list[TaskDef], config: TrainingConfig, tokenizer, tokenizer_dir: Path
) -> list[dict[str, list]]:
    """Training features per stage (task -> features). One stage, except for tasks trained in stages
    (XCOPA: SIQA, then COPA), which a phase trains one after the other on the same model and head.
    Features come from the store's feature cache (`xstilts.data.cache`): a sweep tokenizes each
    training set once, whichever phases read it."""
    data = ctx.config["data"]
    augment = ctx.config.get("augment")  # perturbed copies of the training text (xstilts.augment)
    per_task = {}
    for task in tasks:
        per_task[task.name] = []
        # As `load_training_stages`: stage i of `train_stages`, else the `train` source (stage None).
        stages = list(range(len(task.train_stages))) if task.train_stages else [None]
        for number, stage in enumerate(stages):

            def build(task: TaskDef = task, stage: int | None = stage) -> list[dict[str, Any]]:
                examples = load_examples(task, "train", data, "en", config.max_train_examples, stage=stage)
                if augment:
                    examples = augment_examples(task, examples, augment, data)
                return featurize(task, tokenizer, examples, config.max_length, config.doc_stride)

            features = cached_features(
                ctx.store,
                tokenizer_dir,
                task.name,
                "train",
                "en",
                data,
                config.max_length,
                config.doc_stride,
                build,
                limit=config.max_train_examples,
                stage=stage,
                extra={"augment": augment} if augment else None,
                on_event=ctx.progress.event,
            )
            per_task[task.name].append(features)
            ctx.progress.event(
                "data",
                task=task.name,
                stage=number,
                examples=_example_count(features),
                features=len(features),
            )
    if len(tasks) > 1 and any(len(v) > 1 for v in per_task.values()):
        raise ConfigError(
            "tasks trained in stages (e.g. xcopa) cannot be part of a multi-task mixture",
            field="intermediate",
            fix="train the staged task alone",
        )
    count = max(len(v) for v in per_task.values())
    return [{name: stages[k] for name, stages in per_task.items()} for k in range(count)]


def train_tasks(ctx: PhaseContext, tasks: list[TaskDef]) -> dict[str, Any]:
    from accelerate.utils import set_seed
    from transformers import AutoTokenizer

    from xstilts.modeling.model import MultiTaskModel, load_encoder
    from xstilts.train.checkpoint import Checkpointer
    from xstilts.train.loop import train

    config = TrainingConfig.model_validate(ctx.config["training"])
    data = ctx.config["data"]
    seed = int(ctx.config["seed"])
    upstream = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(upstream)
    tasks = [resolve_labels(t, data) for t in tasks]  # CCG's supertag set comes from its data
    stages = _stages(ctx, tasks, config, tokenizer, upstream)

    set_seed(seed)
    model = MultiTaskModel(load_encoder(upstream), tasks, config.adversarial, config.adversarial_weight)
    stage_steps = []
    for number, features in enumerate(stages):
        last = number == len(stages) - 1
        prefix = ctx.phase.prefix if last else f"{ctx.phase.prefix}/stage-{number}"
        staging = ctx.staging if last else ctx.staging / f"stage-{number}"
        model, result = train(
            model,
            features,
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
            deepspeed=ctx.config.get("deepspeed"),
        )
        stage_steps.append(result.steps)
    model.save(ctx.out / "model", tokenizer)
    return {
        "tasks": [t.name for t in tasks],
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
    return train_tasks(ctx, [get_task(name) for name in ctx.config["tasks"]])


def run_target(ctx: PhaseContext) -> dict[str, Any]:
    return train_tasks(ctx, [get_task(ctx.config["task"])])


def mask_tokens(
    input_ids: list[int], tokenizer, probability: float, rng: random.Random
) -> tuple[list[int], list[int]]:
    """BERT masking (80% <mask>, 10% random, 10% kept) of non-special tokens; labels -100 elsewhere."""
    special = set(tokenizer.all_special_ids)
    ids, labels = list(input_ids), [-100] * len(input_ids)
    for i, token in enumerate(input_ids):
        if token in special or rng.random() >= probability:
            continue
        labels[i] = token
        roll = rng.random()
        if roll < 0.8:
            ids[i] = tokenizer.mask_token_id
        elif roll < 0.9:
            ids[i] = rng.randrange(len(tokenizer))
    return ids, labels


def run_mlm(ctx: PhaseContext) -> dict[str, Any]:
    """Continued multilingual MLM on a text corpus (one example per line), statically masked by seed."""
    from accelerate.utils import set_seed
    from torch import nn
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from xstilts.train.checkpoint import Checkpointer
    from xstilts.train.loop import train

    config = TrainingConfig.model_validate(ctx.config["training"])
    seed = int(ctx.config["seed"])
    upstream = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(upstream)
    lines = read_corpus(ctx.config.get("corpus"), ctx.config["data"])[: config.max_train_examples]
    encoded = tokenizer(lines, truncation=True, max_length=config.max_length)["input_ids"]
    rng = random.Random(seed)
    features = []
    for ids in encoded:
        masked, labels = mask_tokens(ids, tokenizer, ctx.config["mask_probability"], rng)
        features.append({"input_ids": masked, "labels": labels})

    class MaskedLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm = AutoModelForMaskedLM.from_pretrained(upstream)

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
        deepspeed=ctx.config.get("deepspeed"),
    )
    model.lm.save_pretrained(ctx.out / "model")
    tokenizer.save_pretrained(ctx.out / "model")
    return {"steps": result.steps, "final_loss": result.final_loss, "train_tokens": result.train_tokens}
