"""The replay end to end on the shipped two years, with no servers: outputs agree with the registry."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

from btcmlops.contest import score
from btcmlops.contest.scoring import score_interval
from btcmlops.registry import CHALLENGER, CHAMPION, ModelRegistry
from btcmlops.replay import ReplayResult
from btcmlops.replay.report import png_figure, report_frames
from btcmlops.settings import Settings
from btcmlops.store import PriceStore

# Slow: the two-year replay (twelve models trained, a contest for each month of 2024).
# One xdist worker (make test) runs the module; the two-year replay is the run's (made once).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("replay")]


@pytest.fixture(scope="module")
def replay(shipped_replay: ReplayResult) -> ReplayResult:
    """The run's one replay of the shipped two years (``tests/conftest.py``): these tests only read it."""
    return shipped_replay


@pytest.fixture(scope="module")
def summary(replay: ReplayResult) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(replay.summary_path.read_text())
    return loaded


def test_v1_trained_on_2023_then_eleven_shadow_month_decisions(summary: dict[str, Any]) -> None:
    trainings = summary["trainings"]
    assert [t["version"] for t in trainings] == list(range(1, 13))
    assert trainings[0]["role"] == "champion"
    assert trainings[0]["trained_through"] == "2023-12"
    assert trainings[0]["train_end"] == "2023-12-31T23:00:00+00:00"
    assert [t["trained_through"] for t in trainings[1:]] == [f"2024-{m:02d}" for m in range(1, 12)]
    assert [d["month"] for d in summary["decisions"]] == [f"2024-{m:02d}" for m in range(2, 13)]
    for decision, trained in zip(summary["decisions"], trainings[1:], strict=True):
        assert decision["challenger_version"] == trained["version"]
        assert decision["eval_start"] > trained["train_end"]  # scored only on unseen hours
    assert summary["promotions"] == sum(d["promoted"] for d in summary["decisions"])
    assert summary["data"]["rows"] == 17_543
    assert summary["data"]["gaps"] == [
        {"start": "2023-03-24T13:00:00+00:00", "end": "2023-03-24T13:00:00+00:00", "missing_hours": 1}
    ]


def test_predictions_cover_every_served_hour_of_2024(replay: ReplayResult, summary: dict[str, Any]) -> None:
    predictions = pd.read_csv(replay.predictions_path)
    assert list(predictions.columns) == [
        "timestamp", "target_time", "actual_close", "predicted_close", "lower_close", "upper_close",
        "interval_level", "naive_close", "naive_lower", "naive_upper", "model_version", "role",
    ]  # fmt: skip
    served = predictions.loc[predictions["role"] == "champion"]
    assert len(served) == 366 * 24  # every hour of 2024 is forecast, from 2023-12-31T23:00 on
    assert served["target_time"].iloc[0] == "2024-01-01T00:00:00Z"
    assert served["timestamp"].iloc[0] == "2023-12-31T23:00:00Z"
    shadow = predictions.loc[predictions["role"] == "challenger"]
    assert len(shadow) == 366 * 24 - 31 * 24  # a challenger shadows every month but January
    # The served scores in the summary are recomputed from the file.
    overall = score(served["actual_close"], served["predicted_close"], served["naive_close"])
    assert summary["overall"]["served"]["mae"] == pytest.approx(overall.mae)
    naive = score(served["actual_close"], served["naive_close"], served["naive_close"])
    assert summary["overall"]["naive"]["mae"] == pytest.approx(naive.mae)


def test_registry_agrees_with_the_summary(replay: ReplayResult, summary: dict[str, Any]) -> None:
    settings = Settings()
    registry = ModelRegistry(
        replay.tracking_uri, settings.mlflow.experiment, settings.mlflow.registered_model
    )
    champion = registry.get_by_alias(CHAMPION)
    assert champion is not None
    assert champion.version == summary["final_champion"]
    assert registry.get_by_alias(CHALLENGER) is None
    statuses = {v.version: v.status for v in registry.versions()}
    expected = {t["version"]: "archived" for t in summary["trainings"]}
    expected[summary["final_champion"]] = "production"
    assert statuses == expected
    runs = MlflowClient(tracking_uri=replay.tracking_uri).search_runs(
        [registry.experiment_id], max_results=100
    )
    kinds = pd.Series([r.data.tags["btcmlops.kind"] for r in runs]).value_counts().to_dict()
    assert kinds == {"training": 12, "contest": 11}


def test_store_holds_the_decisions(replay: ReplayResult, summary: dict[str, Any]) -> None:
    store = PriceStore(f"sqlite:///{replay.out_dir / 'prices.db'}")
    try:
        rows = store.list_decisions(Settings().mlflow.registered_model)
        assert store.candle_count() == 17_543
    finally:
        store.dispose()
    assert [(r.challenger_version, r.promoted) for r in rows] == [
        (d["challenger_version"], d["promoted"]) for d in summary["decisions"]
    ]
    assert [r.naive_mae for r in rows] == pytest.approx([d["naive_mae"] for d in summary["decisions"]])


def test_report_files_are_written(replay: ReplayResult) -> None:
    html = replay.report_html.read_text()
    assert "plotly" in html.lower()
    assert "serves" in html
    assert replay.report_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert replay.report_png.stat().st_size > 50_000
    assert replay.ui_command.startswith("MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false ")
    assert "/mlflow ui --backend-store-uri sqlite:///" in replay.ui_command  # the venv's own mlflow
    assert replay.ui_command.endswith("--workers 1 --port 5000")


def test_report_picture_labels_every_takeover_and_titles_what_it_shows(
    replay: ReplayResult, summary: dict[str, Any]
) -> None:
    served, monthly = report_frames(pd.read_csv(replay.predictions_path), summary)
    figure = png_figure(served, monthly, summary)
    figure.canvas.draw()  # lays out the legend and texts, so their places on the picture are known
    price = figure.axes[0]
    on_chart = [item for item in summary["champion_history"] if item["from_month"] <= "2024-12"]
    assert [item["version"] for item in on_chart] == [1, 3, 4, 7, 8, 9, 11]
    labels = {text.get_text(): text for text in price.texts}
    assert sorted(labels) == sorted(f"v{item['version']}" for item in on_chart)  # v1's included
    legend = price.get_legend().get_window_extent()
    hidden = [name for name, text in labels.items() if text.get_window_extent().overlaps(legend)]
    assert hidden == []  # the legend once covered v1's label
    title = figure.get_suptitle()
    assert "champions served: v1, v3, v4, v7, v8, v9, v11" in title
    assert f"final champion v{summary['final_champion']} serves from 2025-01, after the data" in title
    assert "v12" not in title.split("final champion")[0]


def test_the_served_interval_is_calibrated_on_2024_and_beats_naives(
    replay: ReplayResult, summary: dict[str, Any]
) -> None:
    """Issue 18's bar, on the year the replay serves: coverage within 2 points of the level over the
    year, no month off by more than 7, and a better interval score than naive's in most months."""
    predictions = pd.read_csv(replay.predictions_path)
    served = predictions.loc[predictions["role"] == "champion"]
    assert (served["interval_level"] == 0.8).all()
    assert (served["lower_close"] < served["upper_close"]).all()
    interval = score_interval(served["actual_close"], served["lower_close"], served["upper_close"], 0.8)
    naive = score_interval(served["actual_close"], served["naive_lower"], served["naive_upper"], 0.8)
    overall = summary["overall"]
    assert overall["served_interval"]["coverage"] == pytest.approx(interval.coverage)
    assert overall["naive_interval"]["interval_score"] == pytest.approx(naive.interval_score)
    assert abs(interval.coverage - 0.8) <= 0.02
    monthly = summary["monthly"]
    assert len(monthly) == 12
    assert max(abs(month["served_interval"]["coverage"] - 0.8) for month in monthly) <= 0.07
    assert overall["interval_skill"] > 0.03
    assert sum(month["interval_p_value"] < 0.05 for month in monthly) >= 9
