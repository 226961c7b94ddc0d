"""``HourlyClient``: the product's client, asking for the forecast from every hour as soon as it may.

"Given this hour, what is the close an hour later?" is asked every hour on the hour: this process asks
the inference service for the forecast from each hour, in order, as soon as ``GET /clock`` says the
hour may be asked (it has closed, and the clock is not holding it for its month's contest). An hour
the service cannot answer yet (its candle not written yet: 404; the clock holding: 425; no champion
yet: 503) is asked again on the next round, never skipped, so the live log has a forecast for every
hour, made live, and the dashboard only draws it. A paced clock waits for these forecasts (see
``btcmlops.clock``), so the client sets the pace and is never left behind.

With ``wait_s``, the client does not poll for the next hour: it waits on the service
(``GET /clock?after=<the last hour asked>&wait_s=``), which answers as soon as the next hour may be asked
and its candle is in memory (the feed tells the service of each candle). Each hour's forecast is then
asked a few milliseconds after the hour closed, whatever the clock's speed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from btcmlops.retry import Backoff, keep_trying

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
RETRY_LATER = {404: "candle not written yet", 425: "too early", 503: "no champion or store"}
"""Answers that mean "not yet", with what each waits for: the hour is asked again next round."""
RESUME_LOOKBACK = timedelta(days=31)
"""How far back a restarted client looks for the newest forecast it had asked for."""


class HourlyClient:
    """Asks ``/predict`` for every hour, in order, from the champion's first unseen hour on."""

    def __init__(
        self, http: httpx.Client, *, first_hour: datetime | None = None, wait_s: float = 0.0
    ) -> None:
        """``wait_s``: the longest wait on the service for the next hour (0: look, do not wait); ``http``'s
        read timeout must be longer."""
        self._http = http
        self._wait_s = wait_s
        self.next_hour = first_hour
        self.answered = 0
        self.put_off: Counter[int] = Counter()

    def step(self) -> int:
        """Ask for every hour that may be asked now; return how many were answered."""
        if self._wait_s > 0 and self.next_hour is not None:  # answered once the next hour may be asked
            clock = self._http.get(
                "/clock",
                params={"after": (self.next_hour - HOUR).isoformat(), "wait_s": f"{self._wait_s:g}"},
            )
        else:
            clock = self._http.get("/clock")
        if clock.status_code != 200:
            return 0
        newest = datetime.fromisoformat(clock.json()["last_forecastable_hour"])
        due = clock.json().get("forecast_due")
        if due is not None and self.next_hour is not None and datetime.fromisoformat(due) < self.next_hour:
            # The paced clock waits for an hour this client thought done (an answer whose record was
            # lost, a clock reset back in time): ask it again, and every hour after it.
            logger.info("the clock waits for the forecast from %s: asking from there", due)
            self.next_hour = datetime.fromisoformat(due)
        if self.next_hour is None:
            self.next_hour = self._first_hour(newest)
            if self.next_hour is None:
                return 0
            logger.info("asking for every hour from %s on", f"{self.next_hour:%Y-%m-%d %H:00}")
        answered = 0
        while self.next_hour <= newest:
            response = self._http.post("/predict", json={"timestamp": self.next_hour.isoformat()})
            if response.status_code != 200:
                self.put_off[response.status_code] += 1
                if response.status_code not in RETRY_LATER:
                    logger.warning(
                        "the forecast from %s was refused (%d: %s); asking again",
                        self.next_hour,
                        response.status_code,
                        response.text[:200],
                    )
                break
            answered += 1
            self.next_hour += HOUR
        self.answered += answered
        return answered

    def progress(self) -> str:
        """One line on where the client stands, saying what it waits for (a log line every few seconds)."""
        if self.next_hour is None:
            return "waiting for a champion to serve: no hour asked yet"
        line = f"{self.answered:,} hour(s) answered; next: {self.next_hour:%Y-%m-%d %H:00}Z"
        if self.put_off:
            why = ", ".join(
                f"{count:,} x {status} ({RETRY_LATER.get(status, 'refused')})"
                for status, count in sorted(self.put_off.items())
            )
            line += f"; asked again later: {why}"
        return line

    def _first_hour(self, newest: datetime) -> datetime | None:
        """Where to start: after the newest forecast already logged, or the champion's first unseen hour.

        Hour T forecasts T + 1h, so the first hour whose forecast is out of sample is the champion's
        last training target itself. None while no champion serves.
        """
        model = self._http.get("/model").json()
        window = model.get("training_window")
        if model.get("version") is None or window is None:
            return None
        first = datetime.fromisoformat(window["train_end"])
        logged = self._http.get(
            "/predictions",
            params={"start": (newest - RESUME_LOOKBACK).isoformat(), "end": (newest + 2 * HOUR).isoformat()},
        )
        if logged.status_code == 200 and logged.json():
            first = max(first, max(datetime.fromisoformat(row["timestamp"]) for row in logged.json()) + HOUR)
        return first

    def run(
        self,
        stop: threading.Event,
        *,
        interval_s: float = 0.05,
        log_every_s: float = 10.0,
        on_round: Callable[[], None] | None = None,
    ) -> None:
        """Step until ``stop`` is set, waiting ``interval_s`` after a round with nothing to ask.

        A failed round (the API down) is retried a second later.
        """
        last_log = time.monotonic()

        def round_() -> float:
            # a round that answered looks again at once: a paced clock waits on it
            return 0.0 if self.step() else interval_s

        def heartbeat() -> None:
            nonlocal last_log
            if time.monotonic() - last_log >= log_every_s:
                logger.info("%s", self.progress())
                last_log = time.monotonic()
            if on_round is not None:
                on_round()

        keep_trying(
            round_,
            stop,
            Backoff(1.0, 1.0),
            "asking the inference service",
            retry_on=(httpx.HTTPError, ValueError, KeyError),
            warn=lambda error, _: logger.warning(
                "the inference service did not answer (%s); retrying", error
            ),
            on_round=heartbeat,
            log=logger,
        )
