"""Training settings in the sweep file (xstilts.spec.training)."""

from __future__ import annotations

import pytest

from xstilts.errors import ConfigError
from xstilts.spec import parse_sweep


def test_batching_is_a_training_setting_with_a_clear_error() -> None:
    base = {"name": "t", "data": {"source": "fixtures"}, "encoders": [{"name": "tiny", "model": "tiny"}],
            "targets": ["pawsx"]}  # fmt: skip
    sweep = parse_sweep({**base, "training": {"batching": "random"}}, "t.yaml")
    assert sweep.training.batching == "random"
    with pytest.raises(ConfigError) as error:
        parse_sweep({**base, "training": {"batching": "sorted"}}, "t.yaml")
    assert "t.yaml" in str(error.value) and "training.batching" in str(error.value)
