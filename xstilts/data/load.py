"""Load a task's split as canonical examples. The production path is `datasets.load_dataset` with the
real dataset ids; fixtures are JSON-lines files in the real schemas read through `datasets` too, then
the same filters and adapters run on both. Corpora that are not on the hub (CCGbank, Mewsli-X) are read
by their source's reader from the directory the sweep names (`data.<path_key>`), or from the fixtures."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from xstilts.data.fixtures import ensure_fixtures, fixture_file
from xstilts.errors import ConfigError, XstiltsError
from xstilts.tasks import Source, TaskDef

log = logging.getLogger(__name__)

SplitRole = Literal["train", "dev", "evaluate", "candidates"]


class DataUnavailableError(XstiltsError):
    """A dataset could not be loaded (offline, missing, or a licensed corpus without a path)."""


def _fixtures(data: dict[str, Any]) -> bool:
    return data.get("source") == "fixtures"


def _load_rows(dataset: str, config: str | None, split: str, data: dict[str, Any]):
    import datasets

    if _fixtures(data):
        root = ensure_fixtures(data.get("fixtures_size", "tiny"))
        path = fixture_file(root, dataset, config, split)
        if not path.is_file():
            raise DataUnavailableError(f"no fixture for {dataset}/{config}/{split} (looked at {path})")
        return datasets.load_dataset("json", data_files={split: str(path)}, split=split)
    try:
        return datasets.load_dataset(dataset, config, split=split)
    except Exception as exc:  # datasets raises many types (ConnectionError, FileNotFoundError, ValueError...)
        raise DataUnavailableError(
            f"cannot load {dataset} (config {config}, split {split}): {exc.__class__.__name__}: {exc}. "
            "Offline? Use `data: {source: fixtures}` or pre-populate HF_HOME"
        ) from None


def local_directory(source: Source, data: dict[str, Any]) -> Path:
    """Where a local-file source lives: `<fixtures>/<dataset>/`, or the sweep's `data.<path_key>`."""
    if _fixtures(data):
        return ensure_fixtures(data.get("fixtures_size", "tiny")) / source.dataset
    path = data.get(source.path_key or "")
    if not path:
        raise DataUnavailableError(
            f"{source.dataset} is not on the Hugging Face hub: set `data.{source.path_key}` in the sweep to "
            "the directory with its files (see xstilts/tasks/readers.py for the layout)"
        )
    directory = Path(path).expanduser()
    if not directory.is_dir():  # what the sweep says is wrong: a configuration error, never retried
        raise ConfigError(
            f"{source.dataset}: {directory} is not a directory",
            field=f"data.{source.path_key}",
            fix=f"point data.{source.path_key} at the directory holding the {source.dataset} files",
        )
    return directory


def _read_local(source: Source, split: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    assert source.reader is not None
    directory = local_directory(source, data)
    try:
        return source.reader(directory, split)
    except (FileNotFoundError, ValueError) as exc:  # missing files, or lines not in the corpus' format
        raise DataUnavailableError(f"cannot read {source.dataset} split {split}: {exc}") from None


def resolve_labels(task: TaskDef, data: dict[str, Any]) -> TaskDef:
    """The task with its label names filled in when they come from the data (CCG's supertag set); other
    tasks are returned unchanged. Call before building a model head for the task."""
    if task.label_reader is None or task.labels:
        return task
    source = task.train or task.dev
    if source is None or not source.is_local:
        raise ValueError(f"task '{task.name}' reads its labels from local files but has no local source")
    try:
        labels = task.label_reader(local_directory(source, data))
    except FileNotFoundError as exc:
        raise DataUnavailableError(f"{task.name}: cannot read its label set: {exc}") from None
    return dataclasses.replace(task, labels=tuple(labels))


def sources_for(
    task: TaskDef, role: SplitRole, lang: str = "en", stage: int | None = None
) -> tuple[Source, ...]:
    """The sources behind one role of a task (several for the treebanks of a UD-POS language)."""
    found: tuple[Source, ...]
    if role == "train" and stage is not None:
        found = task.training_sources()[stage : stage + 1]
    elif role == "train":
        found = (task.train,) if task.train is not None else ()
    elif role == "evaluate":
        found = task.evaluation_sources(lang)
    else:
        single = {"dev": task.dev, "candidates": task.candidates}[role]
        found = (single,) if single is not None else ()
    if not found:
        raise ConfigError(f"task '{task.name}' has no {role} split" + (f" (stage {stage})" if stage else ""),
                          field="task", fix="check the task's role in `xstilts tasks list`")  # fmt: skip
    return found


def _rows(task: TaskDef, source: Source, lang: str, data: dict[str, Any]) -> tuple[str, Iterable[Any]]:
    dataset, config, split = source.resolve(lang, task.config_lang(lang))
    where = f"{dataset}/{config}/{split}"
    if source.is_local:
        return where, _read_local(source, split, data)
    return where, _load_rows(dataset, config, split, data)


def load_examples(
    task: TaskDef,
    role: SplitRole,
    data: dict[str, Any],
    lang: str = "en",
    limit: int | None = None,
    stage: int | None = None,
    sample_seed: int | None = None,
) -> list[dict[str, Any]]:
    """Canonical examples of one task split in one language (see `xstilts.tasks.base` for the shapes).

    `stage` picks one source of a staged training (`TaskDef.train_stages`, XCOPA: 0 = SIQA, 1 = COPA);
    without it, "train" is the task's `train` source. `limit` caps the number of rows read (an adapter may
    turn one row into several records: LAReQA): the first `limit` rows, or with `sample_seed` a uniform
    random sample of `limit` rows (seeded, kept in their original order), so that a capped training set
    is not the first articles of an ordered corpus (SQuAD). Training and dev rows are filtered as English.
    """
    row_lang = "en" if role in ("train", "dev") else lang
    places = []
    sampled = limit is not None and sample_seed is not None
    kept: list[tuple[Source, Any, int]] = []  # (source, its rows, row index): rows are fetched again below
    for source in sources_for(task, role, lang, stage):
        where, rows = _rows(task, source, lang, data)
        places.append(where)
        for index, row in enumerate(rows):
            if limit is not None and not sampled and len(kept) >= limit:
                break
            if source.where is not None and not source.where(row, row_lang):
                continue
            kept.append((source, rows, index))
    if sampled and len(kept) > limit:  # type: ignore[operator]
        chosen = sorted(random.Random(sample_seed).sample(range(len(kept)), limit))  # type: ignore[arg-type]
        kept = [kept[i] for i in chosen]
    out: list[dict[str, Any]] = []
    for source, rows, index in kept:
        record = source.adapter(rows[index])
        out.extend(record if isinstance(record, list) else [record])
    if not out:
        raise DataUnavailableError(f"{task.name}: no examples for {role} in '{lang}' ({', '.join(places)})")
    return out


def count_examples(task: TaskDef, data: dict[str, Any], stage: int | None = None) -> int:
    """The number of English training rows of a task (after its filters): what `max_train_examples`
    and `size_match` cap. Staged tasks count their last stage."""
    if stage is None and task.train_stages:
        stage = len(task.train_stages) - 1
    total = 0
    for source in sources_for(task, "train", "en", stage):
        _, rows = _rows(task, source, "en", data)
        if source.where is None and hasattr(rows, "__len__"):
            total += len(rows)
        else:
            total += sum(1 for row in rows if source.where(row, "en"))  # type: ignore[misc]
    return total


def load_training_stages(
    task: TaskDef, data: dict[str, Any], limit: int | None = None, sample_seed: int | None = None
) -> list[list[dict[str, Any]]]:
    """English training examples per stage, in training order: one stage for most tasks; XCOPA has two
    (SIQA with 3 choices, then COPA with 2), trained one after the other on the same model and head."""
    if not task.train_stages:
        return [load_examples(task, "train", data, "en", limit, sample_seed=sample_seed)]
    return [
        load_examples(task, "train", data, "en", limit, stage=i, sample_seed=sample_seed)
        for i in range(len(task.train_stages))
    ]
