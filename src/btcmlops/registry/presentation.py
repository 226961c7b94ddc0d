"""What a user reads in the MLflow UI: run names, descriptions and the tags that link versions to contests.

Pure text, no MLflow import: the registry writes these, the tests read them.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd


def contest_run_name(
    month: str,
    champion_version: int,
    challenger_version: int,
    champion_mae: float,
    challenger_mae: float,
    naive_mae: float,
    promoted: bool,
) -> str:
    """A contest run's name: the verdict and the three MAEs, visible in the runs table as it is."""
    verdict = f"v{challenger_version} promoted" if promoted else f"v{challenger_version} archived"
    return (
        f"contest {month}: {verdict} (MAE v{challenger_version} {challenger_mae:.2f} vs "
        f"v{champion_version} {champion_mae:.2f}, naive {naive_mae:.2f})"
    )


def version_description(
    trained_through: str,
    role: str,
    train_start: pd.Timestamp | datetime,
    train_end: pd.Timestamp | datetime,
    train_rows: int,
) -> str:
    """A version's description: what it was trained on and what it entered as."""
    return (
        f"Trained through {trained_through} as {role}: target hours {train_start:%Y-%m-%d %H:00} to "
        f"{train_end:%Y-%m-%d %H:00} UTC ({train_rows:,} hours)."
    )


def contest_version_tags(
    month: str, run_id: str, promoted: bool, champion: int, challenger: int
) -> dict[int, dict[str, str]]:
    """Tags that link both contestants' versions to the contest that decided their fate."""
    challenger_tags = {"contest.month": month, "contest.run_id": run_id}
    if promoted:
        return {
            challenger: {**challenger_tags, "promoted_in": month},
            champion: {"archived_in": month, "archived_by_run_id": run_id},
        }
    return {challenger: {**challenger_tags, "archived_in": month}}
