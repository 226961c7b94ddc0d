"""What a user could look at after a run, as one comparable value: the crash tests compare a run
that was cut off and restarted with one that was not, unit (exceptions) and integration (SIGKILL) alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from btcmlops.calendar import Month
from btcmlops.contest.contest import Contest
from btcmlops.store import PriceStore

MAES = ("champion_mae", "challenger_mae", "naive_mae")


def registry_state(contest: Contest, store: PriceStore, served_months: Sequence[Month]) -> dict[str, Any]:
    """Versions, decisions, audit, contest runs, closed months, invariants, and what served each hour."""
    registry = contest._registry
    name = contest.model_name
    return {
        "versions": [
            (v.version, v.status, v.aliases, v.window.trained_through, v.window.data_hash)
            for v in registry.versions()
        ],
        "decisions": [
            (
                r.eval_start,
                r.eval_end,
                r.champion_version,
                r.challenger_version,
                r.promoted,
                *(round(getattr(r, mae), 9) for mae in MAES),
                r.reason,
            )
            for r in store.list_decisions(name)
        ],
        "audit": [(a.from_version, a.to_version, a.sim_time, a.source) for a in store.journal.audit(name)],
        "runs": sorted(
            (
                r.month,
                *(round(r.metrics[m], 9) if m in r.metrics else None for m in MAES),
                r.tags.get("decision"),
            )
            for r in registry.contest_runs()
        ),
        "months": [e.month for e in store.journal.closed_months(name)],
        "problems": contest.changes.problems(),
        "served": pd.concat(contest.served_forecasts(month) for month in served_months).to_dict("list"),
    }
