"""Malformed input gets a 4xx that names the field, never a 500; and OpenAPI says so."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from btcmlops.clock import SimClock
from btcmlops.serving.schemas import HOUR_PATTERN, MAX_CANDLES, TIME_PATTERN
from btcmlops.settings import Settings
from btcmlops.store import PriceStore

Serve = Callable[..., AbstractContextManager[TestClient]]

CANDLE = {
    "open_time": "2021-04-01T00:00:00Z",
    "open": 100.0,
    "high": 101.0,
    "low": 99.0,
    "close": 100.5,
    "volume": 1.0,
}
WINDOW = [
    {**CANDLE, "open_time": f"2021-04-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z"} for hour in range(25)
]
JSON = {"content-type": "application/json"}
EXAMPLE = "2021-04-01T00:00:00Z"


def _raw(text: str) -> dict[str, Any]:
    """A body sent as written (a lone surrogate escape, Infinity), not re-encoded by the client."""
    return {"content": text.encode(), "headers": JSON}


def _case(route: str, request: dict[str, Any], loc: str | None, words: str, status: int = 422) -> Any:
    """One malformed request: ``loc`` dotted (``body.timestamps.1``), None for a one-sentence detail."""
    method, path = route.split()
    where = None if loc is None else [int(part) if part.isdigit() else part for part in loc.split(".")]
    return pytest.param(method, path, request, status, where, words, id=f"{route} {loc} {words[:24]}")


def _body(**fields: Any) -> dict[str, Any]:
    return {"json": fields}


KEYED = "(the control key)"
"""``_keyed``'s stand-in for the ``control_key`` fixture, put in by the test."""


def _keyed(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` with the control key: a change's body is read only once the key is right."""
    return {**request, "headers": {**request.get("headers", {}), "X-API-Key": KEYED}}


OUT_OF_RANGE = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "1969-12-31T23:00:00Z")
KEY_CLE = {"X-API-Key": "clé".encode()}

MALFORMED = [
    *[_case("POST /predict", _body(timestamp=t), "body.timestamp", "out of range") for t in OUT_OF_RANGE],
    _case("POST /predict", _body(timestamp=1617235200), "body.timestamp", "not int 1617235200"),
    _case("POST /predict", _body(timestamp="1617235200"), "body.timestamp", "ISO 8601"),
    _case("POST /predict", _body(timestamp=None), "body.timestamp", "not null"),
    _case("POST /predict", _raw('{"timestamp": "\\ud800"}'), "body.timestamp", "\\ud800"),
    _case("POST /predict", _body(timestamp=EXAMPLE, candles=[CANDLE]), "body", "exactly one of"),
    _case(
        "POST /predict", _body(candles=[CANDLE] * (MAX_CANDLES + 1)), "body.candles", f"{MAX_CANDLES} items"
    ),
    _case(
        "POST /predict",
        _body(candles=[{**CANDLE, "open_time": OUT_OF_RANGE[0]}]),
        "body.candles.0.open_time",
        "out of range",
    ),
    _case(
        "POST /predict",
        _raw(json.dumps({"candles": [{**CANDLE, "open": math.inf}, *WINDOW[1:]]})),
        "body.candles.0.open",
        "finite number",
    ),
    _case("POST /predict", _body(candles=[{**CANDLE, "low": 0.0}]), "body.candles.0.low", "greater than 0"),
    _case("POST /predict", _body(candles=[{**CANDLE, "high": True}]), "body.candles.0.high", "valid number"),
    _case("POST /predict", _body(timestamp="2021-04-01T00:30:00Z"), "body.timestamp", "not on the hour"),
    _case("POST /predict", _body(timestamp="2021-04-01T05:00:00+05:30"), "body.timestamp", "not on the hour"),
    _case("POST /predict", _body(timestamp="2021-04-01T00:00:00"), "body.timestamp", "no timezone offset"),
    _case(
        "POST /predict",
        _raw('{"timestamp": "2021-04-01T00:00:00Z", "x": ' + "[" * 20_000 + "]" * 20_000 + "}"),
        "body",
        "nested deeper",
    ),
    _case("POST /predict", {"content": b'{"timestamp": "\xff"}', "headers": JSON}, "body", "not UTF-8"),
    _case(
        "GET /predictions",
        {"params": {"X-API-Key": "s3cret-in-the-query"}},
        "query.X-API-Key",
        "unknown query",
    ),
    _case("POST /predict/batch", _body(timestamps=[EXAMPLE, OUT_OF_RANGE[1]]), "body.timestamps.1", "range"),
    _case("POST /predict/batch", _body(timestamps=[1617235200]), "body.timestamps.0", "ISO 8601"),
    _case("POST /predict/batch", _raw('{"timestamps": ["\\ud800"]}'), "body.timestamps.0", "\\ud800"),
    _case("GET /candles", {"params": {"start": OUT_OF_RANGE[0]}}, "query.start", "out of range"),
    _case("GET /candles", {"params": {"end": "1617235200"}}, "query.end", "ISO 8601"),
    _case("GET /candles", {"params": {"start": EXAMPLE, "page": "2"}}, "query.page", "unknown query"),
    _case("GET /predictions", {"params": {"end": OUT_OF_RANGE[1]}}, "query.end", "out of range"),
    _case(
        "GET /predictions", {"params": {"offset": "10"}}, "query.offset", "unknown query parameter 'offset'"
    ),
    _case("GET /shadow", {"params": {"start": "1617235200", "end": EXAMPLE}}, "query.start", "ISO 8601"),
    _case("GET /shadow", {"params": {"start": EXAMPLE, "end": OUT_OF_RANGE[1]}}, "query.end", "out of range"),
    _case("GET /healthz", {"params": {"verbose": "1"}}, "query.verbose", "takes: none"),
    _case("POST /clock", _keyed(_raw('{"action": "\\ud800"}')), "body.action", "\\ud800"),
    _case("POST /model/rollback", _keyed(_raw('{"reason": "\\ud800"}')), "body.reason", "\\ud800"),
    _case(
        "POST /model/promote", _keyed(_body(version=10**30, reason="x")), "body.version", "less than or equal"
    ),
    _case("POST /model/promote", _keyed(_body(version=True, reason="x")), "body.version", "not bool"),
    _case("POST /clock", _keyed(_body(action="speed", speed=True)), "body.speed", "valid number"),
    _case("POST /clock", _raw('{"action": "\\ud800"}'), None, "X-API-Key", 401),  # the key first
    _case("POST /clock", {"json": {"action": "pause"}, "headers": KEY_CLE}, None, "X-API-Key", 401),
    _case("POST /clock", {"json": {"action": "pause"}, "headers": {"X-API-Key": b"\xff"}}, None, "Key", 401),
]


@pytest.mark.parametrize(("method", "path", "request_", "status", "loc", "words"), MALFORMED)
def test_malformed_input_is_a_4xx_naming_the_field(
    shared_client: TestClient,
    control_key: str,
    method: str,
    path: str,
    request_: dict[str, Any],
    status: int,
    loc: list[str | int] | None,
    words: str | None,
) -> None:
    headers = {
        name: control_key if value == KEYED else value for name, value in request_.get("headers", {}).items()
    }
    response = shared_client.request(method, path, **{**request_, "headers": headers})

    assert response.status_code == status, response.text
    if loc is not None:
        errors = response.json()["detail"]
        assert isinstance(errors, list), errors
        named = [error for error in errors if error["loc"] == loc]
        assert named, errors
        assert words in named[0]["msg"] or words in json.dumps(named[0]["input"]), named
    elif words is not None:
        assert words in response.json()["detail"]


def test_an_unrelated_field_holding_a_surrogate_is_ignored_and_the_answer_is_valid_utf8(
    shared_client: TestClient,
) -> None:
    response = shared_client.post("/predict", **_raw('{"timestamp": "2021-04-01T00:00:00Z", "x": "\\ud800"}'))
    assert response.status_code == 200
    response.content.decode("utf-8")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"action": "speed", "speed": 1e308}', "less than or equal to 10000"),
        ('{"action": "speed", "speed": Infinity}', "finite number"),
        ('{"action": "speed", "speed": NaN}', "finite number"),
        ('{"action": "speed", "speed": -Infinity}', "finite number"),
        ('{"action": "speed", "speed": 0}', "greater than 0"),
        ('{"action": "speed", "speed": -3}', "greater than 0"),
        ('{"action": "speed", "speed": 10001}', "less than or equal to 10000"),
        ('{"action": "speed", "speed": null}', "not null"),
        ('{"action": "speed", "speed": "fast"}', "valid number"),
        ('{"action": "reset", "speed": 1e308}', "less than or equal to 10000"),
    ],
)
def test_a_speed_no_clock_can_run_at_is_refused_and_nothing_is_saved(
    serve: Serve, control_key: str, body: str, words: str
) -> None:
    with serve() as client:
        key = {"X-API-Key": control_key}
        assert client.post("/clock", json={"action": "reset"}, headers=key).status_code == 200

        refused = client.post("/clock", content=body.encode(), headers={**JSON, **key})

        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["detail"]
        assert error["loc"] == ["body", "speed"]
        assert words in error["msg"]
        clock = client.get("/clock")
        assert clock.status_code == 200
        assert clock.json()["speed"] == 12.0


def test_a_reset_with_a_null_start_is_refused_and_nothing_is_saved(serve: Serve, control_key: str) -> None:
    """The document shows ``start`` as a date-time that may be left out, with no null branch: a null is a
    422 naming it, not a reset to the configured start (an accepted null was found by a second draw of
    fuzz cases)."""
    with serve() as client:
        refused = client.post(
            "/clock", json={"action": "reset", "start": None}, headers={"X-API-Key": control_key}
        )
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["detail"]
        assert error["loc"] == ["body", "start"]
        assert "'start' may be left out but not null" in error["msg"]
        assert client.get("/clock").status_code == 404  # no clock was made


def test_a_speed_action_without_a_speed_says_so(serve: Serve, control_key: str) -> None:
    with serve() as client:
        response = client.post("/clock", json={"action": "speed"}, headers={"X-API-Key": control_key})
    assert response.status_code == 422
    assert "action 'speed' needs a 'speed'" in response.text


def test_the_max_speed_setting_bounds_every_change(serve: Serve, control_key: str) -> None:
    key = {"X-API-Key": control_key}
    with serve(clock={"max_speed": 100.0, "speed": 12.0}) as client:
        for body in ({"action": "reset", "speed": 101.0}, {"action": "speed", "speed": 500.0}):
            refused = client.post("/clock", json=body, headers=key)
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"][0]["loc"] == ["body", "speed"]
            assert "at most 100 (BTCMLOPS_CLOCK__MAX_SPEED)" in refused.text
        assert client.get("/clock").status_code == 404  # the refused reset saved nothing
        assert client.post("/clock", json={"action": "reset", "speed": 100.0}, headers=key).status_code == 200
        assert (
            client.post("/clock", json={"action": "speed", "speed": 50.0}, headers=key).json()["speed"] == 50
        )


@pytest.mark.parametrize("speed", [1e308, math.inf, -math.inf])  # NaN: SQLite stores NULL, refused
def test_a_clock_saved_with_a_bad_speed_before_the_checks_still_reads(
    serve: Serve, settings_copy: Callable[..., Settings], control_key: str, speed: float
) -> None:
    """An old row (speed 1e308 was accepted once) must not make every read of the clock a 500."""
    settings = settings_copy()
    store = PriceStore(settings.store.url or "")
    hold = datetime(2021, 4, 1, tzinfo=UTC)
    start = datetime(2021, 3, 10, tzinfo=UTC)
    store.write_clock(SimClock(start, datetime.now(UTC), speed, paused=False, hold_at=hold, hold_reason="x"))
    store.dispose()
    with serve() as client:
        clock = client.get("/clock")
        assert clock.status_code == 200, clock.text
        answer = client.post("/predict", json={"timestamp": "2021-03-20T00:00:00Z"})
        assert answer.status_code in (200, 425), answer.text
        fixed = client.post(
            "/clock", json={"action": "speed", "speed": 12.0}, headers={"X-API-Key": control_key}
        )
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["speed"] == 12.0


def test_the_body_limit_answers_413_naming_it_with_and_without_content_length(serve: Serve) -> None:
    stamps = ["2021-04-01T00:00:00Z"] * 300
    body = json.dumps({"timestamps": stamps}).encode()  # 7 KB: a fine batch, over a 4 KiB limit
    with serve(serve={"max_body_bytes": 4096}) as client:
        declared = client.post("/predict/batch", content=body, headers=JSON)
        streamed = client.post(
            "/predict/batch", content=(body[i : i + 1000] for i in range(0, len(body), 1000)), headers=JSON
        )
        small = client.post("/predict/batch", json={"timestamps": stamps[:100]})

    assert declared.status_code == streamed.status_code == 413
    assert "declares" in declared.json()["detail"]
    assert "sent more than 4096 bytes" in streamed.json()["detail"]
    for refused in (declared, streamed):
        assert "the limit is 4096 bytes (BTCMLOPS_SERVE__MAX_BODY_BYTES)" in refused.json()["detail"]
    assert small.status_code == 200, small.text
    assert len(small.json()["predictions"]) == 100


def test_the_default_limit_holds_a_full_batch_and_the_most_candles(shared_client: TestClient) -> None:
    limit = Settings().serve.max_body_bytes
    batch = json.dumps({"timestamps": ["2021-04-01T00:00:00+00:00"] * Settings().serve.max_batch})
    candles = json.dumps({"candles": [CANDLE] * MAX_CANDLES}, indent=2)
    assert len(batch) < limit
    assert len(candles) < limit
    assert shared_client.post("/predict/batch", content=batch.encode(), headers=JSON).status_code == 200
    assert shared_client.post("/predict", content=candles.encode(), headers=JSON).status_code == 422


def test_openapi_documents_what_the_service_answers(shared_client: TestClient) -> None:
    spec = shared_client.get("/openapi.json").json()
    paths, schemas = spec["paths"], spec["components"]["schemas"]

    request = schemas["PredictionRequest"]
    assert request["oneOf"] == [{"required": ["timestamp"]}, {"required": ["candles"]}]
    assert request["properties"]["timestamp"] == {**request["properties"]["timestamp"], "type": "string"}
    assert request["properties"]["candles"]["maxItems"] == MAX_CANDLES
    speed = schemas["ClockChange"]["properties"]["speed"]
    assert (speed["type"], speed["exclusiveMinimum"], speed["maximum"]) == ("number", 0, 10_000)
    assert schemas["ClockChange"]["then"] == {"required": ["speed"]}

    def documented(method: str, path: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert {"404", "413", "422", "425", "503"} <= documented("post", "/predict")
    assert {"413", "422", "503"} <= documented("post", "/predict/batch")
    for path in ("/clock", "/model/promote", "/model/rollback"):
        assert {"400", "401", "403", "409", "413", "422"} <= documented("post", path)
    assert "503" in documented("get", "/readyz")
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    for operations in paths.values():
        for operation in operations.values():
            invalid = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert invalid == {"$ref": "#/components/schemas/InvalidInputPublic"}


def test_openapi_shows_every_answer_field_with_an_example(shared_client: TestClient) -> None:
    """A forecast, a logged forecast, a shadow forecast and a decision: every field in the document with
    an example (the intervals, naive's beside a logged one, a decision's interval scores and tests)."""
    schemas = shared_client.get("/openapi.json").json()["components"]["schemas"]

    def has_example(field: dict[str, Any]) -> bool:
        """The field has an example, or refers (itself or in its anyOf) to a schema that has one or
        whose every field has one."""
        if field.get("examples"):
            return True
        named = [
            schemas[ref["$ref"].split("/")[-1]] for ref in [field, *field.get("anyOf", [])] if "$ref" in ref
        ]
        return bool(named) and all(
            schema.get("examples") or all(map(has_example, schema.get("properties", {}).values()))
            for schema in named
        )

    for schema in ("PredictionPublic", "LoggedPredictionPublic", "ShadowForecastPublic", "DecisionPublic"):
        for name, field in schemas[schema]["properties"].items():
            assert has_example(field), f"{schema}.{name} has no example"
    assert "interval" in schemas["PredictionPublic"]["required"]  # every forecast carries one
    assert set(schemas["IntervalPublic"]["required"]) == {"level", "lower", "upper"}
    assert set(schemas["IntervalScoresPublic"]["required"]) == {
        "n", "level", "coverage", "mean_width", "interval_score", "pinball"
    }  # fmt: skip
    assert schemas["DecisionPublic"]["properties"]["metric"]["anyOf"][0]["enum"] == ["mae", "interval_score"]


def test_openapi_states_every_limit_the_service_enforces(serve: Serve) -> None:
    """A client generated from the document sends nothing the service refuses as invalid: the limits
    set by this deployment's settings are in it too (``tests/unit/serving/test_schemathesis.py`` holds
    every generated valid request to that)."""
    with serve(serve={"max_read_rows": 700, "max_batch": 9}, clock={"max_speed": 50.0}) as client:
        spec = client.get("/openapi.json").json()
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    for path in ("/candles", "/predictions"):
        (limit,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == "limit"]
        assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 700), path
    request = schemas["PredictionRequest"]["properties"]
    assert request["candles"]["minItems"] == 25  # the feature window of the service's feature set
    assert request["timestamp"]["pattern"] == HOUR_PATTERN
    assert schemas["CandleIn"]["properties"]["open_time"]["pattern"] == HOUR_PATTERN
    assert schemas["CandleIn"]["properties"]["low"]["exclusiveMinimum"] == 0
    assert schemas["BatchPredictionRequest"]["properties"]["timestamps"]["maxItems"] == 9
    assert schemas["BatchPredictionRequest"]["properties"]["timestamps"]["items"]["pattern"] == TIME_PATTERN
    assert schemas["ClockChange"]["properties"]["speed"]["maximum"] == 50.0
    (after,) = [p for p in paths["/predictions"]["get"]["parameters"] if p["name"] == "after"]
    assert "[0-9]{1,11}:[0-9]{1,18}" in json.dumps(after["schema"])


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("2024-03-05T14:00:00Z", True),
        ("1970-01-01T00:00:00+14:00", True),  # the year as written counts: 1969 in UTC, still served
        ("2199-12-31T23:00:00-09:00", True),
        ("2024-03-05 14:00+0000", True),
        ("1969-12-31T23:00:00Z", False),
        ("2200-01-01T00:00:00Z", False),
        ("2024-03-05T14:00:00", False),
        ("2024-03-05T14:00:00+05:30", False),  # not on the hour in UTC
        ("2024-03-05T14:00:60Z", False),
    ],
)
def test_the_hour_pattern_is_the_rule_the_service_applies(
    shared_client: TestClient, text: str, accepted: bool
) -> None:
    import re

    response = shared_client.post("/predict", json={"timestamp": text})
    refused_as_invalid = response.status_code == 422 and "body" in json.dumps(response.json())
    assert bool(re.match(HOUR_PATTERN, text)) is accepted
    assert refused_as_invalid is not accepted, response.text


def test_a_key_in_the_query_string_is_refused_and_not_echoed(shared_client: TestClient) -> None:
    response = shared_client.get("/candles", params={"api_key": "s3cret-in-the-query"})
    assert response.status_code == 422
    assert "api_key" in response.text
    assert "s3cret-in-the-query" not in response.text


def test_two_control_keys_are_refused_even_when_one_is_right(
    shared_client: TestClient, control_key: str
) -> None:
    for keys in ([control_key, "wrong"], ["wrong", control_key], [control_key, control_key]):
        response = shared_client.post(
            "/clock",
            json={"action": "pause"},
            headers=[("X-API-Key", key) for key in keys],
        )
        assert response.status_code == 400, (keys, response.text)
        assert response.json() == {"detail": "X-API-Key sent 2 times: send it once"}


@pytest.mark.parametrize("method", ["OPTIONS", "DELETE", "PUT"])
def test_a_method_a_path_does_not_take_is_405_listing_every_method_it_does(
    shared_client: TestClient, method: str
) -> None:
    response = shared_client.request(method, "/clock")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert shared_client.request(method, "/predict").headers["allow"] == "POST"
    assert shared_client.request(method, "/healthz").headers["allow"] == "GET"
