"""The docs against the code: the settings reference is current, every named command exists.

docs/settings.md is generated from the settings' own descriptions (scripts/settings_reference.py);
README.md and docs/*.md name `make` targets and `btcmlops` commands in code spans and blocks, and each
must be a target of the Makefile and a command of the Typer app.
"""

from __future__ import annotations

import settings_reference
from pydantic import BaseModel

from btcmlops.settings import Settings


def test_settings_reference_is_current() -> None:
    """docs/settings.md is what scripts/settings_reference.py writes from src/btcmlops/settings.py."""
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
