"""The paper grid's tiny twin (jobs/tiny-xstilts-paper.yaml) end to end: baseline, two intermediate tasks
and their mixture, crossed with the nine XTREME targets, on fixtures; the report has every target's
per-language table, delta table and plot, the heatmap, the XTREME-style average and the cost table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_xstilts
from tests.e2e.test_research_sweeps import column, read_csv
from xstilts.plan import expand
from xstilts.plan.expand import BASELINE
from xstilts.spec import load_sweep

TWIN = REPO / "jobs" / "tiny-xstilts-paper.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_paper_twin_runs_end_to_end_with_its_report(tmp_path: Path) -> None:
    sweep = yaml.safe_load(TWIN.read_text())
    targets = sweep["targets"]
    assert len(targets) == 9
    store = tmp_path / "store"
    result = run_xstilts("sweep", "submit", str(TWIN), "--store", str(store), timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    plan = expand(load_sweep(TWIN))
    for phase in plan.ordered():
        assert (store / phase.prefix / "_COMPLETE").is_file(), phase.name
    trained = {p.label for p in plan.ordered() if p.kind == "target"}
    assert "xquad" in trained and "mlqa" not in trained, "MLQA is evaluated with the XQuAD-trained models"

    report = store / "reports" / sweep["name"]
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
    assert all(rows[s]["delta_xtreme_avg"] for s in settings[1:])

    cost = read_csv(report / "cost.csv")
    assert cost[-1]["phase"] == "total" and len(cost) - 1 == len(plan.phases)
    markdown = (report / "report.md").read_text()
    assert "heatmap.png" in markdown and "## Cost" in markdown
