"""Fixtures shared by the unit tests that use a real embedded MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mlflow_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the migrated empty MLflow database, so each test's store costs a file copy."""
    return tmp_path_factory.mktemp("mlflow-cache")
