"""The report's intervals on a hand-made store whose prediction files carry per-example stats, with a
known answer: PAWS-X in en and de, 100 examples each, three seeds with the same predictions.

- baseline: de right on examples 0-49, en right on 0-69 -> de 50, en 70, avg 60;
- mnli: de right on 0-79 (30 more), en as the baseline -> de +30, en 0, avg +15;
- sst2: exactly the baseline's predictions -> every delta 0.

A bootstrap replicate's de delta is (# of examples 50-79 drawn among 100): Binomial(100, 0.3), whose
2.5% / 97.5% quantiles are 21 / 39; en's is always 0, so the average's interval is half of de's. The
per-seed differences are 15, 15, 15: the sign-flip p over 3 seeds is 2/8."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xstilts.plan.expand import BASELINE, Plan, expand
from xstilts.report import build_report, build_tables, collect_results
from xstilts.report.significance import Delta
from xstilts.spec import parse_sweep
from xstilts.store import LocalStore, Store
from xstilts.store.complete import commit_dir

SWEEP = {
    "name": "sig", "data": {"source": "fixtures"}, "encoders": [{"name": "tiny", "model": "tiny"}],
    "intermediate": [{"task": "mnli"}, {"task": "sst2"}], "targets": ["pawsx"],
    "languages": {"pawsx": ["en", "de"]}, "seeds": [1, 2, 3],
}  # fmt: skip
RIGHT = {BASELINE: {"en": 70, "de": 50}, "mnli": {"en": 70, "de": 80}, "sst2": {"en": 70, "de": 50}}


def commit(store: Store, plan: Plan, address: str, root: Path, setting: str | None = None) -> None:
    phase = plan.phases[address]
    local = root / address
    if local.exists():
        return
    for parent in phase.inputs.values():
        commit(store, plan, parent, root)
    local.mkdir(parents=True)
    metrics: dict = {"steps": 1, "dev": {"score": {"mnli": 71.0, "sst2": 69.0}.get(phase.settings[0], 60.0)}}
    if phase.kind == "evaluate":
        assert setting is not None
        languages = {}
        for lang, right in RIGHT[setting].items():
            records = [{"unit": i, "stats": {"score": int(i < right)}} for i in range(100)]
            (local / "predictions").mkdir(exist_ok=True)
            text = "".join(json.dumps(r) + "\n" for r in records)
            (local / "predictions" / f"{lang}.jsonl").write_text(text)
            languages[lang] = {"accuracy": float(right), "score": float(right), "units": 100}
        scores = [f["score"] for f in languages.values()]
        metrics = {"task": "pawsx", "metric": "accuracy", "languages": languages,
                   "average": sum(scores) / 2, "average_zero_shot": languages["de"]["score"]}  # fmt: skip
    (local / "metrics.json").write_text(json.dumps(metrics))
    (local / "lineage.json").write_text(json.dumps({"started_at": "2024-05-01T12:00:00Z",
                                                    "finished_at": "2024-05-01T12:01:00Z"}))  # fmt: skip
    commit_dir(store, local, phase.prefix)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    plan = expand(parse_sweep(SWEEP, "sig.yaml"))
    root = tmp_path_factory.mktemp("sig")
    store = LocalStore(root / "store")
    for run in plan.runs:
        commit(store, plan, run.evaluate, root / "staging", run.setting)
    return plan, store, build_report(plan, store, root / "report")


def test_bootstrap_intervals_have_the_known_answer(report) -> None:
    plan, store, _ = report
    tables = build_tables(collect_results(plan, store))
    row = tables.target_deltas["pawsx"].row(setting="mnli")
    keys = [c.key for c in tables.target_deltas["pawsx"].columns]
    en, de, avg, seed_p = (row[keys.index(k)] for k in ("en", "de", "avg", "seed_p"))
    assert isinstance(de, Delta) and de.value == pytest.approx(30.0)
    assert 19 <= de.low <= 23 and 37 <= de.high <= 41 and de.significant and de.p < 0.01
    assert isinstance(en, Delta) and (en.value, en.low, en.high, en.significant) == (0.0, 0.0, 0.0, False)
    assert isinstance(avg, Delta) and avg.value == pytest.approx(15.0)
    assert avg.low == pytest.approx(de.low / 2, abs=1.5) and avg.high == pytest.approx(de.high / 2, abs=1.5)
    assert seed_p == pytest.approx(0.25) and avg.seed_p == pytest.approx(0.25)
    same = tables.target_deltas["pawsx"].row(setting="sst2")
    assert all(isinstance(c, Delta) and c.value == 0 and not c.significant for c in same[2:5])


def test_report_marks_significant_deltas_and_writes_intervals(report) -> None:
    _, _, files = report
    markdown = files.markdown.read_text()
    assert "| tiny | mnli | +0.0 [+0.0, +0.0] | +30.0* [" in markdown
    assert "| tiny | sst2 | +0.0 [+0.0, +0.0] | +0.0 [+0.0, +0.0] |" in markdown
    delta = files.csv["pawsx_delta"].read_text().splitlines()
    assert delta[0].startswith(
        "encoder,setting,en,en_ci_low,en_ci_high,en_p,de,de_ci_low,de_ci_high,de_p,avg"
    )
    # the best setting is chosen on dev (mnli 71 > sst2 69) and its delta keeps its interval
    best = files.csv["best"].read_text().splitlines()[1].split(",")
    assert best[2:4] == ["mnli", "English dev"] and float(best[-4]) == 15.0


def test_the_report_reproduces_exactly(report, tmp_path: Path) -> None:
    plan, store, files = report
    again = build_report(plan, store, tmp_path)
    assert again.markdown.read_text() == files.markdown.read_text()
    assert (tmp_path / "summary_delta.csv").read_text() == files.csv["summary_delta"].read_text()
