"""The order ``make test`` hands its tests to the pytest-xdist workers: the longest first.

``--dist loadgroup --no-loadscope-reorder`` hands out scheduling units (an ``xdist_group``, run whole on
one worker, or a single test) in collection order, as each worker runs low. A minutes-long unit handed
out last ends the run minutes after the other workers went idle; handed out first, the short tests fill
in around it (longest processing time first, the classic rule for a short makespan).

A unit's length comes from ``tests/durations.json``, seconds per test measured by a run with
``--record-durations`` (``make test-durations``); a test it does not name (a new one) is estimated from
its marks, so a new integration test still starts before the unit tests. The tests of a module without a
group stay together, ordered by the module's longest test, so a module fixture a worker made is there for
the module's next test on that worker.

This module imports only the standard library and pytest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

DURATIONS_FILE = Path(__file__).with_name("durations.json")
UNMEASURED_S = {"slow integration": 240.0, "integration": 30.0, "slow": 30.0, "other": 0.5}
"""What a test missing from the durations file is taken to last, by its marks."""


@dataclass(frozen=True)
class Planned:
    """What the order needs to know of one collected test."""

    test_id: str
    """The node id without the ``@group`` suffix pytest-xdist adds."""
    module: str
    group: str | None
    marks: frozenset[str]


def estimate_s(test: Planned, measured: Mapping[str, float]) -> float:
    """The test's measured seconds, or the estimate for its marks."""
    if test.test_id in measured:
        return measured[test.test_id]
    if {"integration", "slow"} <= test.marks:
        return UNMEASURED_S["slow integration"]
    for mark in ("integration", "slow"):
        if mark in test.marks:
            return UNMEASURED_S[mark]
    return UNMEASURED_S["other"]


def longest_first(tests: list[Planned], measured: Mapping[str, float]) -> list[int]:
    """Indexes of ``tests`` in the order to hand them out.

    A group is one unit as long as its tests together (one worker runs them all); a module's tests
    without a group are one block as long as its longest test (the workers share them), longest first
    inside. Blocks go longest first; ties keep collection order.
    """
    seconds = [estimate_s(test, measured) for test in tests]
    block_s: dict[str, float] = {}
    for test, length in zip(tests, seconds, strict=True):
        if test.group is not None:
            key = f"@{test.group}"
            block_s[key] = block_s.get(key, 0.0) + length
        else:
            key = test.module
            block_s[key] = max(block_s.get(key, 0.0), length)
    first_seen = {key: index for index, key in reversed(list(enumerate(map(_block, tests))))}

    def order(index: int) -> tuple[float, int, float, int]:
        key = _block(tests[index])
        inside = 0.0 if tests[index].group is not None else -seconds[index]  # a group keeps its order
        return (-block_s[key], first_seen[key], inside, index)

    return sorted(range(len(tests)), key=order)


def _block(test: Planned) -> str:
    return f"@{test.group}" if test.group is not None else test.module


def planned(item: pytest.Item) -> Planned:
    """The test as the order sees it: its id without xdist's ``@group``, its module, group and marks."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    group = "_".join(sorted(names)) if names else None  # as pytest-xdist names a test's group
    test_id = item.nodeid.removesuffix(f"@{group}") if group is not None else item.nodeid
    return Planned(test_id, test_id.split("::", 1)[0], group, frozenset(m.name for m in item.iter_markers()))


XDIST_GROUP_SUFFIX = re.compile(r"@[\w.-]+$")
"""What pytest-xdist's loadgroup appends to a grouped test's node id (``...::test_x@server``)."""


class DurationRecorder:
    """A plugin for the run's main process (``--record-durations``): every test's seconds, set-up,
    call and tear-down together, written to the durations file when the session ends."""

    def __init__(self, path: Path = DURATIONS_FILE) -> None:
        self.path = path
        self.seconds: list[tuple[str, float]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds.append((XDIST_GROUP_SUFFIX.sub("", report.nodeid), report.duration))

    def pytest_sessionfinish(self) -> None:
        if self.seconds:
            write_durations(self.seconds, self.path)


def read_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """The measured seconds per test id; none if the file is missing."""
    if not path.exists():
        return {}
    return {str(key): float(value) for key, value in json.loads(path.read_text()).items()}


def write_durations(seconds: Iterable[tuple[str, float]], path: Path = DURATIONS_FILE) -> None:
    """Write seconds per test id (set-up, call and tear-down together), sorted, to a tenth of a second."""
    total: dict[str, float] = {}
    for test_id, length in seconds:
        total[test_id] = total.get(test_id, 0.0) + length
    path.write_text(json.dumps({key: round(total[key], 1) for key in sorted(total)}, indent=0) + "\n")
