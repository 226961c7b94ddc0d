"""The price store: candles and contest decisions in SQL (SQLite by default, MySQL/MariaDB by URL).

The schema belongs to Alembic migrations shipped inside the package; ``PriceStore.migrate()`` brings
any database to the newest one, so a fresh SQLite file and a production MySQL are the same schema.
"""

from btcmlops.store.price_store import DecisionRow, LoggedPrediction, PriceStore, UpsertReport

__all__ = ["DecisionRow", "LoggedPrediction", "PriceStore", "UpsertReport"]
