"""Readers of corpora that are not on the Hugging Face hub: the user points the sweep at a directory
(`data.ccg_path`, `data.mewsli_x_path`); fixtures write the same files. Light: stdlib only.

CCG (CCGbank is LDC-licensed; jiant has no downloader): jiant's format, one sentence per line,
`space-tokenised text<TAB>space-separated supertags`, in `train.tsv`, `dev.tsv`, `test.tsv`, plus jiant's
`tags_to_id.json` ({supertag: id}). The label set is read from `tags_to_id.json`; without it, it is the
sorted set of supertags in every split file present, so the ids are stable for a given corpus.

Mewsli-X (XTREME-R; built by google-research's `get-mewsli-x.sh`, not on the hub): the files xtreme's
`download_mewslix_data.sh` collects, `wikinews_mentions-{dev,test}.jsonl` (one ContextualMentions per
line: {"context": {...}, "mentions": [...]}) and `candidate_set_entities.jsonl` (one Entity per line).
Mentions are unnested to one ContextualMention per row, as xtreme's loader does.

BUCC 2018 (`data.bucc_path`; the hub's `bucc18.*` configs hold only the gold pairs): the shared task's
own files, as its `bucc2018-<xx>-en.{sample,training}-gold.tar.bz2` archives unpack them:
`<xx>-en/<xx>-en.<split>.<xx>` and `<xx>-en.<split>.en` (one `id<TAB>sentence` per line, every sentence of
that side) and `<xx>-en.<split>.gold` (`source id<TAB>target id` per gold pair), split `sample` (the dev
split, for the threshold) or `training` (the test split). The `<xx>-en/` folder may be left out.

MLM corpus (`mlm.corpus`): a text file, one example per line (a directory: its `corpus.txt`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CCG_SPLITS = ("train", "dev", "test")
CCG_TAGS_FILE = "tags_to_id.json"
MEWSLI_CANDIDATES = "candidate_set_entities.jsonl"


def _missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"{path} does not exist")


def ccg_labels(directory: Path) -> tuple[str, ...]:
    """Supertags in id order: jiant's tags_to_id.json, else the sorted tag set of the split files."""
    tags_file = Path(directory) / CCG_TAGS_FILE
    if tags_file.is_file():
        tags_to_id = {tag: int(i) for tag, i in json.loads(tags_file.read_text(encoding="utf-8")).items()}
        return tuple(sorted(tags_to_id, key=tags_to_id.__getitem__))
    tags: set[str] = set()
    for split in CCG_SPLITS:
        path = Path(directory) / f"{split}.tsv"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    tags.update(line.split("\t")[1].split())
    if not tags:
        raise _missing(Path(directory) / "train.tsv")
    return tuple(sorted(tags))


def ccg_rows(directory: Path, split: str) -> list[dict[str, Any]]:
    """`{"tokens": [...], "tag_ids": [...]}` per line of `<split>.tsv` (tag ids from `ccg_labels`)."""
    path = Path(directory) / f"{split}.tsv"
    if not path.is_file():
        raise _missing(path)
    tag_id = {tag: i for i, tag in enumerate(ccg_labels(directory))}
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        text, tags = line.rstrip("\n").split("\t")
        tokens, tag_list = text.split(" "), tags.split()
        if len(tokens) != len(tag_list):
            raise ValueError(f"{path}:{number}: {len(tokens)} tokens but {len(tag_list)} supertags")
        rows.append({"tokens": tokens, "tag_ids": [tag_id[t] for t in tag_list]})
    return rows


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise _missing(path)
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def mewsli_mentions(directory: Path, split: str) -> list[dict[str, Any]]:
    """One `{"context": ..., "mention": ...}` row per mention of `wikinews_mentions-<split>.jsonl`."""
    rows = []
    for record in _jsonl(Path(directory) / f"wikinews_mentions-{split}.jsonl"):
        rows.extend({"context": record["context"], "mention": mention} for mention in record["mentions"])
    return rows


def mewsli_entities(directory: Path, _split: str) -> list[dict[str, Any]]:
    return _jsonl(Path(directory) / MEWSLI_CANDIDATES)


BUCC_SPLITS = ("sample", "training")


def _bucc_file(directory: Path, pair: str, split: str, suffix: str) -> Path:
    for path in (directory / pair / f"{pair}.{split}.{suffix}", directory / f"{pair}.{split}.{suffix}"):
        if path.is_file():
            return path
    raise _missing(directory / pair / f"{pair}.{split}.{suffix}")


def _bucc_sentences(path: Path) -> dict[str, str]:
    sentences: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        sid, tab, text = line.partition("\t")
        if not tab:
            raise ValueError(f"{path}:{number}: expected `id<TAB>sentence`")
        sentences[sid.strip()] = text.strip()
    return sentences


def bucc_rows(directory: Path, split: str) -> list[dict[str, Any]]:
    """Every sentence of both sides of `<xx>-en.<split>`: one row per gold pair (both sides), then one row
    per sentence in no gold pair (the other side empty), in file order. `split` is `<xx>-en.sample` or
    `<xx>-en.training`."""
    pair, _, name = split.rpartition(".")
    source_lang = pair.split("-")[0]
    if name not in BUCC_SPLITS or not pair:
        raise ValueError(f"BUCC split must be '<xx>-en.sample' or '<xx>-en.training', got {split!r}")
    directory = Path(directory)
    source = _bucc_sentences(_bucc_file(directory, pair, name, source_lang))
    target = _bucc_sentences(_bucc_file(directory, pair, name, "en"))
    gold_path = _bucc_file(directory, pair, name, "gold")
    rows, paired_src, paired_tgt = [], set(), set()
    for number, line in enumerate(gold_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        sid, _, tid = (part.strip() for part in line.partition("\t"))
        if sid not in source or tid not in target:
            raise ValueError(f"{gold_path}:{number}: gold pair {sid} / {tid} is not in the sentence files")
        rows.append({"source": source[sid], "target": target[tid], "source_id": sid, "target_id": tid})
        paired_src.add(sid)
        paired_tgt.add(tid)
    rows += [{"source": text, "target": "", "source_id": sid, "target_id": ""}
             for sid, text in source.items() if sid not in paired_src]  # fmt: skip
    rows += [{"source": "", "target": text, "source_id": "", "target_id": tid}
             for tid, text in target.items() if tid not in paired_tgt]  # fmt: skip
    return rows


MLM_CORPUS_FILE = "corpus.txt"


def corpus_rows(path: Path, _split: str) -> list[dict[str, Any]]:
    """`{"text": line}` per non-empty line of the corpus file (a directory: its corpus.txt)."""
    path = Path(path)
    if path.is_dir():
        path = path / MLM_CORPUS_FILE
    if not path.is_file():
        raise _missing(path)
    with open(path, encoding="utf-8") as handle:
        return [{"text": line.strip()} for line in handle if line.strip()]
