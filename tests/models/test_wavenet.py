"""WaveNet: exact causality, cached == naive generation, units of the likelihood, covariates, settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import finar
from finar.models.wavenet import WaveNet, WaveNetConfig, WaveNetNetwork
from tests.models.test_contract import simulate_garch_t

TINY = dict(residual_channels=8, gate_channels=8, skip_channels=8, layers_per_cycle=4, cycles=2,
            train=dict(window=32, max_epochs=3, batch_size=16))


def tiny(**train) -> dict:
    """TINY with some training settings changed."""
    return {**TINY, "train": {**TINY["train"], **train}}


@pytest.fixture(scope="module")
def r() -> pd.Series:
    return simulate_garch_t(900, seed=5)


@pytest.fixture(scope="module")
def model(r) -> WaveNet:
    return WaveNet(**TINY).fit(r)


def _network(kernel_size: int, layers: int, cycles: int = 1, n_series: int = 1,
             n_covariates: int = 0) -> WaveNetNetwork:
    torch.manual_seed(0)
    config = WaveNetConfig(residual_channels=8, gate_channels=8, skip_channels=16, kernel_size=kernel_size,
                           layers_per_cycle=layers, cycles=cycles, embedding_dim=3)
    return WaveNetNetwork(config, 6, n_series=n_series, n_covariates=n_covariates)


@pytest.mark.parametrize(("kernel_size", "layers", "cycles"), [(2, 4, 2), (3, 3, 1)])
def test_output_depends_exactly_on_its_receptive_field(kernel_size, layers, cycles):
    """Gradient test: output t (which predicts x_{t+1}) sees x_{t-R+1..t} and nothing else."""
    net = _network(kernel_size, layers, cycles).double()
    R = net.receptive_field
    assert R == 1 + (kernel_size - 1) * cycles * (2 ** layers - 1)
    T = 3 * R
    seen = torch.zeros(R, dtype=torch.bool)
    for trial in range(5):
        x = torch.randn(1, T, dtype=torch.float64, generator=torch.Generator().manual_seed(trial),
                        requires_grad=True)
        t = R + 5 + trial
        net(x)[0, t].sum().backward()
        g = x.grad[0].abs()
        assert (g[t + 1:] == 0).all(), "looks ahead"
        assert (g[: t - R + 1] == 0).all(), "sees beyond its receptive field"
        seen |= g[t - R + 1: t + 1] > 0  # a ReLU may be off at one input; not at all of them
    assert seen.all(), "misses part of its receptive field"


def test_series_embedding_conditions_the_output():
    net = _network(2, 3, n_series=3)
    x = torch.randn(2, 20)
    a = net(x, torch.tensor([0, 0]))
    b = net(x, torch.tensor([0, 2]))
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(a[1], b[1])


@pytest.mark.parametrize("head", ["t_mixture", "categorical"])
def test_cached_generation_equals_naive_recompute(r, head):
    m = WaveNet(**{**tiny(max_epochs=1), "head": head, "n_bins": 64}).fit(r)
    fast = m.sample(r, horizon=25, n_paths=64, seed=3)
    slow = m.sample(r, horizon=25, n_paths=64, seed=3, method="naive")
    np.testing.assert_allclose(fast.paths, slow.paths, atol=1e-5, rtol=1e-5)


def test_cached_generation_with_several_series(r):
    panel = pd.concat([r.rename("a"), (1.5 * simulate_garch_t(len(r), seed=8)).rename("b").set_axis(r.index)],
                      axis=1)
    m = WaveNet(**tiny(max_epochs=1)).fit(panel)
    fast = m.sample(panel, horizon=10, n_paths=32, seed=1)
    slow = m.sample(panel, horizon=10, n_paths=32, seed=1, method="naive")
    np.testing.assert_allclose(fast.paths, slow.paths, atol=1e-5, rtol=1e-5)
    # the two series have their own scales
    assert fast.paths[:, :, 1].std() > 1.2 * fast.paths[:, :, 0].std()


def test_neutral_sampling_settings_equal_plain_sampling(model, r):
    plain = model.sample(r, horizon=5, n_paths=50, seed=2)
    neutral = model.sample(r, horizon=5, n_paths=50, seed=2, temperature=1.0, top_k=None, top_p=1.0)
    np.testing.assert_array_equal(plain.paths, neutral.paths)


def test_log_prob_is_in_the_units_of_the_data(r):
    """Doubling the data standardises to the same inputs: log densities drop by exactly log 2."""
    a = WaveNet(**TINY).fit(r)
    b = WaveNet(**TINY).fit(2 * r)
    np.testing.assert_allclose(b.log_prob(2 * r), a.log_prob(r) - np.log(2), rtol=1e-5, atol=1e-5)


def test_training_reduces_the_loss_and_restores_the_best_epoch(model):
    hist = model.training_.history
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert model.training_.best_val_loss == min(e["val_loss"] for e in hist)


def test_same_seed_same_model(r, model):
    again = WaveNet(**TINY).fit(r)
    pd.testing.assert_series_equal(again.log_prob(r), model.log_prob(r))


def test_wavenet_in_registry_and_namespace():
    assert finar.models.registry()["wavenet"] is WaveNet
    assert finar.models.WaveNet is WaveNet


def test_covariates_enter_causally():
    """Covariate row t conditions output t (the forecast of x_{t+1}) and no earlier output."""
    net = _network(2, 3, n_covariates=2).double()
    x = torch.randn(1, 30, dtype=torch.float64)
    cov = torch.randn(1, 30, 2, dtype=torch.float64, requires_grad=True)
    t = 20
    net(x, None, cov)[0, t].sum().backward()
    g = cov.grad[0].abs().sum(dim=1)
    assert (g[t + 1:] == 0).all() and g[t] > 0


def scale_regimes(n: int, seed: int) -> tuple[pd.Series, pd.DataFrame]:
    """Returns whose daily scale is announced the day before: only the covariate reveals it."""
    rng = np.random.default_rng(seed)
    log_sigma = rng.normal(0.0, 0.7, n + 1)
    r = np.exp(log_sigma[1:]) * rng.standard_normal(n)
    index = pd.bdate_range("2001-01-01", periods=n, name="time")
    # row t holds the scale of day t+1, known at the close of day t
    exog = pd.DataFrame({"next_log_sigma": np.r_[log_sigma[2:], 0.0]}, index=index)
    return pd.Series(r, index=index, name="r"), exog


def test_informative_covariate_improves_the_likelihood():
    r, exog = scale_regimes(1000, seed=0)
    cfg = {**tiny(window=16, batch_size=8, lr=0.01, max_epochs=25, patience=25), "layers_per_cycle": 3,
           "cycles": 1}
    without = WaveNet(**cfg).fit(r)
    with_exog = WaveNet(**cfg).fit(r, exog=exog)
    test = slice(800, None)
    gain = with_exog.log_prob(r, exog=exog).iloc[test].mean() - without.log_prob(r).iloc[test].mean()
    assert gain > 0.1, gain


def test_covariates_cached_equals_naive_and_are_required(tmp_path):
    r, exog = scale_regimes(700, seed=1)
    m = WaveNet(**tiny(max_epochs=1)).fit(r, exog=exog)
    future = pd.DataFrame({"next_log_sigma": np.linspace(-1, 1, 9)})
    fast = m.sample(r, horizon=10, n_paths=32, seed=0, exog=exog, exog_future=future)
    slow = m.sample(r, horizon=10, n_paths=32, seed=0, exog=exog, exog_future=future, method="naive")
    np.testing.assert_allclose(fast.paths, slow.paths, atol=1e-5, rtol=1e-5)
    with pytest.raises(finar.errors.DataError, match="fitted with exog"):
        m.log_prob(r)
    with pytest.raises(finar.errors.DataError, match="exactly the rows"):
        m.log_prob(r, exog=exog.iloc[1:])
    with pytest.raises(finar.errors.DataError, match="exog_future"):
        m.sample(r, horizon=10, n_paths=4, exog=exog)
    m2 = finar.models.load(m.save(tmp_path / "wn.pt"))
    pd.testing.assert_series_equal(m2.log_prob(r, exog=exog), m.log_prob(r, exog=exog))


def test_predictive_is_the_head_of_log_prob(model, r):
    """predictive() gives each day's head: its log_prob is log_prob's, its quantile inverts its cdf."""
    pred = model.predictive(r)
    lp = model.log_prob(r)
    R = model.min_context
    np.testing.assert_allclose(pred.log_prob(r.to_numpy())[R:], lp.to_numpy()[R:], rtol=1e-6, atol=1e-6)
    assert np.isnan(pred.log_prob(r.to_numpy())[:R]).all()
    var = model.ppf(r, 0.05)
    np.testing.assert_allclose(model.cdf(r, at=var.to_numpy()).iloc[R:], 0.05, atol=1e-6)
    assert var.iloc[:R].isna().all() and (var.iloc[R:] < 0).all()


def test_training_settings_nest_under_train(r):
    m = finar.models.create("wavenet", **{**TINY, "train": {"max_epochs": 2}})
    assert isinstance(m.train, finar.models.training.TrainConfig) and m.train.max_epochs == 2
    assert m.train.batch_size == WaveNet.default_train.batch_size  # a mapping changes what it names only
    params = m.get_params(deep=True)
    assert params["train__max_epochs"] == 2 and params["train__lr"] == 1e-3
    m.fit(r)
    assert len(m.training_.history) == 2
    m.set_params(train__lr=0.01, train__max_epochs=1)
    assert m.train.lr == 0.01 and m.train.max_epochs == 1 and m.train.batch_size == 32
    assert len(m.fit(r).training_.history) == 1
    with pytest.raises(finar.errors.DataError, match="no setting 'epochs'"):
        WaveNet(train={"epochs": 3})
    with pytest.raises(finar.errors.DataError, match=r"TrainConfig\.lr"):
        WaveNet(train={"lr": -1.0})


def test_bad_settings_raise_finar_errors(r):
    with pytest.raises(finar.errors.DataError, match="device 'bogus'"):
        WaveNet(**TINY, device="bogus").fit(r)
    with pytest.raises(finar.errors.DataError, match="layers_per_cycle"):
        WaveNet(**{**TINY, "layers_per_cycle": 0}).fit(r)
    with pytest.raises(finar.errors.DataError, match="dropout"):
        WaveNet(**{**TINY, "dropout": 1.0}).fit(r)
    with pytest.raises(finar.errors.DataError, match="seed"):
        WaveNet(**TINY).fit(r).sample(r, horizon=2, n_paths=2, seed=-1)


@pytest.mark.parametrize("cls", [WaveNet, finar.models.Transformer])
def test_df_floor_reaches_the_head_and_round_trips(cls, r, tmp_path):
    """min_df is a model parameter: it bounds every conditional df, survives clone and files, and a
    value the t heads cannot take is refused at fit."""
    tiny_tf = dict(config={"context": 16, "d_model": 16, "n_heads": 2, "n_kv_heads": 1},
                   train=dict(max_epochs=2, batch_size=16))
    kw = TINY if cls is WaveNet else tiny_tf
    from finar._estimator import clone

    m = cls(**kw, min_df=6.0).fit(r)
    z = np.asarray(m.scaler_.transform(r.to_frame().to_numpy()))
    df = 2 + m.head_._params(m._head_params(z, [0], None)[0])[3]
    assert float(df.min()) >= 6.0 and m.head_.min_df == 6.0
    assert clone(m).get_params()["min_df"] == 6.0
    path = tmp_path / "m.pt"
    m.save(path)
    back = finar.models.load(path)
    pd.testing.assert_series_equal(back.log_prob(r), m.log_prob(r))
    with pytest.raises(finar.errors.DataError, match="min_df"):
        cls(**kw, min_df=1.0).fit(r)


@pytest.mark.parametrize(("kernel_size", "dilation"), [(2, 4), (3, 2)])
def test_one_column_step_equals_the_convolution(kernel_size, dilation):
    """CausalConv1d.step on the taps of the last column (oldest first) is that column of forward."""
    from finar.models.wavenet import CausalConv1d

    torch.manual_seed(0)
    conv = CausalConv1d(5, 7, kernel_size, dilation)
    x = torch.randn(3, 5, 20)
    taps = [x[:, :, -1 - (kernel_size - 1 - j) * dilation] for j in range(kernel_size)]
    torch.testing.assert_close(conv.step(taps), conv(x)[:, :, -1], rtol=1e-5, atol=1e-6)


# ---- slow volatility states (vol_halflives) ---------------------------------------------------
STATES = (3.0, 40.0)


@pytest.fixture(scope="module")
def stateful(r) -> WaveNet:
    return WaveNet(**{**tiny(max_epochs=2), "vol_halflives": STATES}).fit(r)


def test_states_are_the_ewma_of_squared_standardised_returns(stateful, r):
    z = ((r.to_numpy() - stateful.scaler_.loc_[0]) / stateful.scaler_.scale_[0])[:, None]
    got = stateful._states(z)  # (T, K, 1)
    for k, h in enumerate(STATES):
        a, v, want = 0.5 ** (1 / h), 1.0, []
        for x in z[:, 0]:
            v = a * v + (1 - a) * x * x
            want.append(np.log(v))
        np.testing.assert_allclose(got[:, k, 0], want, rtol=1e-12, atol=1e-12)
    assert stateful.memory is None and WaveNet(**TINY).memory == WaveNet(**TINY).min_context


def test_states_reach_beyond_the_receptive_field_causally(stateful, r):
    """A day far before the receptive field moves later conditionals (through the states), never
    earlier ones; a model without states ignores it."""
    R, p = stateful.min_context, 100
    bumped = r.copy()
    bumped.iloc[p] += 5 * r.std()
    far = slice(p + R + 1, p + R + 30)
    base, moved = stateful.log_prob(r), stateful.log_prob(bumped)
    assert (moved.iloc[far] - base.iloc[far]).abs().max() > 1e-4
    pd.testing.assert_series_equal(moved.iloc[:p], base.iloc[:p])
    plain = WaveNet(**tiny(max_epochs=1)).fit(r)
    np.testing.assert_allclose(plain.log_prob(bumped).iloc[far], plain.log_prob(r).iloc[far], rtol=1e-6)


def test_stateful_cached_generation_equals_naive_with_exog(tmp_path):
    r, exog = scale_regimes(700, seed=1)
    m = WaveNet(**{**tiny(max_epochs=1), "vol_halflives": STATES}).fit(r, exog=exog)
    future = pd.DataFrame({"next_log_sigma": np.linspace(-1, 1, 11)})
    fast = m.sample(r, horizon=12, n_paths=32, seed=0, exog=exog, exog_future=future)
    slow = m.sample(r, horizon=12, n_paths=32, seed=0, exog=exog, exog_future=future, method="naive")
    np.testing.assert_allclose(fast.paths, slow.paths, atol=1e-5, rtol=1e-5)
    m2 = finar.models.load(m.save(tmp_path / "wn_states.pt"))
    pd.testing.assert_series_equal(m2.log_prob(r, exog=exog), m.log_prob(r, exog=exog))
    assert tuple(m2.vol_halflives) == STATES


def test_stateful_draws_follow_the_conditionals_of_log_prob(stateful, r):
    """Each generated step is the exact quantile, at its uniform, of the conditional that
    predictive() gives the context plus the path so far: generation continues the states as
    the density computes them."""
    u = np.random.default_rng(0).uniform(0.02, 0.98, size=(3, 6))
    sc = stateful.sample(r, horizon=6, n_paths=3, uniforms=u)
    for i in range(3):
        path = pd.Series(sc.paths[i, :, 0], index=sc.index)
        for k in range(6):
            ext = pd.concat([r, path.iloc[:k + 1]])
            got = stateful.cdf(ext, at=ext.to_numpy()).iloc[-1]
            assert got == pytest.approx(u[i, k], abs=2e-4), (i, k)


def test_states_per_series_and_bad_settings(r):
    panel = pd.concat([r.rename("a"), (3 * simulate_garch_t(len(r), seed=8)).rename("b").set_axis(r.index)],
                      axis=1)
    m = WaveNet(**{**tiny(max_epochs=1), "vol_halflives": STATES}).fit(panel)
    fast = m.sample(panel, horizon=8, n_paths=16, seed=1)
    slow = m.sample(panel, horizon=8, n_paths=16, seed=1, method="naive")
    np.testing.assert_allclose(fast.paths, slow.paths, atol=1e-5, rtol=1e-5)
    lp = m.log_prob(panel)
    pd.testing.assert_series_equal(m.log_prob(panel["b"]), lp["b"], check_names=False)
    for bad in ((0.0,), (-5.0,), "20", (float("nan"),)):
        with pytest.raises(finar.errors.DataError, match="vol_halflives"):
            WaveNet(**{**TINY, "vol_halflives": bad}).fit(r)


def test_a_file_from_before_vol_halflives_loads_as_before(model, r, tmp_path):
    path = model.save(tmp_path / "old.pt")
    payload = torch.load(path, weights_only=True)
    del payload["params"]["vol_halflives"]  # as finar wrote WaveNet files before the setting existed
    torch.save(payload, tmp_path / "older.pt")
    old = finar.models.load(tmp_path / "older.pt")
    assert old.vol_halflives == () and old.get_params() == model.get_params()
    pd.testing.assert_series_equal(old.log_prob(r), model.log_prob(r))
