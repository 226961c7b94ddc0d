"""Save screenshots of a running MLflow UI (``make stack`` first) with Debian's Chromium.

Usage: ``uv run python scripts/mlflow_screenshot.py [URL] [--model NAME] [--experiment NAME]
[--out-dir DIR] [--plain]``. Saves ``mlflow-model.png``, the registered model's page (its description,
its versions with their tags and aliases), and with ``--experiment`` also ``mlflow-runs.png``: the
experiment's runs table in "Model training" mode on the "Contest verdicts" view, or with ``--plain``
on the default columns. Each page is captured once its content has rendered, not after a fixed wait.
The MLflow Assistant panel, which MLflow opens by itself in a new browser, is closed first.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import quote

import httpx
from browser import launch_chromium  # scripts/browser.py, beside this file
from playwright.sync_api import Page, sync_playwright

from btcmlops.mlflow_links import CONTEST_VIEW_ID, experiment_runs_url
from btcmlops.settings import Settings

RENDER_TIMEOUT_MS = 60_000
WIDTH = 1600
MODEL_PAGE_HEIGHT, RUNS_PAGE_HEIGHT = 1900, 1000
"""MLflow scrolls inside its own panel, so a full-page shot is one viewport: the model page's is tall
enough for the description and the first versions."""
ASSISTANT_CLOSE = '[data-component-id="mlflow.assistant.chat_panel.close"]'


def experiment_id(ui_url: str, name: str) -> str:
    """The id of the experiment called ``name``, through the tracking server's REST API."""
    answer = httpx.get(
        f"{ui_url.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": name},
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["experiment"]["experiment_id"])


def _close_assistant(page: Page) -> None:
    """Close the assistant panel if MLflow opened it (it takes a third of the width)."""
    close = page.locator(ASSISTANT_CLOSE)
    if close.count() and close.first.is_visible():
        close.first.click()
        close.first.wait_for(state="hidden")


def capture_model(page: Page, ui_url: str, model: str, out: Path) -> None:
    """Screenshot the registered model's page once its description and versions have rendered."""
    page.set_viewport_size({"width": WIDTH, "height": MODEL_PAGE_HEIGHT})
    page.goto(f"{ui_url.rstrip('/')}/#/models/{quote(model, safe='')}")
    page.get_by_role("heading", name=model).wait_for(timeout=RENDER_TIMEOUT_MS)
    page.locator('a[href*="/versions/"]').first.wait_for(timeout=RENDER_TIMEOUT_MS)
    _close_assistant(page)
    page.screenshot(path=str(out), full_page=True)


def capture_runs(page: Page, ui_url: str, experiment: str, out: Path, *, plain: bool = False) -> None:
    """Screenshot the experiment's runs table once its first row has rendered."""
    view = None if plain else CONTEST_VIEW_ID
    page.set_viewport_size({"width": WIDTH, "height": RUNS_PAGE_HEIGHT})
    page.goto(experiment_runs_url(ui_url, experiment_id(ui_url, experiment), view=view))
    page.locator('[role="gridcell"] a[href*="/runs/"]').first.wait_for(timeout=RENDER_TIMEOUT_MS)
    _close_assistant(page)
    page.screenshot(path=str(out), full_page=True)


def main() -> None:
    settings = Settings()  # this script is an entry point: BTCMLOPS_* and .env
    defaults = settings.mlflow
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "url",
        nargs="?",
        default=settings.dashboard.mlflow_ui_url,
        help="The MLflow server (default: BTCMLOPS_DASHBOARD__MLFLOW_UI_URL).",
    )
    parser.add_argument("--model", default=defaults.registered_model, help="Registered model name.")
    parser.add_argument("--experiment", help=f"Also its runs (e.g. {defaults.experiment}).")
    parser.add_argument("--plain", action="store_true", help="Runs on the default columns, not the view.")
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    arguments = parser.parse_args()
    arguments.out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page()
        capture_model(page, arguments.url, arguments.model, arguments.out_dir / "mlflow-model.png")
        saved.append(arguments.out_dir / "mlflow-model.png")
        if arguments.experiment is not None:
            out = arguments.out_dir / "mlflow-runs.png"
            capture_runs(page, arguments.url, arguments.experiment, out, plain=arguments.plain)
            saved.append(out)
        browser.close()
    for path in saved:
        print(f"saved {path}")


if __name__ == "__main__":
    main()
