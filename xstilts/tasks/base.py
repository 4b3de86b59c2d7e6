"""What a task is: where its data comes from, what format it has, how it is scored.

Every task is one `TaskDef` in the registry (`xstilts.tasks.registry`). A task's raw Hugging Face rows
are turned into the canonical example of its format by an adapter, so the data, modeling and
evaluation layers only know formats, never individual datasets.

Canonical examples per format:
- classification: {"text_a": str, "text_b": str | None, "label": int | float}
- multiple_choice: {"context": str, "choices": list[str], "label": int}
- span_qa: {"id": str, "context": str, "question": str, "answers": {"text": [...], "answer_start": [...]}}
- tagging: {"tokens": list[str], "tags": list[int]}
- retrieval: {"source": str, "target": str, "source_id": str, "target_id": str}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Format(str, Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    MULTIPLE_CHOICE = "multiple_choice"
    SPAN_QA = "span_qa"
    TAGGING = "tagging"
    RETRIEVAL = "retrieval"


class Role(str, Enum):
    INTERMEDIATE = "intermediate"
    TARGET = "target"
    BOTH = "both"


Row = Mapping[str, Any]
Adapter = Callable[[Row], dict[str, Any]]
RowFilter = Callable[[Row, str], bool]


@dataclass(frozen=True)
class Source:
    """One split of one Hugging Face dataset. `config` and `split` may contain `{lang}` (ISO code) and
    `{config_lang}` (the dataset's own language key, from `TaskDef.config_langs`)."""

    dataset: str
    config: str | None
    split: str
    adapter: Adapter
    where: RowFilter | None = None  # keep a row for a language (XNLI keeps all languages in one config)

    def resolve(self, lang: str, config_lang: str) -> tuple[str, str | None, str]:
        fill = {"lang": lang, "config_lang": config_lang}
        config = self.config.format(**fill) if self.config else None
        return self.dataset, config, self.split.format(**fill)


@dataclass(frozen=True)
class TaskDef:
    name: str
    role: Role
    format: Format
    metric: str
    train: Source | None  # English training data (None for retrieval targets)
    dev: Source | None  # English dev set for model selection
    evaluate: Source | None  # per-language zero-shot evaluation split (targets)
    languages: tuple[str, ...] = ("en",)
    labels: tuple[str, ...] = ()
    config_langs: Mapping[str, str] = field(default_factory=dict)  # ISO code -> dataset language key
    hparams: Mapping[str, Any] = field(default_factory=dict)  # defaults that differ from the format's
    description: str = ""
    domain: str = ""
    difficulty: str = ""
    source: str = ""
    # Evaluation of retrieval targets runs straight from the intermediate (or base) encoder.
    needs_target_training: bool = True

    @property
    def num_labels(self) -> int:
        if self.format is Format.REGRESSION:
            return 1
        return len(self.labels)

    def config_lang(self, lang: str) -> str:
        return self.config_langs.get(lang, lang)

    def is_intermediate(self) -> bool:
        return self.role in (Role.INTERMEDIATE, Role.BOTH)

    def is_target(self) -> bool:
        return self.role in (Role.TARGET, Role.BOTH)


# Defaults per format (DESIGN.md section 4, jiant's X-STILTs scripts). Tasks override via `hparams`.
FORMAT_HPARAMS: dict[Format, dict[str, Any]] = {
    Format.CLASSIFICATION: {"max_length": 256, "batch_size": 32},
    Format.REGRESSION: {"max_length": 256, "batch_size": 32},
    Format.MULTIPLE_CHOICE: {"max_length": 256, "batch_size": 32},
    Format.TAGGING: {"max_length": 256, "batch_size": 32},
    Format.SPAN_QA: {"max_length": 384, "batch_size": 16, "doc_stride": 128},
    Format.RETRIEVAL: {"max_length": 512, "batch_size": 32},
}
