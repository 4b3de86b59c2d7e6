"""The research-question sweeps: every sweep in `jobs/` plans, every `rq-*.yaml` has a tiny twin, and each
twin runs end to end on fixtures (`sweep submit` with its report) with the tables and figures its
question needs.

The twins share one encoder and one training block and run into one store, in an order where later
twins find most of their phases done: difficulty (ANLI R1/R3), diversity (two encoders, task subsets),
robustness (the diversity settings evaluated perturbed), adversarial (augmentation, R3F, FreeLB, SMART),
domain (the analysis phase only).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPO, run_xstilts
from xstilts.cli.main import app
from xstilts.plan.expand import BASELINE

# One xdist worker runs the twins in order into one store (later twins reuse earlier phases and cache).
pytestmark = pytest.mark.xdist_group("research-twins")

JOBS = REPO / "jobs"
TWINS = ("difficulty", "diversity-mbert", "robustness", "adversarial", "domain")  # run in this order
PERTURBATIONS = ["char_noise-0.1", "code_mixed-0.5", "code_mixed_adversarial-b2", "word_perturb-0.1"]
# as the evaluate phases name them: char_noise under two perturbation seeds
LABELS = ["char_noise-0.1@seed0", "char_noise-0.1@seed1", "code_mixed-0.5", "code_mixed_adversarial-b2",
          "word_perturb-0.1"]  # fmt: skip
CODE_MIXING = {"code_mixed-0.5", "code_mixed_adversarial-b2"}  # not of English
ROBUSTNESS_FILES = {"robustness.csv", "robustness_by_tasks.csv", "robustness_trend.csv",
                    "robustness_groups.csv", "robustness_gap.png"}  # fmt: skip
PAWSX_LANGS = ["en", "de", "es"]  # PAWS-X's fixture languages
MEASURES = ["vocabulary_overlap", "weighted_vocabulary_overlap", "js_divergence", "embedding_cosine"]
BASE_FILES = {"report.md", "summary.csv", "summary_delta.csv", "best.csv", "pawsx.csv", "pawsx_delta.csv",
              "languages.csv", "distance_correlation.csv", "cost.csv", "results.csv", "heatmap.png",
              "pawsx_languages.png"}  # fmt: skip
CORRELATION_STATS = {"spearman", "spearman_p", "spearman_ci", "kendall", "kendall_p", "kendall_ci"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def column(rows: list[dict[str, str]], *keys: str) -> list[tuple[str, ...] | str]:
    return [row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys) for row in rows]


def test_every_sweep_in_jobs_plans(tmp_path: Path) -> None:
    runner = CliRunner()
    files = sorted(JOBS.glob("*.yaml"))
    assert {f"tiny-rq-{t}.yaml" for t in TWINS} <= {f.name for f in files}
    store = str(tmp_path / "store")
    for path in files:
        result = runner.invoke(app, ["sweep", "plan", str(path), "--store", store, "-o", "json"])
        assert result.exit_code == 0, f"{path.name}: {result.output[-2000:]}"
        assert json.loads(result.stdout)


def test_every_research_sweep_has_a_tiny_twin_with_its_axes() -> None:
    research = sorted(JOBS.glob("rq-*.yaml"))
    assert len(research) == len(TWINS)
    for path in research:
        real = yaml.safe_load(path.read_text())
        twin = yaml.safe_load((JOBS / f"tiny-{path.name}").read_text())
        assert twin["data"]["source"] == "fixtures" and all(e["model"] == "tiny" for e in twin["encoders"])
        for axis in ("robustness", "intermediate_subsets", "analysis"):
            assert bool(real.get(axis)) == bool(twin.get(axis)), f"{path.name} and its twin differ in {axis}"
        assert len(real["encoders"]) > 1 or len(twin["encoders"]) == 1
        if any("augment" in i or "training" in i for i in real.get("intermediate", [])):
            kinds = {i.get("training", {}).get("adversarial") for i in twin["intermediate"]}
            assert {"r3f", "freelb", "smart"} <= kinds and any("augment" in i for i in twin["intermediate"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("research") / "store"


def submit(twin: str, store: Path) -> Path:
    """Run the twin end to end into the shared store; return its report directory."""
    result = run_xstilts("sweep", "submit", str(JOBS / f"tiny-rq-{twin}.yaml"), "--store", str(store))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    name = yaml.safe_load((JOBS / f"tiny-rq-{twin}.yaml").read_text())["name"]
    report = store / "reports" / name
    for image in report.glob("*.png"):
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image.name
    return report


def check_common(report: Path, settings: list[tuple[str, str]], extra: set[str]) -> None:
    """The files every report has plus `extra`; summary rows per (encoder, setting); per-language table."""
    assert {p.name for p in report.iterdir()} == BASE_FILES | extra
    summary = read_csv(report / "summary.csv")
    assert [r for r in column(summary, "encoder", "setting") if r[1] != "best per target"] == settings
    assert all(r["pawsx"] for r in summary), "every setting has a PAWS-X average"
    pawsx = read_csv(report / "pawsx.csv")
    assert column(pawsx, "encoder", "setting") == settings and all(r["de"] and r["es"] for r in pawsx)
    languages = read_csv(report / "languages.csv")
    assert sorted(set(column(languages, "language"))) == sorted(PAWSX_LANGS)
    assert all(r["syntactic_distance"] for r in languages), "typological distance joined per language"
    distance = read_csv(report / "distance_correlation.csv")  # typological distance vs per-language delta
    assert distance and {"n", *CORRELATION_STATS} <= set(distance[0]) and all(r["n"] == "3" for r in distance)
    cost = read_csv(report / "cost.csv")
    assert cost[-1]["phase"] == "total" and float(cost[-1]["duration_s"]) > 0
    assert "## Cost" in (report / "report.md").read_text()


def check_difficulty(report: Path) -> None:
    extra = {"difficulty.csv", "difficulty_languages.csv", "difficulty_regression.csv"}
    check_common(report, [("tiny", s) for s in (BASELINE, "anli-r1", "anli-r3")], extra)
    difficulty = read_csv(report / "difficulty.csv")
    assert column(difficulty, "setting", "difficulty") == [("anli-r1", "hard"), ("anli-r3", "hardest")]
    assert all(r["pawsx"] for r in difficulty)
    for row in difficulty:  # measured by the probes: 100 minus their dev score
        assert math.isclose(float(row["measured"]), 100 - float(row["probe_dev"]))
    joined = read_csv(report / "difficulty_languages.csv")
    assert column(joined, "setting", "language") == [
        (s, lang) for s in ("anli-r1", "anli-r3") for lang in ("de", "es")
    ]
    assert all(r["difficulty"] and r["distance"] and r["gain"] for r in joined)
    regression = read_csv(report / "difficulty_regression.csv")
    assert column(regression, "term", "n") == [(t, "4") for t in ("intercept", "difficulty", "distance",
                                                                 "difficulty x distance")]  # fmt: skip
    assert "Gain ~ difficulty + distance" in (report / "report.md").read_text()
    pawsx = read_csv(report / "pawsx.csv")  # two seeds: mean and sample std per cell
    assert all(r["seeds"] == "2" and r["avg_std"] and r["de_std"] for r in pawsx)


def check_diversity(report: Path) -> None:
    settings = [(enc, s) for enc in ("mbert-tiny", "xlmr-tiny") for s in (BASELINE, "mnli", "mnli+sst2")]
    check_common(report, settings, set())
    delta = read_csv(report / "summary_delta.csv")
    assert column(delta, "encoder", "setting") == [s for s in settings if s[1] != BASELINE]


def check_robustness(report: Path, settings: list[str], sizes: dict[str, str]) -> None:
    rows = read_csv(report / "robustness.csv")
    expected = [(s, sizes[s], "pawsx", p) for s in settings for p in PERTURBATIONS]
    assert column(rows, "setting", "tasks", "target", "perturbation") == expected
    for row in rows:
        assert (row["en"] == "") == (row["perturbation"] in CODE_MIXING), "no code-mixing of English"
        assert row["de"] and row["es"] and row["avg"] and row["relative"]
        seeds = "2" if row["perturbation"] == "char_noise-0.1" else "1"
        assert row["perturbation_seeds"] == seeds
        if seeds == "2":  # an interval over the two perturbation seeds
            assert row["avg_ci_low"] and float(row["avg_ci_low"]) <= float(row["avg"]) <= float(
                row["avg_ci_high"]
            )
    by_tasks = read_csv(report / "robustness_by_tasks.csv")
    counts = sorted(set(sizes[s] for s in settings))
    assert column(by_tasks, "perturbation", "tasks") == [(p, n) for p in PERTURBATIONS for n in counts]
    trend = read_csv(report / "robustness_trend.csv")
    assert column(trend, "perturbation") == PERTURBATIONS and all(r["slope"] for r in trend)
    assert all(r["n"] == str(len(settings)) and r["sizes"] == str(len(counts)) for r in trend)
    assert all(r["slope_ci"] and r["slope_boot_ci"] for r in trend), "three cells or more: intervals"
    groups = read_csv(report / "robustness_groups.csv")
    assert column(groups, "setting", "perturbation", "group") == [
        (s, p, "classification") for p in PERTURBATIONS for s in settings
    ]  # fmt: skip
    text = (report / "report.md").read_text()
    assert "## Robustness" in text and "Trend of the robustness gap" in text


def check_perturbed_predictions(store: Path) -> None:
    evaluations = [json.loads(p.read_text()) for p in (store / "phases" / "evaluate").glob("*/metrics.json")]
    perturbed = [m for m in evaluations if m.get("perturbed")]
    assert perturbed
    for metrics in perturbed:
        assert sorted(metrics["perturbed"]) == LABELS
        assert sorted(metrics["robustness_gap"]["char_noise-0.1@seed1"]) == sorted(PAWSX_LANGS)
        assert all("en" in metrics["perturbations_skipped"][name] for name in CODE_MIXING)
        seeded = metrics["robustness_seeds"]["char_noise-0.1"]["de"]
        assert len(seeded["gaps"]) == 2 and math.isclose(seeded["mean"], sum(seeded["gaps"]) / 2)
        search = metrics["adversarial_search"]["code_mixed_adversarial-b2"]
        assert sorted(search) == ["de", "es"] and all(s["forward_passes"] >= 1 for s in search.values())
    predictions = {p.name for p in (store / "phases" / "evaluate").glob("*/predictions/*.jsonl")}
    assert {"de.char_noise-0.1@seed0.jsonl", "de.code_mixed-0.5.jsonl", "es.word_perturb-0.1.jsonl",
            "de.code_mixed_adversarial-b2.jsonl"} <= predictions  # fmt: skip


def check_adversarial(report: Path, store: Path) -> None:
    settings = [BASELINE, "mnli", "mnli-augment", "mnli-r3f", "mnli-freelb", "mnli-smart"]
    check_common(report, [("tiny", s) for s in settings], ROBUSTNESS_FILES)
    check_robustness(report, settings, {s: "0" if s == BASELINE else "1" for s in settings})
    data = [json.loads(line) for log in (store / "phases" / "intermediate").glob("*/logs/phase.log")
            for line in log.read_text().splitlines() if '"event": "data"' in line]  # fmt: skip
    found = {e["phase"].split("/")[1].split("@")[0]: e for e in data if e["task"] == "mnli"}
    assert found["mnli-augment"]["examples"] == 2 * found["mnli"]["examples"], "one char_noise copy each"
    assert found["mnli-augment"]["views"] > 1 and found["mnli"]["views"] == 1, "code-switching re-sampled"
    steps = {path.parent.name[:8]: json.loads(path.read_text())["steps"]
             for path in (store / "phases" / "intermediate").glob("*/metrics.json")}  # fmt: skip
    assert steps[found["mnli-augment"]["phase"].split("@")[1]] == steps[found["mnli"]["phase"].split("@")[1]]
    # The robustness twin evaluated PAWS-X (clean and perturbed) with the same tokenizer and data: the new
    # evaluate phases here read every language's features from the store's cache instead of tokenizing.
    lookups = {
        log.parent.parent.name: [json.loads(line) for line in log.read_text().splitlines()
                                 if '"event": "feature_cache"' in line]
        for log in (store / "phases" / "evaluate").glob("*/logs/phase.log")
    }  # fmt: skip
    all_hits = [events for events in lookups.values() if events and all(e["hit"] for e in events)]
    # not the adversarial search's (they depend on the model), no code-mixing of English
    cached = [name for name in LABELS if name != "code_mixed_adversarial-b2"]
    clean_and_perturbed = len(PAWSX_LANGS) * (1 + len(cached)) - 1
    assert any(len(events) == clean_and_perturbed for events in all_hits), lookups


def check_domain(report: Path) -> None:
    settings = [BASELINE, "mnli", "anli-r1", "anli-r3"]
    extra = {"domain_alignment.csv", "domain_correlation.csv", "domain_alignment.png", "difficulty.csv",
             "domain_alignment_languages.csv", "domain_partial_correlation.csv"}  # fmt: skip
    check_common(report, [("tiny", s) for s in settings], extra)
    alignment = read_csv(report / "domain_alignment.csv")
    assert column(alignment, "setting", "target") == [(s, "pawsx") for s in settings[1:]]
    for row in alignment:
        assert all(0.0 <= float(row[m]) <= 1.0 for m in MEASURES[:3]) and -1 <= float(row[MEASURES[3]]) <= 1
        assert row["gain"] != ""
    correlation = read_csv(report / "domain_correlation.csv")
    assert column(correlation, "measure", "group", "n") == [(m, "all", "3") for m in MEASURES]
    assert CORRELATION_STATS | {"pearson"} <= set(correlation[0])
    assert all(r["spearman_p"] for r in correlation if r["spearman"]), "3 pairs: exact permutation p-values"
    assert column(alignment, "same_corpus", "train_size") == [("no", "256"), ("no", "200"), ("no", "200")]
    languages = read_csv(report / "domain_alignment_languages.csv")
    assert column(languages, "setting", "language") == [
        (s, lang) for s in settings[1:] for lang in PAWSX_LANGS
    ]
    for row in languages:  # PAWS-X's evaluation sets are parallel: CKA of each language with English
        assert row["gain"] and (row["cka"] == "") == (row["language"] == "en")
        assert row["language"] == "en" or 0.0 <= float(row["cka"]) <= 1.0 + 1e-9
    partial = read_csv(report / "domain_partial_correlation.csv")
    assert column(partial, "reference", "measure", "n") == [
        (ref, m, n) for ref, n in (("train", "3"), ("eval", "9")) for m in MEASURES
    ]  # fmt: skip
    assert all(r["partial"] == "" for r in partial if r["reference"] == "train"), "3 pairs: too few"
    assert any(r["partial"] and r["ci"] for r in partial if r["reference"] == "eval")
    assert "## Domain alignment" in (report / "report.md").read_text()


def check_robustness_twin(report: Path, store: Path) -> None:
    settings = [BASELINE, "mnli", "mnli+sst2"]
    check_common(report, [("tiny", s) for s in settings], ROBUSTNESS_FILES)
    check_robustness(report, settings, {BASELINE: "0", "mnli": "1", "mnli+sst2": "2"})
    check_perturbed_predictions(store)


@pytest.mark.slow
@pytest.mark.parametrize("twin", TWINS)
def test_tiny_twin_runs_end_to_end_with_its_report(twin: str, store: Path) -> None:
    report = submit(twin, store)
    if twin == "difficulty":
        check_difficulty(report)
    elif twin == "diversity-mbert":
        check_diversity(report)
    elif twin == "robustness":
        check_robustness_twin(report, store)
    elif twin == "adversarial":
        check_adversarial(report, store)
    else:
        check_domain(report)
