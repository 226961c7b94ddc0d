"""The MLflow UI as a user reads it: a real mlflow server (MariaDB, moto's S3) in Debian's Chromium.

Two small versions are registered through ``ModelRegistry``, one contest is logged and applied the
way the contest does it (run name, reason as the run's description, status, aliases, version tags),
and the pages are checked for what they show without any configuration in a fresh browser.

Some checks pin down MLflow 3.17.2's own behaviour, the reasons for ``presentation``'s choices: a
plain experiment link opens the GenAI overview, and the runs table has no metric column by default.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Locator, Page, expect

from btcmlops.contest import TrainingWindow
from btcmlops.features import build_samples
from btcmlops.mlflow_links import experiment_runs_url, model_version_url, run_url
from btcmlops.model import train_forecaster
from btcmlops.registry import CHALLENGER, CHAMPION, ModelRegistry, VersionStatus
from btcmlops.registry.presentation import (
    CONTEST_VIEW_NAME,
    contest_run_name,
    contest_version_tags,
    version_description,
)
from btcmlops.registry.version_tags import DETAILS_TAG
from btcmlops.settings import ModelSettings
from factories import make_candles
from services import chromium_browser, require_chromium

# One xdist worker (make test) runs the module: the recorded runs are made once.
pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.xdist_group("mlflow_ui")]

SCRIPT = Path(__file__).parents[2] / "scripts" / "mlflow_screenshot.py"
TINY_MODEL = ModelSettings(num_boost_round=20, min_data_in_leaf=20)
SEEN_WITHIN_MS = 30_000
"""The UI is a single-page app that fetches after load; on a busy two-core machine, with room."""
DEFAULT_COLUMNS = ["Run Name", "Created", "Dataset", "Duration", "Source", "Models"]
CONTEST_MONTH = "2021-03"
MAES = {"champion_mae": 318.2, "challenger_mae": 317.934, "naive_mae": 322.356}
REASON = "challenger wins: challenger MAE 317.93 vs champion 318.20 (-0.09%, margin 0.00%), naive 322.36"


@dataclass(frozen=True)
class Recorded:
    """What the registry holds once the contest is applied."""

    url: str
    experiment_name: str
    experiment_id: str
    model_name: str
    champion: int
    challenger: int
    contest_name: str
    contest_run_id: str
    training_names: tuple[str, ...]


def _window(rows: pd.DataFrame, trained_through: str) -> TrainingWindow:
    target = rows["target_time"]
    return TrainingWindow(target.iloc[0], target.iloc[-1], len(rows), f"d-{trained_through}", trained_through)


@pytest.fixture(scope="module")
def recorded(mlflow_server: str) -> Recorded:
    """Two versions, then the March contest: the challenger wins, as the contest code records it."""
    samples = build_samples(make_candles("2021-01-01", "2021-01-20"))
    suffix = uuid.uuid4().hex[:8]
    registry = ModelRegistry(mlflow_server, f"btc-next-hour-{suffix}", f"btc-next-hour-close-{suffix}")
    versions: dict[str, int] = {}
    names = []
    for rows, month, role in (
        (samples.iloc[: len(samples) // 2], "2021-01", CHAMPION),
        (samples, "2021-02", CHALLENGER),
    ):
        window = _window(rows, month)
        name = f"{role} trained through {month}"
        info = registry.register(
            train_forecaster(rows, TINY_MODEL),
            window,
            {**TINY_MODEL.model_dump(), "role": role},
            {"in_sample_mae": 1.0},
            rows.head(5),
            run_name=name,
        )
        registry.describe_version(
            info.version,
            version_description(month, role, window.train_start, window.train_end, window.train_rows),
        )
        registry.set_status(
            info.version, VersionStatus.PRODUCTION if role == CHAMPION else VersionStatus.STAGING
        )
        registry.set_alias(role, info.version)
        versions[role] = info.version
        names.append(name)
    champion, challenger = versions[CHAMPION], versions[CHALLENGER]
    name = contest_run_name(CONTEST_MONTH, champion, challenger, *MAES.values(), promoted=True)
    run_id = registry.log_contest(
        run_name=name,
        params={
            "month": CONTEST_MONTH,
            "champion_version": champion,
            "challenger_version": challenger,
            "promoted": True,
            "reason": REASON,
        },
        metrics=MAES,
        tags={"month": CONTEST_MONTH, "decision": "promoted", "mlflow.note.content": REASON},
    )
    registry.set_status(challenger, VersionStatus.PRODUCTION)
    registry.set_alias(CHAMPION, challenger)
    registry.set_status(champion, VersionStatus.ARCHIVED)
    registry.delete_alias(CHALLENGER)
    for version, tags in contest_version_tags(CONTEST_MONTH, run_id, True, champion, challenger).items():
        registry.tag_version(version, tags)
    assert registry.experiment_id is not None
    return Recorded(
        mlflow_server,
        registry.experiment_name,
        registry.experiment_id,
        registry.model_name,
        champion,
        challenger,
        name,
        run_id,
        tuple(names),
    )


@pytest.fixture
def page() -> Iterator[Page]:
    """A fresh browser each test: no localStorage, so MLflow shows what a first visit shows."""
    with chromium_browser() as browser:
        yield browser.new_page(viewport={"width": 1600, "height": 1000})


def _keep(page: Page, tmp_path: Path, name: str) -> None:
    """Save what the page shows; ``BTCMLOPS_TEST_SCREENSHOT_DIR`` keeps a copy (to look at after)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    if target := os.environ.get("BTCMLOPS_TEST_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / path.name)


def _run_link(page: Page, name: str) -> Locator:
    return page.locator('[role="gridcell"] a').filter(has_text=name)


def _shown_unclipped(link: Locator, text: str) -> bool:
    """Whether the first ``len(text)`` characters of the link's text are inside its clipping box.

    The Run Name cell cuts its text off with an ellipsis; a Range over the text's start measures where
    those characters are laid out, the link's box where the cell stops showing them.
    """
    return bool(
        link.evaluate(
            """(link, length) => {
                const node = document.createTreeWalker(link, NodeFilter.SHOW_TEXT).nextNode();
                const range = document.createRange();
                range.setStart(node, 0);
                range.setEnd(node, length);
                const clip = node.parentElement.getBoundingClientRect();
                return range.getBoundingClientRect().right <= clip.right + 0.5;
            }""",
            len(text),
        )
    )


def _column_headers(page: Page) -> list[str]:
    """The column titles from left to right, of the columns rendered (the grid skips those scrolled
    out of sight); the grid's DOM order is not the order on screen."""
    found: list[list[object]] = page.locator(".ag-header-cell[col-id]").evaluate_all(
        "cells => cells.map(cell => [cell.getBoundingClientRect().left, cell.innerText.trim()])"
    )
    return [str(text) for _, text in sorted(found, key=lambda cell: float(str(cell[0]))) if text]


def test_a_plain_experiment_link_opens_mlflows_genai_overview(recorded: Recorded, page: Page) -> None:
    """MLflow 3.17.2 ignores the experiment's kind tag for this: why links carry ``workflowType``."""
    page.goto(f"{recorded.url}/#/experiments/{recorded.experiment_id}")
    expect(page).to_have_url(re.compile(r"/overview\b.*workflowType=genai"), timeout=SEEN_WITHIN_MS)


def test_the_runs_link_shows_every_run_by_name_and_the_verdict_without_configuration(
    recorded: Recorded, page: Page, tmp_path: Path
) -> None:
    page.goto(experiment_runs_url(recorded.url, recorded.experiment_id, view=None))
    contest = _run_link(page, recorded.contest_name)
    expect(contest).to_be_visible(timeout=SEEN_WITHIN_MS)
    for name in recorded.training_names:
        expect(_run_link(page, name)).to_be_visible()
    expect(page.get_by_role("link", name="Overview")).to_have_count(0)  # the GenAI sidebar is not shown
    assert _column_headers(page) == DEFAULT_COLUMNS  # no metric, param or tag column by default
    # The name is all a user gets, and the narrow Run Name column shows only its start: the verdict.
    verdict = f"{CONTEST_MONTH}: v{recorded.challenger} promoted"
    assert recorded.contest_name.startswith(verdict)
    assert _shown_unclipped(contest, verdict)
    expect(page.get_by_text("Views → Contest verdicts")).to_be_visible()  # the experiment's description
    _keep(page, tmp_path, "mlflow-runs-default")


def test_the_contest_view_shows_maes_and_reason_as_columns(
    recorded: Recorded, page: Page, tmp_path: Path
) -> None:
    page.goto(experiment_runs_url(recorded.url, recorded.experiment_id, view=None))
    expect(_run_link(page, recorded.contest_name)).to_be_visible(timeout=SEEN_WITHIN_MS)
    page.get_by_test_id("saved-views-trigger").click()  # what the experiment's description says to do
    page.get_by_role("menuitem", name=CONTEST_VIEW_NAME).click()

    contest = _run_link(page, recorded.contest_name)
    expect(page.get_by_test_id("saved-views-trigger")).to_have_text(CONTEST_VIEW_NAME)
    for name in recorded.training_names:  # contest runs only
        expect(_run_link(page, name)).to_have_count(0, timeout=SEEN_WITHIN_MS)
    assert _shown_unclipped(contest, recorded.contest_name.split(" — ")[0])  # the whole verdict
    assert _column_headers(page)[:5] == ["Run Name", "Created", "challenger_mae", "champion_mae", "naive_mae"]
    for metric, value in MAES.items():
        cell = page.locator(f'[role="gridcell"][col-id="metrics.`{metric}`"]')
        expect(cell).to_contain_text(str(value)[:5])  # the grid rounds: 317.934 shows as 317.93
    _keep(page, tmp_path, "mlflow-runs-contest-view")
    page.locator(".ag-center-cols-viewport").evaluate("e => { e.scrollLeft = e.scrollWidth; }")
    expect(page.locator('[role="gridcell"][col-id="params.`reason`"]')).to_have_text(REASON)

    page.goto(experiment_runs_url(recorded.url, recorded.experiment_id))  # the same view by link
    expect(page.locator('[role="gridcell"]').filter(has_text=REASON)).to_be_visible(timeout=SEEN_WITHIN_MS)
    expect(page.get_by_test_id("saved-views-trigger")).to_have_text(CONTEST_VIEW_NAME)


def test_model_and_version_pages_explain_themselves_and_name_the_contest(
    recorded: Recorded, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{recorded.url}/#/models/{recorded.model_name}")
    expect(page.get_by_text("the version the inference service serves")).to_be_visible(timeout=SEEN_WITHIN_MS)
    expect(page.get_by_text("champion_audit")).to_be_visible()
    _keep(page, tmp_path, "mlflow-model")

    page.goto(f"{recorded.url}/#/models/{recorded.model_name}/versions/{recorded.challenger}")
    expect(page.get_by_text("Trained through 2021-02 as the challenger")).to_be_visible(
        timeout=SEEN_WITHIN_MS
    )
    tags = page.get_by_role("row")
    details = tags.filter(has_text=DETAILS_TAG)  # the JSON tag, in full on the version's page
    expect(details).to_contain_text(f'"contest.run_id": "{recorded.contest_run_id}"')
    expect(tags.filter(has_text="contest.outcome")).to_contain_text(f"promoted over v{recorded.champion}")
    _keep(page, tmp_path, "mlflow-version-challenger")

    page.goto(f"{recorded.url}/#/models/{recorded.model_name}/versions/{recorded.champion}")
    expect(page.get_by_text("Trained through 2021-01 as the champion")).to_be_visible(timeout=SEEN_WITHIN_MS)
    expect(details).to_contain_text(f'"archived_by_run_id": "{recorded.contest_run_id}"')
    expect(details).to_contain_text(f'"replaced_by": "v{recorded.challenger}"')

    page.goto(f"{recorded.url}/#/runs/{recorded.contest_run_id}")  # what the description says to open
    description = page.get_by_test_id("note-editor-preview-content")  # the run's description
    expect(description).to_have_text(REASON, timeout=SEEN_WITHIN_MS)
    expect(page.get_by_text(recorded.contest_name).first).to_be_visible()


def test_the_dashboards_version_and_run_links_open_the_machine_learning_view_without_errors(
    recorded: Recorded, page: Page, tmp_path: Path
) -> None:
    """The links the dashboard gives, in a fresh browser: "Model training" mode, and every call the
    version page makes answers (its get-artifact of the MLmodel answered 500 with a ``runs:/`` source)."""
    failed: list[str] = []
    page.on("response", lambda answer: failed.append(answer.url) if answer.status >= 500 else None)
    with page.expect_response(lambda answer: "get-artifact" in answer.url, timeout=SEEN_WITHIN_MS) as call:
        page.goto(model_version_url(recorded.url, recorded.model_name, recorded.challenger))
    assert call.value.status == 200, call.value.url
    expect(page.get_by_text("Now: the champion")).to_be_visible(timeout=SEEN_WITHIN_MS)
    expect(page.get_by_text("never served")).to_have_count(0)
    expect(page.get_by_role("link", name="Overview")).to_have_count(0)  # the GenAI sidebar is not shown
    _keep(page, tmp_path, "mlflow-version-from-dashboard")

    page.goto(run_url(recorded.url, recorded.experiment_id, recorded.contest_run_id))
    expect(page.get_by_test_id("note-editor-preview-content")).to_have_text(REASON, timeout=SEEN_WITHIN_MS)
    expect(page.get_by_role("link", name="Overview")).to_have_count(0)
    assert not failed, failed


def test_a_version_artifact_is_served_by_the_mlflow_server(recorded: Recorded) -> None:
    """What the version page asks for: the server reads the artifact through its proxy (was 500)."""
    answer = httpx.get(
        f"{recorded.url}/model-versions/get-artifact",
        params={"path": "MLmodel", "name": recorded.model_name, "version": recorded.challenger},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text[:500]
    assert "lightgbm" in answer.text


def test_the_versions_table_lists_the_scanned_tags_and_one_whole_json_tag(
    recorded: Recorded, page: Page, tmp_path: Path
) -> None:
    """Each tag is a line of the versions table: fifteen of them left a screen one and a half versions."""
    page.goto(f"{recorded.url}/#/models/{recorded.model_name}")
    expected = {
        recorded.challenger: ["contest.outcome", DETAILS_TAG, "status", "trained_through"],
        recorded.champion: [DETAILS_TAG, "status", "trained_through"],  # the first champion: no contest
    }
    for version, keys in expected.items():
        link = page.get_by_role("link", name=f"Version {version}", exact=True)
        row = page.get_by_role("row").filter(has=link)
        key_span = page.locator(f'span[title="{DETAILS_TAG}"]')
        key = row.locator(key_span)  # beside a long value, a long key is cut too
        expect(key).to_have_text(DETAILS_TAG, timeout=SEEN_WITHIN_MS)
        cell = row.get_by_role("cell").filter(has=key_span)  # the Tags cell (an alias is drawn as a tag too)
        tags = cell.locator('[role="status"][data-component-type="tag"][title]')  # one per tag, by key
        assert sorted(tags.evaluate_all("found => found.map(tag => tag.title)")) == keys
        assert key.evaluate("span => span.scrollWidth <= span.clientWidth")
    _keep(page, tmp_path, "mlflow-model-versions")


def test_the_screenshot_script_saves_both_pages(recorded: Recorded, tmp_path: Path) -> None:
    require_chromium()
    command = [sys.executable, str(SCRIPT), recorded.url, "--model", recorded.model_name]
    done = subprocess.run(
        [*command, "--experiment", recorded.experiment_name, "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("mlflow-model.png", "mlflow-runs.png"):
        assert (tmp_path / name).stat().st_size > 20_000, name
