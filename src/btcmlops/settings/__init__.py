"""The one settings object of btcmlops.

Every knob lives here, read from environment variables with the prefix ``BTCMLOPS_`` (nested groups
use ``__``, e.g. ``BTCMLOPS_STORE__URL``) or from a ``.env`` file. An entry point builds one
``Settings`` and passes it (or the group a component needs) down; nothing below the entry points reads
the environment, so tests build their own settings and nothing happens at import time.

The groups live in modules by what they set (``stores``, ``modelling``, ``serving``, ``live``); this
module holds ``Settings`` itself, which joins them, and the old names it still reads. Everything is
imported from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from btcmlops.settings.live import (
    ClientSettings,
    ClockSettings,
    DashboardSettings,
    FeedSettings,
    TrainerSettings,
)
from btcmlops.settings.modelling import (
    EMBEDDED_DATA_FILE,
    ContestSettings,
    DataSettings,
    ModelSettings,
    ReplaySettings,
)
from btcmlops.settings.serving import MetricsSettings, ServeSettings
from btcmlops.settings.stores import MlflowSettings, S3Settings, StoreSettings

__all__ = [
    "EMBEDDED_DATA_FILE",
    "REMOVED",
    "RENAMED",
    "ClientSettings",
    "ClockSettings",
    "ConfigurationError",
    "ContestSettings",
    "DashboardSettings",
    "DataSettings",
    "FeedSettings",
    "MetricsSettings",
    "MlflowSettings",
    "ModelSettings",
    "ReplaySettings",
    "S3Settings",
    "ServeSettings",
    "Settings",
    "StoreSettings",
    "TrainerSettings",
]


class ConfigurationError(ValueError):
    """Settings that validate but cannot be honoured here (a library not installed, no GPU).

    Waiting cannot heal it: a service stops at once and the CLI exits with status 2.
    """


class Settings(BaseSettings):
    """All of btcmlops' configuration; docs/settings.md lists every setting (``make settings-docs``)."""

    model_config = SettingsConfigDict(
        env_prefix="BTCMLOPS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    home: Path = Field(
        default=Path(".btcmlops"),
        description=(
            "Directory of the embedded stores used where no URL is set (the SQLite price store, also of "
            "`data load` and `data fetch`; the MLflow store and artifacts), of the MLflow template cache "
            "and of the prediction log's write-ahead files."
        ),
    )
    store: StoreSettings = StoreSettings()
    mlflow: MlflowSettings = MlflowSettings()
    data: DataSettings = DataSettings()
    model: ModelSettings = ModelSettings()
    contest: ContestSettings = ContestSettings()
    replay: ReplaySettings = ReplaySettings()
    trainer: TrainerSettings = TrainerSettings()
    serve: ServeSettings = ServeSettings()
    clock: ClockSettings = ClockSettings()
    dashboard: DashboardSettings = DashboardSettings()
    client: ClientSettings = ClientSettings()
    feed: FeedSettings = FeedSettings()
    s3: S3Settings = S3Settings()
    metrics: MetricsSettings = MetricsSettings()
    demo: bool = Field(
        default=False,
        description=(
            "A laptop demo: the services accept the known demo and placeholder secrets (`demo`, "
            "`change-me...`). Off, they refuse to start with one."
        ),
    )
    heartbeat_file: Path | None = Field(
        default=None,
        description=(
            "File the feed and the trainer touch on every round, for a container healthcheck "
            "(`btcmlops health --heartbeat FILE`)."
        ),
    )

    _deprecations: list[str] = PrivateAttr(default_factory=list)

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="wrap")
    @classmethod
    def _read_old_names(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """The one place that reads settings by their old names (see :data:`RENAMED`, :data:`REMOVED`)."""
        notes: list[str] = []
        if isinstance(data, dict):
            data = _apply_old_names(data, notes)
        settings = handler(data)
        settings._deprecations = notes
        return settings

    @property
    def deprecations(self) -> list[str]:
        """One warning per old setting name that was set: what to set instead. The CLI prints them."""
        return list(self._deprecations)

    def placeholder_secrets(self) -> list[str]:
        """The settings that hold a placeholder or demo secret (copied from an example, never changed).

        Empty in demo mode: there the known values are the point.
        """
        if self.demo:
            return []
        found = []
        key = self.serve.control_key
        if key is not None and _placeholder(key.get_secret_value()):
            found.append("BTCMLOPS_SERVE__CONTROL_KEY")
        if self.store.url is not None:
            password = make_url(self.store.url).password
            if password is not None and _placeholder(str(password)):
                found.append("BTCMLOPS_STORE__URL (its password)")
        secret = self.s3.secret_access_key
        if secret is not None and _placeholder(secret.get_secret_value()):
            found.append("BTCMLOPS_S3__SECRET_ACCESS_KEY")
        return found


_PLACEHOLDERS = frozenset({"demo", "changeme", "change-me", "password", "secret", "admin"})


def _placeholder(value: str) -> bool:
    """A value from an example file or a tutorial, not a secret."""
    lowered = value.strip().lower()
    return lowered in _PLACEHOLDERS or lowered.startswith(("change-me", "changeme"))


RENAMED: dict[tuple[str, str], tuple[str, str]] = {
    ("clock", "api_key"): ("serve", "control_key"),
}
"""Old (group, name) -> new (group, name): still read, with a warning naming the new variable."""

REMOVED: dict[tuple[str, str], str] = {
    ("serve", "workers"): (
        "`btcmlops serve` runs one uvicorn process, whose champion snapshot, prediction log and clock live "
        "in that process's memory; run more processes or replicas to scale"
    ),
}
"""Settings that are no more, with why; set, they are ignored with a warning."""


def _variable(group: str, name: str) -> str:
    return f"BTCMLOPS_{group.upper()}__{name.upper()}"


def _apply_old_names(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """``data`` with every old name moved to its new one (unless that is set too) or dropped, noted."""
    data = dict(data)
    for (group, name), (new_group, new_name) in RENAMED.items():
        values = data.get(group)
        if not isinstance(values, dict) or name not in values:
            continue
        data[group] = {key: value for key, value in values.items() if key != name}
        old, new = _variable(group, name), _variable(new_group, new_name)
        target = data.get(new_group)
        target = dict(target) if isinstance(target, dict) else {}
        if new_name in target:
            notes.append(f"{old} is deprecated and ignored: {new} is set too; remove {old}")
            continue
        target[new_name] = values[name]
        data[new_group] = target
        notes.append(f"{old} is deprecated: set {new} instead (same value)")
    for (group, name), why in REMOVED.items():
        values = data.get(group)
        if isinstance(values, dict) and name in values:
            data[group] = {key: value for key, value in values.items() if key != name}
            notes.append(f"{_variable(group, name)} is no longer read and ignored: {why}")
    return data
