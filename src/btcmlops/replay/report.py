"""The replay's report: an interactive Plotly page and a PNG of the same story at a glance.

Top: the real close, each hour's served forecast coloured by the version that served it, and a marker
where a new champion takes over. Below: each month's MAE of the served forecast against naive, and
the same as skill (1 - MAE / naive MAE), where the small differences that matter are visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#bcbd22", "#17becf", "#393b79", "#e6550d", "#31a354", "#756bb1", "#843c39",
)  # fmt: skip
"""Distinct colours, none grey or black (the price line is black): one per version, 14 before reuse."""


def _colour(version: int) -> str:
    return _PALETTE[(version - 1) % len(_PALETTE)]


def _takeovers(served: pd.DataFrame) -> list[tuple[pd.Timestamp, int]]:
    """(first target hour, version) each time the serving version changes."""
    changed = served["model_version"].ne(served["model_version"].shift())
    rows = served.loc[changed]
    return list(
        zip(
            (pd.Timestamp(when) for when in rows["target_time"]),
            rows["model_version"].astype(int).tolist(),
            strict=True,
        )
    )


def title_lines(served: pd.DataFrame, summary: dict[str, Any]) -> list[str]:
    """The report's title: the scores, then the champions the chart shows and when the final one serves.

    The final champion is often promoted by the last contest and serves from the month after the data,
    so it never appears on the chart: the title says so rather than name a version the reader cannot find.
    """
    overall = summary.get("overall") or {}
    if not overall or served.empty:
        return ["btcmlops replay"]
    months = [item["month"] for item in summary.get("monthly", [])]
    window = f" {months[0]} to {months[-1]}" if months else ""
    shown = [version for _, version in _takeovers(served)]
    final = int(summary["final_champion"])
    starts = {int(item["version"]): item["from_month"] for item in summary.get("champion_history", [])}
    if shown and shown[-1] == final:
        ending = f"final champion v{final} (serves from {starts.get(final, '?')})"
    else:
        ending = f"final champion v{final} serves from {starts.get(final, '?')}, after the data"
    return [
        f"btcmlops replay{window} — served MAE {overall['served']['mae']:.2f} vs naive "
        f"{overall['naive']['mae']:.2f} (skill {overall['skill']:+.2%}), "
        f"{summary['promotions']} promotion(s)",
        f"champions served: {', '.join(f'v{version}' for version in shown)} — {ending}",
    ]


def write_report(predictions: pd.DataFrame, summary: dict[str, Any], html_path: Path, png_path: Path) -> None:
    """Write the interactive report to ``html_path`` and a static picture of it to ``png_path``."""
    served, monthly = report_frames(predictions, summary)
    _write_html(served, monthly, summary, html_path)
    png_figure(served, monthly, summary).savefig(png_path)


def report_frames(predictions: pd.DataFrame, summary: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The served forecasts (target times parsed) and one row per month, as both pictures draw them."""
    served = predictions.loc[predictions["role"] == "champion"].copy()
    served["target_time"] = pd.to_datetime(served["target_time"], utc=True)
    monthly = pd.DataFrame(
        [
            {
                "month": item["month"],
                "served": item["served"]["mae"],
                "naive": item["naive"]["mae"],
                "skill": item["skill"],
                "version": item["served_version"],
            }
            for item in summary["monthly"]
        ]
    )
    return served, monthly


def _write_html(served: pd.DataFrame, monthly: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    figure = make_subplots(
        rows=3,
        cols=1,
        row_heights=[0.6, 0.2, 0.2],
        vertical_spacing=0.07,
        subplot_titles=(
            "Close and served next-hour forecast",
            "Monthly MAE: served vs naive (USDT)",
            "Monthly skill vs naive: 1 - MAE / naive MAE (bar colour: serving version)",
        ),
    )
    figure.add_trace(
        go.Scattergl(
            x=served["target_time"], y=served["actual_close"], mode="lines", name="actual close",
            line={"color": "#222", "width": 1},
        ),
        row=1, col=1,
    )  # fmt: skip
    for version in sorted(served["model_version"].astype(int).unique()):
        rows = served.loc[served["model_version"] == version]
        figure.add_trace(
            go.Scattergl(
                x=rows["target_time"], y=rows["predicted_close"], mode="markers", name=f"forecast v{version}",
                marker={"size": 3, "color": _colour(version)},
            ),
            row=1, col=1,
        )  # fmt: skip
    for when, version in _takeovers(served):
        figure.add_vline(x=when, line={"color": _colour(version), "dash": "dot"}, row=1, col=1)
        figure.add_annotation(
            x=when, y=1.0, yref="y domain", text=f"v{version} serves", showarrow=False,
            xanchor="left", font={"color": _colour(version)}, row=1, col=1,
        )  # fmt: skip
    if not monthly.empty:
        figure.add_trace(go.Bar(x=monthly["month"], y=monthly["served"], name="served MAE"), row=2, col=1)
        figure.add_trace(
            go.Bar(x=monthly["month"], y=monthly["naive"], name="naive MAE", marker_color="#aaa"),
            row=2,
            col=1,
        )
    figure.update_layout(
        title="<br>".join(title_lines(served, summary)), height=820, barmode="group", template="plotly_white"
    )
    figure.write_html(path, include_plotlyjs=True, full_html=True)


def png_figure(served: pd.DataFrame, monthly: pd.DataFrame, summary: dict[str, Any]) -> Figure:
    """The static report: price and forecasts with a labelled marker per takeover, monthly scores.

    The legend sits at the lower right, clear of the takeover labels along the top edge (at the upper
    left it hid the first champion's).
    """
    figure = Figure(figsize=(14, 9.5), dpi=100, layout="constrained")
    price, scores, skills = figure.subplots(3, 1, height_ratios=[2.6, 1, 1])
    figure.suptitle("\n".join(title_lines(served, summary)))
    price.plot(
        served["target_time"], served["actual_close"], color="#222", linewidth=0.7, label="actual close"
    )
    for version in sorted(served["model_version"].astype(int).unique()):
        rows = served.loc[served["model_version"] == version]
        price.scatter(
            rows["target_time"], rows["predicted_close"], s=1.5, color=_colour(version),
            label=f"forecast v{version}",
        )  # fmt: skip
    for when, version in _takeovers(served):
        price.axvline(when, color=_colour(version), linestyle=":", linewidth=1.2)
        price.annotate(
            f"v{version}", (when, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
            textcoords="offset points", color=_colour(version), fontsize=9,
        )  # fmt: skip
    price.set_ylabel("BTC/USDT close")
    price.legend(loc="lower right", markerscale=6, fontsize=8, ncols=2)
    price.grid(alpha=0.3)
    if not monthly.empty:
        positions = range(len(monthly))
        scores.bar([p - 0.2 for p in positions], monthly["served"], width=0.4, label="served MAE")
        scores.bar([p + 0.2 for p in positions], monthly["naive"], width=0.4, label="naive MAE", color="#aaa")
        scores.set_xticks(list(positions), monthly["month"], fontsize=8)
        scores.legend(fontsize=8)
        versions = monthly["version"].astype(int).tolist()
        skills.bar(list(positions), monthly["skill"] * 100, color=[_colour(v) for v in versions])
        for position, value, version in zip(positions, monthly["skill"] * 100, versions, strict=True):
            skills.annotate(
                f"v{version}", (position, value), xytext=(0, 2 if value >= 0 else -10),
                textcoords="offset points", ha="center", fontsize=8,
            )  # fmt: skip
        skills.set_xticks(list(positions), monthly["month"], fontsize=8)
        skills.axhline(0, color="#222", linewidth=0.8)
        skills.margins(y=0.2)
    scores.set_ylabel("MAE (USDT)")
    scores.grid(alpha=0.3, axis="y")
    skills.set_ylabel("skill vs naive (%)")
    skills.grid(alpha=0.3, axis="y")
    return figure
