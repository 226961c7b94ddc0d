"""``run_replay``: the one-command replay behind ``btcmlops simulate``."""

from __future__ import annotations

import json
import shlex
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from btcmlops.bootstrap import open_price_store, open_registry, tracking
from btcmlops.calendar import end_of_data, last_complete_month, months_between
from btcmlops.contest import Month
from btcmlops.contest.contest import Contest
from btcmlops.contest.records import CandleSource, MonthOutcome
from btcmlops.contest.training import Fit
from btcmlops.data import load_file_into_store
from btcmlops.mlflow_links import experiment_runs_url, registered_model_url
from btcmlops.redaction import redact
from btcmlops.registry import release_embedded_store
from btcmlops.replay.executors import FitsAhead, open_executor
from btcmlops.replay.summary import build_summary, predictions_frame
from btcmlops.settings import ModelSettings, Settings
from btcmlops.timing import Timings

REPLAY_FILES = ("predictions.csv", "summary.json", "report.html", "report.png", "prices.db", "mlflow.db")
ARTIFACTS_DIR = "mlartifacts"
"""The embedded MLflow store's artifact folder inside a replay's directory."""
PREVIOUS_SUFFIX = ".previous"
"""A new replay moves the one it replaces to ``<out>.previous`` (one generation is kept)."""


FitsFor = Callable[[CandleSource, Sequence[Month], ModelSettings], Fit]
"""Whoever hands a replay its models instead of its own executor (``run_replay(fits_for=...)``): called
once with the replay's candles, the months a model may be trained through and the model settings; a
sweep shares one executor and one store of fits between its replays (``btcmlops.replay.sweep``)."""


class ReplayError(RuntimeError):
    """The replay cannot start as configured (for example, the registry already has versions)."""


@dataclass(frozen=True)
class ReplayResult:
    """Where the replay wrote its outputs, and its summary."""

    out_dir: Path
    summary: dict[str, Any]
    previous: Path | None
    """Where the replay that was in ``out_dir`` was moved (None: there was none)."""
    predictions_path: Path
    summary_path: Path
    report_html: Path
    report_png: Path
    tracking_uri: str
    ui_command: str


class FrameCandles:
    """Candles held in memory, read like the price store (the replay reads the store once)."""

    def __init__(self, candles: pd.DataFrame) -> None:
        self._candles = candles

    def read_candles(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        times = self._candles["open_time"]
        keep = pd.Series(True, index=self._candles.index)
        if start is not None:
            keep &= times >= pd.Timestamp(start)
        if end is not None:
            keep &= times <= pd.Timestamp(end)
        return self._candles.loc[keep]


def previous_replay_dir(out_dir: Path) -> Path:
    """Where a new replay into ``out_dir`` keeps the one it replaces: beside it, ``<out>.previous``."""
    base = out_dir if out_dir.name else out_dir.resolve()  # "." has no name to suffix
    return base.with_name(base.name + PREVIOUS_SUFFIX)


def _rebase_artifact_paths(database: Path, old_root: Path, new_root: Path) -> None:
    """Point every artifact location in the SQLite MLflow store ``database`` from old to new root.

    MLflow stores absolute artifact locations (experiment, runs, model versions, logged models); a
    moved store would otherwise load its models from the new replay's folder, where they are not.
    Every text column is rewritten, so the rebase does not depend on one MLflow release's schema.
    """
    pairs = [(str(old_root), str(new_root)), (old_root.as_uri(), new_root.as_uri())]
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = connection.execute(f'PRAGMA table_info("{table}")').fetchall()
            for column in (c[1] for c in columns if "CHAR" in c[2].upper() or "TEXT" in c[2].upper()):
                rewrite = (
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?)'
                )
                for old, new in pairs:
                    connection.execute(rewrite, (old + "/", new + "/", old + "/"))
    connection.close()


def _keep_previous_replay(out_dir: Path) -> Path | None:
    """Move the files a previous replay wrote here to ``<out>.previous``, so the stores start empty.

    A replay's stores carry what was done by hand on it afterwards (``btcmlops model promote
    --replay``, rollbacks, their reasons); ``make demo`` must not wipe that silently. One generation
    is kept: an older ``.previous`` is deleted. Files the replay did not write stay where they are.
    """
    names = [name for name in (*REPLAY_FILES, ARTIFACTS_DIR) if (out_dir / name).exists()]
    if not names:
        return None
    previous = previous_replay_dir(out_dir)
    release_embedded_store(out_dir)  # this process's pooled connections would follow the moved file
    if previous.exists():
        shutil.rmtree(previous)
    previous.mkdir(parents=True)
    for name in names:
        (out_dir / name).rename(previous / name)
    if (previous / "mlflow.db").exists():
        _rebase_artifact_paths(
            previous / "mlflow.db", out_dir.resolve() / ARTIFACTS_DIR, previous.resolve() / ARTIFACTS_DIR
        )
    return previous


def mlflow_ui_command(tracking_uri: str, artifact_root: str | None, ui_url: str) -> str:
    """The command that opens this replay's runs and registry in MLflow's UI, as printed: it works.

    It names this environment's own ``mlflow`` (a venv's is not on PATH), runs one worker and turns
    MLflow 3's GenAI job runners off: a laptop demo needs neither four workers nor seven runners. It
    serves on the port of ``ui_url`` (BTCMLOPS_DASHBOARD__MLFLOW_UI_URL), where the printed links point.
    """
    if not tracking_uri.startswith("sqlite:"):
        return f"open {redact(tracking_uri)} in a browser"
    executable = Path(sys.executable).parent / "mlflow"
    parts = [str(executable) if executable.exists() else "mlflow", "ui", "--backend-store-uri", tracking_uri]
    if artifact_root:
        parts += ["--default-artifact-root", artifact_root]
    port = str(urlsplit(ui_url).port or 5000)
    command = " ".join(shlex.quote(part) for part in [*parts, "--workers", "1", "--port", port])
    return f"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false {command}"


def run_replay(
    settings: Settings,
    data_file: Path,
    out_dir: Path,
    *,
    on_month: Callable[[Month, int, int, MonthOutcome], None] | None = None,
    fits_for: FitsFor | None = None,
    executor: Executor | None = None,
) -> ReplayResult:
    """Replay the contest over ``data_file`` month by month; write outputs into ``out_dir``.

    Embedded defaults (no store URL, no tracking URI set) put an SQLite price store, an SQLite MLflow
    store and the model artifacts in ``out_dir``; a previous replay's files there move to
    ``<out>.previous`` first (``ReplayResult.previous``). With a configured
    store or tracking server the replay uses those, and refuses a registered model that already has
    versions (a replay starts from nothing). ``fits_for``: where the models come from instead of an
    executor (none is opened then).

    ``executor``: a running executor to fit the models on, which the caller opened (``open_executor``)
    and closes; the CLI starts it before importing this module, so that the workers' imports overlap
    this process's. None: the one ``settings.replay`` names, opened and closed here (serial: none).
    """
    started = time.perf_counter()
    timings = Timings()
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _keep_previous_replay(out_dir)

    # The fits' executor first (unless the caller's is running): its workers start while the candles
    # load. The composition root's rules, with the output directory in place of the home.
    with (
        (
            nullcontext()
            if fits_for is not None
            else nullcontext(executor)
            if executor is not None
            else open_executor(settings.replay, settings.model)
        ) as pool,
        open_price_store(settings, directory=out_dir, migrate=False) as store,
    ):
        with timings.measure("data"):
            store.migrate()
            loaded = load_file_into_store(data_file, store)
            frame = loaded.file.candles
            candles = store.read_candles(
                start=frame["open_time"].iloc[0].to_pydatetime(),
                end=frame["open_time"].iloc[-1].to_pydatetime(),
            )
        if store.list_decisions(settings.mlflow.registered_model):
            raise ReplayError(
                f"the price store already holds contest decisions for {settings.mlflow.registered_model!r}; "
                "use a new registered model name (BTCMLOPS_MLFLOW__REGISTERED_MODEL) or an empty store"
            )

        with timings.measure("mlflow"):
            tracking_uri, artifact_root = tracking(settings, out_dir)
        registry = open_registry(settings, directory=out_dir, timings=timings)
        if registry.versions():
            raise ReplayError(
                f"registered model {settings.mlflow.registered_model!r} already has versions at "
                f"{redact(tracking_uri)}; a replay starts from an empty registry "
                "(set BTCMLOPS_MLFLOW__REGISTERED_MODEL)"
            )

        last_hour = candles["open_time"].iloc[-1]
        last_complete = last_complete_month(last_hour)
        months = months_between(Month.of(candles["open_time"].iloc[0]), last_complete)
        source = FrameCandles(candles)
        # The last month trains no challenger (no month is left to score it on): fits through the others.
        fits = None if pool is None else FitsAhead(pool, source, months[:-1], settings.model)
        fit = fits_for(source, months[:-1], settings.model) if fits_for is not None else fits
        contest = Contest(settings.model, settings.contest, registry, source, store, timings=timings, fit=fit)
        outcomes: list[MonthOutcome] = []
        try:
            for index, month in enumerate(months):
                outcome = contest.close_month(month, train_challenger=index < len(months) - 1)
                outcomes.append(outcome)
                if on_month is not None:
                    on_month(month, index + 1, len(months), outcome)
        finally:
            if fits is not None:
                fits.cancel_unused()

        predictions = predictions_frame(outcomes)
        predictions_path = out_dir / "predictions.csv"
        with timings.measure("outputs"):
            predictions.to_csv(predictions_path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
        ui_command = mlflow_ui_command(tracking_uri, artifact_root, settings.dashboard.mlflow_ui_url)
        summary = build_summary(
            outcomes,
            data={
                "file": str(data_file),
                "format": loaded.file.format.value,
                "first_hour": candles["open_time"].iloc[0].isoformat(),
                "last_hour": candles["open_time"].iloc[-1].isoformat(),
                "rows": len(candles),
                "last_complete_month": str(last_complete),
                "end_of_data": end_of_data(last_complete),
                "stopped_early": (
                    f"the data ends inside {Month.of(last_hour)} (last hour {last_hour:%Y-%m-%d %H:00}Z): "
                    f"the replay stops at {last_complete}, the last complete month"
                    if last_complete < Month.of(last_hour)
                    else None
                ),
                "gaps": [
                    {
                        "start": gap.start.isoformat(),
                        "end": gap.end.isoformat(),
                        "missing_hours": gap.missing_hours,
                    }
                    for gap in loaded.file.gaps
                ],
            },
            settings=settings,
            mlflow_info={
                "tracking_uri": redact(tracking_uri),  # summary.json is shared: no password in it
                "experiment": settings.mlflow.experiment,
                "registered_model": settings.mlflow.registered_model,
                "ui_command": ui_command,
                "runs_url": experiment_runs_url(
                    settings.dashboard.mlflow_ui_url, registry.experiment_id or ""
                ),
                "model_url": registered_model_url(
                    settings.dashboard.mlflow_ui_url, settings.mlflow.registered_model
                ),
            },
        )
        report_html, report_png = out_dir / "report.html", out_dir / "report.png"
        with timings.measure("report"):
            from btcmlops.replay.report import write_report

            write_report(predictions, summary, report_html, report_png)
        summary["timings"] = {"total_s": round(time.perf_counter() - started, 3), **timings.as_dict()}
        summary_path = out_dir / "summary.json"
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
        return ReplayResult(
            out_dir=out_dir,
            summary=summary,
            previous=previous,
            predictions_path=predictions_path,
            summary_path=summary_path,
            report_html=report_html,
            report_png=report_png,
            tracking_uri=tracking_uri,
            ui_command=ui_command,
        )
