"""Calendar, scoring and the promotion rule: pure functions, known answers."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from btcmlops.calendar import months_between
from btcmlops.contest import Month, Scores, SignificanceTest, decide, score
from btcmlops.contest.scoring import IntervalScores, skill
from btcmlops.settings import ContestSettings, Settings


def _scores(mae: float, n: int = 10) -> Scores:
    return Scores(n=n, mae=mae, rmse=mae, mape=0.0, directional_accuracy=0.5)


def test_month_arithmetic() -> None:
    assert Month.parse("2023-12").next() == Month(2024, 1)
    assert Month(2024, 1).previous() == Month(2023, 12)
    assert Month(2023, 1).plus(11) == Month(2023, 12)
    assert Month(2024, 2).last_hour == pd.Timestamp("2024-02-29 23:00", tz="UTC")
    assert [Month(2024, 2).hours, Month(2023, 2).hours, Month(2024, 3).hours] == [696, 672, 744]
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


def _test(statistic: float, p_value: float, n: int = 10) -> SignificanceTest:
    return SignificanceTest(statistic=statistic, p_value=p_value, lags=6, n=n)


@pytest.mark.parametrize(("challenger_mae", "promote"), [(94.0, True), (96.0, False)])
def test_the_margin_rule_only_reports_the_test(challenger_mae: float, promote: bool) -> None:
    rule = ContestSettings(margin=0.05)
    untested = decide(_scores(100), _scores(challenger_mae), _scores(200), rule)
    noise = _test(-0.5, 0.31)
    tested = decide(_scores(100), _scores(challenger_mae), _scores(200), rule, test=noise)
    assert tested.promote == untested.promote == promote
    assert tested.reason == f"{untested.reason}; DM -0.50, p 0.31 (HAC, 6 lags)"
    assert tested.test == noise
    assert untested.test is None


def test_the_significance_rule_refuses_a_win_that_noise_explains() -> None:
    rule = ContestSettings(promotion_rule="significance", alpha=0.05)
    refused = decide(_scores(100), _scores(90), _scores(200), rule, test=_test(-1.2, 0.115))
    assert not refused.promote
    assert "not significant: DM -1.20, p 0.115 >= alpha 0.05 (HAC, 6 lags)" in refused.reason
    assert "challenger MAE 90.00 vs champion 100.00" in refused.reason
    won = decide(_scores(100), _scores(90), _scores(200), rule, test=_test(-2.31, 0.0104))
    assert won.promote
    assert won.reason.endswith("; DM -2.31, p 0.0104 < alpha 0.05 (HAC, 6 lags)")


def test_the_significance_rule_still_needs_the_margin_and_naive() -> None:
    certain = _test(-float("inf"), 0.0)
    margin = ContestSettings(promotion_rule="significance", margin=0.05)
    assert not decide(_scores(100), _scores(96), _scores(200), margin, test=certain).promote
    naive = ContestSettings(promotion_rule="significance", require_beat_naive=True)
    refused = decide(_scores(100), _scores(90), _scores(80), naive, test=certain)
    assert not refused.promote
    assert "not naive" in refused.reason


@pytest.mark.parametrize(("alpha", "promote"), [(0.01, False), (0.03, False), (0.05, True)])
def test_p_must_be_below_alpha(alpha: float, promote: bool) -> None:
    rule = ContestSettings(promotion_rule="significance", alpha=alpha)
    decision = decide(_scores(100), _scores(90), _scores(200), rule, test=_test(-1.9, 0.03))
    assert decision.promote == promote


def test_the_significance_rule_needs_a_test() -> None:
    with pytest.raises(ValueError, match="needs a Diebold-Mariano test"):
        decide(_scores(100), _scores(90), _scores(200), ContestSettings(promotion_rule="significance"))


def test_the_test_must_cover_the_scored_hours() -> None:
    with pytest.raises(ValueError, match="test 9, contestants 10"):
        decide(_scores(100), _scores(90), _scores(200), ContestSettings(), test=_test(-3.0, 0.001, n=9))


def test_rule_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BTCMLOPS_CONTEST__PROMOTION_RULE", "significance")
    monkeypatch.setenv("BTCMLOPS_CONTEST__ALPHA", "0.01")
    contest = Settings(_env_file=None).contest  # the environment only, not a developer's .env
    assert (contest.promotion_rule, contest.alpha) == ("significance", 0.01)
    assert ContestSettings().promotion_rule == "margin"
    with pytest.raises(ValidationError):
        ContestSettings(alpha=0.0)
    with pytest.raises(ValidationError):
        ContestSettings.model_validate({"promotion_rule": "vibes"})


def test_the_rule_and_the_contest_types_import_nothing_of_mlflow() -> None:
    """Reading the rule must not pay for MLflow (seconds per process) or need it installed."""
    import subprocess
    import sys

    code = (
        "import sys; import btcmlops.contest, btcmlops.contest.rule, btcmlops.training_window; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'statsmodels')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _interval(score: float, level: float = 0.8, n: int = 10) -> IntervalScores:
    return IntervalScores(
        n=n, level=level, coverage=level, mean_width=score / 2, interval_score=score, pinball=0.0
    )


def test_the_interval_score_metric_decides_on_the_interval_and_says_so() -> None:
    """Point MAE says archive, interval score says promote: the metric set decides, the reason names it."""
    rule = ContestSettings(metric="interval_score", margin=0.05)
    point = (_scores(100), _scores(101), _scores(102))
    won = decide(*point, rule, intervals=(_interval(500), _interval(450), _interval(540)))
    assert won.promote
    assert won.reason.startswith("challenger wins: challenger interval score 450.00 vs champion 500.00")
    short = decide(*point, rule, intervals=(_interval(500), _interval(480), _interval(540)))
    assert not short.promote
    assert "interval score 480.00" in short.reason
    assert not decide(
        *point, ContestSettings(), intervals=(_interval(500), _interval(450), _interval(540))
    ).promote
    naive_better = decide(
        *point,
        rule.model_copy(update={"require_beat_naive": True}),
        intervals=(_interval(500), _interval(450), _interval(400)),
    )
    assert not naive_better.promote
    assert "not naive" in naive_better.reason


def test_intervals_that_cannot_be_compared_never_promote() -> None:
    rule = ContestSettings(metric="interval_score", promotion_rule="significance")
    point = (_scores(100), _scores(50), _scores(102))
    missing = decide(*point, rule, intervals=(None, _interval(100), _interval(540)))
    assert not missing.promote
    assert (
        missing.reason
        == "challenger cannot be judged on the interval score: a contestant has no interval to score"
    )
    levels = decide(*point, rule, intervals=(_interval(500, 0.9), _interval(100), _interval(540)))
    assert not levels.promote
    assert "different levels cannot be compared (champion 0.9, challenger 0.8, naive 0.8)" in levels.reason


def test_the_metric_setting_takes_only_the_two_scores() -> None:
    with pytest.raises(ValidationError, match="metric"):
        ContestSettings(metric="rmse")  # type: ignore[arg-type]
