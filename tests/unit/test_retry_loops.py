"""One way to retry: no module but ``btcmlops.retry`` sleeps in a loop that catches errors.

A hand-written retry loop is a loop that catches an error (``try``/``except``, ``contextlib.suppress``)
and sleeps or waits (``time.sleep``, ``asyncio.sleep``, an ``Event``'s ``wait``, ``wait_for_answer``)
before going round again. Read from the source with ``ast``, every such loop outside ``btcmlops.retry``
is listed, so a new one is caught where it is written: it goes through ``retry.keep_trying`` (a
thread) or ``retry.keep_trying_async`` (a watcher) instead, which keep the backoff, the stop, the
configuration errors and the log lines in one place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import btcmlops

PACKAGE = Path(btcmlops.__file__).parent
HOME = "retry.py"
"""The one module that may sleep after a failure."""
ALLOWED = {
    ("serving/prediction_log.py", "_run"): (
        "the prediction log's flush thread: a flush every interval whatever happened, never ended by "
        "any error (the rows wait in their files); a failed batch is kept by flush() itself, and the "
        "cadence has no backoff to keep"
    ),
}
"""Loops that catch and wait on purpose without being a retry, each with why."""

_LOOPS = (ast.While, ast.For, ast.AsyncFor)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _inside(loop: ast.AST) -> Iterator[ast.AST]:
    """The loop's nodes, its test included, without those of a function or class defined in it."""
    stack = list(ast.iter_child_nodes(loop))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _catches(node: ast.AST) -> bool:
    if isinstance(node, ast.Try | ast.TryStar):
        return bool(node.handlers)
    if isinstance(node, ast.With | ast.AsyncWith):
        return any("suppress" in ast.unparse(item.context_expr) for item in node.items)
    return False


def _sleeps(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in {"sleep", "wait_for_answer"}
    if isinstance(func, ast.Attribute):
        if func.attr == "sleep":
            return True
        # an Event's wait (a stop Event, an asyncio.Event); asyncio.wait awaits work, it does not pause
        return func.attr == "wait" and ast.unparse(func.value) != "asyncio"
    return False


def retry_loops(source: str) -> list[tuple[str, int]]:
    """Each loop of ``source`` that catches an error and sleeps: the function it is in, and its line."""
    tree = ast.parse(source)
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, _LOOPS):
                inside = list(_inside(child))
                if any(map(_catches, inside)) and any(map(_sleeps, inside)):
                    found.append((function, child.lineno))
            visit(child, name)

    visit(tree, "<module>")
    return found


def test_no_module_has_a_retry_loop_of_its_own() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module == HOME:
            continue
        for function, line in retry_loops(path.read_text()):
            if (module, function) not in ALLOWED:
                found.append(f"{module}:{line} in {function}()")
    assert not found, f"retry loops outside btcmlops.retry (use retry.keep_trying): {found}"


def test_every_allowed_loop_is_still_there() -> None:
    """An exception that no longer has its loop is struck off, not left to excuse a new one."""
    present = {
        (module, function)
        for module, function in ALLOWED
        for function_, _ in retry_loops((PACKAGE / module).read_text())
        if function_ == function
    }
    assert present == set(ALLOWED)


def test_the_check_finds_the_loops_it_replaced_and_spares_the_rest() -> None:
    """The test above can fail: the shapes of the five loops it replaced are found, others are not."""
    threaded = """
def run(self, stop):
    while not stop.is_set():
        try:
            self.step()
        except Exception as error:
            wait = wait_after(error, self._backoff, "feed step")
        else:
            wait = self._interval_s
        stop.wait(wait)
"""
    watcher = """
class State:
    async def _keep_checking(self, round_, probe):
        while True:
            try:
                await round_()
            except Exception:
                if await wait_for_answer(probe, 1.0, 0.1):
                    continue
            await self.pause()
"""
    periodic = """
async def repair():
    while True:
        with contextlib.suppress(Exception):
            await work()
        await asyncio.sleep(10)
"""
    renew = """
def renew(stop):
    while not stop.wait(5):
        try:
            acquire()
        except Exception:
            continue
"""
    assert retry_loops(threaded) == [("run", 3)]
    assert retry_loops(watcher) == [("_keep_checking", 4)]
    assert retry_loops(periodic) == [("repair", 3)]
    assert retry_loops(renew) == [("renew", 3)]
    benign = """
def pages(client, url):
    while url is not None:
        url = client.get(url).next
    for attempt in range(3):
        try:
            return parse(attempt)
        except ValueError:
            pass
    done, _ = asyncio.wait({work}, timeout=1)
    while True:
        def later():
            try:
                work()
            except Exception:
                pass
        time.sleep(1)
"""
    assert retry_loops(benign) == []
