"""The test command runs `pytest -n 2 --dist loadgroup`: tests marked with one `xdist_group` must reach
one worker, in order, or a module fixture (a control plane, a cluster journey, the research twins'
shared store) is built once per worker and grouped tests race each other."""

from __future__ import annotations

import os

import pytest


def test_grouped_tests_carry_their_group_to_the_scheduler(request: pytest.FixtureRequest) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER") or request.config.getoption("dist", None) != "no":
        pytest.skip("not in a pytest-xdist worker: nothing is scheduled by group")
    if not request.config.getoption("loadgroup", False):
        pytest.skip("not run with --dist loadgroup")
    untagged = [
        item.nodeid
        for item in request.session.items
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid
    ]
    assert not untagged, (
        f"{len(untagged)} grouped tests lack the '@group' suffix pytest-xdist schedules by, e.g. "
        f"{untagged[0]}: this pytest and pytest-xdist do not work together (see pyproject.toml)"
    )
