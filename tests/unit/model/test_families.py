"""Two model families behind one Forecaster: settings, selection, determinism, and the GPU check.

This machine (and CI) has no GPU, so asking for ``cuda`` really fails here: the tests that say so run
XGBoost's real CUDA build against a machine with no visible device, no stub. On a GPU machine they are
skipped and ``bench/gpu_check.py`` checks the other side (a CUDA fit that agrees with the CPU's).
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pydantic
import pytest
import xgboost as xgb

from btcmlops.features import build_samples
from btcmlops.model import (
    LIGHTGBM,
    XGBOOST,
    DeviceUnavailableError,
    ModelConfigurationError,
    check_device,
    train_forecaster,
)
from btcmlops.model.forecaster import fitted_device, xgboost_params
from btcmlops.retry import is_configuration_error
from btcmlops.settings import ModelSettings, Settings
from factories import make_candles

SAMPLES = build_samples(make_candles("2021-01-01", "2021-01-31 23:00", ar=0.5))
XGB = ModelSettings(family="xgboost", num_boost_round=60, min_data_in_leaf=20)


def _gpu_visible() -> bool:
    """Whether this machine could fit on CUDA at all (an NVIDIA driver is the least it needs)."""
    return shutil.which("nvidia-smi") is not None


no_gpu_here = pytest.mark.skipif(_gpu_visible(), reason="a GPU machine: bench/gpu_check.py covers cuda")


def test_defaults_are_lightgbm_on_the_cpu() -> None:
    config = ModelSettings()
    assert (config.family, config.device) == ("lightgbm", "cpu")
    assert check_device(config) == "cpu"
    forecaster = train_forecaster(SAMPLES, ModelSettings(num_boost_round=10, min_data_in_leaf=20))
    assert (forecaster.family, forecaster.device) == (LIGHTGBM, "cpu")


def test_family_and_device_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BTCMLOPS_MODEL__FAMILY", "xgboost")
    monkeypatch.setenv("BTCMLOPS_MODEL__DEVICE", "cuda")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.model.family, settings.model.device) == ("xgboost", "cuda")


def test_cuda_with_lightgbm_is_a_configuration_error_naming_the_settings() -> None:
    with pytest.raises(pydantic.ValidationError, match="BTCMLOPS_MODEL__FAMILY=xgboost"):
        ModelSettings(device="cuda")


@pytest.mark.parametrize(("field", "value"), [("family", "catboost"), ("device", "gpu")])
def test_unknown_family_or_device_is_refused(field: str, value: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        ModelSettings.model_validate({field: value})


def test_the_family_picks_the_library() -> None:
    forecaster = train_forecaster(SAMPLES, XGB)
    assert isinstance(forecaster.booster, xgb.Booster)
    assert (forecaster.family, forecaster.device) == (XGBOOST, "cpu")
    assert fitted_device(forecaster.booster) == "cpu"
    predicted = forecaster.predict_close(SAMPLES)
    assert predicted.shape == (len(SAMPLES),)
    assert np.isfinite(predicted).all()


def test_xgboost_same_data_same_settings_same_predictions() -> None:
    first = train_forecaster(SAMPLES, XGB).predict_log_return(SAMPLES)
    second = train_forecaster(SAMPLES, XGB).predict_log_return(SAMPLES)
    np.testing.assert_array_equal(first, second)


def test_xgboost_forecasts_do_not_depend_on_the_thread_count() -> None:
    one = train_forecaster(SAMPLES, XGB).predict_log_return(SAMPLES)
    two = train_forecaster(SAMPLES, XGB.model_copy(update={"num_threads": 2})).predict_log_return(SAMPLES)
    np.testing.assert_array_equal(one, two)


def test_xgboost_params_carry_device_threads_and_seed() -> None:
    params = xgboost_params(XGB.model_copy(update={"num_threads": 3, "seed": 7}))
    assert params["device"] == "cpu"
    assert params["tree_method"] == "hist"
    assert (params["nthread"], params["seed"]) == (3, 7)
    assert params["objective"] == "reg:absoluteerror"  # scored by MAE, as LightGBM's regression_l1
    cuda = xgboost_params(XGB.model_copy(update={"device": "cuda"}))
    assert (cuda["device"], cuda["tree_method"]) == ("cuda", "hist")


@no_gpu_here
def test_asking_for_cuda_without_a_gpu_fails_clearly() -> None:
    """Real: XGBoost's CUDA build on a machine with no GPU (it would only warn and fit on the CPU)."""
    cuda = XGB.model_copy(update={"device": "cuda"})
    with pytest.raises(DeviceUnavailableError, match="BTCMLOPS_MODEL__DEVICE=cuda") as caught:
        check_device(cuda)
    assert "BTCMLOPS_MODEL__DEVICE=cpu" in str(caught.value)
    assert is_configuration_error(caught.value)  # the trainer stops instead of retrying


@no_gpu_here
def test_a_cuda_fit_that_fell_back_to_the_cpu_is_refused() -> None:
    """The check at the fit too: no model is ever recorded as trained on a GPU it never saw."""
    with pytest.raises(DeviceUnavailableError, match="the fit ran on 'cpu'"):
        train_forecaster(SAMPLES, XGB.model_copy(update={"device": "cuda"}))


def test_a_cpu_only_xgboost_build_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    build = {**xgb.build_info(), "USE_CUDA": False}
    monkeypatch.setattr(xgb, "build_info", lambda: build)
    with pytest.raises(DeviceUnavailableError, match="CPU-only build"):
        check_device(XGB.model_copy(update={"device": "cuda"}))


def test_xgboost_not_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)  # import xgboost now raises
    with pytest.raises(ModelConfigurationError, match=r"btcmlops\[xgboost\]"):
        check_device(XGB)
    with pytest.raises(ModelConfigurationError, match="BTCMLOPS_MODEL__FAMILY=xgboost"):
        train_forecaster(SAMPLES, XGB)


def test_a_fitted_xgboost_model_predicts_on_the_cpu() -> None:
    forecaster = train_forecaster(SAMPLES, XGB)
    config = json.loads(forecaster.booster.save_config())
    assert config["learner"]["generic_param"]["device"] == "cpu"
