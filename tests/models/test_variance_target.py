"""Variance targeting (``TrainConfig.variance_target``): after training, the head's scales are
rescaled so that the one-step variance is right on average over the fit's days; the model is the
rescaled one everywhere (scores, predictive, draws, files); warm refits target again; binned heads
refuse it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import finar
from finar.errors import DataError
from finar.models import Transformer, WaveNet

WAVENET = dict(residual_channels=8, gate_channels=8, skip_channels=8, layers_per_cycle=3)
TRANSFORMER = dict(config=dict(context=16, d_model=16, n_heads=2, n_kv_heads=1))
MODELS = {"wavenet": (WaveNet, WAVENET), "transformer": (Transformer, TRANSFORMER),
          "wavenet_vol_states": (WaveNet, {**WAVENET, "vol_halflives": (5.0, 60.0)})}


@pytest.fixture(scope="module")
def r() -> pd.Series:
    return finar.returns(finar.load("sp500")["adj_close"]).loc["2012":"2015"]


def variance_ratio(m, r) -> float:
    """``mean((z - m)^2 / var)`` of the one-step predictive over the days of ``r`` with a full context."""
    z = np.asarray(m.scaler_.transform(r.to_frame().to_numpy()))
    raw = m._head_params(z, [0], m._with_states(None, z))[0]
    err = z[m.min_context:, 0] - m.head_.mean(raw).double().numpy()
    return float(np.mean(err**2 / m.head_.std(raw).double().numpy() ** 2))


@pytest.mark.parametrize("name", list(MODELS))
def test_the_one_step_variance_is_right_on_the_fit_days(r, name):
    cls, kw = MODELS[name]
    targeted = cls(**kw, train={"max_epochs": 2, "variance_target": True}).fit(r)
    plain = cls(**kw, train={"max_epochs": 2}).fit(r)
    assert variance_ratio(targeted, r) == pytest.approx(1.0, abs=1e-6)
    assert plain.head_.scale_factor == 1.0 and abs(variance_ratio(plain, r) - 1) > 1e-3
    # the same network: only the head's scales change, and every output follows them
    weights = zip(plain.network_.state_dict().values(), targeted.network_.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in weights)
    c = targeted.head_.scale_factor
    assert not np.allclose(targeted.log_prob(r).dropna(), plain.log_prob(r).dropna())
    sd_t, sd_p = (np.asarray(m.predictive(r).std()) for m in (targeted, plain))
    sd_t, sd_p = sd_t[np.isfinite(sd_t)], sd_p[np.isfinite(sd_p)]
    assert bool(((sd_t < sd_p) if c < 1 else (sd_t > sd_p)).all())


def test_draws_are_the_rescaled_quantiles(r):
    m = WaveNet(**WAVENET, train={"max_epochs": 2, "variance_target": True}).fit(r)
    u = np.random.default_rng(0).uniform(size=(32, 1))
    first = m.sample(r, horizon=1, n_paths=32, uniforms=u).paths[:, 0, 0]
    z = np.asarray(m.scaler_.transform(r.to_frame().to_numpy()))
    raw = m._head_params(np.vstack([z, [[0.0]]]), [0], None)[0][-1:]  # the day after the context
    q = m.head_.ppf(raw.expand(32, -1), torch.as_tensor(u[:, 0])).double().numpy()
    np.testing.assert_allclose(first, q * m.scaler_.scale_[0] + m.scaler_.loc_[0], rtol=1e-5, atol=1e-6)


def test_files_keep_the_factor(r, tmp_path):
    m = WaveNet(**WAVENET, train={"max_epochs": 2, "variance_target": True}).fit(r)
    m.save(tmp_path / "m.pt")
    back = finar.models.load(tmp_path / "m.pt")
    assert back.head_.scale_factor == m.head_.scale_factor != 1.0
    np.testing.assert_array_equal(back.log_prob(r).to_numpy(), m.log_prob(r).to_numpy())
    plain = WaveNet(**WAVENET, train={"max_epochs": 1}).fit(r)
    plain.save(tmp_path / "p.pt")
    assert finar.models.load(tmp_path / "p.pt").head_.scale_factor == 1.0


def test_a_warm_refit_trains_at_factor_one_and_targets_again(r):
    m = WaveNet(**WAVENET, train={"max_epochs": 2, "warm_epochs": 1, "variance_target": True})
    m.fit(r.iloc[:-120])
    first = m.head_.scale_factor
    m.fit(r)  # a fine-tune of the same network
    assert m.head_.scale_factor != first and variance_ratio(m, r) == pytest.approx(1.0, abs=1e-6)


def test_binned_heads_refuse_it(r):
    with pytest.raises(DataError, match="variance_target"):
        Transformer({**TRANSFORMER["config"], "tokens": "discrete"}, n_bins=16,
                    train={"max_epochs": 1, "variance_target": True}).fit(r)
    for bad in ("yes", 2):
        with pytest.raises(DataError, match="variance_target"):
            WaveNet(train={"variance_target": bad})
