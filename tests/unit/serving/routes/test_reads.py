"""The long reads: pages found by the index and linked, a page size cap, and a gate that keeps them few."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from btcmlops.settings import Settings
from btcmlops.store import LoggedPrediction, PriceStore

T0 = datetime(2021, 3, 1, tzinfo=UTC)
Serve = Callable[..., AbstractContextManager[TestClient]]
SettingsCopy = Callable[..., Settings]


def _all_pages(client: TestClient, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    rows, pages = response.json(), 1
    while (next_url := response.links.get("next", {}).get("url")) is not None:
        response = client.get(next_url)
        assert response.status_code == 200, response.text
        rows += response.json()
        pages += 1
    return rows, pages


def test_predictions_come_in_linked_pages_each_row_once_even_with_many_rows_per_hour(
    serve: Serve, settings_copy: SettingsCopy
) -> None:
    store = PriceStore(settings_copy().store.url or "")
    logged = [
        LoggedPrediction(T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1), 100.0 + n, 99.0, 1, T0, T0)
        for h in range(5)
        for n in range(3)  # three forecasts for the same hour: the cursor orders by target time and id
    ]
    store.log_predictions(logged)
    store.dispose()
    with serve() as client:
        params = {"start": "2021-03-01T01:00:00Z", "end": "2021-03-01T05:00:00Z", "limit": 4}
        rows, pages = _all_pages(client, "/predictions", params)
    assert pages == 4  # 15 rows, 4 a page
    assert [(row["target_time"], row["predicted_close"]) for row in rows] == [
        (f"2021-03-01T{h + 1:02d}:00:00Z", 100.0 + n) for h in range(5) for n in range(3)
    ]


def test_candles_come_in_linked_pages_that_add_up_to_the_range(serve: Serve) -> None:
    with serve() as client:
        params = {"start": "2021-02-01T00:00:00Z", "end": "2021-02-10T23:00:00Z", "limit": 70}
        rows, pages = _all_pages(client, "/candles", params)
        whole = client.get("/candles", params={**params, "limit": 5000}).json()
    assert pages == 4  # 240 hours, 70 a page
    assert rows == whole
    assert len(rows) == 240


def test_a_page_larger_than_the_cap_is_refused_with_the_way_to_get_more(shared_client: TestClient) -> None:
    response = shared_client.get("/predictions", params={"limit": 50_000})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["query", "limit"]
    assert 'rel="next"' in problem["msg"]
    assert shared_client.get("/predictions", params={"after": "abc"}).status_code == 422
