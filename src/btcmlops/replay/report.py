"""The replay's report: an interactive Plotly page and a PNG of the same story at a glance.

Top: the real close, each hour's served forecast coloured by the version that served it with its
interval shaded around it, and a marker where a new champion takes over. Below: each month's MAE of the
served forecast against naive, the same as skill (1 - MAE / naive MAE), where the small differences that
matter are visible, the interval's monthly coverage against the level and naive's, and its interval
skill (1 - interval score / naive's).
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
    lines = [
        f"btcmlops replay{window} — served MAE {overall['served']['mae']:.2f} vs naive "
        f"{overall['naive']['mae']:.2f} (skill {overall['skill']:+.2%}), "
        f"{summary['promotions']} promotion(s)",
    ]
    if "served_interval" in overall:
        interval, naive = overall["served_interval"], overall["naive_interval"]
        lines.append(
            f"{interval['level']:.0%} interval: coverage {interval['coverage']:.1%} (worst month "
            f"{overall['worst_month_coverage']:.1%}), interval score {interval['interval_score']:.1f} "
            f"vs naive {naive['interval_score']:.1f} (interval skill {overall['interval_skill']:+.2%})"
        )
    lines.append(f"champions served: {', '.join(f'v{version}' for version in shown)} — {ending}")
    return lines


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
                "coverage": item.get("served_interval", {}).get("coverage"),
                "naive_coverage": item.get("naive_interval", {}).get("coverage"),
                "level": item.get("served_interval", {}).get("level"),
                "interval_skill": item.get("interval_skill"),
            }
            for item in summary["monthly"]
        ]
    )
    return served, monthly


def _write_html(served: pd.DataFrame, monthly: pd.DataFrame, summary: dict[str, Any], path: Path) -> None:
    figure = make_subplots(
        rows=5,
        cols=1,
        row_heights=[0.44, 0.14, 0.14, 0.14, 0.14],
        vertical_spacing=0.05,
        subplot_titles=(
            "Close and served next-hour forecast with its interval",
            "Monthly MAE: served vs naive (USDT)",
            "Monthly skill vs naive: 1 - MAE / naive MAE (bar colour: serving version)",
            "Monthly coverage of the interval: served vs naive (line: the level)",
            "Monthly interval skill vs naive: 1 - interval score / naive's",
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
        if "lower_close" in rows and rows["lower_close"].notna().all():
            figure.add_trace(
                go.Scattergl(
                    x=pd.concat([rows["target_time"], rows["target_time"][::-1]]),
                    y=pd.concat([rows["upper_close"], rows["lower_close"][::-1]]),
                    fill="toself", fillcolor=_colour(version), opacity=0.2, line={"width": 0},
                    name=f"interval v{version}", hoverinfo="skip",
                ),
                row=1, col=1,
            )  # fmt: skip
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
        colours = [_colour(int(version)) for version in monthly["version"]]
        figure.add_trace(
            go.Bar(x=monthly["month"], y=monthly["skill"] * 100, name="skill (%)", marker_color=colours),
            row=3,
            col=1,
        )
    if not monthly.empty and monthly["coverage"].notna().any():
        figure.add_trace(
            go.Bar(x=monthly["month"], y=monthly["coverage"] * 100, name="served coverage (%)"), row=4, col=1
        )
        figure.add_trace(
            go.Bar(
                x=monthly["month"],
                y=monthly["naive_coverage"] * 100,
                name="naive coverage (%)",
                marker_color="#aaa",
            ),
            row=4,
            col=1,
        )
        figure.add_hline(
            y=float(monthly["level"].iloc[0]) * 100, line={"color": "#222", "dash": "dash"}, row=4, col=1
        )
        figure.add_trace(
            go.Bar(
                x=monthly["month"],
                y=monthly["interval_skill"] * 100,
                name="interval skill (%)",
                marker_color=[_colour(int(version)) for version in monthly["version"]],
            ),
            row=5,
            col=1,
        )
    figure.update_layout(
        title="<br>".join(title_lines(served, summary)), height=1100, barmode="group", template="plotly_white"
    )
    figure.write_html(path, include_plotlyjs=True, full_html=True)


def png_figure(served: pd.DataFrame, monthly: pd.DataFrame, summary: dict[str, Any]) -> Figure:
    """The static report: price and forecasts with a labelled marker per takeover, monthly scores.

    The legend sits at the lower right, clear of the takeover labels along the top edge (at the upper
    left it hid the first champion's).
    """
    figure = Figure(figsize=(14, 13), dpi=100, layout="constrained")
    price, scores, skills, coverage, interval_skills = figure.subplots(5, 1, height_ratios=[2.6, 1, 1, 1, 1])
    figure.suptitle("\n".join(title_lines(served, summary)))
    price.plot(
        served["target_time"], served["actual_close"], color="#222", linewidth=0.7, label="actual close"
    )
    for version in sorted(served["model_version"].astype(int).unique()):
        rows = served.loc[served["model_version"] == version]
        if "lower_close" in rows and rows["lower_close"].notna().all():
            price.fill_between(
                rows["target_time"], rows["lower_close"], rows["upper_close"], color=_colour(version),
                alpha=0.25, linewidth=0,
            )  # fmt: skip
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
    _interval_panels(monthly, coverage, interval_skills)
    return figure


def _interval_panels(monthly: pd.DataFrame, coverage: Any, interval_skills: Any) -> None:
    """Monthly coverage (served and naive, against the level) and interval skill, one bar per month."""
    if monthly.empty or monthly["coverage"].isna().all():
        coverage.set_visible(False)
        interval_skills.set_visible(False)
        return
    positions = list(range(len(monthly)))
    level = float(monthly["level"].iloc[0]) * 100
    coverage.bar([p - 0.2 for p in positions], monthly["coverage"] * 100, width=0.4, label="served coverage")
    coverage.bar(
        [p + 0.2 for p in positions],
        monthly["naive_coverage"] * 100,
        width=0.4,
        label="naive coverage",
        color="#aaa",
    )
    coverage.axhline(level, color="#222", linestyle="--", linewidth=0.8, label=f"level {level:.0f} %")
    coverage.set_ylim(max(0.0, level - 25), min(100.0, level + 20))
    coverage.set_xticks(positions, monthly["month"], fontsize=8)
    coverage.set_ylabel("coverage (%)")
    coverage.legend(fontsize=8, ncols=3, loc="lower right")
    coverage.grid(alpha=0.3, axis="y")
    versions = monthly["version"].astype(int).tolist()
    interval_skills.bar(positions, monthly["interval_skill"] * 100, color=[_colour(v) for v in versions])
    interval_skills.set_xticks(positions, monthly["month"], fontsize=8)
    interval_skills.axhline(0, color="#222", linewidth=0.8)
    interval_skills.set_ylabel("interval skill (%)")
    interval_skills.grid(alpha=0.3, axis="y")
