"""The registry itself: every XTREME and XTREME-R target with all its languages, at least 20 English
intermediate tasks with their metadata, the CLI listing, and the errors a sweep gets for unknown names.
No torch: these run in well under a second."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from xstilts.cli.main import app
from xstilts.errors import ConfigError
from xstilts.tasks import REGISTRY, Format, Role, all_tasks, get_task
from xstilts.tasks import adapters as a
from xstilts.tasks.base import DIFFICULTY_LEVELS
from xstilts.tasks.languages import FIXTURE_LANGUAGES
from xstilts.tasks.registry import fixture_languages

XTREME_TARGETS = ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba")
XTREME_R_ADDED = ("xcopa", "lareqa", "mewsli-x")


def langs(name: str, benchmark: str | None = None) -> set[str]:
    task = get_task(name)
    return set(task.benchmarks[benchmark] if benchmark else task.languages)


def test_at_least_twenty_intermediate_tasks_with_metadata():
    intermediate = [t for t in all_tasks() if t.is_intermediate() and t.format is not Format.MLM]
    assert len(intermediate) >= 20
    for task in intermediate:
        assert task.train is not None and task.dev is not None, task.name
        assert task.description and task.domain and task.source, task.name
        assert task.difficulty in DIFFICULTY_LEVELS, task.name
        assert task.languages == ("en",), task.name
    names = {t.name for t in intermediate}
    assert {
        "anli-r1",
        "anli-r2",
        "anli-r3",
        "ccg",
        "commonsenseqa",
        "cosmosqa",
        "hellaswag",
        "mnli",
        "qqp",
        "squad",
        "squad-v2",
        "sst2",
        "swag",
        "snli",
        "rte",
        "boolq",
        "piqa",
        "siqa",
        "winogrande",
        "cola",
        "mrpc",
        "stsb",
        "race",
        "qnli",
        "copa",
    } <= names


def test_difficulty_orders_the_adversarial_families():
    rank = {t.name: t.difficulty_rank for t in all_tasks() if t.is_intermediate()}
    assert rank["snli"] < rank["anli-r1"] < rank["anli-r2"] < rank["anli-r3"]
    assert rank["swag"] < rank["hellaswag"]
    assert rank["snli"] <= rank["mnli"] < rank["anli-r1"]


def test_anli_plus_is_documented_as_a_sweep_mixture():
    assert "tasks: [snli, mnli, anli-r1, anli-r2, anli-r3]" in get_task("anli-r1").description


def test_every_xtreme_and_xtreme_r_target_is_registered():
    targets = {t.name for t in all_tasks() if t.is_target()}
    assert set(XTREME_TARGETS) | set(XTREME_R_ADDED) <= targets
    for name in XTREME_TARGETS:
        assert "xtreme" in get_task(name).benchmarks, name
    for name in XTREME_R_ADDED:
        assert set(get_task(name).benchmarks) == {"xtreme-r"}, name
    assert {"pawsx", "bucc"}.isdisjoint(n for n in targets if "xtreme-r" in REGISTRY[n].benchmarks)


def test_target_languages_match_the_benchmarks():
    assert len(langs("xnli")) == 15 and len(langs("pawsx")) == 7
    assert len(langs("panx", "xtreme")) == 40
    assert langs("panx", "xtreme-r") - langs("panx", "xtreme") == set("qu pl uk az lt pa gu ro".split())
    assert len(langs("udpos", "xtreme")) == 33 and {"kk", "th", "tl", "yo"} <= langs("udpos", "xtreme")
    assert langs("udpos", "xtreme-r") - langs("udpos", "xtreme") == set("lt pl uk wo ro".split())
    assert len(langs("tatoeba", "xtreme")) == 36
    assert langs("tatoeba", "xtreme-r") - langs("tatoeba", "xtreme") == set("az lt pl uk ro".split())
    assert (
        langs("xquad", "xtreme-r") - langs("xquad", "xtreme") == {"ro"}
        and len(langs("xquad", "xtreme")) == 11
    )
    assert langs("mlqa") == set("ar de en es hi vi zh".split())
    assert langs("tydiqa") == set("ar bn en fi id ko ru sw te".split())
    assert langs("bucc") == {"de", "fr", "ru", "zh"}
    assert langs("xcopa") == set("et ht id it qu sw ta th tr vi zh".split())
    assert len(langs("lareqa")) == 11 and len(langs("mewsli-x")) == 11
    for task in all_tasks():
        for benchmark, subset in task.benchmarks.items():
            assert set(subset) <= set(task.languages), (task.name, benchmark)


def test_languages_outside_the_main_dataset_have_their_own_sources():
    assert {s.config for s in get_task("udpos").evaluation_sources("pl")} == {"pl_lfg", "pl_pdb", "pl_pud"}
    assert get_task("panx").evaluation_sources("qu")[0].dataset == "unimelb-nlptools/wikiann"
    assert get_task("xquad").evaluation_sources("ro")[0].resolve("ro", "ro")[:2] == (
        "google/xquad",
        "xquad.ro",
    )
    tatoeba = get_task("tatoeba")
    assert tatoeba.evaluation_sources("az")[0].resolve("az", tatoeba.config_lang("az"))[1] == "aze-eng"
    assert tatoeba.evaluation_sources("de")[0].resolve("de", tatoeba.config_lang("de"))[1] == "tatoeba.deu"


def test_override_adapters_read_their_real_schemas():
    # universal_dependencies (UD 2.7): upos ClassLabel in its own order, "_" on multi-word-token lines
    ud = {
        "idx": "x",
        "text": "Nie wiem",
        "tokens": ["Nie", "wiem", "wiem"],
        "lemmas": [],
        "upos": [7, 13, 16],
        "xpos": [],
        "feats": [],
        "head": [],
        "deprel": [],
        "deps": [],
        "misc": [],
    }
    assert a.ud_upos(ud) == {
        "tokens": ["Nie", "wiem"],
        "tags": [a.XTREME_UPOS.index("PART"), a.XTREME_UPOS.index("VERB")],
    }
    wikiann = {
        "tokens": ["Vilnius", "yra"],
        "ner_tags": [5, 0],
        "langs": ["lt", "lt"],
        "spans": ["LOC: Vilnius"],
    }
    assert a.tagging("ner_tags")(wikiann) == {"tokens": ["Vilnius", "yra"], "tags": [5, 0]}
    mteb = {"sentence1": "Labas.", "sentence2": "Hello."}
    assert a.tatoeba_mteb(mteb)["source"] == "Labas." and a.tatoeba_mteb(mteb)["target"] == "Hello."


def test_every_target_keeps_a_non_english_fixture_language():
    for task in (t for t in all_tasks() if t.is_target()):
        fixture = fixture_languages(task)
        assert [lang for lang in fixture if lang != "en"], task.name
        assert set(fixture) <= set(task.languages), task.name
    assert set(get_task("xcopa").fixture_stand_ins.values()) <= set(FIXTURE_LANGUAGES)


def test_fixtures_read_language_lists_and_label_sets_from_the_registry():
    """One place per constant: the fixture writers use the registry's objects, not copies."""
    from xstilts.data import fixtures
    from xstilts.tasks import registry

    for name in ("MLQA_LANGS", "TATOEBA_ISO3", "UDPOS_NAMES", "UPOS", "FIXTURE_LANGUAGES"):
        assert getattr(fixtures, name) is getattr(registry, name), name
    assert fixtures.PANX is registry.PANX_TAGS
    assert fixtures.NLI is a.NLI_LABELS
    assert fixtures.XCOPA_STAND_INS is get_task("xcopa").fixture_stand_ins


def test_staged_training_and_derived_labels_are_declared():
    xcopa = get_task("xcopa")
    assert [s.dataset for s in xcopa.training_sources()] == ["allenai/social_i_qa", "aps/super_glue"]
    assert xcopa.train == xcopa.training_sources()[-1]
    ccg = get_task("ccg")
    assert ccg.labels == () and ccg.label_reader is not None and ccg.train.path_key == "ccg_path"
    assert get_task("mewsli-x").evaluate.path_key == "mewsli_x_path"
    assert all(not t.needs_target_training for t in all_tasks() if t.format is Format.RETRIEVAL)


def test_names_are_forgiving_and_unknown_names_get_suggestions():
    assert get_task("ANLI_R2").name == "anli-r2" and get_task("MewsliX").name == "mewsli-x"
    with pytest.raises(ConfigError, match="did you mean anli-r"):
        get_task("anli")
    with pytest.raises(ConfigError, match="squad-v2"):
        get_task("squadv3")


def test_tasks_list_json_lists_every_role_with_languages_and_metrics():
    result = CliRunner().invoke(app, ["tasks", "list", "-o", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(XTREME_TARGETS) | set(XTREME_R_ADDED) <= set(rows)
    assert sum(r["role"] == Role.INTERMEDIATE.value for r in rows.values()) >= 20
    assert rows["tydiqa"]["languages"] == list(get_task("tydiqa").languages)
    assert rows["bucc"]["metric"] == "bucc_f1" and rows["lareqa"]["metric"] == "map@20"
    assert rows["stsb"]["format"] == "regression" and rows["xcopa"]["dataset"] == "cambridgeltl/xcopa"
    assert all(r["metric"] and r["languages"] for r in rows.values())


def _plan(tmp_path: Path, **overrides) -> object:
    sweep = {
        "name": "bad",
        "data": {"source": "fixtures"},
        "encoders": [{"name": "tiny", "model": "tiny"}],
        "intermediate": [{"task": "mnli"}],
        "targets": ["xnli"],
        **overrides,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return CliRunner().invoke(app, ["sweep", "plan", str(path), "--store", str(tmp_path / "store")])


def test_sweep_with_unknown_task_fails_with_exit_3_and_suggestions(tmp_path):
    result = _plan(tmp_path, intermediate=[{"task": "hellaswagg"}])
    assert result.exit_code == 3, result.output
    assert "unknown task 'hellaswagg'" in result.output and "did you mean hellaswag" in result.output
    result = _plan(tmp_path, targets=["mewsli"])
    assert result.exit_code == 3 and "mewsli-x" in result.output


def test_sweep_with_unknown_language_fails_with_exit_3_and_suggestions(tmp_path):
    result = _plan(tmp_path, targets=["xcopa"], languages={"xcopa": ["itt"]})
    assert result.exit_code == 3, result.output
    assert "has no language 'itt'" in result.output and "did you mean it" in result.output


def test_valid_sweep_with_new_tasks_plans(tmp_path):
    result = _plan(
        tmp_path,
        intermediate=[{"name": "anli-plus", "tasks": ["snli", "mnli", "anli-r1", "anli-r2", "anli-r3"]}],
        targets=["mlqa", "tydiqa", "bucc", "lareqa"],
        benchmark="custom",  # BUCC is XTREME's, LAReQA XTREME-R's
    )
    assert result.exit_code == 0, result.output


def test_shared_training_groups_targets_that_fine_tune_alike() -> None:
    from xstilts.tasks import get_task, shared_training

    xquad = get_task("xquad")
    for name in ("xquad", "mlqa", "mlqa-gxlt-de", "mlqa-gxlt-zh"):
        assert shared_training(get_task(name)) is xquad, name
    for name in ("tydiqa", "xnli", "pawsx", "udpos", "panx", "xcopa", "tatoeba", "bucc"):
        task = get_task(name)
        assert shared_training(task) is task, name
    # what the sharing rests on: the same training and dev data, head and defaults
    mlqa = get_task("mlqa")
    assert (mlqa.train, mlqa.dev, mlqa.format, mlqa.hparams) == (
        xquad.train,
        xquad.dev,
        xquad.format,
        xquad.hparams,
    )
