"""The paper grid's tiny twin (jobs/tiny-xstilts-paper.yaml) end to end: baseline, two intermediate tasks
and their mixture, crossed with the nine XTREME targets, on fixtures; the report has every target's
per-language table, delta table and plot, the heatmap, the XTREME average over exactly XTREME's tasks,
paired-bootstrap intervals with significant deltas marked, the best setting per target chosen on dev,
QA F1 and EM, and the cost table. Its XTREME-R sibling (jobs/tiny-xtreme-r.yaml) runs the ten XTREME-R
targets the same way."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_xstilts
from tests.e2e.test_research_sweeps import column, read_csv
from xstilts.plan import expand
from xstilts.plan.expand import BASELINE
from xstilts.spec import load_sweep

TWIN = REPO / "jobs" / "tiny-xstilts-paper.yaml"
XTREME_R_TWIN = REPO / "jobs" / "tiny-xtreme-r.yaml"
PNG = b"\x89PNG\r\n\x1a\n"
DELTA_CELL = re.compile(r"([+-]\d+\.\d)(\*?) \[([+-]\d+\.\d), ([+-]\d+\.\d)\]")


def submit(sweep_file: Path, store: Path) -> Path:
    result = run_xstilts("sweep", "submit", str(sweep_file), "--store", str(store), timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    plan = expand(load_sweep(sweep_file))
    for phase in plan.ordered():
        assert (store / phase.prefix / "_COMPLETE").is_file(), phase.name
    return store / "reports" / yaml.safe_load(sweep_file.read_text())["name"]


def check_intervals(report: Path, targets: list[str]) -> None:
    """Every delta has a 95% interval, `*` exactly where it excludes 0, and at least one is significant."""
    delta = read_csv(report / "summary_delta.csv")
    significant = 0
    for row in delta:
        for key in [*targets, "xtreme_avg"]:
            low, high = float(row[f"{key}_ci_low"]), float(row[f"{key}_ci_high"])
            # (a percentile interval need not contain the observed delta when the resamples are skewed)
            assert low <= high and 0 < float(row[f"{key}_p"]) <= 1, (row["setting"], key, row)
            significant += low > 0 or high < 0
    assert significant, "the twin has deltas whose interval excludes 0"
    markdown = (report / "report.md").read_text()
    cells = DELTA_CELL.findall(markdown)
    assert cells and any(star for _value, star, _low, _high in cells)
    for _value, star, low, high in cells:
        # Bounds are printed to one decimal with their sign: "-0.0" is a small negative bound, "+0.0" a
        # small positive one or zero, so only the sign of a zero-rounded bound is known.
        if star:
            assert low.startswith("+") or high.startswith("-"), (low, high)
        else:
            assert not (float(low) > 0 or float(high) < 0) and not high.startswith("-"), (low, high)


@pytest.mark.slow
def test_paper_twin_runs_end_to_end_with_its_report(tmp_path: Path) -> None:
    sweep = yaml.safe_load(TWIN.read_text())
    targets = sweep["targets"]
    assert len(targets) == 9 and sweep["benchmark"] == "xtreme"
    report = submit(TWIN, tmp_path / "store")

    plan = expand(load_sweep(TWIN))
    trained = {p.label for p in plan.ordered() if p.kind == "target"}
    assert "xquad" in trained and "mlqa" not in trained, "MLQA is evaluated with the XQuAD-trained models"

    settings = [BASELINE, "mnli", "squad", "multi-task"]
    files = {p.name for p in report.iterdir()}
    for target in targets:
        assert {f"{target}.csv", f"{target}_delta.csv", f"{target}_languages.png"} <= files, target
        rows = read_csv(report / f"{target}.csv")
        assert column(rows, "setting") == settings, target
        assert all(r["avg"] for r in rows), f"{target}: every setting has an average"
        assert column(read_csv(report / f"{target}_delta.csv"), "setting") == settings[1:], target
    for image in ("heatmap.png", *(f"{t}_languages.png" for t in targets)):
        assert (report / image).read_bytes()[:8] == PNG, image

    summary = read_csv(report / "summary.csv")
    rows = {r["setting"]: r for r in summary}
    assert list(rows)[:4] == settings and "best per target" in rows
    for setting in settings:
        averages = [float(rows[setting][t]) for t in targets]
        assert math.isclose(float(rows[setting]["xtreme_avg"]), sum(averages) / 9, abs_tol=1e-3), setting
    assert all(rows[s]["delta_xtreme_avg"] and rows[s]["delta_xtreme_avg_ci_low"] for s in settings[1:])
    check_intervals(report, targets)

    best = read_csv(report / "best.csv")
    assert column(best, "target") == targets
    chosen_on = dict(column(best, "target", "selected_on"))
    assert {chosen_on[t] for t in targets if t not in ("bucc", "tatoeba")} == {"English dev"}
    assert chosen_on["bucc"] == "sample split" and "no dev split" in chosen_on["tatoeba"]
    qa = read_csv(report / "qa.csv")
    assert {"xquad_f1", "xquad_exact_match", "mlqa_f1", "tydiqa_exact_match"} <= set(qa[0])

    cost = read_csv(report / "cost.csv")
    assert cost[-1]["phase"] == "total" and len(cost) - 1 == len(plan.phases)
    markdown = (report / "report.md").read_text()
    assert "heatmap.png" in markdown and "## Cost" in markdown and "## Protocol" in markdown
    assert "- Benchmark: XTREME;" in markdown and "direction en-xx" in markdown
    assert "seqeval 0.0.12" in markdown and "duplicates: drop" in markdown

    # `xstilts suggest` over the twin's store: gains observed on the nine targets fit the regression, and
    # the leave-one-target-out table rates it on every target.
    store = str(tmp_path / "store")
    table = run_xstilts("suggest", "--target", "xnli", "--store", store)
    assert table.returncode == 0, table.stderr[-3000:]
    assert "Leave-one-target-out evaluation" in table.stdout and "(encoder tiny; regression)" in table.stdout
    assert all(re.search(rf"^{t} +2 regression ", table.stdout, re.M) for t in targets), table.stdout
    data = json.loads(
        run_xstilts("suggest", "--target", "xnli", "--store", store, "--no-compute", "-o", "json").stdout
    )
    assert data["method"] == "regression" and {c["task"] for c in data["candidates"]} == {"mnli", "squad"}
    assert sorted(r["target"] for r in data["evaluation"]["targets"]) == sorted(targets)


@pytest.mark.slow
def test_xtreme_r_twin_runs_end_to_end_with_its_report(tmp_path: Path) -> None:
    sweep = yaml.safe_load(XTREME_R_TWIN.read_text())
    targets = sweep["targets"]
    assert sweep["benchmark"] == "xtreme-r" and len(targets) == 10
    report = submit(XTREME_R_TWIN, tmp_path / "store")
    summary = {r["setting"]: r for r in read_csv(report / "summary.csv")}
    for setting in (BASELINE, "mnli"):
        averages = [float(summary[setting][t]) for t in targets]
        assert math.isclose(float(summary[setting]["xtreme_avg"]), sum(averages) / 10, abs_tol=1e-3)
    markdown = (report / "report.md").read_text()
    assert "- Benchmark: XTREME-R;" in markdown and "| XTREME-R avg |" in markdown
    assert "XTREME-R: its 10 tasks in exactly its languages" in markdown
    check_intervals(report, targets)
