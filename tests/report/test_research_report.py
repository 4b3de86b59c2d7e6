"""The research tables of `xstilts report` on a hand-made store (no training): robustness gaps per language
and by number of intermediate tasks, domain alignment vs transfer gain with rank correlations and a
scatter plot, and the difficulty table.

Sweep: baseline (0 tasks), anli-r1 (hard), anli-r3 (hardest), their mixture (2 tasks); target PAWS-X in
en and de; perturbations char_noise-0.1 (both languages) and code_mixed-0.5 (de only: English is skipped).

pawsx        clean en de (avg)   char_noise en de (gap en, de; avg)   code_mixed de (gap)
baseline     80 70 (75)          70 64 (10, 6; 8)                      60 (10)
anli-r1      84 76 (80)          80 70 (4, 6; 5)                       72 (4)
anli-r3      82 72 (77)          76 66 (6, 6; 6)                       70 (2)
mixture      86 78 (82)          84 76 (2, 2; 2)                       77 (1)

By tasks (char_noise): 0 -> clean 75, perturbed 67, gap 8; 1 -> clean (80 + 77) / 2 = 78.5, perturbed
(75 + 71) / 2 = 73, gap 5.5; 2 -> 82, 80, gap 2.

Alignment with pawsx: anli-r1 (0.2, 0.3, 0.5, 0.9), anli-r3 (0.1, 0.2, 0.6, 0.8), the mixture their mean;
gains +5, +2, +7: Spearman's rho of vocabulary overlap (0.2, 0.1, 0.15) with gain = 0.5, of the JS
divergence (0.5, 0.6, 0.55) = -0.5.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.report import test_report
from tests.report.test_report import commit_with_upstream, evaluate_metrics, read_csv
from xstilts.plan.expand import BASELINE, Plan, expand
from xstilts.report import build_report
from xstilts.report.build import ReportFiles
from xstilts.report.tables import Stat
from xstilts.spec import parse_sweep
from xstilts.store import LocalStore

MIX = "anli-r1+anli-r3"
SWEEP = {
    "name": "research",
    "data": {"source": "fixtures"},
    "encoders": [{"name": "tiny", "model": "tiny"}],
    "intermediate": [{"task": "anli-r1"}, {"task": "anli-r3"}, {"tasks": ["anli-r1", "anli-r3"]}],
    "targets": ["pawsx"],
    "robustness": [
        {"name": "char_noise", "rate": 0.1, "seeds": [0, 1]},
        {"name": "code_mixed", "rate": 0.5, "dictionary": "fixtures:dictionaries/{lang}-en.txt"},
    ],
    "analysis": {"domain_alignment": True, "max_examples": 50, "difficulty_probe": True, "probe_steps": 20},
}
PROBES = {"anli-r1": 60.0, "anli-r3": 45.0}  # the probes' dev scores: measured difficulty 40 and 55
CLEAN = {BASELINE: (80, 70), "anli-r1": (84, 76), "anli-r3": (82, 72), MIX: (86, 78)}
CHAR = {BASELINE: (70, 64), "anli-r1": (80, 70), "anli-r3": (76, 66), MIX: (84, 76)}
MIXED = {BASELINE: 60, "anli-r1": 72, "anli-r3": 70, MIX: 77}
ALIGNMENT = {"anli-r1": (0.2, 0.3, 0.5, 0.9), "anli-r3": (0.1, 0.2, 0.6, 0.8)}
SIZES = {"anli-r1": 100, "anli-r3": 200}
MEASURES = ("vocabulary_overlap", "weighted_vocabulary_overlap", "js_divergence", "embedding_cosine")


def _metrics(setting: str) -> dict[str, Any]:
    en, de = CLEAN[setting]
    metrics = evaluate_metrics("pawsx", {"en": en, "de": de})
    char_en, char_de = CHAR[setting]
    metrics["perturbed"] = {  # two perturbation seeds: the second costs 2 points more everywhere
        "char_noise-0.1@seed0": {"en": {"score": char_en, "gap": en - char_en}, "de": {"score": char_de}},
        "char_noise-0.1@seed1": {"en": {"score": char_en - 2}, "de": {"score": char_de - 2}},
        "code_mixed-0.5": {"de": {"score": MIXED[setting], "gap": de - MIXED[setting]}},
    }
    metrics["perturbations_skipped"] = {"code_mixed-0.5": {"en": "no code-mixing of English text"}}
    return metrics


@pytest.fixture(scope="module")
def plan() -> Plan:
    return expand(parse_sweep(SWEEP, "research.yaml"))


@pytest.fixture(scope="module")
def report(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    root = tmp_path_factory.mktemp("research")
    test_report.SECONDS.setdefault("analysis", 120)  # the hand-made lineage's duration of the phase kind
    store = LocalStore(root / "store")
    for run in plan.runs:
        commit_with_upstream(store, plan, run.evaluate, root / "staging", _metrics(run.setting))
    pairs = [{"intermediate": task, "target": "pawsx", "same_corpus": False, "reference": "train",
              "language": "en", **dict(zip(MEASURES, values, strict=True))}
             for task, values in ALIGNMENT.items()]  # fmt: skip
    for task, values in ALIGNMENT.items():  # against the evaluation text: de a little further than en
        for lang, shift in (("en", 0.0), ("de", -0.05)):
            measures = {m: v + shift for m, v in zip(MEASURES, values, strict=True)}
            pairs.append({"intermediate": task, "target": "pawsx", "same_corpus": False, "reference": "eval",
                          "language": lang, **measures, "cka": 0.9 if lang == "de" else None})  # fmt: skip
    for (_, task), address in plan.probes.items():
        commit_with_upstream(
            store, plan, address, root / "staging", {"steps": 20, "dev": {"score": PROBES[task]}}
        )
    analysis = {"pairs": pairs, "layer": 1, "sizes": SIZES}
    commit_with_upstream(store, plan, plan.analyses[0], root / "staging", analysis)
    return build_report(plan, store, root / "out")


def test_robustness_gap_per_language(report: ReportFiles) -> None:
    table = build_tables_of(report).research["robustness"]
    assert [c.key for c in table.columns][-5:] == ["perturbation_seeds", "en", "de", "avg", "relative"]
    row = table.row(setting="anli-r1", perturbation="char_noise-0.1")
    assert row[2] == 1 and row[5] == 2 and _means(row[6:9]) == [5.0, 7.0, 6.0]
    assert row[8].n == 2 and row[8].ci_low < 6.0 < row[8].ci_high, "an interval over the perturbation seeds"
    base = table.row(setting=BASELINE, perturbation="char_noise-0.1")
    relative = statistics.fmean([(1000 / 80 + 600 / 70) / 2, (1200 / 80 + 800 / 70) / 2])
    assert math.isclose(base[9].mean, relative)
    mixed = table.row(setting=BASELINE, perturbation="code_mixed-0.5")
    assert mixed[2] == 0 and mixed[5] == 1 and mixed[6] is None and _means(mixed[7:9]) == [10.0, 10.0]
    assert len(table.rows) == 8


def test_robustness_by_number_of_tasks_and_its_trend(report: ReportFiles) -> None:
    rows = read_csv(report.csv["robustness_by_tasks"])
    char = [(r["tasks"], r["settings"], float(r["clean"]), float(r["perturbed"]), float(r["gap"]))
            for r in rows if r["perturbation"] == "char_noise-0.1"]  # fmt: skip
    assert char == [("0", "1", 75.0, 66.0, 9.0), ("1", "2", 78.5, 72.0, 6.5), ("2", "1", 82.0, 79.0, 3.0)]
    mixed = [float(r["gap"]) for r in rows if r["perturbation"] == "code_mixed-0.5"]
    assert mixed == [10.0, 3.0, 1.0]
    trend = {r["perturbation"]: r for r in read_csv(report.csv["robustness_trend"])}
    # cells (tasks, gap): (0, 9), (1, 6), (1, 7), (2, 3): slope -3; code_mixed (0, 10), (1, 4), (1, 2), (2, 1)
    assert math.isclose(float(trend["char_noise-0.1"]["slope"]), -3.0)
    assert trend["char_noise-0.1"]["n"] == "4" and trend["char_noise-0.1"]["slope_ci"]
    assert math.isclose(float(trend["code_mixed-0.5"]["slope"]), -4.5)
    low, high = (float(v) for v in trend["char_noise-0.1"]["slope_ci"].strip("[]").split(","))
    assert low < -3.0 < high
    groups = read_csv(report.csv["robustness_groups"])
    baseline = next(r for r in groups if r["setting"] == BASELINE and r["perturbation"] == "char_noise-0.1")
    assert baseline["group"] == "classification" and float(baseline["gap"]) == 9.0
    assert math.isclose(float(baseline["relative"]), 100 * 9 / 75)


def test_domain_alignment_and_rank_correlation(report: ReportFiles) -> None:
    rows = read_csv(report.csv["domain_alignment"])
    assert [(r["setting"], r["target"], float(r["gain"])) for r in rows] == [
        ("anli-r1", "pawsx", 5.0), ("anli-r3", "pawsx", 2.0), (MIX, "pawsx", 7.0),
    ]  # fmt: skip
    assert math.isclose(float(rows[2]["vocabulary_overlap"]), 0.15)
    correlation = {r["measure"]: r for r in read_csv(report.csv["domain_correlation"])}
    assert set(correlation) == set(MEASURES)
    vocabulary = correlation["vocabulary_overlap"]
    assert vocabulary["group"] == "all" and vocabulary["n"] == "3"
    assert math.isclose(float(correlation["vocabulary_overlap"]["spearman"]), 0.5)
    assert math.isclose(float(correlation["js_divergence"]["spearman"]), -0.5)
    assert {r["same_corpus"] for r in rows} == {"no"}
    assert [r["train_size"] for r in rows] == ["100", "200", "300"]


def test_alignment_per_target_language_and_partial_correlation(report: ReportFiles) -> None:
    rows = read_csv(report.csv["domain_alignment_languages"])
    assert [(r["setting"], r["language"], float(r["gain"])) for r in rows] == [
        ("anli-r1", "en", 4.0), ("anli-r1", "de", 6.0), ("anli-r3", "en", 2.0), ("anli-r3", "de", 2.0),
        (MIX, "en", 6.0), (MIX, "de", 8.0),
    ]  # fmt: skip
    assert [r["cka"] for r in rows if r["language"] == "de"] == ["0.9"] * 3
    assert math.isclose(float(rows[1]["vocabulary_overlap"]), 0.15)
    partial = {(r["reference"], r["measure"]): r for r in read_csv(report.csv["domain_partial_correlation"])}
    assert set(partial) == {(ref, m) for ref in ("train", "eval") for m in MEASURES}
    assert (
        partial[("train", "vocabulary_overlap")]["n"] == "3"
        and not partial[("train", "vocabulary_overlap")]["partial"]
    )
    found = partial[("eval", "vocabulary_overlap")]
    assert found["n"] == "6" and -1 <= float(found["partial"]) <= 1 and found["ci"]


def test_difficulty_table_orders_settings_by_level(report: ReportFiles, plan: Plan) -> None:
    rows = read_csv(report.csv["difficulty"])
    assert [(r["setting"], r["difficulty"], float(r["pawsx"])) for r in rows] == [
        ("anli-r1", "hard", 5.0), ("anli-r3", "hardest", 2.0),
    ]  # fmt: skip
    assert [(float(r["probe_dev"]), float(r["measured"])) for r in rows] == [(60.0, 40.0), (45.0, 55.0)]
    probes = [plan.phases[a] for a in plan.probes.values()]
    assert sorted(p.label for p in probes) == ["probe-anli-r1", "probe-anli-r3"]
    assert all(p.kind == "intermediate" and p.config.training["total_steps"] == 20 for p in probes)


def test_difficulty_joined_to_gain_per_language(report: ReportFiles) -> None:
    rows = read_csv(report.csv["difficulty_languages"])
    assert [(r["setting"], r["language"], float(r["difficulty"]), float(r["gain"])) for r in rows] == [
        ("anli-r1", "de", 40.0, 6.0), ("anli-r3", "de", 55.0, 2.0),
    ]  # fmt: skip
    assert all(float(r["distance"]) > 0 for r in rows)
    regression = read_csv(report.csv["difficulty_regression"])
    assert [r["term"] for r in regression] == ["intercept", "difficulty", "distance", "difficulty x distance"]
    assert {r["n"] for r in regression} == {"2"} and not regression[1]["ci"], "two points: no interval"


def test_difficulty_regression_recovers_its_coefficients() -> None:
    from xstilts.report.research import difficulty_regression_table

    rng = np.random.default_rng(0)
    points = []
    for difficulty in (20.0, 35.0, 50.0, 65.0):
        for lang, distance in (("de", 0.3), ("es", 0.4), ("ja", 0.8), ("sw", 0.6)):
            gain = 1.0 + 0.1 * difficulty - 4.0 * distance + 0.05 * difficulty * distance
            noisy = gain + rng.normal(scale=0.001)
            points.append({"encoder": "tiny", "setting": f"s{difficulty:g}", "target": "pawsx",
                           "language": lang, "difficulty": difficulty, "distance": distance,
                           "gain": noisy})  # fmt: skip
    table = difficulty_regression_table(points)
    d_mean, x_mean = 42.5, 0.525  # the table centres both predictors
    expected = {
        "difficulty": 0.1 + 0.05 * x_mean,
        "distance": -4.0 + 0.05 * d_mean,
        "difficulty x distance": 0.05,
    }
    for term, value in expected.items():
        row = table.row(term=term)
        assert row[3] == pytest.approx(value, abs=0.01) and row[2] == 16
        low, high = (float(v) for v in row[5].strip("[]").split(","))
        assert low - 1e-3 <= value <= high + 1e-3
    assert table.row(term="intercept")[7] == pytest.approx(1.0, abs=1e-3)  # R²


def test_research_figures_and_markdown(report: ReportFiles) -> None:
    for key in ("robustness", "domain_alignment", "heatmap", "pawsx"):
        data = report.images[key].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    text = report.markdown.read_text()
    for heading in ("## Robustness", "## Domain alignment", "## Difficulty"):
        assert heading in text.splitlines()
    assert "![robustness gap by number of intermediate tasks](robustness_gap.png)" in text
    assert "![alignment measures vs transfer gain](domain_alignment.png)" in text
    assert text.index("## Robustness") < text.index("## Cost")


def test_plain_sweeps_get_no_research_tables(tmp_path: Path) -> None:
    sweep = {**SWEEP, "robustness": [], "analysis": {}, "intermediate": [{"task": "mnli"}]}
    plan = expand(parse_sweep(sweep, "plain.yaml"))
    store = LocalStore(tmp_path / "store")
    metrics = evaluate_metrics("pawsx", {"en": 1})
    for run in plan.runs:
        commit_with_upstream(store, plan, run.evaluate, tmp_path / "staging", metrics)
    files = build_report(plan, store, tmp_path / "out")
    assert not {"robustness", "robustness_by_tasks", "domain_alignment", "difficulty"} & set(files.csv)
    assert set(files.images) == {"heatmap", "pawsx"}


def build_tables_of(report: ReportFiles):
    from xstilts.report.tables import build_tables

    assert report.results is not None
    return build_tables(report.results)


def _means(cells: list[Any]) -> list[float | None]:
    return [c.mean if isinstance(c, Stat) else c for c in cells]
