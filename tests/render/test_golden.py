"""Golden manifests of jobs/tiny.yaml: any change to what the renderer writes shows up as a text diff.

Content addresses are replaced by placeholders, so that a changed training default (which changes
every address) does not churn these files: they track the renderer, the plan has its own tests.

Regenerate after an intended change (or after jobs/tiny.yaml or a default changed the addresses):
    XSTILTS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/render/test_golden.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from xstilts.plan.expand import expand
from xstilts.render.controller import render_controller
from xstilts.render.dump import to_yaml
from xstilts.render.job import render_phase
from xstilts.spec.cluster import ClusterSettings
from xstilts.spec.load import load_sweep

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "jobs" / "tiny.yaml"
GOLDEN = Path(__file__).resolve().parent / "golden" / "tiny"
STORE = "s3://xstilts/runs"
# What the chart installs with its defaults in namespace xstilts (plus a pinned image tag).
SETTINGS = ClusterSettings.model_validate(
    {
        "namespace": "xstilts",
        "image": "ghcr.io/xstilts/xstilts-trainer:0.1.0",
        "controllerImage": "ghcr.io/xstilts/xstilts-controller:0.1.0",
        "serviceAccountName": "xstilts",
        "s3": {
            "secretName": "xstilts-s3",
            "endpointUrl": "http://xstilts-s3.xstilts.svc:8080",
            "region": "us-east-1",
        },
    }
)
HINT = "regenerate with XSTILTS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/render/test_golden.py"


def expected() -> dict[str, str]:
    sweep = load_sweep(TINY)
    files: dict[str, str] = {}
    seen: dict[str, int] = {}
    for phase in expand(sweep).ordered():
        stem = f"{phase.kind}-{phase.label.replace('+', '-')}"
        seen[stem] = seen.get(stem, 0) + 1
        text = to_yaml(render_phase(phase, sweep.name, STORE, SETTINGS))
        text = text.replace(phase.address, "ADDRESS").replace(phase.address[:8], "ADDR8")
        files[f"{stem}-{seen[stem]}.yaml"] = text
    files["controller.yaml"] = to_yaml(render_controller(TINY.read_text(), sweep.name, STORE, SETTINGS))
    return files


def test_tiny_manifests_match_the_golden_files() -> None:
    files = expected()
    if os.environ.get("XSTILTS_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in GOLDEN.glob("*.yaml")) - set(files):
            (GOLDEN / stale).unlink()
        for name, text in files.items():
            (GOLDEN / name).write_text(text)
    present = {p.name for p in GOLDEN.glob("*.yaml")}
    assert present == set(files), (
        f"golden files differ from the phases of {TINY.name}: missing {sorted(set(files) - present)}, "
        f"stale {sorted(present - set(files))}; {HINT}"
    )
    for name, text in sorted(files.items()):
        golden = (GOLDEN / name).read_text()
        if golden != text:
            diff = "".join(
                difflib.unified_diff(golden.splitlines(True), text.splitlines(True), name, "rendered")
            )
            raise AssertionError(f"{name} changed:\n{diff}\n{HINT}")
