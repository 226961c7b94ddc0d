"""TEST ONLY: register a deliberately poor version in the compose stack's registry; print its number.

The compose test runs it in a one-off container of the trainer (`docker-compose run`, this folder
mounted), with model settings that overfit every training hour (learning rate 1, leaves of one row,
no regularisation) and a short old window. Out of sample such a model forecasts noise about as large
as the hour's move: on 2024 its MAE is 1.31 times naive's (never below naive's over any 168 hours),
so it passes the service's vetting (at most 2 times naive's) and then loses to naive live. Trained
through a month the contest has already closed, it is never taken for a challenger the trainer trains.
"""

from __future__ import annotations

import sys

from btcmlops.bootstrap import open_price_store, open_registry
from btcmlops.calendar import Month
from btcmlops.contest.training import train_through
from btcmlops.features import build_samples
from btcmlops.settings import Settings


def main(through: str) -> None:
    settings = Settings()
    month = Month.parse(through)
    with open_price_store(settings, migrate=False, must_exist=True) as store:
        candles = store.read_candles(end=month.last_hour.to_pydatetime())
    samples = build_samples(candles, settings.model.feature_set)
    forecaster, window, metrics = train_through(samples, candles, month, settings.model)
    info = open_registry(settings).register(
        forecaster,
        window,
        params={**settings.model.model_dump(), "role": "deliberately poor (compose test)"},
        metrics=metrics,
        example_features=samples.head(5),
        run_name=f"deliberately poor, trained through {month}",
    )
    print(info.version)


if __name__ == "__main__":
    main(sys.argv[1])
