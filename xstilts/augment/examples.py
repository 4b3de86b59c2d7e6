"""Perturbations applied to a task's canonical examples (`xstilts.tasks.base`), format by format.

Which text a perturbation touches:

| format | fields |
|---|---|
| classification, regression | `text_a`, and `text_b` when present |
| multiple choice | `context` and every one of `choices` |
| span QA | `question` only: the context keeps its characters, so `answer_start` offsets stay valid |
| tagging | `tokens`, token by token (`perturb_tokens`): one token per tag; `word_perturb` is refused |
| retrieval (bitext) | `source`, the non-English side |
| retrieval (ranking) | the `text` of queries; candidates stay clean |

`augment_examples` appends perturbed copies of English training examples (intermediate training, mode
`copies`: the same copies every epoch); `resampled_view` draws version `view` of the training set for a
spec in mode `resample` (CoSDA-ML: the switched words are drawn anew every time an example is drawn:
one version per pass over the data); `perturb_for_evaluation` perturbs a language's evaluation examples
(robustness evaluation). All are deterministic: the output depends only on the examples, the
perturbation spec and its seed (and the view).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xstilts.augment.dictionaries import english_keyed, into_english
from xstilts.augment.text import TOKEN_PRESERVING, apply_to_example, dictionary_languages, example_seed
from xstilts.errors import ConfigError
from xstilts.tasks import Format, TaskDef

Example = dict[str, Any]
SpecLike = Mapping[
    str, Any
]  # a PerturbationSpec's model_dump(): name, rate, dictionary, languages, seed, copies
COPY_SEED_STRIDE = 16  # copies per spec are at most 8: seed * 16 + copy never collides within a spec

_TEXT_FIELDS: dict[Format, tuple[str, ...]] = {
    Format.CLASSIFICATION: ("text_a", "text_b"),
    Format.REGRESSION: ("text_a", "text_b"),
    Format.MULTIPLE_CHOICE: ("context", "choices"),
    Format.SPAN_QA: ("question",),
}


def label(spec: SpecLike) -> str:
    """`char_noise-0.05`: the name predictions files and metrics use (PerturbationSpec.label)."""
    if spec["name"] == "code_mixed_adversarial":
        return f"{spec['name']}-b{int(spec.get('budget', 3))}"
    return f"{spec['name']}-{float(spec.get('rate', 0.1)):g}"


def _check_tagging(task: TaskDef, spec: SpecLike) -> None:
    if spec["name"] not in TOKEN_PRESERVING:
        raise ConfigError(
            f"perturbation {spec['name']!r} changes the number of tokens, so it cannot be applied to "
            f"the token-tagging task '{task.name}'",
            field="augment",
            fix=f"use one of {', '.join(sorted(TOKEN_PRESERVING))} for tagging tasks",
        )


def perturb_example(
    task: TaskDef, example: Example, name: str, seed: int, params: Mapping[str, Any]
) -> Example:
    """A perturbed copy of one canonical example of `task` (see the module table for the fields)."""
    if task.format is Format.TAGGING:
        return apply_to_example(example, ["tokens"], name, seed, tags_field="tags", **params)
    if task.format is Format.RETRIEVAL:
        if example.get("kind") == "candidate":
            return dict(example)
        field = "text" if "kind" in example else "source"
        return (
            apply_to_example(example, [field], name, seed, **params) if example.get(field) else dict(example)
        )
    fields = [f for f in _TEXT_FIELDS[task.format] if example.get(f) is not None]
    return apply_to_example(example, fields, name, seed, **params)


def _params(spec: SpecLike, dictionary: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {"rate": float(spec.get("rate", 0.1))}
    if dictionary is not None:
        params["dictionary"] = dictionary
    return params


def augmentation_mode(spec: SpecLike) -> str:
    """`resample` (code-switching's default, CoSDA-ML) or `copies` (the other perturbations')."""
    mode = spec.get("mode")
    if mode:
        return str(mode)
    return "resample" if spec["name"] in ("code_switch", "code_mixed") else "copies"


def augmentation_params(spec: SpecLike, data: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the perturbation for English training text. `code_mixed` on English text
    switches English words into other languages, like `code_switch` (English-keyed dictionary). In
    `resample` mode code-switching follows CoSDA-ML: the language is drawn before the word lookup, and
    `sentence_rate` of the texts are switched."""
    params = _params(spec)
    if spec["name"] in ("code_switch", "code_mixed"):
        dictionary = english_keyed(spec["dictionary"], data, spec.get("languages"))
        params = _params(spec, dictionary)
        if spec.get("languages"):
            params["languages"] = list(spec["languages"])
        if augmentation_mode(spec) == "resample":
            params["language_first"] = True
            params.setdefault("languages", dictionary_languages(dictionary))
    if float(spec.get("sentence_rate", 1.0)) < 1.0:
        params["sentence_rate"] = float(spec["sentence_rate"])
    return params


def _checked(task: TaskDef, spec: SpecLike) -> str:
    if task.format is Format.TAGGING:
        _check_tagging(task, spec)
    return "code_switch" if spec["name"] == "code_mixed" else spec["name"]


def resampled_view(
    task: TaskDef, examples: Sequence[Example], specs: Sequence[SpecLike], data: dict[str, Any], view: int
) -> list[Example]:
    """Version `view` of the training examples: each `resample`-mode spec applied in order, with a seed
    drawn from the spec's seed and the view, so every pass over the data switches other words and the
    same seed gives the same versions."""
    out = list(examples)
    for spec in specs:
        if augmentation_mode(spec) != "resample":
            continue
        name = _checked(task, spec)
        params = augmentation_params(spec, data)
        seed = example_seed(int(spec.get("seed", 0)), f"view-{view}", "resample")
        out = [perturb_example(task, e, name, seed, params) for e in out]
    return out


def augment_examples(
    task: TaskDef, examples: Sequence[Example], specs: Sequence[SpecLike], data: dict[str, Any]
) -> list[Example]:
    """The examples followed by `copies` perturbed copies of each, for each `copies`-mode spec in order
    (copy k of a spec with seed s is drawn with seed `s * 16 + k`); `resample`-mode specs are left to
    `resampled_view`."""
    out = list(examples)
    for spec in specs:
        if augmentation_mode(spec) != "copies":
            continue
        name = _checked(task, spec)
        params = augmentation_params(spec, data)
        for copy in range(int(spec.get("copies", 1))):
            seed = int(spec.get("seed", 0)) * COPY_SEED_STRIDE + copy
            out.extend(perturb_example(task, e, name, seed, params) for e in examples)
    return out


def evaluation_params(spec: SpecLike, data: dict[str, Any], lang: str) -> dict[str, Any] | None:
    """Keyword arguments of the perturbation for `lang` evaluation text, or None when it does not apply:
    code-mixing English text (nothing to mix in), a language without a dictionary, and `code_switch`
    of non-English text, which needs a `lang`-keyed dictionary just like code-mixing."""
    if spec["name"] not in ("code_switch", "code_mixed"):
        return _params(spec)
    if lang == "en":
        return None
    dictionary = into_english(spec["dictionary"], data, lang)
    return None if dictionary is None else {**_params(spec, dictionary), "languages": ["en"]}


def perturb_for_evaluation(
    task: TaskDef, examples: Sequence[Example], spec: SpecLike, data: dict[str, Any], lang: str
) -> tuple[list[Example] | None, str | None]:
    """Perturbed copies of `lang` evaluation examples, or (None, why) when the perturbation does not
    apply: a token-count-changing perturbation of a tagging task, code-mixing English text, or a
    language without a dictionary. `code_switch` of evaluation text is read as code-mixing."""
    if task.format is Format.TAGGING and spec["name"] not in TOKEN_PRESERVING:
        return None, f"{spec['name']} would change the number of tokens of a tagging task"
    if spec["name"] in ("code_switch", "code_mixed") and lang == "en":
        return None, "no code-mixing of English text with English"
    params = evaluation_params(spec, data, lang)
    if params is None:
        return None, f"no dictionary for {lang} ({spec['dictionary'].replace('{lang}', lang)})"
    name = "code_mixed" if spec["name"] == "code_switch" else spec["name"]
    seed = int(spec.get("seed", 0))
    return [perturb_example(task, e, name, seed, params) for e in examples], None
