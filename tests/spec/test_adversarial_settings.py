"""Adversarial training settings: each method's option block with its paper's defaults, merged key by
key across override layers, part of a phase's content address only when that method is selected (so
plain phases keep their addresses), and bad values reported in one line naming file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from xstilts.cli.main import app
from xstilts.errors import EXIT_CONFIG
from xstilts.plan.expand import expand
from xstilts.spec import parse_sweep
from xstilts.spec.adversarial import ADVERSARIAL_OPTIONS
from xstilts.spec.training import TrainingConfig, resolve_training

BLOCKS = set(ADVERSARIAL_OPTIONS)


def sweep(*intermediate: dict, training: dict | None = None) -> dict:
    return {
        "name": "adv",
        "data": {"source": "fixtures"},
        "encoders": [{"name": "tiny", "model": "tiny"}],
        "intermediate": list(intermediate),
        "targets": ["pawsx"],
        **({"training": training} if training else {}),
    }


def intermediate_training(data: dict) -> dict[str, dict]:
    plan = expand(parse_sweep(data))
    return {p.label: p.config.training for p in plan.ordered() if p.kind == "intermediate"}


def addresses(data: dict) -> dict[str, str]:
    return {f"{p.kind}:{p.label}": p.address for p in expand(parse_sweep(data)).ordered()}


def test_defaults_are_the_papers():
    config = TrainingConfig()
    assert (config.r3f.eps, config.r3f.noise) == (1e-5, "uniform")  # fairseq's R3F
    freelb = config.freelb  # the FreeLB reference implementation's MNLI run
    assert (freelb.adv_steps, freelb.adv_lr, freelb.adv_init_mag, freelb.max_norm, freelb.norm) == (
        2, 0.1, 0.1, 0.3, "l2",
    )  # fmt: skip
    assert freelb.same_dropout
    smart = config.smart  # SMART, section 5: eps = sigma = 1e-5, eta = 1e-3, T = 1, mu = 1, beta 0.99/0.999
    assert (smart.eps, smart.noise_std, smart.step_size, smart.adv_steps, smart.norm) == (
        1e-5,
        1e-5,
        1e-3,
        1,
        "linf",
    )
    assert (smart.mu, smart.beta, smart.beta_late, smart.beta_switch) == (1.0, 0.99, 0.999, 0.1)
    assert config.adversarial_weight == 1.0  # R3F's lambda and SMART's lambda_s


def test_only_the_selected_methods_block_is_part_of_the_config():
    assert not BLOCKS & set(TrainingConfig().model_dump())
    for kind in BLOCKS:
        dumped = TrainingConfig(adversarial=kind).model_dump()
        assert BLOCKS & set(dumped) == {kind}
        assert TrainingConfig.model_validate(dumped) == TrainingConfig(adversarial=kind)  # round trip


def test_plain_phases_keep_their_addresses_and_options_address_their_own_phase():
    plain = {"task": "mnli"}
    smart = {"name": "mnli-smart", "task": "mnli", "training": {"adversarial": "smart"}}
    training = intermediate_training(sweep(plain, smart))
    assert not BLOCKS & set(training["mnli"]), "a plain phase's training config is what it was"
    assert training["mnli-smart"]["smart"] == TrainingConfig().smart.model_dump()

    before = addresses(sweep(plain, smart))
    tuned = {**smart, "training": {"adversarial": "smart", "smart": {"mu": 0.5}}}
    after = addresses(sweep(plain, tuned))
    assert before["intermediate:mnli"] == after["intermediate:mnli"]
    assert before["intermediate:mnli-smart"] != after["intermediate:mnli-smart"]
    # Options of a method a setting does not use change nothing.
    unused = addresses(sweep(plain, smart, training={"freelb": {"adv_steps": 3}}))
    assert unused == before


def test_option_blocks_merge_key_by_key_across_layers():
    data = sweep(
        {
            "name": "mnli-freelb",
            "task": "mnli",
            "training": {"adversarial": "freelb", "freelb": {"adv_lr": 0.05}},
        },
        training={"freelb": {"adv_steps": 3, "norm": "linf"}},
    )
    freelb = intermediate_training(data)["mnli-freelb"]["freelb"]
    assert (freelb["adv_steps"], freelb["adv_lr"], freelb["norm"], freelb["adv_init_mag"]) == (
        3,
        0.05,
        "linf",
        0.1,
    )
    merged = resolve_training({"smart": {"mu": 2.0}}, {"smart": {"eps": 1e-4}}, {"adversarial": "smart"})
    assert (merged.smart.mu, merged.smart.eps, merged.smart.beta) == (2.0, 1e-4, 0.99)


@pytest.mark.parametrize(
    ("training", "needle"),
    [
        ({"adversarial": "smart", "smart": {"norm": "l1"}}, "field 'intermediate[0].training.smart.norm'"),
        (
            {"adversarial": "freelb", "freelb": {"adv_steps": 0}},
            "field 'intermediate[0].training.freelb.adv_steps'",
        ),
        ({"adversarial": "r3f", "r3f": {"noise": "laplace"}}, "field 'intermediate[0].training.r3f.noise'"),
        ({"adversarial": "smart", "smart": {"lambda": 1}}, "field 'intermediate[0].training.smart.lambda'"),
        ({"adversarial": "vat"}, "field 'intermediate[0].training.adversarial'"),
    ],
)
def test_bad_options_name_file_field_and_fix(tmp_path: Path, training: dict, needle: str):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(sweep({"task": "mnli", "training": training})))
    result = CliRunner().invoke(app, ["sweep", "plan", str(path), "--store", str(tmp_path / "store")])
    assert result.exit_code == EXIT_CONFIG
    line = result.output.strip()
    assert "\n" not in line and line.startswith(f"Error: {path}: {needle}") and "(fix: " in line, line


def test_freelb_takes_no_weight_even_when_another_layer_sets_one(tmp_path: Path):
    """FreeLB's loss replaces the task loss: a sweep-wide adversarial_weight meant for R3F or SMART is
    an error for a FreeLB setting, reported when the layers meet."""
    path = tmp_path / "bad.yaml"
    data = sweep(
        {"task": "mnli", "training": {"adversarial": "freelb"}}, training={"adversarial_weight": 2.0}
    )
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["sweep", "plan", str(path), "--store", str(tmp_path / "store")])
    assert result.exit_code == EXIT_CONFIG
    assert result.output.strip() == (
        f"Error: {path}: field 'training.adversarial_weight': FreeLB's adversarial loss replaces the task "
        "loss, so it takes no weight (got 2.0) (fix: set it to 1.0 or remove it)"
    )
