"""Schemathesis against the app in-process: generated requests, valid and invalid, never a 5xx, and
every answer as the OpenAPI document describes it (status, content type, headers, body schema).

``tests/integration/test_schemathesis_live.py`` runs the same against the service as a process, over HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis import Case
from schemathesis.python import asgi

from btcmlops.serving import create_app
from btcmlops.settings import Settings
from fuzz import fuzz
from services import idle_watch, wait_ready

CASES_PER_OPERATION = int(os.environ.get("BTCMLOPS_FUZZ_CASES", "64"))
"""Per operation and mode: 8 operations take input, so the default makes about 1,400 cases; the live run
(``tests/integration/test_schemathesis_live.py``) sends about 1,060 others."""
DRAW = 0
"""This run's cases (the live run draws others)."""
TOTAL_AT_LEAST = 1300
"""What the default count makes at least (1,417 cases)."""


@pytest.fixture
def schema(settings_copy: Callable[..., Settings]) -> Iterator[Any]:
    app = create_app(settings_copy(serve=idle_watch()))  # the run waits on no watcher
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app's lifespan
    try:
        yield loaded
    finally:
        asgi.shutdown_lifespans()  # the champion watcher and the log writer stop here


def test_generated_requests_get_no_5xx_and_answers_match_the_schema(schema: Any, control_key: str) -> None:
    client = asgi.get_client(schema.app)
    wait_ready(client)  # a champion loaded: /predict gets past the 503

    def send(case: Case, headers: dict[str, str] | None) -> Any:
        return case.call(headers=headers)

    run = fuzz(schema, send, control_key, CASES_PER_OPERATION, draw=DRAW)

    print(run.summary())
    assert run.total >= TOTAL_AT_LEAST or CASES_PER_OPERATION < 64, run.summary()
    assert run.cases["negative"] > 0
    assert run.server_errors == 0, run.summary()
    assert not run.failures, run.failure_report()
