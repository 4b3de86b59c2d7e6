"""Task-embedding phases (`taskemb`, one per encoder and task): how they are planned, and reading the
finished ones back from the store."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from xstilts.plan.configs import TaskembConfig
from xstilts.plan.phase import Phase, content_address
from xstilts.spec.cluster import ResourcePreset
from xstilts.store import Store, join_key

# The sample sizes behind both embeddings: small on purpose (seconds per task on a GPU); part of the
# phase's address, so changing them computes new embeddings instead of mixing old and new.
TASKEMB_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "text_examples": 256,
    "fisher_examples": 64,
    "max_pool": 2000,
    "max_length": 128,
    "doc_stride": 64,
    "sketch_dim": 4096,
}


def taskemb_phase(
    encoder: Phase, task: str, *, retrieval_layer: int | None = None, resources: ResourcePreset | None = None
) -> Phase:
    """The taskemb phase of `task` under the encoder phase `encoder` (its data settings too)."""
    data = encoder.config.dump().get("data") or {"source": "hub"}
    config = TaskembConfig(task=task, data=data, retrieval_layer=retrieval_layer, **TASKEMB_DEFAULTS).dump()
    inputs = {"encoder": encoder.address}
    return Phase(
        kind="taskemb",
        address=content_address("taskemb", config, inputs),
        label=task,
        config=config,
        inputs=inputs,
        resources=resources or ResourcePreset(),
        settings=[encoder.label],
    )


def read_embeddings(store: Store, phase: Phase) -> dict[str, np.ndarray | None]:
    """{"text": TextEmb, "task": TaskEmb or None} of a complete taskemb phase."""
    metrics = json.loads(store.get_text(join_key(phase.prefix, "metrics.json")))
    task = metrics.get("task_embedding")
    return {
        "text": np.asarray(metrics["text_embedding"], dtype=float),
        "task": np.asarray(task, dtype=float) if task is not None else None,
    }


def cosine(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None or a.shape != b.shape:
        return None
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else None
