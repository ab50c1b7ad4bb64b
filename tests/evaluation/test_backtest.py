"""finar.backtest: no look-ahead, exact scores, path fallback, parallel == serial."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import finar
from finar.errors import DataError, LookAheadError
from finar.evaluation import backtest, compare
from finar.models import AR, GARCH
from tests.models.test_contract import simulate_garch_t


@pytest.fixture(scope="module")
def r() -> pd.Series:
    return simulate_garch_t(900, seed=21)


@pytest.fixture(scope="module")
def bt_garch(r):
    return backtest(GARCH(dist="t"), r, start=r.index[700], refit_every=50, progress=False, name="garch-t")


class PeekingAR(AR):
    """An AR(1) whose forecast of r_t secretly uses r_{t+1}: the backtest must refuse it."""

    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray) -> np.ndarray:
        lp = super()._log_prob_1d(state, y)
        lp[:-1] += 0.01 * np.tanh(y[1:])
        return lp


class RecordingAR(AR):
    """Records the length of every training series it is fitted on."""

    seen: ClassVar[list[int]] = []

    def fit(self, r):
        RecordingAR.seen.append(len(r))
        return super().fit(r)


class PathOnlyGARCH(GARCH):
    """GARCH without its closed form: evaluation must fall back to sample paths."""

    def predictive(self, r):
        return None


def test_daily_columns_and_exact_scores(r, bt_garch):
    d = bt_garch.daily
    assert d.index[0] == r.index[700] and d.index[-1] == r.index[-1] and len(d) == 200
    for col in ["y", "log_score", "crps", "pit", "mean", "var_1", "es_1", "hit_1", "var_2.5", "hit_5"]:
        assert col in d
    assert np.isfinite(d[["log_score", "crps", "pit", "var_1", "es_1"]].to_numpy()).all()
    assert ((d["pit"] > 0) & (d["pit"] < 1)).all()
    assert (d["es_1"] > d["var_1"]).all() and (d["var_1"] > d["var_5"]).all()
    np.testing.assert_array_equal(d["hit_1"], d["y"] < -d["var_1"])
    # the first block's scores are those of a model fitted on the 700 days before it
    with threadpool_limits(limits=1):  # as the backtest fits: BLAS threads move the optimum ~1e-7
        m = GARCH(dist="t").fit(r.iloc[:700])
    np.testing.assert_allclose(d["log_score"].iloc[:50], m.log_prob(r.iloc[:750]).iloc[700:], rtol=1e-12)
    assert (d["fit_date"].iloc[:50] == r.index[700]).all()
    assert (d["fit_date"].iloc[50:100] == r.index[750]).all()


def test_peeking_model_is_caught(r):
    with pytest.raises(LookAheadError, match="future data"):
        backtest(PeekingAR(order=1), r, start=r.index[700], refit_every=100, progress=False)


def test_expanding_and_fixed_windows(r):
    RecordingAR.seen = []
    backtest(RecordingAR(order=1), r, start=r.index[700], refit_every=100, progress=False)
    assert RecordingAR.seen == [700, 800]
    RecordingAR.seen = []
    backtest(RecordingAR(order=1), r, start=r.index[700], refit_every=100, window=250, progress=False)
    assert RecordingAR.seen == [250, 250]
    RecordingAR.seen = []
    backtest(RecordingAR(order=1), r, start=r.index[700], refit_every=None, progress=False)
    assert RecordingAR.seen == [700]


def test_parallel_equals_serial(r):
    a = backtest(GARCH(dist="t"), r, start=r.index[700], refit_every=40, progress=False)
    b = backtest(GARCH(dist="t"), r, start=r.index[700], refit_every=40, progress=False, n_jobs=2)
    pd.testing.assert_frame_equal(a.daily, b.daily)


def test_path_fallback_matches_closed_form(r, bt_garch):
    paths = backtest(PathOnlyGARCH(dist="t"), r, start=r.index[700], refit_every=50, n_paths=4000,
                     progress=False, seed=1)
    a, b = paths.daily, bt_garch.daily
    np.testing.assert_array_equal(a["log_score"], b["log_score"])  # always exact
    assert np.abs(a["pit"] - b["pit"]).max() < 0.03
    assert np.abs(a["var_5"] / b["var_5"] - 1).max() < 0.08
    assert abs(a["crps"].mean() / b["crps"].mean() - 1) < 0.01


def test_multi_step_uses_paths_and_no_log_score(r):
    bt = backtest(GARCH(dist="normal"), r, start=r.index[800], horizon=5, refit_every=None,
                  n_paths=500, progress=False)
    d = bt.daily
    assert d["log_score"].isna().all()
    assert len(d) == 900 - 800 - 4
    np.testing.assert_allclose(d["y"].iloc[0], r.iloc[800:805].sum())
    assert np.isnan(bt.summary(es_sims=0)["log_score"])
    # 5-day VaR is larger than 1-day VaR
    one = backtest(GARCH(dist="normal"), r, start=r.index[800], refit_every=None, progress=False)
    assert d["var_1"].mean() > 1.5 * one.daily["var_1"].mean()


def test_summary_and_compare(r, bt_garch):
    s = bt_garch.summary(es_sims=500)
    for key in ["log_score", "crps", "hit_1", "kupiec_1", "christoffersen_cc_1", "es_z2_p_2.5",
                "pit_berkowitz_p", "pit_ks_p", "n_days"]:
        assert key in s.index
    assert s["log_score"] == pytest.approx(bt_garch.daily["log_score"].mean())
    assert 0 <= s["kupiec_1"] <= 1
    ar = backtest(AR(order=1), r, start=r.index[700], refit_every=50, progress=False, name="ar1")
    table = compare([ar, bt_garch], baseline="ar1", es_sims=500)
    assert list(table.index) == ["ar1", "garch-t"]
    # on GARCH data the GARCH forecaster beats a constant-variance AR, significantly
    assert table.loc["garch-t", "log_score"] > table.loc["ar1", "log_score"]
    assert table.loc["garch-t", "dm_log_score"] > 2 and table.loc["garch-t", "dm_log_score_p"] < 0.05
    assert np.isnan(table.loc["ar1", "dm_log_score"])


def test_bad_arguments(r):
    with pytest.raises(DataError, match="no test days"):
        backtest(AR(order=1), r, start="2100-01-01", progress=False)
    with pytest.raises(DataError, match="one series"):
        backtest(AR(order=1), pd.concat([r, r.rename("b")], axis=1), start=r.index[700], progress=False)
    with pytest.raises(DataError, match="refit_every"):
        backtest(AR(order=1), r, start=r.index[700], refit_every=0, progress=False)
    with pytest.raises(DataError, match="levels"):
        backtest(AR(order=1), r, start=r.index[700], levels=(0.9,), progress=False)
    other = backtest(AR(order=1), r, start=r.index[800], progress=False, name="late")
    early = backtest(AR(order=1), r, start=r.index[700], progress=False, name="early")
    with pytest.raises(DataError, match="different days"):
        compare([other, early])


def test_backtest_is_in_public_namespace():
    assert finar.backtest is backtest and finar.compare is compare


def test_predicted_volatility_drives_the_strategy(r, bt_garch):
    from finar.evaluation.strategy import compare_strategies

    m = GARCH(dist="t").fit(r.iloc[:700])
    np.testing.assert_allclose(bt_garch.daily["std"].iloc[:50],
                               m.conditional_volatility(r.iloc[:750]).iloc[700:], rtol=1e-6)
    table = compare_strategies(r, {"garch": bt_garch.daily["std"]})
    assert list(table["strategy"]) == ["garch", "realised vol (20d)", "buy and hold"]
    assert np.isfinite(table["sharpe"]).all()
