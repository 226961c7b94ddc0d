"""``TrainingWindow``: exactly what a contestant was fitted on, the contest's proof of fairness.

The contest sets it (a model is never scored on an hour at or before ``train_end``), the registry
stores it as version tags under the same names, and the API and the replay summary show it under
those names too. So it lives below all of them, a plain value that imports nothing of MLflow: the
registry reading it does not import the contest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TrainingWindow:
    """First and last target hour a model was fitted on, how many rows, and a hash of the candles."""

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    train_rows: int
    data_hash: str
    trained_through: str
    """The month (YYYY-MM) the window ends with."""

    def as_tags(self) -> dict[str, str]:
        """The window as string tags, one per field, under the field's own name."""
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "train_rows": str(self.train_rows),
            "data_hash": self.data_hash,
            "trained_through": self.trained_through,
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> TrainingWindow:
        return cls(
            train_start=pd.Timestamp(tags["train_start"]),
            train_end=pd.Timestamp(tags["train_end"]),
            train_rows=int(tags["train_rows"]),
            data_hash=tags["data_hash"],
            trained_through=tags["trained_through"],
        )
