"""The contest schedule on small synthetic markets where the right answer is known.

Runs the real ``Contest`` against a real embedded MLflow store (SQLite, local artifacts) and a real
SQLite price store: who is trained on what, who is scored on what, what the registry says after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from btcmlops.calendar import months_between
from btcmlops.contest import Month
from btcmlops.contest.contest import Contest, FairnessError
from btcmlops.contest.decision_rows import contest_metrics, decision_row
from btcmlops.contest.records import ContestRecord
from btcmlops.contest.rule import Decision
from btcmlops.contest.scoring import Scores
from btcmlops.contest.significance import SignificanceTest
from btcmlops.features import build_samples, get_feature_set
from btcmlops.registry import (
    CHALLENGER,
    CHAMPION,
    ModelRegistry,
    VersionStatus,
    embedded_artifact_location,
    embedded_tracking_uri,
)
from btcmlops.replay.run import FrameCandles
from btcmlops.settings import ContestSettings, ModelSettings
from btcmlops.store import PriceStore
from drift_by_hand import psi_by_hand
from factories import make_candles

FAST_MODEL = ModelSettings(num_boost_round=40, min_data_in_leaf=20)


@pytest.fixture
def registry(tmp_path: Path, mlflow_cache: Path) -> ModelRegistry:
    return ModelRegistry(
        embedded_tracking_uri(tmp_path / "mlflow", mlflow_cache),
        "contest-test",
        "contest-test-model",
        artifact_location=embedded_artifact_location(tmp_path / "mlflow"),
    )


@pytest.fixture
def ledger(tmp_path: Path) -> PriceStore:
    store = PriceStore(f"sqlite:///{tmp_path / 'prices.db'}")
    store.migrate()
    yield store
    store.dispose()


def _run(contest: Contest, candles: pd.DataFrame) -> list:
    months = months_between(Month.of(candles["open_time"].iloc[0]), Month.of(candles["open_time"].iloc[-1]))
    return [contest.close_month(m, train_challenger=i < len(months) - 1) for i, m in enumerate(months)]


def test_schedule_who_trains_on_what_and_is_scored_on_what(
    registry: ModelRegistry, ledger: PriceStore
) -> None:
    candles = make_candles("2021-01-01", "2021-05-31 23:00", ar=0.3)
    contest = Contest(
        FAST_MODEL, ContestSettings(first_train_months=2), registry, FrameCandles(candles), ledger
    )
    outcomes = _run(contest, candles)

    by_month = {str(o.month): o for o in outcomes}
    # January: warming up, nothing trained, nothing served.
    assert by_month["2021-01"].trained == []
    assert by_month["2021-01"].champion_version is None
    # End of February: v1 trained on Jan-Feb becomes champion; no challenger yet.
    (v1,) = by_month["2021-02"].trained
    assert (v1.version, v1.role, v1.trained_through) == (1, CHAMPION, "2021-02")
    assert v1.train_end == pd.Timestamp("2021-02-28 23:00", tz="UTC")
    assert v1.train_start == pd.Timestamp("2021-01-02 01:00", tz="UTC")  # 24 h of history first
    # March is served by v1 with no contest; a challenger trained through March enters shadow.
    march = by_month["2021-03"]
    assert march.served_version == 1
    assert march.contest is None
    assert [(t.version, t.role, t.trained_through) for t in march.trained] == [(2, CHALLENGER, "2021-03")]
    # April and May: a contest each, on exactly that month's hours, then a new challenger (not after May).
    for name, challenger, trained in (("2021-04", 2, [3]), ("2021-05", 3, [])):
        outcome = by_month[name]
        assert outcome.contest is not None
        assert outcome.contest.challenger_version == challenger
        month = Month.parse(name)
        assert outcome.contest.eval_start == month.start
        assert outcome.contest.eval_end == month.last_hour
        assert outcome.contest.champion.n == outcome.contest.challenger.n == outcome.contest.naive.n
        assert [t.version for t in outcome.trained] == trained
    # Fairness, row by row: every forecast targets an hour after its model's last training target.
    windows = {t.version: t for o in outcomes for t in o.trained}
    predictions = pd.concat([o.predictions for o in outcomes if o.predictions is not None])
    for version, rows in predictions.groupby("model_version"):
        assert (pd.to_datetime(rows["target_time"], utc=True) > windows[version].train_end).all()
        assert (pd.to_datetime(rows["timestamp"], utc=True) >= windows[version].train_end).all()
    # Three versions in all, each trained on more data than the last.
    assert [w.train_rows for w in windows.values()] == sorted(w.train_rows for w in windows.values())
    assert len({w.data_hash for w in windows.values()}) == 3


def test_a_challenger_that_learned_the_new_regime_is_promoted(
    registry: ModelRegistry, ledger: PriceStore
) -> None:
    """The market flips from strong mean reversion to strong momentum on March 1st.

    v1 (Jan-Feb) learned mean reversion and forecasts the wrong way from March on, worse than naive.
    The challenger trained through March has seen the new regime and must win April; it is promoted.
    """
    candles = make_candles(
        "2021-01-01", "2021-04-30 23:00", ar=[("2021-01-01", -0.8), ("2021-03-01", 0.8)], noise=0.003
    )
    contest = Contest(
        FAST_MODEL, ContestSettings(first_train_months=2), registry, FrameCandles(candles), ledger
    )
    april = _run(contest, candles)[-1]

    assert april.contest is not None
    assert april.contest.champion.mae > april.contest.naive.mae  # the old champion is now harmful
    assert april.contest.challenger.mae < april.contest.champion.mae
    assert april.contest.decision.promote
    assert april.champion_version == 2
    assert registry.get_by_alias(CHAMPION).version == 2  # type: ignore[union-attr]
    assert registry.get_by_alias(CHALLENGER) is None
    statuses = {v.version: v.status for v in registry.versions()}
    assert statuses == {1: VersionStatus.ARCHIVED, 2: VersionStatus.PRODUCTION}
    (row,) = ledger.list_decisions("contest-test-model")
    assert row.promoted
    assert row.champion_version == 1
    assert row.challenger_version == 2
    assert row.challenger_mae == pytest.approx(april.contest.challenger.mae)
    # The daily MAEs behind the verdict: 30 April days, whose hours average to the month's MAEs.
    daily = row.metrics["daily_mae"]
    assert list(daily) == [f"2021-04-{day:02d}" for day in range(1, 31)]
    assert set(daily["2021-04-15"]) == {"champion", "challenger", "naive"}
    assert sum(day["challenger"] for day in daily.values()) / 30 == pytest.approx(
        row.challenger_mae, rel=0.05
    )
    # Both scores of all three, both tests: in the decision row, the outcome and the contest run.
    intervals = row.metrics["intervals"]
    assert set(intervals) == {"champion", "challenger", "naive"}
    assert {scores["level"] for scores in intervals.values()} == {0.8}
    assert intervals["challenger"]["interval_score"] == pytest.approx(
        april.contest.challenger_interval.interval_score
    )  # type: ignore[union-attr]
    assert 0.5 < intervals["challenger"]["coverage"] < 1.0
    assert set(april.contest.tests) == {"mae", "interval_score"}
    assert row.metrics["significance"]["p_value"] == april.contest.tests["mae"].p_value
    assert row.metrics["interval_significance"]["p_value"] == april.contest.tests["interval_score"].p_value
    assert row.metrics["metric"] == "mae"
    assert april.contest.decision.test == april.contest.tests["mae"]
    (run,) = registry.contest_runs("2021-04")
    assert run.metrics["dm_p_value"] == pytest.approx(april.contest.tests["mae"].p_value)
    assert run.metrics["dm_interval_score_p_value"] == pytest.approx(
        april.contest.tests["interval_score"].p_value
    )
    for side in ("champion", "challenger", "naive"):
        for key in ("coverage", "mean_width", "interval_score", "pinball"):
            assert run.metrics[f"{side}_{key}"] == pytest.approx(intervals[side][key])
    # The served side's forecasts carry their interval, naive's beside it.
    served = april.predictions.loc[april.predictions["role"] == "champion"]  # type: ignore[union-attr]
    assert (served["lower_close"] < served["upper_close"]).all()
    assert (served["naive_lower"] < served["naive_upper"]).all()
    assert (served["interval_level"] == 0.8).all()


def test_a_challenger_short_of_the_margin_is_archived(registry: ModelRegistry, ledger: PriceStore) -> None:
    candles = make_candles("2021-01-01", "2021-04-30 23:00", ar=0.5)
    rule = ContestSettings(first_train_months=2, margin=0.5)  # needs a 50% lower MAE: never on this market
    contest = Contest(FAST_MODEL, rule, registry, FrameCandles(candles), ledger)
    april = _run(contest, candles)[-1]

    assert april.contest is not None
    assert not april.contest.decision.promote
    assert "does not beat the champion" in april.contest.decision.reason
    assert registry.get_by_alias(CHAMPION).version == 1  # type: ignore[union-attr]
    assert {v.version: v.status for v in registry.versions()} == {
        1: VersionStatus.PRODUCTION,
        2: VersionStatus.ARCHIVED,
    }


def test_closing_a_month_twice_does_the_work_once(registry: ModelRegistry, ledger: PriceStore) -> None:
    candles = make_candles("2021-01-01", "2021-04-30 23:00")
    contest = Contest(
        FAST_MODEL, ContestSettings(first_train_months=2), registry, FrameCandles(candles), ledger
    )
    for month in months_between(Month(2021, 1), Month(2021, 4)):
        contest.close_month(month)
    versions = [v.version for v in registry.versions()]
    decisions = ledger.list_decisions("contest-test-model")

    again = contest.close_month(Month(2021, 4))

    assert again.already_closed
    assert again.trained == []
    assert again.contest is None
    assert [v.version for v in registry.versions()] == versions == [1, 2, 3]
    assert ledger.list_decisions("contest-test-model") == decisions
    assert len(decisions) == 1


def test_a_rolling_window_trains_on_the_last_months_and_never_scores_on_them(
    registry: ModelRegistry, ledger: PriceStore
) -> None:
    candles = make_candles("2021-01-01", "2021-04-30 23:00", ar=0.3)
    model = FAST_MODEL.model_copy(update={"train_window_months": 1})
    contest = Contest(model, ContestSettings(first_train_months=2), registry, FrameCandles(candles), ledger)
    outcomes = _run(contest, candles)

    windows = {t.version: t for o in outcomes for t in o.trained}
    assert [(w.trained_through, w.train_start) for w in windows.values()] == [
        ("2021-02", pd.Timestamp("2021-02-01", tz="UTC")),  # v1: February only, not January
        ("2021-03", pd.Timestamp("2021-03-01", tz="UTC")),
    ]
    predictions = pd.concat([o.predictions for o in outcomes if o.predictions is not None])
    assert set(predictions["model_version"]) == {1, 2}  # April's contest: v1 served, v2 in shadow
    for version, rows in predictions.groupby("model_version"):
        assert (pd.to_datetime(rows["target_time"], utc=True) > windows[version].train_end).all()
        assert (pd.to_datetime(rows["timestamp"], utc=True) >= windows[version].train_end).all()


def test_a_model_is_never_scored_on_hours_it_was_trained_on(
    registry: ModelRegistry, ledger: PriceStore, tmp_path: Path
) -> None:
    candles = make_candles("2021-01-01", "2021-03-31 23:00")
    contest = Contest(
        FAST_MODEL, ContestSettings(first_train_months=2), registry, FrameCandles(candles), ledger
    )
    _run(contest, candles)  # v1 (champion) trained through February
    # A store whose journal lost January (a restored backup, say) asks to close it again:
    forgetful = PriceStore(f"sqlite:///{tmp_path / 'forgetful.db'}")
    forgetful.migrate()
    again = Contest(
        FAST_MODEL, ContestSettings(first_train_months=2), registry, FrameCandles(candles), forgetful
    )
    with pytest.raises(FairnessError, match="version 1 was trained through"):
        again.close_month(Month(2021, 1))  # v1 would be scored on January, which it was trained on
    assert forgetful.journal.entries("contest-test-model") == []  # refused before anything was written
    forgetful.dispose()


def test_an_xgboost_challenger_meets_a_lightgbm_champion_in_the_same_contest(
    registry: ModelRegistry, ledger: PriceStore
) -> None:
    """The trainer restarted with BTCMLOPS_MODEL__FAMILY=xgboost: the same contest, scored the same way.

    The regime-flip market of the promotion test: v1 (LightGBM, Jan-Feb) learned mean reversion; the
    challenger trained through March, now by XGBoost, has seen momentum and must win April.
    """
    candles = make_candles(
        "2021-01-01", "2021-04-30 23:00", ar=[("2021-01-01", -0.8), ("2021-03-01", 0.8)], noise=0.003
    )
    rule = ContestSettings(first_train_months=2)
    lightgbm = Contest(FAST_MODEL, rule, registry, FrameCandles(candles), ledger)
    for month in (Month(2021, 1), Month(2021, 2)):
        lightgbm.close_month(month)
    xgboost = Contest(
        FAST_MODEL.model_copy(update={"family": "xgboost"}), rule, registry, FrameCandles(candles), ledger
    )
    xgboost.close_month(Month(2021, 3))
    april = xgboost.close_month(Month(2021, 4), train_challenger=False)

    families = {v.version: registry.load(v.version).family for v in registry.versions()}
    assert families == {1: "lightgbm", 2: "xgboost"}
    assert april.contest is not None
    assert (april.contest.champion_version, april.contest.challenger_version) == (1, 2)
    assert april.contest.challenger.mae < april.contest.champion.mae
    assert april.contest.decision.promote
    assert registry.get_by_alias(CHAMPION).version == 2  # type: ignore[union-attr]
    (row,) = ledger.list_decisions("contest-test-model")
    assert (row.champion_version, row.challenger_version, row.promoted) == (1, 2, True)


def test_the_interval_score_metric_decides_the_contest(registry: ModelRegistry, ledger: PriceStore) -> None:
    candles = make_candles(
        "2021-01-01", "2021-04-30 23:00", ar=[("2021-01-01", -0.8), ("2021-03-01", 0.8)], noise=0.003
    )
    rule = ContestSettings(first_train_months=2, metric="interval_score")
    contest = Contest(FAST_MODEL, rule, registry, FrameCandles(candles), ledger)
    april = _run(contest, candles)[-1]

    record = april.contest
    assert record is not None
    assert record.champion_interval is not None
    assert record.challenger_interval is not None
    wins = record.challenger_interval.interval_score < record.champion_interval.interval_score
    assert record.decision.promote == wins
    assert "interval score" in record.decision.reason
    assert record.decision.test == record.tests["interval_score"]
    (row,) = ledger.list_decisions("contest-test-model")
    assert row.metrics["metric"] == "interval_score"


def test_a_constant_loss_differential_is_recorded_with_its_p_value(ledger: PriceStore) -> None:
    """A DM statistic of -inf (the challenger better by the same amount every hour) is not JSON: the
    decision row keeps it as null beside its p-value instead of failing to record the decision."""
    scores = Scores(n=3, mae=1.0, rmse=1.0, mape=0.0, directional_accuracy=0.0)
    certain = SignificanceTest(statistic=-float("inf"), p_value=0.0, lags=1, n=3)
    record = ContestRecord(
        month="2021-04",
        eval_start=pd.Timestamp("2021-04-01", tz="UTC"),
        eval_end=pd.Timestamp("2021-04-01 02:00", tz="UTC"),
        champion_version=1,
        challenger_version=2,
        champion=scores,
        challenger=scores,
        naive=scores,
        decision=Decision(True, "challenger wins", certain),
        tests={"mae": certain, "interval_score": certain},
    )
    row = decision_row("contest-test-model", record, datetime(2021, 5, 1, tzinfo=UTC), "mae")
    ledger.record_decision(row)
    (stored,) = ledger.list_decisions("contest-test-model")
    assert stored.metrics["significance"] == {"statistic": None, "p_value": 0.0, "lags": 1}
    assert stored.metrics["interval_significance"]["statistic"] is None
    assert "dm_statistic" not in contest_metrics(record)
    assert contest_metrics(record)["dm_p_value"] == 0.0


def test_the_contest_records_the_shadow_months_drift_from_the_champions_training_window(
    registry: ModelRegistry, ledger: PriceStore
) -> None:
    """Mean reversion through February, momentum from March: April's momentum features are far from
    v1's training window (Jan-Feb), its calendar features are not. Each feature's PSI, worked out by hand
    from the samples, is in the contest run (``drift_psi_<feature>``), the decision row and the record."""
    candles = make_candles(
        "2021-01-01", "2021-04-30 23:00", ar=[("2021-01-01", -0.8), ("2021-03-01", 0.8)], noise=0.003
    )
    contest = Contest(
        FAST_MODEL, ContestSettings(first_train_months=2), registry, FrameCandles(candles), ledger
    )
    april = _run(contest, candles)[-1]
    assert april.contest is not None
    v1 = registry.versions()[0]
    assert v1.version == april.contest.champion_version == 1
    samples = build_samples(candles, FAST_MODEL.feature_set)
    target = samples["target_time"]
    reference = samples.loc[(target >= v1.window.train_start) & (target <= v1.window.train_end)]
    month = samples.loc[(target >= pd.Timestamp("2021-04-01", tz="UTC")) & (target <= april.contest.eval_end)]
    columns = get_feature_set(FAST_MODEL.feature_set).columns
    expected = {c: psi_by_hand(reference[c], month[c]) for c in columns}

    assert april.contest.drift == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert expected["mom_24"] > 0.25  # momentum: a 24-hour move is far larger than mean reversion allowed
    assert expected["hour_sin"] < 0.1  # the same hours of the day in both windows
    (run,) = registry.contest_runs("2021-04")
    for column in columns:
        assert run.metrics[f"drift_psi_{column}"] == pytest.approx(expected[column], rel=1e-9, abs=1e-12)
    (row,) = ledger.list_decisions("contest-test-model")
    assert row.metrics["drift_psi"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
