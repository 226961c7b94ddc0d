"""What the page shows, computed from the API's answers: pure functions, no HTTP and no Streamlit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from btcmlops.calendar import end_of_data, last_complete_month_by
from btcmlops.contest.scoring import absolute_errors, score_interval, skill
from btcmlops.mlflow_links import model_version_url, run_url

HOUR = timedelta(hours=1)
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#e7ba52",
    "#ad494a",
)
"""Twelve colours, so a year's versions (v1 and one a month) each get their own."""
NAIVE_COLOUR = "#888"
BAND_OPACITY = 0.16
"""How opaque a version's interval band is: light enough that the price line and the forecasts over it
stay readable, dark enough to tell two versions' bands apart."""


def version_colour(version: int) -> str:
    """The one colour of ``version`` on every chart: by its number, never by its place in a window."""
    return PALETTE[(int(version) - 1) % len(PALETTE)]


def band_colour(version: int, opacity: float = BAND_OPACITY) -> str:
    """``version``'s colour, see-through: the fill of its interval band."""
    hex_colour = version_colour(version).lstrip("#")
    red, green, blue = (int(hex_colour[index : index + 2], 16) for index in (0, 2, 4))
    return f"rgba({red},{green},{blue},{opacity})"


def hours_to_ask(
    closed_hour: datetime, newest_asked: datetime | None, trained_through: datetime | None, hours_shown: int
) -> list[datetime]:
    """The hours to ask ``/predict`` for: each one closed since the newest forecast asked for.

    Only hours the chart can show, and never one whose next hour the champion was trained on (its
    forecast would be scored on training data). With nothing asked yet, just the newest closed hour.
    """
    first = closed_hour if newest_asked is None else newest_asked + HOUR
    first = max(first, closed_hour - (hours_shown - 1) * HOUR)
    if trained_through is not None:
        first = max(first, trained_through)  # hour T forecasts T+1: T+1 must be after the last target
    hours = []
    moment = first
    while moment <= closed_hour:
        hours.append(moment)
        moment += HOUR
    return hours


def newest_asked(predictions: pd.DataFrame, asked_here: datetime | None) -> datetime | None:
    """The newest hour a forecast was asked from, by anyone (the log) or by this page (its session).

    The log is written in the background, so this page's own newest ask may not be in it yet.
    """
    logged = predictions["timestamp"].max() if not predictions.empty else None
    candidates = [moment for moment in (logged, asked_here) if moment is not None and not pd.isna(moment)]
    return max(pd.Timestamp(moment) for moment in candidates).to_pydatetime() if candidates else None


def champion_changes(predictions: pd.DataFrame) -> pd.DataFrame:
    """The target hours at which the served version changed, with the version that took over.

    From live forecasts only, in target order: after a clock reset the client asks again for hours
    already forecast, and the champion's answers on its own training hours are not live, so they draw
    no takeover where there was none.
    """
    ordered = latest_forecasts(predictions).sort_values(["target_time", "served_at"])
    changed = ordered["model_version"].ne(ordered["model_version"].shift())
    changes = ordered.loc[changed, ["target_time", "model_version"]].iloc[1:]
    return changes.reset_index(drop=True)


def latest_forecasts(predictions: pd.DataFrame) -> pd.DataFrame:
    """One live point per target hour and version (several clients may have asked for the same hour).

    A forecast the log marks as not live (asked after its target hour had closed, a look back) is left
    out: it would credit a version with hours it did not forecast in time.
    """
    if "live" in predictions.columns:
        predictions = predictions.loc[predictions["live"].fillna(True).astype(bool)]
    return predictions.drop_duplicates(["target_time", "model_version"], keep="first")


@dataclass(frozen=True)
class LiveError:
    """A version's MAE on hours that have closed, beside naive's on the same hours."""

    hours: int
    model_mae: float | None
    naive_mae: float | None

    @property
    def skill(self) -> float | None:
        """1 - model/naive: above 0 when the model beats "next close = last close"."""
        if self.model_mae is None or not self.naive_mae:
            return None
        return 1 - self.model_mae / self.naive_mae


def live_error(
    predictions: pd.DataFrame, candles: pd.DataFrame, version: int, closed_hour: datetime, span: timedelta
) -> LiveError:
    """Error of ``version``'s forecasts whose target hour closed within ``span`` before ``closed_hour``."""
    mine = latest_forecasts(predictions.loc[predictions["model_version"] == version])
    mine = mine.loc[(mine["target_time"] <= closed_hour) & (mine["target_time"] > closed_hour - span)]
    return _live_error_of(mine, candles)


def _live_error_of(forecasts: pd.DataFrame, candles: pd.DataFrame) -> LiveError:
    """MAE of ``forecasts`` and naive's on the hours whose actual close is known (one rule for both)."""
    actual = candles.set_index("open_time")["close"]
    scored = forecasts.assign(actual=forecasts["target_time"].map(actual)).dropna(subset=["actual"])
    if scored.empty:
        return LiveError(0, None, None)
    return LiveError(
        len(scored),
        float(absolute_errors(scored["actual"], scored["predicted_close"]).mean()),
        float(absolute_errors(scored["actual"], scored["last_close"]).mean()),
    )


@dataclass(frozen=True)
class LiveInterval:
    """A version's interval on hours that have closed, beside naive's interval on the same hours.

    Scored as the contest scores a shadow month (``btcmlops.contest.scoring.score_interval``): coverage
    as a fraction, the interval score (Winkler's: width plus ``2 / (1 - level)`` times any miss) in
    USDT, lower is better.
    """

    hours: int
    level: float | None = None
    coverage: float | None = None
    interval_score: float | None = None
    naive_coverage: float | None = None
    naive_interval_score: float | None = None

    @property
    def skill(self) -> float | None:
        """1 - interval score / naive's: above 0 when the interval beats the trailing-30-days one."""
        if self.interval_score is None or not self.naive_interval_score:
            return None
        return skill(self.interval_score, self.naive_interval_score)


def _interval_scores(forecasts: pd.DataFrame, candles: pd.DataFrame) -> LiveInterval:
    """Score the live forecasts given on the hours with an actual close and both intervals (one level:
    the newest forecast's; a version serves one level, a row at another would not be comparable)."""
    needed = ["interval_level", "lower", "upper", "naive_lower", "naive_upper"]
    if not set(needed) <= set(forecasts.columns):
        return LiveInterval(0)
    actual = candles.set_index("open_time")["close"]
    scored = forecasts.assign(actual=forecasts["target_time"].map(actual)).dropna(subset=["actual", *needed])
    if scored.empty:
        return LiveInterval(0)
    level = float(scored.sort_values("target_time")["interval_level"].iloc[-1])
    scored = scored.loc[np.isclose(scored["interval_level"], level)]
    served = score_interval(scored["actual"], scored["lower"], scored["upper"], level)
    naive = score_interval(scored["actual"], scored["naive_lower"], scored["naive_upper"], level)
    return LiveInterval(
        served.n, level, served.coverage, served.interval_score, naive.coverage, naive.interval_score
    )


def live_interval(
    predictions: pd.DataFrame, candles: pd.DataFrame, version: int, closed_hour: datetime, span: timedelta
) -> LiveInterval:
    """Interval scores of ``version``'s live forecasts whose target hour closed within ``span`` before
    ``closed_hour``: the hours ``live_error`` counts (those with both intervals)."""
    mine = latest_forecasts(predictions.loc[predictions["model_version"] == version])
    mine = mine.loc[(mine["target_time"] <= closed_hour) & (mine["target_time"] > closed_hour - span)]
    return _interval_scores(mine, candles)


def run_interval(predictions: pd.DataFrame, candles: pd.DataFrame) -> LiveInterval:
    """The whole run's served intervals (live ones, whatever version served each) against naive's."""
    return _interval_scores(
        latest_forecasts(predictions).drop_duplicates(["target_time"], keep="first"), candles
    )


def version_scores(predictions: pd.DataFrame, candles: pd.DataFrame, closed_hour: datetime) -> pd.DataFrame:
    """Each version's live record on the hours given that have closed: MAE and interval against naive.

    One row per version, oldest first; a version with no scoreable live hour is left out.
    """
    rows: list[dict[str, Any]] = []
    if predictions.empty:
        return pd.DataFrame(rows, columns=VERSION_SCORE_COLUMNS)
    span = closed_hour - pd.Timestamp(predictions["target_time"].min()).to_pydatetime() + HOUR
    for version in sorted(predictions["model_version"].dropna().unique()):
        error = live_error(predictions, candles, int(version), closed_hour, span)
        interval = live_interval(predictions, candles, int(version), closed_hour, span)
        if error.hours == 0:
            continue
        rows.append(
            {
                "version": f"v{int(version)}",
                "live hours": error.hours,
                "MAE": _rounded(error.model_mae, 2),
                "naive MAE": _rounded(error.naive_mae, 2),
                "MAE skill": _percent(error.skill),
                "level": _percent(interval.level, 0),
                "coverage": _percent(interval.coverage),
                "naive coverage": _percent(interval.naive_coverage),
                "interval score": _rounded(interval.interval_score, 2),
                "naive interval score": _rounded(interval.naive_interval_score, 2),
                "interval skill": _percent(interval.skill),
            }
        )
    return pd.DataFrame(rows, columns=VERSION_SCORE_COLUMNS)


VERSION_SCORE_COLUMNS = [
    "version",
    "live hours",
    "MAE",
    "naive MAE",
    "MAE skill",
    "level",
    "coverage",
    "naive coverage",
    "interval score",
    "naive interval score",
    "interval skill",
]


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _percent(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage for a table cell ("" where there is none)."""
    return "" if value is None else f"{value:.{digits}%}"


def _band(frame: pd.DataFrame) -> tuple[list[Any], list[Any]]:
    """One closed outline per run of consecutive target hours (upper forwards, lower back), runs apart
    by ``None``: a gap in a version's forecasts is a gap in its band, never a bridge across it."""
    frame = frame.dropna(subset=["lower", "upper"]).sort_values("target_time")
    xs: list[Any] = []
    ys: list[Any] = []
    run = (frame["target_time"].diff() != HOUR).cumsum()
    for _, part in frame.groupby(run, sort=True):
        if xs:
            xs.append(None)
            ys.append(None)
        times = list(part["target_time"])
        xs += times + times[::-1]
        ys += list(part["upper"]) + list(part["lower"])[::-1]
    return xs, ys


def forecast_figure(
    candles: pd.DataFrame, predictions: pd.DataFrame, shadow: pd.DataFrame | None = None
) -> go.Figure:
    """The real close as a line, each served forecast as a point at its target hour, coloured by version,
    with its interval as a light band of the same colour (drawn first, under everything else), a dashed
    marker where a new champion took over, and (if given) the challenger's shadow forecasts."""
    figure = go.Figure()
    points = latest_forecasts(predictions)
    if {"lower", "upper", "interval_level"} <= set(points.columns):
        for _, served in points.groupby("model_version", sort=True):
            xs, ys = _band(served)
            if not xs:
                continue  # logged before intervals: no band
            banded = int(served["model_version"].iloc[0])
            level = served["interval_level"].dropna().iloc[-1]
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    fill="toself",
                    fillcolor=band_colour(banded),
                    line={"width": 0, "color": version_colour(banded)},
                    name=f"v{banded} {level:.0%} interval",
                    legendgroup=f"v{banded}",
                    hoverinfo="skip",
                )
            )
    figure.add_trace(  # over the bands, so a band never greys the price out
        go.Scatter(
            x=candles["open_time"],
            y=candles["close"],
            mode="lines",
            name="real close",
            line={"color": "#444", "width": 1.5},
        )
    )
    for version, served in points.groupby("model_version", sort=True):
        figure.add_trace(
            go.Scatter(
                x=served["target_time"],
                y=served["predicted_close"],
                mode="markers",
                name=f"forecast v{version}",
                legendgroup=f"v{version}",
                marker={"size": 5, "color": version_colour(int(served["model_version"].iloc[0]))},
            )
        )
    if shadow is not None and not shadow.empty:
        challenger = int(shadow["model_version"].iloc[0])
        xs, ys = _band(shadow) if {"lower", "upper"} <= set(shadow.columns) else ([], [])
        if xs:  # an outline only: the challenger's interval is not served, so it is not shaded
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"width": 1, "dash": "dot", "color": version_colour(challenger)},
                    name=f"shadow v{challenger} interval",
                    legendgroup=f"shadow v{challenger}",
                    hoverinfo="skip",
                )
            )
        figure.add_trace(
            go.Scatter(
                x=shadow["target_time"],
                y=shadow["predicted_close"],
                mode="markers",
                name=f"shadow v{shadow['model_version'].iloc[0]} (challenger, not served)",
                marker={
                    "size": 6,
                    "symbol": "circle-open",
                    "color": version_colour(int(shadow["model_version"].iloc[0])),
                },
            )
        )
    for change in champion_changes(predictions).itertuples():
        figure.add_vline(x=change.target_time, line={"dash": "dash", "color": "#888"})
        figure.add_annotation(
            x=change.target_time,
            y=1,
            yref="paper",
            text=f"v{change.model_version} takes over",
            showarrow=False,
            xanchor="left",
            yanchor="top",
        )
    figure.update_layout(
        height=460,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis_title="BTC/USDT close",
        legend={"orientation": "h", "y": -0.12},
        uirevision="keep",  # keep the viewer's zoom across refreshes
    )
    return figure


CONTESTANTS = ("champion", "challenger", "naive")
METRIC_NAMES = {"mae": "MAE", "interval_score": "interval score"}


def p_values(decision: dict[str, Any]) -> dict[str, float | None]:
    """Both one-sided Diebold-Mariano p-values of a decision, by metric (None where none was recorded).

    ``/decisions`` gives them as fields (``dm_p_value``, ``dm_interval_p_value``); a service from before
    those fields keeps them only in ``metrics`` (``significance``, ``interval_significance``).
    """
    metrics = decision.get("metrics") or {}
    found: dict[str, float | None] = {}
    for metric, field, key in (
        ("mae", "dm_p_value", "significance"),
        ("interval_score", "dm_interval_p_value", "interval_significance"),
    ):
        value = decision.get(field)
        if value is None:
            value = (metrics.get(key) or {}).get("p_value")
        found[metric] = None if value is None else round(float(value), 3)
    return found


def interval_scores(decision: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """The three contestants' interval scores (coverage, mean_width, interval_score, pinball, level) of a
    decision: ``/decisions``' ``champion_interval``..., else ``metrics.intervals``; None where none."""
    kept = (decision.get("metrics") or {}).get("intervals") or {}
    return {who: decision.get(f"{who}_interval") or kept.get(who) for who in CONTESTANTS}


def decided_on(decision: dict[str, Any]) -> str:
    """The score the rule was applied to, in words; a decision from before the setting was on MAE."""
    metric = decision.get("metric") or (decision.get("metrics") or {}).get("metric") or "mae"
    return METRIC_NAMES.get(str(metric), str(metric))


def _interval_score(scores: dict[str, Any] | None) -> float | None:
    return None if not scores else round(float(scores["interval_score"]), 2)


def decision_table(decisions: list[dict[str, Any]], ui_url: str, model_name: str) -> pd.DataFrame:
    """Each contest, newest first: the shadow month, both scores of the three contestants (MAE and
    interval score), both p-values, the metric that decided, the verdict and its MLflow links."""
    rows = []
    for item in reversed(decisions):
        intervals = interval_scores(item)
        tests = p_values(item)
        rows.append(
            {
                "shadow month": f"{pd.Timestamp(item['eval_start']):%Y-%m}",
                "champion": model_version_url(ui_url, model_name, item["champion_version"]),
                "challenger": model_version_url(ui_url, model_name, item["challenger_version"]),
                "outcome": item["outcome"],  # the API's word, as the CLI and MLflow say it
                "decided on": decided_on(item),
                "champion MAE": round(item["champion_mae"], 2),
                "challenger MAE": round(item["challenger_mae"], 2),
                "naive MAE": round(item["naive_mae"], 2),
                "DM p (MAE)": tests["mae"],
                "champion interval score": _interval_score(intervals["champion"]),
                "challenger interval score": _interval_score(intervals["challenger"]),
                "naive interval score": _interval_score(intervals["naive"]),
                "DM p (interval score)": tests["interval_score"],
                "run": (
                    run_url(ui_url, item["experiment_id"], item["run_id"])
                    if item.get("experiment_id") and item.get("run_id")
                    else ""  # not logged in MLflow yet (or MLflow not reachable): a blank cell, not "None"
                ),
                "reason": item["reason"],
            }
        )
    return pd.DataFrame(rows)


def contest_scores(decision: dict[str, Any]) -> pd.DataFrame:
    """The why-view's table: the three contestants' scores on the shadow month, one row each, both
    metrics (the interval's columns empty where a contestant had none)."""
    intervals = interval_scores(decision)
    names = {
        "champion": f"champion v{decision['champion_version']}",
        "challenger": f"challenger v{decision['challenger_version']}",
        "naive": "naive",
    }
    rows = []
    for who in CONTESTANTS:
        scores = intervals[who] or {}
        rows.append(
            {
                "contestant": names[who],
                "MAE": round(float(decision[f"{who}_mae"]), 2),
                "interval score": _interval_score(scores),
                "coverage": _percent(scores.get("coverage")),
                "mean width": _rounded(scores.get("mean_width"), 2),
                "level": _percent(scores.get("level"), 0),
            }
        )
    return pd.DataFrame(rows)


def why_summary(decision: dict[str, Any]) -> str:
    """One line under the why-view's table: which metric decided, and both tests' p-values."""
    tests = p_values(decision)
    parts = [
        f"{METRIC_NAMES[metric]} p = {tests[metric]:.3f}"
        if tests[metric] is not None
        else f"{METRIC_NAMES[metric]}: no test recorded"
        for metric in ("mae", "interval_score")
    ]
    return (
        f"Decided on **{decided_on(decision)}** (BTCMLOPS_CONTEST__METRIC). One-sided Diebold-Mariano "
        f"tests that the challenger's loss is lower: {'; '.join(parts)}."
    )


def champion_timeline(
    history: list[dict[str, Any]], sim_now: datetime | None, reached: datetime | None = None
) -> pd.DataFrame:
    """Who was champion from when to when in sim time, for the whole run (from the change audit).

    A change with no sim time (made while no clock ran) is left out; the last champion's span runs to
    the later of ``sim_now`` and ``reached`` (the newest hour the run has recorded). A clock reset sends
    sim time back, not the record: the spans it has passed stay, the champion's included.
    """
    changes = [item for item in history if item.get("sim_time")]
    rows = []
    for number, item in enumerate(changes):
        start = pd.Timestamp(item["sim_time"])
        end = pd.Timestamp(changes[number + 1]["sim_time"]) if number + 1 < len(changes) else None
        if end is None:
            moments = [pd.Timestamp(moment) for moment in (sim_now, reached) if moment is not None]
            end = max([start, *moments]) if moments else start + pd.Timedelta(hours=1)
            if end == start:
                end = start + pd.Timedelta(hours=1)  # a champion of this very moment is drawn, not lost
        rows.append(
            {
                "version": f"v{item['to_version']}",
                "from": start,
                "to": end,
                "source": item["source"],
                "reason": item["reason"],
            }
        )
    return pd.DataFrame(rows, columns=["version", "from", "to", "source", "reason"])


def timeline_figure(timeline: pd.DataFrame) -> go.Figure:
    """The champion timeline as one bar per tenure, labelled with its version."""
    figure = go.Figure()
    for _, span in timeline.iterrows():
        figure.add_trace(
            go.Bar(
                x=[(span["to"] - span["from"]).total_seconds() * 1000],
                base=[span["from"]],
                y=["champion"],
                orientation="h",
                name=span["version"],
                text=[span["version"]],
                textposition="inside",
                insidetextanchor="middle",
                marker={"color": version_colour(int(span["version"][1:]))},
                hovertext=[f"{span['version']} from {span['from']:%Y-%m-%d %H:00} ({span['source']})"],
                hoverinfo="text",
                showlegend=False,
            )
        )
    figure.update_layout(
        barmode="overlay",
        height=120,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"type": "date"},
        yaxis={"showticklabels": False},
    )
    return figure


def daily_figure(decision: dict[str, Any]) -> go.Figure | None:
    """The three contestants' MAE per day of the shadow month: why the challenger won or lost.

    None for a decision recorded before daily MAEs were kept.
    """
    daily = (decision.get("metrics") or {}).get("daily_mae")
    if not daily:
        return None
    frame = pd.DataFrame.from_dict(daily, orient="index")
    frame.index = pd.to_datetime(frame.index)
    names = {
        "champion": f"champion v{decision['champion_version']}",
        "challenger": f"challenger v{decision['challenger_version']}",
        "naive": "naive (next close = last close)",
    }
    figure = go.Figure()
    colours = (
        version_colour(decision["champion_version"]),
        version_colour(decision["challenger_version"]),
        NAIVE_COLOUR,
    )
    for column, colour in zip(("champion", "challenger", "naive"), colours, strict=True):
        if column in frame:
            figure.add_trace(
                go.Scatter(
                    x=frame.index,
                    y=frame[column],
                    mode="lines+markers",
                    name=names[column],
                    line={"color": colour, "dash": "dot" if column == "naive" else "solid"},
                )
            )
    figure.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis_title="MAE of the day (USDT)",
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


@dataclass(frozen=True)
class Banner:
    """One line the page shows above the chart: ``kind`` is Streamlit's (success, info, warning)."""

    kind: str
    text: str


def clock_banners(
    clock: dict[str, Any], reached: datetime | None, trained_through: str | None
) -> list[Banner]:
    """What the clock is doing, in words, and (after a reset to an earlier day) what the reset kept.

    Args:
        clock: ``GET /clock``'s answer.
        reached: The newest candle the store holds (``/model``'s ``latest_candle``): the feed writes an
            hour only once it has closed, so one after the clock's last closed hour means a reset.
        trained_through: The champion's last training month, if one serves.
    """
    now = pd.Timestamp(clock["sim_now"])
    state = shown_state(clock)
    hold_at = pd.Timestamp(clock["hold_at"]) if clock.get("hold_at") else None
    banners = []
    if state == "finished":
        end = pd.Timestamp(clock["end_at"])
        last = last_complete_month_by(end)
        banners.append(
            Banner("success", f"The replay is finished at {end:%Y-%m-%d %H:%M} UTC: {end_of_data(last)}.")
        )
    elif state == "paused":
        banners.append(
            Banner(
                "warning",
                f"The clock is paused at {now:%Y-%m-%d %H:%M} UTC: Resume (sidebar, control key) runs it on.",
            )
        )
    elif state == "holding" and hold_at is not None:
        banners.append(
            Banner("info", f"The clock holds at {hold_at:%Y-%m-%d %H:%M} UTC: {clock['holding_for']}.")
        )
    else:  # running, or a paced clock's wait of a moment for the next hour's forecast: normal
        contest = (
            "" if hold_at is None else f"; it waits at {hold_at:%Y-%m-%d %H:%M} UTC for that month's contest"
        )
        banners.append(
            Banner(
                "success",
                f"Running at {clock['speed']:g} sim h/s, each hour once its forecast is made{contest}.",
            )
        )
    closed = pd.Timestamp(clock["last_closed_hour"])
    if reached is not None and pd.Timestamp(reached) > closed:
        window = "" if trained_through is None else f" (trained through {trained_through})"
        banners.append(
            Banner(
                "info",
                "The clock was reset to an earlier day; the run had reached "
                f"{pd.Timestamp(reached):%Y-%m-%d %H:%M} UTC. A reset replays time only: the prices, "
                "contests, champions and forecasts already recorded stay as they are, and no contest is "
                f"run again. The champion{window} answers hours it was trained on as in-sample: those "
                "forecasts are not live and are not scored; live scores resume on hours after its training.",
            )
        )
    return banners


def shown_state(clock: dict[str, Any]) -> str:
    """The clock's state as the page names it: a paced clock's wait of a moment for the next forecast is
    ``running`` (it is how the clock runs); ``holding`` is a wait at a month's end for its contest."""
    state = str(clock.get("state") or ("paused" if clock["paused"] else "running"))
    hold_at = clock.get("hold_at")
    if state == "holding" and (hold_at is None or pd.Timestamp(clock["sim_now"]) < pd.Timestamp(hold_at)):
        return "running"
    return state


def run_scores(predictions: pd.DataFrame, candles: pd.DataFrame) -> LiveError:
    """The whole run's served forecasts (live ones, whatever version served each) against naive."""
    served = latest_forecasts(predictions).drop_duplicates(["target_time"], keep="first")
    return _live_error_of(served, candles)


MONITORING_COLUMNS = [
    "version",
    "role",
    "hours",
    "MAE",
    "naive MAE",
    "MAE skill",
    "coverage",
    "interval score",
    "naive interval score",
    "interval skill",
]


def monitoring_table(scores: list[dict[str, Any]]) -> pd.DataFrame:
    """``GET /monitoring/scores``'s versions as a table: the service's own 7-day figures, not recomputed."""
    rows = [
        {
            "version": f"v{item['model_version']}",
            "role": item["role"],
            "hours": item["scored_hours"],
            "MAE": _rounded(item["mean_absolute_error_usdt"], 2),
            "naive MAE": _rounded(item["naive_mean_absolute_error_usdt"], 2),
            "MAE skill": _percent(item["skill"], 2),
            "coverage": _percent(item["coverage"]),
            "interval score": _rounded(item["interval_score_usdt"], 2),
            "naive interval score": _rounded(item["naive_interval_score_usdt"], 2),
            "interval skill": _percent(item["interval_skill"], 2),
        }
        for item in scores
        if item["scored_hours"] > 0
    ]
    return pd.DataFrame(rows, columns=MONITORING_COLUMNS)


def alert_lines(alerts: dict[str, Any]) -> list[Banner]:
    """``GET /alerts`` as banners: firing ones as errors (critical) or warnings, pending ones as info."""
    banners = []
    for alert in alerts["alerts"]:
        labels = ", ".join(f"{key}={value}" for key, value in sorted(alert["labels"].items()))
        what = alert["summary"] or alert["name"]
        if alert["state"] == "firing":
            kind = "error" if alert["severity"] == "critical" else "warning"
            text = f"**{alert['name']}** firing: {what}"
        else:
            kind = "info"
            text = f"**{alert['name']}** pending (its condition holds, not yet for long enough): {what}"
        banners.append(Banner(kind, f"{text} ({labels})" if labels else text))
    return banners


def drift_figure(drift: dict[str, Any]) -> go.Figure | None:
    """``GET /drift`` as bars, most drifted first, coloured by status, with the two thresholds drawn."""
    features = sorted(drift["features"], key=lambda item: item["psi"], reverse=True)
    if not features:
        return None
    colours = {"stable": "#2ca02c", "moderate": "#ff7f0e", "drifted": "#d62728"}
    figure = go.Figure(
        go.Bar(
            x=[item["feature"] for item in features],
            y=[item["psi"] for item in features],
            marker_color=[colours[item["status"]] for item in features],
            hovertemplate="%{x}: PSI %{y:.3f}<extra></extra>",
        )
    )
    for bound, name in ((drift["moderate_threshold"], "moderate"), (drift["threshold"], "drifted")):
        figure.add_hline(y=bound, line_dash="dot", annotation_text=f"{name} {bound:g}")
    figure.update_layout(
        height=320, margin={"l": 40, "r": 20, "t": 20, "b": 40}, yaxis_title="PSI", showlegend=False
    )
    return figure


def live_contest_table(standing: dict[str, Any]) -> pd.DataFrame:
    """``GET /contest/live``'s three contestants on the hours scored so far, as the decision will show
    them (the champion's side is what served each hour)."""
    rows = []
    for role in ("champion", "challenger", "naive"):
        version = standing.get(f"{role}_version")
        interval = standing.get(f"{role}_interval") or {}
        rows.append(
            {
                "contestant": role if version is None else f"{role} v{version}",
                "MAE": _rounded(standing.get(f"{role}_mae"), 2),
                "interval score": _rounded(interval.get("interval_score"), 2),
                "coverage": _percent(interval.get("coverage")),
            }
        )
    return pd.DataFrame(rows, columns=["contestant", "MAE", "interval score", "coverage"])


def live_contest_headline(standing: dict[str, Any]) -> str:
    """One line: the month, hours scored and left, and how the rule stands with the test's p so far."""
    rule = standing["rule"]
    p_value = standing["dm_interval_p_value" if rule["metric"] == "interval_score" else "dm_p_value"]
    verdict = {True: "would promote", False: "would keep the champion", None: "cannot judge yet"}[
        standing["would_promote"]
    ]
    tested = "" if p_value is None else f", p so far {p_value:.3f}"
    hours = (  # no standing yet (no challenger in shadow): no hours to speak of
        ""
        if standing.get("champion_version") is None
        else f" {standing['hours_scored']} hours scored, {standing['hours_left']} left."
    )
    return (
        f"**{standing['month']}** ({standing['state']}):{hours} On {rule['metric']} with a "
        f"{rule['margin']:.1%} margin ({rule['promotion_rule']} rule) the contest {verdict}{tested}."
    )
