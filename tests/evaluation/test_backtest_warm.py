"""Warm-start refits: a network with train__warm_epochs > 0 fine-tunes its previous fit, and
backtest chains its blocks in order from one fit to the next."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import finar
from finar.errors import DataError
from finar.models import clone

TINY = dict(residual_channels=4, gate_channels=4, skip_channels=4, layers_per_cycle=2, head="gaussian",
            train={"max_epochs": 2, "window": 8, "batch_size": 16, "seed": 0})


@pytest.fixture(scope="module")
def r() -> pd.Series:
    return finar.returns(finar.load("sp500")["adj_close"]).loc["2012":"2014"]


def _weights(m) -> list[np.ndarray]:
    return [p.detach().cpu().numpy().copy() for p in m.network_.parameters()]


def test_a_warm_refit_starts_from_the_fitted_network(r, monkeypatch):
    """With warm_epochs the second fit keeps the network object, scaler and head and trains
    warm_epochs epochs; without, a new network of the same seed is built (equal initial weights)."""
    import finar.models.neural as neural

    epochs: list[int] = []
    train = neural.train

    def spy(network, loss, train_data, val_data, config, **kw):
        epochs.append(config.max_epochs)
        return train(network, loss, train_data, val_data, config, **kw)

    monkeypatch.setattr(neural, "train", spy)
    m = finar.models.WaveNet(**{**TINY, "train": {**TINY["train"], "warm_epochs": 1}}).fit(r.iloc[:500])
    net, scaler, before = m.network_, m.scaler_, _weights(m)
    m.fit(r.iloc[:560])
    assert m.network_ is net and m.scaler_ is scaler and epochs == [2, 1]
    assert any(not np.array_equal(a, b) for a, b in zip(before, _weights(m), strict=True))  # it trained
    cold = finar.models.WaveNet(**TINY).fit(r.iloc[:500])
    net = cold.network_
    cold.fit(r.iloc[:560])
    assert cold.network_ is not net and epochs[2:] == [2, 2]
    net = m.network_
    m.set_params(residual_channels=6).fit(r.iloc[:560])  # another architecture: a full fit
    assert epochs[-1] == 2 and m.network_ is not net
    net = m.network_
    m.fit(r.iloc[:560].rename("other"))  # another column: a full fit
    assert epochs[-1] == 2 and m.network_ is not net


def test_backtest_chains_warm_refits_and_leaves_the_model(r):
    """backtest with a warm model equals fitting by hand in the same order, block after block."""
    warm = finar.models.WaveNet(**{**TINY, "train": {**TINY["train"], "warm_epochs": 1}})
    start = r.index[500]
    bt = finar.backtest(warm, r.iloc[:600], start=start, refit_every=50, progress=False,
                        check_causality=False)
    assert not hasattr(warm, "network_")  # the caller's model is never fitted
    with threadpool_limits(limits=1):  # as backtest's tasks run: the same summation order
        hand = clone(warm).fit(r.iloc[:500])
        first = hand.log_prob(r.iloc[:550]).to_numpy()[500:550]
        hand.fit(r.iloc[:550])
        second = hand.log_prob(r.iloc[:600]).to_numpy()[550:600]
    np.testing.assert_allclose(bt.daily["log_score"].to_numpy(), np.r_[first, second], rtol=1e-5, atol=1e-6)
    cold = finar.backtest(finar.models.WaveNet(**TINY), r.iloc[:600], start=start, refit_every=50,
                          progress=False, check_causality=False)
    assert not np.allclose(cold.daily["log_score"].to_numpy()[50:], second)


def test_a_warm_backtest_runs_in_order_only(r):
    warm = finar.models.WaveNet(**{**TINY, "train": {**TINY["train"], "warm_epochs": 1}})
    with pytest.raises(DataError, match="in order"):
        finar.backtest(warm, r.iloc[:600], start=r.index[500], refit_every=50, n_jobs=2, progress=False)
    with pytest.raises(finar.FinarError, match="warm_epochs"):
        finar.models.WaveNet(train={"warm_epochs": -1}).fit(r)


def test_a_fine_tune_that_does_not_help_on_validation_is_dropped(r):
    """With a learning rate so large that tuning can only hurt, the warm fit keeps the weights it
    started from (best_epoch -1); a helpful tune is kept."""
    m = finar.models.WaveNet(**{**TINY, "train": {**TINY["train"], "warm_epochs": 1}}).fit(r.iloc[:500])
    before = _weights(m)
    m.set_params(train__lr=50.0, train__grad_clip=1e9).fit(r.iloc[:560])
    assert m.training_.best_epoch == -1
    for a, b in zip(before, _weights(m), strict=True):
        np.testing.assert_array_equal(a, b)
    m.set_params(train__lr=1e-2, train__grad_clip=1.0).fit(r.iloc[:560])
    assert m.training_.best_epoch == 0 and np.isfinite(m.training_.best_val_loss)


def test_an_ensemble_of_warm_members_refits_each_member_warm(r):
    """An Ensemble of warm members is a warm model: backtest chains its blocks, and its daily log
    score is the mixture of the members' own warm backtests, day by day."""
    members = [finar.models.WaveNet(**{**TINY, "train": {**TINY["train"], "warm_epochs": 1, "seed": s}})
               for s in (0, 1)]
    ens = finar.models.Ensemble(members)
    assert ens.warm_start and not finar.models.Ensemble([finar.models.GARCH()]).warm_start
    kw = dict(start=r.index[500], refit_every=50, progress=False, check_causality=False)
    bt = finar.backtest(ens, r.iloc[:600], **kw)
    assert not hasattr(ens, "members_")
    single = [finar.backtest(m, r.iloc[:600], **kw).daily["log_score"].to_numpy() for m in members]
    expected = np.logaddexp(*single) - np.log(2)
    np.testing.assert_allclose(bt.daily["log_score"].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="in order"):
        finar.backtest(ens, r.iloc[:600], n_jobs=2, **kw)
    fitted = ens.fit(r.iloc[:500])
    first = fitted.members_[0]
    fitted.fit(r.iloc[:550])
    assert fitted.members_[0] is first  # fine-tuned in place
    fitted.set_params(members=[clone(members[0]).set_params(train__seed=5), members[1]]).fit(r.iloc[:550])
    assert fitted.members_[0] is not first  # another specification: a fresh fit
