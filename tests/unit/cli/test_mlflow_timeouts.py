"""``btcmlops serve`` bounds every MLflow call of the champion watcher (alias reads, model downloads)."""

from __future__ import annotations

import os

import pytest

from btcmlops.cli.common import no_blind_mlflow_retries as _no_blind_mlflow_retries


def test_the_registry_timeout_becomes_mlflows_http_timeout_without_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.setenv(name, "")  # recorded, so the teardown puts back what was there (or nothing)
        monkeypatch.delenv(name)
    _no_blind_mlflow_retries(timeout_s=3.0)
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_an_operators_own_mlflow_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    _no_blind_mlflow_retries(timeout_s=0.2)
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
