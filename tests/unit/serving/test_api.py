"""The inference service in-process (TestClient runs its lifespan) on a small replay's real stores."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from btcmlops.model import naive_interval
from btcmlops.registry import CHAMPION, ModelRegistry
from btcmlops.replay import ReplayResult
from btcmlops.serving import create_app
from btcmlops.settings import Settings
from btcmlops.store import LoggedPrediction, PriceStore
from factories import make_candles, small_replay
from services import MYSQL_SERVER_URL, mariadb_database, wait_ready, wait_until

# One xdist worker (make test) runs the module: the module's own replay is made once.
pytestmark = pytest.mark.xdist_group("serving_api")

GAP = "2021-03-10 05:00"


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory, mlflow_cache: Path) -> ReplayResult:
    """Jan-Apr 2021 with one missing hour: v1 (Jan-Feb), challengers through March (and none after April)."""
    home = tmp_path_factory.mktemp("serving")
    candles = make_candles("2021-01-01", "2021-04-30 23:00", ar=0.3, drop=(GAP,))
    return small_replay(home, candles, num_boost_round=30, mlflow_cache=mlflow_cache)


def _settings(replay: ReplayResult, **serve: Any) -> Settings:
    return Settings(
        home=replay.out_dir.parent,
        store={"url": f"sqlite:///{replay.out_dir / 'prices.db'}"},
        mlflow={"tracking_uri": replay.tracking_uri},
        # read_workers 0: pages on a thread, not in new processes (test_read_workers.py runs those)
        serve={"poll_interval_s": 0.05, "log_flush_interval_s": 0.05, "read_workers": 0, **serve},
    )


@pytest.fixture
def client(replay: ReplayResult) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(replay))) as test_client:
        wait_ready(test_client)
        yield test_client


def test_forecast_by_timestamp_is_the_replay_forecast_of_the_same_version(
    client: TestClient, replay: ReplayResult
) -> None:
    predictions = pd.read_csv(replay.predictions_path)
    champion = replay.summary["final_champion"]
    row = predictions.loc[(predictions["model_version"] == champion)].iloc[-1]

    response = client.post("/predict", json={"timestamp": row["timestamp"]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timestamp"] == row["timestamp"]
    assert body["target_time"] == row["target_time"]
    assert body["predicted_close"] == pytest.approx(row["predicted_close"], rel=1e-12)
    assert body["last_close"] == pytest.approx(row["naive_close"])
    assert body["model"]["version"] == champion
    assert body["model"]["name"] == Settings().mlflow.registered_model
    interval = body["interval"]  # the replay's interval of the same version and hour
    assert interval["level"] == row["interval_level"] == Settings().model.interval_level
    assert interval["lower"] == pytest.approx(row["lower_close"], rel=1e-12)
    assert interval["upper"] == pytest.approx(row["upper_close"], rel=1e-12)
    assert interval["lower"] < interval["upper"]


def test_forecast_from_sent_candles_equals_forecast_from_the_store(client: TestClient) -> None:
    candles = make_candles("2021-01-01", "2021-04-30 23:00", ar=0.3, drop=(GAP,))
    window = candles.loc[
        (candles["open_time"] > "2021-04-10 00:00Z") & (candles["open_time"] <= "2021-04-12 12:00Z")
    ]
    payload = [{**row, "open_time": row["open_time"].isoformat()} for row in window.to_dict(orient="records")]

    sent = client.post("/predict", json={"candles": payload})
    stored = client.post("/predict", json={"timestamp": "2021-04-12T12:00:00Z"})

    assert sent.status_code == stored.status_code == 200, sent.text
    assert sent.json()["predicted_close"] == pytest.approx(stored.json()["predicted_close"], rel=1e-9)
    sent_interval, stored_interval = sent.json()["interval"], stored.json()["interval"]
    assert sent_interval["level"] == stored_interval["level"]
    assert sent_interval["lower"] == pytest.approx(stored_interval["lower"], rel=1e-9)
    assert sent_interval["upper"] == pytest.approx(stored_interval["upper"], rel=1e-9)


def test_batch_answers_what_it_can_and_says_why_not(client: TestClient) -> None:
    response = client.post(
        "/predict/batch",
        json={"timestamps": ["2021-04-01T00:00:00Z", "2030-01-01T00:00:00Z", "2021-04-01T01:00:00Z"]},
    )
    assert response.status_code == 200
    body = response.json()
    assert [p["timestamp"] for p in body["predictions"]] == ["2021-04-01T00:00:00Z", "2021-04-01T01:00:00Z"]
    assert [(e["index"], e["status"]) for e in body["errors"]] == [(1, 404)]
    for prediction in body["predictions"]:  # each as /predict answers it, its interval included
        alone = client.post("/predict", json={"timestamp": prediction["timestamp"]}).json()
        assert prediction["interval"] == alone["interval"]
        assert prediction["interval"]["lower"] < prediction["interval"]["upper"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"timestamp": "2021-04-01T00:30:00Z"}, 422, "is not on the hour"),
        ({"timestamp": "2031-01-01T00:00:00Z"}, 404, "no candle at 2031-01-01T00:00Z"),
        ({"timestamp": "2021-03-10T12:00:00Z"}, 422, "crosses the missing hour 2021-03-10T05:00Z"),
        ({"timestamp": "2021-01-01T10:00:00Z"}, 422, "not enough history"),
        ({"timestamp": "2021-04-01T00:00:00"}, 422, "timezone"),
        ({}, 422, "exactly one of 'timestamp' or 'candles'"),
        ({"candles": []}, 422, "0 candles sent; the feature window needs at least 25"),
    ],
    ids=["off-hour", "unknown-hour", "gap", "no-history", "naive-time", "empty", "too-few-candles"],
)
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(
    client: TestClient, body: dict[str, Any], status: int, detail: str
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == status
    assert detail in response.text


def test_bad_candles_are_named_by_index_and_field(client: TestClient) -> None:
    candles = make_candles("2021-04-01", "2021-04-02 23:00")
    payload = [
        {**row, "open_time": row["open_time"].isoformat()} for row in candles.to_dict(orient="records")
    ]
    broken = [dict(c) for c in payload]
    broken[3]["high"] = broken[3]["low"] / 2
    assert "candles[3].high" in client.post("/predict", json={"candles": broken}).json()["detail"]
    skipping = payload[:5] + payload[6:]
    assert (
        "is not one hour after candles[4]"
        in client.post("/predict", json={"candles": skipping}).json()["detail"]
    )


def test_malformed_json_and_oversized_batch(replay: ReplayResult) -> None:
    with TestClient(create_app(_settings(replay, max_batch=2))) as test_client:
        wait_ready(test_client)
        malformed = test_client.post(
            "/predict", content=b'{"timestamp": ', headers={"content-type": "application/json"}
        )
        assert malformed.status_code == 422
        assert "JSON decode error" in malformed.text
        big = test_client.post("/predict/batch", json={"timestamps": ["2021-04-01T00:00:00Z"] * 3})
        assert big.status_code == 413
        assert "at most 2 per batch" in big.text


def test_the_log_keeps_each_served_interval_and_predictions_give_naives_beside_it(
    client: TestClient, replay: ReplayResult
) -> None:
    """``/predictions``: the interval served (null for a row logged before intervals) and naive's interval
    for the same hour and level, computed from the store's candles as the contest computes it."""
    store = PriceStore(_settings(replay).store.url or "")
    old_hour, early_hour = pd.Timestamp("2021-04-20T03:00Z"), pd.Timestamp("2021-01-01T12:00Z")
    store.log_predictions(  # rows of a service from before intervals: no interval logged
        [
            LoggedPrediction(hour, hour + timedelta(hours=1), 1.0, 1.0, 1, hour, None)
            for hour in (old_hour.to_pydatetime(), early_hour.to_pydatetime())
        ]
    )
    hours = ["2021-04-20T00:00:00Z", "2021-04-20T01:00:00Z"]
    answers = {hour: client.post("/predict", json={"timestamp": hour}).json() for hour in hours}

    def page() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = client.get(
            "/predictions", params={"start": "2021-04-20T01:00:00Z", "end": "2021-04-20T04:00:00Z"}
        ).json()
        return rows

    wait_until(lambda: len(page()) == 3, timeout_s=10, what="the forecasts in the log", on_timeout=page)
    rows = {row["timestamp"]: row for row in page()}
    early = client.get(
        "/predictions", params={"start": "2021-01-01T13:00:00Z", "end": "2021-01-01T13:00:00Z"}
    )
    candles = store.read_candles()
    store.dispose()

    level = Settings().model.interval_level
    for hour in hours:
        assert rows[hour]["interval"] == answers[hour]["interval"]
        assert rows[hour]["interval"]["level"] == level
    assert rows["2021-04-20T03:00:00Z"]["interval"] is None
    at = pd.DatetimeIndex([pd.Timestamp(hour) for hour in [*hours, "2021-04-20T03:00:00Z"]])
    lower, upper = naive_interval(candles, at, level)
    naive = [rows[f"{moment:%Y-%m-%dT%H:%M:%SZ}"]["naive_interval"] for moment in at]
    assert naive == [
        {"level": level, "lower": low, "upper": high} for low, high in zip(lower, upper, strict=True)
    ]
    assert all(item["lower"] < item["upper"] for item in naive)
    (first,) = early.json()  # 12 hourly returns before it, fewer than naive's interval needs
    assert (first["interval"], first["naive_interval"]) == (None, None)


def test_no_champion_means_503_then_ready_once_one_appears(replay: ReplayResult, tmp_path: Path) -> None:
    settings = _settings(replay)
    registry = ModelRegistry(
        replay.tracking_uri, settings.mlflow.experiment, settings.mlflow.registered_model
    )
    champion = registry.get_by_alias(CHAMPION)
    assert champion is not None
    registry.delete_alias(CHAMPION)
    try:
        with TestClient(create_app(settings)) as test_client:
            response = test_client.post("/predict", json={"timestamp": "2021-04-01T00:00:00Z"})
            assert response.status_code == 503
            assert "no model loaded yet" in response.text
            assert test_client.get("/readyz").status_code == 503
            registry.set_alias(CHAMPION, champion.version)
            wait_ready(test_client)
            assert test_client.post("/predict", json={"timestamp": "2021-04-01T00:00:00Z"}).status_code == 200
    finally:
        registry.set_alias(CHAMPION, champion.version)


def test_alias_moves_are_followed_and_logged_per_version(replay: ReplayResult) -> None:
    settings = _settings(replay)
    registry = ModelRegistry(
        replay.tracking_uri, settings.mlflow.experiment, settings.mlflow.registered_model
    )
    final = registry.get_by_alias(CHAMPION)
    assert final is not None
    other = 1 if final.version != 1 else 2
    try:
        with TestClient(create_app(settings)) as test_client:
            wait_ready(test_client)
            served = set()
            for version in (other, final.version):
                registry.set_alias(CHAMPION, version)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    body = test_client.post("/predict", json={"timestamp": "2021-04-15T00:00:00Z"}).json()
                    if body["model"]["version"] == version:
                        break
                served.add(body["model"]["version"])
                assert body["model"]["version"] == version
            assert test_client.get("/model").json()["version"] == final.version
            metrics = test_client.get("/metrics").text
            assert f"btcmlops_served_model_version {float(final.version)}" in metrics
            assert "btcmlops_model_swaps_total 3.0" in metrics

            def logged() -> set[int]:  # the log is written off the request path, every flush interval
                rows = test_client.get(
                    "/predictions", params={"start": "2021-04-15T01:00:00Z", "end": "2021-04-15T01:00:00Z"}
                ).json()
                return {row["model_version"] for row in rows}

            wait_until(
                lambda: logged() >= {other, final.version},
                timeout_s=10,
                what="both versions' forecasts in the log",
                on_timeout=lambda: str(logged()),
                every_s=0.05,
            )
            assert logged() == {other, final.version}
    finally:
        registry.set_alias(CHAMPION, final.version)
    store = PriceStore(settings.store.url or "")
    assert {p.model_version for p in store.read_predictions()} >= {other, final.version}
    store.dispose()


def test_read_endpoints(client: TestClient, replay: ReplayResult) -> None:
    candles = client.get(
        "/candles", params={"start": "2021-04-01T00:00:00Z", "end": "2021-04-01T05:00:00Z"}
    ).json()
    assert [c["open_time"] for c in candles][:2] == ["2021-04-01T00:00:00Z", "2021-04-01T01:00:00Z"]
    assert len(candles) == 6
    decisions = client.get("/decisions").json()
    assert [d["challenger_version"] for d in decisions] == [
        d["challenger_version"] for d in replay.summary["decisions"]
    ]
    info = client.get("/model").json()
    assert info["training_window"]["trained_through"] in {"2021-02", "2021-03"}
    assert client.get("/healthz").json() == {"status": "ok"}
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/predict/batch", "/model", "/candles", "/predictions", "/decisions"} <= set(
        schema["paths"]
    )


@pytest.mark.mariadb
def test_a_database_outage_does_not_stop_forecasts(replay: ReplayResult) -> None:
    """The price store goes away (its database is dropped): forecasts go on from memory, /readyz says why."""
    databases = mariadb_database()
    url = next(databases)
    try:
        store = PriceStore(url)
        store.migrate()
        source = PriceStore(f"sqlite:///{replay.out_dir / 'prices.db'}")
        store.upsert_candles(source.read_candles())
        source.dispose()
        store.dispose()
        settings = _settings(replay).model_copy(
            update={"store": Settings().store.model_copy(update={"url": url})}
        )
        with TestClient(create_app(settings)) as test_client:
            wait_ready(test_client)
            assert test_client.post("/predict", json={"timestamp": "2021-04-10T00:00:00Z"}).status_code == 200
            server = create_engine(MYSQL_SERVER_URL)
            with server.begin() as connection:
                connection.execute(text(f"DROP DATABASE `{make_url(url).database}`"))
            server.dispose()

            answers = [
                test_client.post("/predict", json={"timestamp": f"2021-04-{day:02d}T12:00:00Z"}).status_code
                for day in range(1, 29)
            ]
            ready = test_client.get("/readyz")

            assert answers == [200] * 28
            assert ready.status_code == 503
            assert "price store" in ready.json()["detail"]
            log = test_client.app.state.prediction_log  # type: ignore[attr-defined]
            wait_until(  # a flush attempt: the log keeps what it could not write
                lambda: log.last_error is not None,
                timeout_s=10,
                what="a failed flush",
                on_timeout=lambda: "no flush error",
                every_s=0.05,
            )
            assert log.last_error is not None
    finally:
        next(databases, None)


def test_the_api_docs_load_nothing_from_the_internet(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui-bundle.js" in page.text
    external = [part for part in page.text.split('"') if part.startswith(("http://", "https://", "//"))]
    assert external == [], external  # FastAPI's default page loads Swagger UI from a CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "redoc.standalone.js"):
        response = client.get(f"/docs/assets/{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 500, asset
    assert client.get("/openapi.json").json()["info"]["title"] == "btcmlops inference service"
    redoc = client.get("/redoc")
    assert redoc.status_code == 200
    assert '<script src="/docs/redoc.standalone.js">' in redoc.text  # the shipped bundle less its CDN logo
    assert "img-src 'self'" in redoc.headers["content-security-policy"]
    bundle = client.get("/docs/redoc.standalone.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 500_000
    assert b"cdn.redoc.ly" not in bundle.content
    assert b"cdn.redoc.ly" in client.get("/docs/assets/redoc.standalone.js").content  # the shipped one
