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
from xstilts.data.lexicon import Clause
from xstilts.tasks.adapters import NLI_LABELS as NLI
from xstilts.tasks.languages import FIXTURE_LANGUAGES
from xstilts.tasks.registry import MLQA_LANGS, TATOEBA_ISO3, UDPOS_NAMES, UPOS, get_task
from xstilts.tasks.registry import PANX_TAGS as PANX

__all__ = ["FIXTURE_LANGUAGES", "fixture_file", "fixtures_root", "write_fixtures"]

FIXTURES_VERSION = 5  # 5: BUCC 2018 in its own file format; bucc18.* hold only gold pairs, as the hub
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


Make = Callable[[], Rows]
Split = tuple[str, str | None, str, Make]  # dataset id, config, split, the rows
LocalFile = tuple[str, Callable[[], str]]  # path under the root, the text
_SPLITS: list[Callable[[int], Iterator[Split]]] = []
_LOCAL_FILES: list[Callable[[], Iterator[LocalFile]]] = []
XTREME = "google/xtreme"


def fixture_splits(declare: Callable[[int], Iterator[Split]]) -> Callable[[int], Iterator[Split]]:
    """Declares, beside a generator, the hub-schema files it writes: `declare(scale)` yields (dataset,
    config, split, make); `write_fixtures` writes what every declaration yields. A task's fixture is
    declared next to the generator of its schema, not in a separate list."""
    _SPLITS.append(declare)
    return declare


def local_fixture_files(declare: Callable[[], Iterator[LocalFile]]) -> Callable[[], Iterator[LocalFile]]:
    """Declares, beside a generator, corpora that are not on the hub (in the layout a user points
    `data.<name>_path` at): `declare()` yields (path under the fixtures root, make the text)."""
    _LOCAL_FILES.append(declare)
    return declare


def fixture_splits_declared(scale: int = 1) -> Iterator[Split]:
    """Every declared hub-schema fixture file."""
    for declare in _SPLITS:
        yield from declare(scale)


def local_files_declared() -> Iterator[LocalFile]:
    """Every declared local-corpus fixture file."""
    for declare in _LOCAL_FILES:
        yield from declare()


def _train_and_validation(s: int) -> tuple[tuple[str, int, int], ...]:
    return ("train", 200 * s, 43), ("validation", 60, 44)


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


@fixture_splits
def _mnli_files(s: int) -> Iterator[Split]:
    yield "nyu-mll/glue", "mnli", "train", lambda: mnli(2000 * s, 1)
    yield "nyu-mll/glue", "mnli", "validation_matched", lambda: mnli(200, 2)


def xnli(n_per_lang: int, seed: int) -> Rows:
    rng = random.Random(seed)
    clauses = [(lx.random_clause(rng), i % 3, rng.random()) for i in range(n_per_lang)]
    rows = []
    for lang in FIXTURE_LANGUAGES:
        for clause, label, r in clauses:
            premise, hypothesis = _nli_pair(random.Random(r), lang, clause, label)
            rows.append(
                {"language": lang, "sentence1": premise, "sentence2": hypothesis, "gold_label": NLI[label]}
            )
    return rows


@fixture_splits
def _xnli_files(s: int) -> Iterator[Split]:
    yield XTREME, "XNLI", "validation", lambda: xnli(100, 11)
    yield XTREME, "XNLI", "test", lambda: xnli(150, 12)


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


@fixture_splits
def _pawsx_files(s: int) -> Iterator[Split]:
    yield XTREME, "PAWS-X.en", "train", lambda: pawsx(64 * s, 13, "en")
    yield XTREME, "PAWS-X.en", "validation", lambda: pawsx(100, 14, "en")
    for lang in FIXTURE_LANGUAGES:
        yield XTREME, f"PAWS-X.{lang}", "test", lambda lang=lang: pawsx(150, 20, lang)


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
        obj = (
            _entity(rng, lang)
            if rng.random() < 0.5
            else [(w, "O") for w in lx.words(lx.noun_phrase(rng.choice(lx.NOUNS), lang))]
        )
        tail = [(lx.function_word("in", lang), "O")] + _entity(rng, lang) if rng.random() < 0.5 else []
        pairs = subject + verb + obj + tail + [(".", "O")]
        rows.append(
            {
                "tokens": [w for w, _ in pairs],
                "ner_tags": [PANX.index(t) for _, t in pairs],
                "langs": [lang] * len(pairs),
            }
        )
    return rows


@fixture_splits
def _panx_files(s: int) -> Iterator[Split]:
    yield XTREME, "PAN-X.en", "train", lambda: panx(300 * s, 15, "en")
    yield XTREME, "PAN-X.en", "validation", lambda: panx(100, 16, "en")
    for lang in FIXTURE_LANGUAGES:
        yield XTREME, f"PAN-X.{lang}", "test", lambda lang=lang: panx(150, 21, lang)


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


@fixture_splits
def _udpos_files(s: int) -> Iterator[Split]:
    yield XTREME, "udpos.English", "train", lambda: udpos(300 * s, 17, "en")
    yield XTREME, "udpos.English", "validation", lambda: udpos(100, 18, "en")
    for lang in FIXTURE_LANGUAGES:
        yield XTREME, f"udpos.{UDPOS_NAMES[lang]}", "test", lambda lang=lang: udpos(150, 22, lang)


def _qa_items(rng: random.Random, n: int) -> list[tuple[list[Clause], int, str]]:
    items = []
    for _ in range(n):
        subjects = rng.sample(lx.NOUNS, 3)
        clauses = []
        for s in subjects:
            c = lx.random_clause(rng)
            clauses.append(
                Clause(
                    s, c.verb, rng.choice([x for x in lx.NOUNS if x not in subjects]), c.adjective, c.place
                )
            )
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
        anchor = (
            lx.text(lx.noun_phrase(clause.subject, lang, clause.adjective))
            + " "
            + lx.content_word(clause.verb, lang)
            + " "
        )
    else:  # who <verb> the <object> ? -> the subject (without its adjective)
        question = (
            [fw("who", lang), lx.content_word(clause.verb, lang)]
            + lx.words(lx.noun_phrase(clause.obj, lang))
            + ["?"]
        )
        answer = lx.content_word(clause.subject, lang)
        anchor = ""
    clause_start = sum(len(p) + 1 for p in parts[:target])
    if anchor:
        start = clause_start + len(anchor)
    else:
        start = context.index(answer, clause_start)
    assert context[start : start + len(answer)] == answer
    return {
        "id": qid,
        "title": "fixture",
        "context": context,
        "question": " ".join(question),
        "answers": {"answer_start": [start], "text": [answer]},
    }


def squad(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    return [_qa_row(c, t, q, "en", f"squad-{seed}-{i}") for i, (c, t, q) in enumerate(_qa_items(rng, n))]


@fixture_splits
def _squad_files(s: int) -> Iterator[Split]:
    yield "rajpurkar/squad", "plain_text", "train", lambda: squad(800 * s, 7)
    yield "rajpurkar/squad", "plain_text", "validation", lambda: squad(100, 8)


def xquad(n: int, seed: int, lang: str) -> Rows:
    rng = random.Random(seed)
    return [_qa_row(c, t, q, lang, f"xquad-{i}") for i, (c, t, q) in enumerate(_qa_items(rng, n))]


@fixture_splits
def _xquad_files(s: int) -> Iterator[Split]:
    for lang in FIXTURE_LANGUAGES:
        yield XTREME, f"XQuAD.{lang}", "validation", lambda lang=lang: xquad(100, 23, lang)


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
        rows.append(
            {
                "ind": ind,
                "activity_label": "fixture",
                "ctx_a": ctx,
                "ctx_b": "",
                "ctx": ctx,
                "endings": endings,
                "source_id": f"fixture~{ind}",
                "split": split,
                "split_type": "indomain",
                "label": str(label),
            }
        )
    return rows


@fixture_splits
def _hellaswag_files(s: int) -> Iterator[Split]:
    yield "Rowan/hellaswag", None, "train", lambda: hellaswag(600 * s, 9, "train")
    yield "Rowan/hellaswag", None, "validation", lambda: hellaswag(100, 10, "val")


def sst2(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        label = idx % 2
        adj = rng.choice(lx.POSITIVE if label else lx.NEGATIVE)
        sentence = f"the {rng.choice(lx.NOUNS)} is {adj} ."
        rows.append({"sentence": sentence, "label": label, "idx": idx})
    return rows


@fixture_splits
def _sst2_files(s: int) -> Iterator[Split]:
    yield "nyu-mll/glue", "sst2", "train", lambda: sst2(400 * s, 3)
    yield "nyu-mll/glue", "sst2", "validation", lambda: sst2(100, 4)


def qqp(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        clause = lx.random_clause(rng, adjective=False, place=False)
        q1 = f"who {clause.verb} the {clause.obj} ?"
        label = idx % 2
        q2 = (
            q1 if label else f"who {clause.verb} the {rng.choice([x for x in lx.NOUNS if x != clause.obj])} ?"
        )
        rows.append({"question1": q1, "question2": q2, "label": label, "idx": idx})
    return rows


@fixture_splits
def _qqp_files(s: int) -> Iterator[Split]:
    yield "nyu-mll/glue", "qqp", "train", lambda: qqp(400 * s, 5)
    yield "nyu-mll/glue", "qqp", "validation", lambda: qqp(100, 6)


def tatoeba(n: int, seed: int, lang: str) -> Rows:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        clause = lx.random_clause(rng)
        rows.append(
            {
                "source_sentence": lx.text(lx.realise(clause, lang)),
                "target_sentence": lx.text(lx.realise(clause, "en")),
                "source_lang": TATOEBA_ISO3[lang],
                "target_lang": "eng",
            }
        )
    return rows


# ---- generators added with the full task registry (intermediate tasks, MLQA, TyDiQA, BUCC, XTREME-R) ----


@fixture_splits
def _tatoeba_files(s: int) -> Iterator[Split]:
    for lang in FIXTURE_LANGUAGES:
        if lang in TATOEBA_ISO3:
            yield (
                XTREME,
                f"tatoeba.{TATOEBA_ISO3[lang]}",
                "validation",
                lambda lang=lang: tatoeba(100, 24, lang),
            )


def _nli_rows(n: int, seed: int, *, adversarial: float = 0.0) -> list[tuple[str, str, int]]:
    """(premise, hypothesis, label) in English. With probability `adversarial` a contradiction swaps the
    roles instead of negating, and a neutral changes the object: the surface cues no longer suffice."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = i % 3
        clause = lx.random_clause(rng)
        if rng.random() < adversarial and label != 0:
            premise = lx.text(lx.realise(clause, "en"))
            core = (
                clause.swapped() if label == 2 else Clause(clause.subject, clause.verb, rng.choice(lx.NOUNS))
            )
            out.append((premise, lx.text(lx.realise(Clause(core.subject, core.verb, core.obj), "en")), label))
        else:
            out.append((*_nli_pair(rng, "en", clause, label), label))
    return out


def anli(n: int, seed: int, rnd: int) -> Rows:
    rows = []
    for i, (premise, hypothesis, label) in enumerate(_nli_rows(n, seed, adversarial=0.3 * rnd)):
        rows.append(
            {
                "uid": f"r{rnd}-{seed}-{i:05d}",
                "premise": premise,
                "hypothesis": hypothesis,
                "label": label,
                "reason": "",
            }
        )
    return rows


@fixture_splits
def _anli_files(s: int) -> Iterator[Split]:
    for rnd in (1, 2, 3):
        yield "facebook/anli", "plain_text", f"train_r{rnd}", lambda rnd=rnd: anli(200 * s, 30 + rnd, rnd)
        yield "facebook/anli", "plain_text", f"dev_r{rnd}", lambda rnd=rnd: anli(60, 33 + rnd, rnd)
        yield "facebook/anli", "plain_text", f"test_r{rnd}", lambda rnd=rnd: anli(60, 36 + rnd, rnd)


def snli(n: int, seed: int) -> Rows:
    """SNLI keeps pairs without gold consensus with label -1 (dropped by the loader)."""
    rows = [{"premise": p, "hypothesis": h, "label": label} for p, h, label in _nli_rows(n, seed)]
    for row in rows[::17]:
        row["label"] = -1
    return rows


@fixture_splits
def _snli_files(s: int) -> Iterator[Split]:
    for split, n, seed in (("train", 200 * s, 40), ("validation", 60, 41), ("test", 60, 42)):
        yield "stanfordnlp/snli", "plain_text", split, lambda n=n, seed=seed: snli(n, seed)


def rte(n: int, seed: int) -> Rows:
    """entailment (0) or not_entailment (1: contradiction or neutral collapsed)."""
    return [
        {"sentence1": p, "sentence2": h, "label": int(label != 0), "idx": i}
        for i, (p, h, label) in enumerate(_nli_rows(n, seed))
    ]


@fixture_splits
def _rte_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "nyu-mll/glue", "rte", split, lambda n=n, seed=seed: rte(n, seed + 0)


def qnli(n: int, seed: int) -> Rows:
    """entailment (0): the sentence answers the question; not_entailment (1): it is about another subject."""
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        clause = lx.random_clause(rng, place=False)
        label = idx % 2
        question = f"who {clause.verb} the {clause.obj} ?"
        obj = clause.obj if label == 0 else rng.choice([x for x in lx.NOUNS if x != clause.obj])
        sentence = lx.text(lx.realise(Clause(clause.subject, clause.verb, obj, clause.adjective), "en"))
        rows.append({"question": question, "sentence": sentence, "label": label, "idx": idx})
    return rows


@fixture_splits
def _qnli_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "nyu-mll/glue", "qnli", split, lambda n=n, seed=seed: qnli(n, seed + 10)


def mrpc(n: int, seed: int) -> Rows:
    """equivalent (1): the place phrase moves; not_equivalent (0): the reordered sentence is negated."""
    return [
        {"sentence1": r["sentence1"], "sentence2": r["sentence2"], "label": int(r["label"]), "idx": i}
        for i, r in enumerate(pawsx(n, seed, "en"))
    ]


@fixture_splits
def _mrpc_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "nyu-mll/glue", "mrpc", split, lambda n=n, seed=seed: mrpc(n, seed + 20)


def cola(n: int, seed: int) -> Rows:
    """acceptable (1): a well-formed clause; unacceptable (0): its words in a scrambled order."""
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        words = lx.words(lx.realise(lx.random_clause(rng), "en"))
        label = idx % 2
        if not label:
            body = words[:-1]
            rng.shuffle(body)
            words = body + ["."]
        rows.append({"sentence": " ".join(words), "label": label, "idx": idx})
    return rows


@fixture_splits
def _cola_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "nyu-mll/glue", "cola", split, lambda n=n, seed=seed: cola(n, seed + 30)


def stsb(n: int, seed: int) -> Rows:
    """Similarity 0..5 (float): how many of subject, verb, object and place the two clauses share."""
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        a_clause = lx.random_clause(rng)
        keep = rng.randint(0, 4)
        parts = [a_clause.subject, a_clause.verb, a_clause.obj, a_clause.place]
        fresh = [rng.choice(lx.NOUNS), rng.choice(lx.VERBS), rng.choice(lx.NOUNS), rng.choice(lx.PLACES)]
        mixed = parts[:keep] + fresh[keep:]
        b_clause = Clause(mixed[0], mixed[1], mixed[2], None, mixed[3])
        rows.append(
            {
                "sentence1": lx.text(lx.realise(a_clause, "en")),
                "sentence2": lx.text(lx.realise(b_clause, "en")),
                "label": round(keep * 1.25, 2),
                "idx": idx,
            }
        )
    return rows


@fixture_splits
def _stsb_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "nyu-mll/glue", "stsb", split, lambda n=n, seed=seed: stsb(n, seed + 40)


def boolq(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        clauses = [lx.random_clause(rng) for _ in range(2)]
        asked = clauses[0]
        answer = i % 2 == 0
        obj = asked.obj if answer else rng.choice([x for x in lx.NOUNS if x != asked.obj])
        rows.append(
            {
                "question": f"does the {asked.subject} {asked.verb.removesuffix('s')} the {obj}",
                "answer": answer,
                "passage": " ".join(lx.text(lx.realise(c, "en")) for c in clauses),
            }
        )
    return rows


@fixture_splits
def _boolq_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "google/boolq", None, split, lambda n=n, seed=seed: boolq(n, seed + 50)


def _choices_about(
    rng: random.Random, clause: Clause, n_choices: int, lang: str = "en"
) -> tuple[list[str], int]:
    """Endings: the right one is about the clause's subject, the others about nouns it never mentions."""
    others = rng.sample([x for x in lx.NOUNS if x not in (clause.subject, clause.obj)], n_choices - 1)
    label = rng.randrange(n_choices)
    choices = [lx.text(lx.attribute(noun, rng.choice(lx.ADJECTIVES), lang)) for noun in others]
    choices.insert(label, lx.text(lx.attribute(clause.subject, rng.choice(lx.ADJECTIVES), lang)))
    return choices, label


def commonsense_qa(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        clause = lx.random_clause(rng, place=False)
        right = clause.obj
        wrong = rng.sample([x for x in lx.NOUNS if x not in (clause.subject, right)], 4)
        label = rng.randrange(5)
        texts = wrong[:label] + [right] + wrong[label:]
        rows.append(
            {
                "id": f"csqa-{seed}-{i:05d}",
                "question": f"what does the {clause.subject} {clause.verb} ?",
                "question_concept": clause.subject,
                "choices": {"label": list("ABCDE"), "text": texts},
                "answerKey": "ABCDE"[label],
            }
        )
    return rows


@fixture_splits
def _commonsense_qa_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "tau/commonsense_qa", None, split, lambda n=n, seed=seed: commonsense_qa(n, seed + 60)


def cosmos_qa(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        clause = lx.random_clause(rng)
        choices, label = _choices_about(rng, clause, 4)
        rows.append(
            {
                "id": f"cosmos-{seed}-{i:05d}",
                "context": lx.text(lx.realise(clause, "en")),
                "question": "what may be true ?",
                **{f"answer{k}": c for k, c in enumerate(choices)},
                "label": label,
            }
        )
    return rows


@fixture_splits
def _cosmos_qa_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "allenai/cosmos_qa", None, split, lambda n=n, seed=seed: cosmos_qa(n, seed + 70)


def swag(n: int, seed: int, split: str) -> Rows:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        clause = lx.random_clause(rng)
        choices, label = _choices_about(rng, clause, 4)
        endings = [c.split(" ", 1)[1] for c in choices]  # sent2 is "the", the endings carry the rest
        sent1 = lx.text(lx.realise(clause, "en"))
        rows.append(
            {
                "video-id": f"fixture-{i}",
                "fold-ind": str(i),
                "startphrase": f"{sent1} the",
                "sent1": sent1,
                "sent2": "the",
                "gold-source": "gold",
                **{f"ending{k}": e for k, e in enumerate(endings)},
                "label": label if split != "test" else -1,
            }
        )
    return rows


@fixture_splits
def _swag_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "allenai/swag", "regular", split, lambda n=n, seed=seed, split=split: swag(n, seed + 80, split)


def piqa(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        clause = lx.random_clause(rng, place=False)
        choices, label = _choices_about(rng, clause, 2)
        rows.append(
            {"goal": f"to help the {clause.subject}", "sol1": choices[0], "sol2": choices[1], "label": label}
        )
    return rows


@fixture_splits
def _piqa_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "ybisk/piqa", None, split, lambda n=n, seed=seed: piqa(n, seed + 90)


def social_iqa(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        clause = lx.random_clause(rng)
        choices, label = _choices_about(rng, clause, 3)
        rows.append(
            {
                "context": lx.text(lx.realise(clause, "en")),
                "question": "how would others feel ?",
                "answerA": choices[0],
                "answerB": choices[1],
                "answerC": choices[2],
                "label": str(label + 1),
            }
        )
    return rows


@fixture_splits
def _social_iqa_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "allenai/social_i_qa", None, split, lambda n=n, seed=seed: social_iqa(n, seed + 100)


def winogrande(n: int, seed: int) -> Rows:
    """'<subject> <verb> the <object> because _ is <adjective of the subject> .' with the subject among the
    options: the right option is the noun the second clause already describes."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        subject, obj = rng.sample(lx.NOUNS, 2)
        adjective = rng.choice(lx.ADJECTIVES)
        sentence = (
            f"the {adjective} {subject} {rng.choice(lx.VERBS)} the {obj} because the _ is {adjective} ."
        )
        options = [subject, obj]
        rng.shuffle(options)
        rows.append(
            {
                "sentence": sentence,
                "option1": options[0],
                "option2": options[1],
                "answer": str(options.index(subject) + 1),
            }
        )
    return rows


@fixture_splits
def _winogrande_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "allenai/winogrande", "winogrande_xl", split, lambda n=n, seed=seed: winogrande(n, seed + 110)


def race(n: int, seed: int) -> Rows:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        clauses = [lx.random_clause(rng) for _ in range(3)]
        asked = rng.choice(clauses)
        wrong = rng.sample([x for x in lx.NOUNS if x not in {c.obj for c in clauses}], 3)
        label = rng.randrange(4)
        rows.append(
            {
                "example_id": f"race-{seed}-{i:05d}",
                "article": " ".join(lx.text(lx.realise(c, "en")) for c in clauses),
                "answer": "ABCD"[label],
                "question": f"what does the {asked.subject} {asked.verb} ?",
                "options": wrong[:label] + [asked.obj] + wrong[label:],
            }
        )
    return rows


@fixture_splits
def _race_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "ehovy/race", "all", split, lambda n=n, seed=seed: race(n, seed + 120)


def _copa_row(rng: random.Random, lang: str, idx: int) -> dict[str, Any]:
    clause = lx.random_clause(rng, place=False)
    choices, label = _choices_about(rng, clause, 2, lang)
    return {
        "premise": lx.text(lx.realise(clause, lang)),
        "choice1": choices[0],
        "choice2": choices[1],
        "question": rng.choice(["cause", "effect"]),
        "idx": idx,
        "label": label,
    }


def copa(n: int, seed: int) -> Rows:
    """aps/super_glue copa (premise, choice1, choice2, question cause|effect, idx, label)."""
    rng = random.Random(seed)
    return [_copa_row(rng, "en", idx) for idx in range(n)]


@fixture_splits
def _copa_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "aps/super_glue", "copa", split, lambda n=n, seed=seed: copa(n, seed + 130)


def xcopa(n: int, seed: int, lang: str) -> Rows:
    """cambridgeltl/xcopa rows (with `changed`), in the synthetic language standing in for an XCOPA one."""
    rng = random.Random(seed)
    return [{**_copa_row(rng, lang, idx), "changed": False} for idx in range(n)]


@fixture_splits
def _xcopa_files(s: int) -> Iterator[Split]:
    for real, synthetic in XCOPA_STAND_INS.items():
        yield "cambridgeltl/xcopa", real, "validation", lambda lang=synthetic: xcopa(40, 56, lang)
        yield "cambridgeltl/xcopa", real, "test", lambda lang=synthetic: xcopa(100, 57, lang)


def squad_v2(n: int, seed: int) -> Rows:
    """SQuAD rows, every third made unanswerable: the question asks about a subject the context lacks."""
    rng = random.Random(seed)
    rows = []
    for i, (clauses, target, qtype) in enumerate(_qa_items(rng, n)):
        row = _qa_row(clauses, target, qtype, "en", f"squad2-{seed}-{i}")
        if i % 3 == 2:
            absent = rng.choice([x for x in lx.NOUNS if all(x not in (c.subject, c.obj) for c in clauses)])
            row["question"] = f"what does the {absent} {clauses[target].verb} ?"
            row["answers"] = {"answer_start": [], "text": []}
        rows.append(row)
    return rows


@fixture_splits
def _squad_v2_files(s: int) -> Iterator[Split]:
    for split, n, seed in _train_and_validation(s):
        yield "rajpurkar/squad_v2", "squad_v2", split, lambda n=n, seed=seed: squad_v2(n, seed + 140)


def mlqa(n: int, seed: int, context_lang: str, question_lang: str) -> Rows:
    """MLQA.<context>.<question>: the same items in every pair of languages (ids shared across pairs)."""
    rows = []
    for i, (clauses, target, qtype) in enumerate(_qa_items(random.Random(seed), n)):
        row = _qa_row(clauses, target, qtype, context_lang, f"mlqa-{seed}-{i}")
        row["question"] = _qa_row(clauses, target, qtype, question_lang, row["id"])["question"]
        rows.append(row)
    return rows


@fixture_splits
def _mlqa_files(s: int) -> Iterator[Split]:
    for context_lang in MLQA_FIXTURE:
        for question_lang in MLQA_LANGS:
            config = f"MLQA.{context_lang}.{question_lang}"
            q = MLQA_QUESTION_STAND_INS.get(question_lang, question_lang)
            yield XTREME, config, "validation", lambda c=context_lang, q=q: mlqa(40, 50, c, q)
            yield XTREME, config, "test", lambda c=context_lang, q=q: mlqa(100, 51, c, q)


TYDIQA_FIXTURE = {"en": "english", "ru": "russian"}


def tydiqa(n_per_lang: int, seed: int) -> Rows:
    """google/xtreme `tydiqa`: one config for every language, the id prefix names the language."""
    rng = random.Random(seed)
    rows = []
    for lang, name in TYDIQA_FIXTURE.items():
        for i, (clauses, target, qtype) in enumerate(_qa_items(rng, n_per_lang)):
            rows.append(_qa_row(clauses, target, qtype, lang, f"{name}-{seed}{i:06d}-0"))
    return rows


@fixture_splits
def _tydiqa_files(s: int) -> Iterator[Split]:
    yield XTREME, "tydiqa", "train", lambda: tydiqa(200, 52)
    yield XTREME, "tydiqa", "validation", lambda: tydiqa(100, 53)


def lareqa(n_contexts: int, seed: int, lang: str) -> Rows:
    """google-research-datasets/xquad_r rows (id, context, question, answers; no title): two questions per
    paragraph, ids shared across languages (the cross-lingual id)."""
    rows = []
    for i, (clauses, target, qtype) in enumerate(_qa_items(random.Random(seed), n_contexts)):
        for t in (target, (target + 1) % len(clauses)):
            row = _qa_row(clauses, t, qtype, lang, f"xquadr-{i}-{t}")
            rows.append({k: row[k] for k in ("id", "context", "question", "answers")})
    return rows


@fixture_splits
def _lareqa_files(s: int) -> Iterator[Split]:
    for lang in FIXTURE_LANGUAGES:
        yield "google-research-datasets/xquad_r", lang, "validation", lambda lang=lang: lareqa(30, 58, lang)


BUCC_FIXTURE = ("de", "ru")


def bucc(n_gold: int, seed: int, lang: str) -> Rows:
    """BUCC's mining setting in bucc18.* row form: gold pairs plus unpaired sentences on both sides (a row
    with one side empty) and duplicates (the same text under two ids, one of them in a gold pair). Ids
    live in the *_lang fields. `bucc_files` writes these in the shared task's file format; the hub
    fixture (`bucc_gold_only`) keeps the gold pairs only, as google/xtreme's bucc18.* configs do."""
    rng = random.Random(seed)
    counter = {"src": 0, "tgt": 0}

    def next_id(side: str) -> str:
        counter[side] += 1
        return f"{lang if side == 'src' else 'en'}-{seed:03d}{counter[side]:06d}"

    rows = []
    for _ in range(n_gold):
        clause = lx.random_clause(rng)
        rows.append(
            {
                "source_sentence": lx.text(lx.realise(clause, lang)),
                "target_sentence": lx.text(lx.realise(clause, "en")),
                "source_lang": next_id("src"),
                "target_lang": next_id("tgt"),
            }
        )
    for _ in range(n_gold // 2):
        rows.append(
            {
                "source_sentence": lx.text(lx.realise(lx.random_clause(rng), lang)),
                "target_sentence": "",
                "source_lang": next_id("src"),
                "target_lang": "",
            }
        )
        rows.append(
            {
                "source_sentence": "",
                "target_sentence": lx.text(lx.realise(lx.random_clause(rng), "en")),
                "source_lang": "",
                "target_lang": next_id("tgt"),
            }
        )
    rows.append({**rows[0], "target_sentence": "", "target_lang": "", "source_lang": next_id("src")})
    rows.append({**rows[-2], "source_lang": "", "source_sentence": "", "target_lang": next_id("tgt")})
    rng.shuffle(rows)
    return rows


def bucc_gold_only(n_gold: int, seed: int, lang: str) -> Rows:
    """google/xtreme bucc18.<lang>: the gold pairs of `bucc`, nothing else."""
    return [row for row in bucc(n_gold, seed, lang) if row["source_sentence"] and row["target_sentence"]]


@fixture_splits
def _bucc_files(s: int) -> Iterator[Split]:
    for lang in BUCC_FIXTURE:
        yield XTREME, f"bucc18.{lang}", "validation", lambda lang=lang: bucc_gold_only(40, 54, lang)
        yield XTREME, f"bucc18.{lang}", "test", lambda lang=lang: bucc_gold_only(100, 55, lang)


def bucc_files(n_gold: int, seed: int, lang: str) -> dict[str, str]:
    """The BUCC 2018 files of one split (suffix -> text): `<lang>` and `en` (`id<TAB>sentence`, sorted by
    id as the shared task ships them) and `gold` (`source id<TAB>target id`)."""
    rows = bucc(n_gold, seed, lang)
    source = sorted({(r["source_lang"], r["source_sentence"]) for r in rows if r["source_sentence"]})
    target = sorted({(r["target_lang"], r["target_sentence"]) for r in rows if r["target_sentence"]})
    gold = sorted(
        (r["source_lang"], r["target_lang"]) for r in rows if r["source_sentence"] and r["target_sentence"]
    )

    def lines(pairs: list[tuple[str, str]]) -> str:
        return "".join(f"{a}\t{b}\n" for a, b in pairs)

    return {lang: lines(source), "en": lines(target), "gold": lines(gold)}


# ---- local-file corpora (not on the hub): CCG in jiant's TSV format, Mewsli-X in xtreme's JSON lines ----


@local_fixture_files
def _bucc2018_files() -> Iterator[LocalFile]:
    for lang in BUCC_FIXTURE:
        for split, (n_gold, seed) in {"sample": (40, 54), "training": (100, 55)}.items():
            for suffix in (lang, "en", "gold"):
                path = f"bucc2018/{lang}-en/{lang}-en.{split}.{suffix}"
                yield (
                    path,
                    lambda n=n_gold, seed=seed, lang=lang, suffix=suffix: bucc_files(n, seed, lang)[suffix],
                )


_CCG_SUPERTAGS = {
    "DET": "NP[nb]/N",
    "ADJ": "N/N",
    "NOUN": "N",
    "VERB": "(S[dcl]\\NP)/NP",
    "PART": "(S\\NP)\\(S\\NP)",
    "ADP": "((S\\NP)\\(S\\NP))/NP",
    "PROPN": "N",
    "ADV": "S/S",
    "CCONJ": "conj",
    "PUNCT": ".",
    "AUX": "(S\\NP)/(S\\NP)",
}


def ccg_tsv(n: int, seed: int) -> str:
    """jiant's CCG format: `space-tokenised text<TAB>space-separated supertags`, one sentence a line."""
    lines = []
    for row in udpos(n, seed, "en"):
        tags = [_CCG_SUPERTAGS[UPOS[t]] for t in row["pos_tags"]]
        lines.append(" ".join(row["tokens"]) + "\t" + " ".join(tags))
    return "\n".join(lines) + "\n"


def ccg_tags_to_id() -> str:
    return json.dumps({tag: i for i, tag in enumerate(sorted(set(_CCG_SUPERTAGS.values())))}, indent=1)


@local_fixture_files
def _ccgbank_files() -> Iterator[LocalFile]:
    yield "ccgbank/train.tsv", lambda: ccg_tsv(200, 60)
    yield "ccgbank/dev.tsv", lambda: ccg_tsv(60, 61)
    yield "ccgbank/test.tsv", lambda: ccg_tsv(60, 62)
    yield "ccgbank/tags_to_id.json", ccg_tags_to_id


MEWSLI_FIXTURE = ("en", "de", "es")


def _mewsli_entities() -> list[dict[str, Any]]:
    entities = []
    names = [(f"{first} {last}", "PER") for first, last in zip(lx.FIRST_NAMES, lx.SURNAMES * 2, strict=False)]
    names += [(org, "ORG") for org in lx.ORGS] + [(place, "LOC") for place in lx.PLACES]
    rng = random.Random(77)
    for i, (name, kind) in enumerate(names):
        what = {"PER": rng.choice(lx.NOUNS[20:]), "ORG": "company", "LOC": "city"}[kind]
        description = f"{name} is a {what} . {name} likes the {rng.choice(lx.NOUNS[:20])} ."
        first_end = description.index(" . ") + 2
        entities.append(
            {
                "entity_id": f"Q{1000 + i}",
                "title": name,
                "description": description,
                "sentence_spans": [
                    {"start": 0, "end": first_end},
                    {"start": first_end + 1, "end": len(description)},
                ],
                "description_language": "en",
                "description_url": f"https://en.wikipedia.org/wiki/Q{1000 + i}",
            }
        )
    return entities


def mewsli_entities() -> str:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in _mewsli_entities())


def _mewsli_document(
    rng: random.Random, lang: str, doc: str, entities: list[dict[str, Any]]
) -> dict[str, Any]:
    """A WikiNews-like ContextualMentions: three sentences, each opening with an entity's name."""
    sentences, mentions, offset = [], [], 0
    for k, entity in enumerate(rng.sample(entities, 3)):
        clause = lx.random_clause(rng, adjective=False, place=False)
        rest = lx.text(lx.realise(clause, lang)[len(lx.noun_phrase(clause.subject, lang)) :])
        sentence = f"{entity['title']} {rest}"
        span = {"start": offset, "end": offset + len(entity["title"]), "text": entity["title"]}
        mentions.append({"example_id": f"{doc}-{k}", "mention_span": span, "entity_id": entity["entity_id"]})
        sentences.append((offset, sentence))
        offset += len(sentence) + 1
    context = {
        "document_title": doc,
        "document_url": f"https://{lang}.wikinews.org/wiki/{doc}",
        "document_id": doc,
        "language": lang,
        "text": " ".join(s for _, s in sentences),
        "sentence_spans": [{"start": o, "end": o + len(s)} for o, s in sentences],
        "section_title": "",
    }
    return {"context": context, "mentions": mentions}


def mewsli_mentions(n_docs: int, seed: int) -> str:
    """wikinews_mentions-<split>.jsonl: one ContextualMentions per line, in each fixture language."""
    rng = random.Random(seed)
    entities = _mewsli_entities()
    docs = [
        _mewsli_document(rng, lang, f"{lang}-{seed}-{d}", entities)
        for lang in MEWSLI_FIXTURE
        for d in range(n_docs)
    ]
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)


@local_fixture_files
def _mewsli_files() -> Iterator[LocalFile]:
    yield "mewsli-x/candidate_set_entities.jsonl", mewsli_entities
    yield "mewsli-x/wikinews_mentions-dev.jsonl", lambda: mewsli_mentions(4, 63)
    yield "mewsli-x/wikinews_mentions-test.jsonl", lambda: mewsli_mentions(10, 64)


def dictionary_pairs(lang: str) -> list[tuple[str, str]]:
    """(English word, word in `lang`) for every content concept, name and function word of the lexicon
    whose form differs between the two languages (identical forms would switch nothing)."""
    concepts = lx.NOUNS + lx.VERBS + lx.ADJECTIVES + lx.POSITIVE + lx.NEGATIVE + lx.NEGATIONS + lx.HEDGES
    names = lx.FIRST_NAMES + lx.SURNAMES + lx.PLACES + lx.ORGS
    pairs = [(c, lx.content_word(c, lang)) for c in concepts]
    pairs += [(n, lx.name_word(n, lang)) for n in names]
    pairs += [(en, lx.FUNCTION_WORDS[lang][key]) for key, en in lx.FUNCTION_WORDS["en"].items()]
    return [(en, other) for en, other in pairs if other and other != en]


def muse_dictionary(source: str, target: str) -> str:
    """A MUSE-style bilingual dictionary (`source<TAB>target` per line) between English and a fixture
    language, in either direction: `muse_dictionary("en", "de")` or `muse_dictionary("de", "en")`."""
    if source == "en":
        pairs = dictionary_pairs(target)
    else:
        pairs = [(other, en) for en, other in dictionary_pairs(source)]
    return "".join(f"{a}\t{b}\n" for a, b in sorted(dict.fromkeys(pairs)))


@local_fixture_files
def _dictionary_files() -> Iterator[LocalFile]:
    for lang in FIXTURE_LANGUAGES[1:]:
        yield f"dictionaries/en-{lang}.txt", lambda lang=lang: muse_dictionary("en", lang)
        yield f"dictionaries/{lang}-en.txt", lambda lang=lang: muse_dictionary(lang, "en")


XCOPA_STAND_INS = get_task("xcopa").fixture_stand_ins  # XCOPA language -> synthetic fixture language
MLQA_FIXTURE = ("en", "de", "es")  # MLQA's fixture languages (contexts)
# G-XLT pairs: questions in a language without a synthetic counterpart are written in `ru` (another script).
MLQA_QUESTION_STAND_INS = {"ar": "ru", "hi": "ru", "vi": "ru", "zh": "ru"}


def corpus_lines(seed: int = 99, n_per_lang: int = 300) -> list[str]:
    """Multilingual text for the tokenizer and the MLM phase: every word form plus sentences."""
    rng = random.Random(seed)
    lines = []
    for lang in FIXTURE_LANGUAGES:
        lines.append(" ".join(lx.all_words(lang)))
        for _ in range(n_per_lang):
            lines.append(lx.text(lx.realise(lx.random_clause(rng), lang)))
    return lines


@local_fixture_files
def _mlm_corpus_files() -> Iterator[LocalFile]:
    yield "mlm-corpus/corpus.txt", lambda: "\n".join(corpus_lines()) + "\n"


def write_fixtures(root: Path, size: str = "tiny") -> Path:
    """Write every fixture dataset and the corpus under `root` (idempotent; a marker is written last)."""
    root = Path(root)
    marker = root / "_FIXTURES_COMPLETE"
    if marker.is_file():
        return root
    for dataset, config, split, make in fixture_splits_declared(SIZES[size]):
        path = fixture_file(root, dataset, config, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            for row in make():
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    for relative, make_text in local_files_declared():
        _write_text(root / relative, make_text())
    (root / "corpus.txt").write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    marker.write_text(json.dumps({"version": FIXTURES_VERSION, "size": size}))
    return root


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def ensure_fixtures(size: str = "tiny") -> Path:
    return write_fixtures(fixtures_root(size), size)
