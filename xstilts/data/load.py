"""Load a task's split as canonical examples. The production path is `datasets.load_dataset` with the
real dataset ids; fixtures are JSON-lines files in the real schemas read through `datasets` too, then
the same filters and adapters run on both."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from xstilts.data.fixtures import ensure_fixtures, fixture_file
from xstilts.errors import ConfigError, XstiltsError
from xstilts.tasks import Source, TaskDef

log = logging.getLogger(__name__)

SplitRole = Literal["train", "dev", "evaluate"]


class DataUnavailableError(XstiltsError):
    """A dataset could not be loaded (offline, missing, or a licensed corpus without a path)."""


def _load_rows(dataset: str, config: str | None, split: str, data: dict[str, Any]):
    import datasets

    if data.get("source") == "fixtures":
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


def source_for(task: TaskDef, role: SplitRole) -> Source:
    source = {"train": task.train, "dev": task.dev, "evaluate": task.evaluate}[role]
    if source is None:
        raise ConfigError(f"task '{task.name}' has no {role} split", field="task",
                          fix="check the task's role in `xstilts tasks list`")
    return source


def load_examples(
    task: TaskDef,
    role: SplitRole,
    data: dict[str, Any],
    lang: str = "en",
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Canonical examples of one task split in one language (see `xstilts.tasks.base` for the shapes)."""
    source = source_for(task, role)
    dataset, config, split = source.resolve(lang, task.config_lang(lang))
    rows = _load_rows(dataset, config, split, data)
    dev_lang = "en" if role != "evaluate" else lang
    out = []
    for row in rows:
        if source.where is not None and not source.where(row, dev_lang):
            continue
        out.append(source.adapter(row))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise DataUnavailableError(f"{task.name}: no examples for {role} in '{lang}' ({dataset}/{config}/{split})")
    return out


def read_corpus(path: str | None, data: dict[str, Any]) -> list[str]:
    """Lines of an MLM corpus: the given file, or the fixture corpus."""
    if path is None:
        path = str(ensure_fixtures(data.get("fixtures_size", "tiny")) / "corpus.txt")
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
