"""Save a screenshot of a running dashboard (``make stack`` first) with Debian's Chromium.

Usage: ``uv run python scripts/dashboard_screenshot.py [URL] [OUT] [--wait-s N]``; the README's
``docs/dashboard.png`` is made this way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8501")
    parser.add_argument("out", nargs="?", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--wait-s", type=float, default=5.0, help="Seconds to let the page fill in.")
    arguments = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(arguments.url)
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        page.wait_for_timeout(arguments.wait_s * 1000)
        page.screenshot(path=str(arguments.out), full_page=True)
        browser.close()
    print(f"saved {arguments.out}")


if __name__ == "__main__":
    main()
