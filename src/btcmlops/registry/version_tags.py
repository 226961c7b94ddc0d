"""How a model version's fields are kept as MLflow tags: a few scanned ones, the rest in one JSON tag.

MLflow's registered-model page lists every tag of every version, one line each, in the versions
table: with fifteen tags a screen showed about one and a half versions. So a version carries as tags
of their own only what a reader scans down the table, :data:`SCANNED_TAGS` (``status``,
``trained_through`` and, once its contest is decided, ``contest.outcome``), and everything else
(feature set, family, device, the training window, the data hash, the contest's month and run,
``promoted_in`` / ``archived_in``, ``archived_by_run_id``, ``replaced_by``) in the one tag
:data:`DETAILS_TAG`, a JSON object the table shows on one line and the version's page in full.

:func:`pack_version_tags` writes and :func:`unpack_version_tags` reads; both work on the flat
mapping of field names to strings that the rest of the code knows (``TrainingWindow.as_tags``, the
contest's tags). A version registered before this layout carries every field as a tag of its own:
it reads the same, and a contest that tags it later adds to the JSON tag beside them.

Pure, no MLflow import: the registry adapter calls these, the tests read them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from btcmlops.registry.presentation import CONTEST_OUTCOME_TAG, DETAILS_TAG

STATUS_TAG: Final = "status"
TRAINED_THROUGH_TAG: Final = "trained_through"
SCANNED_TAGS: Final = (STATUS_TAG, TRAINED_THROUGH_TAG, CONTEST_OUTCOME_TAG)
"""The tags kept on a version on their own: what the versions table is scanned for."""
__all__ = ["DETAILS_TAG", "SCANNED_TAGS", "STATUS_TAG", "pack_version_tags", "unpack_version_tags"]


def _details(tags: Mapping[str, str]) -> dict[str, str]:
    """The fields in ``tags``' JSON tag (none if it has none, or if it is not a JSON object)."""
    raw = tags.get(DETAILS_TAG)
    if raw is None:
        return {}
    try:
        found = json.loads(raw)
    except ValueError:  # edited by hand into something else: the fields read as missing
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(key): str(value) for key, value in found.items()}


def pack_version_tags(fields: Mapping[str, str], current: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags to set on a version for ``fields``: the scanned ones as themselves, the rest as JSON.

    Args:
        fields: Field names to string values (a training window's ``as_tags``, a contest's tags).
        current: The version's tags now, whose JSON tag the new fields are merged into (a field
            already there keeps its place and takes the new value); None for a new version.

    Returns:
        Tags to set: each scanned field given, and :data:`DETAILS_TAG` if any other field is given.
    """
    rest = {key: value for key, value in fields.items() if key not in SCANNED_TAGS}
    # ", " and ": " (json's default): the version page wraps the value at the spaces. The JSON tag
    # first: a store that lists a version's tags in the order written (SQLite) then shows it above
    # the scanned ones, which stay together below it (``status`` and the outcome are written later).
    tags = {DETAILS_TAG: json.dumps({**_details(current or {}), **rest})} if rest else {}
    return tags | {key: value for key, value in fields.items() if key in SCANNED_TAGS}


def unpack_version_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """A version's fields from its tags, the JSON tag opened; the inverse of :func:`pack_version_tags`.

    A version from before the JSON tag carries its fields as tags of their own, which are read as they
    are; where a field is in both (an old version a later contest tagged), the JSON tag's value wins.

    Args:
        tags: The version's tags as MLflow returns them.

    Returns:
        Field names to string values, without :data:`DETAILS_TAG` itself.
    """
    own = {key: value for key, value in tags.items() if key != DETAILS_TAG}
    return {**own, **_details(tags)}
