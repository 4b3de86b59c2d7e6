"""Fixture datasets in the real Hugging Face schemas (xtreme-facts.md section 5), written as JSON lines
at `<root>/<dataset id>/<config>/<split>.jsonl` and read through the same `datasets` loading and the
same adapters as the real data. Deterministic: the same call writes the same bytes.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from xstilts.data import lexicon as lx
from xstilts.data.lexicon import FIXTURE_LANGUAGES, Clause

__all__ = ["FIXTURE_LANGUAGES", "fixture_file", "fixtures_root", "write_fixtures"]

FIXTURES_VERSION = 2
NLI = ("entailment", "neutral", "contradiction")
UPOS = "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()
PANX = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
UDPOS_NAMES = {"en": "English", "de": "German", "es": "Spanish", "ru": "Russian"}
TATOEBA_ISO3 = {"de": "deu", "es": "spa", "ru": "rus"}
SIZES = {"tiny": 1, "small": 4}

Rows = list[dict[str, Any]]


def fixture_file(root: Path, dataset: str, config: str | None, split: str) -> Path:
    return Path(root) / dataset / (config or "default") / f"{split}.jsonl"


def fixtures_root(size: str = "tiny") -> Path:
    """Where fixtures live for a run: `$XSTILTS_FIXTURES`, else a per-user cache (written on first use)."""
    env = os.environ.get("XSTILTS_FIXTURES")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XSTILTS_CACHE", Path.home() / ".cache" / "xstilts"))
    return cache / "fixtures" / f"v{FIXTURES_VERSION}-{size}"


# ---- generators: one per dataset schema --------------------------------------------------------------


def _nli_pair(rng: random.Random, lang: str, clause: Clause, label: int) -> tuple[str, str]:
    """entailment: the hypothesis restates the premise without its details; contradiction: it negates
    it; neutral: it hedges it (the premise cannot settle it)."""
    premise = lx.text(lx.realise(clause, lang))
    core = Clause(clause.subject, clause.verb, clause.obj)
    if label == 0:
        hyp = lx.realise(core, lang)
    elif label == 2:
        hyp = lx.realise(core, lang, negation=rng.choice(lx.NEGATIONS))
    else:
        hyp = lx.realise(core, lang, hedge=rng.choice(lx.HEDGES))
    return premise, lx.text(hyp)


def mnli(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        label = idx % 3
        premise, hypothesis = _nli_pair(rng, "en", lx.random_clause(rng), label)
        rows.append({"premise": premise, "hypothesis": hypothesis, "label": label, "idx": idx})
    rng.shuffle(rows)
    return rows


def xnli(n_per_lang: int, seed: int) -> Rows:
    rng = random.Random(seed)
    clauses = [(lx.random_clause(rng), i % 3, rng.random()) for i in range(n_per_lang)]
    rows = []
    for lang in FIXTURE_LANGUAGES:
        for clause, label, r in clauses:
            premise, hypothesis = _nli_pair(random.Random(r), lang, clause, label)
            rows.append({"language": lang, "sentence1": premise, "sentence2": hypothesis, "gold_label": NLI[label]})
    return rows


def pawsx(n: int, seed: int, lang: str) -> Rows:
    """Paraphrase (1): the place phrase moves, the meaning stays; not a paraphrase (0): the reordered
    sentence is also negated."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        clause = lx.random_clause(rng, place=False)
        clause = Clause(clause.subject, clause.verb, clause.obj, clause.adjective, rng.choice(lx.PLACES))
        s1 = lx.text(lx.realise(clause, lang))
        label = i % 2
        negation = None if label else rng.choice(lx.NEGATIONS)
        s2 = lx.text(lx.realise(clause, lang, place_first=True, negation=negation))
        rows.append({"sentence1": s1, "sentence2": s2, "label": str(label)})
    return rows


def _entity(rng: random.Random, lang: str) -> list[tuple[str, str]]:
    kind = rng.choice(["PER", "ORG", "LOC"])
    if kind == "PER":
        names = [rng.choice(lx.FIRST_NAMES)] + ([rng.choice(lx.SURNAMES)] if rng.random() < 0.5 else [])
    else:
        names = [rng.choice(lx.ORGS if kind == "ORG" else lx.PLACES)]
    return [(lx.name_word(w, lang), ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(names)]


def panx(n: int, seed: int, lang: str) -> Rows:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        subject = _entity(rng, lang)
        verb = [(lx.content_word(rng.choice(lx.VERBS), lang), "O")]
        obj = _entity(rng, lang) if rng.random() < 0.5 else [(w, "O") for w in lx.words(lx.noun_phrase(rng.choice(lx.NOUNS), lang))]
        tail = [(lx.function_word("in", lang), "O")] + _entity(rng, lang) if rng.random() < 0.5 else []
        pairs = subject + verb + obj + tail + [(".", "O")]
        rows.append({"tokens": [w for w, _ in pairs], "ner_tags": [PANX.index(t) for _, t in pairs],
                     "langs": [lang] * len(pairs)})
    return rows


def udpos(n: int, seed: int, lang: str) -> Rows:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        pairs = lx.realise(lx.random_clause(rng), lang)
        if rng.random() < 0.3:
            second = lx.realise(lx.random_clause(rng), lang)
            pairs = pairs[:-1] + [(lx.function_word("and", lang), "CCONJ")] + second
        rows.append({"tokens": lx.words(pairs), "pos_tags": [UPOS.index(t) for _, t in pairs]})
    return rows


def _qa_items(rng: random.Random, n: int) -> list[tuple[list[Clause], int, str]]:
    items = []
    for _ in range(n):
        subjects = rng.sample(lx.NOUNS, 3)
        clauses = []
        for s in subjects:
            c = lx.random_clause(rng)
            clauses.append(Clause(s, c.verb, rng.choice([x for x in lx.NOUNS if x not in subjects]), c.adjective, c.place))
        items.append((clauses, rng.randrange(3), rng.choice(["what", "who"])))
    return items


def _qa_row(clauses: list[Clause], target: int, qtype: str, lang: str, qid: str) -> dict[str, Any]:
    parts = [lx.text(lx.realise(c, lang)) for c in clauses]
    context = " ".join(parts)
    clause = clauses[target]
    fw = lx.function_word
    if qtype == "what":  # what does the <subject> <verb> ? -> the object
        question = [fw("what", lang), fw("does", lang)] + lx.words(lx.noun_phrase(clause.subject, lang))
        question += [lx.content_word(clause.verb, lang), "?"]
        answer = lx.text(lx.noun_phrase(clause.obj, lang))
        # the object phrase follows the verb in the target clause
        anchor = lx.text(lx.noun_phrase(clause.subject, lang, clause.adjective)) + " " + lx.content_word(clause.verb, lang) + " "
    else:  # who <verb> the <object> ? -> the subject (without its adjective)
        question = [fw("who", lang), lx.content_word(clause.verb, lang)] + lx.words(lx.noun_phrase(clause.obj, lang)) + ["?"]
        answer = lx.content_word(clause.subject, lang)
        anchor = ""
    clause_start = sum(len(p) + 1 for p in parts[:target])
    if anchor:
        start = clause_start + len(anchor)
    else:
        start = context.index(answer, clause_start)
    assert context[start : start + len(answer)] == answer
    return {"id": qid, "title": "fixture", "context": context, "question": " ".join(question),
            "answers": {"answer_start": [start], "text": [answer]}}


def squad(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    return [_qa_row(c, t, q, "en", f"squad-{seed}-{i}") for i, (c, t, q) in enumerate(_qa_items(rng, n))]


def xquad(n: int, seed: int, lang: str) -> Rows:
    rng = random.Random(seed)
    return [_qa_row(c, t, q, lang, f"xquad-{i}") for i, (c, t, q) in enumerate(_qa_items(rng, n))]


def hellaswag(n: int, seed: int, split: str) -> Rows:
    """The right ending talks about the context's subject; distractors about animals it never mentions."""
    rng = random.Random(seed)
    rows = []
    for ind in range(n):
        clause = lx.random_clause(rng)
        ctx = lx.text(lx.realise(clause, "en"))
        others = rng.sample([x for x in lx.NOUNS if x not in (clause.subject, clause.obj)], 3)
        label = rng.randrange(4)
        endings = [f"the {noun} is {rng.choice(lx.ADJECTIVES)} ." for noun in others]
        endings.insert(label, f"the {clause.subject} is {rng.choice(lx.ADJECTIVES)} .")
        rows.append({
            "ind": ind, "activity_label": "fixture", "ctx_a": ctx, "ctx_b": "", "ctx": ctx, "endings": endings,
            "source_id": f"fixture~{ind}", "split": split, "split_type": "indomain", "label": str(label),
        })  # fmt: skip
    return rows


def sst2(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        label = idx % 2
        adj = rng.choice(lx.POSITIVE if label else lx.NEGATIVE)
        sentence = f"the {rng.choice(lx.NOUNS)} is {adj} ."
        rows.append({"sentence": sentence, "label": label, "idx": idx})
    return rows


def qqp(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        clause = lx.random_clause(rng, adjective=False, place=False)
        q1 = f"who {clause.verb} the {clause.obj} ?"
        label = idx % 2
        q2 = q1 if label else f"who {clause.verb} the {rng.choice([x for x in lx.NOUNS if x != clause.obj])} ?"
        rows.append({"question1": q1, "question2": q2, "label": label, "idx": idx})
    return rows


def tatoeba(n: int, seed: int, lang: str) -> Rows:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        clause = lx.random_clause(rng)
        rows.append({"source_sentence": lx.text(lx.realise(clause, lang)), "target_sentence": lx.text(lx.realise(clause, "en")),
                     "source_lang": TATOEBA_ISO3[lang], "target_lang": "eng"})
    return rows


def _datasets(scale: int) -> Iterator[tuple[str, str | None, str, Callable[[], Rows]]]:
    s = scale
    xt = "google/xtreme"
    yield "nyu-mll/glue", "mnli", "train", lambda: mnli(2000 * s, 1)
    yield "nyu-mll/glue", "mnli", "validation_matched", lambda: mnli(200, 2)
    yield "nyu-mll/glue", "sst2", "train", lambda: sst2(400 * s, 3)
    yield "nyu-mll/glue", "sst2", "validation", lambda: sst2(100, 4)
    yield "nyu-mll/glue", "qqp", "train", lambda: qqp(400 * s, 5)
    yield "nyu-mll/glue", "qqp", "validation", lambda: qqp(100, 6)
    yield "rajpurkar/squad", "plain_text", "train", lambda: squad(800 * s, 7)
    yield "rajpurkar/squad", "plain_text", "validation", lambda: squad(100, 8)
    yield "Rowan/hellaswag", None, "train", lambda: hellaswag(600 * s, 9, "train")
    yield "Rowan/hellaswag", None, "validation", lambda: hellaswag(100, 10, "val")
    yield xt, "XNLI", "validation", lambda: xnli(100, 11)
    yield xt, "XNLI", "test", lambda: xnli(150, 12)
    yield xt, "PAWS-X.en", "train", lambda: pawsx(64 * s, 13, "en")
    yield xt, "PAWS-X.en", "validation", lambda: pawsx(100, 14, "en")
    yield xt, "PAN-X.en", "train", lambda: panx(300 * s, 15, "en")
    yield xt, "PAN-X.en", "validation", lambda: panx(100, 16, "en")
    yield xt, "udpos.English", "train", lambda: udpos(300 * s, 17, "en")
    yield xt, "udpos.English", "validation", lambda: udpos(100, 18, "en")
    for lang in FIXTURE_LANGUAGES:
        yield xt, f"PAWS-X.{lang}", "test", lambda lang=lang: pawsx(150, 20, lang)
        yield xt, f"PAN-X.{lang}", "test", lambda lang=lang: panx(150, 21, lang)
        yield xt, f"udpos.{UDPOS_NAMES[lang]}", "test", lambda lang=lang: udpos(150, 22, lang)
        yield xt, f"XQuAD.{lang}", "validation", lambda lang=lang: xquad(100, 23, lang)
        if lang in TATOEBA_ISO3:
            yield xt, f"tatoeba.{TATOEBA_ISO3[lang]}", "validation", lambda lang=lang: tatoeba(100, 24, lang)


def corpus_lines(seed: int = 99, n_per_lang: int = 300) -> list[str]:
    """Multilingual text for the tokenizer and the MLM phase: every word form plus sentences."""
    rng = random.Random(seed)
    lines = []
    for lang in FIXTURE_LANGUAGES:
        lines.append(" ".join(lx.all_words(lang)))
        for _ in range(n_per_lang):
            lines.append(lx.text(lx.realise(lx.random_clause(rng), lang)))
    return lines


def write_fixtures(root: Path, size: str = "tiny") -> Path:
    """Write every fixture dataset and the corpus under `root` (idempotent; a marker is written last)."""
    root = Path(root)
    marker = root / "_FIXTURES_COMPLETE"
    if marker.is_file():
        return root
    for dataset, config, split, make in _datasets(SIZES[size]):
        path = fixture_file(root, dataset, config, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            for row in make():
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    (root / "corpus.txt").write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    marker.write_text(json.dumps({"version": FIXTURES_VERSION, "size": size}))
    return root


def ensure_fixtures(size: str = "tiny") -> Path:
    return write_fixtures(fixtures_root(size), size)
