"""Tests for finar.data.quantizers: bins, round trips, exact densities, state, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from finar.data.quantizers import (
    MeanScaledQuantizer,
    MuLawQuantizer,
    UniformQuantizer,
    mu_law_compand,
    mu_law_expand,
    quantizer_from_state_dict,
)
from finar.errors import DataError, NonFiniteValueError, NotFittedError

MAKERS = {
    "uniform": lambda: UniformQuantizer(n_bins=64),
    "mulaw": lambda: MuLawQuantizer(n_bins=64, mu=255),
    "meanscaled": lambda: MeanScaledQuantizer(n_bins=120, low=-15.0, high=15.0),
}
X = np.random.default_rng(0).standard_t(3, size=2000)  # heavy tails, like daily returns
FITTED = {name: make().fit(X) for name, make in MAKERS.items()}


@pytest.fixture(params=list(MAKERS))
def q(request: pytest.FixtureRequest):
    return MAKERS[request.param]().fit(X)


def _assert_plain(value: object) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str
            _assert_plain(v)
    elif isinstance(value, list):
        for v in value:
            _assert_plain(v)
    else:
        assert value is None or type(value) in (str, int, float, bool), type(value)


def test_edges_increasing_widths_positive_centres_inside(q) -> None:
    assert q.edges_.shape == (q.n_bins + 1,)
    assert np.all(np.diff(q.edges_) > 0)
    assert q.widths_.shape == q.centers_.shape == (q.n_bins,)
    assert np.all(q.widths_ > 0)
    np.testing.assert_allclose(q.widths_.sum(), q.edges_[-1] - q.edges_[0], rtol=1e-12)
    assert np.all((q.edges_[:-1] < q.centers_) & (q.centers_ < q.edges_[1:]))
    ids = np.arange(q.n_bins)
    np.testing.assert_array_equal(q.bin_width(ids), q.widths_)
    np.testing.assert_array_equal(q.encode(q.centers_), ids)


def test_uniform_inner_bins_are_equal_and_tails_cover_the_data() -> None:
    q = FITTED["uniform"]
    q_lo, q_hi = np.quantile(X, [0.0005, 0.9995])
    assert q.low_ == pytest.approx(q_lo - 0.1 * (q_hi - q_lo))
    assert q.high_ == pytest.approx(q_hi + 0.1 * (q_hi - q_lo))
    inner = q.widths_[1:-1]
    np.testing.assert_allclose(inner, (q.high_ - q.low_) / (q.n_bins - 2), rtol=1e-9)
    np.testing.assert_allclose(inner.sum(), q.high_ - q.low_, rtol=1e-12)
    margin = 0.5 * (q.high_ - q.low_)
    assert q.edges_[0] == pytest.approx(min(q.low_, X.min()) - margin)
    assert q.edges_[-1] == pytest.approx(max(q.high_, X.max()) + margin)
    assert np.isfinite(q.widths_[[0, -1]]).all()
    explicit = UniformQuantizer(n_bins=10, low=-1.0, high=1.0).fit(X)
    np.testing.assert_allclose(explicit.edges_[1:-1], np.linspace(-1.0, 1.0, 9))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(list(FITTED)), frac=st.floats(0.0, 1.0))
def test_decode_encode_round_trip_within_half_a_bin(name: str, frac: float) -> None:
    q = FITTED[name]
    x = q.edges_[0] + frac * (q.edges_[-1] - q.edges_[0])
    k = q.encode(np.array([x]))[0]
    assert q.edges_[k] <= x <= q.edges_[k + 1]
    assert abs(q.decode(np.array([k]))[0] - x) <= q.widths_[k] / 2 * (1 + 1e-12)


def test_decode_uniform_draws_stay_in_their_bin_and_are_uniform(q) -> None:
    ids = np.random.default_rng(1).integers(0, q.n_bins, size=20_000)
    a = q.decode(ids, rng=np.random.default_rng(7), method="uniform")
    b = q.decode(ids, rng=np.random.default_rng(7), method="uniform")
    np.testing.assert_array_equal(a, b)  # same seed, same values
    position = (a - q.edges_[ids]) / q.widths_[ids]
    assert np.all((position >= 0) & (position <= 1))
    assert stats.kstest(position, "uniform").pvalue > 1e-3
    with pytest.raises(DataError, match="rng="):
        q.decode(ids, method="uniform")
    with pytest.raises(DataError, match="method"):
        q.decode(ids, method="median")


def test_mu_law_edges_are_the_exact_inverse_of_uniform_companded_edges() -> None:
    q = FITTED["mulaw"]
    assert q.scale_ == pytest.approx(1.1 * np.abs(X).max())
    u = q.edges_ / q.scale_
    companded = np.sign(u) * np.log1p(255 * np.abs(u)) / np.log1p(255)
    np.testing.assert_allclose(companded, np.linspace(-1, 1, q.n_bins + 1), rtol=0, atol=1e-12)
    c = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(mu_law_compand(mu_law_expand(c, 50.0), 50.0), c, atol=1e-14)
    # bins are narrow near zero and wide in the tails
    assert q.widths_[q.n_bins // 2] < q.widths_[-1] / 50


def test_dequantised_density_integrates_to_one(q) -> None:
    """Integrate exp(log_density) over the bins with 5 midpoints per bin."""
    rng = np.random.default_rng(2)
    log_p = np.log(rng.dirichlet(np.full(q.n_bins, 0.5)))
    m = 5
    offsets = (np.arange(m) + 0.5) / m
    grid = (q.edges_[:-1, None] + offsets * q.widths_[:, None]).ravel()  # (n_bins * m,)
    ids = q.encode(grid)
    np.testing.assert_array_equal(ids, np.repeat(np.arange(q.n_bins), m))
    density = np.exp(q.log_density(log_p[ids], ids))
    integral = np.sum(density * np.repeat(q.widths_, m) / m)
    assert integral == pytest.approx(1.0, abs=1e-9)
    # full log-probability vectors give the same result as pre-gathered ones
    full = q.log_density(np.broadcast_to(log_p, (len(ids), q.n_bins)), ids)
    np.testing.assert_array_equal(full, q.log_density(log_p[ids], ids))


def test_dequantised_density_integrates_to_one_on_a_grid_not_aligned_to_bins() -> None:
    q = FITTED["uniform"]
    log_p = np.log(np.random.default_rng(3).dirichlet(np.ones(q.n_bins)))
    n = 400_000
    h = (q.edges_[-1] - q.edges_[0]) / n
    grid = q.edges_[0] + (np.arange(n) + 0.5) * h
    ids = q.encode(grid)
    assert np.exp(q.log_density(log_p[ids], ids)).sum() * h == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("make", [
    lambda: UniformQuantizer(n_bins=1024),
    lambda: MuLawQuantizer(n_bins=1024),
    lambda: MeanScaledQuantizer(),
])
def test_binned_gaussian_density_matches_the_gaussian_in_data_units(make) -> None:
    """P(bin) from a N(0.3, 2) cdf, divided by the width, is the N(0.3, 2) density at centres."""
    data = np.random.default_rng(4).normal(0.3, 2.0, size=5000)
    q = make().fit(data)
    dist = stats.norm(0.3, 2.0)
    probs = np.diff(dist.cdf(q.edges_))
    with np.errstate(divide="ignore"):  # far-tail bins have probability 0
        log_p = np.log(probs / probs.sum())
    ids = np.flatnonzero(np.abs(q.centers_ - 0.3) < 4.0)  # within two standard deviations
    got = q.log_density(log_p[ids], ids)
    np.testing.assert_allclose(got, dist.logpdf(q.centers_[ids]), rtol=0, atol=2e-3)


def test_mean_scaled_widths_scale_with_the_context_scale() -> None:
    q1 = MeanScaledQuantizer(n_bins=100).fit(X)
    q3 = MeanScaledQuantizer(n_bins=100).fit(3 * X)
    assert q1.scale_ == pytest.approx(np.abs(X).mean())
    assert q3.scale_ == pytest.approx(3 * q1.scale_)
    np.testing.assert_allclose(q3.edges_, 3 * q1.edges_, rtol=1e-12)
    np.testing.assert_allclose(q3.widths_, 3 * q1.widths_, rtol=1e-12)
    np.testing.assert_allclose(q1.widths_, 30 / 100 * q1.scale_, rtol=1e-12)
    ids = q1.encode(X[:50])
    np.testing.assert_array_equal(q3.encode(3 * X[:50]), ids)
    log_p = np.full(50, np.log(0.01))
    np.testing.assert_allclose(q3.log_density(log_p, ids),
                               q1.log_density(log_p, ids) - np.log(3), atol=1e-12)


def test_mean_scaled_per_column_contexts() -> None:
    ctx = np.column_stack([X, 5 * X, np.zeros_like(X)])
    q = MeanScaledQuantizer(n_bins=100).fit(ctx)
    assert q.scale_.shape == (3,) and q.edges_.shape == (3, 101)
    np.testing.assert_allclose(q.scale_, [np.abs(X).mean(), 5 * np.abs(X).mean(), 1.0])
    ids = q.encode(ctx[:10])
    assert ids.shape == (10, 3)
    np.testing.assert_array_equal(ids[:, 0], ids[:, 1])
    w = q.bin_width(ids)
    np.testing.assert_allclose(w[:, 1], 5 * w[:, 0])
    np.testing.assert_allclose(q.decode(ids)[:, 1], 5 * q.decode(ids)[:, 0])
    with pytest.raises(DataError, match="last axis must have length 3"):
        q.encode(X[:10])


def test_values_outside_the_support(q) -> None:
    lo, hi = q.edges_[0], q.edges_[-1]
    x = np.array([lo - 1.0, 0.0, hi + 1.0, hi])
    with pytest.raises(DataError, match=r"2 value.*out_of_range='clip'"):
        q.encode(x)
    ids = q.encode(x, out_of_range="clip")
    assert ids[0] == 0 and ids[2] == ids[3] == q.n_bins - 1
    log_p = np.full(4, np.log(1 / q.n_bins))
    lp = q.log_density(log_p, ids, x=x)
    assert lp[0] == lp[2] == -np.inf and np.isfinite(lp[[1, 3]]).all()
    with pytest.raises(DataError, match="out_of_range"):
        q.encode(x, out_of_range="ignore")


def test_state_dict_round_trip(q) -> None:
    d = q.state_dict()
    _assert_plain(d)
    q2 = quantizer_from_state_dict(json.loads(json.dumps(d)))
    assert type(q2) is type(q) and q2.get_params() == q.get_params()
    np.testing.assert_array_equal(q2.edges_, q.edges_)
    np.testing.assert_array_equal(q2.encode(X), q.encode(X))
    with pytest.raises(DataError, match="from_state_dict"):
        (MuLawQuantizer if type(q) is not MuLawQuantizer else UniformQuantizer).from_state_dict(d)
    with pytest.raises(DataError, match="strictly increasing"):
        type(q).from_state_dict({**d, "grid": d["grid"][::-1]})


def test_not_fitted(q) -> None:
    fresh = type(q)()
    for call in (fresh.encode, fresh.decode, fresh.bin_width):
        with pytest.raises(NotFittedError, match="call fit"):
            call(np.array([0]))
    with pytest.raises(NotFittedError):
        fresh.log_density(np.array([-1.0]), np.array([0]))
    with pytest.raises(NotFittedError):
        fresh.state_dict()


def test_non_finite_input(q) -> None:
    bad = X.copy()
    bad[[3, 8]] = [np.nan, np.inf]
    with pytest.raises(NonFiniteValueError, match=r"2 non-finite.*position 3"):
        type(q)().fit(bad)
    with pytest.raises(NonFiniteValueError):
        q.encode(bad)


def test_bad_ids_and_log_probs(q) -> None:
    with pytest.raises(DataError, match="integers"):
        q.decode(np.array([1.0]))
    with pytest.raises(DataError, match=rf"\[0, {q.n_bins - 1}\]"):
        q.bin_width(np.array([q.n_bins]))
    with pytest.raises(DataError, match="log_probs has shape"):
        q.log_density(np.zeros((2, 3)), np.array([0, 1]))


def test_bad_parameters() -> None:
    with pytest.raises(DataError, match="n_bins"):
        UniformQuantizer(n_bins=2).fit(X)
    with pytest.raises(DataError, match="tail_margin"):
        UniformQuantizer(tail_margin=0.0).fit(X)
    with pytest.raises(DataError, match="pass low= and high="):
        UniformQuantizer().fit(np.ones(10))
    assert UniformQuantizer(low=0.0, high=2.0).fit(np.ones(10)).n_bins == 256
    with pytest.raises(DataError, match="mu"):
        MuLawQuantizer(mu=0).fit(X)
    with pytest.raises(DataError, match="scale"):
        MuLawQuantizer().fit(np.zeros(5))
    with pytest.raises(DataError, match="low < high"):
        MeanScaledQuantizer(low=1.0, high=-1.0).fit(X)
    with pytest.raises(DataError, match="larger scale"):
        MuLawQuantizer(scale=1.0).fit(X).encode(np.array([2.0]))
