"""What a replay reports: every served forecast, every training, every decision, every score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from btcmlops.contest import Scores, score
from btcmlops.contest.records import PREDICTION_COLUMNS, MonthOutcome
from btcmlops.contest.scoring import IntervalScores, hourly_interval_scores, score_interval, skill
from btcmlops.contest.significance import diebold_mariano
from btcmlops.settings import Settings


def predictions_frame(outcomes: Sequence[MonthOutcome]) -> pd.DataFrame:
    """Every forecast of the replay, served (champion) and shadow (challenger), in time order."""
    frames = [outcome.predictions for outcome in outcomes if outcome.predictions is not None]
    if not frames:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["target_time", "role"], kind="stable", ignore_index=True)


def _scores_of(rows: pd.DataFrame, column: str) -> Scores:
    return score(rows["actual_close"], rows[column], rows["naive_close"])


def _pair(rows: pd.DataFrame) -> dict[str, Any]:
    served = _scores_of(rows, "predicted_close")
    naive = _scores_of(rows, "naive_close")
    return {
        "served": served.as_dict(),
        "naive": naive.as_dict(),
        "skill": skill(served.mae, naive.mae),
        **_interval_pair(rows),
    }


def _interval_pair(rows: pd.DataFrame) -> dict[str, Any]:
    """The served interval and naive's on ``rows``, interval skill, and whether the served one's hourly
    interval scores beat naive's (one-sided Diebold-Mariano p-value); empty where an hour has none."""
    levels = rows["interval_level"]
    if rows.empty or levels.isna().any() or levels.nunique() != 1 or rows["naive_lower"].isna().any():
        return {}
    level = float(levels.iloc[0])
    actual = rows["actual_close"]
    served = score_interval(actual, rows["lower_close"], rows["upper_close"], level)
    naive = score_interval(actual, rows["naive_lower"], rows["naive_upper"], level)
    test = diebold_mariano(
        hourly_interval_scores(actual, rows["naive_lower"], rows["naive_upper"], level),
        hourly_interval_scores(actual, rows["lower_close"], rows["upper_close"], level),
    )
    return {
        "served_interval": served.as_dict(),
        "naive_interval": naive.as_dict(),
        **interval_skill(served, naive),
        "interval_p_value": test.p_value,
    }


def interval_skill(served: IntervalScores, naive: IntervalScores) -> dict[str, float]:
    """Interval skill against naive (1 - interval score / naive's) and the coverage's miss of the level."""
    return {
        "interval_skill": skill(served.interval_score, naive.interval_score),
        "coverage_error": served.coverage - served.level,
    }


def _overall(served: pd.DataFrame, monthly: list[dict[str, Any]]) -> dict[str, Any]:
    """Every served hour's scores, and the month whose coverage missed the level most."""
    overall = _pair(served)
    coverages = [month["served_interval"]["coverage"] for month in monthly if "served_interval" in month]
    if "served_interval" in overall and coverages:
        level = overall["served_interval"]["level"]
        overall["worst_month_coverage"] = max(coverages, key=lambda coverage: abs(coverage - level))
    return overall


def _tests(contest: Any) -> dict[str, Any]:
    """Both Diebold-Mariano p-values of a contest as fields (None: not run)."""
    return {
        f"{'dm' if metric == 'mae' else 'dm_interval'}_p_value": (
            contest.tests[metric].p_value if metric in contest.tests else None
        )
        for metric in ("mae", "interval_score")
    }


def build_summary(
    outcomes: Sequence[MonthOutcome],
    *,
    data: dict[str, Any],
    settings: Settings,
    mlflow_info: dict[str, Any],
) -> dict[str, Any]:
    """Build ``summary.json``'s content (timings are added by the caller once everything is done)."""
    served = predictions_frame(outcomes)
    served = served.loc[served["role"] == "champion"]
    trainings = [
        {
            "version": record.version,
            "role": record.role,
            "run_id": record.run_id,
            "trained_through": record.trained_through,
            "train_start": record.train_start.isoformat(),
            "train_end": record.train_end.isoformat(),
            "train_rows": record.train_rows,
            "data_hash": record.data_hash,
        }
        for outcome in outcomes
        for record in outcome.trained
    ]
    decisions = [
        {
            "month": contest.month,
            "eval_start": contest.eval_start.isoformat(),
            "eval_end": contest.eval_end.isoformat(),
            "champion_version": contest.champion_version,
            "challenger_version": contest.challenger_version,
            "champion_mae": contest.champion.mae,
            "challenger_mae": contest.challenger.mae,
            "naive_mae": contest.naive.mae,
            "champion": contest.champion.as_dict(),
            "challenger": contest.challenger.as_dict(),
            "naive": contest.naive.as_dict(),
            "intervals": contest.interval_scores(),
            "drift_psi": contest.drift,
            **_tests(contest),
            "metric": settings.contest.metric,
            "promoted": contest.decision.promote,
            "reason": contest.decision.reason,
        }
        for outcome in outcomes
        if (contest := outcome.contest) is not None
    ]
    monthly = []
    for outcome in outcomes:
        if outcome.served is None or outcome.naive is None:
            continue
        rows = outcome.predictions
        monthly.append(
            {
                "month": str(outcome.month),
                "served_version": outcome.served_version,
                "served": outcome.served.as_dict(),
                "naive": outcome.naive.as_dict(),
                "skill": skill(outcome.served.mae, outcome.naive.mae),
                **(_interval_pair(rows.loc[rows["role"] == "champion"]) if rows is not None else {}),
            }
        )
    champion_history: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.champion_version is not None and (
            not champion_history or champion_history[-1]["version"] != outcome.champion_version
        ):
            champion_history.append(
                {"version": outcome.champion_version, "from_month": str(outcome.month.next())}
            )
    final = outcomes[-1].champion_version if outcomes else None
    return {
        "data": data,
        "settings": {"model": settings.model.model_dump(), "contest": settings.contest.model_dump()},
        "mlflow": mlflow_info,
        "trainings": trainings,
        "decisions": decisions,
        "promotions": sum(1 for decision in decisions if decision["promoted"]),
        "champion_history": champion_history,
        "final_champion": final,
        "overall": _overall(served, monthly) if not served.empty else None,
        "monthly": monthly,
    }
