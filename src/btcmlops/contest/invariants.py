"""What must hold between the registry, the journal and the decisions, whatever happened before.

``registry_problems`` is one pure function over what the stores hold; the trainer runs it after every
change and ``btcmlops registry check`` prints it. An empty list means the registry is sound.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from btcmlops.calendar import Month
from btcmlops.registry import CHALLENGER, CHAMPION, ContestRun, ModelVersionInfo, VersionStatus
from btcmlops.store import AuditEntry, DecisionRow, JournalEntry

_COMPARED = (
    ("champion_mae", "champion_mae"),
    ("challenger_mae", "challenger_mae"),
    ("naive_mae", "naive_mae"),
)


def registry_problems(
    versions: Sequence[ModelVersionInfo],
    journal: Sequence[JournalEntry],
    audit: Sequence[AuditEntry],
    decisions: Sequence[DecisionRow],
    contest_runs: Sequence[ContestRun],
) -> list[str]:
    """Every broken invariant, in words an operator can act on (empty: all hold)."""
    problems: list[str] = []
    pending = [entry for entry in journal if entry.state != "done"]
    for entry in pending:
        problems.append(
            f"change #{entry.id} ({entry.kind}{' ' + entry.month if entry.month else ''}) is pending: "
            "the trainer (a month close, or any change) or an inference service (a change by hand) rolls it "
            "forward once it is BTCMLOPS_STORE__CHANGE_GRACE_S old; `btcmlops registry reconcile` does now"
        )
    production = [v for v in versions if v.status == VersionStatus.PRODUCTION]
    staging = [v for v in versions if v.status == VersionStatus.STAGING]
    champion = next((v for v in versions if CHAMPION in v.aliases), None)
    challenger = next((v for v in versions if CHALLENGER in v.aliases), None)
    if versions and len(production) != 1:
        problems.append(
            f"{len(production)} versions have status=production "
            f"({', '.join(f'v{v.version}' for v in production) or 'none'}); exactly one must"
        )
    if champion is None and versions:
        problems.append("no version holds the alias 'champion'")
    if champion is not None and champion.status != VersionStatus.PRODUCTION:
        problems.append(f"champion v{champion.version} has status={champion.status}, not production")
    if len(staging) > 1:
        problems.append(
            f"{len(staging)} versions are staging ({', '.join(f'v{v.version}' for v in staging)})"
        )
    for version in staging:
        if CHALLENGER not in version.aliases:
            problems.append(f"v{version.version} is staging but does not hold 'challenger'")
    if challenger is not None and challenger.status != VersionStatus.STAGING:
        problems.append(f"challenger v{challenger.version} has status={challenger.status}, not staging")
    for version in versions:
        if version.status is None and not pending:
            problems.append(f"v{version.version} has no status tag (a half-registered version)")
        elif version.status not in (None, *VersionStatus):
            problems.append(f"v{version.version} has an unknown status {version.status!r}")
    if champion is not None and audit and audit[-1].to_version != champion.version:
        problems.append(
            f"'champion' is on v{champion.version} but the audit's last change is to "
            f"v{audit[-1].to_version}: moved outside btcmlops and not yet recorded"
        )

    closes = sorted((e for e in journal if e.kind == "month_close" and e.state == "done"), key=_month_key)
    months = [Month.parse(e.month or "") for e in closes]
    for before, after in itertools.pairwise(months):
        if after != before.next():
            problems.append(
                f"months skipped between {before} and {after}: no close recorded for {before.next()}"
            )
    by_start = {row.eval_start.strftime("%Y-%m"): row for row in decisions}
    runs_by_month: dict[str, list[ContestRun]] = {}
    for run in contest_runs:
        runs_by_month.setdefault(run.month, []).append(run)
    contested = {e.month or "" for e in closes if e.plan.get("decision") is not None}
    for month in sorted(contested):
        row = by_start.get(month)
        runs = runs_by_month.get(month, [])
        if row is None:
            problems.append(f"{month}: contest closed but no decision row in the store")
        if len(runs) != 1:
            problems.append(f"{month}: {len(runs)} MLflow contest runs, expected exactly one")
        if row is not None and len(runs) == 1:
            for column, metric in _COMPARED:
                stored, logged = getattr(row, column), runs[0].metrics.get(metric)
                if logged is None or not math.isclose(stored, logged, rel_tol=1e-9):
                    problems.append(f"{month}: {column} is {stored} in the store but {logged} in MLflow")
    for month in sorted(set(by_start) - contested):
        problems.append(f"{month}: a decision row with no closed contest in the journal")
    for month in sorted(set(runs_by_month) - contested):
        problems.append(f"{month}: an MLflow contest run with no closed contest in the journal")
    return problems


def _month_key(entry: JournalEntry) -> str:
    return entry.month or ""
