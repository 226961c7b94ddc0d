"""``GET /alerts``: the alerts of a real Prometheus server relayed, and what the dashboard sees when it is
unset or down. ``GET /monitoring/scores`` is checked against hand-computed figures in
``tests/unit/serving/test_live_scores.py``.

The Prometheus here is Debian's (``make system-deps``), started with a rule file of its own whose alerts
hold at once, so that the relay is tested without waiting 7 sim days; the project's rules are tested by
promtool (``tests/unit/deploy``) and end to end in the compose test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from services import free_port, stop_process_group, wait_for_http, wait_until

Serve = Callable[..., AbstractContextManager[TestClient]]

pytestmark = pytest.mark.integration

RULES = """
groups:
  - name: relay-test
    rules:
      - alert: ChampionWorseThanNaive
        expr: vector(1.02)
        labels: {severity: warning, model_version: "3", role: champion}
        annotations: {summary: "v3's 7-day MAE is above naive's"}
      - alert: SlowToHold
        expr: vector(1)
        for: 1h
        labels: {severity: critical}
"""
"""One alert firing at once (no ``for:``) and one pending for an hour: both states relayed."""


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("prometheus")
    if binary is None:
        message = "the Prometheus server is missing: apt-get install prometheus (or `make system-deps`)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "prometheus.yml").write_text("global: {evaluation_interval: 1s}\nrule_files: [rules.yml]\n")
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        tail = lambda: log.read_text()[-3000:]  # noqa: E731
        wait_for_http(f"{url}/-/ready", process, what="prometheus", timeout_s=60, log_tail=tail)
        yield url, process
    finally:
        stop_process_group(process, 10)


def test_alerts_relays_what_prometheus_has_pending_and_firing_and_says_when_it_is_down(
    serve: Serve, prometheus: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, process = prometheus
    with_user = url.replace("http://", "http://watcher:s3cret-pass@")  # never shown back
    with serve(serve={"prometheus_url": with_user}) as client:
        answers: list[dict[str, object]] = []

        def both_evaluated() -> bool:
            answer = client.get("/alerts")
            assert answer.status_code == 200, answer.text
            answers[:] = [answer.json()]
            return len(answer.json()["alerts"]) == 2

        wait_until(both_evaluated, timeout_s=30, what="both alerts", on_timeout=lambda: str(answers))
        body = answers[0]
        assert body["configured"] is True
        assert body["source"] == url.replace("http://", "http://***@")
        firing, pending = body["alerts"]  # type: ignore[misc]
        assert firing["name"] == "ChampionWorseThanNaive"
        assert firing["state"] == "firing"
        assert firing["severity"] == "warning"
        assert firing["summary"] == "v3's 7-day MAE is above naive's"
        assert firing["labels"] == {"model_version": "3", "role": "champion"}
        assert firing["value"] == pytest.approx(1.02)
        assert firing["active_at"] is not None
        assert pending["name"] == "SlowToHold"
        assert pending["state"] == "pending"
        assert pending["summary"] is None
        # The same alerts Prometheus lists itself, none added or lost.
        own = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        assert sorted(a["labels"]["alertname"] for a in own) == ["ChampionWorseThanNaive", "SlowToHold"]

        stop_process_group(process, 10)  # Prometheus stopped: the dashboard is told, with no password
        down = client.get("/alerts")
        assert down.status_code == 503
        detail = down.json()["detail"]
        assert "Prometheus" in detail
        assert "refused" in detail
        assert "s3cret-pass" not in down.text
        assert "watcher" not in down.text


def test_alerts_says_no_prometheus_is_configured(serve: Serve) -> None:
    with serve() as client:
        assert client.get("/alerts").json() == {"configured": False, "source": None, "alerts": []}
