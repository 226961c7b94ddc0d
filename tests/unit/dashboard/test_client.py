"""The dashboard's client against the real inference service (in-process, on a small replay's stores),
and the page itself with Streamlit's own test runner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from streamlit.testing.v1 import AppTest

import btcmlops.dashboard
from btcmlops.dashboard import ServiceClient, ServiceError, ServiceUnavailableError
from btcmlops.replay import ReplayResult
from btcmlops.serving import create_app
from btcmlops.settings import Settings
from factories import ReplayOf
from services import free_port, wait_ready

# One xdist worker (make test) runs the module: the module's replay is copied once.
pytestmark = pytest.mark.xdist_group("dashboard_client")

KEY = "dashboard-key"
PAGE = Path(btcmlops.dashboard.__file__).with_name("app.py")


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory, replay_of: ReplayOf) -> ReplayResult:
    return replay_of(tmp_path_factory.mktemp("dashboard"), "2021-01-01", "2021-03-31 23:00")


@pytest.fixture
def service(replay: ReplayResult, tmp_path: Path) -> Iterator[ServiceClient]:
    store_copy = tmp_path / "prices.db"
    store_copy.write_bytes((replay.out_dir / "prices.db").read_bytes())
    settings = Settings(
        home=tmp_path,
        store={"url": f"sqlite:///{store_copy}"},
        mlflow={"tracking_uri": replay.tracking_uri},
        serve={"poll_interval_s": 0.05, "log_flush_interval_s": 0.05, "control_key": KEY, "read_workers": 0},
        clock={"start": "2021-03-20T00:00:00Z", "speed": 0.001},
    )
    with TestClient(create_app(settings)) as http:
        wait_ready(http)
        yield ServiceClient(http)


def test_clock_is_none_until_reset_and_changes_need_the_key(service: ServiceClient) -> None:
    assert service.clock() is None
    with pytest.raises(ServiceError, match="401: wrong or missing X-API-Key"):
        service.change_clock("reset", "wrong")
    service.change_clock("reset", KEY)
    clock = service.change_clock("pause", KEY)
    assert clock["paused"] is True
    assert service.clock() == {**clock, "sim_now": service.clock()["sim_now"]}  # type: ignore[index]


def test_asked_hours_come_back_in_the_prediction_log(service: ServiceClient) -> None:
    hours = [datetime(2021, 3, 20, tzinfo=UTC) + timedelta(hours=n) for n in range(150)]
    answered = service.predict_hours(hours)  # more than one batch
    assert answered["timestamp"].tolist() == hours

    deadline = time.monotonic() + 10
    while len(logged := service.predictions(hours[0], hours[-1] + timedelta(hours=2))) < 150:
        assert time.monotonic() < deadline, len(logged)
        time.sleep(0.05)
    assert logged["timestamp"].tolist() == hours
    assert str(logged["target_time"].dt.tz) == "UTC"
    assert set(logged["model_version"]) == {service.model()["version"]}
    columns = ["timestamp", "target_time", "predicted_close", "last_close", "model_version"]
    assert logged[columns].equals(answered[columns])
    candles = service.candles(hours[0], hours[-1])
    assert len(candles) == 150
    assert candles["close"].dtype == float


def test_a_service_that_does_not_answer_is_unavailable() -> None:
    client = ServiceClient.connect(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(ServiceUnavailableError, match="does not answer"):
        client.model()


def test_page_shows_a_banner_not_a_trace_when_the_service_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BTCMLOPS_DASHBOARD__API_URL", f"http://127.0.0.1:{free_port()}")
    page = AppTest.from_file(str(PAGE), default_timeout=30).run()
    assert not page.exception
    assert len(page.error) == 1
    assert "is not answering" in page.error[0].value
    assert "retries every 2 s" in page.error[0].value


def _api_shaped(request: httpx.Request) -> httpx.Response:
    """``/predictions``, ``/predict/batch`` and ``/shadow`` as the API answers them with intervals (its
    schemas: ``IntervalPublic``), one row from before intervals (nulls)."""
    interval = {"level": 0.8, "lower": 66884.9, "upper": 67352.6}
    base = {
        "timestamp": "2024-03-05T14:00:00Z",
        "target_time": "2024-03-05T15:00:00Z",
        "predicted_close": 67123.4,
    }
    if request.url.path == "/predictions":
        logged = {**base, "last_close": 67100.2, "model_version": 3, "served_at": "2024-03-05T14:00:01Z"}
        rows = [
            {**logged, "live": True, "interval": interval, "naive_interval": {**interval, "lower": 66790.3}},
            {**logged, "live": True, "interval": None, "naive_interval": interval},  # before intervals
            {**logged, "live": True, "interval": interval, "naive_interval": {**interval, "level": 0.9}},
        ]
        return httpx.Response(200, json=rows)
    if request.url.path == "/predict/batch":
        item = {
            **base,
            "last_close": 67100.2,
            "model": {"version": 3},
            "in_sample": False,
            "interval": interval,
        }
        return httpx.Response(200, json={"predictions": [item]})
    assert request.url.path == "/shadow"
    return httpx.Response(200, json={"version": 4, "forecasts": [{**base, "interval": interval}]})


def test_intervals_come_back_as_flat_columns_nan_where_the_api_gave_none() -> None:
    client = ServiceClient(httpx.Client(base_url="http://api", transport=httpx.MockTransport(_api_shaped)))
    hour = datetime(2024, 3, 5, 14, tzinfo=UTC)
    logged = client.predictions(hour, hour)
    assert logged.loc[0, ["interval_level", "lower", "upper"]].tolist() == [0.8, 66884.9, 67352.6]
    assert logged.loc[0, ["naive_lower", "naive_upper"]].tolist() == [66790.3, 67352.6]
    assert logged.loc[1, ["lower", "upper", "naive_lower"]].isna().all()  # no interval: nothing to compare
    assert logged.loc[2, ["naive_lower", "naive_upper"]].isna().all()  # naive at another level: not used
    assert logged["lower"].dtype == float
    asked = client.predict_hours([hour])
    assert asked.loc[0, ["interval_level", "lower", "upper"]].tolist() == [0.8, 66884.9, 67352.6]
    assert asked["naive_lower"].isna().all()  # /predict gives none: the log's row brings it
    shadow = client.shadow(hour, hour)
    assert shadow.loc[0, ["model_version", "lower", "upper"]].tolist() == [4, 66884.9, 67352.6]
