"""The order ``make test`` hands tests to its xdist workers (``tests/scheduling.py``): longest first."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from scheduling import UNMEASURED_S, DurationRecorder, Planned, longest_first, planned, read_durations


def _test(test_id: str, group: str | None = None, *marks: str) -> Planned:
    return Planned(test_id, test_id.split("::", 1)[0], group, frozenset(marks))


def _ids(tests: list[Planned], measured: dict[str, float]) -> list[str]:
    return [tests[index].test_id for index in longest_first(tests, measured)]


def test_a_long_test_collected_last_is_handed_out_first() -> None:
    tests = [_test("a.py::t1"), _test("a.py::t2"), _test("b.py::t"), _test("z.py::long")]
    measured = {"a.py::t1": 3.0, "a.py::t2": 4.0, "b.py::t": 1.0, "z.py::long": 240.0}
    assert _ids(tests, measured) == ["z.py::long", "a.py::t2", "a.py::t1", "b.py::t"]


def test_a_group_is_as_long_as_its_tests_together_and_keeps_its_order() -> None:
    tests = [_test("s.py::single"), *(_test(f"g.py::t{n}", "g") for n in range(3))]
    measured = {"s.py::single": 50.0, "g.py::t0": 10.0, "g.py::t1": 30.0, "g.py::t2": 20.0}
    # 60 s on one worker: before the 50 s test, in collection order (its module fixtures, its story).
    assert _ids(tests, measured) == ["g.py::t0", "g.py::t1", "g.py::t2", "s.py::single"]


def test_a_modules_tests_stay_together_ordered_by_its_longest() -> None:
    tests = [_test("m.py::short"), _test("n.py::mid"), _test("m.py::long")]
    measured = {"m.py::short": 1.0, "n.py::mid": 20.0, "m.py::long": 30.0}
    assert _ids(tests, measured) == ["m.py::long", "m.py::short", "n.py::mid"]


def test_unmeasured_tests_are_placed_by_their_marks() -> None:
    tests = [
        _test("unit.py::new"),
        _test("integration.py::new", None, "integration"),
        _test("unit.py::measured"),
        _test("stack.py::new", None, "integration", "slow"),
    ]
    measured = {"unit.py::measured": UNMEASURED_S["integration"] + 1}
    assert _ids(tests, measured) == [
        "stack.py::new",
        "unit.py::measured",  # its module's block is as long as its longest test, longest first inside
        "unit.py::new",
        "integration.py::new",
    ]


def test_equal_blocks_keep_collection_order() -> None:
    tests = [_test("b.py::t"), _test("a.py::t"), _test("c.py::t")]
    assert _ids(tests, dict.fromkeys(["a.py::t", "b.py::t", "c.py::t"], 2.0)) == [
        "b.py::t",
        "a.py::t",
        "c.py::t",
    ]


@pytest.mark.xdist_group("scheduling_probe")
def test_a_collected_test_is_planned_by_its_id_without_the_group_suffix(
    request: pytest.FixtureRequest,
) -> None:
    seen = planned(request.node)
    assert seen.group == "scheduling_probe"
    assert seen.test_id == "tests/unit/test_scheduling.py::" + request.node.name
    assert seen.module == "tests/unit/test_scheduling.py"
    assert "xdist_group" in seen.marks


def test_recorded_durations_add_up_phases_drop_the_group_suffix_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "durations.json"
    recorder = DurationRecorder(path)
    for nodeid, seconds in [("m.py::t@server", 1.25), ("m.py::t@server", 2.0), ("m.py::u[a-b]", 0.5)]:
        recorder.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, duration=seconds))  # type: ignore[arg-type]
    recorder.pytest_sessionfinish()
    assert json.loads(path.read_text()) == {"m.py::t": 3.2, "m.py::u[a-b]": 0.5}
    assert read_durations(path) == {"m.py::t": 3.2, "m.py::u[a-b]": 0.5}
    assert read_durations(tmp_path / "missing.json") == {}
