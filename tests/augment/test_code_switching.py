"""Code-switching as CoSDA-ML does it: the switched words are drawn anew on every pass over the data
(seeded), with a sentence-level and a word-level ratio and the language drawn before the lookup; the
fixed-copies mode stays an option, and augmented settings train as many steps as the plain one."""

from __future__ import annotations

import json
import random
from pathlib import Path

from xstilts.augment.examples import augment_examples, augmentation_mode, resampled_view
from xstilts.augment.text import code_switch
from xstilts.phases.run import run_phase
from xstilts.plan.expand import expand
from xstilts.plan.phase import spec_key
from xstilts.spec.models import Sweep
from xstilts.store import open_store
from xstilts.tasks import get_task
from xstilts.train.schedule import build_schedule

DATA = {"source": "fixtures"}
SWITCH = {"name": "code_switch", "rate": 0.5, "seed": 0, "dictionary": "fixtures:dictionaries/en-{lang}.txt",
          "languages": ["de", "es"]}  # fmt: skip
DICTIONARY = {"dog": {"de": ["Hund"]}, "cat": {"de": ["Katze"], "es": ["gato"]}}
PAIRS = [{"text_a": f"the big dog chases the cat number {i} .", "text_b": "the dog sleeps .", "label": i % 3}
         for i in range(12)]  # fmt: skip


def test_the_language_is_drawn_before_the_lookup() -> None:
    """A word missing from the drawn language's dictionary stays English (CoSDA-ML); the entry-first
    order would always find a language that has it."""
    outputs = {code_switch("dog", random.Random(s), dictionary=DICTIONARY, rate=1.0, languages=["de", "es"],
                           language_first=True) for s in range(40)}  # fmt: skip
    assert outputs == {"dog", "Hund"}
    entry_first = {code_switch("dog", random.Random(s), dictionary=DICTIONARY, rate=1.0,
                               languages=["de", "es"]) for s in range(40)}  # fmt: skip
    assert entry_first == {"Hund"}


def test_sentence_rate_switches_that_share_of_the_texts() -> None:
    def switched(rate: float) -> int:
        texts = [code_switch("the cat", random.Random(s), dictionary=DICTIONARY, rate=1.0, languages=["es"],
                             language_first=True, sentence_rate=rate) for s in range(400)]  # fmt: skip
        return sum(text != "the cat" for text in texts)

    assert switched(0.0) == 0 and switched(1.0) == 400
    assert 150 < switched(0.5) < 250


def test_every_view_switches_other_words_and_the_seed_fixes_them() -> None:
    task = get_task("mnli")
    assert augmentation_mode(SWITCH) == "resample" and augmentation_mode({"name": "char_noise"}) == "copies"
    views = [resampled_view(task, PAIRS, [SWITCH], DATA, v) for v in range(4)]
    assert all(len(v) == len(PAIRS) for v in views)
    assert len({json.dumps(v) for v in views}) == 4, "each pass draws other switches"
    assert all(v != PAIRS for v in views)
    assert views[2] == resampled_view(task, PAIRS, [SWITCH], DATA, 2), "same seed, same switches"
    assert resampled_view(task, PAIRS, [{**SWITCH, "seed": 1}], DATA, 2) != views[2]
    assert [e["label"] for e in views[1]] == [e["label"] for e in PAIRS]
    # the fixed-copies mode: the originals and one copy, the same on every call
    copies = augment_examples(task, PAIRS, [{**SWITCH, "mode": "copies"}], DATA)
    assert copies[: len(PAIRS)] == PAIRS and len(copies) == 2 * len(PAIRS)
    assert augment_examples(task, PAIRS, [SWITCH], DATA) == PAIRS, "resample specs add no copies"


def test_the_schedule_reads_one_view_per_pass_in_the_plain_number_of_steps() -> None:
    n, views = 20, 3
    lengths = {"mnli": [10 + (i % 7) for i in range(n)] * views}
    schedule = build_schedule(lengths, 5, 3.0, seed=1, parts=1, views={"mnli": views})
    plain = build_schedule({"mnli": lengths["mnli"][:n]}, 5, 3.0, seed=1, parts=1)
    assert len(schedule) == len(plain)
    for epoch in range(3):  # 4 micro-batches a pass: pass e reads version e only
        indices = [i for mb in schedule[epoch * 4 : (epoch + 1) * 4] for i in mb.indices]
        assert sorted(i // n for i in indices) == [epoch] * n
        assert sorted(i % n for i in indices) == list(range(n))
    copies = build_schedule({"mnli": [10] * (2 * n)}, 5, 3.0, seed=1, parts=1, epoch_sizes={"mnli": n})
    assert len(copies) == len(plain), "match_steps: copies count no extra steps"


TRAINING = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 8, "max_length": 32, "max_train_examples": 24,
            "max_dev_examples": 8, "checkpoint_every": 1000, "select_best": False}  # fmt: skip


def intermediate_metrics(store_dir: Path, controls: dict, settings: list[dict]) -> dict[str, dict]:
    """Run the encoder and the intermediate phases of a tiny sweep; metrics per setting."""
    sweep = Sweep.model_validate({
        "name": "cosda", "data": DATA, "targets": ["pawsx"], "training": TRAINING, "controls": controls,
        "encoders": [{"name": "tiny", "model": "tiny", "tiny": {"hidden_size": 16, "intermediate_size": 32,
                                                                "num_hidden_layers": 1}}],
        "intermediate": settings,
    })  # fmt: skip
    store = open_store(str(store_dir))
    phases = [p for p in expand(sweep).ordered() if p.kind in ("encoder", "intermediate")]
    for phase in phases:
        store.put_text(spec_key(phase.address), phase.model_dump_json())
    out = {}
    for phase in phases:
        assert run_phase(phase.address, store) == "done"
        if phase.kind == "intermediate":
            out[phase.label] = json.loads(store.get_text(f"{phase.prefix}/metrics.json"))
    return out


def test_code_switched_training_matches_the_plain_steps_and_repeats_exactly(tmp_path: Path) -> None:
    copies = {**SWITCH, "mode": "copies", "copies": 2}
    settings = [{"task": "mnli"}, {"name": "mnli-cosda", "task": "mnli", "augment": [SWITCH]},
                {"name": "mnli-copies", "task": "mnli", "augment": [copies]}]  # fmt: skip
    first = intermediate_metrics(tmp_path / "a", {}, settings)
    steps = {name: m["steps"] for name, m in first.items()}
    assert steps["mnli"] == 6 and steps == dict.fromkeys(steps, 6), steps  # 24 examples / 8, two epochs
    assert first["mnli-cosda"]["final_loss"] != first["mnli"]["final_loss"]
    again = intermediate_metrics(tmp_path / "b", {}, settings[1:2])
    assert again["mnli-cosda"]["final_loss"] == first["mnli-cosda"]["final_loss"], "same seed, same run"
    unmatched = intermediate_metrics(tmp_path / "c", {"match_steps": False}, settings[2:])
    assert unmatched["mnli-copies"]["steps"] == 18, "without match_steps the copies add steps"
