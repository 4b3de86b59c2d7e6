"""Fixtures for the tests that run tasks on the tiny model (tests/data, train, modeling, evaluate, phases):
fixture data, a tiny tokenizer trained on the fixture text (once per session) and a tiny random-init
XLM-R-shaped encoder. Registered for the whole suite by tests/conftest.py (`pytest_plugins`)."""

from __future__ import annotations

import pytest

FIXTURES = {"source": "fixtures"}


@pytest.fixture(scope="session")
def one_torch_thread():
    """The tiny model gains nothing from threads, and other test runs share the 2 cores."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def data() -> dict:
    return dict(FIXTURES)


@pytest.fixture(scope="session")
def tokenizer(one_torch_thread):
    from xstilts.data.fixtures import corpus_lines
    from xstilts.modeling.tiny import train_tokenizer

    return train_tokenizer(corpus_lines(), 800)


@pytest.fixture(scope="session")
def encoder_factory(tokenizer, one_torch_thread):
    """A fresh tiny encoder per call (same seed, so every task starts from the same weights)."""
    import torch
    from transformers import AutoModel, XLMRobertaConfig

    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=514, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip

    def make():
        torch.manual_seed(0)
        return AutoModel.from_config(config, add_pooling_layer=False, attn_implementation="sdpa")

    return make
