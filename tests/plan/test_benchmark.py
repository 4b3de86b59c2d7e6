"""A sweep names its benchmark; evaluation uses exactly that benchmark's tasks and languages, and the
evaluation protocols (Tatoeba direction, BUCC pairs and duplicates) are in the evaluate phases' configs.

XTREME's and XTREME-R's task languages below are facts quoted from google-research/xtreme evaluate.py
(XTREME_TASK2LANGS, XTREME_R_TASK2LANGS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.errors import ConfigError
from xstilts.plan import expand
from xstilts.spec import load_sweep, parse_sweep

REPO = Path(__file__).resolve().parents[2]
XTREME = {
    "pawsx": "de,en,es,fr,ja,ko,zh",
    "xnli": "ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh",
    "panx": "ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,"
    "th,sw,yo,my,zh,kk,tr,et,fi,hu",
    "udpos": "af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,ur,"
    "vi,yo,zh",
    "bucc": "de,fr,ru,zh",
    "tatoeba": "ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,"
    "th,sw,zh,kk,tr,et,fi,hu",
    "xquad": "en,es,de,el,ru,tr,ar,vi,th,zh,hi",
    "mlqa": "en,es,de,ar,hi,vi,zh",
    "tydiqa": "en,ar,bn,fi,id,ko,ru,sw,te",
}
XTREME_R = {
    "xnli": XTREME["xnli"],
    "panx": XTREME["panx"] + ",qu,pl,uk,az,lt,pa,gu,ro",
    "udpos": XTREME["udpos"] + ",lt,pl,uk,wo,ro",
    "tatoeba": XTREME["tatoeba"] + ",az,lt,pl,uk,ro",
    "xcopa": "et,ht,id,it,qu,sw,ta,th,tr,vi,zh",
    "mewsli-x": "ar,de,en,es,fa,ja,pl,ro,ta,tr,uk",
    "xquad": XTREME["xquad"] + ",ro",
    "mlqa": XTREME["mlqa"],
    "tydiqa": XTREME["tydiqa"],
}
HUB = {"name": "t", "data": {"source": "hub"}, "encoders": [{"name": "x", "model": "xlm-roberta-large"}]}


def evaluated_languages(plan) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for phase in plan.ordered():
        if phase.kind == "evaluate":
            out.setdefault(phase.label, set()).update(phase.config.languages)
    return out


def test_the_paper_grid_evaluates_exactly_xtremes_tasks_and_languages() -> None:
    sweep = load_sweep(REPO / "jobs" / "xstilts-paper.yaml")
    assert sweep.benchmark == "xtreme"
    languages = evaluated_languages(expand(sweep))
    assert languages == {task: set(langs.split(",")) for task, langs in XTREME.items()}
    assert len(languages["panx"]) == 40 and len(languages["udpos"]) == 33 and len(languages["xquad"]) == 11


def test_an_xtreme_r_sweep_evaluates_xtreme_rs_languages() -> None:
    targets = [*XTREME_R, "lareqa"]
    languages = evaluated_languages(
        expand(parse_sweep({**HUB, "benchmark": "xtreme-r", "targets": targets,
                            "data": {"source": "hub", "mewsli_x_path": "/data/mewsli-x"}}, "t.yaml"))
    )  # fmt: skip
    for task, langs in XTREME_R.items():
        assert languages[task] == set(langs.split(",")), task
    assert len(languages["panx"]) == 48 and len(languages["udpos"]) == 38


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"targets": ["xcopa"]}, "targets[0]", "set benchmark: xtreme-r"),
        ({"targets": ["bucc"], "benchmark": "xtreme-r"}, "targets[0]", "set benchmark: xtreme"),
        ({"targets": ["mlqa-gxlt-de"]}, "targets[0]", "benchmark: custom"),
        ({"targets": ["panx"], "languages": {"panx": ["en", "qu"]}}, "languages.panx[1]", "XTREME panx"),
        ({"targets": ["bucc"], "evaluation": {"bucc": {"pairs": "mining"}}}, "data.bucc_path", "bucc_path"),
    ],
)
def test_targets_outside_the_benchmark_are_config_errors(change: dict, field: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sweep({**HUB, **change}, "t.yaml")
    assert caught.value.exit_code == 3 and caught.value.field == field and needle in str(caught.value)


def test_a_custom_benchmark_mixes_tasks_in_all_their_languages() -> None:
    plan = expand(
        parse_sweep({**HUB, "benchmark": "custom", "targets": ["pawsx", "xcopa", "panx"]}, "t.yaml")
    )
    assert len(evaluated_languages(plan)["panx"]) == 48


def test_bucc_pairs_follow_the_files_available() -> None:
    def bucc_config(**extra) -> dict:
        plan = expand(parse_sweep({**HUB, "targets": ["bucc"], **extra}, "t.yaml"))
        return next(p.config.bucc.model_dump() for p in plan.ordered() if p.kind == "evaluate")

    assert bucc_config() == {"pairs": "gold_only", "duplicates": "drop"}  # hub: only the gold pairs
    with_files = {"data": {"source": "hub", "bucc_path": "/data/bucc2018"}}
    assert bucc_config(**with_files) == {"pairs": "mining", "duplicates": "drop"}
    assert bucc_config(data={"source": "fixtures"})["pairs"] == "mining"  # fixtures ship the files
    assert bucc_config(**with_files, evaluation={"bucc": {"duplicates": "all"}})["duplicates"] == "all"


def test_tatoeba_direction_is_in_the_evaluate_config_and_its_address() -> None:
    def evaluate(**extra):
        plan = expand(parse_sweep({**HUB, "targets": ["tatoeba", "pawsx"], **extra}, "t.yaml"))
        return {p.label: p for p in plan.ordered() if p.kind == "evaluate"}

    default, reverse = evaluate(), evaluate(evaluation={"tatoeba": {"direction": "xx-en"}})
    assert default["tatoeba"].config.direction == "en-xx"
    assert reverse["tatoeba"].config.direction == "xx-en"
    assert default["tatoeba"].address != reverse["tatoeba"].address
    assert (
        default["pawsx"].address == reverse["pawsx"].address
        and "direction" not in default["pawsx"].config.dump()
    )
