"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) over a real inference
service process, both started with their ``btcmlops`` commands on a small replay's stores.

It checks what a viewer sees: the chart with forecasts, the champion's label, a new champion taking
over, the clock controls, and a banner (not a stack trace) once the service is gone.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from btcmlops.clock import start_clock
from btcmlops.registry import CHALLENGER, CHAMPION, ModelRegistry
from btcmlops.replay import ReplayResult
from btcmlops.settings import Settings
from btcmlops.store import PriceStore
from factories import ReplayOf
from services import CliProcess, chromium_browser, free_port

# One worker runs both tests, one after the other: run side by side (two services, two Streamlit
# servers, two Chromiums beside the suite's other workers on two cores), both failed once in CI.
pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.xdist_group("dashboard")]

KEY = "browser-test-key"
SEEN_WITHIN_MS = 30_000
"""A new sim hour, a registry poll and a dashboard refresh, on a busy two-core machine, with room.
Every assertion on the page waits this long (``_every_assertion_waits``): a redraw on a loaded machine
can hide the chart for more than Playwright's default 5 s (in CI the takeover's "forecast v2" was once
not found in 5 s)."""
CLIENT_REFRESH_S = 5
"""The page's redraw beside the hourly client. At 8 sim h/s every redraw brings a new figure. In CI, at a
redraw every second and then every 2 s (the default), the forecast chart was twice not found in 30 s
while the rest of the page, drawn in the same run, was; not reproduced here (a redraw every second beside
ten CPU-bound processes passed). A slower redraw leaves each drawn chart on screen longer, and
``_charts_on_the_page`` says what the page held if it happens again."""


@pytest.fixture(autouse=True)
def _every_assertion_waits() -> Iterator[None]:
    """Each ``expect`` of this module waits up to ``SEEN_WITHIN_MS``; Playwright's default again after
    (the setting is the worker's, and other browser tests may run on it)."""
    expect.set_options(timeout=SEEN_WITHIN_MS)
    yield
    expect.set_options(timeout=None)


@dataclass(frozen=True)
class Stack:
    api_url: str
    dashboard_url: str
    registry: ModelRegistry
    api: CliProcess


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory, replay_of: ReplayOf) -> ReplayResult:
    return replay_of(tmp_path_factory.mktemp("browser"), "2021-01-01", "2021-04-30 23:00")


@contextmanager
def _stack(
    replay: ReplayResult, tmp_path: Path, start: datetime, speed: float, *, client: bool = False
) -> Iterator[Stack]:
    """The api and the dashboard (and, if asked, the hourly client) on a copy of the replay's stores,
    sim time running from ``start`` at ``speed`` sim hours per second.

    With the client the clock is paced, as in ``make stack``: it waits for each hour's forecast, so the
    processes' start-up (tens of seconds on a busy machine, hundreds of sim hours at 8 sim h/s) does not
    run the week past before the first forecast is asked for. The page then redraws every
    ``CLIENT_REFRESH_S``; without the client (the takeover test watches hour by hour) every second."""
    prices = tmp_path / "prices.db"
    shutil.copyfile(replay.out_dir / "prices.db", prices)
    store = PriceStore(f"sqlite:///{prices}")
    store.write_clock(start_clock(start, speed, datetime.now(UTC), paced=client))
    store.dispose()
    api_port, dashboard_port = free_port(), free_port()
    env = {
        "BTCMLOPS_HOME": str(tmp_path / "home"),
        "BTCMLOPS_STORE__URL": f"sqlite:///{prices}",
        "BTCMLOPS_MLFLOW__TRACKING_URI": replay.tracking_uri,
        "BTCMLOPS_SERVE__POLL_INTERVAL_S": "0.5",
        "BTCMLOPS_SERVE__LOG_FLUSH_INTERVAL_S": "0.2",
        "BTCMLOPS_SERVE__CONTROL_KEY": KEY,
        "BTCMLOPS_CLIENT__API_URL": f"http://127.0.0.1:{api_port}",
        "BTCMLOPS_DASHBOARD__API_URL": f"http://127.0.0.1:{api_port}",
        "BTCMLOPS_DASHBOARD__MLFLOW_UI_URL": "http://mlflow.invalid:5000",
    }
    env["BTCMLOPS_DASHBOARD__REFRESH_S"] = str(CLIENT_REFRESH_S if client else 1)
    api = CliProcess("api", ["serve", "--port", str(api_port)], env, tmp_path, forked=True).start()
    dashboard = CliProcess("dashboard", ["dashboard", "--port", str(dashboard_port)], env, tmp_path).start()
    asker = CliProcess("client", ["client"], env, tmp_path)
    try:
        api.wait_for_http(f"http://127.0.0.1:{api_port}/readyz", timeout_s=90)
        if client:
            asker.start()
        dashboard.wait_for_http(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout_s=90)
        registry = ModelRegistry(
            replay.tracking_uri,
            Settings().mlflow.experiment,
            Settings().mlflow.registered_model,
            create=False,
        )
        yield Stack(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dashboard_port}", registry, api)
    finally:
        asker.stop()
        dashboard.stop()
        api.stop()


@pytest.fixture
def stack(replay: ReplayResult, tmp_path: Path) -> Iterator[Stack]:
    # Sim time runs through April at 1 sim hour per real second: a new hour for every refresh.
    with _stack(replay, tmp_path, datetime(2021, 4, 10, tzinfo=UTC), 1.0) as running:
        yield running


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_browser() as browser:
        yield browser.new_page(viewport={"width": 1400, "height": 1000})


def _champion_label(page: Page) -> str:
    return (
        page.get_by_test_id("stMetric")
        .filter(has_text="Champion")
        .get_by_test_id("stMetricValue")
        .inner_text()
    )


def test_viewer_sees_forecasts_a_new_champion_take_over_and_a_banner_when_the_api_is_gone(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    champion = stack.registry.get_by_alias(CHAMPION)
    assert champion is not None
    other = next(info.version for info in stack.registry.versions() if info.version != champion.version)

    page.goto(stack.dashboard_url)
    # The forecast chart (a rerun may leave a stale one hidden; the timeline and why view are charts too).
    chart = page.locator(".js-plotly-plot").filter(visible=True).filter(has_text="real close")
    expect(chart).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Champion")).to_contain_text(
        f"v{champion.version}"
    )
    expect(chart).to_contain_text(f"forecast v{champion.version}")
    expect(page.get_by_role("link", name="Open the model in MLflow")).to_have_attribute(
        "href",
        "http://mlflow.invalid:5000/#/models/btc-next-hour-close?workflowType=machine_learning",
    )

    # The whole run's champions, each linked to its version page; each contest explained, with links.
    ui = "http://mlflow.invalid:5000/#/models/btc-next-hour-close/versions"
    expect(page.get_by_text("Champion timeline")).to_be_visible()
    history = httpx.get(f"{stack.api_url}/model/history").json()
    first = history[0]["to_version"]
    expect(page.get_by_role("link", name=f"v{first}", exact=True)).to_have_attribute(
        "href", f"{ui}/{first}?workflowType=machine_learning"
    )
    decisions = httpx.get(f"{stack.api_url}/decisions").json()
    newest = decisions[-1]
    month = newest["eval_start"][:7]
    explained = page.get_by_test_id("stMarkdown").filter(has_text=f"{month}: ")
    expect(explained).to_contain_text(newest["reason"])  # the full reason
    why = page.locator(".js-plotly-plot").filter(has_text="MAE of the day")
    expect(why).to_contain_text(f"challenger v{newest['challenger_version']}")
    expect(why).to_contain_text("naive (next close = last close)")
    challenger_link = page.get_by_role("link", name=f"challenger v{newest['challenger_version']}")
    expect(challenger_link).to_have_attribute(
        "href", f"{ui}/{newest['challenger_version']}?workflowType=machine_learning"
    )
    assert newest["run_id"], newest
    expect(page.get_by_role("link", name=f"contest run {month}")).to_have_attribute(
        "href",
        f"http://mlflow.invalid:5000/#/experiments/{newest['experiment_id']}/runs/{newest['run_id']}"
        "?workflowType=machine_learning",
    )

    stack.registry.set_alias(CHAMPION, other)  # what the trainer does on a promotion
    expect(page.get_by_test_id("stMetric").filter(has_text="Champion")).to_contain_text(f"v{other}")
    expect(chart).to_contain_text(f"v{other} takes over")
    expect(chart).to_contain_text(f"forecast v{other}")

    stack.registry.set_alias(CHALLENGER, champion.version)  # the old champion, in shadow for the test
    page.get_by_text("Show the challenger's shadow forecasts").click()
    expect(chart).to_contain_text(f"shadow v{champion.version} (challenger, not served)")
    assert _champion_label(page) == f"v{other}"
    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    if target := os.environ.get("BTCMLOPS_TEST_SCREENSHOT"):  # `make screenshot`-style runs keep it
        shutil.copyfile(screenshot, target)

    page.get_by_role("button", name="Pause").click()  # no key yet: refused on the page, clock unchanged
    expect(page.get_by_text("Enter the control key")).to_be_visible()
    assert httpx.get(f"{stack.api_url}/clock").json()["paused"] is False
    page.get_by_label("Control key", exact=True).fill(KEY)
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Clock paused")).to_be_visible()
    assert httpx.get(f"{stack.api_url}/clock").json()["paused"] is True
    expect(page.get_by_test_id("stMetric").filter(has_text="Clock")).to_contain_text("paused")

    # The API's own docs render in a browser with no internet (Swagger UI is served by the service).
    dashboard_url = page.url
    page.goto(f"{stack.api_url}/docs")
    expect(page.get_by_text("/predict/batch", exact=True)).to_be_visible()
    page.goto(dashboard_url)
    expect(chart).to_be_visible()

    stack.api.stop()
    banner = page.get_by_test_id("stAlert").filter(has_text="is not answering")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(stack.api_url)
    expect(page.get_by_text("The chart as it was at sim time")).to_be_visible()
    expect(chart).to_be_visible()  # kept under the banner
    assert "Traceback" not in page.inner_text("body")


def test_viewer_sees_each_versions_band_and_its_live_coverage_and_interval_score(
    replay: ReplayResult, tmp_path: Path, page: Page
) -> None:
    """The hourly client asks every hour, as in ``make stack``: a week of live forecasts, two versions
    (8 sim h/s: the paced clock waits for each hour's forecast, so the speed changes only the wall time)."""
    start = datetime(2021, 4, 2, tzinfo=UTC)
    with _stack(replay, tmp_path, start, 8.0, client=True) as stack:
        champion = stack.registry.get_by_alias(CHAMPION)
        assert champion is not None
        other = next(info.version for info in stack.registry.versions() if info.version != champion.version)
        page.set_viewport_size({"width": 1400, "height": 2100})  # the tiles and the tables in one shot
        page.goto(stack.dashboard_url)
        chart = page.locator(".js-plotly-plot").filter(visible=True).filter(has_text="real close")
        try:
            expect(chart).to_contain_text(f"v{champion.version} 80% interval")
        except AssertionError as error:
            raise AssertionError(f"{_charts_on_the_page(page)}\n{error}") from None
        _wait_for_sim_time(stack.api_url, start + timedelta(days=5))
        stack.registry.set_alias(CHAMPION, other)  # a takeover mid-week: two versions, two bands
        expect(chart).to_contain_text(f"v{other} 80% interval")
        _wait_for_sim_time(stack.api_url, start + timedelta(days=7))
        _pause_from_the_sidebar(page, stack.api_url)
        coverage = page.get_by_test_id("stMetric").filter(has_text=f"v{other} coverage, last day")
        expect(coverage.get_by_test_id("stMetricValue")).to_contain_text("%")
        score = page.get_by_test_id("stMetric").filter(has_text=f"v{other} interval score, last day")
        expect(score).to_contain_text("skill vs naive")
        table = page.get_by_test_id("stDataFrame").filter(visible=True).first
        expect(table).to_be_visible()
        page.wait_for_timeout(1000 * (CLIENT_REFRESH_S + 1))  # one more redraw: the paused clock's hours
        screenshot = tmp_path / "dashboard-intervals.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
        if target := os.environ.get("BTCMLOPS_TEST_INTERVALS_SCREENSHOT"):
            shutil.copyfile(screenshot, target)
        assert "Traceback" not in page.inner_text("body")

        # The monitoring view: the service's own 7-day record of both versions, and the alerts' source.
        page.goto(f"{stack.dashboard_url}/monitoring")
        expect(page.get_by_text("Live record, last 7 sim days")).to_be_visible()
        record = page.get_by_test_id("stDataFrame").filter(visible=True).first
        expect(record).to_be_visible()
        scores = httpx.get(f"{stack.api_url}/monitoring/scores", timeout=5).json()["scores"]
        shown = {f"v{item['model_version']}" for item in scores if item["scored_hours"] > 0}
        assert shown == {f"v{champion.version}", f"v{other}"}, scores  # both served live in the week
        expect(page.get_by_text("No Prometheus is configured")).to_be_visible()
        expect(page.get_by_text("The contest so far")).to_be_visible()
        drift = page.locator(".js-plotly-plot").filter(visible=True).filter(has_text="PSI")
        expect(drift).to_be_visible()  # a week of hours: every feature's PSI
        screenshot = tmp_path / "dashboard-monitoring.png"
        page.screenshot(path=str(screenshot), full_page=True)
        if target := os.environ.get("BTCMLOPS_TEST_MONITORING_SCREENSHOT"):
            shutil.copyfile(screenshot, target)
        assert "Traceback" not in page.inner_text("body")


def _charts_on_the_page(page: Page) -> str:
    """Each Plotly chart on the page: its size on screen, its trace names and its legend's text, for a
    failure's message (Playwright's own shows the page's text, cut short in CI's log)."""
    return str(
        page.evaluate(
            """() => [...document.querySelectorAll('.js-plotly-plot')].map(chart => ({
                size: [chart.offsetWidth, chart.offsetHeight],
                traces: (chart.data || []).map(trace => trace.name),
                legend: chart.querySelector('.legend')?.textContent ?? null,
            }))"""
        )
    )


def _pause_from_the_sidebar(page: Page, api_url: str) -> None:
    """Pause the clock with the sidebar's button, as a presenter does, and wait until the service says
    it is paused: the week's scores below are read at the paused sim time.

    The key is entered (Enter applies it, and the page runs again) before the button is clicked: a
    click that lands while the page is still running for the typed key can be lost, and on a busy
    machine it was (the clock ran on at 8 sim h/s until the first champion's hours left the 7-day
    window, and its scores with them)."""
    key = page.get_by_label("Control key", exact=True)
    key.fill(KEY)
    key.press("Enter")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Clock paused")).to_be_visible()
    assert httpx.get(f"{api_url}/clock", timeout=5).json()["paused"] is True


def _wait_for_sim_time(api_url: str, until: datetime) -> None:
    """Poll the clock (bounded) until sim time reaches ``until``."""
    deadline = time.monotonic() + 120
    while datetime.fromisoformat(httpx.get(f"{api_url}/clock", timeout=5).json()["sim_now"]) < until:
        assert time.monotonic() < deadline, f"sim time did not reach {until}"
        time.sleep(0.5)
