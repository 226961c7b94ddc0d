"""The suite's xdist groups really group: ``make test`` relies on them to keep a module's costly
fixtures (a two-year replay, a running server) on one worker, built once.

pytest-xdist's ``loadgroup`` marks a grouped test by a ``@group`` suffix on its node id; pytest 9.2 moved
the id where xdist 3.8 cannot write it, and every group silently fell apart (each worker rebuilt the
module fixtures). This test fails if that happens again.
"""

from __future__ import annotations

import os

import pytest


@pytest.mark.xdist_group("xdist_guard")
def test_a_test_marked_with_an_xdist_group_is_scheduled_by_its_group(request: pytest.FixtureRequest) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") is None or not getattr(
        request.config.option, "loadgroup", False
    ):
        pytest.skip("only under pytest-xdist's loadgroup (make test, CI): nothing is grouped otherwise")
    assert request.node.nodeid.endswith("@xdist_guard"), request.node.nodeid
