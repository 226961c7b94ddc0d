"""64 clients read the largest page of the prediction log while ``/predict`` and ``/readyz`` keep working.

``btcmlops serve`` runs as its own process on MariaDB, its prediction log seeded with 50,000 rows, and a
real mlflow server. One client's ``POST /predict`` latency is measured alone, then beside 64 threads that
ask for ``GET /predictions?limit=10000`` (the largest page) back to back, each on its own connection,
while ``/readyz`` is polled throughout (issue 11's bounded reads; ``bench/reads.py`` measures the same
with wrk). Every forecast must answer 200; ``/readyz`` 200, or 503 naming the store but never twice in a
row (the chart's probe would then take the pod out of rotation); every read 200 or, turned away by the
read gate, 503 with ``Retry-After`` (never a 500, never a hang); ``/predict``'s p99 beside the readers
stays within ``P99_RATIO`` of its p99 alone; the service's peak RSS stays under ``PEAK_RSS_BOUND_MB``.
The pages were built in the service's read workers (its child processes, at most ``read_workers``), not
in its own interpreter; ``kill -9`` of the service leaves none of them running.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from btcmlops.settings import ServeSettings
from btcmlops.store import LoggedPrediction, PriceStore
from forecast_load import NonStopClient, registry_and_env
from services import CliProcess, free_port, peak_rss_mb, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]

LOG_ROWS = 50_000
"""Rows in the prediction log before the service starts (as ``bench/reads.py`` seeds it): five pages."""
PAGE_ROWS = ServeSettings().max_read_rows
READ_PATH = f"/predictions?limit={PAGE_ROWS}"
READERS = 64
ALONE_S = 5.0
BESIDE_S = 12.0
RAMP_S = 2.0
"""Readers start this long before the forecasts beside them are timed: the read gate is full by then."""
CLIENT_TIMEOUT_S = 30.0
"""No answer within this is a hang (a read waits at most ``read_wait_s`` for the gate, then 503)."""
P99_RATIO = 10.0
P99_FLOOR_S = 0.100
"""The alone p99 compared against is at least this: a tiny baseline cannot fail the ratio on noise. The
bound (1 s at least) says "not starved"; the latency figure itself is bench/reads.py's, measured with wrk
(here the 64 readers are Python threads on the same two cores as the service)."""
PEAK_RSS_BOUND_MB = 1536
"""Before paging, 64 such readers took the service to 1.8 GB (docs/measurements.md); paged,
bench/reads.py saw 444 MB."""
API_TEMPLATE = Path(__file__).parents[2] / "deploy" / "helm" / "btcmlops" / "templates" / "api.yaml"


def _readiness_failure_threshold(template: Path) -> int:
    """The ``failureThreshold`` of the first ``readinessProbe`` in a chart template (read, not restated)."""
    probe = re.search(r"readinessProbe:.*?failureThreshold:\s*(\d+)", template.read_text(), re.DOTALL)
    assert probe is not None, f"no readinessProbe with a failureThreshold in {template}"
    return int(probe.group(1))


READINESS_FAILURE_THRESHOLD = _readiness_failure_threshold(API_TEMPLATE)
"""The chart's ``readinessProbe.failureThreshold`` for the api (deploy/helm/btcmlops/templates/api.yaml):
a pod leaves its Service only after this many failed probes in a row. One ``/readyz`` past
``store_timeout_s`` on a machine whose two cores also run the rest of the suite takes nothing out of
rotation; this many in a row (polled every 50 ms, each failing only after ``store_timeout_s``) would."""
WORKERS_GONE_S = 15.0
"""A read worker checks every second that its service is there; this leaves room for a busy machine."""
HOURS = [f"2021-02-{day:02d}T{hour:02d}:00:00Z" for day in range(2, 28) for hour in range(0, 24, 5)]
"""Hours whose forecasts come from memory (after the champion's training window, candles stored)."""


@dataclass(frozen=True)
class Reply:
    at: float
    """When the reply came (``time.monotonic()``)."""
    status: int
    """0: no answer (a connection error or a timeout)."""
    retry_after: str | None
    link: bool
    """A ``Link`` header (rel=next) came with it."""
    seconds: float
    error: str | None = None
    body: str | None = None
    """The start of the body of an answer other than 200."""


class Askers:
    """``count`` threads asking ``GET path`` back to back (``pause_s`` between asks), each on its own
    connection; every reply kept."""

    def __init__(self, url: str, path: str, count: int, *, pause_s: float = 0.0) -> None:
        self.replies: list[Reply] = []
        self._url, self._path, self._pause_s = url, path, pause_s
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _run(self) -> None:
        with httpx.Client(base_url=self._url, timeout=CLIENT_TIMEOUT_S) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get(self._path)
                except httpx.HTTPError as error:
                    now = time.monotonic()
                    self.replies.append(Reply(now, 0, None, False, now - started, repr(error)))
                    continue
                now = time.monotonic()
                self.replies.append(
                    Reply(
                        now,
                        response.status_code,
                        response.headers.get("Retry-After"),
                        "link" in response.headers,
                        now - started,
                        body=None if response.status_code == 200 else response.text[:300],
                    )
                )
                self._stop.wait(self._pause_s)

    def __enter__(self) -> Askers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT_S + 5)
        hung = sum(thread.is_alive() for thread in self._threads)
        assert hung == 0, f"{hung} of {len(self._threads)} clients of {self._path} still waiting"


def _seed_prediction_log(store_url: str) -> None:
    """``LOG_ROWS`` logged forecasts, four for each hour up to the last stored candle."""
    last = datetime(2021, 2, 28, 23, tzinfo=UTC)
    hours = [last - timedelta(hours=n) for n in range(LOG_ROWS // 4)]
    store = PriceStore(store_url)
    store.log_predictions(
        [
            LoggedPrediction(hour, hour + timedelta(hours=1), 100.0 + n, 100.0, 1, hour, hour)
            for n in range(4)
            for hour in hours
        ]
    )
    store.dispose()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _read_workers(pid: int) -> list[int]:
    """The read workers of service ``pid``: its children started by multiprocessing's ``spawn``."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return [
        child
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes() and _alive(child)
    ]


@pytest.fixture
def service(
    mlflow_server: str, mariadb_url_factory: Callable[[], str], tmp_path: Path
) -> Iterator[tuple[str, int]]:
    """``btcmlops serve`` on a store with two months of candles and a 50,000-row prediction log, v1
    champion; its URL and process id."""
    store_url = mariadb_url_factory()
    _, env = registry_and_env(mlflow_server, store_url, tmp_path / "home", ServeSettings().poll_interval_s)
    _seed_prediction_log(store_url)
    url = f"http://127.0.0.1:{free_port()}"
    process = CliProcess("serve", ["serve", "--port", url.rsplit(":", 1)[1]], env, tmp_path).start()
    try:
        process.wait_for_http(f"{url}/readyz", timeout_s=90)
        assert process.process is not None
        yield url, process.process.pid
    finally:
        process.stop()


def _longest_failing_run(replies: list[Reply]) -> int:
    """The most answers other than 200 in a row."""
    longest = run = 0
    for reply in sorted(replies, key=lambda r: r.at):
        run = 0 if reply.status == 200 else run + 1
        longest = max(longest, run)
    return longest


def _p(seconds: list[float], percent: int) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[percent - 1]


def _ms(seconds: list[float], percent: int) -> str:
    return f"{_p(seconds, percent) * 1e3:.1f} ms"


def test_64_readers_of_the_largest_page_leave_predict_and_readyz_answering(
    service: tuple[str, int],
) -> None:
    url, pid = service
    first = httpx.get(f"{url}{READ_PATH}", timeout=CLIENT_TIMEOUT_S)
    assert first.status_code == 200, first.text[:500]
    assert len(first.json()) == PAGE_ROWS
    assert 'rel="next"' in first.headers["link"]
    for hour in HOURS[:20]:  # warm up: the first forecasts build what later ones reuse
        assert httpx.post(f"{url}/predict", json={"timestamp": hour}, timeout=10).status_code == 200

    with Askers(url, "/readyz", 1, pause_s=0.05) as ready:
        with NonStopClient(url, HOURS, timeout_s=CLIENT_TIMEOUT_S) as alone:
            time.sleep(ALONE_S)
        reading_from = time.monotonic()
        with Askers(url, READ_PATH, READERS) as readers:
            time.sleep(RAMP_S)
            with NonStopClient(url, HOURS, timeout_s=CLIENT_TIMEOUT_S) as beside:
                time.sleep(BESIDE_S)
    peak_mb = peak_rss_mb(pid)
    after = httpx.get(f"{url}/readyz", timeout=10)
    workers = _read_workers(pid)
    worker_mb = [peak_rss_mb(worker) for worker in workers]
    os.kill(pid, signal.SIGKILL)  # no clean-up runs: each worker must notice on its own
    wait_until(
        lambda: not any(_alive(worker) for worker in workers),
        timeout_s=WORKERS_GONE_S,
        what="the read workers to exit after kill -9 of their service",
        on_timeout=lambda: f"still running: {[w for w in workers if _alive(w)]}",
    )

    forecasts = alone.answers + beside.answers
    failed = Counter(a.status for a in forecasts if a.status != 200)
    alone_s = [a.seconds for a in alone.answers]
    beside_s = [a.seconds for a in beside.answers]
    reads = Counter(r.status for r in readers.replies)
    refused = [r for r in readers.replies if r.status == 503]
    answered = [r for r in readers.replies if r.status == 200]
    read_s = [r.seconds for r in answered]
    errors = Counter(r.error for r in readers.replies if r.error is not None)
    not_ready = Counter(r.status for r in ready.replies if r.status != 200)
    ready_alone_s = [r.seconds for r in ready.replies if r.at < reading_from]
    ready_beside_s = [r.seconds for r in ready.replies if r.at >= reading_from]
    others = {status: n for status, n in reads.items() if status not in (200, 503)}
    bound_s = P99_RATIO * max(_p(alone_s, 99), P99_FLOOR_S)
    print(
        f"\n/predict alone: {len(alone_s)} requests, p50 {_ms(alone_s, 50)}, p99 {_ms(alone_s, 99)}"
        f"\n/predict beside {READERS} readers of {READ_PATH}: {len(beside_s)} requests, "
        f"p50 {_ms(beside_s, 50)}, p99 {_ms(beside_s, 99)} (bound {bound_s * 1e3:.0f} ms), "
        f"max {max(beside_s) * 1e3:.1f} ms; failed {sum(failed.values())}"
        f"\nreads: {len(answered)} pages of {PAGE_ROWS:,} rows answered (200; p50 "
        f"{statistics.median(read_s) if read_s else float('nan'):.2f} s), {len(refused)} turned away "
        f"(503), others {others} {dict(errors)}"
        f"\n/readyz: {len(ready.replies)} polls, not 200: {sum(not_ready.values())}; alone p50 "
        f"{_ms(ready_alone_s, 50)}, p99 {_ms(ready_alone_s, 99)}; beside the readers p50 "
        f"{_ms(ready_beside_s, 50)}, p99 {_ms(ready_beside_s, 99)}, max {max(ready_beside_s) * 1e3:.1f} ms "
        f"(503 past store_timeout_s, {ServeSettings().store_timeout_s:g} s); after: {after.status_code}"
        f"\nservice peak RSS (VmHWM) {peak_mb:.0f} MB (bound {PEAK_RSS_BOUND_MB} MB); read workers "
        f"{workers}, peak RSS {[round(mb) for mb in worker_mb]} MB"
    )

    assert failed == Counter(), f"/predict answered other than 200: {dict(failed)}"
    assert len(alone_s) > 50
    assert len(beside_s) > 50
    ready_failures = [r for r in ready.replies if r.status != 200]
    assert set(not_ready) <= {503}, f"/readyz answered other than 200 or 503: {dict(not_ready)}"
    bodies = [r.body or "" for r in ready_failures]
    assert all("price store unreachable" in body for body in bodies), bodies
    assert _longest_failing_run(ready.replies) < READINESS_FAILURE_THRESHOLD, (
        f"/readyz failed {READINESS_FAILURE_THRESHOLD} times in a row: the chart's probe would take the "
        f"pod out of rotation ({bodies})"
    )
    assert _p(ready_beside_s, 99) <= ServeSettings().store_timeout_s
    assert after.status_code == 200
    assert others == {}, f"reads answered {dict(reads)} {dict(errors)}"
    assert all(r.retry_after is not None for r in refused), "a 503 came without Retry-After"
    assert all(r.link for r in answered), "a full page came without its Link (rel=next)"
    assert len(answered) > 0
    assert _p(beside_s, 99) <= bound_s
    assert peak_mb < PEAK_RSS_BOUND_MB
    assert 1 <= len(workers) <= ServeSettings().read_workers, "pages built outside the read workers"
