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
