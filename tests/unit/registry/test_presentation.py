"""The texts and tags btcmlops shows in the MLflow UI: pure functions, checked without MLflow."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from btcmlops.mlflow_links import (
    CONTEST_VIEW_ID,
    experiment_runs_url,
    model_version_url,
    registered_model_url,
    run_url,
)
from btcmlops.registry import presentation
from btcmlops.registry.presentation import (
    CONTEST_VIEW_NAME,
    EXPERIMENT_TAGS,
    contest_run_name,
    contest_version_tags,
    registered_model_description,
    version_description,
    with_status,
)

VISIBLE_RUN_NAME_CHARS = 22
"""What the runs table's 190 px Run Name column shows of a name before its ellipsis."""
MAX_EXPERIMENT_TAG_VALUE = 20_000
MAX_TAG_KEY = 250
MAX_DESCRIPTION = 5000
"""MLflow's limits (``mlflow.utils.validation``, and the 5000-character description columns)."""


def test_the_module_imports_nothing_of_mlflow() -> None:
    tree = ast.parse(Path(presentation.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    # The one btcmlops import allowed: the UI links, which import nothing either (never the registry).
    allowed = {"btcmlops.mlflow_links"}
    assert not [name for name in imported if name.split(".")[0] == "mlflow"]
    assert not [name for name in imported if name.startswith("btcmlops") and name not in allowed]


def test_a_promotion_names_month_verdict_and_the_three_maes() -> None:
    name = contest_run_name("2024-03", 1, 3, 318.2, 317.934, 322.356, promoted=True)
    assert name == "2024-03: v3 promoted over v1 — MAE v3 317.93 vs v1 318.20, naive 322.36"
    assert "v3 promoted" in name[:VISIBLE_RUN_NAME_CHARS]  # what the table shows before cutting


def test_a_loss_names_the_champion_that_stays() -> None:
    name = contest_run_name("2024-04", 3, 4, 325.0, 330.1, 331.0, promoted=False)
    assert name == "2024-04: v4 archived, v3 stays champion — MAE v4 330.10 vs v3 325.00, naive 331.00"
    assert "v4 archived" in name[:VISIBLE_RUN_NAME_CHARS]


@pytest.mark.parametrize("stamp", [pd.Timestamp, datetime.fromisoformat])
def test_a_version_description_gives_the_window(stamp: Callable[[str], datetime]) -> None:
    text = version_description(
        "2024-01", "challenger", stamp("2023-06-01 00:00"), stamp("2024-01-31 23:00"), 5856
    )
    first_line = text.splitlines()[0]
    assert first_line.startswith("Trained through 2024-01 as the challenger")
    assert not set(first_line) & set("*`_[")  # the versions table shows it unrendered
    assert "5,856 hourly rows" in first_line
    assert "2023-06-01 00:00 to 2024-01-31 23:00 UTC" in first_line
    assert "`staging`" in text
    assert "`contest.run_id`" in text


def test_the_first_champion_is_described_as_serving() -> None:
    text = version_description(
        "2024-01", "champion", pd.Timestamp("2023-06-01"), pd.Timestamp("2024-01-31 23:00"), 10
    )
    assert "first `champion` (status `production`)" in text
    assert "`staging`" not in text


def test_a_status_paragraph_is_replaced_not_added() -> None:
    text = version_description("2024-01", "challenger", datetime(2023, 1, 1), datetime(2024, 1, 31), 1)
    promoted = with_status(text, "production")
    assert promoted.count("Now: ") == 1
    assert "the **champion**" in promoted
    assert with_status(promoted, "production") == promoted
    older = "Trained through 2024-01 as the challenger.\n\nIt entered as the `challenger`."
    assert with_status(older, "archived").split("\n\n")[1].startswith("Now: **archived**")


def test_an_unknown_role_is_described_as_given() -> None:
    text = version_description("2024-01", "candidate", datetime(2024, 1, 1), datetime(2024, 1, 31), 1)
    assert "It entered as `candidate`." in text


def test_a_promotion_tags_the_challenger_with_its_contest_and_the_champion_with_its_end() -> None:
    tags = contest_version_tags("2024-03", "abc123", True, champion=1, challenger=3)
    assert tags == {
        3: {
            "contest.month": "2024-03",
            "contest.run_id": "abc123",
            "contest.outcome": "promoted over v1",
            "promoted_in": "2024-03",
        },
        1: {"archived_in": "2024-03", "archived_by_run_id": "abc123", "replaced_by": "v3"},
    }


def test_a_loss_tags_only_the_challenger() -> None:
    tags = contest_version_tags("2024-04", "def456", False, 3, 4)
    assert tags == {
        4: {
            "contest.month": "2024-04",
            "contest.run_id": "def456",
            "contest.outcome": "archived, v3 stays champion",
            "archived_in": "2024-04",
        }
    }


def test_a_replaced_champion_keeps_the_tags_of_the_contest_that_promoted_it() -> None:
    """Promoted in March, replaced in July: the July tags add to the March ones, none is rewritten."""
    march = contest_version_tags("2024-03", "march-run", True, champion=1, challenger=3)[3]
    july = contest_version_tags("2024-07", "july-run", True, champion=3, challenger=7)[3]
    assert not set(march) & set(july)
    assert {**march, **july}["contest.run_id"] == "march-run"


def test_experiment_tags_make_it_a_machine_learning_experiment_with_a_description() -> None:
    assert EXPERIMENT_TAGS["mlflow.experimentKind"] == "custom_model_development"
    assert "Views → Contest verdicts" in EXPERIMENT_TAGS["mlflow.note.content"]
    for key, value in EXPERIMENT_TAGS.items():
        assert isinstance(value, str)
        assert len(key) <= MAX_TAG_KEY
        assert len(value) <= MAX_EXPERIMENT_TAG_VALUE


def test_the_contest_view_is_a_saved_view_the_ui_can_read() -> None:
    envelope = json.loads(EXPERIMENT_TAGS[f"mlflow.sharedViewState.{CONTEST_VIEW_ID}"])
    # The UI's envelope check: a string name, a number createdAt, and the state as a string.
    assert envelope["name"] == CONTEST_VIEW_NAME
    assert isinstance(envelope["createdAt"], int)
    assert isinstance(envelope["state"], str)
    state = json.loads(envelope["state"])
    assert state["searchFilter"] == "tags.`btcmlops.kind` = 'contest'"
    assert state["selectedColumns"] == [
        "metrics.`challenger_mae`",
        "metrics.`champion_mae`",
        "metrics.`naive_mae`",
        "tags.`decision`",
        "params.`reason`",
    ]
    assert set(state["columnWidths"]) <= set(state["columnOrder"])  # widths apply to ordered columns


def test_the_runs_link_opens_model_training_mode_on_the_contest_view() -> None:
    assert experiment_runs_url("http://localhost:5000/", "7") == (
        "http://localhost:5000/#/experiments/7/runs"
        "?workflowType=machine_learning&viewStateShareKey=contest-verdicts"
    )
    assert experiment_runs_url("http://mlflow:5000", "7", view=None) == (
        "http://mlflow:5000/#/experiments/7/runs?workflowType=machine_learning"
    )


def test_every_link_opens_the_machine_learning_view() -> None:
    """Without the query MLflow 3.17 opens a first visit in its GenAI view, whatever the page."""
    links = [
        experiment_runs_url("http://ui:5000", "7"),
        registered_model_url("http://ui:5000", "btc model"),
        model_version_url("http://ui:5000", "btc model", 3),
        run_url("http://ui:5000", "7", "abc"),
    ]
    for link in links:
        assert link.split("?", 1)[1].split("&")[0] == "workflowType=machine_learning", link
    assert links[2] == "http://ui:5000/#/models/btc%20model/versions/3?workflowType=machine_learning"
    assert links[3] == "http://ui:5000/#/experiments/7/runs/abc?workflowType=machine_learning"


def test_the_registered_model_description_explains_aliases_status_contest_and_audit() -> None:
    text = registered_model_description()
    assert len(text) <= MAX_DESCRIPTION
    for needle in (
        "alias **`champion`**, status `production`",
        "alias **`challenger`**, status `staging`",
        "status `archived`",
        "shadow",
        "naive",
        "btcmlops model promote",
        "btcmlops model rollback",
        "champion_audit",
        "in this UI",
    ):
        assert needle in text, needle
