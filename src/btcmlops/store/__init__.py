"""The price store: candles, contest decisions and served forecasts in SQL (SQLite or MySQL/MariaDB).

The schema belongs to Alembic migrations shipped inside the package; ``PriceStore.migrate()`` brings
any database to the newest one, so a fresh SQLite file and a production MySQL are the same schema.
"""

from btcmlops.store.journal import (
    AuditEntry,
    ChangeInProgressError,
    JournalEntry,
    Lease,
    RegistryJournal,
    this_process,
)
from btcmlops.store.price_store import (
    DecisionConflictError,
    DecisionRow,
    LoggedPrediction,
    PriceStore,
    UpsertReport,
    counts_as_live,
)

__all__ = [
    "AuditEntry",
    "ChangeInProgressError",
    "DecisionConflictError",
    "DecisionRow",
    "JournalEntry",
    "Lease",
    "LoggedPrediction",
    "PriceStore",
    "RegistryJournal",
    "UpsertReport",
    "counts_as_live",
    "this_process",
]
