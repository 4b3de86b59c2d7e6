"""Sweep files: valid files load; every invalid one gives one line naming file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xstilts.errors import EXIT_CONFIG, ConfigError
from xstilts.spec import load_sweep, parse_sweep
from xstilts.spec.training import TrainingConfig, resolve_training

REPO = Path(__file__).resolve().parents[2]
BASE = {"name": "t", "encoders": [{"name": "tiny", "model": "tiny"}], "targets": ["pawsx"]}


def test_every_sweep_in_jobs_loads():
    files = sorted((REPO / "jobs").glob("*.yaml"))
    assert files, "jobs/ has sweep files"
    for path in files:
        sweep = load_sweep(path)
        assert sweep.name and sweep.targets


def test_defaults_follow_design():
    config = TrainingConfig()
    assert (config.learning_rate, config.adam_epsilon, config.weight_decay) == (1e-5, 1e-8, 0.01)
    assert (config.warmup_ratio, config.max_grad_norm, config.batch_size, config.max_length) == (
        0.1,
        1.0,
        32,
        256,
    )


def test_override_layers_later_wins_and_only_set_fields_count():
    config = resolve_training({"epochs": 2, "max_length": 384}, {"epochs": 5}, None, {"learning_rate": 3e-5})
    assert (config.epochs, config.max_length, config.learning_rate) == (5, 384, 3e-5)


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"targets": ["pawz-x"]}, "targets[0]", "did you mean pawsx"),
        (
            {"intermediate": [{"task": "mnli", "samplng": "x"}]},
            "intermediate[0].samplng",
            "did you mean 'sampling'",
        ),
        (
            {"intermediate": [{"tasks": ["mnli", "squad"], "sampling": "best"}]},
            "intermediate[0].sampling",
            "'proportional', 'temperature' or 'uniform'",
        ),
        (
            {"intermediate": [{"task": "mnli", "tasks": ["mnli", "squad"]}]},
            "intermediate[0]",
            "exactly one of",
        ),
        ({"training": {"epochs": "many"}}, "training.epochs", "valid number"),
        ({"training": {"learning_rate": -1}}, "training.learning_rate", "greater than 0"),
        ({"languages": {"pawsx": ["de", "xx"]}}, "languages.pawsx[1]", "pawsx has: de en es fr ja ko zh"),
        ({"seeds": []}, "seeds", "at least 1"),
        ({"name": "Bad Name"}, "name", "pattern"),
        (
            {"encoders": [{"name": "a", "model": "tiny"}, {"name": "a", "model": "tiny"}]},
            "(top level)",
            "repeated: a",
        ),
        ({"targets": ["mnli"]}, "targets[0]", "not a target task"),
    ],
)
def test_invalid_sweeps_name_file_field_and_fix(change, field, needle):
    with pytest.raises(ConfigError) as info:
        parse_sweep({**BASE, **change}, "jobs/x.yaml")
    message = str(info.value)
    assert message.startswith("jobs/x.yaml: ")
    assert f"field '{field}'" in message
    assert needle in message
    assert "(fix: " in message
    assert "\n" not in message
    assert info.value.exit_code == EXIT_CONFIG


def test_yaml_syntax_error_names_line(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: t\ntargets: [pawsx\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line \d+, column \d+"):
        load_sweep(path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found"):
        load_sweep(tmp_path / "nope.yaml")


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
keys = st.sampled_from(
    [
        "name",
        "encoders",
        "targets",
        "intermediate",
        "training",
        "seeds",
        "languages",
        "data",
        "resources",
        "kubernetes",
        "task_training",
        "mlm",
        "deepspeed",
        "bogus",
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, yaml_values, max_size=6), st.booleans())
def test_malformed_files_only_ever_raise_config_errors(tmp_path_factory, data, start_valid):
    document = {**BASE, **data} if start_valid else data
    path = tmp_path_factory.mktemp("h") / "sweep.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        load_sweep(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_loader(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("b") / "sweep.yaml"
    path.write_bytes(blob)
    try:
        load_sweep(path)
    except ConfigError:
        pass


def test_code_switching_needs_a_dictionary():
    with pytest.raises(ConfigError, match=r"field 'intermediate\[0\].augment\[0\]'.*needs a 'dictionary'"):
        parse_sweep(
            {**BASE, "intermediate": [{"task": "mnli", "augment": [{"name": "code_switch"}]}]}, "x.yaml"
        )


def test_subset_larger_than_pool_is_rejected():
    with pytest.raises(ConfigError, match="larger than the pool"):
        parse_sweep({**BASE, "intermediate_subsets": [{"pool": ["mnli", "squad"], "k": 3}]}, "x.yaml")
