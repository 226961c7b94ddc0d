"""The live stack end to end: feed, trainer and inference service as separate ``btcmlops`` processes
on a MariaDB price store and a real mlflow server (MariaDB + moto's S3 server), with the shared sim
clock at 48 sim hours per second from 2023-12-31 to the end of April 2024, holding at each month's end
for the contest, and a client that asks for the forecast from every hour as soon as it may.

The candles are the shipped ones up to the end of April 2024, and the settings are the defaults
(margin 0). The replay decides the same contests (this test checks it, against the run's replay of the
shipped two years: no decision or forecast of a replay uses a later hour, so the months after April
change none of them): February keeps v1, March promotes v3 and April promotes v4, so the champion
changes twice. The run is deterministic (LightGBM with a fixed seed), so these promotions are certain,
and the live log must hold, hour by hour, the very forecasts the replay served: same version, same
value, same interval.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from btcmlops.clock import start_clock
from btcmlops.data import read_candle_file
from btcmlops.registry import ModelRegistry
from btcmlops.replay import ReplayResult
from btcmlops.settings import EMBEDDED_DATA_FILE
from btcmlops.store import PriceStore
from factories import write_project_csv
from services import CliProcess, free_port, wait_until

# Slow: the live stack through months of contests at 48 sim h/s, the longest test (minutes).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEED = 48.0
"""Sim hours per real second (`make stack`'s speed): a month in about 15 s, plus each hold."""
CLOCK_START = datetime(2023, 12, 31, tzinfo=UTC)
LAST_HOUR = "2024-04-30 23:00"
SHADOW_MONTHS = ["2024-02", "2024-03", "2024-04"]
CONTROL_KEY = uuid.uuid4().hex
RESET_TO = datetime(2024, 2, 20, tzinfo=UTC)
"""A day before the end of the last champion's training (v4, trained through March). The reset clock holds
at the end of February and paces from there, so the client asks again from 2024-02-29 23:00: March's hours,
which v4 was trained on."""
ASKED_AGAIN_FROM = datetime(2024, 3, 1, tzinfo=UTC)
"""The first target hour the client asks again for after the reset (the paced clock starts at the hold)."""
RESET_HOURS = 12
FORECAST = ["predicted_close", "interval_level", "lower_close", "upper_close"]
"""What each hour's forecast is: the point and the interval, served live as the replay served them."""
RUN_BOUND_S = 420.0
"""Sim time to reach May plus the trainer's last round, on a busy two-core machine, with room."""


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    candles = read_candle_file(EMBEDDED_DATA_FILE).candles
    path = tmp_path_factory.mktemp("live") / "candles-through-april-2024.csv"
    write_project_csv(candles.loc[candles["open_time"] <= pd.Timestamp(LAST_HOUR, tz="UTC")], str(path))
    return path


@dataclass(frozen=True)
class Simulated:
    decisions: dict[str, dict[str, object]]
    """By shadow month."""
    served: pd.DataFrame
    """The champion's forecasts, one row per hour: timestamp, model_version, predicted_close and the
    interval (interval_level, lower_close, upper_close)."""


@pytest.fixture
def simulated(shipped_replay: ReplayResult) -> Simulated:
    """What the replay decided and served for these months, with the same settings (the defaults): the
    run's replay of the shipped two years (``tests/conftest.py``), cut at ``LAST_HOUR``.

    The replay decides each month and forecasts each hour from the hours before it, so the months after
    April cannot change what it did through April: a replay of the file cut there is the same, and the
    live stack, which has only the cut file, must match it."""
    summary = json.loads(shipped_replay.summary_path.read_text())
    predictions = pd.read_csv(shipped_replay.predictions_path)
    served = predictions.loc[
        (predictions["role"] == "champion")
        & (pd.to_datetime(predictions["target_time"], utc=True) <= pd.Timestamp(LAST_HOUR, tz="UTC")),
        ["timestamp", "model_version", *FORECAST],
    ]
    served["timestamp"] = pd.to_datetime(served["timestamp"], utc=True)
    return Simulated(
        {str(item["month"]): item for item in summary["decisions"] if item["month"] in SHADOW_MONTHS},
        served.reset_index(drop=True),
    )


@dataclass
class LiveStack:
    store: PriceStore
    registry: ModelRegistry
    api_url: str
    processes: dict[str, CliProcess]

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{process.log_tail(2500)}" for name, process in self.processes.items())


@pytest.fixture
def live_stack(
    candle_file: Path, mlflow_server: str, mariadb_url_factory: Callable[[], str], tmp_path: Path
) -> Iterator[LiveStack]:
    store_url = mariadb_url_factory()
    store = PriceStore(store_url)
    store.migrate()
    experiment, model = f"live-{uuid.uuid4().hex[:6]}", f"live-{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = {
        "BTCMLOPS_HOME": str(tmp_path / "home"),
        "BTCMLOPS_STORE__URL": store_url,
        "BTCMLOPS_MLFLOW__TRACKING_URI": mlflow_server,
        "BTCMLOPS_MLFLOW__EXPERIMENT": experiment,
        "BTCMLOPS_MLFLOW__REGISTERED_MODEL": model,
        "BTCMLOPS_SERVE__POLL_INTERVAL_S": "0.5",
        "BTCMLOPS_SERVE__LOG_FLUSH_INTERVAL_S": "0.5",
        "BTCMLOPS_SERVE__CONTROL_KEY": CONTROL_KEY,
    }
    processes = {
        "feed": CliProcess(  # tells the api of each candle: the hour is pushed, not polled
            "feed",
            ["feed", "--data", str(candle_file), "--no-start-clock"],
            {**env, "BTCMLOPS_FEED__NOTIFY_URL": f"http://127.0.0.1:{port}"},
            tmp_path,
            forked=True,
        ),
        "trainer": CliProcess("trainer", ["trainer"], env, tmp_path, forked=True),
        "api": CliProcess("api", ["serve", "--port", str(port)], env, tmp_path, forked=True),
        "client": CliProcess(
            "client",
            ["client"],
            {**env, "BTCMLOPS_CLIENT__API_URL": f"http://127.0.0.1:{port}"},
            tmp_path,
            forked=True,
        ),
    }
    for process in processes.values():
        process.start()
    stack = LiveStack(
        store,
        ModelRegistry(mlflow_server, experiment, model, create=False),
        f"http://127.0.0.1:{port}",
        processes,
    )
    try:
        processes["api"].wait_for_http(f"{stack.api_url}/healthz", timeout_s=90)
        yield stack
    finally:
        for process in processes.values():
            process.stop()
        store.dispose()


def test_live_stack_serves_every_hour_as_the_replay_does_and_the_clock_waits_for_each_contest(
    live_stack: LiveStack, simulated: Simulated
) -> None:
    store, registry = live_stack.store, live_stack.registry
    started = time.monotonic()
    end_at = pd.Timestamp(LAST_HOUR, tz="UTC").to_pydatetime() + timedelta(hours=1)
    store.write_clock(
        start_clock(CLOCK_START, SPEED, datetime.now(UTC), hold=True, end_at=end_at, paced=True)
    )
    last_hour = simulated.served["timestamp"].iloc[-1].to_pydatetime()  # the last with a known outcome
    holds: list[str] = []

    def finished() -> bool:
        clock = httpx.get(f"{live_stack.api_url}/clock").json()
        if clock["state"] == "holding" and clock["holding_for"] not in holds:
            holds.append(clock["holding_for"])
        return clock["state"] == "finished" and bool(
            store.read_predictions(start=last_hour + timedelta(hours=1))
        )

    wait_until(finished, timeout_s=RUN_BOUND_S, what="the end of the data", on_timeout=live_stack.logs)
    wall_s = time.monotonic() - started
    _the_live_contest_of_each_month_is_its_decision_to_the_cent(live_stack)
    live_stack.processes["client"].stop()
    live_stack.processes["api"].stop()  # a graceful stop flushes the prediction log

    # The same decisions as the replay's, with the same settings.
    decisions = store.list_decisions(registry.model_name)
    months = [f"{decision.eval_start:%Y-%m}" for decision in decisions]
    assert months == SHADOW_MONTHS
    for decision, month in zip(decisions, months, strict=True):
        replayed = simulated.decisions[month]
        assert (decision.champion_version, decision.challenger_version, decision.promoted) == (
            replayed["champion_version"],
            replayed["challenger_version"],
            replayed["promoted"],
        ), month
        assert decision.champion_mae == pytest.approx(replayed["champion_mae"], rel=1e-9)
        assert decision.challenger_mae == pytest.approx(replayed["challenger_mae"], rel=1e-9)
        assert decision.naive_mae == pytest.approx(replayed["naive_mae"], rel=1e-9)
    champions = [1] + [decision.challenger_version for decision in decisions if decision.promoted]
    assert len(champions) >= 2, "no promotion: the champion never changed"

    # Every hour has a live forecast (asked by `btcmlops client`, logged by the service), from the version
    # the replay served it with, with the same value: each champion first served the first hour of the
    # month after its shadow month.
    logged = store.read_predictions(limit=10_000_000)
    live = pd.DataFrame(
        [
            (
                row.timestamp,
                row.model_version,
                row.predicted_close,
                row.interval_level,
                row.lower_close,
                row.upper_close,
            )
            for row in logged
        ],
        columns=["timestamp", "model_version", *FORECAST],
    )
    live["timestamp"] = pd.to_datetime(live["timestamp"], utc=True)
    expected = simulated.served
    assert live["timestamp"].is_unique  # each hour asked once: the client never asks twice
    live = live.loc[live["timestamp"] <= pd.Timestamp(last_hour)].reset_index(drop=True)
    missing = sorted(set(expected["timestamp"]) - set(live["timestamp"]))
    assert not missing, f"{len(missing)} hours without a forecast, first {missing[:3]}"
    assert live["model_version"].tolist() == expected["model_version"].tolist()
    assert live["interval_level"].notna().all()  # every live forecast was served with its interval
    for column in FORECAST:  # the point and the interval, hour by hour
        assert live[column].to_numpy() == pytest.approx(expected[column].to_numpy(), rel=1e-9), column
    # Nothing was refused: hours were only put off (no candle yet, the clock holding, no champion yet).
    client_log = live_stack.processes["client"].log_tail(1_000_000)
    assert "was refused" not in client_log, client_log[-3000:]
    assert holds, "the clock never held"

    # Every forecast was made after its hour closed in sim time and before its target hour closed: the
    # paced clock waited for each one (at 48 sim h/s an hour is 21 ms, less than the feed's write, the
    # service's read and the client's ask take on two busy cores).
    lags = [(row.sim_made_at - row.timestamp) / timedelta(hours=1) - 1 for row in logged if row.sim_made_at]
    assert len(lags) == len(logged)
    assert min(lags) >= 0
    late = [row for row in logged if not row.live]
    assert not late, f"{len(late)} forecasts not live, first {late[:2]}"
    # Each new champion's first forecast, in sim hours after its month's end (the hour it forecasts from
    # closes there).
    takeovers = {
        row.model_version: (row.sim_made_at - (row.timestamp + timedelta(hours=1))) / timedelta(hours=1)
        for row in sorted(logged, key=lambda row: row.timestamp, reverse=True)
        if row.sim_made_at and row.timestamp <= last_hour
    }

    # Every logged forecast was made from an hour in the store, and the clock ended with the data.
    stored = set(store.read_candles()["open_time"])
    assert {pd.Timestamp(row.timestamp) for row in logged} <= stored
    clock = store.read_clock()
    assert clock is not None
    assert clock.sim_now(datetime.now(UTC)) == end_at

    first_served = live.groupby("model_version")["timestamp"].min()
    put_off = [line for line in client_log.splitlines() if "hour(s) answered; next" in line][-1:]
    print(
        f"\nlive stack: {len(months)} contests ({months[0]}..{months[-1]}), sim "
        f"{CLOCK_START:%Y-%m-%d}..{end_at:%Y-%m-%d} at {SPEED:g} h/s, wall {wall_s:.0f} s, "
        f"{len(live)} hours forecast, 0 missing, {len(late)} not live; sim lag from hour close to forecast: "
        "median "
        f"{sorted(lags)[len(lags) // 2]:.2f} h, max {max(lags):.2f} h; champions "
        + ", ".join(f"v{v} from {t:%Y-%m-%d %H:00}" for v, t in first_served.items())
        + "; first forecast after the month's end: "
        + ", ".join(f"v{v} {h:.2f} h" for v, h in sorted(takeovers.items()))
        + f"; holds seen: {len(holds)}; client: {put_off[0].split('client ')[-1] if put_off else '-'}"
    )
    _after_a_reset_no_in_sample_forecast_counts_live(live_stack, champions[-1])


CENT = 0.005


def _the_live_contest_of_each_month_is_its_decision_to_the_cent(live_stack: LiveStack) -> None:
    """The service's live contest of every decided month, judged by the contest's own code from the store
    (``GET /contest/live?month=``: deterministic, so asking after the close cannot race it), is the
    trainer's decision (``/decisions``): each MAE and interval score to the cent, both p-values."""
    decisions = httpx.get(f"{live_stack.api_url}/decisions", timeout=30).json()
    assert [decision["eval_start"][:7] for decision in decisions] == SHADOW_MONTHS
    for decision in decisions:
        month = decision["eval_start"][:7]
        answer = httpx.get(f"{live_stack.api_url}/contest/live", params={"month": month}, timeout=120)
        assert answer.status_code == 200, answer.text
        live = answer.json()
        assert (live["state"], live["hours_left"], live["challenger_version"]) == (
            "decided",
            0,
            decision["challenger_version"],
        ), month
        for name in ("champion", "challenger", "naive"):
            assert abs(live[f"{name}_mae"] - decision[f"{name}_mae"]) < CENT, (month, name)
            live_score = live[f"{name}_interval"]["interval_score"]
            assert abs(live_score - decision[f"{name}_interval"]["interval_score"]) < CENT, (month, name)
        for key in ("dm_p_value", "dm_interval_p_value"):
            assert live[key] == pytest.approx(decision[key], abs=1e-9), (month, key)
        assert live["would_promote"] == decision["promoted"], month


def _after_a_reset_no_in_sample_forecast_counts_live(live_stack: LiveStack, champion: int) -> None:
    """Reset the finished clock to a day the champion was trained on: the client asks those hours again
    and the service answers them, but neither ``/predictions`` nor ``/predict`` counts one of them live."""
    for name in ("api", "client"):
        live_stack.processes[name].start()
    live_stack.processes["api"].wait_for_http(f"{live_stack.api_url}/readyz", timeout_s=90)
    reset_at = datetime.now(UTC)
    answer = httpx.post(
        f"{live_stack.api_url}/clock",
        json={"action": "reset", "start": RESET_TO.isoformat(), "speed": SPEED},
        headers={"X-API-Key": CONTROL_KEY},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    window = {
        "start": ASKED_AGAIN_FROM.isoformat(),
        "end": (ASKED_AGAIN_FROM + RESET_HOURS * timedelta(hours=1)).isoformat(),
    }

    def asked_again() -> list[dict[str, object]]:
        rows = httpx.get(f"{live_stack.api_url}/predictions", params=window, timeout=30).json()
        return [row for row in rows if pd.Timestamp(str(row["served_at"])) > reset_at]

    wait_until(
        lambda: len(asked_again()) >= RESET_HOURS,
        timeout_s=120,
        what=f"the client asking again for {RESET_HOURS} hours after the reset",
        on_timeout=live_stack.logs,
    )
    again = asked_again()
    assert {row["model_version"] for row in again} == {champion}
    for row in again:  # made before its target hour closed by the replayed clock, yet in-sample
        made, target = pd.Timestamp(str(row["sim_made_at"])), pd.Timestamp(str(row["target_time"]))
        assert made < target + timedelta(hours=1), row
    assert [row for row in again if row["live"]] == [], "an in-sample forecast counted live after a reset"
    hour = ASKED_AGAIN_FROM + timedelta(hours=3)
    forecast = httpx.post(f"{live_stack.api_url}/predict", json={"timestamp": hour.isoformat()}, timeout=30)
    assert forecast.json()["in_sample"] is True
    assert forecast.json()["served_live_by"] not in (None, champion)  # the version that served March live
