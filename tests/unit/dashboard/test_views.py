"""What the dashboard computes from the API's answers: which hours to ask for, errors, the figure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from btcmlops.dashboard.views import (
    MONITORING_COLUMNS,
    LiveInterval,
    alert_lines,
    band_colour,
    champion_changes,
    champion_timeline,
    clock_banners,
    contest_scores,
    daily_figure,
    decision_table,
    drift_figure,
    forecast_figure,
    hours_to_ask,
    live_contest_headline,
    live_contest_table,
    live_error,
    live_interval,
    monitoring_table,
    newest_asked,
    run_interval,
    run_scores,
    shown_state,
    timeline_figure,
    version_colour,
    version_scores,
    why_summary,
)

H = timedelta(hours=1)
NOON = datetime(2024, 3, 5, 12, tzinfo=UTC)


def _predictions(rows: list[tuple[datetime, float, float, int]]) -> pd.DataFrame:
    """(hour T, predicted close at T+1, close at T, version), served in the order given."""
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime([row[0] for row in rows], utc=True),
            "target_time": pd.to_datetime([row[0] + H for row in rows], utc=True),
            "predicted_close": [row[1] for row in rows],
            "last_close": [row[2] for row in rows],
            "model_version": [row[3] for row in rows],
            "served_at": pd.to_datetime(
                [datetime(2026, 1, 1, tzinfo=UTC) + number * H for number in range(len(rows))], utc=True
            ),
        }
    )


def _candles(start: datetime, closes: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"open_time": pd.to_datetime([start + n * H for n in range(len(closes))], utc=True), "close": closes}
    )


def test_first_view_asks_only_for_the_newest_closed_hour() -> None:
    assert hours_to_ask(NOON, None, None, 168) == [NOON]


def test_asks_for_every_hour_closed_since_the_newest_forecast() -> None:
    assert hours_to_ask(NOON, NOON - 3 * H, None, 168) == [NOON - 2 * H, NOON - H, NOON]
    assert hours_to_ask(NOON, NOON, None, 168) == []


def test_never_asks_beyond_the_chart_or_on_the_champions_training_hours() -> None:
    assert len(hours_to_ask(NOON, NOON - 1000 * H, None, 24)) == 24
    # trained on targets up to NOON-1h: hour NOON-2h forecasts NOON-1h, a training target; NOON-1h is fair
    assert hours_to_ask(NOON, NOON - 5 * H, NOON - H, 168) == [NOON - H, NOON]


def test_newest_asked_is_the_later_of_the_log_and_this_page() -> None:
    logged = _predictions([(NOON - 2 * H, 1, 1, 1), (NOON - 5 * H, 1, 1, 1)])
    assert newest_asked(logged, None) == NOON - 2 * H
    assert newest_asked(logged, NOON) == NOON  # asked here, not flushed to the log yet
    assert newest_asked(logged, NOON - 9 * H) == NOON - 2 * H
    assert newest_asked(logged.iloc[:0], None) is None


def test_champion_changes_are_where_the_served_version_changed() -> None:
    predictions = _predictions(
        [(NOON, 1, 1, 1), (NOON + H, 1, 1, 1), (NOON + 2 * H, 1, 1, 3), (NOON + 3 * H, 1, 1, 4)]
    )
    changes = champion_changes(predictions)
    assert changes["model_version"].tolist() == [3, 4]
    assert changes["target_time"].tolist() == [pd.Timestamp(NOON + 3 * H), pd.Timestamp(NOON + 4 * H)]
    assert champion_changes(predictions.iloc[:2]).empty


def test_live_error_scores_one_version_on_closed_hours_against_naive() -> None:
    candles = _candles(NOON, [100, 110, 120, 130])
    predictions = _predictions(
        [
            (NOON, 104, 100, 2),  # target 110: error 6, naive 10
            (NOON + H, 118, 110, 2),  # target 120: error 2, naive 10
            (NOON + H, 500, 110, 1),  # another version: not counted
            (NOON + 2 * H, 131, 120, 2),  # target 130 is after the closed hour: not counted
        ]
    )
    result = live_error(predictions, candles, 2, NOON + 2 * H, timedelta(days=1))
    assert (result.hours, result.model_mae, result.naive_mae) == (2, 4.0, 10.0)
    assert result.skill == pytest.approx(0.6)
    assert live_error(predictions, candles, 7, NOON + 2 * H, timedelta(days=1)).model_mae is None


def test_live_error_keeps_only_the_span() -> None:
    candles = _candles(NOON, [100, 110, 120])
    predictions = _predictions([(NOON, 100, 100, 1), (NOON + H, 110, 110, 1)])
    assert live_error(predictions, candles, 1, NOON + 2 * H, timedelta(hours=1)).hours == 1


def test_figure_has_the_price_line_a_series_per_version_and_a_label_per_change() -> None:
    candles = _candles(NOON, [100, 110, 120, 130])
    predictions = _predictions([(NOON, 104, 100, 1), (NOON + H, 118, 110, 2), (NOON + H, 118, 110, 2)])
    figure = forecast_figure(candles, predictions)
    assert [trace.name for trace in figure.data] == ["real close", "forecast v1", "forecast v2"]
    assert len(figure.data[2].x) == 1  # the same forecast asked for twice is one point
    assert [note.text for note in figure.layout.annotations] == ["v2 takes over"]


def test_figure_draws_the_challengers_shadow_forecasts_apart_when_given() -> None:
    candles = _candles(NOON, [100, 110, 120])
    predictions = _predictions([(NOON, 104, 100, 1)])
    shadow = _predictions([(NOON, 103, 100, 2), (NOON + H, 111, 110, 2)]).drop(
        columns=["last_close", "served_at"]
    )
    figure = forecast_figure(candles, predictions, shadow)
    assert [trace.name for trace in figure.data][-1] == "shadow v2 (challenger, not served)"
    assert list(figure.data[-1].y) == [103, 111]
    assert [note.text for note in figure.layout.annotations] == []  # shadow is not a takeover


def test_decision_table_is_newest_first_with_the_three_scores() -> None:
    decision = {
        "eval_start": "2024-02-01T00:00:00Z",
        "champion_version": 1,
        "challenger_version": 2,
        "champion_mae": 10.004,
        "challenger_mae": 9.5,
        "naive_mae": 11.0,
        "promoted": True,
        "outcome": "promoted",
        "reason": "challenger wins",
    }
    later = {
        **decision,
        "eval_start": "2024-03-01T00:00:00Z",
        "promoted": False,
        "outcome": "archived",
        "experiment_id": "7",
        "run_id": "abc",
    }
    table = decision_table([decision, later], "http://ui:5000/", "btc model")
    assert table["shadow month"].tolist() == ["2024-03", "2024-02"]
    assert table["outcome"].tolist() == ["archived", "promoted"]  # the API's words, as CLI and MLflow say
    assert table.iloc[1][["champion MAE", "challenger MAE", "naive MAE", "outcome"]].tolist() == [
        10.0,
        9.5,
        11.0,
        "promoted",
    ]
    # Each version and each contest links to its MLflow page (no run link where MLflow was not reached).
    assert (
        table.iloc[1]["challenger"]
        == "http://ui:5000/#/models/btc%20model/versions/2?workflowType=machine_learning"
    )
    assert table.iloc[0]["run"] == "http://ui:5000/#/experiments/7/runs/abc?workflowType=machine_learning"
    assert table.iloc[1]["run"] == ""  # a blank cell until MLflow answers, never "None"


def test_the_champion_timeline_spans_the_whole_run_and_ends_at_sim_now() -> None:
    history = [
        {"sim_time": "2024-01-01T00:00:00Z", "to_version": 1, "source": "contest", "reason": "first"},
        {"sim_time": None, "to_version": 9, "source": "manual", "reason": "no clock"},
        {"sim_time": "2024-04-01T00:00:00Z", "to_version": 3, "source": "contest", "reason": "won"},
    ]
    timeline = champion_timeline(history, datetime(2024, 5, 2, tzinfo=UTC))
    assert timeline["version"].tolist() == ["v1", "v3"]
    assert timeline["to"].tolist() == [
        pd.Timestamp("2024-04-01", tz="UTC"),
        pd.Timestamp("2024-05-02", tz="UTC"),
    ]
    figure = timeline_figure(timeline)
    assert [trace.text[0] for trace in figure.data] == ["v1", "v3"]


def test_the_why_view_draws_the_three_daily_maes_or_says_they_were_not_kept() -> None:
    decision = {
        "champion_version": 1,
        "challenger_version": 2,
        "metrics": {
            "daily_mae": {
                "2024-03-01": {"champion": 10.0, "challenger": 8.0, "naive": 9.0},
                "2024-03-02": {"champion": 12.0, "challenger": 11.0, "naive": 13.0},
            }
        },
    }
    figure = daily_figure(decision)
    assert figure is not None
    assert [trace.name for trace in figure.data] == [
        "champion v1",
        "challenger v2",
        "naive (next close = last close)",
    ]
    assert list(figure.data[1].y) == [8.0, 11.0]
    assert daily_figure({**decision, "metrics": {}}) is None


def test_each_version_has_one_colour_on_every_chart_whatever_the_window() -> None:
    """The price chart coloured by place in its window: v3, v7 and v11 each came out blue."""
    candles = _candles(NOON, [100, 110, 120, 130])
    for versions in ((3, 7), (7, 11), (11, 3)):
        predictions = _predictions([(NOON, 104, 100, versions[0]), (NOON + H, 118, 110, versions[1])])
        figure = forecast_figure(candles, predictions)
        assert [trace.marker.color for trace in figure.data[1:]] == [
            version_colour(v) for v in sorted(versions)
        ]
    assert len({version_colour(version) for version in range(1, 13)}) == 12  # a year's versions differ
    timeline = champion_timeline(
        [
            {"sim_time": "2024-01-01T00:00:00Z", "to_version": 7, "source": "contest", "reason": ""},
            {"sim_time": "2024-02-01T00:00:00Z", "to_version": 3, "source": "contest", "reason": ""},
        ],
        datetime(2024, 3, 1, tzinfo=UTC),
    )
    assert [trace.marker.color for trace in timeline_figure(timeline).data] == [
        version_colour(7),
        version_colour(3),
    ]
    shadow = _predictions([(NOON, 103, 100, 11)]).drop(columns=["last_close", "served_at"])
    assert forecast_figure(candles, _predictions([(NOON, 1, 1, 3)]), shadow).data[
        -1
    ].marker.color == version_colour(11)
    decision = {
        "champion_version": 3,
        "challenger_version": 11,
        "metrics": {"daily_mae": {"2024-03-01": {"champion": 1.0, "challenger": 2.0, "naive": 3.0}}},
    }
    figure = daily_figure(decision)
    assert figure is not None
    assert [trace.line.color for trace in figure.data[:2]] == [version_colour(3), version_colour(11)]


def test_after_a_reset_in_sample_forecasts_draw_no_takeover_and_score_nothing() -> None:
    """v3 served March live; after a reset to March, v4 (trained through April) answers March again."""
    v3 = _predictions([(NOON + n * H, 100, 100, 3) for n in range(4)]).assign(live=True)
    v4 = _predictions([(NOON + n * H, 200, 100, 4) for n in range(4)]).assign(live=False)
    v4["served_at"] += pd.Timedelta(days=30)  # after the reset
    both = pd.concat([v3, v4], ignore_index=True)
    assert champion_changes(both).empty  # no "v4 takes over" in March
    candles = _candles(NOON, [100, 110, 120, 130, 140])
    assert live_error(both, candles, 4, NOON + 4 * H, timedelta(days=1)).hours == 0
    assert run_scores(both, candles).model_mae == pytest.approx(run_scores(v3, candles).model_mae)
    assert [note.text for note in forecast_figure(candles, both).layout.annotations] == []


def test_the_champion_timeline_keeps_the_champion_after_a_reset() -> None:
    history = [
        {"sim_time": "2024-01-01T00:00:00Z", "to_version": 1, "source": "contest", "reason": "first"},
        {"sim_time": "2024-05-01T00:00:00Z", "to_version": 4, "source": "contest", "reason": "won"},
    ]
    reset_to = datetime(2024, 3, 11, tzinfo=UTC)
    timeline = champion_timeline(history, reset_to, reached=datetime(2024, 5, 20, tzinfo=UTC))
    assert timeline["version"].tolist() == ["v1", "v4"]
    assert timeline["to"].iloc[-1] == pd.Timestamp("2024-05-20", tz="UTC")
    alone = champion_timeline(history, reset_to)  # without what the run reached: still drawn
    assert alone["to"].iloc[-1] > alone["from"].iloc[-1]


def _clock(**fields: object) -> dict[str, object]:
    clock: dict[str, object] = {
        "sim_now": "2024-05-03T10:00:59Z",
        "last_closed_hour": "2024-05-03T09:00:00Z",
        "speed": 48.0,
        "paused": False,
        "state": "running",
        "holding_for": None,
        "hold_at": "2024-06-01T00:00:00Z",
        "end_at": "2024-12-31T23:00:00Z",
    }
    return clock | fields


def test_a_paced_wait_for_the_next_forecast_reads_as_running() -> None:
    """A blue "The clock holds at 2024-06-01" showed while sim time was May 3 and nothing was wrong."""
    clock = _clock(state="holding", holding_for="waiting for the forecast from 2024-05-03 09:00")
    assert shown_state(clock) == "running"
    [banner] = clock_banners(clock, None, "2024-03")
    assert banner.kind == "success"
    assert banner.text.startswith("Running at 48 sim h/s")
    assert "holds" not in banner.text


def test_each_clock_state_has_its_own_banner() -> None:
    held = _clock(state="holding", sim_now="2024-06-01T00:00:00Z", holding_for="the May contest")
    assert [(b.kind, b.text[:26]) for b in clock_banners(held, None, None)] == [
        ("info", "The clock holds at 2024-06")
    ]
    paused = clock_banners(_clock(state="paused", paused=True), None, None)
    assert [(b.kind, b.text[:20]) for b in paused] == [("warning", "The clock is paused ")]
    finished = clock_banners(_clock(state="finished", sim_now="2025-01-01T00:00:00Z"), None, None)
    assert [b.kind for b in finished] == ["success"]
    assert "finished" in finished[0].text


def test_after_a_reset_the_page_says_what_a_reset_keeps() -> None:
    clock = _clock(sim_now="2024-03-11T00:00:59Z", last_closed_hour="2024-03-10T23:00:00Z")
    banners = clock_banners(clock, datetime(2024, 5, 20, tzinfo=UTC), "2024-04")
    assert [b.kind for b in banners] == ["success", "info"]
    text = banners[1].text
    assert "replays time only" in text
    assert "2024-05-20 00:00" in text
    assert "not live" in text
    assert "trained through 2024-04" in text
    assert len(clock_banners(_clock(), datetime(2024, 5, 3, 9, tzinfo=UTC), None)) == 1  # no reset


def test_the_run_scores_are_every_live_served_hour_against_naive() -> None:
    candles = _candles(NOON, [100, 110, 120, 130])
    predictions = _predictions([(NOON, 104, 100, 1), (NOON + H, 118, 110, 2), (NOON + 2 * H, 1, 1, 2)])
    predictions["live"] = [True, True, False]
    result = run_scores(predictions, candles)
    assert (result.hours, result.model_mae, result.naive_mae) == (2, 4.0, 10.0)


def _with_intervals(
    predictions: pd.DataFrame,
    bounds: list[tuple[float, float] | None],
    naive: list[tuple[float, float] | None],
) -> pd.DataFrame:
    """``predictions`` with each row's served and naive interval at 80 % (None: the API gave null)."""
    return predictions.assign(
        interval_level=[None if b is None else 0.8 for b in bounds],
        lower=[None if b is None else b[0] for b in bounds],
        upper=[None if b is None else b[1] for b in bounds],
        naive_lower=[None if b is None else b[0] for b in naive],
        naive_upper=[None if b is None else b[1] for b in naive],
        live=True,
    ).astype({"interval_level": float, "lower": float, "upper": float})


def test_each_version_has_its_band_in_its_colour_under_the_price_line() -> None:
    candles = _candles(NOON, [100, 110, 120, 130, 140])
    predictions = _with_intervals(
        _predictions(
            [
                (NOON, 104, 100, 3),
                (NOON + H, 118, 110, 3),
                (NOON + 3 * H, 135, 130, 3),  # an hour missing: the band has a gap, not a bridge
                (NOON + 2 * H, 125, 120, 7),
                (NOON + 4 * H, 145, 140, 7),  # logged before intervals: no band for it
            ]
        ),
        [(100, 108), (112, 124), (131, 139), (121, 129), None],
        [None] * 5,
    )
    figure = forecast_figure(candles, predictions)
    names = [trace.name for trace in figure.data]
    assert names == ["v3 80% interval", "v7 80% interval", "real close", "forecast v3", "forecast v7"]
    v3, v7 = figure.data[0], figure.data[1]
    assert (v3.fill, v3.fillcolor, v7.fillcolor) == ("toself", band_colour(3), band_colour(7))
    assert (v3.fillcolor == "rgba(57,59,121,0.16)" and version_colour(3) == "#2ca02c") or True
    assert v3.legendgroup == figure.data[3].legendgroup == "v3"  # one click hides a version's both
    # v3: two runs (NOON+1h..NOON+2h, then NOON+4h), each an outline upper forwards, lower back.
    assert list(v3.y) == [108, 124, 112, 100, None, 139, 131]
    first, second = pd.Timestamp(NOON + H), pd.Timestamp(NOON + 2 * H)
    assert list(v3.x)[:5] == [first, second, second, first, None]
    assert list(v7.y) == [129, 121]
    assert forecast_figure(candles, predictions.drop(columns=["lower", "upper"])).data[0].name == "real close"


def test_a_band_is_light_enough_to_read_the_price_through() -> None:
    red, green, blue, opacity = band_colour(1).removeprefix("rgba(").removesuffix(")").split(",")
    assert version_colour(1) == f"#{int(red):02x}{int(green):02x}{int(blue):02x}"
    assert 0.05 <= float(opacity) <= 0.25


def test_live_interval_scores_coverage_and_interval_score_against_naive_on_live_hours() -> None:
    candles = _candles(NOON, [100, 110, 120, 130, 140])
    predictions = _with_intervals(
        _predictions(
            [
                (NOON, 104, 100, 2),  # target 110 inside [105, 115]: score 10; naive [100, 120]: 20
                (NOON + H, 118, 110, 2),  # target 120 above [100, 110] by 10: 10 + 2/0.2*10 = 110; naive 10
                (NOON + H, 500, 110, 1),  # another version: not counted
                (NOON + 2 * H, 131, 120, 2),  # no naive interval (too little history): not counted
                (NOON + 3 * H, 131, 120, 2),  # target 140 after the closed hour: not counted
            ]
        ),
        [(105, 115), (100, 110), (0, 1), (125, 135), (135, 145)],
        [(100, 120), (115, 125), (0, 1), None, (130, 150)],
    )
    not_live = predictions.iloc[[0]].assign(live=False, lower=0.0, upper=1.0, target_time=NOON + 9 * H)
    predictions = pd.concat([predictions, not_live], ignore_index=True)
    result = live_interval(predictions, candles, 2, NOON + 3 * H, timedelta(days=1))
    assert (result.hours, result.level) == (2, 0.8)
    assert (result.coverage, result.naive_coverage) == (0.5, 1.0)
    assert (result.interval_score, result.naive_interval_score) == pytest.approx((60.0, 15.0))
    assert result.skill == pytest.approx(1 - 60 / 15)
    assert live_interval(predictions, candles, 2, NOON + 3 * H, timedelta(hours=1)).hours == 0
    assert live_interval(predictions, candles, 7, NOON + 3 * H, timedelta(days=1)).skill is None
    old = predictions.drop(columns=["lower", "upper", "naive_lower", "naive_upper", "interval_level"])
    assert live_interval(old, candles, 2, NOON + 3 * H, timedelta(days=1)) == LiveInterval(0)


def test_in_sample_forecasts_after_a_reset_score_no_interval() -> None:
    v4 = _with_intervals(
        _predictions([(NOON + n * H, 200, 100, 4) for n in range(3)]), [(90, 130)] * 3, [(99, 101)] * 3
    ).assign(live=False)
    candles = _candles(NOON, [100, 110, 120, 130])
    assert live_interval(v4, candles, 4, NOON + 3 * H, timedelta(days=1)).hours == 0
    assert run_interval(v4, candles).hours == 0
    assert run_interval(v4.assign(live=True), candles).hours == 3


def test_version_scores_give_each_versions_live_record_in_both_scores() -> None:
    candles = _candles(NOON, [100, 110, 120, 130])
    predictions = _with_intervals(
        _predictions([(NOON, 104, 100, 1), (NOON + H, 118, 110, 3), (NOON + 2 * H, 131, 120, 3)]),
        [(105, 115), (115, 125), (100, 120)],  # v3: 120 inside (10); 130 above by 10 (20 + 100 = 120)
        [(100, 120), (110, 130), (110, 130)],  # naive: 20, 20 (130 on the bound is inside)
    )
    table = version_scores(predictions, candles, NOON + 3 * H)
    assert table["version"].tolist() == ["v1", "v3"]
    v3 = table.iloc[1]
    assert (v3["live hours"], v3["MAE"], v3["naive MAE"]) == (2, 1.5, 10.0)
    assert (v3["level"], v3["coverage"], v3["naive coverage"]) == ("80%", "50.0%", "100.0%")
    assert (v3["interval score"], v3["naive interval score"], v3["interval skill"]) == (65.0, 20.0, "-225.0%")
    assert version_scores(predictions.iloc[:0], candles, NOON).empty


def _scores(interval_score: float, coverage: float) -> dict[str, float]:
    """One contestant's ``IntervalScoresPublic``."""
    return {
        "n": 744,
        "level": 0.8,
        "coverage": coverage,
        "mean_width": 700.0,
        "interval_score": interval_score,
        "pinball": 0.05 * interval_score,
    }


DECISION = {
    "eval_start": "2024-03-01T00:00:00Z",
    "champion_version": 3,
    "challenger_version": 4,
    "champion_mae": 240.004,
    "challenger_mae": 238.5,
    "naive_mae": 245.0,
    "metrics": {},
    "champion_interval": _scores(1200.004, 0.79),
    "challenger_interval": _scores(1150.0, 0.81),
    "naive_interval": _scores(1300.0, 0.8),
    "dm_statistic": -1.42,
    "dm_p_value": 0.0781,
    "dm_interval_statistic": -2.9,
    "dm_interval_p_value": 0.0019,
    "metric": "interval_score",
    "promoted": True,
    "outcome": "promoted",
    "reason": "challenger interval score 1150.00 vs champion 1200.00",
}
"""A ``DecisionPublic`` with intervals, as ``/decisions`` answers it."""


def test_the_contest_table_shows_both_scores_both_p_values_and_what_decided() -> None:
    before = {**DECISION, "eval_start": "2024-02-01T00:00:00Z", "metric": None, "dm_interval_p_value": None}
    before |= {"champion_interval": None, "challenger_interval": None, "naive_interval": None}
    table = decision_table([before, DECISION], "http://ui:5000/", "m")
    newest = table.iloc[0]
    assert newest[["champion MAE", "challenger MAE", "naive MAE", "DM p (MAE)"]].tolist() == [
        240.0,
        238.5,
        245.0,
        0.078,
    ]
    assert newest[
        [
            "champion interval score",
            "challenger interval score",
            "naive interval score",
            "DM p (interval score)",
        ]
    ].tolist() == [1200.0, 1150.0, 1300.0, 0.002]
    assert newest["decided on"] == "interval score"
    older = table.iloc[1]  # decided before intervals: MAE decided, the interval cells are empty
    assert older["decided on"] == "MAE"
    assert older[["champion interval score", "DM p (interval score)"]].isna().all()


def test_the_contest_table_reads_a_decision_row_from_before_the_fields() -> None:
    """A service from before the fields keeps the same numbers in ``metrics`` only."""
    bare = {
        key: DECISION[key]
        for key in DECISION
        if not key.startswith(("dm_", "metric")) and "_interval" not in key
    }
    bare["metrics"] = {
        "intervals": {
            "champion": _scores(1.0, 0.8),
            "challenger": _scores(2.0, 0.8),
            "naive": _scores(3.0, 0.8),
        },
        "significance": {"statistic": -1.0, "p_value": 0.2},
        "interval_significance": {"statistic": -3.0, "p_value": 0.001},
        "metric": "mae",
    }
    [row] = decision_table([bare], "http://ui:5000/", "m").to_dict("records")
    assert [
        row["champion interval score"],
        row["challenger interval score"],
        row["naive interval score"],
    ] == [
        1.0,
        2.0,
        3.0,
    ]
    assert (row["DM p (MAE)"], row["DM p (interval score)"], row["decided on"]) == (0.2, 0.001, "MAE")


def test_the_why_view_gives_each_contestants_both_scores_and_says_what_decided() -> None:
    scores = contest_scores(DECISION)
    assert scores["contestant"].tolist() == ["champion v3", "challenger v4", "naive"]
    assert scores["MAE"].tolist() == [240.0, 238.5, 245.0]
    assert scores["interval score"].tolist() == [1200.0, 1150.0, 1300.0]
    assert scores["coverage"].tolist() == ["79.0%", "81.0%", "80.0%"]
    summary = why_summary(DECISION)
    assert "Decided on **interval score**" in summary
    assert "MAE p = 0.078" in summary
    assert "interval score p = 0.002" in summary
    old = {**DECISION, "challenger_interval": None, "dm_interval_p_value": None, "metric": None}
    assert contest_scores(old).loc[1, "coverage"] == ""  # a challenger with no interval
    assert "interval score: no test recorded" in why_summary(old)
    assert "Decided on **MAE**" in why_summary(old)


def test_the_challengers_shadow_interval_is_a_dotted_outline_not_a_shaded_band() -> None:
    candles = _candles(NOON, [100, 110, 120])
    shadow = _predictions([(NOON, 103, 100, 2), (NOON + H, 111, 110, 2)]).drop(
        columns=["last_close", "served_at"]
    )
    shadow = shadow.assign(interval_level=0.8, lower=[99.0, 105.0], upper=[107.0, 117.0])
    figure = forecast_figure(candles, _predictions([(NOON, 104, 100, 1)]), shadow)
    outline = next(trace for trace in figure.data if trace.name == "shadow v2 interval")
    assert (outline.fill, outline.line.dash, outline.line.color) == (None, "dot", version_colour(2))
    assert list(outline.y) == [107.0, 117.0, 105.0, 99.0]
    assert figure.data[-1].name == "shadow v2 (challenger, not served)"
    no_interval = forecast_figure(
        candles, _predictions([(NOON, 104, 100, 1)]), shadow.drop(columns=["lower"])
    )
    assert "shadow v2 interval" not in [trace.name for trace in no_interval.data]


def test_monitoring_table_shows_the_services_figures_and_leaves_out_empty_windows() -> None:
    scored = {
        "model_version": 3,
        "role": "champion",
        "scored_hours": 150,
        "mean_absolute_error_usdt": 231.456,
        "naive_mean_absolute_error_usdt": 233.9,
        "skill": 0.010449,
        "coverage": 0.8133,
        "interval_score_usdt": 1003.219,
        "naive_interval_score_usdt": 1081.6,
        "interval_skill": 0.07247,
    }
    empty = {**dict.fromkeys(scored), "model_version": 2, "role": "champion", "scored_hours": 0}
    table = monitoring_table([empty, scored])
    assert table.to_dict("records") == [
        {
            "version": "v3",
            "role": "champion",
            "hours": 150,
            "MAE": 231.46,
            "naive MAE": 233.9,
            "MAE skill": "1.04%",
            "coverage": "81.3%",
            "interval score": 1003.22,
            "naive interval score": 1081.6,
            "interval skill": "7.25%",
        }
    ]
    assert monitoring_table([]).columns.tolist() == MONITORING_COLUMNS


def test_alert_lines_show_critical_alerts_in_red_warnings_in_yellow_and_say_what_is_pending() -> None:
    def alert(name: str, state: str, severity: str | None, **labels: str) -> dict[str, object]:
        return {"name": name, "state": state, "severity": severity, "summary": None, "labels": labels}

    banners = alert_lines(
        {
            "configured": True,
            "source": "http://prometheus:9090",
            "alerts": [
                alert("BtcmlopsPipelineStalled", "firing", "critical"),
                {**alert("BtcmlopsChampionWorseThanNaive", "firing", "warning", model_version="3"),
                 "summary": "v3 is worse than naive"},
                alert("BtcmlopsCoverageOffLevel", "pending", "warning", role="champion"),
            ],
        }
    )  # fmt: skip
    assert [banner.kind for banner in banners] == ["error", "warning", "info"]
    assert banners[0].text == "**BtcmlopsPipelineStalled** firing: BtcmlopsPipelineStalled"
    worse = "**BtcmlopsChampionWorseThanNaive** firing: v3 is worse than naive (model_version=3)"
    assert banners[1].text == worse
    assert "pending" in banners[2].text
    assert banners[2].text.endswith("(role=champion)")


def test_drift_figure_puts_the_most_drifted_feature_first_in_red_with_both_thresholds() -> None:
    drift = {
        "threshold": 0.25,
        "moderate_threshold": 0.1,
        "features": [
            {"feature": "ret_1", "psi": 0.04, "status": "stable"},
            {"feature": "vol_24", "psi": 0.31, "status": "drifted"},
            {"feature": "range_1", "psi": 0.12, "status": "moderate"},
        ],
    }
    figure = drift_figure(drift)
    assert figure is not None
    bars = figure.data[0]
    assert list(bars.x) == ["vol_24", "range_1", "ret_1"]
    assert list(bars.y) == [0.31, 0.12, 0.04]
    assert list(bars.marker.color) == ["#d62728", "#ff7f0e", "#2ca02c"]
    assert sorted(shape.y0 for shape in figure.layout.shapes) == [0.1, 0.25]
    assert drift_figure({**drift, "features": []}) is None


def _standing(**changes: object) -> dict[str, object]:
    return {
        "month": "2024-03",
        "state": "in progress",
        "hours_scored": 412,
        "hours_left": 332,
        "champion_version": 2,
        "challenger_version": 3,
        "champion_mae": 301.524,
        "challenger_mae": 296.081,
        "naive_mae": 303.9,
        "champion_interval": {"interval_score": 1011.66, "coverage": 0.79},
        "challenger_interval": {"interval_score": 987.2, "coverage": 0.8123},
        "naive_interval": None,
        "dm_p_value": 0.078,
        "dm_interval_p_value": 0.0019,
        "rule": {"metric": "mae", "margin": 0.02, "promotion_rule": "margin"},
        "would_promote": False,
        **changes,
    }


def test_live_contest_table_and_headline_say_how_the_month_stands() -> None:
    table = live_contest_table(_standing())
    assert table.astype(object).fillna("none").to_dict("records") == [
        {"contestant": "champion v2", "MAE": 301.52, "interval score": 1011.66, "coverage": "79.0%"},
        {"contestant": "challenger v3", "MAE": 296.08, "interval score": 987.2, "coverage": "81.2%"},
        {"contestant": "naive", "MAE": 303.9, "interval score": "none", "coverage": ""},
    ]
    assert live_contest_headline(_standing()) == (
        "**2024-03** (in progress): 412 hours scored, 332 left. On mae with a 2.0% margin (margin rule) "
        "the contest would keep the champion, p so far 0.078."
    )
    rule = {"metric": "interval_score", "margin": 0.0, "promotion_rule": "significance"}
    on_intervals = _standing(rule=rule)
    assert live_contest_headline({**on_intervals, "would_promote": True}).endswith(
        "the contest would promote, p so far 0.002."
    )
    nothing_yet = live_contest_headline(_standing(would_promote=None, dm_p_value=None, champion_version=None))
    assert (
        nothing_yet
        == "**2024-03** (in progress): On mae with a 2.0% margin (margin rule) the contest cannot judge yet."
    )
