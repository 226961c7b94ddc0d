"""Save a screenshot of a running dashboard (``make stack`` first) with Debian's Chromium.

Usage: ``uv run python scripts/dashboard_screenshot.py [URL] [OUT] [--wait-s N] [--until SIM_TIME]``.
The page must stay open while the replay runs: the dashboard asks for forecasts only while viewed, so
``--until`` keeps it open until the inference service's sim clock reaches that time. docs/live-stack.md's
``docs/dashboard.png`` is made this way (the note under it there gives the settings).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

import httpx
from browser import launch_chromium  # scripts/browser.py, beside this file
from playwright.sync_api import sync_playwright

from btcmlops.settings import Settings


def _wait_for_sim_time(api_url: str, until: datetime) -> None:
    """Block until the shared sim clock has passed ``until`` (the page keeps refreshing meanwhile)."""
    while True:
        sim_now = datetime.fromisoformat(httpx.get(f"{api_url}/clock", timeout=5).json()["sim_now"])
        if sim_now >= until:
            return
        print(f"sim time {sim_now:%Y-%m-%d %H:%M}, waiting for {until:%Y-%m-%d %H:%M}", flush=True)
        time.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    settings = Settings().dashboard  # this script is an entry point: BTCMLOPS_* and .env
    local = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    parser.add_argument(
        "url", nargs="?", default=f"http://{local}:{settings.port}", help="Default: BTCMLOPS_DASHBOARD__PORT."
    )
    parser.add_argument("out", nargs="?", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--wait-s", type=float, default=5.0, help="Seconds to let the page fill in.")
    parser.add_argument("--until", type=datetime.fromisoformat, help="Sim time (ISO 8601, UTC) to wait for.")
    parser.add_argument(
        "--api-url", default=settings.api_url, help="Inference service (--until); default: the setting."
    )
    arguments = parser.parse_args()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(arguments.url)
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        if arguments.until is not None:
            _wait_for_sim_time(arguments.api_url, arguments.until)
        page.wait_for_timeout(arguments.wait_s * 1000)
        page.screenshot(path=str(arguments.out), full_page=True)
        browser.close()
    print(f"saved {arguments.out}")


if __name__ == "__main__":
    main()
