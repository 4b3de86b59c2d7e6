"""`xstilts report` on a hand-made store: a 1-encoder, 3-setting (baseline, mnli, mnli+squad), 3-target,
2-seed sweep with hand-chosen metrics, committed with real `_COMPLETE` markers; no training.

Hand-worked numbers (scores per language; avg is over all evaluated languages, as metrics.json has it):

pawsx (en de es)     seed 1             seed 2             mean                   avg (mean, std)
  baseline           80 70 72 (74)      82 72 74 (76)      81 71 73               75 ± 1.414
  mnli               84 76 77 (79)      86 78 79 (81)      85 77 78               80 ± 1.414
  mnli+squad         83 74 77 (78)      -- missing --      83 74 77               78
panx (en de es ru)
  baseline           80 70 70 60 (70)   82 72 70 62 (71.5) 81 71 70 61            70.75
  mnli               80 68 70 58 (69)   80 68 70 58 (69)   80 68 70 58            69 ± 0
  mnli+squad         84 74 75 67 (75)   86 76 75 67 (76)   85 75 75 67            75.5
tatoeba (de es ru)   (the baseline's seeds share one evaluate phase: one result)
  baseline           50 60 40 (50)      same phase         50 60 40               50
  mnli               60 70 50 (60)      62 72 52 (62)      61 71 51               61
  mnli+squad         -- missing --      -- missing --

XTREME avg: baseline (75 + 70.75 + 50) / 3 = 65.25; mnli (80 + 69 + 61) / 3 = 70 (+4.75); mnli+squad has
no tatoeba (blank).

Best per target is chosen on the English dev score of the target phases (DEV below), not on the numbers
above: pawsx mnli+squad (dev 72 > 70, although mnli is better on test: 80 > 78), panx mnli+squad (dev 65 >
60); tatoeba has no dev split, so it takes the setting with the best mean dev rank over pawsx and panx that
has a tatoeba result: mnli (mnli+squad ranks first but has none). -> (78 + 75.5 + 61) / 3 = 71.5 (+6.25);
choosing on the test split would have reported 72.1667.

Seed intervals: n = 2, t(0.975, 1) = 12.706205, so mean ± 12.706205 * std / sqrt(2) (std sqrt(2): ± 12.7).
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from xstilts.errors import XstiltsError
from xstilts.plan.expand import BASELINE, Plan, Run, expand
from xstilts.plan.phase import Phase
from xstilts.report import build_report, collect_results
from xstilts.report.build import ReportFiles
from xstilts.report.collect import Results, parse_timestamp
from xstilts.report.significance import Delta
from xstilts.report.tables import (
    BEST_PER_TARGET,
    NO_DEV_CRITERION,
    Grid,
    Stat,
    Table,
    Tables,
    build_tables,
    format_cell,
    languages_table,
    to_csv,
    to_markdown,
)
from xstilts.spec import parse_sweep
from xstilts.store import LocalStore, Store
from xstilts.store.complete import commit_dir

SWEEP = {
    "name": "t",
    "data": {"source": "fixtures"},
    "encoders": [{"name": "tiny", "model": "tiny"}],
    "intermediate": [{"task": "mnli"}, {"tasks": ["mnli", "squad"]}],
    "targets": ["pawsx", "panx", "tatoeba"],
    "seeds": [1, 2],
    "resources": {"intermediate": {"gpu": 2, "nodes": 2}, "target": {"gpu": 1}},
}
MIX = "mnli+squad"

# (setting, target, seed) -> {lang: score}; absent cells stay incomplete.
SCORES: dict[tuple[str, str, int], dict[str, float]] = {
    (BASELINE, "pawsx", 1): {"en": 80, "de": 70, "es": 72},
    (BASELINE, "pawsx", 2): {"en": 82, "de": 72, "es": 74},
    ("mnli", "pawsx", 1): {"en": 84, "de": 76, "es": 77},
    ("mnli", "pawsx", 2): {"en": 86, "de": 78, "es": 79},
    (MIX, "pawsx", 1): {"en": 83, "de": 74, "es": 77},
    (BASELINE, "panx", 1): {"en": 80, "de": 70, "es": 70, "ru": 60},
    (BASELINE, "panx", 2): {"en": 82, "de": 72, "es": 70, "ru": 62},
    ("mnli", "panx", 1): {"en": 80, "de": 68, "es": 70, "ru": 58},
    ("mnli", "panx", 2): {"en": 80, "de": 68, "es": 70, "ru": 58},
    (MIX, "panx", 1): {"en": 84, "de": 74, "es": 75, "ru": 67},
    (MIX, "panx", 2): {"en": 86, "de": 76, "es": 75, "ru": 67},
    (BASELINE, "tatoeba", 1): {"de": 50, "es": 60, "ru": 40},
    (BASELINE, "tatoeba", 2): {"de": 50, "es": 60, "ru": 40},
    ("mnli", "tatoeba", 1): {"de": 60, "es": 70, "ru": 50},
    ("mnli", "tatoeba", 2): {"de": 62, "es": 72, "ru": 52},
}
METRICS = {"pawsx": "accuracy", "panx": "seqeval_f1", "tatoeba": "tatoeba_accuracy"}
SECONDS = {"encoder": 60, "intermediate": 3600, "target": 1800, "evaluate": 360}
# English dev score the target phases selected their models on: (setting, target) -> score.
DEV = {(BASELINE, "pawsx"): 68.0, ("mnli", "pawsx"): 70.0, (MIX, "pawsx"): 72.0,
       (BASELINE, "panx"): 55.0, ("mnli", "panx"): 60.0, (MIX, "panx"): 65.0}  # fmt: skip
START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
DISTANCES = {"en": 0.0, "es": 0.2, "de": 0.3, "ru": 0.5}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _lang_fields(target: str, score: float) -> dict[str, float]:
    if target == "panx":
        return {"f1": score, "precision": score, "recall": score, "score": score}
    return {"accuracy": score, "score": score}


def evaluate_metrics(target: str, scores: dict[str, float]) -> dict[str, Any]:
    """metrics.json as the evaluate phase writes it (xstilts.phases.evaluate._summary)."""
    non_en = [s for lang, s in scores.items() if lang != "en"]
    return {
        "task": target,
        "metric": METRICS[target],
        "languages": {lang: _lang_fields(target, s) for lang, s in scores.items()},
        "average": sum(scores.values()) / len(scores),
        "average_zero_shot": sum(non_en) / len(non_en) if non_en else None,
    }


def commit_phase(store: Store, phase: Phase, root: Path, metrics: dict[str, Any]) -> None:
    local = root / phase.address
    local.mkdir(parents=True)
    lineage = {
        "phase": phase.name, "kind": phase.kind, "address": phase.address, "config": phase.config.dump(),
        "inputs": phase.inputs, "started_at": _iso(START),
        "finished_at": _iso(START + timedelta(seconds=SECONDS[phase.kind])),
    }  # fmt: skip
    (local / "metrics.json").write_text(json.dumps(metrics))
    (local / "lineage.json").write_text(json.dumps(lineage))
    commit_dir(store, local, phase.prefix)


def commit_with_upstream(store: Store, plan: Plan, address: str, root: Path, metrics: dict[str, Any]) -> None:
    phase = plan.phases[address]
    if (root / address).exists():
        return
    for parent in phase.inputs.values():
        upstream = plan.phases[parent]
        dev = DEV.get((upstream.settings[0], upstream.label)) if upstream.kind == "target" else None
        commit_with_upstream(store, plan, parent, root, {"steps": 10, "dev": {"score": dev} if dev else None})
    commit_phase(store, phase, root, metrics)


def run_of(plan: Plan, setting: str, target: str, seed: int) -> Run:
    return next(r for r in plan.runs if (r.setting, r.target, r.seed) == (setting, target, seed))


def make_plan() -> Plan:
    return expand(parse_sweep(SWEEP, "t.yaml"))


def populate(store: Store, plan: Plan, root: Path) -> None:
    for (setting, target, seed), scores in SCORES.items():
        run = run_of(plan, setting, target, seed)
        commit_with_upstream(store, plan, run.evaluate, root, evaluate_metrics(target, scores))


@pytest.fixture(scope="module")
def plan() -> Plan:
    return make_plan()


@pytest.fixture(scope="module")
def store(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = LocalStore(tmp_path_factory.mktemp("store"))
    populate(store, plan, tmp_path_factory.mktemp("staging"))
    return store


@pytest.fixture(scope="module")
def results(plan: Plan, store: Store) -> Results:
    return collect_results(plan, store)


@pytest.fixture(scope="module")
def tables(results: Results) -> Tables:
    return build_tables(results, distance=DISTANCES.__getitem__)


@pytest.fixture(scope="module")
def report(plan: Plan, store: Store, tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return build_report(plan, store, tmp_path_factory.mktemp("report") / "out")


def approx_stat(stat: Any, mean: float, std: float | None, n: int) -> bool:
    assert isinstance(stat, Stat), stat
    same_std = (
        std is None
        and stat.std is None
        or (std is not None and stat.std is not None and math.isclose(stat.std, std))
    )
    return math.isclose(stat.mean, mean) and same_std and stat.n == n


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


# --------------------------------------------------------------------------- collect


def test_collect_reads_complete_cells_and_lists_missing(plan: Plan, results: Results) -> None:
    assert results.sweep == "t" and results.cells == 18
    assert results.encoders == ["tiny"]
    assert results.settings == [BASELINE, "mnli", MIX]
    assert results.targets == ["pawsx", "panx", "tatoeba"]
    assert len(results.runs) == 15
    missing = {(m.setting, m.target, m.seed) for m in results.missing}
    assert missing == {(MIX, "pawsx", 2), (MIX, "tatoeba", 1), (MIX, "tatoeba", 2)}
    assert all(m.reason == "pending" for m in results.missing)


def test_missing_cells_name_the_next_phase_to_run(plan: Plan, results: Results) -> None:
    by_key = {(m.setting, m.target, m.seed): m for m in results.missing}
    pawsx = by_key[(MIX, "pawsx", 2)]
    target = plan.phases[plan.phases[pawsx.evaluate].inputs["model"]]
    # the mixture's seed-2 intermediate is complete (panx used it); its pawsx target phase is next
    assert pawsx.waiting_on == (target.name,)
    assert target.name.startswith("target/pawsx@")
    tatoeba = by_key[(MIX, "tatoeba", 1)]
    assert tatoeba.waiting_on == (plan.phases[tatoeba.evaluate].name,)


def test_long_format_rows(results: Results) -> None:
    rows = results.rows
    assert len(rows) == 5 * 3 + 6 * 4 + 4 * 3
    key = ("mnli", "panx", 2, "ru")
    row = next(r for r in rows if (r["setting"], r["target"], r["seed"], r["language"]) == key)
    assert row == {
        "encoder": "tiny", "setting": "mnli", "target": "panx", "seed": 2, "language": "ru", "score": 58.0,
        "metric": "seqeval_f1", "evaluate": row["evaluate"], "f1": 58.0, "precision": 58.0, "recall": 58.0,
    }  # fmt: skip


def test_cost_per_phase_and_sweep(results: Results) -> None:
    kinds = [c.kind for c in results.costs]
    # 1 encoder, 4 intermediate (2 settings x 2 seeds), 11 target, 14 distinct evaluate phases
    counts = {k: kinds.count(k) for k in set(kinds)}
    assert counts == {"encoder": 1, "intermediate": 4, "target": 11, "evaluate": 14}
    intermediate = next(c for c in results.costs if c.kind == "intermediate")
    assert intermediate.seconds == 3600 and intermediate.gpus == 4 and intermediate.nodes == 2
    assert intermediate.gpu_hours == 4.0 and intermediate.cpu_hours == 0.0
    evaluate = next(c for c in results.costs if c.kind == "evaluate")
    assert evaluate.gpus == 0 and evaluate.gpu_hours == 0.0 and math.isclose(evaluate.cpu_hours, 0.1)
    assert math.isclose(results.gpu_hours, 4 * 4.0 + 11 * 0.5)
    assert math.isclose(results.cpu_hours, 14 * 0.1 + 60 / 3600)
    by_kind = results.gpu_hours_by_kind()
    assert by_kind == {"encoder": 0.0, "intermediate": 16.0, "target": 5.5, "evaluate": 0.0}


def test_parse_timestamp_variants() -> None:
    assert parse_timestamp("2024-05-01T12:00:00Z") == START
    assert parse_timestamp("2024-05-01T14:00:00+02:00") == START
    assert parse_timestamp("2024-05-01T12:00:00") == START
    assert parse_timestamp("yesterday") is None and parse_timestamp(None) is None


# --------------------------------------------------------------------------- tables


def test_target_table_means_and_stds(tables: Tables) -> None:
    pawsx = tables.targets["pawsx"]
    keys = [c.key for c in pawsx.columns]
    assert keys == ["encoder", "setting", "seeds", "en", "de", "es", "avg", "zero_shot_avg"]
    sqrt2 = math.sqrt(2)
    assert pawsx.value("seeds", setting=BASELINE) == 2
    assert approx_stat(pawsx.value("en", setting=BASELINE), 81, sqrt2, 2)
    assert approx_stat(pawsx.value("avg", setting=BASELINE), 75, sqrt2, 2)
    assert approx_stat(pawsx.value("zero_shot_avg", setting=BASELINE), 72, sqrt2, 2)
    assert approx_stat(pawsx.value("avg", setting="mnli"), 80, sqrt2, 2)
    assert pawsx.value("seeds", setting=MIX) == 1
    assert approx_stat(pawsx.value("avg", setting=MIX), 78, None, 1)
    panx = tables.targets["panx"]
    assert approx_stat(panx.value("avg", setting=BASELINE), 70.75, math.sqrt(1.125), 2)
    assert approx_stat(panx.value("avg", setting="mnli"), 69, 0.0, 2)


def test_shared_evaluate_phase_counts_once(tables: Tables) -> None:
    tatoeba = tables.targets["tatoeba"]
    assert [c.key for c in tatoeba.columns][3:] == ["de", "es", "ru", "avg", "zero_shot_avg"]
    assert tatoeba.value("seeds", setting=BASELINE) == 1
    assert approx_stat(tatoeba.value("avg", setting=BASELINE), 50, None, 1)
    assert approx_stat(tatoeba.value("zero_shot_avg", setting="mnli"), 61, math.sqrt(2), 2)
    assert [row[1] for row in tatoeba.rows] == [BASELINE, "mnli"]


def test_target_delta_tables(tables: Tables) -> None:
    pawsx = tables.target_deltas["pawsx"]
    # last column: the permutation p over seeds (needs 3 seeds); no prediction files: no intervals
    assert pawsx.row(setting="mnli") == ["tiny", "mnli", 4.0, 6.0, 5.0, 5.0, 5.5, None]
    assert pawsx.row(setting=MIX) == ["tiny", MIX, 2.0, 3.0, 4.0, 3.0, 3.5, None]
    panx = tables.target_deltas["panx"]
    assert panx.row(setting="mnli") == [
        "tiny",
        "mnli",
        -1.0,
        -3.0,
        0.0,
        -3.0,
        -1.75,
        pytest.approx(-2.0),
        None,
    ]
    tatoeba = tables.target_deltas["tatoeba"]
    assert tatoeba.row(setting="mnli") == ["tiny", "mnli", 11.0, 11.0, 11.0, 11.0, 11.0, None]
    assert any("no intervals" in note for note in pawsx.notes)
    assert [row[1] for row in tatoeba.rows] == ["mnli"]


def test_summary_xtreme_average_and_best_per_target(tables: Tables) -> None:
    summary = tables.summary
    assert [c.key for c in summary.columns] == [
        "encoder", "setting", "pawsx", "panx", "tatoeba", "xtreme_avg", "delta_xtreme_avg",
    ]  # fmt: skip
    assert summary.row(setting=BASELINE) == ["tiny", BASELINE, 75.0, 70.75, 50.0, 65.25, None]
    assert summary.row(setting="mnli") == ["tiny", "mnli", 80.0, 69.0, 61.0, 70.0, 4.75]
    assert summary.row(setting=MIX) == ["tiny", MIX, 78.0, 75.5, None, None, None]
    best = summary.row(setting=BEST_PER_TARGET)
    assert best[:5] == ["tiny", BEST_PER_TARGET, 78.0, 75.5, 61.0]
    assert best[5] == pytest.approx(71.5) and best[6] == pytest.approx(71.5 - 65.25)
    assert tables.best.rows == [
        ["tiny", "pawsx", MIX, "English dev", 72.0, 78.0, 75.0, 3.0],
        ["tiny", "panx", MIX, "English dev", 65.0, 75.5, 70.75, 4.75],
        ["tiny", "tatoeba", "mnli", NO_DEV_CRITERION, None, 61.0, 50.0, 11.0],
    ]
    assert summary.columns[-2].header == "XTREME avg"
    assert any("only 3 of its 9 tasks" in note for note in summary.notes)
    assert tables.summary_delta.rows == [
        ["tiny", "mnli", 5.0, -1.75, 11.0, 4.75],
        ["tiny", MIX, 3.0, 4.75, None, None],
    ]


def test_language_pairs_with_distance(tables: Tables) -> None:
    table = tables.languages
    keys = [c.key for c in table.columns]
    assert keys == ["encoder", "language", "syntactic_distance", "targets", "mnli", MIX]
    # sorted by distance from English; mnli: pawsx, panx, tatoeba deltas averaged per language
    assert table.rows == [
        ["tiny", "en", 0.0, 2, 1.5, 3.0],
        ["tiny", "es", 0.2, 3, pytest.approx(16 / 3), 4.5],
        ["tiny", "de", 0.3, 3, pytest.approx(14 / 3), 3.5],
        ["tiny", "ru", 0.5, 2, 4.0, 6.0],
    ]
    # ranks of distance 1 2 3 4; mnli deltas 1 4 3 2 -> rho 0.2; mixture 1 3 2 4 -> rho 0.8
    assert tables.correlations == {"mnli": pytest.approx(0.2), MIX: pytest.approx(0.8)}


def test_language_pairs_without_distance(results: Results) -> None:
    table = languages_table(Grid(results), distance=None)
    assert [c.key for c in table.columns] == ["encoder", "language", "targets", "mnli", MIX]
    assert [row[1] for row in table.rows] == ["en", "de", "es", "ru"]


def test_cost_table_total_row(tables: Tables) -> None:
    cost = tables.cost
    assert len(cost.rows) == 30 + 1
    total = cost.row(phase="total")
    assert total[3] == 60 + 4 * 3600 + 11 * 1800 + 14 * 360
    assert total[5] == pytest.approx(21.5) and total[6] == pytest.approx(1.4 + 1 / 60)


# --------------------------------------------------------------------------- writers


def test_markdown_and_csv_writers() -> None:
    from xstilts.report.tables import Column

    table = Table("x", "X", [Column("name", "name", "text"), Column("v", "value"), Column("d", "Δ", "signed"),
                             Column("t", "time", "duration"), Column("h", "GPU-hours", "hours")])  # fmt: skip
    table.rows = [
        ["a|b", Stat(1.25, 0.5, 2), 0.04, 3725.4, 1 / 3],
        ["c", Stat(2.0, None, 1), None, None, 0.0],
    ]
    assert to_markdown(table).splitlines() == [
        "| name | value | Δ | time | GPU-hours |",
        "|:---|---:|---:|---:|---:|",
        "| a\\|b | 1.2 ± 0.5 | +0.0 | 1:02:05 | 0.33 |",
        "| c | 2.0 | — | — | 0.00 |",
    ]
    assert to_csv(table).splitlines() == [
        "name,v,v_std,v_ci_low,v_ci_high,d,t,h",
        "a|b,1.25,0.5,,,0.04,3725.4,0.3333333333333333",
        "c,2.0,,,,,,0.0",
    ]
    assert format_cell(Stat(1.25, 0.5, 2, 0.5, 2.0), "number") == "1.2 ± 0.5 [0.5, 2.0]"
    assert format_cell(Delta(1.0, 0.2, 1.9, 0.01), "signed") == "+1.0* [+0.2, +1.9]"
    assert format_cell(Delta(1.0, -0.2, 1.9, 0.2), "signed") == "+1.0 [-0.2, +1.9]"
    assert format_cell(-0.04, "signed") == "-0.0" and format_cell(3, "integer") == "3"


def test_report_files(report: ReportFiles) -> None:
    out = report.out_dir
    names = sorted(p.name for p in report.all())
    assert names == sorted([
        "report.md", "summary.csv", "summary_delta.csv", "best.csv", "pawsx.csv", "pawsx_delta.csv",
        "panx.csv", "panx_delta.csv", "tatoeba.csv", "tatoeba_delta.csv", "languages.csv", "cost.csv",
        "results.csv", "distance_correlation.csv",
        "heatmap.png", "pawsx_languages.png", "panx_languages.png", "tatoeba_languages.png",
    ])  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == names
    for image in report.images.values():
        data = image.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 1000


def test_report_csv_contents(report: ReportFiles) -> None:
    summary = read_csv(report.csv["summary"])
    assert [r["setting"] for r in summary] == [BASELINE, "mnli", MIX, BEST_PER_TARGET]
    best = summary[3]
    assert float(best["xtreme_avg"]) == pytest.approx(71.5) and float(best["delta_xtreme_avg"]) == 6.25
    assert best["tatoeba"] == "61.0" and summary[2]["xtreme_avg"] == ""
    pawsx = read_csv(report.csv["pawsx"])
    expected = ["encoder", "setting", "seeds"]
    for key in ("en", "de", "es", "avg", "zero_shot_avg"):
        expected += [key, f"{key}_std", f"{key}_ci_low", f"{key}_ci_high"]
    assert list(pawsx[0]) == expected
    assert float(pawsx[0]["avg"]) == 75.0 and float(pawsx[0]["avg_std"]) == math.sqrt(2)
    assert float(pawsx[0]["avg_ci_low"]) == pytest.approx(75 - 12.706205)
    assert pawsx[2]["avg_std"] == ""
    delta = read_csv(report.csv["panx_delta"])
    assert [(r["setting"], float(r["avg"])) for r in delta] == [("mnli", -1.75), (MIX, 4.75)]
    cost = read_csv(report.csv["cost"])
    assert float(cost[-1]["gpu_hours"]) == 21.5
    long = read_csv(report.csv["results"])
    assert len(long) == 51 and {"f1", "accuracy"} <= set(long[0])


def test_report_markdown(report: ReportFiles) -> None:
    text = report.markdown.read_text()
    lines = text.splitlines()
    assert lines[0] == "# X-STILTs report: t"
    assert "15 of 18 cells done (encoder x setting x target x seed)." in lines
    assert (
        "| tiny | baseline | 2 | 81.0 ± 1.4 [68.3, 93.7] | 71.0 ± 1.4 [58.3, 83.7] | 73.0 ± 1.4 [60.3, 85.7] "
        "| 75.0 ± 1.4 [62.3, 87.7] | 72.0 ± 1.4 [59.3, 84.7] |"
    ) in lines
    assert "| tiny | mnli | +4.0 | +6.0 | +5.0 | +5.0 | +5.5 | — |" in lines
    assert "| tiny | baseline | 75.0 | 70.8 | 50.0 | 65.2 | — |" in lines
    assert "| tiny | best per target | 78.0 | 75.5 | 61.0 | 71.5 | +6.2 |" in lines
    assert "| tiny | mnli+squad | 78.0 | 75.5 | — | — | — |" in lines
    assert "| tiny | panx | mnli+squad | English dev | 65.0 | 75.5 | 70.8 | +4.8 |" in lines
    assert "## Protocol" in lines and any(line.startswith("- Benchmark: XTREME;") for line in lines)
    missing = [line for line in lines if line.startswith("| tiny | mnli+squad | tatoeba |")]
    assert len(missing) == 2 and all("pending" in line for line in missing)
    assert "![setting x target deltas vs baseline](heatmap.png)" in lines
    assert "![pawsx per language](pawsx_languages.png)" in lines
    assert "Total: 21.50 GPU-hours, 1.42 CPU pod-hours over 30 complete phases." in lines
    assert "| total |  |  | 10:55:00 | — | 21.50 | 1.42 |" in lines


def test_report_uses_typology_when_available(report: ReportFiles) -> None:
    pytest.importorskip("xstilts.analysis.typology")
    rows = read_csv(report.csv["languages"])
    assert "syntactic_distance" in rows[0]
    assert [r["language"] for r in rows][0] == "en" and float(rows[0]["syntactic_distance"]) == 0.0


def test_report_is_deterministic(plan: Plan, store: Store, report: ReportFiles, tmp_path: Path) -> None:
    build_report(plan, store, tmp_path)
    for path in report.all():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


# --------------------------------------------------------------------------- edge cases


def test_nothing_complete_raises(plan: Plan, tmp_path: Path) -> None:
    with pytest.raises(XstiltsError, match=r"nothing to report for sweep 't'.*0 of 18 cells"):
        build_report(plan, LocalStore(tmp_path / "empty"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unreadable_metrics_are_listed_not_fatal(plan: Plan, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    good = run_of(plan, BASELINE, "pawsx", 1)
    bad = run_of(plan, "mnli", "pawsx", 1)
    commit_with_upstream(store, plan, good.evaluate, tmp_path / "staging", evaluate_metrics("pawsx", SCORES[
        (BASELINE, "pawsx", 1)]))  # fmt: skip
    commit_with_upstream(store, plan, bad.evaluate, tmp_path / "staging", {"task": "pawsx", "languages": {}})
    results = collect_results(plan, store)
    assert [(r.setting, r.seed) for r in results.runs] == [(BASELINE, 1)]
    reasons = {(m.setting, m.target, m.seed): m.reason for m in results.missing}
    assert reasons[("mnli", "pawsx", 1)].startswith("unreadable metrics.json")
    files = build_report(plan, store, tmp_path / "out")
    assert "heatmap" not in files.images  # no delta without a complete intermediate cell
    assert files.csv["summary"].exists() and files.images["pawsx"].exists()


def test_two_encoders_without_baseline(tmp_path: Path) -> None:
    sweep = {
        "name": "two", "data": {"source": "fixtures"}, "baseline": False, "targets": ["pawsx"], "seeds": [1],
        "encoders": [{"name": "a", "model": "tiny"},
                     {"name": "b", "model": "tiny", "tiny": {"num_hidden_layers": 3}}],
        "intermediate": [{"task": "mnli"}, {"task": "sst2"}],
    }  # fmt: skip
    plan = expand(parse_sweep(sweep, "two.yaml"))
    store = LocalStore(tmp_path / "store")
    scores = {("a", "mnli"): 70, ("a", "sst2"): 72, ("b", "mnli"): 66, ("b", "sst2"): 64}
    for run in plan.runs:
        score = scores[(run.encoder, run.setting)]
        metrics = evaluate_metrics("pawsx", {"en": score + 10, "de": score - 5, "es": score - 5})
        commit_with_upstream(store, plan, run.evaluate, tmp_path / "staging", metrics)
    files = build_report(plan, store, tmp_path / "out")
    tables = build_tables(files.results)  # type: ignore[arg-type]
    # only the mnli target phases have a dev score (DEV): the best setting is mnli for both encoders,
    # although sst2 is better on a's evaluation split
    assert tables.summary.rows == [
        ["a", "mnli", 70.0, 70.0, None], ["a", "sst2", 72.0, 72.0, None],
        ["a", BEST_PER_TARGET, 70.0, 70.0, None],
        ["b", "mnli", 66.0, 66.0, None], ["b", "sst2", 64.0, 64.0, None],
        ["b", BEST_PER_TARGET, 66.0, 66.0, None],
    ]  # fmt: skip
    assert tables.summary_delta.rows == [] and tables.target_deltas["pawsx"].rows == []
    assert tables.languages.rows == []
    assert "heatmap" not in files.images and files.images["pawsx"].exists()
    assert "no baseline result" in " ".join(tables.target_deltas["pawsx"].notes)


def test_importing_report_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, xstilts.report\n"
        "heavy = [m for m in ('torch', 'transformers', 'matplotlib', 'pandas') if m in sys.modules]\n"
        "sys.exit(str(heavy) if heavy else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bucc_mined_over_gold_pairs_only_is_labelled_everywhere() -> None:
    from xstilts.report.collect import RunResult

    def run(setting: str, score: float) -> RunResult:
        fields = {"f1": score, "score": score}
        return RunResult(encoder="x", setting=setting, target="bucc", seed=1, evaluate=f"e-{setting}",
                         metric="bucc_f1_gold_only", languages={"de": fields, "fr": fields}, average=score,
                         average_zero_shot=score)  # fmt: skip

    results = Results(sweep="g", description="", store="mem", benchmark="xtreme", encoders=["x"],
                      settings=[BASELINE, "mnli"], targets=["bucc"], cells=2,
                      runs=[run(BASELINE, 90.0), run("mnli", 95.0)])  # fmt: skip
    tables = build_tables(results, distance=DISTANCES.__getitem__)
    assert tables.summary.columns[2].header == "bucc (bucc_f1_gold_only)"
    assert tables.summary_delta.columns[2].header == "bucc (bucc_f1_gold_only)"
    assert tables.targets["bucc"].title == "bucc (bucc_f1_gold_only)"
    assert any("not the XTREME score" in note for note in tables.summary.notes)
