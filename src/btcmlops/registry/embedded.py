"""The embedded MLflow store: an SQLite file and a local artifact folder, no server.

MLflow builds a new SQLite store by running its whole migration history, which takes seconds. The
result is the same empty schema every time for one MLflow release, so it is built once into a
template per release and copied for each new store.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient


def _template(cache_dir: Path) -> Path:
    template = cache_dir / f"mlflow-{mlflow.__version__}-empty.db"
    if not template.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(dir=cache_dir, suffix=".db.tmp")
        os.close(fd)
        os.unlink(scratch)
        MlflowClient(tracking_uri=f"sqlite:///{scratch}").search_experiments(max_results=1)
        os.replace(scratch, template)  # atomic: a concurrent builder never sees half a template
    return template


def embedded_tracking_uri(directory: Path, cache_dir: Path) -> str:
    """Return the tracking URI of the SQLite MLflow store in ``directory``, creating it if needed."""
    directory.mkdir(parents=True, exist_ok=True)
    database = directory.resolve() / "mlflow.db"
    if not database.exists():
        shutil.copyfile(_template(cache_dir), database)
    return f"sqlite:///{database}"


def embedded_artifact_location(directory: Path) -> str:
    """Return the artifact root (a file URI) for experiments of the embedded store in ``directory``."""
    return (directory.resolve() / "mlartifacts").as_uri()


def resolve_tracking(configured: str | None, directory: Path, cache_dir: Path) -> tuple[str, str | None]:
    """The tracking URI to use and, for the embedded store, its artifact root.

    A configured URI (an mlflow server) is used as it is, its server deciding where artifacts go;
    unset means the embedded SQLite store with local artifacts in ``directory``.
    """
    if configured:
        return configured, None
    return embedded_tracking_uri(directory, cache_dir), embedded_artifact_location(directory)


def release_embedded_store(directory: Path) -> None:
    """Close this process's pooled connections to the SQLite MLflow store in ``directory``.

    MLflow keeps one SQLAlchemy engine per store URI for the life of the process, its pool holding
    connections open; a file moved away under them stays the one they read and write. A replay that
    moves the previous replay's store aside calls this first, so that its own store (same path, new
    file) is the one this process uses next. The engine stays cached: its next use reconnects.
    """
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    uri = f"sqlite:///{directory.resolve() / 'mlflow.db'}"
    for store in (TrackingStore, RegistryStore):
        engine = store._engine_map.get(uri)
        if engine is not None:
            engine.dispose()
