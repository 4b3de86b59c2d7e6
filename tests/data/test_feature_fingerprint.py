"""The feature cache's code fingerprint covers every function feature building runs: it is derived from
the import graph of the feature builders (`xstilts.data.cache.feature_modules`), so a change to, say,
`xstilts.data.labels.first_subword_labels` (which makes the tagging labels) is a cache miss."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import xstilts
from xstilts.data import cache

PACKAGE = Path(xstilts.__file__).resolve().parent
FINGERPRINT = "from xstilts.data.cache import code_fingerprint; print(code_fingerprint())"


def _copy_package(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    shutil.copytree(PACKAGE, root / "xstilts", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _fingerprint_of(root: Path) -> str:
    """code_fingerprint() as a process importing xstilts from `root` computes it (any xstilts version)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = f"import xstilts; assert xstilts.__file__.startswith({str(root)!r}); {FINGERPRINT}"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _change_function(path: Path, name: str) -> None:
    """Insert a statement at the top of function `name`'s body (a real change of what it does)."""
    source = path.read_text(encoding="utf-8")
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == name)
    lines = source.splitlines(keepends=True)
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):  # keep the docstring first
        first = node.body[1]
    indent = " " * first.col_offset
    lines.insert(first.lineno - 1, f"{indent}ignore_index = ignore_index if True else None\n")
    path.write_text("".join(lines), encoding="utf-8")


def test_changing_first_subword_labels_changes_the_cache_key(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    before = _fingerprint_of(root)
    _change_function(root / "xstilts" / "data" / "labels.py", "first_subword_labels")
    assert _fingerprint_of(root) != before


def test_every_module_in_the_closure_is_part_of_the_key(tmp_path: Path) -> None:
    root = _copy_package(tmp_path) / "xstilts"
    modules = cache.feature_modules(root)
    assert {"xstilts.data.labels", "xstilts.data.mlm", "xstilts.tasks.registry"} <= set(modules)
    baseline = cache.code_fingerprint(str(root))
    assert baseline == cache.code_fingerprint()  # same sources, same key
    for name, path in modules.items():
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")
        cache.code_fingerprint.cache_clear()
        assert cache.code_fingerprint(str(root)) != baseline, name
        path.write_bytes(original)
    cache.code_fingerprint.cache_clear()


def test_a_new_import_joins_the_closure(tmp_path: Path) -> None:
    root = _copy_package(tmp_path) / "xstilts"
    assert "xstilts.report.tables" not in cache.feature_modules(root)
    features = root / "data" / "features.py"
    features.write_text(features.read_text() + "\n\ndef _late():\n    from xstilts.report import tables\n")
    assert "xstilts.report.tables" in cache.feature_modules(root)


@pytest.fixture(scope="module")
def tokenizer():
    from xstilts.data.fixtures import corpus_lines
    from xstilts.modeling.tiny import train_tokenizer

    return train_tokenizer(corpus_lines(n_per_lang=40), 400)


def test_the_closure_holds_every_function_feature_building_runs(tokenizer) -> None:
    """Trace featurization of every format (and augmentation, perturbation, MLM masking): each xstilts
    function that runs lives in a module of the closure."""
    from xstilts.augment.examples import augment_examples
    from xstilts.data.features import featurize
    from xstilts.data.load import load_examples
    from xstilts.data.mlm import mask_features
    from xstilts.evaluate.robustness import Robustness
    from xstilts.tasks import get_task

    data = {"source": "fixtures"}
    ran: set[str] = set()

    def profile(frame, event, _arg):
        if event == "call":
            ran.add(frame.f_code.co_filename)

    sys.setprofile(profile)
    try:
        for name in ("pawsx", "hellaswag", "stsb", "panx", "udpos", "xquad", "mlm"):
            task = get_task(name)
            examples = load_examples(task, "train", data, limit=4)
            if name in ("pawsx", "panx"):
                examples = augment_examples(task, examples, [{"name": "char_noise", "rate": 0.2}], data)
                robustness = Robustness(task, [{"name": "word_perturb", "rate": 0.2}], data)
                examples += [e for _, variant in robustness.variants("en", examples) for e in variant]
            features = featurize(task, tokenizer, examples, 48, 16)
            if name == "mlm":
                mask_features(features, tokenizer, 0.15, seed=1)
    finally:
        sys.setprofile(None)
    closure = {str(path.resolve()) for path in cache.feature_modules().values()}
    used = {str(Path(f).resolve()) for f in ran if Path(f).resolve().is_relative_to(PACKAGE)}
    assert used and used <= closure, sorted(used - closure)
