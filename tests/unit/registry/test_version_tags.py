"""Version tags: the scanned fields as tags of their own, the rest in one JSON tag, read back either way."""

from __future__ import annotations

import json

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from btcmlops.registry.presentation import contest_version_tags
from btcmlops.registry.version_tags import (
    DETAILS_TAG,
    SCANNED_TAGS,
    pack_version_tags,
    unpack_version_tags,
)
from btcmlops.training_window import TrainingWindow

WINDOW = TrainingWindow(
    train_start=pd.Timestamp("2023-01-02 01:00", tz="UTC"),
    train_end=pd.Timestamp("2024-02-29 23:00", tz="UTC"),
    train_rows=10_150,
    data_hash="29118650fe59042f",
    trained_through="2024-02",
)
MODEL = {"feature_set": "v1", "family": "lightgbm", "device": "cpu"}


def test_a_new_version_gets_trained_through_and_the_rest_as_json() -> None:
    tags = pack_version_tags({**MODEL, **WINDOW.as_tags()})
    assert set(tags) == {"trained_through", DETAILS_TAG}
    details = {key: value for key, value in WINDOW.as_tags().items() if key != "trained_through"}
    assert json.loads(tags[DETAILS_TAG]) == {**MODEL, **details}
    assert tags["trained_through"] == "2024-02"
    assert TrainingWindow.from_tags(unpack_version_tags(tags)) == WINDOW


def test_contest_fields_merge_into_the_json_tag_and_the_outcome_stays_a_tag() -> None:
    current = {**pack_version_tags({**MODEL, **WINDOW.as_tags()}), "status": "production"}
    won = contest_version_tags("2024-03", "run-mar", True, champion=1, challenger=3)[3]
    added = pack_version_tags(won, current)
    assert added["contest.outcome"] == "promoted over v1"
    assert set(added) == {"contest.outcome", DETAILS_TAG}
    fields = unpack_version_tags({**current, **added})
    assert fields == {**MODEL, **WINDOW.as_tags(), "status": "production", **won}


def test_old_individual_tags_read_as_they_are() -> None:
    old = {**MODEL, **WINDOW.as_tags(), "status": "archived", "contest.month": "2024-03"}
    assert unpack_version_tags(old) == old
    assert TrainingWindow.from_tags(unpack_version_tags(old)) == WINDOW


def test_a_json_tag_edited_into_something_else_reads_as_no_fields() -> None:
    assert unpack_version_tags({DETAILS_TAG: "not json", "status": "staging"}) == {"status": "staging"}
    assert unpack_version_tags({DETAILS_TAG: "[1, 2]"}) == {}


@given(st.dictionaries(st.sampled_from([*SCANNED_TAGS, "feature_set", "a.b", "é"]), st.text()))
def test_pack_then_unpack_gives_the_fields_back(fields: dict[str, str]) -> None:
    assert unpack_version_tags(pack_version_tags(fields)) == fields
