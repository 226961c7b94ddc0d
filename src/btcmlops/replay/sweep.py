"""``run_sweep``: one replay per combination of a grid of contest and model settings, side by side.

Each combination is a whole replay by ``run_replay`` (the one contest, nothing re-implemented) in its
own folder, ``<out>/<name>``, with its own MLflow experiment and registered model, so the combinations
can be opened, compared and promoted by hand like any replay. What a sweep adds:

- **shared fits.** A model trained through a month depends on the candles through it and on the model
  settings only, never on the contest's settings or outcomes (``replay.executors``). So
  :class:`SharedFits` keeps every fit of the sweep under (model settings, month), and a combination
  that differs from an earlier one only in its contest settings is handed that one's models instead
  of fitting them again. All the replays' fits go to one executor, opened once for the sweep.
- **one table.** :func:`summary_row` reads each replay's own ``summary.json`` into a row: served MAE
  and skill, interval score, contests, promotions and *significant promotions* (see
  :data:`SIGNIFICANCE_LEVEL`). ``summary.csv`` holds them; ``sweep_report`` draws them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pydantic

from btcmlops.calendar import Month
from btcmlops.contest.training import Fit, Fitted, train_on_candles
from btcmlops.replay.executors import open_executor
from btcmlops.replay.run import ReplayResult, run_replay
from btcmlops.settings import ContestSettings, ModelSettings, Settings

if TYPE_CHECKING:
    from btcmlops.contest.records import CandleSource, MonthOutcome

SIGNIFICANCE_LEVEL = 0.05
"""A *significant promotion*: a promotion whose one-sided Diebold-Mariano test of the rule's own metric
(``dm_p_value`` for mae, ``dm_interval_p_value`` for interval_score; the challenger's hourly losses
against the champion's) has p < 0.05. One yardstick for every combination, whatever its rule or alpha:
a promotion under the margin rule may be significant or not; under the significance rule with alpha
0.05 every promotion is."""

EXPANDING = "expanding"
"""``--window expanding``: every hour from the first candle (``train_window_months`` 0)."""


@dataclass(frozen=True)
class GridField:
    """One axis of the grid: its name on the command line and in a grid file, and the setting it sets."""

    name: str
    group: str
    setting: str


GRID_FIELDS = (
    GridField("family", "model", "family"),
    GridField("window", "model", "train_window_months"),
    GridField("rule", "contest", "promotion_rule"),
    GridField("metric", "contest", "metric"),
    GridField("margin", "contest", "margin"),
)
"""The grid's axes, model settings first: combinations are replayed in this nesting order, so those
that share their models follow each other."""


class SweepError(ValueError):
    """The grid cannot be swept as given; the message names the field and the value."""


@dataclass(frozen=True)
class Combination:
    """One point of the grid: its name (its folder), the value of each field, and its settings."""

    name: str
    values: dict[str, Any]
    settings: Settings


def _setting_value(grid_field: GridField, value: object) -> object:
    """``value`` in the setting's own terms (``window``: ``expanding`` is 0 months)."""
    if grid_field.name == "window" and str(value).strip().lower() == EXPANDING:
        return 0
    return value


def _validated(base: Settings, grid_field: GridField, value: object) -> Any:
    """The setting's value for ``value``, validated by the settings group itself; a clear error if not."""
    group: type[ContestSettings | ModelSettings] = (
        ContestSettings if grid_field.group == "contest" else ModelSettings
    )
    current = getattr(base, grid_field.group).model_dump()
    try:
        checked = group.model_validate({**current, grid_field.setting: _setting_value(grid_field, value)})
    except pydantic.ValidationError as error:
        reason = "; ".join(problem["msg"] for problem in error.errors())
        raise SweepError(f"grid field {grid_field.name!r}: value {value!r} is refused: {reason}") from None
    return getattr(checked, grid_field.setting)


def _label(grid_field: GridField, value: object) -> str:
    """How a value reads in a combination's name and table: ``window`` 0 is ``expanding``."""
    if grid_field.name == "window":
        return EXPANDING if value == 0 else f"{value}m"
    return str(value)


def build_grid(choices: Mapping[str, Sequence[object]], base: Settings) -> list[Combination]:
    """Every combination of ``choices`` (field name to its values), a field not given keeping ``base``'s.

    Each value is checked by its settings group (a margin of 1.5, an unknown rule or family, a window
    of -1 months are refused with the field named). A combination's name is made of the fields given
    more than one value (``rule-significance_margin-0.01``; ``base`` when none is), and is the folder
    and the suffix of the experiment and registered model it is replayed into.
    """
    known = {grid_field.name: grid_field for grid_field in GRID_FIELDS}
    unknown = sorted(set(choices) - set(known))
    if unknown:
        raise SweepError(
            f"unknown grid field(s) {', '.join(map(repr, unknown))}; the fields are {', '.join(known)}"
        )
    axes: list[list[Any]] = []
    for grid_field in GRID_FIELDS:
        given = choices.get(grid_field.name)
        if given is not None and len(given) == 0:
            raise SweepError(f"grid field {grid_field.name!r} has no values")
        checked = (
            [_validated(base, grid_field, value) for value in given]
            if given
            else [getattr(getattr(base, grid_field.group), grid_field.setting)]
        )
        if len(set(checked)) != len(checked):
            raise SweepError(f"grid field {grid_field.name!r} repeats a value: {list(given or [])}")
        axes.append(checked)
    varied = [grid_field for grid_field, values in zip(GRID_FIELDS, axes, strict=True) if len(values) > 1]
    combinations = []
    for point in itertools.product(*axes):
        values = dict(zip((grid_field.name for grid_field in GRID_FIELDS), point, strict=True))
        name = "_".join(f"{f.name}-{_label(f, values[f.name])}" for f in varied) or "base"
        combinations.append(Combination(name, values, _settings_of(base, values, name)))
    return combinations


def _settings_of(base: Settings, values: Mapping[str, Any], name: str) -> Settings:
    """``base`` with the combination's values, its own experiment and its own registered model."""
    groups: dict[str, dict[str, Any]] = {"model": {}, "contest": {}}
    for grid_field in GRID_FIELDS:
        groups[grid_field.group][grid_field.setting] = values[grid_field.name]
    mlflow = base.mlflow.model_copy(
        update={
            "experiment": f"{base.mlflow.experiment}-sweep-{name}",
            "registered_model": f"{base.mlflow.registered_model}-sweep-{name}",
        }
    )
    return base.model_copy(
        update={
            "model": ModelSettings.model_validate({**base.model.model_dump(), **groups["model"]}),
            "contest": ContestSettings.model_validate({**base.contest.model_dump(), **groups["contest"]}),
            "mlflow": mlflow,
        }
    )


@dataclass
class SharedFits:
    """Every fit of a sweep under (model settings, month): the replays' ``fits_for`` (``run_replay``).

    A replay's first request submits that month's fit and every later month's to the executor, as
    :class:`~btcmlops.replay.executors.FitsAhead` does, except those another replay already submitted;
    with no executor (serial) a month is fitted here when first asked for. A sweep reads one data
    file, so the candles through a month are the same for all its replays: the key needs no data hash.
    """

    executor: Executor | None
    fits: dict[tuple[str, Month], Future[Fitted]] = field(default_factory=dict, init=False)
    made: int = field(default=0, init=False)
    """Fits submitted or made (each model settings' month once)."""
    reused: int = field(default=0, init=False)
    """Fits handed to a replay that an earlier replay of the sweep had already asked for."""
    asked: set[tuple[str, Month]] = field(default_factory=set, init=False)
    """Every (model settings, month) a replay asked for."""

    def __call__(self, candles: CandleSource, months: Sequence[Month], config: ModelSettings) -> Fit:
        """The contest's ``fit`` for one replay of ``candles`` with ``config``."""
        settings_key = config.model_dump_json()
        started = False

        def fit(month: Month) -> Fitted:
            nonlocal started
            ahead = [month]
            if self.executor is not None and not started:
                ahead += [later for later in months if later > month]
            started = True
            for wanted in ahead:
                if (settings_key, wanted) not in self.fits:
                    self.fits[(settings_key, wanted)] = self._submit(candles, wanted, config)
                    self.made += 1
            key = (settings_key, month)
            if key in self.asked:
                self.reused += 1
            self.asked.add(key)
            return self.fits[key].result()

        return fit

    def _submit(self, candles: CandleSource, month: Month, config: ModelSettings) -> Future[Fitted]:
        # The candles exactly as the contest reads them when it closes the month: up to its last hour.
        through = candles.read_candles(end=month.last_hour.to_pydatetime())
        if self.executor is not None:
            return self.executor.submit(train_on_candles, through, month, config)
        done: Future[Fitted] = Future()
        done.set_result(train_on_candles(through, month, config))
        return done

    def cancel_unused(self) -> None:
        """Cancel the fits no replay asked for (a running one finishes; its model is dropped)."""
        for key, future in self.fits.items():
            if key not in self.asked:
                future.cancel()


def significant_promotions(summary: Mapping[str, Any]) -> int:
    """How many of a replay's promotions were significant (:data:`SIGNIFICANCE_LEVEL`)."""
    count = 0
    for decision in summary["decisions"]:
        p_value = decision["dm_p_value" if decision["metric"] == "mae" else "dm_interval_p_value"]
        count += bool(decision["promoted"] and p_value is not None and p_value < SIGNIFICANCE_LEVEL)
    return count


def summary_row(combination: Combination, summary: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """One line of the sweep's table, read from the replay's own ``summary.json`` content."""
    overall = summary.get("overall") or {}
    served_interval = overall.get("served_interval", {})
    timings = summary.get("timings", {})
    return {
        "name": combination.name,
        **{f.name: _label(f, combination.values[f.name]) for f in GRID_FIELDS},
        "served_mae": overall.get("served", {}).get("mae"),
        "naive_mae": overall.get("naive", {}).get("mae"),
        "skill": overall.get("skill"),
        "interval_score": served_interval.get("interval_score"),
        "naive_interval_score": overall.get("naive_interval", {}).get("interval_score"),
        "interval_skill": overall.get("interval_skill"),
        "coverage": served_interval.get("coverage"),
        "contests": len(summary["decisions"]),
        "promotions": summary["promotions"],
        "significant_promotions": significant_promotions(summary),
        "final_champion": summary["final_champion"],
        "wall_s": timings.get("total_s"),
        "training_s": timings.get("training_s"),
        "experiment": summary["mlflow"]["experiment"],
        "out_dir": str(out_dir),
    }


@dataclass(frozen=True)
class SweepResult:
    """Where the sweep wrote its table, each combination's replay, and what sharing the fits saved."""

    out_dir: Path
    table: pd.DataFrame
    replays: list[ReplayResult]
    summary_csv: Path
    chart_html: Path
    chart_png: Path
    fits_made: int
    fits_reused: int
    wall_s: float


def run_sweep(
    base: Settings,
    combinations: Sequence[Combination],
    data_file: Path,
    out_dir: Path,
    *,
    share_fits: bool = True,
    on_replay: Callable[[Combination, int, int], None] | None = None,
    on_month: Callable[[Month, int, int, MonthOutcome], None] | None = None,
) -> SweepResult:
    """Replay each combination over ``data_file`` into ``out_dir/<name>``; write the table and its chart.

    ``out_dir`` gets ``summary.csv`` (a row per combination, :func:`summary_row`), ``sweep.html`` and
    ``sweep.png``.

    The fits run on the executor ``base.replay`` names, opened once for the whole sweep. With
    ``share_fits`` False every replay fits its own models (what sharing saves is measured so).
    ``on_replay(combination, index, total)`` is called before each replay, ``on_month`` as in
    ``run_replay``.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    replays: list[ReplayResult] = []
    rows: list[dict[str, Any]] = []
    made = reused = 0
    with open_executor(base.replay, base.model) as executor:
        shared = SharedFits(executor)
        for index, combination in enumerate(combinations, start=1):
            if on_replay is not None:
                on_replay(combination, index, len(combinations))
            fits = shared if share_fits else SharedFits(executor)
            replay = run_replay(
                combination.settings,
                data_file,
                out_dir / combination.name,
                on_month=on_month,
                fits_for=fits,
            )
            if not share_fits:
                fits.cancel_unused()
                made += fits.made
            replays.append(replay)
            rows.append(summary_row(combination, replay.summary, replay.out_dir))
        shared.cancel_unused()
        made, reused = (shared.made, shared.reused) if share_fits else (made, 0)
    table = pd.DataFrame(rows)
    summary_csv = out_dir / "summary.csv"
    table.to_csv(summary_csv, index=False)
    chart_html, chart_png = out_dir / "sweep.html", out_dir / "sweep.png"
    from btcmlops.replay.sweep_report import write_sweep_report  # plotly and matplotlib: only here

    write_sweep_report(table, chart_html, chart_png)
    return SweepResult(
        out_dir=out_dir,
        table=table,
        replays=replays,
        summary_csv=summary_csv,
        chart_html=chart_html,
        chart_png=chart_png,
        fits_made=made,
        fits_reused=reused,
        wall_s=time.perf_counter() - started,
    )
