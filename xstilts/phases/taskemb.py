"""The task-embedding phase (one per encoder and task), after Vu et al. 2020, "Exploring and Predicting
Transferability across NLP Tasks":

- `text_embedding`: the mean sentence embedding of a seeded sample of the task's English text (mean
  over the non-padding tokens of the encoder's retrieval layer, then over the sample): TextEmb;
- `task_embedding`: the diagonal (empirical) Fisher information of the task's loss with respect to the
  encoder's parameters, averaged over a seeded sample of training examples, one example per backward
  pass: TaskEmb. The loss comes from a freshly initialised head for the task (seeded), as in a
  fine-tuning run's first step. The word embeddings are left out (sparse, vocabulary-sized). The Fisher
  vector of a real encoder has ~10^8 entries, so it is stored as a signed count sketch of
  `sketch_dim` buckets (a seeded random projection that keeps inner products, hence cosines, in
  expectation), L2-normalised.

Tasks without training data (the retrieval targets) get the TextEmb only (`task_embedding` is null).
Outputs: `metrics.json` with both vectors (lists of floats) and the sample sizes.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np

from xstilts.data.features import featurize, retrieval
from xstilts.phases.context import PhaseContext
from xstilts.tasks import Format, TaskDef, get_task

EMBED_MAX_LENGTH = 128


def _sample(items: list[Any], size: int, seed: int) -> list[Any]:
    if len(items) <= size:
        return list(items)
    return random.Random(seed).sample(items, size)


def _name_seed(name: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2**63 - 1)


def sketch(named: list[tuple[str, Any]], dim: int, seed: int) -> np.ndarray:
    """Signed count sketch of the concatenation of the tensors in `named` (name -> flat values): entry i
    of tensor `name` adds sign(name, i) * value to bucket h(name, i). Seeded per tensor name, so the same
    parameter always hashes alike whatever else the model has."""
    import torch

    out = torch.zeros(dim, dtype=torch.float64)
    for name, values in named:
        flat = values.detach().reshape(-1).to(torch.float64).cpu()
        generator = torch.Generator().manual_seed(_name_seed(name, seed))
        buckets = torch.randint(0, dim, (flat.numel(),), generator=generator)
        signs = torch.randint(0, 2, (flat.numel(),), generator=generator).to(torch.float64) * 2 - 1
        out.index_add_(0, buckets, flat * signs)
    vector = out.numpy()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _training_examples(task: TaskDef, data: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    from xstilts.data.load import load_training_stages

    if not task.training_sources():
        return []
    return load_training_stages(task, data, limit)[-1]


def fisher_diagonal(
    model, task: TaskDef, features: list[dict[str, Any]], pad_token_id: int
) -> dict[str, Any]:
    """name -> mean over `features` of the squared gradient of the task loss (one example at a time) for
    every encoder parameter but the word embeddings."""
    import torch

    from xstilts.data.batching import collate

    params = {
        n: p for n, p in model.encoder.named_parameters() if p.requires_grad and "word_embeddings" not in n
    }
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    device = next(model.parameters()).device
    model.eval()  # no dropout: the same sample gives the same embedding
    used = 0
    for feature in features:
        batch = {k: v.to(device) for k, v in collate([feature], pad_token_id).items()}
        model.zero_grad(set_to_none=True)
        _, loss = model(task.name, batch)
        if loss is None or not torch.isfinite(loss):
            continue  # e.g. a QA window with no answer span
        loss.backward()
        for name, param in params.items():
            if param.grad is not None:
                fisher[name] += param.grad.detach() ** 2
        used += 1
    if used:
        for name in fisher:
            fisher[name] /= used
    return {"fisher": fisher, "examples": used}


def run(ctx: PhaseContext) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    from xstilts.data.load import resolve_labels
    from xstilts.evaluate.predict import embed
    from xstilts.modeling.model import MultiTaskModel, load_encoder
    from xstilts.phases.analysis import english_texts
    from xstilts.phases.evaluate import retrieval_layer

    config = ctx.config
    data, seed = config.data, int(config.seed)
    task = resolve_labels(get_task(config.task), data)
    model_dir = ctx.upstream_model("encoder")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = load_encoder(model_dir)
    layer = retrieval_layer(encoder.config.num_hidden_layers, config.retrieval_layer)

    texts = _sample(english_texts(task, data, int(config.max_pool)), int(config.text_examples), seed)
    vectors = embed(encoder, retrieval(tokenizer, texts, EMBED_MAX_LENGTH), tokenizer.pad_token_id, layer)
    text_embedding = vectors.mean(axis=0) if len(vectors) else np.zeros(encoder.config.hidden_size)
    ctx.progress.event("text_embedding", task=task.name, examples=len(texts))

    task_embedding, fisher_examples = None, 0
    examples = _training_examples(task, data, int(config.max_pool))
    if examples and task.format is not Format.MLM:
        sample = _sample(examples, int(config.fisher_examples), seed)
        features = featurize(task, tokenizer, sample, int(config.max_length), int(config.doc_stride))
        torch.manual_seed(seed)  # the fresh head's initialisation
        model = MultiTaskModel(encoder, [task], pretrained=model_dir)
        result = fisher_diagonal(model, task, features, tokenizer.pad_token_id)
        fisher_examples = result["examples"]
        if fisher_examples:
            named = sorted(result["fisher"].items())
            task_embedding = sketch(named, int(config.sketch_dim), seed)
        ctx.progress.event("task_embedding", task=task.name, examples=fisher_examples)
    return {
        "task": task.name,
        "layer": layer,
        "text_examples": len(texts),
        "fisher_examples": fisher_examples,
        "text_embedding": [round(float(v), 7) for v in text_embedding],
        "task_embedding": [round(float(v), 7) for v in task_embedding]
        if task_embedding is not None
        else None,
    }
