"""``btcmlops sweep``: a 2x1 grid on four months of synthetic candles, as a user runs it.

Each combination must be an ordinary replay (its folder, its MLflow experiment, its summary.json), the
sweep's table must say what those replays say, and the models must be fitted once for both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from btcmlops.cli import app
from btcmlops.replay.sweep import SweepError, build_grid, significant_promotions
from btcmlops.settings import Settings
from factories import make_candles, write_project_csv

RUNNER = CliRunner()
# Four months: v1 trained through February, a challenger through March, one contest (April).
START, END = "2021-01-01", "2021-04-30 23:00"
MARGINS = ("0", "0.5")
NAMES = ("margin-0.0", "margin-0.5")


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, mlflow_cache: Path) -> tuple[Path, str]:
    """The sweep's output folder and what it printed; settings from BTCMLOPS_* variables, as for a user.

    The home's cache is the session's, so the replays copy a migrated MLflow database, not build one.
    """
    home = tmp_path_factory.mktemp("sweep")
    (home / "home").mkdir()
    (home / "home" / "cache").symlink_to(mlflow_cache, target_is_directory=True)
    data = home / "candles.csv"
    write_project_csv(make_candles(START, END, ar=0.3), str(data))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(home)
        patch.setenv("BTCMLOPS_HOME", str(home / "home"))
        patch.setenv("BTCMLOPS_CONTEST__FIRST_TRAIN_MONTHS", "2")
        patch.setenv("BTCMLOPS_MODEL__NUM_BOOST_ROUND", "20")
        patch.setenv("BTCMLOPS_MODEL__MIN_DATA_IN_LEAF", "20")
        arguments = ["sweep", "--data", str(data), "--out", str(home / "out")]
        result = RUNNER.invoke(app, [*arguments, *(f"--margin={margin}" for margin in MARGINS)])
    assert result.exit_code == 0, result.output
    return home / "out", result.output


def _summary(out: Path, name: str) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((out / name / "summary.json").read_text())
    return summary


@pytest.mark.slow  # two replays (about one `simulate` test's time): make test, not test-fast
@pytest.mark.xdist_group("sweep")
def test_each_combination_is_a_replay_in_its_own_folder_and_experiment(swept: tuple[Path, str]) -> None:
    out, _ = swept
    for name, margin in zip(NAMES, MARGINS, strict=True):
        summary = _summary(out, name)
        assert summary["settings"]["contest"]["margin"] == float(margin)
        client = MlflowClient(tracking_uri=f"sqlite:///{out / name / 'mlflow.db'}")
        experiment = client.get_experiment_by_name(f"{Settings().mlflow.experiment}-sweep-{name}")
        assert experiment is not None
        assert summary["mlflow"]["experiment"] == experiment.name
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) >= len(summary["trainings"])  # a run per training, and the contest's
    assert (out / "sweep.html").stat().st_size > 0
    assert (out / "sweep.png").stat().st_size > 0


@pytest.mark.slow  # two replays (about one `simulate` test's time): make test, not test-fast
@pytest.mark.xdist_group("sweep")
def test_the_summary_rows_are_what_each_replay_says(swept: tuple[Path, str]) -> None:
    out, printed = swept
    table = pd.read_csv(out / "summary.csv")
    assert table["name"].tolist() == list(NAMES)
    for row in table.to_dict("records"):
        summary = _summary(out, row["name"])
        overall = summary["overall"]
        assert row["served_mae"] == pytest.approx(overall["served"]["mae"])
        assert row["skill"] == pytest.approx(overall["skill"])
        assert row["interval_score"] == pytest.approx(overall["served_interval"]["interval_score"])
        assert row["contests"] == len(summary["decisions"]) == 1
        assert row["promotions"] == summary["promotions"]
        assert row["significant_promotions"] == significant_promotions(summary)
        assert row["final_champion"] == summary["final_champion"]
    assert "Sweep" in printed
    assert "summary.csv" in printed


@pytest.mark.slow  # two replays (about one `simulate` test's time): make test, not test-fast
@pytest.mark.xdist_group("sweep")
def test_combinations_of_one_model_setting_share_their_fits(swept: tuple[Path, str]) -> None:
    out, printed = swept
    first, second = (_summary(out, name)["trainings"] for name in NAMES)
    assert "2 fits made, 2 handed over again" in printed
    assert [(t["data_hash"], t["train_rows"]) for t in first] == [
        (t["data_hash"], t["train_rows"]) for t in second
    ]


def test_a_significant_promotion_is_one_whose_rule_metric_test_has_p_below_005() -> None:
    decisions = [
        {"metric": "mae", "promoted": True, "dm_p_value": 0.01, "dm_interval_p_value": 0.9},
        {"metric": "mae", "promoted": True, "dm_p_value": 0.2, "dm_interval_p_value": 0.01},
        {"metric": "interval_score", "promoted": True, "dm_p_value": 0.9, "dm_interval_p_value": 0.04},
        {"metric": "mae", "promoted": False, "dm_p_value": 0.001, "dm_interval_p_value": 0.001},
        {"metric": "mae", "promoted": True, "dm_p_value": None, "dm_interval_p_value": None},
    ]
    assert significant_promotions({"decisions": decisions}) == 2


@pytest.mark.parametrize(
    ("choices", "named"),
    [
        ({"margin": [1.5]}, "'margin'"),
        ({"rule": ["best"]}, "'rule'"),
        ({"metric": ["rmse"]}, "'metric'"),
        ({"window": ["-1"]}, "'window'"),
        ({"window": ["monthly"]}, "'window'"),
        ({"family": ["catboost"]}, "'family'"),
        ({"margins": [0.01]}, "'margins'"),
        ({"margin": [0.01, 0.01]}, "'margin'"),
    ],
)
def test_bad_grid_input_is_refused_naming_the_field(choices: dict[str, list[Any]], named: str) -> None:
    with pytest.raises(SweepError, match=named):
        build_grid(choices, Settings())


def test_the_command_refuses_a_bad_grid_file_before_replaying(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('margin = [0, 0.01]\nrule = ["margin", "fastest"]\n')
    result = RUNNER.invoke(app, ["sweep", "--grid", str(grid), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "'rule'" in result.output
    assert "fastest" in result.output
    assert not (tmp_path / "out").exists()


def test_a_grid_names_each_combination_by_what_it_varies() -> None:
    combinations = build_grid({"window": ["expanding", "12"], "rule": ["significance"]}, Settings())
    assert [c.name for c in combinations] == ["window-expanding", "window-12m"]
    assert [c.settings.model.train_window_months for c in combinations] == [0, 12]
    assert {c.settings.contest.promotion_rule for c in combinations} == {"significance"}
    assert len({c.settings.mlflow.registered_model for c in combinations}) == 2
