"""NeuralDCC: the torch scan equals the day-by-day recursion, constant gates are ADCC (checked
against scipy's multivariate t), sampling and model files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import special, stats

import finar
from finar.models.neural_dcc import NeuralDCC, features, gates, q_scan

COLS = ["SP500", "JPM", "XOM"]


@pytest.fixture(scope="module")
def r() -> pd.DataFrame:
    return finar.returns(finar.load("sp500-stocks")[COLS]).loc["2007":"2010"]


@pytest.fixture(scope="module")
def model(r) -> NeuralDCC:
    return NeuralDCC(max_iter=6).fit(r)


def test_scan_equals_the_daily_recursion(r, model):
    st = model._state(r)
    x = st["x"]
    net = model._net()
    qbar, nbar = np.asarray(model.qbar_), np.asarray(model.nbar_)
    w = torch.as_tensor(gates(net, features(x)))
    q = q_scan(torch.as_tensor(x), w, torch.as_tensor(qbar), torch.as_tensor(nbar), model.delta_).numpy()
    corr, q_next = model._correlations(x, qbar, 0.0, 0.0)
    d = np.sqrt(np.einsum("tii->ti", q))
    np.testing.assert_allclose(q[:-1] / (d[:-1, :, None] * d[:-1, None, :]), corr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(q[-1], q_next, rtol=1e-9)


def test_constant_gates_are_adcc(r, model):
    """With the network's last layer at zero the weights are constant: ADCC, by a plain loop and
    scipy's multivariate t."""
    m = NeuralDCC(max_iter=2).fit(r)
    net = {k: np.asarray(v) for k, v in m.net_.items()}
    net["w2"] = np.zeros_like(net["w2"])
    m.net_ = {k: v.tolist() for k, v in net.items()}
    om, a, b, dg = special.softmax(net["ell0"])
    g = dg / m.delta_
    st = m._state(r)
    x, qbar, nbar = st["x"], np.asarray(m.qbar_), np.asarray(m.nbar_)
    q, total = qbar.copy(), 0.0
    for t in range(len(x)):
        if t > 0:
            n = np.minimum(x[t - 1], 0)
            q = (1 - a - b) * qbar - g * nbar + a * np.outer(x[t - 1], x[t - 1]) + g * np.outer(n, n) + b * q
        d = np.sqrt(np.diag(q))
        total += (stats.multivariate_t.logpdf(x[t], shape=q / np.outer(d, d), df=m.nu_)
                  - stats.t.logpdf(x[t], m.nu_).sum())
    assert om == pytest.approx(1 - a - b - m.delta_ * g)  # the softmax's first weight is the intercept's
    ours = (m.log_prob(r).to_numpy() - np.column_stack([m.predictive(r)[c].log_prob(r[c].to_numpy())
                                                         for c in COLS])).sum()
    assert ours == pytest.approx(total, rel=1e-8)


def test_fit_is_at_least_close_to_dcc(r, model):
    dcc = finar.models.create("dcc").fit(r)
    assert model.joint_log_prob(r).mean() > dcc.joint_log_prob(r).mean() - 0.01
    w = model.gate_stats_
    assert 0 < w["a"][1] <= w["a"][2] < 0.5 and 0.5 < w["b"][0] < 1 and math.isfinite(model.nu_)


def test_sampling_and_files(r, model, tmp_path):
    a = model.sample(r, horizon=5, n_paths=40, seed=2, given={"SP500": -6.0})
    b = model.sample(r, horizon=5, n_paths=40, seed=2, given={"SP500": -6.0})
    np.testing.assert_array_equal(a.paths, b.paths)
    assert a.joint and (a.paths[:, 0, 0] == -6.0).all() and a.paths[:, 0, 1].mean() < -2.0
    path = model.save(tmp_path / "n.pt")
    m2 = finar.models.load(path)
    pd.testing.assert_frame_equal(m2.log_prob(r), model.log_prob(r))
    np.testing.assert_array_equal(m2.sample(r, 3, 10, seed=1).paths, model.sample(r, 3, 10, seed=1).paths)


def test_warm_start_fine_tunes_the_previous_network(r, monkeypatch):
    """A warm refit passes the previous network to the trainer (and only then); a cold one, a
    refit on other columns or with another width starts afresh."""
    import finar.models.neural_dcc as nd

    seen: list[dict | None] = []
    train = nd._train

    def spy(*args, init=None, **kw):
        seen.append(None if init is None else {k: np.asarray(v).copy() for k, v in init.items()})
        return train(*args, init=init, **kw)

    monkeypatch.setattr(nd, "_train", spy)
    m = NeuralDCC(max_iter=3, warm_iter=2, warm_start=True).fit(r.iloc[:600])
    first = {k: np.asarray(v) for k, v in m.net_.items()}
    m.fit(r.iloc[:660])
    assert seen[0] is None and seen[1] is not None
    for k, v in first.items():
        np.testing.assert_array_equal(seen[1][k], v)
    m.fit(r.iloc[:660, :2])                      # other columns: from scratch
    m.set_params(hidden=3).fit(r.iloc[:660, :2])  # another width: from scratch
    NeuralDCC(max_iter=3).fit(r.iloc[:600]).fit(r.iloc[:660])  # warm_start=False
    assert seen[2:] == [None, None, None, None]


def test_warm_backtest_refits_in_place_and_leaves_the_model(r):
    """joint_backtest with a warm-start model and fitted=True: the first block is scored by the
    given model, later blocks by warm refits; the given model itself is unchanged, and the
    scores equal those of refitting by hand the same way."""
    from finar.evaluation.joint import joint_backtest

    start = r.index[700]
    once = NeuralDCC(max_iter=3, warm_iter=2, warm_start=True).fit(r.loc[:r.index[699]])
    before = {k: np.asarray(v).copy() for k, v in once.net_.items()}
    bt = joint_backtest(once, r.iloc[:820], start, refit_every=60, scenarios=False, fitted=True)
    for k, v in before.items():
        np.testing.assert_array_equal(np.asarray(once.net_[k]), v)
    hand = NeuralDCC(max_iter=3, warm_iter=2, warm_start=True).fit(r.iloc[:700])
    first = hand.joint_log_prob(r.iloc[:760]).to_numpy()[700:760]
    hand.fit(r.iloc[:760])
    second = hand.joint_log_prob(r.iloc[:820]).to_numpy()[760:820]
    np.testing.assert_allclose(bt.daily["joint"].to_numpy(), np.r_[first, second], rtol=1e-10)


def test_warm_iter_zero_keeps_the_network_and_refits_the_rest(r):
    m = NeuralDCC(max_iter=3, warm_iter=0, warm_start=True).fit(r.iloc[:600])
    net, qbar = {k: np.asarray(v) for k, v in m.net_.items()}, np.asarray(m.qbar_)
    m.fit(r.iloc[:700])
    for k, v in net.items():
        np.testing.assert_array_equal(np.asarray(m.net_[k]), v)
    assert not np.allclose(np.asarray(m.qbar_), qbar)  # Qbar (and the marginals) are refitted
    with pytest.raises(finar.FinarError, match="warm_iter"):
        NeuralDCC(warm_iter=-1, warm_start=True).fit(r.iloc[:600]).fit(r.iloc[:700])


def test_training_survives_a_line_search_trial_that_breaks_the_recursion(r, monkeypatch):
    """A trial point whose weights underflow makes Q_t singular; training stops there and keeps the
    best point so far instead of failing the fit."""
    import finar.models.neural_dcc as nd

    real, calls = nd._copula_loglik, {"n": 0}

    def flaky(x, corr, nu):
        calls["n"] += 1
        if calls["n"] == 6:
            raise torch.linalg.LinAlgError("not positive-definite")
        return real(x, corr, nu)

    monkeypatch.setattr(nd, "_copula_loglik", flaky)
    m = NeuralDCC(max_iter=6).fit(r)
    assert calls["n"] > 6 and np.isfinite(m.joint_log_prob(r).iloc[10:]).all()
