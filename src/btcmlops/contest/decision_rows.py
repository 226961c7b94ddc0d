"""How a contest's record is written down: the decision row (and its JSON in the journal's plan) and
the contest run's MLflow metrics. One place, so the row the store keeps, the plan a crashed close is
finished from, and what MLflow shows cannot disagree."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from btcmlops.contest.records import ContestRecord
from btcmlops.store import DecisionRow


def contest_metrics(record: ContestRecord) -> dict[str, float]:
    """The contest run's MLflow metrics: every score of every contestant, both tests, the verdict."""
    metrics: dict[str, float] = {}
    for name, scores, interval in (
        ("champion", record.champion, record.champion_interval),
        ("challenger", record.challenger, record.challenger_interval),
        ("naive", record.naive, record.naive_interval),
    ):
        for key, value in scores.as_dict().items():
            if key != "n":
                metrics[f"{name}_{key}"] = float(value)
        for key, value in (interval.as_dict() if interval else {}).items():
            if key not in ("n", "level"):
                metrics[f"{name}_{key}"] = float(value)
    for metric, test in record.tests.items():
        prefix = "dm" if metric == "mae" else f"dm_{metric}"
        if math.isfinite(test.statistic):  # +-inf when the loss differential is constant: p says it all
            metrics[f"{prefix}_statistic"] = test.statistic
        metrics[f"{prefix}_p_value"] = test.p_value
    if record.champion_interval is not None:
        metrics["interval_level"] = record.champion_interval.level
    for feature, psi in record.drift.items():
        metrics[f"drift_psi_{feature}"] = psi
    metrics["hours"] = float(record.champion.n)
    metrics["promoted"] = float(record.decision.promote)
    return metrics


SIGNIFICANCE_KEYS = {"mae": "significance", "interval_score": "interval_significance"}
"""Where a decision row's metrics keep each metric's Diebold-Mariano test (``significance``: MAE's,
as before intervals)."""


def decision_row(model_name: str, record: ContestRecord, now: datetime, metric: str) -> DecisionRow:
    return DecisionRow(
        registered_model=model_name,
        eval_start=record.eval_start.to_pydatetime(),
        eval_end=record.eval_end.to_pydatetime(),
        champion_version=record.champion_version,
        challenger_version=record.challenger_version,
        champion_mae=record.champion.mae,
        challenger_mae=record.challenger.mae,
        naive_mae=record.naive.mae,
        metrics={
            "champion": record.champion.as_dict(),
            "challenger": record.challenger.as_dict(),
            "naive": record.naive.as_dict(),
            "tenure": {str(v): n for v, n in record.tenure.items()},
            "daily_mae": record.daily,
            "intervals": record.interval_scores(),
            **{
                SIGNIFICANCE_KEYS[metric]: {
                    # JSON holds no infinity: a constant loss differential's statistic is kept as null
                    "statistic": t.statistic if math.isfinite(t.statistic) else None,
                    "p_value": t.p_value,
                    "lags": t.lags,
                }
                for metric, t in record.tests.items()
            },
            "metric": metric,
            "drift_psi": record.drift,
        },
        promoted=record.decision.promote,
        reason=record.decision.reason,
        decided_at=now,
    )


def decision_json(row: DecisionRow) -> dict[str, Any]:
    return {
        **{name: getattr(row, name) for name in DecisionRow.__dataclass_fields__},
        "eval_start": row.eval_start.isoformat(),
        "eval_end": row.eval_end.isoformat(),
        "decided_at": row.decided_at.isoformat(),
        "champion_version": int(row.champion_version),
        "challenger_version": int(row.challenger_version),
    }


def decision_from_json(data: dict[str, Any]) -> DecisionRow:
    return DecisionRow(
        **{
            **data,
            "eval_start": datetime.fromisoformat(data["eval_start"]),
            "eval_end": datetime.fromisoformat(data["eval_end"]),
            "decided_at": datetime.fromisoformat(data["decided_at"]),
        }
    )
