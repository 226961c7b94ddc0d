"""``make help`` as a new user reads it: variables shown by value, descriptions in one column."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def make_help(*arguments: str) -> list[str]:
    """The lines ``make help`` prints, colours removed."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "help", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return [ANSI.sub("", line) for line in done.stdout.splitlines()]


def test_help_expands_the_make_variables_its_descriptions_name() -> None:
    lines = make_help("OUT=out/elsewhere")
    assert not [line for line in lines if "$(" in line]
    (demo,) = [line for line in lines if line.split()[0] == "demo"]
    assert demo.endswith("into out/elsewhere")
    assert any(line.endswith("into out/replay") for line in make_help())  # the Makefile's default


def test_help_aligns_every_description_on_the_longest_target_name() -> None:
    lines = make_help()
    names = [line.split()[0] for line in lines]
    assert {"help", "demo", "screenshot-mlflow", "bench-stack-fit"} <= set(names)
    columns = {line.index(line.split()[1], len(line.split()[0]) + 2) for line in lines}
    assert columns == {2 + max(len(name) for name in names) + 2}
