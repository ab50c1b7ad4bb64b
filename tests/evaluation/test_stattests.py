"""Tests of finar.evaluation.stattests: known values, size under the true model, power.

Size checks simulate many seeded data sets from the null model and assert that the share of
5%-level rejections lies in the 99.9% binomial band around 0.05 (``_band``); power checks
assert clear rejection on a wrong model.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import optimize, signal, stats

from finar.errors import DataError
from finar.evaluation.stattests import (
    TestResult,
    acerbi_szekely_z2,
    christoffersen_cc,
    christoffersen_independence,
    diebold_mariano,
    kupiec_pof,
    pit_uniformity,
    traffic_light,
)

REPS = 2000


def _band(n: int, p: float = 0.05, level: float = 0.999) -> tuple[float, float]:
    lo, hi = stats.binom.interval(level, n, p)
    return lo / n, hi / n


def _rate(results: list[TestResult]) -> float:
    return float(np.mean([r.p_value < 0.05 for r in results]))


def _hits_with(x: int, n: int) -> np.ndarray:
    h = np.zeros(n, dtype=bool)
    h[np.linspace(0, n - 1, x).astype(int)] = True  # spread out, so no clustering
    return h


def _markov_hits(rng: np.random.Generator, reps: int, n: int, p01: float, p11: float) -> np.ndarray:
    u = rng.random((reps, n))
    h = np.zeros((reps, n), dtype=bool)
    for t in range(1, n):
        h[:, t] = u[:, t] < np.where(h[:, t - 1], p11, p01)
    return h


# --- TestResult ----------------------------------------------------------------------------

def test_result_is_frozen_and_to_dict_is_json_ready():
    idx = pd.bdate_range("2015-01-01", periods=300)
    res = traffic_light(pd.Series(_hits_with(3, 300), index=idx))
    with pytest.raises(AttributeError):
        res.statistic = 1.0  # type: ignore[misc]
    d = res.to_dict()
    assert d["name"] == "traffic_light" and d["last_zone"] == "green" and d["counts"]["green"] == 51
    json.dumps(d, allow_nan=False)
    d = christoffersen_independence(np.zeros(10)).to_dict()
    assert d["pi11"] is None
    json.dumps(d, allow_nan=False)


# --- Kupiec --------------------------------------------------------------------------------

def test_kupiec_known_value_250_days_8_hits():
    res = kupiec_pof(_hits_with(8, 250), alpha=0.01)
    log_l0 = 242 * math.log(0.99) + 8 * math.log(0.01)
    hand = -2 * (log_l0 - 242 * math.log(242 / 250) - 8 * math.log(8 / 250))
    assert res.statistic == pytest.approx(hand, rel=1e-12)
    assert res.statistic == pytest.approx(7.7336, abs=1e-4)
    assert res.p_value == pytest.approx(stats.chi2.sf(hand, 1), rel=1e-12)
    assert res.extra == {"n_obs": 250, "n_hits": 8, "hit_rate": 0.032, "expected_hits": 2.5, "alpha": 0.01}


@pytest.mark.parametrize(("n", "lo", "hi"), [(510, 1, 11), (1000, 4, 17)])
def test_kupiec_matches_published_nonrejection_regions(n, lo, hi):
    # Jorion (2007), Value at Risk, Table 6-2, p = 0.01: accept iff lo < N < hi at 5%
    for x in range(lo - 1, hi + 2):
        rejected = kupiec_pof(_hits_with(x, n), 0.01).p_value < 0.05
        assert rejected == (not lo < x < hi), x


def test_kupiec_zero_and_all_hits_are_finite_limits():
    zero, full = kupiec_pof(np.zeros(100), 0.01), kupiec_pof(np.ones(100, dtype=bool), 0.01)
    assert zero.statistic == pytest.approx(-200 * math.log(0.99))
    assert full.statistic == pytest.approx(-200 * math.log(0.01))
    assert np.isfinite([zero.p_value, full.p_value]).all()


def test_kupiec_size_and_power():
    rng = np.random.default_rng(0)
    n, alpha = 1000, 0.01
    rate = _rate([kupiec_pof(h, alpha) for h in rng.random((REPS, n)) < alpha])  # measured 0.0565
    # the test is discrete: its exact size here is sum over rejected x of Bin(x; n, alpha) = 0.055
    exact = sum(stats.binom.pmf(x, n, alpha) for x in range(n + 1)
                if kupiec_pof(_hits_with(x, n), alpha).p_value < 0.05)
    assert 0.04 < exact < 0.06
    lo, hi = _band(REPS)
    assert lo <= rate <= hi
    power = _rate([kupiec_pof(h, alpha) for h in rng.random((500, n)) < 2 * alpha])  # ~0.77
    assert power > 0.6


# --- Christoffersen ------------------------------------------------------------------------

def test_christoffersen_independence_hand_example():
    # transitions 00 00 01 11 11 10 00 00 00: n00=5 n01=1 n10=1 n11=2
    res = christoffersen_independence([0, 0, 0, 1, 1, 1, 0, 0, 0, 0])
    assert (res.extra["n00"], res.extra["n01"], res.extra["n10"], res.extra["n11"]) == (5, 1, 1, 2)
    pi, pi01, pi11 = 3 / 9, 1 / 6, 2 / 3
    l0 = 6 * math.log(1 - pi) + 3 * math.log(pi)
    l1 = 5 * math.log(1 - pi01) + math.log(pi01) + math.log(1 - pi11) + 2 * math.log(pi11)
    assert res.statistic == pytest.approx(-2 * (l0 - l1), rel=1e-12)
    assert res.statistic == pytest.approx(2.2314, abs=1e-4)
    assert res.extra["pi01"] == pytest.approx(pi01) and res.extra["pi11"] == pytest.approx(pi11)
    # pi01 = pi11 = 1/3: no evidence of dependence at all
    flat = christoffersen_independence([0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    assert flat.statistic == pytest.approx(0, abs=1e-12) and flat.p_value == pytest.approx(1)


@pytest.mark.parametrize("hits", [np.zeros(50), np.ones(50), np.r_[np.zeros(49), 1], np.r_[1, np.zeros(49)]])
def test_christoffersen_zero_cells_are_finite(hits):
    res = christoffersen_independence(hits)
    assert np.isfinite(res.statistic) and 0 <= res.p_value <= 1
    cc = christoffersen_cc(hits, 0.01)
    assert np.isfinite(cc.statistic) and np.isfinite(cc.p_value)


def test_christoffersen_cc_is_pof_plus_ind():
    hits = np.r_[np.zeros(100), 1, 1, np.zeros(50), 1, np.zeros(97)]
    cc, pof, ind = christoffersen_cc(hits, 0.01), kupiec_pof(hits, 0.01), christoffersen_independence(hits)
    assert cc.statistic == pytest.approx(pof.statistic + ind.statistic, rel=1e-12)
    assert cc.p_value == pytest.approx(stats.chi2.sf(cc.statistic, 2))
    assert cc.extra["lr_ind"] == ind.statistic and cc.extra["n11"] == 1


def test_christoffersen_size():
    # LR_ind needs n11 > 0 often enough for its chi2(1) limit: at alpha = 0.05 that takes
    # T ~ 5,000 (measured 0.052 / cc 0.049). With few hits it is discrete: conservative at
    # T = 1,000, alpha = 0.01 (measured 0.0195 / cc 0.0315), so there only <= the band; but
    # at T = 1,000, alpha = 0.05 we measured 0.08, so treat LR_ind p-values there with care.
    rng = np.random.default_rng(1)
    lo, hi = _band(REPS)
    hits = rng.random((REPS, 5000)) < 0.05
    rate_ind = _rate([christoffersen_independence(h) for h in hits])
    rate_cc = _rate([christoffersen_cc(h, 0.05) for h in hits])
    assert lo <= rate_ind <= hi and lo <= rate_cc <= hi
    hits = rng.random((REPS, 1000)) < 0.01
    assert _rate([christoffersen_independence(h) for h in hits]) <= hi
    assert _rate([christoffersen_cc(h, 0.01) for h in hits]) <= hi


def test_christoffersen_power_on_clustered_hits():
    rng = np.random.default_rng(2)
    hits = _markov_hits(rng, 300, 1000, p01=0.03, p11=0.3)  # clustered, overall rate ~4%
    assert _rate([christoffersen_independence(h) for h in hits]) > 0.9  # measured 0.99
    assert _rate([christoffersen_cc(h, 0.04) for h in hits]) > 0.9


# --- traffic light -------------------------------------------------------------------------

@pytest.mark.parametrize(("x", "zone"), [(0, "green"), (4, "green"), (5, "yellow"), (9, "yellow"),
                                         (10, "red"), (25, "red")])
def test_traffic_light_zone_boundaries(x, zone):
    res = traffic_light(_hits_with(x, 250))
    assert res.extra["last_zone"] == zone and res.statistic == x
    assert (res.extra["green_max"], res.extra["yellow_max"]) == (4, 9)
    assert res.p_value == pytest.approx(stats.binom.sf(x - 1, 250, 0.01))


def test_traffic_light_cumulative_probabilities_match_basel_table():
    # Basel Committee (1996), Table 1: cumulative probability for 0..10 exceptions, in %
    table = [8.11, 28.58, 54.32, 75.81, 89.22, 95.88, 98.63, 99.60, 99.89, 99.97, 99.99]
    got = [round(100 * traffic_light(_hits_with(x, 250)).extra["cum_prob"], 2) for x in range(11)]
    assert got == table


def test_traffic_light_rolling_windows_match_a_loop():
    rng = np.random.default_rng(3)
    idx = pd.bdate_range("2014-01-01", periods=700)
    hits = pd.Series(rng.random(700) < 0.025, index=idx)
    res = traffic_light(hits)
    zones = res.extra["zones"]
    assert isinstance(zones, pd.Series) and zones.index.equals(idx[249:])
    for end in range(249, 700, 37):
        assert zones.iloc[end - 249] == traffic_light(hits.iloc[end - 249:end + 1]).extra["last_zone"]
    counts = res.extra["counts"]
    assert sum(counts.values()) == 451 and counts == zones.value_counts().reindex(
        ["green", "yellow", "red"], fill_value=0).to_dict()
    worst = "red" if counts["red"] else "yellow" if counts["yellow"] else "green"
    assert res.extra["worst_zone"] == worst and res.extra["last_zone"] == zones.iloc[-1]
    assert isinstance(traffic_light(hits.to_numpy()).extra["zones"], np.ndarray)


def test_traffic_light_size_and_power():
    # zone frequencies of the last window follow Bin(250, 1%): green 89.2%, red 0.03%
    rng = np.random.default_rng(4)
    zones = [traffic_light(h).extra["last_zone"] for h in rng.random((REPS, 250)) < 0.01]
    not_green = np.mean([z != "green" for z in zones])
    lo, hi = _band(REPS, 1 - stats.binom.cdf(4, 250, 0.01))
    assert lo <= not_green <= hi
    zones = [traffic_light(h).extra["last_zone"] for h in rng.random((500, 250)) < 0.03]
    assert np.mean([z != "green" for z in zones]) > 0.8  # 3x the rate: mean 7.5 exceptions


# --- Acerbi-Szekely Z2 ---------------------------------------------------------------------

def _normal_model(sigma: np.ndarray, alpha: float):
    q = stats.norm.ppf(alpha)
    var, es = -q * sigma, sigma * stats.norm.pdf(q) / alpha

    def sampler(rng, n):
        return sigma * rng.standard_normal((n, len(sigma)))

    return var, es, sampler


def test_z2_hand_examples():
    fixed = np.array([[-3.0, 0, 0, 0], [0, 0, 0, 0], [-6, 0, 0, 0]])  # Z2 = -0.5, 1, -2
    calls = []

    def sampler(rng, n):  # called once with n = n_sims, so pre-drawn paths can be passed in
        calls.append(n)
        return fixed[:n]

    res = acerbi_szekely_z2([-3, 0.5, -0.5, 1], 1.0, 2.0, 0.25, sampler, n_sims=3)
    assert calls == [3]
    assert res.statistic == pytest.approx(-3 / (4 * 0.25 * 2) + 1)  # -0.5
    assert res.p_value == pytest.approx(2 / 3) and res.extra["n_hits"] == 1
    res = acerbi_szekely_z2(pd.Series([-3.0, -2, 0, 1]), [1, 1.5, 1, 1], [2, 4, 2, 2], 0.5,
                            lambda rng, n: np.zeros((n, 4)), n_sims=10)
    assert res.statistic == pytest.approx((-3 / 2 - 2 / 4) / (4 * 0.5) + 1)  # 0
    assert res.p_value == 0.0  # simulated Z2 = 1 > 0 every time


def test_z2_has_mean_zero_under_the_model_and_is_reproducible():
    sigma = 1 + 0.5 * np.sin(np.arange(250) / 20)
    var, es, sampler = _normal_model(sigma, 0.025)
    r = sampler(np.random.default_rng(5), 1)[0]
    res = acerbi_szekely_z2(r, var, es, 0.025, sampler, n_sims=20_000, seed=1)
    assert abs(res.extra["sim_mean"]) < 0.012  # 4 standard errors (sd of Z2 ~ 0.4 at T = 250)
    again = acerbi_szekely_z2(r, var, es, 0.025, sampler, n_sims=20_000, seed=1)
    assert again == res
    other = acerbi_szekely_z2(r, var, es, 0.025, sampler, n_sims=20_000, seed=np.random.default_rng(2))
    assert other.p_value != res.p_value and other.statistic == res.statistic


def test_z2_size_and_power():
    rng = np.random.default_rng(6)
    sigma = 1 + 0.5 * np.sin(np.arange(250) / 20)
    var, es, sampler = _normal_model(sigma, 0.025)
    returns = sigma * rng.standard_normal((1000, 250))
    res = [acerbi_szekely_z2(r, var, es, 0.025, sampler, n_sims=200, seed=i) for i, r in enumerate(returns)]
    lo, hi = _band(1000)
    assert lo <= _rate(res) <= hi  # measured 0.054
    assert abs(np.mean([r.statistic for r in res])) < 4 * 0.4 / math.sqrt(1000)  # E[Z2] = 0
    # a model 30% too narrow: VaR and ES 30% too small, sampled from that model
    var, es, sampler = _normal_model(0.7 * sigma, 0.025)
    res = [acerbi_szekely_z2(r, var, es, 0.025, sampler, n_sims=200, seed=i)
           for i, r in enumerate(returns[:200])]
    assert _rate(res) > 0.9  # measured 1.0
    assert np.mean([r.statistic for r in res]) < -0.5


# --- PIT uniformity ------------------------------------------------------------------------

def test_berkowitz_matches_numerical_mle():
    rng = np.random.default_rng(7)
    z = signal.lfilter([1], [1, -0.2], 0.1 + 1.1 * rng.standard_normal(300))
    res = pit_uniformity(stats.norm.cdf(z), method="berkowitz")
    y, x = z[1:], z[:-1]

    def nll(theta):
        c, rho, log_s = theta
        return -stats.norm.logpdf(y, c + rho * x, np.exp(log_s)).sum()

    fit = optimize.minimize(nll, [0.0, 0.0, 0.0], method="BFGS", options={"gtol": 1e-10})
    lr = 2 * (-fit.fun - stats.norm.logpdf(y).sum())
    assert res.statistic == pytest.approx(lr, rel=1e-6)
    assert res.p_value == pytest.approx(stats.chi2.sf(lr, 3), rel=1e-6)
    assert res.extra["rho"] == pytest.approx(fit.x[1], abs=1e-5)
    assert res.extra["sigma2"] == pytest.approx(np.exp(2 * fit.x[2]), rel=1e-5)


def test_pit_clipping_and_ks_known_value():
    res = pit_uniformity(np.r_[0.0, np.linspace(0.01, 0.99, 50), 1.0])
    assert np.isfinite(res.statistic)
    ks = pit_uniformity([0.1, 0.4, 0.7], method="ks")
    assert ks.statistic == pytest.approx(0.3)  # D+ = max(1/3 - .1, 2/3 - .4, 1 - .7)
    assert ks.p_value == pytest.approx(stats.kstest([0.1, 0.4, 0.7], "uniform").pvalue)


@pytest.mark.parametrize("method", ["berkowitz", "ks"])
def test_pit_size_and_power(method):
    rng = np.random.default_rng(8)
    lo, hi = _band(REPS)
    rate = _rate([pit_uniformity(u, method) for u in rng.random((REPS, 500))])
    assert lo <= rate <= hi  # measured berkowitz 0.047, ks 0.040
    narrow = stats.norm.cdf(rng.standard_normal((300, 500)) / 0.7)  # predictive sd 30% too small
    assert _rate([pit_uniformity(u, method) for u in narrow]) > 0.9


def test_berkowitz_detects_autocorrelated_pits_that_ks_misses():
    rng = np.random.default_rng(9)
    z = signal.lfilter([1], [1, -0.3], rng.standard_normal((300, 500)), axis=1) * math.sqrt(1 - 0.09)
    pits = stats.norm.cdf(z)  # uniform margins, dependent in time
    assert _rate([pit_uniformity(u, "berkowitz") for u in pits]) > 0.9  # measured 1.0
    assert _rate([pit_uniformity(u, "ks") for u in pits]) < 0.2  # measured 0.08


# --- Diebold-Mariano -----------------------------------------------------------------------

def _nw_loop(d: np.ndarray, lags: int) -> float:
    T, u = len(d), d - d.mean()
    gamma = [sum(u[t] * u[t - k] for t in range(k, T)) / T for k in range(lags + 1)]
    return gamma[0] + 2 * sum((1 - k / (lags + 1)) * gamma[k] for k in range(1, lags + 1))


def test_dm_matches_statsmodels_hac_and_an_inline_newey_west():
    rng = np.random.default_rng(10)
    a = pd.Series(rng.standard_normal(1006), index=pd.bdate_range("2015-01-01", periods=1006))
    b = a - 0.05 - signal.lfilter([1], [1, -0.4], rng.standard_normal(1006))
    res = diebold_mariano(a, b, hln=False)
    d = (a - b).to_numpy()
    assert res.extra["lags"] == 6  # floor(4 (1006/100)^(2/9))
    assert res.extra["lrv"] == pytest.approx(_nw_loop(d, 6), rel=1e-10)
    ols = sm.OLS(d, np.ones(1006)).fit(cov_type="HAC", cov_kwds={"maxlags": 6, "use_correction": False})
    assert res.statistic == pytest.approx(ols.tvalues[0], rel=1e-10)
    assert res.p_value == pytest.approx(ols.pvalues[0], rel=1e-8)
    assert res.extra["mean_diff"] == pytest.approx(d.mean())
    hln = diebold_mariano(a, b, h=3, lags=6)
    T = 1006
    dm3 = res.statistic * math.sqrt((T + 1 - 6 + 6 / T) / T)
    assert hln.statistic == pytest.approx(dm3, rel=1e-12)
    assert hln.p_value == pytest.approx(2 * stats.t.sf(abs(dm3), T - 1), rel=1e-10)


def test_dm_defaults_orientation_and_nans():
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal(100), rng.standard_normal(100) - 1
    assert diebold_mariano(a, b, h=10).extra["lags"] == 9  # max(h - 1, NW rule = 4)
    assert diebold_mariano(a, b).extra["better"] == "a"
    assert diebold_mariano(a, b, higher_is_better=False).extra["better"] == "b"
    assert diebold_mariano(b, a).statistic == pytest.approx(-diebold_mariano(a, b).statistic)
    a[[3, 50]], b[7] = np.nan, np.nan
    with pytest.raises(DataError, match="score_a has non-finite values at rows 3, 50"):
        diebold_mariano(a, b)
    keep = ~np.isnan(a) & ~np.isnan(b)
    assert diebold_mariano(a, b, dropna=True) == diebold_mariano(a[keep], b[keep])


def test_dm_size_and_power():
    rng = np.random.default_rng(12)
    d = signal.lfilter([1], [1, -0.2], rng.standard_normal((REPS, 1000)), axis=1)  # AR(1) differences
    zero = np.zeros(1000)
    lo, hi = _band(REPS)
    # measured 0.0595: slightly above 0.05 because 6 Bartlett lags miss ~6% of the AR(1)
    # long-run variance here
    assert lo <= _rate([diebold_mariano(x, zero) for x in d]) <= hi
    assert _rate([diebold_mariano(x + 0.2, zero) for x in d[:300]]) > 0.9  # mean 0.2 / HAC se ~0.04


# --- bad input -----------------------------------------------------------------------------

def _zeros_sampler(T: int):
    return lambda rng, n: np.zeros((n, T))


@pytest.mark.parametrize(("call", "match"), [
    (lambda: kupiec_pof([0, 1, 2], 0.01), "0/1 or boolean"),
    (lambda: kupiec_pof([0, 1, np.nan], 0.01), "hits has non-finite values at rows 2"),
    (lambda: kupiec_pof([0, 1], 1.5), "alpha must be a tail probability"),
    (lambda: kupiec_pof(np.zeros((5, 2)), 0.01), "one-dimensional"),
    (lambda: christoffersen_independence([1]), "at least 2"),
    (lambda: traffic_light(np.zeros(100)), "at least 250"),
    (lambda: traffic_light(np.zeros(300), window=0), "window must be a positive integer"),
    (lambda: pit_uniformity([0.2, 1.3, 0.5, 0.5]), r"\[0, 1\]"),
    (lambda: pit_uniformity([0.2, 0.3], method="ad"), "'berkowitz' or 'ks'"),
    (lambda: pit_uniformity([0.5] * 10), "constant"),
    (lambda: diebold_mariano([1, 2, 3, 4], [1, 2, 3]), "lengths 4 and 3"),
    (lambda: diebold_mariano(pd.Series([1.0, 2, 3]), pd.Series([1.0, 2, 4], index=[1, 2, 3])), "align"),
    (lambda: diebold_mariano([1, 2, 3, 4], [0, 1, 2, 3]), "constant"),
    (lambda: diebold_mariano(np.arange(10.0), np.ones(10), lags=10), "lags must be"),
    (lambda: acerbi_szekely_z2([1.0, 2], 1.0, [1.0, -1], 0.025, _zeros_sampler(2)), "positive"),
    (lambda: acerbi_szekely_z2([1.0, 2], 1.0, 2.0, 0.025, _zeros_sampler(3)), r"shape \(10000, 3\)"),
    (lambda: acerbi_szekely_z2([1.0, 2], 1.0, 2.0, 0.025, _zeros_sampler(2), n_sims=0), "n_sims"),
    (lambda: acerbi_szekely_z2([1.0, 2], [1.0, 1, 1], 2.0, 0.025, _zeros_sampler(2)), "lengths 2 and 3"),
])
def test_bad_input_raises_data_error(call, match):
    with pytest.raises(DataError, match=match):
        call()
