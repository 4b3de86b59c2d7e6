"""Planning, rendering and the Kubernetes backend import no training stack (the controller image has
none): a subprocess where `import torch` (and friends) fails imports them and renders a sweep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "datasets", "accelerate", "deepspeed")
CODE = f"""
import sys
for name in {HEAVY!r}:
    sys.modules[name] = None  # `import torch` now raises ImportError
import xstilts.render.job, xstilts.render.controller, xstilts.render.deepspeed, xstilts.backends.release
import xstilts.backends.kubernetes
from xstilts.plan.expand import expand
from xstilts.render.dump import to_yaml
from xstilts.render.job import render_phase
from xstilts.render.controller import render_controller
from xstilts.spec.cluster import ClusterSettings
from xstilts.spec.load import load_sweep
sweep = load_sweep("jobs/tiny.yaml")
settings = ClusterSettings()
objects = [o for p in expand(sweep).ordered() for o in render_phase(p, sweep.name, "s3://b/r", settings)]
objects += render_controller("name: tiny", sweep.name, "s3://b/r", ClusterSettings())
assert to_yaml(objects).count("kind: Job") == len(objects) - 1
loaded = sorted(n for n in {HEAVY!r} if sys.modules.get(n) is not None)
assert not loaded, loaded
"""


def test_render_and_kubernetes_backend_import_without_torch() -> None:
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
