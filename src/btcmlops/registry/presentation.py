"""What a user reads in the MLflow UI (3.17): run names, descriptions, and the tags that link versions
to the contests that decided them.

Pure text, no MLflow import: ``ModelRegistry`` writes these, the contest calls the builders, and the
tests read them. The links into the UI are in ``btcmlops.mlflow_links``, below the registry, so that
the dashboard shows them without importing the registry. What MLflow 3.17.2's UI does with each (read
from its JS bundle and checked in Chromium, see ``tests/integration/test_mlflow_ui.py``):

* The experiment page opens on whatever the global workflow switch says ("GenAI" or "Model
  training"), kept per browser in localStorage (``mlflow.workflowType_v1``, GenAI by default) or
  taken from the URL query ``workflowType=machine_learning``. 3.17.2 ignores the experiment tag
  ``mlflow.experimentKind`` for this, so only a link made by :func:`experiment_runs_url` is sure to
  land on the runs table. The tag is still set, to ``custom_model_development`` (the UI's own value
  for "Machine learning"): with the switch on, 3.17.2 reads the kind from the switch everywhere, but
  the ``WorkflowTypeContext`` in MLflow's repository after it moves the switch to the tagged kind on
  opening an experiment, and API users can filter experiments on it.
* The runs table shows Run Name, Created, Dataset, Duration, Source and Models, and no metric,
  param or tag, until the user picks columns (per browser). So a contest run's *name* carries the
  verdict and the three MAEs (:func:`contest_run_name`), month and verdict first: the Run Name
  column is 190 px wide and cuts the rest off. The reason goes in the run's description (the tag
  ``mlflow.note.content``), shown on the run page; the table's Description column would show only
  its first 50 characters, so the view below uses the ``reason`` param instead.
* The experiment's description (its ``mlflow.note.content`` tag) shows above the runs table.
* A saved view is an experiment tag ``mlflow.sharedViewState.<id>``: listed under "Views" for
  everyone, or opened by the URL query ``viewStateShareKey=<id>``. :data:`EXPERIMENT_TAGS` adds
  one, "Contest verdicts" (:data:`CONTEST_VIEW_ID`): contest runs only, with a wider Run Name and
  the three MAEs, the ``decision`` tag and the ``reason`` param as columns.
* Registered model and version descriptions are rendered as Markdown on their pages, but the
  versions table shows the start of a version's description as raw text; tag values are plain text.
* ``#/runs/<run_id>`` opens a run's page from its id alone.

Fields a contest records on model versions (besides the training window, ``feature_set`` and
``status``), each written once, so a later contest never overwrites an earlier one's. Only
``contest.outcome`` is a tag of its own; the others go into the version's JSON tag
``details`` (see ``btcmlops.registry.version_tags``: the versions table shows every tag on
a line of its own). A challenger is in exactly one contest, its own:

``contest.month`` / ``contest.run_id``
    The month of the challenger's contest and its run in the experiment (the run's name says the
    verdict and the MAEs, its description the reason). ``#/runs/<run_id>`` in the UI opens it.
``contest.outcome``
    ``promoted over v<N>`` or ``archived, v<N> stays champion`` (the words of every surface).
``promoted_in`` / ``archived_in``
    The month it was promoted (took the ``champion`` alias) or archived (lost).

A champion keeps its fields while it defends its title; when a challenger replaces it, it gets
``archived_in`` (the month), ``archived_by_run_id`` (that contest's run) and ``replaced_by``
(``v<N>``). So a version promoted in March and replaced in July shows both contests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from btcmlops.mlflow_links import CONTEST_VIEW_ID

CHAMPION_ROLE: Final = "champion"
CHALLENGER_ROLE: Final = "challenger"
"""The aliases, spelled here too so this module imports nothing of the registry."""

NOTE_TAG: Final = "mlflow.note.content"
"""MLflow's description tag, for an experiment and for a run alike."""
EXPERIMENT_KIND_TAG: Final = "mlflow.experimentKind"
EXPERIMENT_KIND_ML: Final = "custom_model_development"
"""The UI's value for "Machine learning" (the other one it writes is ``genai_development``)."""
SAVED_VIEW_TAG_PREFIX: Final = "mlflow.sharedViewState."
CONTEST_VIEW_NAME: Final = "Contest verdicts"

CONTEST_MONTH_TAG: Final = "contest.month"
CONTEST_RUN_TAG: Final = "contest.run_id"
CONTEST_OUTCOME_TAG: Final = "contest.outcome"
PROMOTED_IN_TAG: Final = "promoted_in"
ARCHIVED_IN_TAG: Final = "archived_in"
ARCHIVED_BY_RUN_TAG: Final = "archived_by_run_id"
REPLACED_BY_TAG: Final = "replaced_by"
DETAILS_TAG: Final = "details"
"""The version tag holding, as one JSON object, every field but the scanned ones (``version_tags``).

Short on purpose: the versions table fits a tag in 30 characters, and where both key and value are
longer than 15 it cuts the key too (``btcmlops.details`` showed as ``b.…``), so the key stays whole
and the value is cut, in full on the version's page."""

_RUN_NAME_PX = 320
"""Month, verdict and the challenger's MAE of a :func:`contest_run_name` (190 px by default). Wider
would leave the scrolling columns no room beside the pinned ones on a laptop screen."""
_REASON_COLUMN_PX = 640


def _column(group: str, name: str) -> str:
    """A runs-table column id as the UI spells it: ``group.`name```."""
    return f"{group}.`{name}`"


def _contest_view_state() -> dict[str, object]:
    """The saved view's state: the UI merges it over its defaults, so only what differs is here."""
    run_name, created = _column("attributes", "Run Name"), "runDateAndNestInfo"  # the UI's own ids
    columns = [
        _column("metrics", "challenger_mae"),
        _column("metrics", "champion_mae"),
        _column("metrics", "naive_mae"),
        _column("tags", "decision"),
        # The reason as a param: the Description column (the run's note) cuts it at 50 characters.
        # Last, as the widest: Run Name and Created are pinned, the rest scrolls in what is left.
        _column("params", "reason"),
    ]
    return {
        "searchFilter": "tags.`btcmlops.kind` = 'contest'",
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "selectedColumns": columns,
        # The UI applies widths only to the columns listed in the order, so both are given.
        "columnOrder": [run_name, created, *columns],
        "columnWidths": {run_name: _RUN_NAME_PX, columns[-1]: _REASON_COLUMN_PX},
    }


def _saved_view(name: str, state: Mapping[str, object]) -> str:
    """A saved view's tag value: the envelope the UI writes, the state inside as a JSON string."""
    # A fixed time: the tag is rewritten at every start and must compare equal to what is stored.
    return json.dumps({"name": name, "createdAt": 0, "updatedAt": 0, "state": json.dumps(dict(state))})


EXPERIMENT_DESCRIPTION: Final = (
    # The runs page shows the first line or two: the one thing to do comes first.
    "**Contest verdicts with their MAEs and reasons as columns: Views → Contest verdicts** (top "
    "right). Runs tagged `btcmlops.kind`: a **training** run per model version, named after its "
    "role and training month, and a **contest** run per decided month, named with the verdict and "
    "the three MAEs in USDT, e.g. *2024-03: v3 promoted over v1 — MAE v3 317.93 vs v1 318.20, "
    "naive 322.36*; its description says why. Written by btcmlops at every start: edits here do "
    "not last."
)

EXPERIMENT_TAGS: Final[Mapping[str, str]] = {
    EXPERIMENT_KIND_TAG: EXPERIMENT_KIND_ML,
    NOTE_TAG: EXPERIMENT_DESCRIPTION,
    SAVED_VIEW_TAG_PREFIX + CONTEST_VIEW_ID: _saved_view(CONTEST_VIEW_NAME, _contest_view_state()),
}
"""Set on the experiment at every start: its kind, its description and the "Contest verdicts" view."""


def registered_model_description() -> str:
    """The registered model's description: what the aliases and the ``status`` tag mean.

    Kept short: the versions table comes below it on the same page.

    Returns:
        Markdown for the registered model's page.
    """
    return "\n".join(
        [
            "Next-hour BTC/USDT close forecaster, trained and judged by **btcmlops**: one version per "
            "training month. MLflow's stages are not used; two aliases and the version tag `status` "
            "say what each version is:",
            "",
            f"- alias **`{CHAMPION_ROLE}`**, status `production`: the version the inference service "
            "serves. Exactly one.",
            f"- alias **`{CHALLENGER_ROLE}`**, status `staging`: the newest version, scored in shadow "
            "on the month after its training window and never served. The alias goes once that "
            "contest is decided.",
            "- status `archived`: lost its contest, or was replaced as champion.",
            "",
            "**The contest.** At the end of the shadow month both versions are scored on its hours, "
            "which neither was trained on, by mean absolute error (MAE, USDT) beside a naive forecast "
            "(the last close); the challenger takes over only if it beats the champion by the "
            "configured rule. Each decision is a contest run in the experiment, named with the "
            "verdict and the three MAEs, the reason in its description.",
            "",
            "**Version tags.** `status`, `trained_through` and, once decided, "
            f"`{CONTEST_OUTCOME_TAG}`; the rest is one JSON tag, `{DETAILS_TAG}` (in full on the "
            "version's page): feature set, family, device, training window and data hash, and "
            f"`{CONTEST_MONTH_TAG}`, `{CONTEST_RUN_TAG}`, `{PROMOTED_IN_TAG}` or `{ARCHIVED_IN_TAG}`; "
            f"a replaced champion also `{ARCHIVED_IN_TAG}`, `{ARCHIVED_BY_RUN_TAG}` and "
            f"`{REPLACED_BY_TAG}`.",
            "",
            "**Changes by hand.** `btcmlops model promote` and `btcmlops model rollback`, and a "
            f"`{CHAMPION_ROLE}` alias moved anywhere else (in this UI, or through the API), are "
            "recorded with who, when and why in the project's append-only audit table "
            "(`champion_audit`); `btcmlops model history` lists them. MLflow keeps no alias history.",
            "",
            "*Written by btcmlops at every start: edits here do not last.*",
        ]
    )


STATUS_PARAGRAPH_START: Final = "Now: "
"""How the paragraph that says what a version is now begins: rewritten whenever its status changes."""
_NOW: Final[Mapping[str, str]] = {
    "production": (
        f"the **champion** (status `production`, alias `{CHAMPION_ROLE}`): it serves the forecasts, "
        "on hours after its training window only."
    ),
    "staging": (
        f"the **challenger** (status `staging`, alias `{CHALLENGER_ROLE}`): in shadow, scored beside the "
        "champion on the month after its training, not served."
    ),
    "archived": (
        "**archived** (status `archived`): it serves no more, or never served; `contest.outcome` and "
        f"the tag `{DETAILS_TAG}` say which contest decided."
    ),
}


def status_paragraph(status: str) -> str:
    """The paragraph of a version's description that says what it is now, by its ``status`` tag."""
    return STATUS_PARAGRAPH_START + _NOW.get(status, f"status `{status}`.")


def with_status(description: str, status: str) -> str:
    """``description`` with its "Now: ..." paragraph saying ``status`` (added after the first paragraph
    of a description written before there was one)."""
    paragraphs = description.split("\n\n") if description else []
    fresh = status_paragraph(status)
    for number, paragraph in enumerate(paragraphs):
        if paragraph.startswith(STATUS_PARAGRAPH_START):
            paragraphs[number] = fresh
            return "\n\n".join(paragraphs)
    return "\n\n".join([*paragraphs[:1], fresh, *paragraphs[1:]])


def version_description(
    trained_through: str,
    role: str,
    train_start: datetime,
    train_end: datetime,
    train_rows: int,
) -> str:
    """A version's description: what it was trained on, what it is now, and what it entered as.

    Args:
        trained_through: The last month of the training window (``YYYY-MM``).
        role: ``champion`` (the first version) or ``challenger`` (every later one).
        train_start: The first target hour it was fitted on (a ``pd.Timestamp`` is a datetime).
        train_end: The last target hour it was fitted on.
        train_rows: How many hourly rows it was fitted on.

    Returns:
        Markdown; its first sentence is what the versions table shows, so it says the most. Its
        second paragraph ("Now: ...") follows the status tag (``with_status``, on every status change).
    """
    # Plain text first: the versions table shows the start of the description without rendering it.
    window = (
        f"Trained through {trained_through} as the {role}, on {train_rows:,} hourly rows: "
        f"target hours {train_start:%Y-%m-%d %H:%M} to {train_end:%Y-%m-%d %H:%M} UTC."
    )
    if role == CHAMPION_ROLE:
        now = status_paragraph("production")
        entry = (
            f"It entered as the first `{CHAMPION_ROLE}` (status `production`) and served until a "
            f"challenger beat it; that contest's run is then `{ARCHIVED_BY_RUN_TAG}` in the tag "
            f"`{DETAILS_TAG}`."
        )
    elif role == CHALLENGER_ROLE:
        now = status_paragraph("staging")
        entry = (
            f"It entered as the `{CHALLENGER_ROLE}` (status `staging`), scored in shadow on the month "
            f"after {trained_through} against the champion. Its contest is `{CONTEST_MONTH_TAG}` and "
            f"`{CONTEST_RUN_TAG}` in the tag `{DETAILS_TAG}`; if it won and was replaced later, that "
            f"contest's run is `{ARCHIVED_BY_RUN_TAG}` there."
        )
    else:
        now = status_paragraph(role)
        entry = f"It entered as `{role}`."
    links = "A run id opens at this server's `#/runs/<run id>`."
    return f"{window}\n\n{now}\n\n{entry} {links}"


def contest_run_name(
    month: str,
    champion_version: int,
    challenger_version: int,
    champion_mae: float,
    challenger_mae: float,
    naive_mae: float,
    promoted: bool,
) -> str:
    """A contest run's name: month and verdict first, then the three MAEs (USDT, 2 decimals).

    The runs table shows a run's name and no metric unless the user adds columns, and only about the
    first 22 characters of it, so the month and the verdict come first.

    Args:
        month: The shadow month decided (``YYYY-MM``).
        champion_version: The champion's version number.
        challenger_version: The challenger's version number.
        champion_mae: The champion's MAE on the month.
        challenger_mae: The challenger's MAE on the month.
        naive_mae: The naive forecast's MAE on the month.
        promoted: Whether the challenger took over.

    Returns:
        E.g. ``2024-03: v3 promoted over v1 — MAE v3 317.93 vs v1 318.20, naive 322.36``.
    """
    champion, challenger = f"v{champion_version}", f"v{challenger_version}"
    verdict = (
        f"{challenger} promoted over {champion}"
        if promoted
        else f"{challenger} archived, {champion} stays champion"
    )
    maes = f"MAE {challenger} {challenger_mae:.2f} vs {champion} {champion_mae:.2f}, naive {naive_mae:.2f}"
    return f"{month}: {verdict} — {maes}"


def contest_version_tags(
    month: str, run_id: str, promoted: bool, champion: int, challenger: int
) -> dict[int, dict[str, str]]:
    """The tags a contest puts on the versions whose status it changes (see the module docstring).

    Args:
        month: The shadow month decided (``YYYY-MM``).
        run_id: The contest run's id.
        promoted: Whether the challenger took over.
        champion: The champion's version number.
        challenger: The challenger's version number.

    Returns:
        Tags by version number: the challenger always; the champion only when it was replaced.
    """
    own_contest = {CONTEST_MONTH_TAG: month, CONTEST_RUN_TAG: run_id}
    if promoted:
        return {
            challenger: {
                **own_contest,
                CONTEST_OUTCOME_TAG: f"promoted over v{champion}",
                PROMOTED_IN_TAG: month,
            },
            champion: {
                ARCHIVED_IN_TAG: month,
                ARCHIVED_BY_RUN_TAG: run_id,
                REPLACED_BY_TAG: f"v{challenger}",
            },
        }
    return {
        challenger: {
            **own_contest,
            CONTEST_OUTCOME_TAG: f"archived, v{champion} stays champion",
            ARCHIVED_IN_TAG: month,
        }
    }
