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


# ---- train.pretrain: pooled pretraining on the bundled series, cut at the fit's last day ------------
from finar.models import pretraining  # noqa: E402


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A private cache folder, and a record of every corpus cut and every pretraining."""
    monkeypatch.setenv("FINAR_CACHE_DIR", str(tmp_path))
    calls = {"ends": [], "pretrain": 0}
    corpus, pretrain = pretraining.corpus, WaveNet.pretrain

    def spy_corpus(end):
        calls["ends"].append(pd.Timestamp(end))
        return corpus(end)

    def spy_pretrain(self, series):
        calls["pretrain"] += 1
        calls["last_days"] = [s.index[-1] for s in series.values()]
        return pretrain(self, series)

    monkeypatch.setattr(pretraining, "corpus", spy_corpus)
    monkeypatch.setattr(WaveNet, "pretrain", spy_pretrain)
    return tmp_path, calls


@pytest.fixture(scope="module")
def aapl() -> pd.Series:
    px = finar.load("sp500-stocks", start="1995-01-01", end="1998-06-15")
    return finar.returns(px["AAPL"]).rename("AAPL")


def test_cutoff_is_the_end_of_the_last_year_the_data_covers():
    assert pretraining.cutoff("2014-12-31") == pd.Timestamp("2014-12-31")
    assert pretraining.cutoff("2016-12-30") == pd.Timestamp("2016-12-31")  # a Friday: the year is complete
    assert pretraining.cutoff("2010-06-15") == pd.Timestamp("2009-12-31")
    assert pretraining.cutoff("2010-12-30") == pd.Timestamp("2009-12-31")


def test_corpus_holds_nothing_after_its_end():
    r = pretraining.corpus("1998-05-31")
    assert "SP500" not in r and {"WTI", "AAPL", "XOM"} <= set(r)  # the index file starts in 1999
    assert all(s.index[-1] <= pd.Timestamp("1998-05-31") for s in r.values())
    assert len(pretraining.corpus("2014-12-31")) == 22


def test_a_fit_with_pretrain_starts_from_a_network_of_data_before_its_last_day(cache, aapl):
    folder, calls = cache
    m = WaveNet(**TINY, train={"max_epochs": 1, "lr": 1e-12, "pretrain": True}).fit(aapl)
    # no look-ahead: the corpus was cut at the end of the last year of the fit's data
    assert calls["ends"] == [pd.Timestamp("1997-12-31")] and calls["pretrain"] == 1
    assert max(calls["last_days"]) <= pd.Timestamp("1997-12-31") < aapl.index[-1]
    files = list((folder / "pretrained").glob("*.pt"))
    assert len(files) == 1 and "_1997-12-31_" in files[0].name  # the corpus' last trading day
    pre = finar.models.load(files[0])
    for a, b in zip(_weights(pre), _weights(m), strict=True):  # a vanishing learning rate keeps them
        np.testing.assert_allclose(a, b, atol=1e-7)
    assert pre.get_params()["train"].seed == 0 and m.scaler_.scale_[0] == pytest.approx(aapl.std(ddof=0))
    # another seed, and a fit of the same year, read the cached network instead of training again
    WaveNet(**TINY, train={"max_epochs": 1, "lr": 1e-12, "seed": 3, "pretrain": True}).fit(
        aapl.loc[:"1998-06-10"])
    assert calls["pretrain"] == 1 and len(list((folder / "pretrained").glob("*.pt"))) == 1
    # variance targeting happens after the fit's own training: the same pretrained network
    WaveNet(**TINY, train={"max_epochs": 1, "lr": 1e-12, "pretrain": True, "variance_target": True}).fit(aapl)
    assert calls["pretrain"] == 1 and len(list((folder / "pretrained").glob("*.pt"))) == 1


def test_backtest_with_pretrain_pretrains_once_before_the_test_window(cache, aapl):
    _, calls = cache
    model = finar.models.Ensemble([WaveNet(**TINY, train={"max_epochs": 1, "seed": s, "warm_epochs": 1,
                                                          "pretrain": True}) for s in (0, 1)])
    start = pd.Timestamp("1998-04-01")
    bt = finar.backtest(model, aapl, start=start, refit_every=25, progress=False)
    assert np.isfinite(bt.daily["log_score"]).all() and bt.daily.index[0] >= start
    # both members started from one network of the corpus up to 1997; the refits are warm
    assert calls["pretrain"] == 1 and set(calls["ends"]) == {pd.Timestamp("1997-12-31")}


def test_pretrain_refuses_what_it_cannot_start(cache, aapl):
    with pytest.raises(DataError, match=r"init .* or pretrain"):
        WaveNet(**TINY, train={"init": "x.pt", "pretrain": True})._train_config()
    with pytest.raises(DataError, match="True or False"):
        WaveNet(**TINY, train={"pretrain": "yes"})._train_config()
    m = WaveNet(**TINY, train={"max_epochs": 1, "pretrain": True})
    with pytest.raises(DataError, match="without exog"):
        m.fit(aapl, exog=aapl.abs().rename("x"))
    with pytest.raises(DataError, match="DatetimeIndex"):
        m.fit(aapl.reset_index(drop=True))
    rng = np.random.default_rng(0)  # returns that end before the first bundled price (WTI, 1986)
    early = pd.Series(rng.standard_t(5, 400), index=pd.bdate_range("1984-01-02", periods=400), name="x")
    with pytest.raises(DataError, match="no bundled series has enough days"):
        m.fit(early)
