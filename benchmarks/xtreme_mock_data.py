"""xstilts' metric functions on google-research/xtreme's own mock submission, against the averages its
`evaluate_test.py` expects (quoted below as facts; the mock files are read from a checkout of that
repository, never copied here).

    git clone https://github.com/google-research/xtreme /tmp/xtreme
    python benchmarks/xtreme_mock_data.py --xtreme /tmp/xtreme

For each task it reads `mock_test_data/{labels,predictions}/<task>/test-<lang>.*` for the benchmark's
languages in xstilts' task registry (so the check also covers the language lists), scores each language
with the function xstilts uses for that task, averages over languages as evaluate.py does, and prints
ours, expected, and whether they agree (to 1e-9). Exit status 1 if any disagree.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python benchmarks/x.py` from the repository root
    sys.path.insert(0, str(REPO))

from xstilts.evaluate import metrics as m  # noqa: E402
from xstilts.tasks import get_task  # noqa: E402

# google-research/xtreme evaluate_test.py: TASK2AVG_SCORES and XTREME_R_TASK2AVG_SCORES (Mewsli-X).
EXPECTED = {
    "pawsx": {"accuracy": 51.42857142857143},
    "xnli": {"accuracy": 30.666666666666668},
    "panx": {"f1": 57.50793650793652, "precision": 54.729166666666664, "recall": 62.750000000000014},
    "udpos": {"f1": 70.21746048354693, "precision": 71.02232625883823, "recall": 69.54982073976082},
    "bucc2018": {"f1": 55.0, "precision": 55.0, "recall": 55.0},
    "tatoeba": {"accuracy": 53.611111111111114},
    "xquad": {"exact_match": 77.27272727272727, "f1": 79.9586776859504},
    "mlqa": {"exact_match": 57.142857142857146, "f1": 81.76870748299321},
    "tydiqa": {"exact_match": 88.88888888888889, "f1": 97.22222222222223},
    "mewslix": {"map@20": 14.39025156130419},
}
REGISTRY_NAME = {"bucc2018": "bucc", "mewslix": "mewsli-x"}
BENCHMARK = {"mewslix": "xtreme-r"}


def lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def tag_blocks(path: Path) -> list[list[str]]:
    """evaluate.py's read_tag: blank lines separate examples."""
    blocks, block = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            block.append(line.strip())
        else:
            blocks.append(block)
            block = []
    if block:
        blocks.append(block)
    return blocks


def squad_references(path: Path) -> dict[str, list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    articles = data["data"] if "data" in data else data
    return {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for article in articles
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


def score(task: str, lang: str, label: Path, pred: Path) -> dict[str, float]:
    if task in ("pawsx", "xnli", "tatoeba"):
        return {"accuracy": m.accuracy(lines(pred), lines(label))}
    if task == "panx":
        return m.tagging_f1(tag_blocks(label), tag_blocks(pred))
    if task == "udpos":
        return m.udpos_f1(tag_blocks(label), tag_blocks(pred))
    if task == "bucc2018":
        gold = {tuple(line.split("\t")) for line in lines(label) if line}
        found = [(1.0, *line.split("\t")) for line in lines(pred) if line]
        out = m.bucc_scores(found, gold, 0.0)  # type: ignore[arg-type]
        return {k: out[k] for k in ("f1", "precision", "recall")}
    if task in ("xquad", "tydiqa"):
        return m.squad_scores(json.loads(pred.read_text(encoding="utf-8")), squad_references(label))
    if task == "mlqa":
        return m.mlqa_scores(json.loads(pred.read_text(encoding="utf-8")), squad_references(label), lang)
    if task == "mewslix":
        gold = json.loads(label.read_text(encoding="utf-8"))
        ranked = json.loads(pred.read_text(encoding="utf-8"))
        values = [m.average_precision_at_k(ranked.get(i, []), {g[0].strip()}, 20) for i, g in gold.items()]
        return {"map@20": 100.0 * sum(values) / len(values) if values else 0.0}
    raise ValueError(task)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xtreme", type=Path, required=True, help="a checkout of google-research/xtreme")
    args = parser.parse_args()
    root = args.xtreme / "mock_test_data"
    failures = 0
    for task, expected in EXPECTED.items():
        benchmark = BENCHMARK.get(task, "xtreme")
        langs = get_task(REGISTRY_NAME.get(task, task)).benchmark_languages(benchmark)
        suffix = "json" if task in ("xquad", "mlqa", "tydiqa", "mewslix") else "tsv"
        per_lang = [
            score(task, lang, root / "labels" / task / f"test-{lang}.{suffix}",
                  root / "predictions" / task / f"test-{lang}.{suffix}")
            for lang in langs
        ]  # fmt: skip
        for metric, value in expected.items():
            ours = sum(s[metric] for s in per_lang) / len(per_lang)
            ok = math.isclose(ours, value, rel_tol=0, abs_tol=1e-9)
            exact = "identical" if ours == value else f"differs by {ours - value:.1e}"
            failures += not ok
            verdict = "ok" if ok else "DIFFERENT"
            print(f"{task:9} {metric:12} ours {ours:.12f}  expected {value:.12f}  {verdict} ({exact})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
