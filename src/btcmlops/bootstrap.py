"""The composition root: ``Settings`` in, the objects the entry points need out.

Every entry point (the CLI's commands, the inference service's ``create_app``, the replay, the crash
tests' harnesses) builds its price store, registry, contest and champion changes here, so that each is
built one way. Nothing here reads the environment: the one ``Settings`` object built at the entry point
is passed in.

**Where the stores are.** One rule for both: a configured URL is used as it is; unset, the store is an
SQLite file in a directory, the home (``BTCMLOPS_HOME``) by default, a replay's output directory for a
replay. The inference service refuses to guess (its ``create_app`` asks for both URLs).

**Who migrates, and when.** Every process that opens the price store brings it to the newest schema
before its first read or write (Alembic's upgrade is a no-op on an up-to-date database, so doing it in
each process costs one query and spares an ordering between them):

* a one-shot command (``data``, ``clock``, ``model``, ``registry``, ``init``) migrates once on opening;
  a failure stops the command with its error;
* a service that may start before its database (``feed``, ``trainer``) migrates in a retried step
  (``retry.retrying``), which logs each failure with its reason and waits, until the
  database answers or the service is stopped;
* the inference service migrates in its lifespan (:func:`migrate_for_service`): a failure is logged
  with its reason and the service starts anyway, its watcher reading the store until it answers (its
  forecasts need a champion and candles, not the newest schema of every table).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from btcmlops.redaction import describe_error, redact
from btcmlops.retry import Backoff, retrying
from btcmlops.settings import Settings
from btcmlops.store import PriceStore

if TYPE_CHECKING:
    # Imported where used: a command that needs the price store only (``clock``, ``data``) must not
    # pay for MLflow and the model libraries (seconds per process).
    from btcmlops.contest.changes import ChampionChanges, StepHook
    from btcmlops.contest.contest import Contest
    from btcmlops.registry import ModelRegistry
    from btcmlops.timing import Timings

logger = logging.getLogger(__name__)

SimNow = Callable[[], datetime | None]
"""Sim time now (None where there is no clock: a replay's store)."""


class NoPriceStoreError(LookupError):
    """A command that reads what is there was pointed at an SQLite price store that does not exist."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no price store at {path}")
        self.path = path


def price_store_url(settings: Settings, directory: Path | None = None) -> str:
    """The configured price store, else the SQLite file ``prices.db`` in ``directory`` (the home).

    The one default-URL rule of the price store.
    """
    return settings.store.url or f"sqlite:///{((directory or settings.home) / 'prices.db').resolve()}"


def missing_sqlite_file(url: str) -> Path | None:
    """The file of an SQLite ``url`` that does not exist yet (opening it would create it), else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return None if path.exists() else path.resolve()


def open_price_store(
    settings: Settings, *, directory: Path | None = None, migrate: bool = True, must_exist: bool = False
) -> PriceStore:
    """The price store ``settings`` name, migrated unless ``migrate`` is False (a service migrates it
    in a retried step); use it as ``with open_price_store(settings) as store:`` to dispose it.

    ``must_exist``: for a command that reads what is there (``clock show``, ``model history``,
    ``registry check``...): an SQLite store that does not exist raises :class:`NoPriceStoreError`
    instead of being created empty.
    """
    url = price_store_url(settings, directory)
    if must_exist and (missing := missing_sqlite_file(url)) is not None:
        raise NoPriceStoreError(missing)
    store = PriceStore(url, settings.store)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.dispose()
            raise
    return store


def migrate_until_ready(
    store: PriceStore, settings: Settings, stop: threading.Event, then: Callable[[], object] | None = None
) -> bool:
    """Migrate ``store`` (then run ``then``), retried with a backoff until it answers; False if stopped.

    For the services that may start before their database: each failure is logged with its reason.
    """

    def attempt() -> bool:
        store.migrate()
        if then is not None:
            then()
        return True

    what = "preparing the store" if then is not None else "migrating the store"
    return bool(retrying(attempt, stop, Backoff(0.5, settings.trainer.retry_max_s), what))


async def migrate_for_service(store: PriceStore) -> bool:
    """The inference service's migration at start: False (logged with why) if the store refused it.

    The service starts anyway: the store may not be up yet, and its watcher keeps reading it.
    """
    import asyncio

    try:
        await asyncio.to_thread(store.migrate)
    except Exception as error:
        logger.warning(
            "could not migrate the price store at %s: %s; serving anyway, the champion watcher keeps "
            "reading the store until it answers",
            redact(store.url),
            describe_error(error),
        )
        return False
    return True


def tracking(settings: Settings, directory: Path | None = None) -> tuple[str, str | None]:
    """The tracking URI and, for the embedded MLflow store, its artifact root.

    The configured server, else the embedded SQLite store in ``directory`` (``<home>/mlflow``).
    """
    from btcmlops.registry import resolve_tracking

    return resolve_tracking(
        settings.mlflow.tracking_uri, directory or settings.home / "mlflow", settings.home / "cache"
    )


def open_registry(
    settings: Settings, *, directory: Path | None = None, timings: Timings | None = None
) -> ModelRegistry:
    """The registry ``settings`` name (creating its experiment and registered model if missing)."""
    from btcmlops.registry import ModelRegistry

    tracking_uri, artifacts = tracking(settings, directory)
    return ModelRegistry(
        tracking_uri,
        settings.mlflow.experiment,
        settings.mlflow.registered_model,
        artifact_location=artifacts,
        timings=timings,
    )


def serving_registry(settings: Settings) -> ModelRegistry:
    """The inference service's registry: the configured server only, and never created by it."""
    from btcmlops.registry import ModelRegistry

    if settings.mlflow.tracking_uri is None:
        raise ValueError("the inference service needs a registry: set BTCMLOPS_MLFLOW__TRACKING_URI")
    return ModelRegistry(
        settings.mlflow.tracking_uri,
        settings.mlflow.experiment,
        settings.mlflow.registered_model,
        create=False,
    )


def serving_store(settings: Settings) -> PriceStore:
    """The inference service's price store: the configured one only (it must share the trainer's).

    Not migrated here: the service's lifespan does it (:func:`migrate_for_service`).
    """
    if settings.store.url is None:
        raise ValueError("the inference service needs a price store: set BTCMLOPS_STORE__URL")
    return PriceStore(settings.store.url, settings.store)


def await_registry(settings: Settings, stop: threading.Event) -> ModelRegistry | None:
    """The registry once MLflow answers (a service may start before it); None if stopped first."""
    from btcmlops.services.trainer import wait_for_registry

    tracking_uri, artifacts = tracking(settings)
    return wait_for_registry(
        tracking_uri,
        settings.mlflow.experiment,
        settings.mlflow.registered_model,
        stop,
        artifact_location=artifacts,
    )


def sim_now_of(store: PriceStore) -> SimNow:
    """Sim time now by the store's clock (None where there is no clock: a replay's store)."""

    def sim_now() -> datetime | None:
        clock = store.read_clock()
        return None if clock is None else clock.sim_now(datetime.now(UTC))

    return sim_now


def champion_changes(
    store: PriceStore, registry: ModelRegistry, on_step: StepHook | None = None
) -> ChampionChanges:
    """Changes of champion by hand, journalled in ``store`` and stamped with its sim time."""
    from btcmlops.contest.changes import ChampionChanges, no_step

    return ChampionChanges(
        registry,
        store.journal,
        store,
        now=lambda: datetime.now(UTC),
        sim_now=sim_now_of(store),
        on_step=on_step or no_step,
    )


def trainer_contest(
    settings: Settings,
    store: PriceStore,
    registry: ModelRegistry,
    *,
    on_step: StepHook | None = None,
    contest_type: type[Contest] | None = None,
) -> Contest:
    """The live trainer's contest: candles and decisions in ``store``, sim time by its clock.

    A change by hand cut off for ``change_grace_s`` is taken for dead and finished. ``contest_type``
    lets a test harness run a ``Contest`` subclass on the very same wiring.
    """
    from btcmlops.contest.changes import no_step
    from btcmlops.contest.contest import Contest

    return (contest_type or Contest)(
        settings.model,
        settings.contest,
        registry,
        store,
        store,
        sim_now=sim_now_of(store),
        on_step=on_step or no_step,
        change_grace_s=settings.store.change_grace_s,
    )


@contextmanager
def contest_by_hand(settings: Settings) -> Iterator[Contest]:
    """The store (migrated) and a contest over it and the registry, for a command run by hand.

    The store must exist (:class:`NoPriceStoreError` otherwise); it is disposed when the block ends.
    """
    from btcmlops.contest.contest import Contest

    with open_price_store(settings, must_exist=True) as store:
        yield Contest(
            settings.model, settings.contest, open_registry(settings), store, store, sim_now=sim_now_of(store)
        )
