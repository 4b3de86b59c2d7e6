"""The controller image has no torch: everything but `phase run` must import without the training stack
(docs/architecture.md, Layers), and the Dockerfiles must install the right extras."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "datasets", "accelerate", "deepspeed")
# Fixed on purpose: a module missing from this list's packages is a failure, not a skip.
CONTROLLER_MODULES = (
    "xstilts.spec",
    "xstilts.plan",
    "xstilts.render",
    "xstilts.backends",
    "xstilts.store",
    "xstilts.report",
    "xstilts.cli.main",
)

_IMPORT_WITHOUT_HEAVY = """
import importlib, pkgutil, sys
for name in {heavy!r}:
    sys.modules[name] = None  # `import torch` now raises ImportError
target = {module!r}
mod = importlib.import_module(target)
if getattr(mod, "__file__", None) is None:
    sys.exit(f"{{target}} is an empty directory (a namespace package), not a module yet")
failed = []
for info in pkgutil.walk_packages(getattr(mod, "__path__", []), prefix=target + "."):
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed.append(f"{{info.name}}: {{type(exc).__name__}}: {{exc}}")
if failed:
    sys.exit("submodules that need the training stack at import time:\\n" + "\\n".join(failed))
"""


@pytest.mark.parametrize("module", CONTROLLER_MODULES)
def test_imports_without_training_stack(module: str) -> None:
    code = _IMPORT_WITHOUT_HEAVY.format(heavy=HEAVY, module=module)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, f"{module} does not import without {', '.join(HEAVY)}:\n{proc.stderr}"


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, args = line.strip().partition(" ")
            out.append((instruction.upper(), " ".join(args.split())))
    return out


def pip_install_targets(instructions: list[tuple[str, str]]) -> list[str]:
    targets = []
    for instruction, args in instructions:
        if instruction != "RUN":
            continue
        for command in re.split(r"&&|;", args):
            words = command.split()
            if words[:2] == ["pip", "install"] or words[:4] == ["python", "-m", "pip", "install"]:
                targets += [
                    w.strip("'\"")
                    for w in words
                    if not w.startswith("-") and w not in {"pip", "install", "python"}
                ]
    return targets


def test_controller_dockerfile_installs_base_dependencies_and_the_report_extra_only() -> None:
    instructions = dockerfile_instructions(REPO / "images" / "controller" / "Dockerfile")
    assert re.match(r"python:3\.11-slim", dict(instructions)["ARG"].split("=", 1)[1])
    # The report extra (matplotlib) for the report the in-cluster controller writes; no training stack.
    assert pip_install_targets(instructions) == ["/src[report]"]
    assert ("COPY", ". /src") in instructions
    assert ("USER", "1000:1000") in instructions
    assert instructions[-2] == ("ENTRYPOINT", '["xstilts"]')


def test_trainer_dockerfile_installs_train_and_deepspeed_not_cpu() -> None:
    instructions = dockerfile_instructions(REPO / "images" / "trainer" / "Dockerfile")
    base = dict(instructions)["ARG"].split("=", 1)[1]
    assert re.fullmatch(
        r"pytorch/pytorch:\d+\.\d+\.\d+-cuda\d+\.\d+-cudnn\d+-(runtime|devel)(@sha256:[0-9a-f]{64})?", base
    )
    (target,) = pip_install_targets(instructions)
    extras = set(re.fullmatch(r"/src\[(.*)\]", target).group(1).split(","))
    assert extras == {"train", "deepspeed"}
    env = " ".join(args for instruction, args in instructions if instruction == "ENV")
    assert "HF_HOME=/var/cache/xstilts/hf" in env and "XSTILTS_STAGING=/var/lib/xstilts/staging" in env
    assert "HF_HUB_OFFLINE" not in env
    assert ("USER", "1000:1000") in instructions
    assert instructions[-2] == ("ENTRYPOINT", '["xstilts"]')


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "xstilts-runs", "**/__pycache__"} <= patterns
    assert "README.md" not in patterns  # pyproject.toml names it as the readme
