"""The fast dict and YAML dumps are exactly what the kubernetes client and PyYAML produce."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.client import ApiClient

from tests.render.conftest import STORE, VARIANTS, variant
from xstilts.render.controller import render_controller
from xstilts.render.dump import document, to_dict, to_yaml
from xstilts.render.job import render_phase

# Characters that make PyYAML quote, escape, fold or reinterpret a scalar.
TRICKY = st.text(alphabet=st.sampled_from(list("aZ09 -_.:/@#'\"!&*%|>?[]{},=+~$()\\\tü\n")), max_size=12)
SPECIAL = st.sampled_from(
    [
        "",
        "1",
        "-1",
        "1.5",
        "1e3",
        "0x1F",
        "0o7",
        "010",
        "1_000",
        "1:20",
        "2001-12-14",
        "true",
        "True",
        "yes",
        "no",
        "on",
        "off",
        "null",
        "Null",
        "~",
        "=",
        "<<",
        ".inf",
        "-.inf",
        ".nan",
        ".",
        "-",
        "--store",
        "-x",
        "a:",
        "a: b",
        "#x",
        "a #b",
        "$(NODE_RANK)",
        "s3://b/r",
        " lead",
        "trail ",
        "x" * 90 + " y",
    ]
)
SCALARS = st.one_of(TRICKY, SPECIAL, st.integers(-(10**12), 10**12), st.booleans(), st.none())
KEYS = st.one_of(TRICKY, SPECIAL).filter(bool)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=20,
)


def all_objects() -> list[Any]:
    objects = []
    for name in VARIANTS:
        plan, settings, _ = variant(name)
        for phase in plan.ordered():
            objects += render_phase(phase, plan.sweep.name, STORE, settings)
        objects += render_controller("name: x\n# a sweep\n", plan.sweep.name, STORE, settings)
    return objects


def test_to_dict_is_the_clients_serialisation() -> None:
    client = ApiClient()
    for obj in all_objects():
        assert json.dumps(to_dict(obj)) == json.dumps(client.sanitize_for_serialization(obj))


def test_manifests_dump_exactly_as_pyyaml() -> None:
    """From the models (shared parts written once and reused) and from their dicts alike."""
    for obj in all_objects():
        data = to_dict(obj)
        if obj.kind == "ConfigMap":
            assert document(obj) == document(data)
            assert yaml.safe_load(document(obj)) == data
            assert "sweep.yaml: |\n    name: x\n    # a sweep\n" in document(obj)
        else:
            expected = yaml.safe_dump(data, sort_keys=False)
            assert document(obj) == expected
            assert document(data) == expected


def test_stream_of_documents_round_trips() -> None:
    objects = all_objects()[:20]
    assert list(yaml.safe_load_all(to_yaml(objects))) == [to_dict(o) for o in objects]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, TREES, max_size=5))
def test_any_mapping_dumps_as_pyyaml_or_round_trips(data: dict[str, Any]) -> None:
    text = document(data)
    assert yaml.safe_load(text) == (data or {})
    if "\n" not in json.dumps(data).replace("\\n", "") and "\\n" not in json.dumps(data):
        assert text == yaml.safe_dump(data, sort_keys=False)
