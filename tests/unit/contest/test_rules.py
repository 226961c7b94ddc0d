"""Calendar, scoring and the promotion rule: pure functions, known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from btcmlops.calendar import months_between
from btcmlops.contest import Month, Scores, decide, score
from btcmlops.contest.scoring import skill
from btcmlops.settings import ContestSettings


def _scores(mae: float, n: int = 10) -> Scores:
    return Scores(n=n, mae=mae, rmse=mae, mape=0.0, directional_accuracy=0.5)


def test_month_arithmetic() -> None:
    assert Month.parse("2023-12").next() == Month(2024, 1)
    assert Month(2024, 1).previous() == Month(2023, 12)
    assert Month(2023, 1).plus(11) == Month(2023, 12)
    assert Month(2024, 2).last_hour == pd.Timestamp("2024-02-29 23:00", tz="UTC")
    assert Month.of(pd.Timestamp("2024-03-31 23:59", tz="UTC")) == Month(2024, 3)
    assert [str(m) for m in months_between(Month(2023, 11), Month(2024, 2))] == [
        "2023-11", "2023-12", "2024-01", "2024-02",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse("2024/01")


def test_score_known_values() -> None:
    scores = score(actual=[110.0, 90.0], predicted=[105.0, 100.0], last_close=[100.0, 100.0])
    assert scores.mae == pytest.approx(7.5)
    assert scores.rmse == pytest.approx(((5**2 + 10**2) / 2) ** 0.5)
    assert scores.mape == pytest.approx((5 / 110 + 10 / 90) / 2)
    assert scores.directional_accuracy == pytest.approx(0.5)  # up called up; down called flat
    assert skill(7.5, 10.0) == pytest.approx(0.25)


def test_naive_has_no_direction() -> None:
    naive = score(actual=[101.0, 99.0], predicted=[100.0, 100.0], last_close=[100.0, 100.0])
    assert naive.directional_accuracy == 0.0


def test_promote_only_past_the_margin() -> None:
    rule = ContestSettings(margin=0.05)
    assert decide(_scores(100), _scores(94), _scores(200), rule).promote
    held = decide(_scores(100), _scores(96), _scores(200), rule)
    assert not held.promote
    assert "does not beat the champion" in held.reason


def test_an_equal_challenger_is_not_promoted() -> None:
    assert not decide(_scores(100), _scores(100), _scores(200), ContestSettings()).promote


def test_beating_naive_is_required_only_when_configured() -> None:
    champion, challenger, naive = _scores(100), _scores(90), _scores(80)
    assert decide(champion, challenger, naive, ContestSettings()).promote
    refused = decide(champion, challenger, naive, ContestSettings(require_beat_naive=True))
    assert not refused.promote
    assert "not naive" in refused.reason


def test_contestants_must_sit_the_same_exam() -> None:
    with pytest.raises(ValueError, match="different hours"):
        decide(_scores(100, n=10), _scores(90, n=9), _scores(80, n=10), ContestSettings())
