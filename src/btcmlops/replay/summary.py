"""What a replay reports: every served forecast, every training, every decision, every score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from btcmlops.contest import Scores, score
from btcmlops.contest.contest import PREDICTION_COLUMNS, MonthOutcome
from btcmlops.contest.scoring import skill
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
    return {"served": served.as_dict(), "naive": naive.as_dict(), "skill": skill(served.mae, naive.mae)}


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
        monthly.append(
            {
                "month": str(outcome.month),
                "served_version": outcome.served_version,
                "served": outcome.served.as_dict(),
                "naive": outcome.naive.as_dict(),
                "skill": skill(outcome.served.mae, outcome.naive.mae),
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
        "overall": _pair(served) if not served.empty else None,
        "monthly": monthly,
    }
