"""Sweep -> phase DAG: content addresses, sharing, the X-STILTs wiring."""

from __future__ import annotations

from xstilts.plan import BASELINE, content_address, expand
from xstilts.spec import parse_sweep

BASE = {"name": "t", "data": {"source": "fixtures"}, "encoders": [{"name": "tiny", "model": "tiny"}]}


def plan_of(**extra):
    return expand(parse_sweep({**BASE, **extra}, "t.yaml"))


def test_paper_grid_trains_each_intermediate_model_once():
    intermediates = ["mnli", "squad", "hellaswag", "qqp", "sst2"]
    targets = ["xnli", "pawsx", "panx", "udpos", "xquad", "tatoeba"]
    plan = plan_of(intermediate=[{"task": t} for t in intermediates], targets=targets)
    kinds = [p.kind for p in plan.ordered()]
    assert kinds.count("encoder") == 1
    assert kinds.count("intermediate") == len(intermediates)
    trainable = 5  # every target but tatoeba
    settings = len(intermediates) + 1  # + baseline
    assert kinds.count("target") == settings * trainable
    assert kinds.count("evaluate") == settings * len(targets)
    assert len(plan.runs) == settings * len(targets)
    # Naive expansion: every (setting, target) cell retrains its upstream chain.
    assert plan.requested > len(plan.phases)
    assert plan.deduplicated == plan.requested - len(plan.phases)


def test_dag_order_and_wiring():
    plan = plan_of(intermediate=[{"task": "mnli"}], targets=["pawsx", "tatoeba"])
    seen: set[str] = set()
    for phase in plan.ordered():
        assert set(phase.inputs.values()) <= seen, "inputs come before their users"
        seen.add(phase.address)
    by_kind = {}
    for phase in plan.ordered():
        by_kind.setdefault(phase.kind, []).append(phase)
    intermediate = by_kind["intermediate"][0]
    encoder = by_kind["encoder"][0]
    assert intermediate.inputs == {"encoder": encoder.address}
    targets = {plan.phases[p.inputs["encoder"]].kind for p in by_kind["target"]}
    assert targets == {"encoder", "intermediate"}  # baseline and intermediate-trained
    tatoeba = [p for p in by_kind["evaluate"] if p.label == "tatoeba"]
    # Retrieval is evaluated straight from the encoder-bearing phase, with no target phase.
    assert {plan.phases[p.inputs["encoder"]].kind for p in tatoeba} == {"encoder", "intermediate"}
    assert {r.setting for r in plan.runs} == {BASELINE, "mnli"}


def test_addresses_are_content_addresses():
    a = plan_of(intermediate=[{"task": "mnli"}], targets=["pawsx"])
    b = plan_of(intermediate=[{"task": "mnli"}], targets=["pawsx", "panx"], name="other")
    shared = set(a.phases) & set(b.phases)
    assert len(shared) == len(a.phases), "another sweep needing the same phases shares them"
    c = plan_of(intermediate=[{"task": "mnli"}], targets=["pawsx"], training={"learning_rate": 2e-5})
    assert not (set(c.phases) - {p.address for p in c.ordered() if p.kind == "encoder"}) & set(a.phases)
    assert content_address("target", {"x": 1}, {"encoder": "a"}) != content_address(
        "target", {"x": 1}, {"encoder": "b"}
    )
    assert len(next(iter(a.phases))) == 12


def test_seeds_multiply_training_but_not_the_base_encoder():
    plan = plan_of(intermediate=[{"task": "mnli"}], targets=["pawsx"], seeds=[1, 2, 3])
    kinds = [p.kind for p in plan.ordered()]
    assert kinds.count("encoder") == 1
    assert kinds.count("intermediate") == 3
    assert kinds.count("target") == 6


def test_mixture_and_overrides_resolve():
    plan = plan_of(
        intermediate=[{"tasks": ["mnli", "squad"], "sampling": "temperature", "temperature": 3}],
        targets=["xquad"],
        task_training={"xquad": {"epochs": 1}},
        target_training={"learning_rate": 3e-5},
    )
    mixture = next(p for p in plan.ordered() if p.kind == "intermediate")
    assert mixture.label == "mnli+squad"
    assert mixture.config.tasks == ["mnli", "squad"]
    assert (mixture.config.training["sampling"], mixture.config.training["temperature"]) == (
        "temperature",
        3,
    )
    target = next(p for p in plan.ordered() if p.kind == "target")
    training = target.config.training
    assert (
        training["epochs"],
        training["learning_rate"],
        training["max_length"],
        training["batch_size"],
    ) == (1, 3e-5, 384, 16)


def test_fixture_runs_evaluate_fixture_languages_only():
    plan = plan_of(targets=["xnli"])
    evaluate = next(p for p in plan.ordered() if p.kind == "evaluate")
    assert evaluate.config.languages == ["de", "en", "es", "ru"]


def test_mlm_phase_precedes_every_intermediate_setting_and_the_baseline_stays_mlm_free():
    plan = plan_of(intermediate=[{"task": "mnli"}], targets=["pawsx"], mlm={"enabled": True})
    mlm = next(p for p in plan.ordered() if p.kind == "mlm")
    encoder = next(p for p in plan.ordered() if p.kind == "encoder")
    users = [p for p in plan.ordered() if mlm.address in p.inputs.values()]
    assert {p.kind for p in users} == {"intermediate"}
    baseline = next(r for r in plan.runs if r.setting == BASELINE)
    target = plan.phases[plan.phases[baseline.evaluate].inputs["model"]]
    assert target.inputs == {"encoder": encoder.address}


def test_task_subsets_generate_mixtures():
    pool = ["mnli", "squad", "hellaswag", "qqp"]
    every = plan_of(intermediate_subsets=[{"pool": pool, "k": 2}], targets=["pawsx"])
    names = sorted(p.label for p in every.ordered() if p.kind == "intermediate")
    assert len(names) == 6 and "mnli+squad" in names
    a = plan_of(intermediate_subsets=[{"pool": pool, "k": 3, "count": 2, "seed": 7}], targets=["pawsx"])
    b = plan_of(intermediate_subsets=[{"pool": pool, "k": 3, "count": 2, "seed": 7}], targets=["pawsx"])
    assert set(a.phases) == set(b.phases), "seeded random subsets are reproducible"
    assert sum(p.kind == "intermediate" for p in a.ordered()) == 2
    singles = plan_of(intermediate_subsets=[{"pool": pool, "k": 1}], targets=["pawsx"])
    assert all(len(p.config.tasks) == 1 for p in singles.ordered() if p.kind == "intermediate")


def test_augmentation_and_robustness_change_only_what_they_touch():
    plain = plan_of(intermediate=[{"task": "mnli"}], targets=["pawsx"])
    augmented = plan_of(
        intermediate=[
            {"task": "mnli"},
            {"name": "mnli-noisy", "task": "mnli", "augment": [{"name": "char_noise", "rate": 0.1}]},
        ],
        targets=["pawsx"],
    )
    assert set(plain.phases) <= set(augmented.phases), "adding a setting leaves the others' addresses alone"
    noisy = next(p for p in augmented.ordered() if p.label == "mnli-noisy")
    assert noisy.config.augment[0]["name"] == "char_noise"
    robust = plan_of(
        intermediate=[{"task": "mnli"}], targets=["pawsx"], robustness=[{"name": "word_perturb", "rate": 0.2}]
    )
    evaluate = next(p for p in robust.ordered() if p.kind == "evaluate")
    assert evaluate.config.perturbations[0]["name"] == "word_perturb"
    trained = {p.address for p in robust.ordered() if p.kind != "evaluate"}
    assert trained <= set(plain.phases), "robustness evaluation reuses the trained models"


def test_domain_alignment_analysis_phase():
    plan = plan_of(
        intermediate=[{"task": "mnli"}, {"task": "squad"}],
        targets=["pawsx", "xquad"],
        analysis={"domain_alignment": True},
    )
    (address,) = plan.analyses
    phase = plan.phases[address]
    assert phase.kind == "analysis"
    assert phase.config.intermediate_tasks == ["mnli", "squad"] and phase.config.targets == [
        "pawsx",
        "xquad",
    ]


def test_targets_that_fine_tune_alike_share_one_target_phase():
    """MLQA and its G-XLT pairs train exactly as XQuAD does (SQuAD v1.1, SQuAD dev, span head): one target
    phase per setting serves all three evaluations; TyDiQA-GoldP trains on its own data."""
    targets = ["xquad", "mlqa", "mlqa-gxlt-de", "tydiqa"]
    plan = plan_of(intermediate=[{"task": "mnli"}], targets=targets, benchmark="custom")
    trained = sorted(p.label for p in plan.ordered() if p.kind == "target")
    assert trained == ["tydiqa", "tydiqa", "xquad", "xquad"]
    for setting in (BASELINE, "mnli"):
        models = {
            r.target: plan.phases[r.evaluate].inputs["model"] for r in plan.runs if r.setting == setting
        }
        assert models["xquad"] == models["mlqa"] == models["mlqa-gxlt-de"] != models["tydiqa"]
    assert len(plan.runs) == 8


def test_different_training_settings_keep_targets_apart():
    plan = plan_of(targets=["xquad", "mlqa"], task_training={"mlqa": {"epochs": 3}})
    assert sorted(p.label for p in plan.ordered() if p.kind == "target") == ["mlqa", "xquad"]
    alone = plan_of(targets=["mlqa"])
    assert [p.label for p in alone.ordered() if p.kind == "target"] == ["xquad"]
