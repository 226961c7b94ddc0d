"""The sweep's chart: one bar per combination in four panels, as an interactive page and a PNG.

Served MAE against naive's, skill (1 - MAE / naive MAE, where the small differences that matter are
visible), interval score against naive's, and promotions with the significant ones among them
(``sweep.SIGNIFICANCE_LEVEL``). The rows are ``summary.csv``'s, in its order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

PANELS = (
    "served MAE vs naive (USDT)",
    "skill vs naive (%)",
    "interval score vs naive (USDT)",
    "promotions (significant: DM p < 0.05)",
)
NAIVE_COLOUR, SERVED_COLOUR, SIGNIFICANT_COLOUR = "#aaaaaa", "#1f77b4", "#2ca02c"


def write_sweep_report(table: pd.DataFrame, html_path: Path, png_path: Path) -> None:
    """Write the interactive chart of ``table`` to ``html_path`` and a static one to ``png_path``."""
    _write_html(table, html_path)
    png_figure(table).savefig(png_path)


def _write_html(table: pd.DataFrame, path: Path) -> None:
    names = table["name"].tolist()
    figure = make_subplots(rows=4, cols=1, subplot_titles=PANELS, vertical_spacing=0.07)
    pairs = (
        (1, "served_mae", "naive_mae", "served MAE", "naive MAE"),
        (3, "interval_score", "naive_interval_score", "interval score", "naive interval score"),
    )
    for row, served, naive, served_label, naive_label in pairs:
        figure.add_trace(
            go.Bar(x=names, y=table[served], name=served_label, marker_color=SERVED_COLOUR), row, 1
        )
        figure.add_trace(go.Bar(x=names, y=table[naive], name=naive_label, marker_color=NAIVE_COLOUR), row, 1)
    figure.add_trace(
        go.Bar(x=names, y=table["skill"] * 100, name="skill (%)", marker_color=SERVED_COLOUR), 2, 1
    )
    figure.add_trace(
        go.Bar(x=names, y=table["promotions"], name="promotions", marker_color=SERVED_COLOUR), 4, 1
    )
    figure.add_trace(
        go.Bar(
            x=names,
            y=table["significant_promotions"],
            name="significant promotions",
            marker_color=SIGNIFICANT_COLOUR,
        ),
        4,
        1,
    )
    figure.update_layout(title="btcmlops sweep", height=1100, barmode="group", template="plotly_white")
    figure.write_html(path, include_plotlyjs=True, full_html=True)


def png_figure(table: pd.DataFrame) -> Figure:
    """The static chart: the four panels, the combinations' names along each one's x axis."""
    figure = Figure(figsize=(max(8.0, 1.1 * len(table) + 4), 12), dpi=100, layout="constrained")
    mae, skills, interval, promotions = figure.subplots(4, 1)
    figure.suptitle("btcmlops sweep")
    positions = list(range(len(table)))
    left, right = [p - 0.2 for p in positions], [p + 0.2 for p in positions]
    for axis, served, naive in (
        (mae, "served_mae", "naive_mae"),
        (interval, "interval_score", "naive_interval_score"),
    ):
        axis.bar(left, table[served], width=0.4, color=SERVED_COLOUR, label="served")
        axis.bar(right, table[naive], width=0.4, color=NAIVE_COLOUR, label="naive")
        _zoom(axis, pd.concat([table[served], table[naive]]), margin=1.0)
        axis.legend(fontsize=8)
    skill = table["skill"] * 100
    skills.bar(positions, skill, color=SERVED_COLOUR)
    _zoom(skills, skill, margin=0.05)
    for position, value in zip(positions, skill, strict=True):
        skills.annotate(
            f"{value:+.2f}",
            (position, value),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    promotions.bar(left, table["promotions"], width=0.4, color=SERVED_COLOUR, label="promotions")
    promotions.bar(
        right, table["significant_promotions"], width=0.4, color=SIGNIFICANT_COLOUR, label="significant"
    )
    promotions.legend(fontsize=8)
    for axis, title in zip((mae, skills, interval, promotions), PANELS, strict=True):
        axis.set_title(title, fontsize=10)
        axis.set_xticks(positions, table["name"], fontsize=8, rotation=20, ha="right")
        axis.grid(alpha=0.3, axis="y")
    return figure


def _zoom(axis: Any, values: pd.Series, *, margin: float) -> None:
    """Show the differences between ``values``, not their distance from 0: they differ by tenths of a %."""
    low, high = float(values.min()), float(values.max())
    axis.set_ylim(low - 0.5 * (high - low) - margin, high + 0.3 * (high - low) + margin)
