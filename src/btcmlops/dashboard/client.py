"""``ServiceClient``: the dashboard's one door to the inference service (HTTP, with a timeout)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd

from btcmlops.redaction import describe_error, redact

_INTERVAL = ("interval_level", "lower", "upper")
"""A forecast's interval, flattened: ``interval: {level, lower, upper}`` (NaN where the API gave null)."""
_NAIVE_INTERVAL = ("naive_lower", "naive_upper")
"""Naive's interval for the same hour, at the same level (``/predictions``' ``naive_interval``)."""
_SERVED = (
    "timestamp",
    "target_time",
    "predicted_close",
    "last_close",
    "model_version",
    "served_at",
    "live",
    *_INTERVAL,
    *_NAIVE_INTERVAL,
)
"""The columns of a served forecast, as ``/predictions`` gives them (intervals flattened)."""
_SHADOW = ("timestamp", "target_time", "predicted_close", "model_version", *_INTERVAL)
BATCH_SIZE = 100
"""Hours per ``/predict/batch`` call: well under the service's default limit of 500."""


class ServiceUnavailableError(Exception):
    """The inference service cannot be reached or answered 5xx: the page shows a banner, not a trace."""


class ServiceError(Exception):
    """The service refused a request (4xx), with its own words."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class ServiceClient:
    """Typed calls to the API; frames come back with UTC ``datetime64`` columns."""

    def __init__(self, http: httpx.Client) -> None:
        """Wrap a client whose ``base_url`` is the service (tests pass the app's ``TestClient``)."""
        self._http = http
        self.base_url = redact(str(http.base_url).rstrip("/"))
        """The service's address as shown on the page: without user info, if the URL carried any."""

    @classmethod
    def connect(cls, base_url: str, *, timeout_s: float) -> ServiceClient:
        return cls(httpx.Client(base_url=base_url, timeout=timeout_s))

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ServiceUnavailableError(
                f"{self.base_url} does not answer: {describe_error(error)}"
            ) from error
        if response.status_code >= 500:
            raise ServiceUnavailableError(
                f"{self.base_url}{path} answered {response.status_code}: {_detail(response)}"
            )
        if response.status_code >= 400:
            raise ServiceError(response.status_code, _detail(response))
        return response

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _pages(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every row of a paged read, following its ``Link: rel="next"`` headers."""
        response = self._request("GET", path, params=params)
        rows: list[dict[str, Any]] = response.json()
        while (next_url := response.links.get("next", {}).get("url")) is not None:
            response = self._request("GET", next_url)
            rows += response.json()
        return rows

    def clock(self) -> dict[str, Any] | None:
        """The sim clock, or None when the store has none (a replay served without a clock)."""
        try:
            answer: dict[str, Any] = self._call("GET", "/clock")
        except ServiceError as error:
            if error.status == 404:
                return None
            raise
        return answer

    def change_clock(
        self, action: str, api_key: str, speed: float | None = None, start: datetime | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"action": action}
        if speed is not None:
            body["speed"] = speed
        if start is not None:
            body["start"] = _iso(start)
        answer: dict[str, Any] = self._call("POST", "/clock", json=body, headers={"X-API-Key": api_key})
        return answer

    def model(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("GET", "/model")
        return answer

    def history(self) -> list[dict[str, Any]]:
        """Every change of champion, oldest first (the audit)."""
        answer: list[dict[str, Any]] = self._call("GET", "/model/history")
        return answer

    def decisions(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._call("GET", "/decisions")
        return answer

    def live_scores(self) -> dict[str, Any]:
        """Each version's live record over the last 7 sim days (``GET /monitoring/scores``)."""
        answer: dict[str, Any] = self._call("GET", "/monitoring/scores")
        return answer

    def contest_live(self) -> dict[str, Any] | None:
        """The shadow month's contest as it stands (``GET /contest/live``); None when there is none (404:
        no month in progress, or the service runs without the challenger in shadow)."""
        try:
            answer: dict[str, Any] = self._call("GET", "/contest/live")
        except ServiceError as error:
            if error.status == 404:
                return None
            raise
        return answer

    def drift(self) -> dict[str, Any]:
        """Each feature's PSI, last 7 sim days against the champion's training window (``GET /drift``)."""
        answer: dict[str, Any] = self._call("GET", "/drift")
        return answer

    def alerts(self) -> dict[str, Any]:
        """Prometheus's pending and firing alerts, as the service relays them (``GET /alerts``)."""
        answer: dict[str, Any] = self._call("GET", "/alerts")
        return answer

    def candles(self, start: datetime, end: datetime) -> pd.DataFrame:
        rows = self._pages("/candles", {"start": _iso(start), "end": _iso(end)})
        return _frame(rows, ["open_time"], ["open_time", "open", "high", "low", "close", "volume"])

    def predictions(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Served forecasts whose target hour lies in [start, end]."""
        rows = self._pages("/predictions", {"start": _iso(start), "end": _iso(end)})
        rows = [_flat_intervals(row) for row in rows]
        return _frame(rows, ["timestamp", "target_time", "served_at"], list(_SERVED))

    def shadow(self, start: datetime, end: datetime) -> pd.DataFrame:
        """The challenger's shadow forecasts from the hours in [start, end] (empty with no challenger)."""
        body = self._call("GET", "/shadow", params={"start": _iso(start), "end": _iso(end)})
        rows = [_flat_intervals({**item, "model_version": body["version"]}) for item in body["forecasts"]]
        return _frame(rows, ["timestamp", "target_time"], list(_SHADOW))

    def predict_hours(self, hours: list[datetime]) -> pd.DataFrame:
        """Ask for the forecast from each hour, as any client would (the service logs them too).

        Returns the answered ones in the prediction log's columns, ``served_at`` being now: the log is
        written in the background, so it may not show them yet.
        """
        rows = []
        for start in range(0, len(hours), BATCH_SIZE):
            chunk = hours[start : start + BATCH_SIZE]
            body = self._call("POST", "/predict/batch", json={"timestamps": [_iso(hour) for hour in chunk]})
            served_at = _iso(datetime.now(UTC))
            rows += [
                _flat_intervals(
                    {**{key: item[key] for key in _SERVED[:4]}, "model_version": item["model"]["version"]}
                    # asked as soon as the hour may be asked: live, unless the champion was trained on it
                    | {
                        "served_at": served_at,
                        "live": not item["in_sample"],
                        "interval": item.get("interval"),
                    }
                )
                for item in body["predictions"]
            ]
        return _frame(rows, ["timestamp", "target_time", "served_at"], list(_SERVED))


def _flat_intervals(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its ``interval`` and ``naive_interval`` objects as flat columns (None where absent)."""
    flat = {key: value for key, value in row.items() if key not in ("interval", "naive_interval")}
    interval = row.get("interval") or {}
    naive = row.get("naive_interval") or {}
    flat |= {
        "interval_level": interval.get("level"),
        "lower": interval.get("lower"),
        "upper": interval.get("upper"),
    }
    # naive's interval is computed at the row's level; one at another level would not be comparable
    same_level = naive.get("level") is not None and naive.get("level") == interval.get("level")
    flat |= {
        "naive_lower": naive.get("lower") if same_level else None,
        "naive_upper": naive.get("upper") if same_level else None,
    }
    return flat


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:300]
    except ValueError:
        return response.text[:300]


def _frame(rows: list[dict[str, Any]], times: list[str], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for column in (*_INTERVAL, *_NAIVE_INTERVAL):
        if column in frame:  # null (a row from before intervals) reads NaN, not an object column
            frame[column] = frame[column].astype(float)
    for column in times:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame
