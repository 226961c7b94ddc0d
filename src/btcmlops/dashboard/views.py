"""What the page shows, computed from the API's answers: pure functions, no HTTP and no Streamlit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from btcmlops.mlflow_links import model_version_url, run_url

HOUR = timedelta(hours=1)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


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
    """The target hours at which the served version changed, with the version that took over."""
    ordered = predictions.sort_values(["served_at", "target_time"])
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
    actual = candles.set_index("open_time")["close"]
    scored = mine.assign(actual=mine["target_time"].map(actual)).dropna(subset=["actual"])
    if scored.empty:
        return LiveError(0, None, None)
    return LiveError(
        len(scored),
        float((scored["predicted_close"] - scored["actual"]).abs().mean()),
        float((scored["last_close"] - scored["actual"]).abs().mean()),
    )


def forecast_figure(
    candles: pd.DataFrame, predictions: pd.DataFrame, shadow: pd.DataFrame | None = None
) -> go.Figure:
    """The real close as a line, each served forecast as a point at its target hour, coloured by version,
    a dashed marker where a new champion took over, and (if given) the challenger's shadow forecasts."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=candles["open_time"],
            y=candles["close"],
            mode="lines",
            name="real close",
            line={"color": "#444", "width": 1.5},
        )
    )
    points = latest_forecasts(predictions)
    for number, (version, served) in enumerate(points.groupby("model_version", sort=True)):
        figure.add_trace(
            go.Scatter(
                x=served["target_time"],
                y=served["predicted_close"],
                mode="markers",
                name=f"forecast v{version}",
                marker={"size": 5, "color": PALETTE[number % len(PALETTE)]},
            )
        )
    if shadow is not None and not shadow.empty:
        figure.add_trace(
            go.Scatter(
                x=shadow["target_time"],
                y=shadow["predicted_close"],
                mode="markers",
                name=f"shadow v{shadow['model_version'].iloc[0]} (challenger, not served)",
                marker={"size": 6, "symbol": "circle-open", "color": "#9467bd"},
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


def _p_value(decision: dict[str, Any]) -> float | None:
    """The one-sided Diebold-Mariano p-value recorded with a decision (None for older rows)."""
    test = (decision.get("metrics") or {}).get("significance") or {}
    value = test.get("p_value")
    return None if value is None else round(float(value), 3)


def decision_table(decisions: list[dict[str, Any]], ui_url: str, model_name: str) -> pd.DataFrame:
    """Each contest, newest first: the shadow month, the three MAEs, the verdict and its MLflow links."""
    rows = [
        {
            "shadow month": f"{pd.Timestamp(item['eval_start']):%Y-%m}",
            "champion": model_version_url(ui_url, model_name, item["champion_version"]),
            "champion MAE": round(item["champion_mae"], 2),
            "challenger": model_version_url(ui_url, model_name, item["challenger_version"]),
            "challenger MAE": round(item["challenger_mae"], 2),
            "naive MAE": round(item["naive_mae"], 2),
            "outcome": item["outcome"],  # the API's word, as the CLI and MLflow say it
            "DM p-value": _p_value(item),
            "run": (
                run_url(ui_url, item["experiment_id"], item["run_id"])
                if item.get("experiment_id") and item.get("run_id")
                else ""  # not logged in MLflow yet (or MLflow not reachable): a blank cell, not "None"
            ),
            "reason": item["reason"],
        }
        for item in reversed(decisions)
    ]
    return pd.DataFrame(rows)


def champion_timeline(history: list[dict[str, Any]], sim_now: datetime | None) -> pd.DataFrame:
    """Who was champion from when to when in sim time, for the whole run (from the change audit).

    A change with no sim time (made while no clock ran) is left out; the last champion's span runs to
    ``sim_now``. A clock reset sends sim time back: spans after ``sim_now`` are from before the reset.
    """
    changes = [item for item in history if item.get("sim_time")]
    rows = []
    for number, item in enumerate(changes):
        start = pd.Timestamp(item["sim_time"])
        end = pd.Timestamp(changes[number + 1]["sim_time"]) if number + 1 < len(changes) else None
        if end is None:
            end = max(start, pd.Timestamp(sim_now)) if sim_now is not None else start + pd.Timedelta(hours=1)
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
    versions = list(dict.fromkeys(timeline["version"]))
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
                marker={"color": PALETTE[versions.index(span["version"]) % len(PALETTE)]},
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
    for column, colour in zip(
        ("champion", "challenger", "naive"), (PALETTE[0], PALETTE[1], "#888"), strict=True
    ):
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
