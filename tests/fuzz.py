"""Schemathesis against the inference service's own OpenAPI document: generated requests, valid
(positive) and invalid (negative), each answer checked against what the document says of it.

The same run whether the app is called in-process (ASGI) or over HTTP as a running service: the caller
only says how one case is sent.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.config._checks import NegativeDataRejectionConfig, PositiveDataAcceptanceConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MUST_PASS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
ACCEPTED = ["2xx", "404", "409", "425", "503"]
"""What a request valid by the document may get: an answer, or a documented refusal that depends on
the service's state, not on the request's form (no candle at that hour, already champion, the hour not
closed yet, no model loaded). A 422 or a 400 to a valid request fails the run."""
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
"""What an invalid request may get: schemathesis's own list and 413 (more timestamps than a batch holds,
stated as the batch's maxItems, is refused as too large)."""
BEYOND_JSON_SCHEMA = (
    re.compile(r"candles\[\d+\] \(.*\) is not one hour after candles\[\d+\]"),
    re.compile(r"candles\[\d+\]\.(open|high|low|close|volume): "),
)
"""Refusals of rules JSON Schema cannot state, each written in the field's description instead:
candles one hour apart, and a candle's high and low around its open and close."""

LONG_POLLS = {"wait_s": 0.05}
"""Query parameters that make the service wait (``GET /clock?after=&wait_s=``, the hourly client's long
poll), each sent at most this long: the wait is the service's to keep, not a run's to sit out."""

Send = Callable[[Case, dict[str, str] | None], Any]
"""Send one case (with these extra headers); the response."""


@dataclass
class FuzzRun:
    """What a run sent and what came back."""

    cases: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    failures: dict[tuple[str, str], list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    refused_valid: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    seconds: collections.Counter[str] = field(default_factory=collections.Counter)
    """Per operation: the seconds its cases took to send and check (their generation aside)."""

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    @property
    def server_errors(self) -> int:
        return sum(count for (_, status), count in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        return (
            f"cases {dict(self.cases)} (total {self.total}); statuses {sorted(self.statuses.items())}; "
            f"valid but refused by a rule JSON Schema cannot state {sorted(self.refused_valid.items())}; "
            f"seconds sending and checking {[(op, round(s, 1)) for op, s in self.seconds.most_common()]}"
        )

    def failure_report(self) -> str:
        return "\n\n".join(
            f"{operation} {check} x{len(found)}:\n{found[0]}"
            for (operation, check), found in self.failures.items()
        )


def _beyond_json_schema(response: Any) -> bool:
    if response.status_code != 422:
        return False
    detail = response.json().get("detail")
    return isinstance(detail, str) and any(rule.search(detail) for rule in BEYOND_JSON_SCHEMA)


def fuzz(schema: Any, send: Send, control_key: str, cases_per_operation: int, *, draw: int) -> FuzzRun:
    """Send ``cases_per_operation`` positive and as many negative cases to every operation of ``schema``.

    The same cases on every run of a given ``draw`` (Hypothesis seeded with it, no example database): a
    failure in CI reproduces here. The in-process and the live run pass different draws, so the live run
    sends cases the in-process one did not (derandomized, both drew the very same ones). Every POST
    carries the control key, so a change's body is read (without it every change is a 401 before its body
    is looked at).
    """
    run = FuzzRun()
    checks = schema.config.checks
    checks.positive_data_acceptance = PositiveDataAcceptanceConfig(expected_statuses=ACCEPTED)
    checks.negative_data_rejection = NegativeDataRejectionConfig(expected_statuses=REJECTED)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=cases_per_operation,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @seed(draw)
            @given(case=operation.as_strategy(generation_mode=mode))
            def one(case: Case) -> None:
                positive = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
                run.cases["positive" if positive else "negative"] += 1
                started = time.monotonic()
                keyed = case.method.upper() == "POST"
                _bound_long_polls(case)
                response = send(case, {"X-API-Key": control_key} if keyed else None)
                run.statuses[(case.operation.label, response.status_code)] += 1
                for check in MUST_PASS:
                    try:
                        case.validate_response(response, checks=[check])
                    except BaseException as error:  # schemathesis raises a FailureGroup
                        if check is positive_data_acceptance and _beyond_json_schema(response):
                            run.refused_valid[(case.operation.label, response.status_code)] += 1
                        else:
                            run.failures[(case.operation.label, check.__name__)].append(
                                f"{response.status_code} {response.text[:300]}\n{case.as_curl_command()}\n"
                                f"{str(error)[:500]}"
                            )
                run.seconds[case.operation.label] += time.monotonic() - started

            try:
                one()
            except Unsatisfiable:  # no parameters: nothing to make invalid
                assert mode is GenerationMode.NEGATIVE
    return run


def _bound_long_polls(case: Case) -> None:
    """Cut a valid long wait to ``LONG_POLLS``' (an invalid one is sent as generated: it must be refused)."""
    for name, most in LONG_POLLS.items():
        value = (case.query or {}).get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > most:
            case.query[name] = most
