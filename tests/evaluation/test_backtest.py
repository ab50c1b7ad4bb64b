"""finar.backtest: no look-ahead (covariates included), exact scores without paths, path fallback,
covariates, parallel == serial."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import finar
from finar.errors import DataError, LookAheadError
from finar.evaluation import backtest, backtest_panel, compare
from finar.models import AR, GARCH
from finar.models.predictive import HeadPredictive, LocScalePredictive
from tests.models.test_contract import simulate_garch_t


@pytest.fixture(scope="module")
def r() -> pd.Series:
    return simulate_garch_t(900, seed=21)


@pytest.fixture(scope="module")
def bt_garch(r):
    return backtest(GARCH(dist="t"), r, start=r.index[700], refit_every=50, progress=False, name="garch-t")


class PeekingAR(AR):
    """An AR(1) whose forecast of r_t secretly uses r_{t+1}: the backtest must refuse it."""

    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        lp = super()._log_prob_1d(state, y, x)
        lp[:-1] += 0.01 * np.tanh(y[1:])
        return lp


class RecordingAR(AR):
    """Records the length of every training series it is fitted on."""

    seen: ClassVar[list[int]] = []

    def fit(self, r, *, exog=None):
        RecordingAR.seen.append(len(r))
        return super().fit(r, exog=exog)


class PathOnlyGARCH(GARCH):
    """GARCH declared without its predictive distribution: evaluation must fall back to paths."""

    tags = frozenset({"exog"})


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


# ---- exact one-step scores: no paths for predictive models ----------------------------------------

def test_one_step_backtest_of_a_predictive_model_never_samples(r, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a one-step backtest of a predictive model drew sample paths")

    monkeypatch.setattr(GARCH, "sample", refuse)
    bt = backtest(GARCH(dist="skewt"), r, start=r.index[800], refit_every=50, progress=False)
    assert np.isfinite(bt.daily[["crps", "pit", "var_1", "es_1", "std"]].to_numpy()).all()
    assert [type(p) for p in bt.predictives] == [LocScalePredictive, LocScalePredictive]
    s = bt.summary(es_sims=200)  # the ES test simulates from the predictive objects
    assert np.isfinite(s["es_z2_1"])
    with pytest.raises(AssertionError, match="drew sample paths"):
        backtest(GARCH(dist="t"), r, start=r.index[850], refit_every=None, progress=False, one_step="paths")


def test_scores_are_the_predictive_distributions(r, bt_garch):
    with threadpool_limits(limits=1):
        m = GARCH(dist="t").fit(r.iloc[:700])
    pred = m.predictive(r.iloc[:750]).take(np.arange(700, 750))
    d = bt_garch.daily.iloc[:50]
    y = d["y"].to_numpy()
    np.testing.assert_allclose(d["pit"], pred.cdf(y), rtol=1e-12)
    np.testing.assert_allclose(d["var_2.5"], pred.var(0.025), rtol=1e-12)
    np.testing.assert_allclose(d["es_5"], pred.es(0.05), rtol=1e-12)
    np.testing.assert_allclose(d["crps"], pred.crps(y), rtol=1e-12)


def test_one_step_paths_is_the_fallback_of_models_without_the_tag(r):
    kw = dict(start=r.index[820], refit_every=40, n_paths=300, progress=False, seed=3)
    forced = backtest(GARCH(dist="t"), r, one_step="paths", **kw)
    untagged = backtest(PathOnlyGARCH(dist="t"), r, **kw)
    pd.testing.assert_frame_equal(forced.daily, untagged.daily)
    assert forced.settings["one_step"] == "paths"
    with pytest.raises(DataError, match="one_step"):
        backtest(GARCH(dist="t"), r, one_step="exact", **kw)


# ---- covariates ---------------------------------------------------------------------------------

class PeekingExogAR(AR):
    """An AR whose forecast of r_t secretly uses the covariate of day t itself (known only at its close)."""

    def _log_prob_1d(self, state: dict[str, Any], y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        return super()._log_prob_1d(state, y, x) + 0.01 * np.tanh(x[:, 0])


class ExogRecordingAR(AR):
    """Records the last day of the returns and covariates of every fit."""

    seen: ClassVar[list[tuple]] = []

    def fit(self, r, *, exog=None):
        ExogRecordingAR.seen.append((r.index[-1], exog.index[-1]))
        return super().fit(r, exog=exog)


@pytest.fixture(scope="module")
def arx():
    from tests.models.test_ar import simulate_arx

    return simulate_arx(900, seed=12)


def test_backtest_with_exog_slices_covariates_causally(arx):
    y, x = arx
    ExogRecordingAR.seen = []
    bt = backtest(ExogRecordingAR(order=1), y, exog=x, start=y.index[700], refit_every=100, progress=False)
    assert ExogRecordingAR.seen == [(y.index[699], y.index[699]), (y.index[799], y.index[799])]
    m = AR(order=1).fit(y.iloc[:700], exog=x.iloc[:700])
    np.testing.assert_allclose(bt.daily["log_score"].iloc[:100],
                               m.log_prob(y.iloc[:800], exog=x.iloc[:800]).iloc[700:], rtol=1e-12)
    assert bt.settings["exog"] == ["x1", "x2"]
    without = backtest(AR(order=1), y, start=y.index[700], refit_every=100, progress=False)
    assert bt.daily["log_score"].mean() > without.daily["log_score"].mean() + 0.2  # the covariates help


def test_look_ahead_check_covers_covariates(arx):
    y, x = arx
    with pytest.raises(LookAheadError, match="covariates"):
        backtest(PeekingExogAR(order=1), y, exog=x, start=y.index[700], refit_every=100, progress=False)
    regime = pd.DataFrame({"regime": (np.arange(len(y)) // 50 % 3).astype(float)}, index=y.index)
    with pytest.raises(LookAheadError):  # a categorical column is perturbed to other codes
        backtest(PeekingExogAR(order=1), y, exog=regime, start=y.index[700], refit_every=None,
                 progress=False)


def test_backtest_panel_passes_covariates_per_asset(arx):
    y, x = arx
    y2 = (y * 0.5 + 0.1).rename("b")
    panel = pd.concat([y.rename("a"), y2], axis=1)
    kw = dict(start=y.index[800], refit_every=None, progress=False)
    shared = backtest_panel(AR(order=1), panel, exog=x, **kw)
    single = backtest(AR(order=1), y2, exog=x, **kw)
    np.testing.assert_allclose(shared["b"].daily["log_score"], single.daily["log_score"], rtol=1e-12)
    per_asset = backtest_panel(AR(order=1), panel, exog={"a": x, "b": x[["x1"]]}, **kw)
    assert per_asset["b"].settings["exog"] == ["x1"]
    with pytest.raises(DataError, match="no entry for asset"):
        backtest_panel(AR(order=1), panel, exog={"a": x}, **kw)


def test_exog_errors(arx):
    y, x = arx
    with pytest.raises(DataError, match="exactly the rows"):
        backtest(AR(order=1), y, exog=x.iloc[:-1], start=y.index[800], progress=False)
    with pytest.raises(DataError, match="not known when it is made"):
        backtest(AR(order=1), y, exog=x, start=y.index[800], horizon=5, progress=False)


NETWORKS = {
    "wavenet": lambda: finar.models.WaveNet(residual_channels=4, gate_channels=4, skip_channels=4,
                                            layers_per_cycle=3, train={"max_epochs": 2, "window": 16}),
    "transformer": lambda: finar.models.Transformer(
        config=dict(context=16, d_model=8, n_layers=1, n_heads=2, n_kv_heads=1),
        train={"max_epochs": 2, "window": 16}),
}


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_networks_with_a_covariate_are_scored_exactly_without_paths(kind, arx, monkeypatch):
    """A network fitted with a covariate passes the look-ahead check, draws no path, and its
    PIT, VaR, ES and CRPS are its head's exact values."""
    y, x = arx
    model = NETWORKS[kind]()

    def refuse(*args, **kwargs):
        raise AssertionError("a one-step backtest of a network drew sample paths")

    monkeypatch.setattr(type(model), "sample", refuse)
    bt = backtest(model, y, exog=x, start=y.index[800], refit_every=None, progress=False)
    (pred,) = bt.predictives
    assert isinstance(pred, HeadPredictive) and len(pred) == 100
    d = bt.daily
    yv = d["y"].to_numpy()
    np.testing.assert_array_equal(d["pit"], pred.cdf(yv))
    np.testing.assert_array_equal(d["crps"], pred.crps(yv))
    for tag, a in (("1", 0.01), ("2.5", 0.025), ("5", 0.05)):
        np.testing.assert_array_equal(d[f"var_{tag}"], pred.var(a))
        np.testing.assert_array_equal(d[f"es_{tag}"], pred.es(a))
    np.testing.assert_allclose(d["log_score"], pred.log_prob(yv), rtol=1e-6)
    assert np.isfinite(bt.summary(es_sims=200)["es_z2_p_2.5"])  # ES test from exact draws
