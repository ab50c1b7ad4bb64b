"""Pretraining on many series (NeuralForecaster.pretrain) and fits that start from it (train.init)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import DataError
from finar.models import PixelCNN, Transformer, WaveNet

TINY = dict(residual_channels=4, gate_channels=4, skip_channels=4, layers_per_cycle=2, head="t_mixture")


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    px = finar.load("sp500-stocks", start="2008-01-01", end="2012-12-31")
    return finar.returns(px[["AAPL", "XOM", "JPM"]])


@pytest.fixture(scope="module")
def pretrained(panel, tmp_path_factory):
    # different dates per series: a DataFrame's columns are taken without their missing days
    ragged = panel.copy()
    ragged.iloc[:300, 1] = np.nan
    m = WaveNet(**TINY, train={"max_epochs": 2, "seed": 1}).pretrain(ragged)
    path = tmp_path_factory.mktemp("pre") / "pooled.pt"
    m.save(path)
    return m, path


def _weights(m) -> list[np.ndarray]:
    return [p.detach().cpu().numpy().copy() for p in m.network_.parameters()]


def test_pretrain_pools_the_series_into_one_network(pretrained, panel):
    m, _ = pretrained
    assert m.columns_ == ["pooled"] and m.exog_columns_ == [] and len(m.training_.history) == 2
    again = WaveNet(**TINY, train={"max_epochs": 2, "seed": 1}).pretrain(
        {c: panel[c].iloc[300:] if c == "XOM" else panel[c] for c in panel})
    for a, b in zip(_weights(m), _weights(again), strict=True):  # same windows, same seed: same network
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    lp = m.log_prob((panel["AAPL"] - panel["AAPL"].mean()) / panel["AAPL"].std())
    assert np.isfinite(lp.iloc[m.min_context:]).all()


def test_a_fit_with_init_starts_from_the_pretrained_weights(pretrained, panel):
    m, path = pretrained
    r = panel["JPM"].rename("JPM")
    # a vanishing learning rate: the fitted network is the one it started from
    start = WaveNet(**TINY, train={"max_epochs": 1, "lr": 1e-12, "init": str(path)}).fit(r)
    for a, b in zip(_weights(m), _weights(start), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-7)
    fresh = WaveNet(**TINY, train={"max_epochs": 1, "lr": 1e-12}).fit(r)
    assert any(not np.allclose(a, b) for a, b in zip(_weights(m), _weights(fresh), strict=True))
    assert start.scaler_.scale_[0] == pytest.approx(r.std(ddof=0), rel=1e-6)  # its own scaler
    tuned = WaveNet(**TINY, train={"max_epochs": 2, "init": str(path)}).fit(r)
    assert np.isfinite(tuned.log_prob(r).iloc[tuned.min_context:]).all()
    assert tuned.get_params()["train"].init == str(path)


def test_backtest_refits_start_from_the_file(pretrained, panel):
    """The path is a parameter, so the clones a backtest fits start from it too."""
    _, path = pretrained
    r = panel["JPM"]
    model = WaveNet(**TINY, train={"max_epochs": 1, "init": str(path), "warm_epochs": 1})
    bt = finar.backtest(model, r, start=r.index[-120], refit_every=60, progress=False)
    assert np.isfinite(bt.daily["log_score"]).all() and len(bt.daily) == 120


def test_init_that_does_not_fit_is_refused(pretrained, panel, tmp_path):
    _, path = pretrained
    r = panel["JPM"]
    with pytest.raises(DataError, match="same architecture"):
        WaveNet(**{**TINY, "residual_channels": 8}, train={"max_epochs": 1, "init": str(path)}).fit(r)
    with pytest.raises(DataError, match="same architecture"):
        Transformer({"context": 8, "d_model": 8, "n_heads": 2, "n_kv_heads": 1},
                    train={"max_epochs": 1, "init": str(path)}).fit(r)
    with pytest.raises(DataError, match="does not fit this one"):  # a global model has series ids
        WaveNet(**TINY, train={"max_epochs": 1, "init": str(path)}).fit(panel)
    binned = WaveNet(**{**TINY, "head": "categorical"}, n_bins=16, train={"max_epochs": 1}).pretrain(panel)
    binned.save(tmp_path / "binned.pt")
    with pytest.raises(DataError, match="continuous"):
        WaveNet(**{**TINY, "head": "categorical"}, n_bins=16,
                train={"max_epochs": 1, "init": str(tmp_path / "binned.pt")}).fit(r)
    with pytest.raises(DataError, match="path of a model file"):
        WaveNet(train={"init": 3})


def test_pretrain_refuses_short_series_and_panels(panel):
    with pytest.raises(DataError, match="'short' has 40 days"):
        WaveNet(**TINY, train={"max_epochs": 1}).pretrain({"long": panel["AAPL"], "short": panel["XOM"][:40]})
    with pytest.raises(DataError, match="at least one series"):
        WaveNet(**TINY).pretrain({})
    with pytest.raises(DataError, match="panel"):
        PixelCNN().pretrain(panel)
