"""Every registered task loads its fixture through `load_examples` for every role it has and every
fixture language, in its canonical shape, and featurizes with the tiny tokenizer. Plus the data-side
rules the registry encodes (filters, staged training, derived labels, BUCC's mining setting)."""

from __future__ import annotations

import pytest

from xstilts.data.features import featurize, retrieval
from xstilts.data.load import DataUnavailableError, load_examples, load_training_stages, resolve_labels
from xstilts.tasks import Format, TaskDef, all_tasks, get_task
from xstilts.tasks.registry import fixture_languages

SHAPES = {
    Format.CLASSIFICATION: {"text_a", "text_b", "label"},
    Format.REGRESSION: {"text_a", "text_b", "label"},
    Format.MULTIPLE_CHOICE: {"context", "choices", "label"},
    Format.SPAN_QA: {"id", "context", "question", "answers"},
    Format.TAGGING: {"tokens", "tags"},
    Format.MLM: {"text"},
}
RANKING = {"query": {"kind", "id", "text", "group"}, "candidate": {"kind", "id", "text", "groups"}}


def splits(task: TaskDef) -> list[tuple[str, str, int | None]]:
    """(role, language, stage) of every split a task has, in the fixture languages."""
    out: list[tuple[str, str, int | None]] = [("train", "en", i) for i in range(len(task.train_stages))]
    out += [("train", "en", None)] if task.train else []
    if task.dev is not None:
        out += (
            [("dev", lang, None) for lang in fixture_languages(task)]
            if task.name == "bucc"
            else [("dev", "en", None)]
        )
    out += [("candidates", "en", None)] if task.candidates else []
    out += [("evaluate", lang, None) for lang in fixture_languages(task)] if task.evaluate else []
    return out


def check_shape(task: TaskDef, examples: list[dict]) -> None:
    for e in examples:
        if task.format is Format.RETRIEVAL:
            expected = (
                RANKING[e["kind"]]
                if task.metric == "map@20"
                else {"source", "target", "source_id", "target_id"}
            )
        else:
            expected = SHAPES[task.format]
        assert set(e) == expected, (task.name, e)
    if task.format is Format.CLASSIFICATION:
        assert all(0 <= e["label"] < task.num_labels for e in examples), task.name
    if task.format is Format.MULTIPLE_CHOICE:
        assert all(0 <= e["label"] < len(e["choices"]) for e in examples), task.name
    if task.format is Format.REGRESSION:
        assert all(isinstance(e["label"], float) for e in examples)
    if task.format is Format.TAGGING:
        assert all(0 <= t < task.num_labels for e in examples for t in e["tags"]), task.name


@pytest.mark.parametrize("name", sorted(t.name for t in all_tasks()))
def test_every_split_loads_and_featurizes(name, data, tokenizer):
    task = resolve_labels(get_task(name), data)
    assert splits(task), name
    for role, lang, stage in splits(task):
        examples = load_examples(task, role, data, lang, limit=8, stage=stage)
        check_shape(task, examples)
        if task.format is Format.RETRIEVAL:
            texts = [e.get("text") or e.get("source") or e.get("target") for e in examples]
            features = retrieval(tokenizer, texts, 64)
        else:
            features = featurize(task, tokenizer, examples, 64, 32)
        assert features and all(f["input_ids"] for f in features), (name, role, lang)


def test_tydiqa_trains_on_english_ids_and_evaluates_by_prefix(data):
    task = get_task("tydiqa")
    assert all(e["id"].startswith("english-") for e in load_examples(task, "train", data))
    assert all(e["id"].startswith("russian-") for e in load_examples(task, "evaluate", data, "ru"))
    assert all(e["id"].startswith("english-") for e in load_examples(task, "dev", data))


def test_label_filters_drop_unlabelled_rows(data):
    snli = load_examples(get_task("snli"), "train", data)
    assert all(e["label"] in (0, 1, 2) for e in snli)
    squad2 = load_examples(get_task("squad-v2"), "train", data)
    assert any(not e["answers"]["text"] for e in squad2) and any(e["answers"]["text"] for e in squad2)


def test_xcopa_stages_siqa_then_copa(data):
    task = get_task("xcopa")
    siqa = load_examples(task, "train", data, stage=0)
    copa = load_examples(task, "train", data, stage=1)
    assert {len(e["choices"]) for e in siqa} == {3} and {len(e["choices"]) for e in copa} == {2}
    assert load_examples(task, "train", data) == copa
    assert load_training_stages(task, data) == [siqa, copa]
    assert load_training_stages(get_task("copa"), data) == [copa]
    for lang in ("et", "it", "ta"):
        assert {len(e["choices"]) for e in load_examples(task, "evaluate", data, lang)} == {2}


def test_ccg_labels_come_from_the_tags_file_and_need_a_path_on_the_hub(data):
    ccg = resolve_labels(get_task("ccg"), data)
    assert "NP[nb]/N" in ccg.labels and ccg.num_labels == len(set(ccg.labels))
    with pytest.raises(DataUnavailableError, match="data.ccg_path"):
        load_examples(get_task("ccg"), "train", {"source": "hub"})
    with pytest.raises(DataUnavailableError, match="data.mewsli_x_path"):
        load_examples(get_task("mewsli-x"), "evaluate", {"source": "hub"}, "de")


def test_ccg_reads_a_user_directory_without_tags_file(tmp_path):
    (tmp_path / "train.tsv").write_text("Pierre Vinken will join\tN/N N (S[dcl]\\NP)/(S[b]\\NP) S[b]\\NP\n")
    hub = {"source": "hub", "ccg_path": str(tmp_path)}
    ccg = resolve_labels(get_task("ccg"), hub)
    assert ccg.labels == tuple(sorted({"N/N", "N", "(S[dcl]\\NP)/(S[b]\\NP)", "S[b]\\NP"}))
    [example] = load_examples(ccg, "train", hub)
    assert [ccg.labels[t] for t in example["tags"]] == ["N/N", "N", "(S[dcl]\\NP)/(S[b]\\NP)", "S[b]\\NP"]


def test_bucc_fixture_is_a_mining_setting(data):
    rows = load_examples(get_task("bucc"), "evaluate", data, "de")
    gold = [e for e in rows if e["source"] and e["target"]]
    assert gold and [e for e in rows if not e["target"]] and [e for e in rows if not e["source"]]
    sources = [e["source"] for e in rows if e["source"]]
    assert len(set(sources)) < len(sources)  # a duplicate sentence under two ids
    assert len({e["source_id"] for e in rows if e["source"]}) == len(sources)


def test_lareqa_rows_become_a_question_and_its_paragraph_sentences(data):
    records = load_examples(get_task("lareqa"), "evaluate", data, "es", limit=1)
    [query] = [r for r in records if r["kind"] == "query"]
    answers = [r for r in records if r["kind"] == "candidate" and query["group"] in r["groups"]]
    assert len(answers) == 1 and len(records) == 4  # three sentences per fixture paragraph


def test_mewsli_queries_mark_the_mention_as_xtreme_does(data):
    query = load_examples(get_task("mewsli-x"), "evaluate", data, "es", limit=1)[0]
    name = query["text"].split(":")[0]
    assert query["text"].startswith(f"{name}: {{ {name} }} ") and query["group"].startswith("Q")
