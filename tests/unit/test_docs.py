"""The docs against the code: the settings reference is current, every named command exists.

docs/settings.md is generated from the settings' own descriptions (scripts/settings_reference.py);
README.md and docs/*.md name `make` targets and `btcmlops` commands in code spans and blocks, and each
must be a target of the Makefile and a command of the Typer app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import settings_reference
import typer.main
from pydantic import BaseModel

from btcmlops.cli import app
from btcmlops.settings import Settings


def test_settings_reference_is_current() -> None:
    """docs/settings.md is what scripts/settings_reference.py writes from src/btcmlops/settings/."""
    current = settings_reference.OUTPUT.read_text(encoding="utf-8")
    assert current == settings_reference.render(), (
        "docs/settings.md is stale (a setting or its description changed): "
        f"run `{settings_reference.COMMAND}`"
    )


def test_settings_reference_names_every_setting() -> None:
    """Each leaf setting, nested groups included, has a row with its BTCMLOPS_ variable."""

    def variables(model: type[BaseModel], prefix: str) -> list[str]:
        found = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found += variables(annotation, f"{prefix}{name}__")
            else:
                found.append(f"{prefix}{name}".upper())
        return found

    text = settings_reference.render()
    expected = variables(Settings, "BTCMLOPS_")
    assert len(expected) > 80
    missing = [variable for variable in expected if f"| `{variable}` |" not in text]
    assert not missing, f"settings without a row in the reference: {missing}"


# --- commands and targets named in the docs ---------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
# Where a shell command starts: a line's start, after ; && || | ( or a backtick, after sudo or `uv run`.
COMMAND_START = r"(?:^[ \t]*|[;&|(`][ \t]*|\bsudo\s+)"
MAKE = re.compile(COMMAND_START + r"make\s+(?:[A-Z_]+=\S*\s+)*([A-Za-z0-9_][\w.-]*)", re.MULTILINE)
BTCMLOPS = re.compile(
    r"(?:" + COMMAND_START + r"|\buv\s+run\s+(?:--\S+\s+)*)btcmlops\s+([a-z][\w|-]*)(?:\s+([a-z][\w|-]*))?",
    re.MULTILINE,
)
# The rest of a command: up to a comment, the next command or the end of the line.
ARGUMENTS = re.compile(r"[^#;&|\n]*")
OPTION = re.compile(r"(?<![\w-])(--[a-z][\w-]*)")
TARGET = re.compile(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", re.MULTILINE)


@dataclass(frozen=True)
class Code:
    """A piece of code in a Markdown file: a fenced block's line or an inline code span."""

    path: Path
    line: int
    text: str

    def where(self, offset: int = 0) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line + self.text.count(chr(10), 0, offset)}"


def code_in(path: Path, text: str | None = None) -> list[Code]:
    """Every fenced code line and inline code span of ``path`` (or of ``text``), with its line number."""
    found: list[Code] = []
    paragraph: list[tuple[int, str]] = []

    def spans() -> None:
        if not paragraph:
            return
        joined = "\n".join(line for _, line in paragraph)
        for match in CODE_SPAN.finditer(joined):
            found.append(Code(path, paragraph[0][0] + joined.count("\n", 0, match.start(2)), match.group(2)))
        paragraph.clear()

    fenced = False
    source = path.read_text(encoding="utf-8") if text is None else text
    for number, line in enumerate(source.splitlines(), 1):
        if FENCE.match(line):
            spans()
            fenced = not fenced
        elif fenced:
            found.append(Code(path, number, line))
        elif line.strip():
            paragraph.append((number, line))
        else:
            spans()
    spans()
    return found


def make_targets() -> set[str]:
    return set(TARGET.findall((ROOT / "Makefile").read_text(encoding="utf-8")))


def cli_tree() -> dict[tuple[str, ...], set[str]]:
    """Each command path of the Typer app (``("model", "promote")``) with the options it takes."""
    tree: dict[tuple[str, ...], set[str]] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        tree[path] = {option for param in command.params for option in [*param.opts, *param.secondary_opts]}
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return tree


def stale_commands(code: Code, tree: dict[tuple[str, ...], set[str]]) -> list[str]:
    """What in ``code`` names a btcmlops command, subcommand or option that does not exist."""
    stale = []
    for match in BTCMLOPS.finditer(code.text):
        where = code.where(match.start())
        command, sub = match.group(1), match.group(2)
        if (command,) not in tree:
            stale.append(f"{where}: `btcmlops {command}` is no command of btcmlops.cli:app")
            continue
        groups = {path[1] for path in tree if len(path) == 2 and path[0] == command}
        paths = [(command,)]
        rest_at = match.end(1)
        if groups and sub is not None:
            paths = []
            for name in filter(None, sub.split("|")):
                if name in groups:
                    paths.append((command, name))
                else:
                    stale.append(f"{where}: `btcmlops {command} {name}` is no command of btcmlops.cli:app")
            rest_at = match.end(2)
        rest = ARGUMENTS.match(code.text, rest_at)
        for option in OPTION.findall(rest.group(0) if rest else ""):
            # `clock show|reset [--start DAY]|set`: an option of any of the alternatives will do.
            if paths and not any(option in tree[path] for path in paths):
                named = "|".join(path[-1] for path in paths)
                stale.append(
                    f"{where}: `btcmlops {' '.join((*paths[0][:-1], named))}` has no option {option}"
                )
    return stale


def stale_targets(code: Code, targets: set[str]) -> list[str]:
    """What in ``code`` runs a `make` target the Makefile lacks."""
    return [
        f"{code.where(match.start())}: `make {match.group(1)}` is no Makefile target"
        for match in MAKE.finditer(code.text)
        if match.group(1) not in targets
    ]


def test_code_spans_are_found() -> None:
    """The parser sees fenced lines and inline spans, a span broken over two lines included."""
    doc = (
        "text `make demo` and\n`btcmlops model\npromote 3`\n\n```bash\nuv run btcmlops registry check\n```\n"
    )
    found = [(code.line, code.text) for code in code_in(ROOT / "docs" / "example.md", doc)]
    assert found == [
        (1, "make demo"),
        (2, "btcmlops model\npromote 3"),
        (6, "uv run btcmlops registry check"),
    ]


def test_a_stale_command_is_named_with_its_line() -> None:
    """A command, subcommand, option or make target that does not exist is named with file and line."""
    doc = (
        "Run `btcmlops model promote 3 --reason x`, then\n`btcmlops model demote 3`.\n\n```bash\n"
        "uv run btcmlops serve --replay out --workers 4   # not --host\nhelm install btcmlops deploy/x\n```\n"
    )
    tree = cli_tree()
    stale = [line for code in code_in(ROOT / "docs" / "x.md", doc) for line in stale_commands(code, tree)]
    assert stale == [
        "docs/x.md:2: `btcmlops model demote` is no command of btcmlops.cli:app",
        "docs/x.md:5: `btcmlops serve` has no option --workers",
    ]
    doc = "First `make demo`, then\n`sudo make\ndeploy`.\n\n```bash\n"
    doc += "make test && make publish  # make it so\n```\n"
    targets = make_targets()
    stale = [line for code in code_in(ROOT / "README.md", doc) for line in stale_targets(code, targets)]
    assert stale == [
        "README.md:2: `make deploy` is no Makefile target",
        "README.md:6: `make publish` is no Makefile target",
    ]


def test_every_named_make_target_exists() -> None:
    """Each `make <target>` in a code span or block of README.md or docs/*.md is a Makefile target."""
    targets = make_targets()
    assert {"help", "test", "demo", "serve", "stack", "settings-docs"} <= targets
    stale = [line for path in DOC_FILES for code in code_in(path) for line in stale_targets(code, targets)]
    assert not stale, "\n".join(stale)


def test_every_named_btcmlops_command_exists() -> None:
    """Each `btcmlops <command> [<subcommand>] [--option]` in README.md or docs/*.md is in the CLI."""
    tree = cli_tree()
    assert {("simulate",), ("serve",), ("model", "promote"), ("registry", "check")} <= set(tree)
    stale = [line for path in DOC_FILES for code in code_in(path) for line in stale_commands(code, tree)]
    assert not stale, "\n".join(stale)


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``path`` (lower case, punctuation dropped, spaces to -)."""
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_relative_links_resolve() -> None:
    """Every relative link and image of README.md and docs/*.md names a file (and heading) that exists."""
    link = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
    broken = []
    for path in DOC_FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for target in link.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue
                file, _, anchor = target.partition("#")
                linked = path.parent / file if file else path
                if not linked.exists():
                    broken.append(f"{path.relative_to(ROOT)}:{number}: {target} does not exist")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    broken.append(f"{path.relative_to(ROOT)}:{number}: {target}: no such heading")
    assert not broken, "\n".join(broken)
