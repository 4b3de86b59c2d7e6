"""Raw rows -> canonical examples (see `xstilts.tasks.base`). One small function per schema; field names
and value types are those of the real datasets (xtreme-facts.md section 5 and each dataset card)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from xstilts.tasks.base import Row

NLI_LABELS = ("entailment", "neutral", "contradiction")
# google/xtreme `tydiqa` mixes languages; the id prefix names the language.
TYDIQA_PREFIX = {
    "ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian", "ko": "korean",
    "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip
# universal_dependencies (UD 2.7 on the hub) orders its `upos` ClassLabel differently from google/xtreme.
UD_UPOS_NAMES = "NOUN PUNCT ADP NUM SYM SCONJ ADJ PART DET CCONJ PROPN PRON X _ ADV INTJ VERB AUX".split()
XTREME_UPOS = "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()
COPA_QUESTIONS = {"cause": "What was the cause of this?", "effect": "What happened as a result?"}  # jiant


# ---- classification ------------------------------------------------------------------------------


def glue_pair(first: str, second: str):
    def adapt(row: Row) -> dict[str, Any]:
        return {"text_a": row[first], "text_b": row[second], "label": int(row["label"])}

    return adapt


def glue_single(field: str):
    def adapt(row: Row) -> dict[str, Any]:
        return {"text_a": row[field], "text_b": None, "label": int(row["label"])}

    return adapt


def glue_regression(first: str, second: str):
    """STS-B: a float similarity in [0, 5]."""

    def adapt(row: Row) -> dict[str, Any]:
        return {"text_a": row[first], "text_b": row[second], "label": float(row["label"])}

    return adapt


def xnli(row: Row) -> dict[str, Any]:
    label = NLI_LABELS.index(row["gold_label"])
    return {"text_a": row["sentence1"], "text_b": row["sentence2"], "label": label}


def pawsx(row: Row) -> dict[str, Any]:
    # PAWS-X stores its label as the string "0" / "1" in google/xtreme.
    return {"text_a": row["sentence1"], "text_b": row["sentence2"], "label": int(row["label"])}


def boolq(row: Row) -> dict[str, Any]:
    # google/boolq: `answer` is a bool.
    return {"text_a": row["question"], "text_b": row["passage"], "label": int(bool(row["answer"]))}


# ---- multiple choice -----------------------------------------------------------------------------


def hellaswag(row: Row) -> dict[str, Any]:
    # The label is a string in Rowan/hellaswag ("" on the unlabelled test split).
    return {"context": row["ctx"], "choices": list(row["endings"]), "label": int(row["label"])}


def swag(row: Row) -> dict[str, Any]:
    """allenai/swag "regular": prompt sent1; choices sent2 + ending_i (jiant's SWAG)."""
    return {
        "context": row["sent1"],
        "choices": [f"{row['sent2']} {row[f'ending{i}']}" for i in range(4)],
        "label": int(row["label"]),
    }


def commonsense_qa(row: Row) -> dict[str, Any]:
    choices = row["choices"]
    return {"context": row["question"], "choices": list(choices["text"]),
            "label": list(choices["label"]).index(row["answerKey"])}  # fmt: skip


def cosmos_qa(row: Row) -> dict[str, Any]:
    return {"context": f"{row['context']} {row['question']}",
            "choices": [row[f"answer{i}"] for i in range(4)], "label": int(row["label"])}  # fmt: skip


def piqa(row: Row) -> dict[str, Any]:
    return {"context": row["goal"], "choices": [row["sol1"], row["sol2"]], "label": int(row["label"])}


def social_iqa(row: Row) -> dict[str, Any]:
    # allenai/social_i_qa: the label is the string "1" / "2" / "3".
    choices = [row["answerA"], row["answerB"], row["answerC"]]
    context = f"{row['context']} {row['question']}"
    return {"context": context, "choices": choices, "label": int(row["label"]) - 1}


def winogrande(row: Row) -> dict[str, Any]:
    """The blank "_" splits the sentence: each choice is the prefix with one option filled in, the shared
    context is the rest (jiant pairs the same two texts, choice first)."""
    prefix, suffix = row["sentence"].split("_", 1)
    return {"context": suffix.strip(), "choices": [prefix + row["option1"], prefix + row["option2"]],
            "label": int(row["answer"]) - 1}  # fmt: skip


def race(row: Row) -> dict[str, Any]:
    return {"context": f"{row['article']} {row['question']}", "choices": list(row["options"]),
            "label": "ABCD".index(row["answer"])}  # fmt: skip


def copa(row: Row) -> dict[str, Any]:
    """COPA / XCOPA: premise plus jiant's question wording; choice1 / choice2."""
    question = COPA_QUESTIONS.get(row["question"], row["question"])
    return {"context": f"{row['premise']} {question}", "choices": [row["choice1"], row["choice2"]],
            "label": int(row["label"])}  # fmt: skip


# ---- span QA and tagging -------------------------------------------------------------------------


def squad(row: Row) -> dict[str, Any]:
    answers = row["answers"]
    return {
        "id": str(row["id"]),
        "context": row["context"],
        "question": row["question"],
        "answers": {"text": list(answers["text"]), "answer_start": [int(s) for s in answers["answer_start"]]},
    }


def tagging(tag_field: str):
    def adapt(row: Row) -> dict[str, Any]:
        return {"tokens": list(row["tokens"]), "tags": [int(t) for t in row[tag_field]]}

    return adapt


def ud_upos(row: Row) -> dict[str, Any]:
    """universal_dependencies rows -> XTREME's UPOS ids. Multi-word-token lines (upos "_") are dropped and
    their syntactic words kept (XTREME's conversion keeps the fused surface forms instead)."""
    pairs = [(tok, UD_UPOS_NAMES[int(t)]) for tok, t in zip(row["tokens"], row["upos"], strict=True)]
    kept = [(tok, tag) for tok, tag in pairs if tag != "_"]
    return {"tokens": [tok for tok, _ in kept], "tags": [XTREME_UPOS.index(tag) for _, tag in kept]}


# ---- retrieval -----------------------------------------------------------------------------------


def tatoeba(row: Row) -> dict[str, Any]:
    return {
        "source": row["source_sentence"],
        "target": row["target_sentence"],
        "source_id": str(row.get("source_lang", "")),
        "target_id": str(row.get("target_lang", "")),
    }


def tatoeba_mteb(row: Row) -> dict[str, Any]:
    """mteb/tatoeba-bitext-mining (LASER's Tatoeba v1, the XTREME-R additions): sentence1 is the
    non-English side, sentence2 the English one (unchecked against the hub)."""
    return {"source": row["sentence1"], "target": row["sentence2"], "source_id": "", "target_id": ""}


def bucc(row: Row) -> dict[str, Any]:
    """google/xtreme bucc18.*: gold pairs only (no distractors: mining over them is not BUCC's task, so
    its F1 is labelled `bucc_f1_gold_only`); the *_lang fields may hold sentence ids (the 2020 script) or
    language codes. A row with one side empty is an unpaired sentence."""
    return {
        "source": row["source_sentence"],
        "target": row["target_sentence"],
        "source_id": str(row["source_lang"]) if row["source_sentence"] else "",
        "target_id": str(row["target_lang"]) if row["target_sentence"] else "",
    }


def bitext(row: Row) -> dict[str, Any]:
    """Rows of the original BUCC 2018 files (`xstilts.tasks.readers.bucc_rows`): already canonical."""
    return {k: str(row[k]) for k in ("source", "target", "source_id", "target_id")}


def text_line(row: Row) -> dict[str, Any]:
    """A line of an MLM corpus."""
    return {"text": str(row["text"])}


_SENTENCE_END = re.compile(r"(?<=[.!?。！？؟।])\s+")


def split_sentences(context: str) -> list[tuple[int, int]]:
    """Sentence spans of a paragraph. google-research-datasets/xquad_r dropped XQuAD-R's `sentence_breaks`,
    so sentences are cut after final punctuation followed by whitespace (a documented approximation)."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(context):
        spans.append((start, match.start()))
        start = match.end()
    if start < len(context):
        spans.append((start, len(context)))
    return [(s, e) for s, e in spans if context[s:e].strip()]


def lareqa(row: Row) -> list[dict[str, Any]]:
    """XQuAD-R row -> the question (group = its cross-lingual id, the XQuAD id) and one candidate per
    sentence of its paragraph; the answer sentence carries the question's group. A candidate's text is
    sentence + context, concatenated as xtreme's evaluate_retrieval.py does."""
    context = row["context"]
    qid = str(row["id"])
    start = int(row["answers"]["answer_start"][0])
    paragraph = hashlib.sha1(context.encode()).hexdigest()[:12]
    records: list[dict[str, Any]] = [{"kind": "query", "id": qid, "text": row["question"], "group": qid}]
    for pos, (s, e) in enumerate(split_sentences(context)):
        records.append({"kind": "candidate", "id": f"{paragraph}-{pos}", "text": context[s:e] + context,
                        "groups": [qid] if s <= start < e else []})  # fmt: skip
    return records


_MARKER = re.compile(r"\{(.*?)\}")


def mewsli_mention(row: Row) -> dict[str, Any]:
    """A Mewsli-X ContextualMention -> the query text of xtreme's `preprocess_mention`: the mention's own
    sentence with the mention in { } markers (existing braces escaped), the mention prepended."""
    context, mention = row["context"], row["mention"]
    span = mention["mention_span"]
    text = context["text"]
    around = [s for s in context["sentence_spans"] if s["start"] <= span["start"] and span["end"] <= s["end"]]
    sentence = around[0] if around else {"start": 0, "end": len(text)}
    left = _MARKER.sub(r"(\1)", text[sentence["start"] : span["start"]])
    right = _MARKER.sub(r"(\1)", text[span["end"] : sentence["end"]])
    query = f"{span['text']}: {left} {{ {span['text']} }} {right}"
    query = " ".join(query.splitlines()).replace("  ", " ").strip()
    return {"kind": "query", "id": str(mention["example_id"]), "text": query,
            "group": str(mention["entity_id"])}  # fmt: skip


def mewsli_entity(row: Row) -> dict[str, Any]:
    """A Mewsli-X Entity -> its description sentences (xtreme's `preprocess_entity_description`)."""
    description = row["description"]
    text = " ".join(description[s["start"] : s["end"]] for s in row["sentence_spans"])
    text = " ".join(text.splitlines()).replace("  ", " ").strip()
    return {"kind": "candidate", "id": str(row["entity_id"]), "text": text, "groups": [str(row["entity_id"])]}


# ---- row filters ---------------------------------------------------------------------------------


def has_label(row: Row, _lang: str) -> bool:
    label = row.get("label")
    return label not in (None, "", -1, "-1")


def has_answer_key(row: Row, _lang: str) -> bool:
    return bool(row.get("answerKey"))


def has_answer(row: Row, _lang: str) -> bool:
    return row.get("answer") not in (None, "")


def language_is(row: Row, lang: str) -> bool:
    return row["language"] == lang


def tydiqa_language_is(row: Row, lang: str) -> bool:
    return str(row["id"]).startswith(TYDIQA_PREFIX[lang] + "-")


def mention_language_is(row: Row, lang: str) -> bool:
    return row["context"]["language"] == lang
