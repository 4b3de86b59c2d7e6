"""What a task is: where its data comes from, what format it has, how it is scored.

Every task is one `TaskDef` in the registry (`xstilts.tasks.registry`). A task's raw rows (Hugging Face
datasets, or local files for licensed / unpublished corpora) are turned into the canonical examples of its
format by an adapter, so the data, modeling and evaluation layers only know formats, never datasets.

Canonical examples per format:
- classification: {"text_a": str, "text_b": str | None, "label": int}
- regression: {"text_a": str, "text_b": str | None, "label": float}
- multiple_choice: {"context": str, "choices": list[str], "label": int}
- span_qa: {"id": str, "context": str, "question": str, "answers": {"text": [...], "answer_start": [...]}}
  (SQuAD v2: an unanswerable question has empty `text` / `answer_start` lists)
- tagging: {"tokens": list[str], "tags": list[int]}
- mlm: {"text": str} (a line of the MLM corpus; masked per phase and seed)
- retrieval, bitext (metrics `tatoeba_accuracy`, `bucc_f1`): {"source": str, "target": str, "source_id": str,
  "target_id": str}; for BUCC one side may be "" (an unpaired sentence of the mining setting)
- retrieval, ranking (metric `map@20`: LAReQA, Mewsli-X): {"kind": "query", "id": str, "text": str,
  "group": str} and {"kind": "candidate", "id": str, "text": str, "groups": list[str]}; a candidate is
  relevant to a query when the query's `group` is among its `groups`. An adapter may return a list of
  records (one LAReQA row is a question plus the sentences of its paragraph).

Staged training (XCOPA: SIQA, then COPA) is `TaskDef.train_stages`: sources trained one after another on
the same model and head. Labels discovered from the data (CCG supertags) are `TaskDef.label_reader`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class Format(str, Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    MULTIPLE_CHOICE = "multiple_choice"
    SPAN_QA = "span_qa"
    TAGGING = "tagging"
    RETRIEVAL = "retrieval"
    MLM = "mlm"


class Role(str, Enum):
    INTERMEDIATE = "intermediate"
    TARGET = "target"
    BOTH = "both"


Row = Mapping[str, Any]
Adapter = Callable[[Row], dict[str, Any] | list[dict[str, Any]]]
RowFilter = Callable[[Row, str], bool]
# Rows of one split read from a local directory (licensed or unpublished corpora): (directory, split).
Reader = Callable[[Path, str], list[dict[str, Any]]]
# Label names read from a local directory (e.g. CCG's tags_to_id.json).
LabelReader = Callable[[Path], tuple[str, ...]]

# Ordered difficulty scale of intermediate tasks (for research question (a)): ANLI r1 < r2 < r3, SWAG <
# HellaSwag, SNLI < ANLI. Ordinal, from each dataset's construction (adversarial filtering, rounds) and the
# gap between published model and human accuracy, not a measured quantity.
DIFFICULTY_LEVELS: tuple[str, ...] = ("easy", "medium", "hard", "harder", "hardest")


@dataclass(frozen=True)
class Source:
    """One split of one dataset. `config` and `split` may contain `{lang}` (ISO code) and `{config_lang}`
    (the dataset's own language key, from `TaskDef.config_langs`).

    Hub sources load with `datasets.load_dataset(dataset, config, split=split)`. A source with `reader`
    and `path_key` reads local files instead: from the directory named by the sweep's `data.<path_key>`,
    or, with fixtures, from `<fixtures root>/<dataset>/`.
    """

    dataset: str
    config: str | None
    split: str
    adapter: Adapter
    where: RowFilter | None = None  # keep a row for a language (XNLI keeps all languages in one config)
    reader: Reader | None = None
    path_key: str | None = None  # data-config key of the user-provided directory (e.g. "ccg_path")

    def resolve(self, lang: str, config_lang: str) -> tuple[str, str | None, str]:
        fill = {"lang": lang, "config_lang": config_lang}
        config = self.config.format(**fill) if self.config else None
        return self.dataset, config, self.split.format(**fill)

    @property
    def is_local(self) -> bool:
        return self.reader is not None


@dataclass(frozen=True)
class TaskDef:
    name: str
    role: Role
    format: Format
    metric: str
    train: Source | None  # English training data (the last stage when `train_stages` is set)
    dev: Source | None  # English dev set for model selection (BUCC: the per-language threshold split)
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
    # Ordered training sources, trained one after another on the same model and head (XCOPA: SIQA, then
    # COPA). Empty: the single source `train`.
    train_stages: tuple[Source, ...] = ()
    # Languages whose evaluation data is not in `evaluate`'s dataset (XTREME-R additions): their sources,
    # concatenated (UD-POS uses every treebank of a language, as XTREME does).
    evaluate_overrides: Mapping[str, tuple[Source, ...]] = field(default_factory=dict)
    # A retrieval pool shared by every language (Mewsli-X: the entity descriptions).
    candidates: Source | None = None
    # Labels discovered from a local directory (CCG); `labels` is then empty until resolved by
    # `xstilts.data.load.resolve_labels(task, data)`.
    label_reader: LabelReader | None = None
    # Languages per benchmark ("xtreme", "xtreme-r"); `languages` is their union.
    benchmarks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The hub's gold-pairs-only stand-ins for (dev, evaluate) when the task's own files are not given
    # (BUCC: `google/xtreme` bucc18.*); scored as `<metric>_gold_only`, never under the task's metric.
    gold_only: tuple[Source, Source] | None = None
    # Fixture stand-ins: a task language with no synthetic fixture language -> the fixture language its
    # fixture is written in (XCOPA has none of en/de/es/ru).
    fixture_stand_ins: Mapping[str, str] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        if self.format is Format.REGRESSION:
            return 1
        return len(self.labels)

    @property
    def difficulty_rank(self) -> int | None:
        return DIFFICULTY_LEVELS.index(self.difficulty) if self.difficulty in DIFFICULTY_LEVELS else None

    def benchmark_languages(self, benchmark: str) -> tuple[str, ...]:
        """The task's languages in `benchmark` ("xtreme", "xtreme-r"; "custom": every registered one)."""
        if benchmark == "custom":
            return self.languages
        return self.benchmarks.get(benchmark, ())

    def config_lang(self, lang: str) -> str:
        return self.config_langs.get(lang, lang)

    def is_intermediate(self) -> bool:
        return self.role in (Role.INTERMEDIATE, Role.BOTH)

    def is_target(self) -> bool:
        return self.role in (Role.TARGET, Role.BOTH)

    def training_sources(self) -> tuple[Source, ...]:
        """Training data in order: the stages, or the single `train` source (none for retrieval)."""
        if self.train_stages:
            return self.train_stages
        return (self.train,) if self.train is not None else ()

    def evaluation_sources(self, lang: str) -> tuple[Source, ...]:
        if lang in self.evaluate_overrides:
            return self.evaluate_overrides[lang]
        return (self.evaluate,) if self.evaluate is not None else ()


# Defaults per format (docs/defaults.md; after jiant's X-STILTs scripts). Tasks override via `hparams`.
FORMAT_HPARAMS: dict[Format, dict[str, Any]] = {
    Format.CLASSIFICATION: {"max_length": 256, "batch_size": 32},
    Format.REGRESSION: {"max_length": 256, "batch_size": 32},
    Format.MULTIPLE_CHOICE: {"max_length": 256, "batch_size": 32},
    Format.TAGGING: {"max_length": 256, "batch_size": 32},
    Format.SPAN_QA: {"max_length": 384, "batch_size": 16, "doc_stride": 128},
    Format.RETRIEVAL: {"max_length": 512, "batch_size": 32},
    Format.MLM: {"max_length": 256, "batch_size": 32},
}
