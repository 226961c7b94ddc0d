"""The model registry: MLflow runs, model versions, aliases and status tags behind a narrow interface.

Conventions every service shares: one registered model; the aliases ``champion`` and ``challenger``
each point at exactly one version; the version tag ``status`` is ``production``, ``staging`` or
``archived`` (MLflow's stages are deprecated and unused). A version's training window and feature set
are on the version too (``trained_through`` a tag of its own, the rest in the JSON tag
``details``, see ``version_tags``), so a server can judge a version without reading its run.
"""

from btcmlops.registry.embedded import (
    embedded_artifact_location,
    embedded_tracking_uri,
    release_embedded_store,
    resolve_tracking,
)
from btcmlops.registry.mlflow_registry import (
    CHALLENGER,
    CHAMPION,
    ContestRun,
    ModelRegistry,
    ModelVersionInfo,
    VersionStatus,
    with_alias,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "ContestRun",
    "ModelRegistry",
    "ModelVersionInfo",
    "VersionStatus",
    "embedded_artifact_location",
    "embedded_tracking_uri",
    "release_embedded_store",
    "resolve_tracking",
    "with_alias",
]
