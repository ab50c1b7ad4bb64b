"""finar.tune: Ray Tune picks the configuration with the best validation log score; ASHA stops bad trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import DataError
from finar.tune import tune
from tests.conftest import raises_exactly
from tests.ray_session import local_ray

VAL_START = "2018-01-01"


@pytest.fixture(scope="module")
def ray_tune():
    """Ray Tune's API module, on one local Ray for the whole module."""
    rt = pytest.importorskip("ray.tune")
    session = local_ray()
    next(session)
    yield rt
    next(session, None)  # shuts Ray down


@pytest.fixture(scope="module")
def r() -> pd.Series:
    return finar.returns(finar.load("sp500")["adj_close"]).loc["2015-01-01":"2018-06-30"]


def val_log_score(model: finar.models.GARCH, r: pd.Series) -> float:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # as in Ray's one-CPU workers: BLAS threads move the optimum ~1e-6
        m = model.fit(r.loc[:"2017-12-31"])
        return float(m.log_prob(r).loc[VAL_START:].mean())


def test_the_best_configuration_has_the_best_validation_log_score(ray_tune, r: pd.Series) -> None:
    res = tune(finar.models.GARCH, r, {"dist": ray_tune.grid_search(["normal", "t"])}, val_start=VAL_START,
               num_samples=1)
    direct = {d: val_log_score(finar.models.GARCH(dist=d), r) for d in ("normal", "t")}
    assert set(res.trials["dist"]) == {"normal", "t"}
    for _, row in res.trials.iterrows():
        assert row["val_log_score"] == pytest.approx(direct[row["dist"]], abs=1e-9)
        assert row["epochs"] == 0 and not row["stopped_early"] and row["error"] is None
    best = max(direct, key=direct.get)
    assert res.best_config == {"dist": best} and res.best_score == pytest.approx(direct[best], abs=1e-9)
    assert list(res.trials["val_log_score"]) == sorted(direct.values(), reverse=True)


def test_asha_stops_a_network_that_learns_nothing(ray_tune, r: pd.Series) -> None:
    def wavenet(lr: float) -> finar.models.WaveNet:
        return finar.models.WaveNet(residual_channels=8, gate_channels=8, skip_channels=8, layers_per_cycle=3,
                                    n_components=2, train={"window": 16, "batch_size": 64, "max_epochs": 4,
                                                           "patience": 4, "seed": 0, "lr": lr})

    # one trial at a time, in grid order: the sane learning rate sets the bar at every rung
    res = tune(wavenet, r.iloc[-500:], {"lr": ray_tune.grid_search([3e-3, 1e-9])}, val_start=VAL_START,
               num_samples=1, max_epochs=4, grace_period=1, reduction_factor=2, max_concurrent=1)
    trials = res.trials.set_index("lr")
    assert res.best_config == {"lr": 3e-3}
    assert trials.loc[3e-3, "epochs"] == 4 and np.isfinite(trials.loc[3e-3, "val_log_score"])
    assert trials.loc[1e-9, "stopped_early"] and trials.loc[1e-9, "epochs"] < 4
    assert np.isnan(trials.loc[1e-9, "val_log_score"])


def test_covariates_reach_every_trial(ray_tune, r: pd.Series) -> None:
    """Each trial fits and scores with the covariates: its score is the direct one with exog."""
    x = pd.DataFrame({"abs_r": r.abs()}, index=r.index)  # row t known at the close of day t
    res = tune(finar.models.AR, r, {"order": ray_tune.grid_search([0, 1])}, val_start=VAL_START, exog=x,
               num_samples=1)
    for _, row in res.trials.iterrows():
        m = finar.models.AR(order=row["order"]).fit(r.loc[:"2017-12-31"], exog=x.loc[:"2017-12-31"])
        direct = float(m.log_prob(r, exog=x).loc[VAL_START:].mean())
        assert row["val_log_score"] == pytest.approx(direct, abs=1e-9)
        assert row["error"] is None


def test_a_validation_span_outside_the_data_is_an_error(r: pd.Series) -> None:
    with raises_exactly(DataError, "val_start"):
        tune(finar.models.GARCH, r, {}, val_start="2030-01-01")
    with raises_exactly(DataError, "exactly the rows"):
        tune(finar.models.AR, r, {}, val_start=VAL_START, exog=r.iloc[1:])
