"""The replay's printed ``mlflow ui`` command serves where the links point: the MLflow UI URL's port."""

from __future__ import annotations

from pathlib import Path

from btcmlops.replay.run import mlflow_ui_command


def test_the_printed_mlflow_ui_command_serves_on_the_mlflow_ui_urls_port(tmp_path: Path) -> None:
    command = mlflow_ui_command(f"sqlite:///{tmp_path / 'mlflow.db'}", None, "http://127.0.0.1:5077")
    assert command.endswith("--workers 1 --port 5077")
    assert mlflow_ui_command("sqlite:///x.db", None, "http://127.0.0.1").endswith("--port 5000")
