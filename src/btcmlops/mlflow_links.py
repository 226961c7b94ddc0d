"""Links into the MLflow UI (3.17): plain URL strings, built from the UI's address and names.

Below the registry and the dashboard both: the registry's presentation and the replay print these, and
the dashboard shows them beside its tables. The dashboard talks to the inference service over HTTP
only, so this module imports nothing of MLflow nor of the registry (whose import loads MLflow and the
model libraries, seconds per process). The UI's address is the dashboard's own setting
(``BTCMLOPS_DASHBOARD__MLFLOW_UI_URL``: where the *browser* reaches MLflow), which the inference
service does not know; so the links are built here rather than sent by the API.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, urlencode

CONTEST_VIEW_ID: Final = "contest-verdicts"
"""The id of the experiment's saved view "Contest verdicts" (see ``registry.presentation``)."""
ML_VIEW: Final = "workflowType=machine_learning"
"""The query that opens a page in the UI's "Model training" (machine-learning) view. MLflow 3.17 keeps
the view in the browser's localStorage, GenAI by default, and does not follow the experiment's
``mlflow.experimentKind`` tag (mlflow/mlflow#24498): without the query a first visit opens GenAI."""


def experiment_runs_url(ui_url: str, experiment_id: str, *, view: str | None = CONTEST_VIEW_ID) -> str:
    """A link that opens the experiment on its runs table, in "Model training" mode.

    Args:
        ui_url: Where the MLflow UI is served, e.g. ``http://localhost:5000``.
        experiment_id: The experiment's id.
        view: A saved view to open (the contest verdicts by default); None for the plain table.

    Returns:
        The URL. Without ``workflowType`` MLflow 3.17 opens the GenAI overview of the experiment.
    """
    query = {"workflowType": "machine_learning"}
    if view is not None:
        query["viewStateShareKey"] = view
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{urlencode(query)}"


def registered_model_url(ui_url: str, model_name: str) -> str:
    """A link to the registered model's page (versions, aliases, descriptions), in "Model training" mode."""
    return f"{ui_url.rstrip('/')}/#/models/{quote(model_name, safe='')}?{ML_VIEW}"


def model_version_url(ui_url: str, model_name: str, version: int) -> str:
    """A link to one version's page (description, tags, source run), in "Model training" mode."""
    return f"{ui_url.rstrip('/')}/#/models/{quote(model_name, safe='')}/versions/{version}?{ML_VIEW}"


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """A link to one run's page (a contest run: its MAEs, verdict and reason), in "Model training" mode."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{ML_VIEW}"
