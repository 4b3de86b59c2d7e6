"""The offline tiny tokenizer is the same in every process that builds it (same pieces, ids and scores),
so two stores that each build the tiny encoder tokenize alike."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

BUILD = """
import hashlib, json
from xstilts.data.fixtures import corpus_lines
from xstilts.modeling.tiny import train_tokenizer
lines = corpus_lines()
tok = train_tokenizer(lines, 2000)
model = json.loads(tok.backend_tokenizer.to_str())["model"]
ids = [tok(line)["input_ids"] for line in lines[:300]]
print(hashlib.sha256(json.dumps([model, ids]).encode()).hexdigest())
"""


def test_tiny_tokenizer_is_identical_across_processes() -> None:
    digests = {
        subprocess.run(
            [sys.executable, "-c", BUILD], capture_output=True, text=True, check=True, cwd=REPO
        ).stdout.strip()
        for _ in range(4)
    }
    assert len(digests) == 1, digests
