"""PixelCNN over panels: masks, receptive fields (no blind spot vs blind spot), exact normalisation,
no look-ahead, regime conditioning (a categorical exog column), numeric covariates, generation, files.
The forecaster contract runs in test_contract.py."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

import finar
from finar.errors import DataError, NonFiniteValueError
from finar.models.pixelcnn import (
    GatedPixelCNN,
    MaskedConv2d,
    OriginalPixelCNN,
    PixelCNN,
    PixelCNNConfig,
    volatility_regime,
)
from finar.models.training import seeded

TINY = dict(channels=8, n_layers=3, n_bins=256, train=dict(window=32, max_epochs=2, batch_size=8))
TRAINED = {**TINY, "train": {**TINY["train"], "max_epochs": 30, "batch_size": 2, "lr": 5e-3}}


def panel(n: int = 300, cols: tuple[str, ...] = ("mkt", "a", "b"), seed: int = 0) -> pd.DataFrame:
    """A one-factor panel: each asset loads on the first column (the market) plus its own noise."""
    rng = np.random.default_rng(seed)
    m = rng.standard_t(5, size=n)
    data = {cols[0]: m}
    for c in cols[1:]:
        data[c] = 0.8 * m + 0.6 * rng.standard_t(5, size=n)
    return pd.DataFrame(data, index=pd.bdate_range("2005-01-03", periods=n, name="time"))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one torch thread (restored after) avoids oversubscribing a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fitted() -> tuple[PixelCNN, pd.DataFrame]:
    r = panel()
    return PixelCNN(**TRAINED).fit(r), r


def input_gradient(net: torch.nn.Module, shape: tuple[int, int], cell: tuple[int, int]) -> np.ndarray:
    """|d raw[cell] / d x| over the whole input image, in float64."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, *shape, dtype=torch.float64, generator=gen, requires_grad=True)
    net(x)[0, cell[0], cell[1]].sum().backward()
    return x.grad[0].abs().numpy()


def build(cls: type, shape_w: int, kernel_width: int, n_layers: int, growth: int) -> torch.nn.Module:
    """A network whose layers have dilations ``growth ** l`` along time."""
    config = PixelCNNConfig("gated" if cls is GatedPixelCNN else "original", channels=16, n_layers=n_layers,
                            kernel_height=2, kernel_width=kernel_width, dilation_growth=growth)
    with seeded(0):
        return cls(config, 2, n_columns=shape_w).double()


# ---- masks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_mask_a_excludes_and_b_includes_the_centre(mask_type):
    conv = MaskedConv2d(1, 1, (3, 5), mask_type=mask_type).double()
    expected = np.ones((3, 5))
    expected[2, 2 + (mask_type == "B"):] = 0
    np.testing.assert_array_equal(conv.mask.numpy(), expected)
    x = torch.randn(1, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    conv(x)[0, 0, 4, 3].backward()
    g = x.grad[0, 0].abs()
    assert (g[4, 3] > 0) == (mask_type == "B")  # the centre
    assert g[4, 4:].sum() == 0 and g[5:].sum() == 0  # right of the centre and the rows below
    assert (g[2:4, 1:6] > 0).all() and (g[4, 1:3] > 0).all()  # the rows above and the left


# ---- receptive fields --------------------------------------------------------------------------
@pytest.mark.parametrize("cell", [(6, 0), (6, 2), (7, 3), (4, 1)])
def test_gated_sees_exactly_the_earlier_cells(cell):
    """Full-width kernels: every earlier cell within min_context rows counts, nothing else does."""
    T, J = 9, 4
    net = build(GatedPixelCNN, J, 2 * J - 1, n_layers=2, growth=2)  # dilations 1, 2
    R = net.receptive_rows
    assert R == 1 + 1 + 2
    g = input_gradient(net, (T, J), cell)
    i, j = cell
    expected = np.zeros((T, J), dtype=bool)
    expected[max(0, i - R):i, :] = True
    expected[i, :j] = True
    np.testing.assert_array_equal(g > 0, expected)


def test_original_has_a_blind_spot_and_gated_does_not():
    """With 2x3 kernels the original stack never sees the cell up and two to the right."""
    T, J, cell, spot = 6, 6, (4, 2), (3, 4)
    original = input_gradient(build(OriginalPixelCNN, J, 3, n_layers=3, growth=1), (T, J), cell)
    gated = input_gradient(build(GatedPixelCNN, J, 3, n_layers=3, growth=1), (T, J), cell)
    for g in (original, gated):
        assert g[cell] == 0 and g[cell[0], cell[1] + 1:].sum() == 0 and g[cell[0] + 1:].sum() == 0
        assert g[3, 2] > 0 and g[4, 1] > 0
    assert original[spot] == 0  # earlier in raster order, yet unseen: the blind spot
    assert gated[spot] > 0
    # the gated stack sees the whole cone above: every cell of the row above within reach
    assert (gated[3, :] > 0).all()


@pytest.mark.parametrize("cls", [GatedPixelCNN, OriginalPixelCNN])
def test_cached_row_generation_equals_the_full_forward_pass(cls):
    net = build(cls, 4, 7, n_layers=3, growth=2)
    R = net.receptive_rows
    x = torch.randn(3, R + 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    full = net(x)
    state = net.start(x[:, :R])
    for t in range(R, R + 5):
        torch.testing.assert_close(net.row(x[:, t], state, None), full[:, t], rtol=1e-10, atol=1e-10)
        # the first columns alone give the same cells (generation computes only up to the new cell)
        torch.testing.assert_close(net.row(x[:, t, :2], state, None), full[:, t, :2], rtol=1e-10, atol=1e-10)
        state = net.advance(state, x[:, t])


# ---- exact likelihood --------------------------------------------------------------------------
def test_probabilities_sum_to_one_over_every_panel():
    """3 bins per cell, a 2-day x 3-asset panel after fixed context: sum over all 729 panels."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.uniform(-1, 1, size=(80, 3)), columns=["m", "a", "b"],
                         index=pd.bdate_range("2010-01-01", periods=80, name="time"))
    m = PixelCNN(channels=4, n_layers=2, dilation_growth=1, n_bins=3, bound=3.0, n_components=2,
                 train=dict(max_epochs=3, batch_size=4, window=8)).fit(train)
    R = m.min_context
    centres = np.array([-3.0, 0.0, 3.0])  # bin centres, standardised units
    grids = np.array(list(itertools.product(range(3), repeat=6))).reshape(-1, 2, 3)  # (729, days, assets)
    context = np.asarray(m.scaler_.transform(train.iloc[:R].to_numpy()))
    z = np.concatenate([np.broadcast_to(context, (len(grids), R, 3)), centres[grids]], axis=1)
    with torch.no_grad():
        zt = torch.tensor(z, dtype=torch.float32)
        log_density = m.head_.log_prob(m.network_(zt)[:, R:], zt[:, R:]).double().numpy()
    log_width = np.log(m.head_.edges.diff().numpy())[grids]
    total = np.exp((log_density + log_width).sum(axis=(1, 2))).sum()
    # the public log_prob is the same density, in data units
    panel_17 = pd.DataFrame(np.asarray(m.scaler_.inverse_transform(z[17])), columns=train.columns,
                            index=train.index[:R + 2])
    np.testing.assert_allclose(m.log_prob(panel_17).to_numpy()[R:],
                               log_density[17] - np.log(m.scaler_.scale_), rtol=1e-6)
    assert total == pytest.approx(1.0, abs=1e-5)


def test_log_prob_per_cell_and_per_day(fitted):
    m, r = fitted
    lp = m.log_prob(r)
    assert lp.shape == r.shape and list(lp.columns) == list(r.columns) and lp.index.equals(r.index)
    R = m.min_context
    assert lp.iloc[:R].isna().all().all() and np.isfinite(lp.iloc[R:]).all().all()
    day = m.joint_log_prob(r)  # exact: each cell's density conditions on the cells to its left
    pd.testing.assert_series_equal(day.iloc[R:], lp.iloc[R:].sum(axis=1).rename("joint_log_prob"))
    assert day.iloc[:R].isna().all() and "joint" in m.tags
    # the scaler's Jacobian: doubling the returns costs log 2 per cell
    m2 = PixelCNN(**TRAINED).fit(2 * r)
    np.testing.assert_allclose(m2.log_prob(2 * r).to_numpy()[R:], lp.to_numpy()[R:] - np.log(2), atol=1e-4)


def test_no_look_ahead_across_days_and_assets(fitted):
    m, r = fitted
    base = m.log_prob(r)
    later = r.copy()
    later.iloc[151:] += 3.0
    after = m.log_prob(later)
    np.testing.assert_array_equal(after.iloc[:151].to_numpy(), base.iloc[:151].to_numpy())
    assert not np.allclose(after.iloc[151:], base.iloc[151:])
    # same day: changing asset "a" leaves "mkt" (to its left) unchanged and moves "b" (to its right)
    day = r.copy()
    day.iloc[200, 1] += 4.0
    moved = m.log_prob(day)
    assert moved.iloc[200, 0] == base.iloc[200, 0]
    assert moved.iloc[200, 2] != base.iloc[200, 2]
    np.testing.assert_array_equal(moved.iloc[:200].to_numpy(), base.iloc[:200].to_numpy())


def test_cdf_is_the_integral_of_the_density(fitted):
    m, r = fitted
    c = m.cdf(r)
    R = m.min_context
    assert c.shape == r.shape and c.iloc[:R].isna().all().all()
    assert ((c.iloc[R:] > 0) & (c.iloc[R:] < 1)).all().all()
    # F(x + d) - F(x) = p(x) d for a small step d of the last cell of a day
    bumped = r.copy()
    bumped.iloc[250, 2] += 1e-3
    dF = m.cdf(bumped).iloc[250, 2] - c.iloc[250, 2]
    assert dF == pytest.approx(np.exp(m.log_prob(r).iloc[250, 2]) * 1e-3, rel=0.05)


def test_ppf_inverts_the_conditional_cdf_of_every_cell(fitted):
    """Each cell's conditional quantile (given the past and the cells to its left) has PIT q, and
    does not depend on the cell itself."""
    m, r = fitted
    R = m.min_context
    for q in (0.01, 0.5, 0.97):
        v = m.ppf(r, q)
        assert v.shape == r.shape and v.iloc[:R].isna().all().all()
        # float32 bin probabilities: atol 1e-5
        np.testing.assert_allclose(m.cdf(r, at=v.to_numpy()).iloc[R:].to_numpy(), q, atol=1e-5)
    bumped = r.copy()
    bumped.iloc[250, 1] += 5.0
    a, b = m.ppf(r, 0.05), m.ppf(bumped, 0.05)
    assert a.iloc[250, 1] == b.iloc[250, 1] and a.iloc[250, 0] == b.iloc[250, 0]
    assert a.iloc[250, 2] != b.iloc[250, 2]  # the cell to its right conditions on it


# ---- sampling ----------------------------------------------------------------------------------
def test_sampling_is_seeded_joint_and_shaped(fitted):
    m, r = fitted
    a = m.sample(r, horizon=4, n_paths=200, seed=7)
    b = m.sample(r, horizon=4, n_paths=200, seed=7)
    c = m.sample(r, horizon=4, n_paths=200, seed=8)
    assert a.paths.shape == (200, 4, 3) and a.columns == list(r.columns)
    np.testing.assert_array_equal(a.paths, b.paths)
    assert not np.allclose(a.paths, c.paths)
    assert a.index[0] > r.index[-1]
    # whole panels: the assets co-move with the market column as in the data
    corr = np.corrcoef(a.paths[:, 0, 0], a.paths[:, 0, 1])[0, 1]
    assert corr > 0.3


def storm_days(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A panel whose storm days have 3x the volatility, and the exog announcing each day's label the
    day before (row t holds the label of day t + 1, known at the close of day t)."""
    r = panel(n, seed=seed)
    day = pd.Series(np.random.default_rng(seed + 1).choice(["calm", "storm"], size=n), index=r.index)
    r = r.where(day.eq("calm"), 3 * r, axis=0)
    exog = pd.DataFrame({"regime": [*day.to_numpy()[1:], "calm"]}, index=r.index)
    return r, exog


@pytest.mark.slow
def test_regime_conditioning_changes_the_distribution():
    """Labels drawn independently of the past: only the announced label tells a storm day."""
    r, exog = storm_days(600, seed=3)
    m = PixelCNN(channels=8, n_layers=3, regime_column="regime",
                 train=dict(window=32, max_epochs=15, batch_size=4, lr=1e-2))
    m.fit(r, exog=exog)
    assert m.regimes_ == ["calm", "storm"] and m.exog_columns_ == ["regime"]
    true = m.joint_log_prob(r, exog=exog).sum()
    swapped = m.joint_log_prob(r, exog=exog.replace({"calm": "storm", "storm": "calm"})).sum()
    assert true > swapped

    def scenario(label: str) -> np.ndarray:  # the next two days labelled `label`
        context = exog.copy()
        context.iloc[-1, 0] = label
        return m.sample(r, horizon=2, n_paths=300, seed=0, exog=context,
                        exog_future=pd.DataFrame({"regime": [label]})).paths

    assert scenario("storm").std() > 1.5 * scenario("calm").std()
    with pytest.raises(DataError, match="regime"):
        m.log_prob(r)
    with pytest.raises(DataError, match="unknown regime"):
        m.sample(r, horizon=2, n_paths=3, seed=0, exog=exog, exog_future=pd.DataFrame({"regime": ["crash"]}))
    with pytest.raises(DataError, match="exog_future"):
        m.sample(r, horizon=2, n_paths=3, seed=0, exog=exog)


def test_regime_of_a_day_conditions_that_day_only():
    """Exog row t (known at the close of day t) moves day t + 1's cells and no other day's."""
    r, exog = storm_days(200, seed=5)
    m = PixelCNN(**TINY, regime_column="regime").fit(r, exog=exog)
    base = m.log_prob(r, exog=exog)
    flipped = exog.copy()
    flipped.iloc[120, 0] = "storm" if flipped.iloc[120, 0] == "calm" else "calm"
    moved = m.log_prob(r, exog=flipped)
    changed = ~np.isclose(moved.to_numpy(), base.to_numpy(), rtol=0, atol=0, equal_nan=True).all(axis=1)
    assert changed.tolist() == [t == 121 for t in range(len(r))]


def test_numeric_covariates_condition_the_next_day():
    r = panel(250, seed=2)
    exog = pd.DataFrame({"vol": np.random.default_rng(0).normal(size=len(r))}, index=r.index)
    m = PixelCNN(**TINY).fit(r, exog=exog)
    assert m.exog_columns_ == ["vol"]
    base = m.log_prob(r, exog=exog)
    bumped = exog.copy()
    bumped.iloc[100] += 5.0
    moved = m.log_prob(r, exog=bumped)
    others = r.index.drop(r.index[101])
    np.testing.assert_array_equal(moved.loc[others].to_numpy(), base.loc[others].to_numpy())
    assert (moved.loc[r.index[101]] != base.loc[r.index[101]]).all()
    future = pd.DataFrame({"vol": [0.0, 1.0]})
    fast = m.sample(r, horizon=3, n_paths=16, seed=2, exog=exog, exog_future=future)
    slow = m.sample(r, horizon=3, n_paths=16, seed=2, exog=exog, exog_future=future, method="naive")
    np.testing.assert_allclose(fast.paths, slow.paths, atol=1e-5)


def test_save_load_round_trip_with_regimes(tmp_path):
    r = panel(200)
    exog = volatility_regime(r).to_frame()
    m = PixelCNN(**TINY, regime_column="regime").fit(r, exog=exog)
    path = m.save(tmp_path / "pixelcnn.pt")
    torch.load(path, weights_only=True)
    m2 = finar.models.load(path)
    assert type(m2) is PixelCNN and m2.get_params() == m.get_params() and m2.regimes_ == [0, 1, 2]
    pd.testing.assert_frame_equal(m2.log_prob(r, exog=exog), m.log_prob(r, exog=exog))
    future = pd.DataFrame({"regime": [2, 2]})
    np.testing.assert_array_equal(m2.sample(r, 3, 5, seed=1, exog=exog, exog_future=future).paths,
                                  m.sample(r, 3, 5, seed=1, exog=exog, exog_future=future).paths)


# ---- inputs ------------------------------------------------------------------------------------
def test_bad_inputs_raise(fitted):
    m, r = fitted
    with pytest.raises(DataError, match="in this order"):
        m.log_prob(r[["a", "mkt", "b"]])
    with pytest.raises(DataError, match="without exog"):
        m.log_prob(r, exog=volatility_regime(r).to_frame())
    with pytest.raises(DataError, match="regime_column='regime' needs exog"):
        PixelCNN(**TINY, regime_column="regime").fit(r)
    bad = r.copy()
    bad.iloc[20, 1] = np.nan
    with pytest.raises(NonFiniteValueError, match=str(bad.index[20].date())):
        PixelCNN(**TINY).fit(bad)
    wild = r.copy()
    wild.iloc[30, 2] = 1e3  # 17 standard deviations of the column, with the outlier itself
    with pytest.raises(DataError, match="bound=10"):
        PixelCNN(**TINY, bound=10.0).fit(wild)
    with pytest.raises(DataError, match="arch"):
        PixelCNN(arch="plain").fit(r)
    with pytest.raises(DataError, match="kernel_width"):
        PixelCNN(kernel_width=4).fit(r)


def test_volatility_regime_uses_only_the_past():
    r = panel(300)
    labels = volatility_regime(r, window=10)
    assert set(labels.unique()) == {0, 1, 2} and labels.index.equals(r.index)
    assert abs(labels.value_counts(normalize=True) - 1 / 3).max() < 0.05
    bumped = r.copy()
    bumped.iloc[150] *= 10
    after = volatility_regime(bumped, window=10, edges=labels.attrs["edges"])
    pd.testing.assert_series_equal(after.iloc[:150], labels.iloc[:150])  # row t uses days <= t
    assert (after.iloc[150:160] == 2).all()
