"""Predictive distributions: exact ES and CRPS against float64 quadrature references, consistency
with the models' own densities, exact sampling."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from arch.univariate.distribution import SkewStudent
from scipy import integrate, stats

import finar
from finar.errors import DataError
from finar.evaluation import scoring
from finar.models.heads import (
    CategoricalHead,
    DiscretizedLogisticMixtureHead,
    GaussianHead,
    Head,
    StudentTHead,
    StudentTMixtureHead,
)
from finar.models.predictive import HeadPredictive, LocScalePredictive, crps_quadrature

ATOL = 1e-6  # the bar, in the units of r (scale ~1)
LEVELS = (0.01, 0.025, 0.05)


def quad(f, a: float, b: float, points: list[float] = ()) -> float:
    """``int_a^b f`` by scipy's adaptive quadrature, split at ``points`` inside ``(a, b)``."""
    cuts = [a, *sorted(p for p in points if a < p < b), b]
    return sum(integrate.quad(f, lo, hi, limit=2000, epsabs=1e-13, epsrel=1e-12)[0]
               for lo, hi in itertools.pairwise(cuts))


def crps_reference(cdf, y: float, points: list[float]) -> float:
    """``int_{-inf}^y F^2 + int_y^inf (1 - F)^2`` in float64 with scipy's quad."""
    return (quad(lambda x: cdf(x) ** 2, -np.inf, y, points)
            + quad(lambda x: (1 - cdf(x)) ** 2, y, np.inf, points))


def es_reference(pdf, q: float, alpha: float, points: list[float]) -> float:
    """``-E[Y | Y <= q] = -(1/alpha) int_{-inf}^q y f(y) dy``."""
    return -quad(lambda x: x * pdf(x), -np.inf, q, points) / alpha


def inverse_softplus(v: np.ndarray) -> np.ndarray:
    return np.log(np.expm1(v))


def t_mixture_raw(w, mu, s, df, min_scale: float = 1e-3) -> torch.Tensor:
    """Raw parameters of a StudentTMixtureHead with weights, locations, scales and dfs given."""
    w, mu, s, df = (np.asarray(a, dtype=float) for a in (w, mu, s, df))
    return torch.tensor(np.concatenate([np.log(w), mu, inverse_softplus(s - min_scale),
                                        inverse_softplus(df - 2)]), dtype=torch.float64)


# mixtures with heavy tails (df near 2.5), skew (unequal weights and locations), spread scales
MIXTURES = [
    ([0.3, 0.4, 0.3], [0.0, 0.0, 0.0], [0.002, 1.0, 3.0], [2.05, 2.5, 4.0]),
    ([0.3, 0.4, 0.3], [-5.0, 0.0, 5.0], [0.1, 0.1, 0.1], [2.5, 2.5, 2.5]),
    ([0.90, 0.08, 0.02], [0.1, -1.5, -6.0], [0.8, 2.0, 4.0], [2.5, 3.0, 2.2]),
    ([0.98, 0.01, 0.01], [0.0, 0.3, -2.0], [0.5, 2.0, 0.01], [2.5, 150.0, 3.0]),
]
OUTCOMES = [0.0, 0.05, -3.0, 7.0, -40.0]


def t_mixture_functions(head: StudentTMixtureHead, raw: torch.Tensor):
    log_w, mu, s, excess = (t.numpy() for t in head._params(raw))
    w, df = np.exp(log_w), 2 + excess
    cdf = lambda x: float((w * stats.t.cdf(x, df, mu, s)).sum())  # noqa: E731
    pdf = lambda x: float((w * stats.t.pdf(x, df, mu, s)).sum())  # noqa: E731
    points = list(np.concatenate([mu + s * g for g in (-16, -4, -1, 0, 1, 4, 16)]))
    return cdf, pdf, points


@pytest.mark.parametrize("mixture", MIXTURES, ids=["spread-scales", "far-apart", "skewed", "spiky"])
def test_t_mixture_es_and_crps_match_quadrature(mixture):
    head = StudentTMixtureHead(3)
    raw = t_mixture_raw(*mixture)
    cdf, pdf, points = t_mixture_functions(head, raw)
    crps = head.crps(raw.expand(len(OUTCOMES), -1), torch.tensor(OUTCOMES, dtype=torch.float64)).numpy()
    for y, value in zip(OUTCOMES, crps, strict=True):
        assert abs(value - crps_reference(cdf, y, points)) < ATOL, y
    for a in LEVELS:
        q = head.ppf(raw, a).item()
        assert abs(cdf(q) - a) < 1e-12
        assert abs(head.es(raw, a).item() - es_reference(pdf, q, a, points)) < ATOL, a


@pytest.mark.parametrize("head", [GaussianHead(), StudentTHead()], ids=lambda h: type(h).__name__)
def test_single_component_heads_are_closed_form(head: Head):
    raw = torch.tensor([[0.3, 0.2, -1.0], [-0.5, 1.5, 0.4], [0.0, -2.0, -3.0]], dtype=torch.float64)
    raw = raw[:, : head.n_params]
    y = torch.tensor([0.4, -6.0, 2.0], dtype=torch.float64)
    _, mu, s, excess = head._params(raw)
    crps, es = head.crps(raw, y).numpy(), head.es(raw, 0.025).numpy()
    for i in range(3):
        dist = (stats.norm(mu[i, 0].item(), s[i, 0].item()) if excess is None
                else stats.t(2 + excess[i, 0].item(), mu[i, 0].item(), s[i, 0].item()))
        pts = [mu[i, 0].item()]
        assert abs(crps[i] - crps_reference(dist.cdf, y[i].item(), pts)) < ATOL
        assert abs(es[i] - es_reference(dist.pdf, dist.ppf(0.025), 0.025, pts)) < ATOL
    if excess is None:
        np.testing.assert_allclose(crps, scoring.crps_normal(y.numpy(), mu[:, 0].numpy(), s[:, 0].numpy()),
                                   rtol=1e-12)
    else:
        np.testing.assert_allclose(crps, scoring.crps_t(y.numpy(), mu[:, 0].numpy(), s[:, 0].numpy(),
                                                        2 + excess[:, 0].numpy()), rtol=1e-12)


BINNED = [CategoricalHead(torch.linspace(-4, 4, 33, dtype=torch.float64)),
          CategoricalHead(torch.tensor([-9.0, -2.0, -0.5, 0.0, 0.1, 1.0, 5.0], dtype=torch.float64)),
          DiscretizedLogisticMixtureHead(3, 64, -5.0, 5.0)]


@pytest.mark.parametrize("head", BINNED, ids=["categorical", "uneven-bins", "logistic-mixture"])
def test_binned_heads_es_and_crps_are_exact(head: Head):
    raw = 1.5 * torch.randn(4, head.n_params, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    y = torch.tensor([0.3, -12.0, 4.2, 0.0], dtype=torch.float64)  # in, below, inside and at an edge
    edges = head.edges.numpy()
    crps = head.crps(raw, y).numpy()
    for i in range(4):
        # the reference CDF: linear interpolation of the cumulative bin masses between the edges
        cum = np.concatenate([[0.0], np.cumsum(head.bin_probs(raw[i]).numpy())])
        grid = np.linspace(edges[0] - 1, edges[-1] + 1, 101)
        np.testing.assert_allclose(head.cdf(raw[i], torch.tensor(grid)).numpy(), np.interp(grid, edges, cum),
                                   atol=1e-12)

        def cdf(x: float, cum: np.ndarray = cum) -> float:
            return float(np.interp(x, edges, cum))

        def ppf(u: float, cum: np.ndarray = cum) -> float:
            return float(np.interp(u, cum, edges))

        yi = y[i].item()
        lo, hi = min(edges[0], yi) - 1.0, max(edges[-1], yi) + 1.0  # F is 0 / 1 beyond
        ref = quad(lambda x, f=cdf: f(x) ** 2, lo, yi, list(edges)) + quad(
            lambda x, f=cdf: (1 - f(x)) ** 2, yi, hi, list(edges))
        assert abs(crps[i] - ref) < 1e-10
        for a in LEVELS:  # ES as the integral of the quantile function, split at its kinks
            ref_es = -quad(ppf, 0.0, a, [p for p in cum if p < a]) / a
            assert abs(head.es(raw[i], a).item() - ref_es) < 1e-10


def test_crps_quadrature_of_a_normal_is_the_closed_form():
    rng = np.random.default_rng(0)
    y, loc, scale = rng.normal(size=50) * 3, rng.normal(size=50), rng.uniform(0.1, 4, 50)
    got = crps_quadrature(lambda x, rows: stats.norm.cdf(x, loc[rows, None], scale[rows, None]), y,
                          loc[:, None], scale[:, None])
    np.testing.assert_allclose(got, scoring.crps_normal(y, loc, scale), atol=1e-12)


# ---- LocScalePredictive (AR, GARCH) ---------------------------------------------------------------

def loc_scale(dist: str, params: tuple) -> tuple[LocScalePredictive, np.ndarray]:
    loc = np.array([0.1, -0.2, 0.0, 0.05, np.nan])
    scale = np.array([1.0, 2.0, 0.5, 1.3, np.nan])
    y = np.array([0.3, -4.0, 1.0, 8.0, 0.0])
    return LocScalePredictive(pd.RangeIndex(5), loc, scale, dist, params), y


def test_loc_scale_crps_normal_and_t_are_the_scoring_formulas():
    p, y = loc_scale("normal", ())
    np.testing.assert_allclose(p.crps(y)[:4], scoring.crps_normal(y[:4], p.loc[:4], p.scale[:4]), rtol=1e-14)
    p, y = loc_scale("t", (4.5,))
    np.testing.assert_allclose(p.crps(y)[:4], scoring.crps_std_t(y[:4], p.loc[:4], p.scale[:4], 4.5),
                               rtol=1e-14)
    assert np.isnan(p.crps(y)[4])


@pytest.mark.parametrize("params", [(2.5, -0.3), (6.0, 0.4), (30.0, 0.0)])
def test_loc_scale_skewt_crps_and_es_match_quadrature(params):
    p, y = loc_scale("skewt", params)
    d = SkewStudent()
    crps = p.crps(y)
    for i in range(4):
        def cdf(x, i=i):
            return float(d.cdf(np.array([(x - p.loc[i]) / p.scale[i]]), np.array(params))[0])

        pts = [p.loc[i] + p.scale[i] * g for g in (-4, -1, 0, 1, 4)]
        assert abs(crps[i] - crps_reference(cdf, y[i], pts)) < ATOL
        for a in LEVELS:
            q = p.ppf(a)[i]
            pdf = lambda x, i=i: math.exp(d.loglikelihood(  # noqa: E731
                np.array(params), np.array([x - p.loc[i]]), np.array([p.scale[i] ** 2]), individual=True)[0])
            assert abs(p.es(a)[i] - es_reference(pdf, q, a, pts)) < ATOL
    assert np.isnan(crps[4])


# ---- HeadPredictive (the networks) --------------------------------------------------------------

@pytest.fixture
def head_predictive() -> HeadPredictive:
    head = StudentTMixtureHead(3)
    raw = torch.randn(6, head.n_params, generator=torch.Generator().manual_seed(0))
    valid = np.array([False, True, True, True, True, True])
    return HeadPredictive(pd.bdate_range("2020-01-01", periods=6), head, raw, 0.05, 1.3, valid)


def test_head_predictive_is_the_head_in_the_units_of_r(head_predictive: HeadPredictive):
    p, head = head_predictive, head_predictive.head
    y = np.array([0.0, 0.4, -2.0, 3.0, 0.1, -0.7])
    raw, z = p.raw[1:], torch.tensor((y[1:] - 0.05) / 1.3, dtype=torch.float32)
    assert p.log_prob(y).dtype == np.float64
    np.testing.assert_array_equal(p.log_prob(y)[1:], head.log_prob(raw, z).double().numpy() - np.log(1.3))
    np.testing.assert_allclose(p.es(0.025)[1:], 1.3 * head.es(raw, 0.025).numpy() - 0.05, rtol=1e-12)
    np.testing.assert_allclose(p.crps(y)[1:], 1.3 * head.crps(raw, z.double()).numpy(), rtol=1e-6)
    np.testing.assert_allclose(p.mean()[1:], 0.05 + 1.3 * head.mean(raw.double()).numpy(), rtol=1e-12)
    np.testing.assert_allclose(p.std()[1:], 1.3 * head.std(raw.double()).numpy(), rtol=1e-12)
    for q in (0.01, 0.5, 0.95):
        np.testing.assert_allclose(p.cdf(p.ppf(q))[1:], q, atol=1e-12)
    np.testing.assert_array_equal(p.var(0.05), -p.ppf(0.05))
    assert (p.es(0.01)[1:] > p.var(0.01)[1:]).all()
    levels = np.array([[0.01], [0.5]]) * np.ones(6)  # (2, T) levels: one quantile per level and day
    np.testing.assert_allclose(p.ppf(levels)[1], p.ppf(0.5), rtol=1e-12)
    for values in (p.log_prob(y), p.cdf(y), p.ppf(0.3), p.mean(), p.std(), p.es(0.05), p.crps(y)):
        assert np.isnan(values[0]) and np.isfinite(values[1:]).all()  # day 0 has no prediction


def test_head_predictive_take_and_errors(head_predictive: HeadPredictive):
    p = head_predictive
    part = p.take([1, 4])
    assert list(part.index) == [p.index[1], p.index[4]]
    np.testing.assert_array_equal(part.std(), p.std()[[1, 4]])
    with pytest.raises(DataError, match="raw has shape"):
        HeadPredictive(p.index, p.head, p.raw[:3], 0.0, 1.0, p.valid)
    with pytest.raises(DataError, match="alpha"):
        p.es(1.5)
    with pytest.raises(DataError, match="quantile levels"):
        p.ppf(0.0)


@pytest.mark.parametrize("head", [StudentTMixtureHead(3), GaussianHead(), BINNED[0], BINNED[2]],
                         ids=["t_mixture", "gaussian", "categorical", "logistic_mixture"])
def test_head_predictive_samples_exactly_from_a_numpy_generator(head: Head):
    raw = torch.randn(3, head.n_params, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p = HeadPredictive(pd.RangeIndex(3), head, raw, 0.2, 2.0, np.ones(3, dtype=bool))
    draws = p.sample(np.random.default_rng(5), 20_000)
    assert draws.shape == (20_000, 3)
    np.testing.assert_array_equal(draws, p.sample(np.random.default_rng(5), 20_000))
    for j in range(3):
        def cdf(x, j=j):
            x = np.asarray(x, dtype=float)
            return head.cdf(raw[j], torch.tensor((x - 0.2) / 2.0)).numpy()

        assert stats.kstest(draws[:, j], cdf).pvalue > 1e-3


# ---- the models' predictive distributions ---------------------------------------------------------

@pytest.fixture(scope="module")
def sp500() -> pd.Series:
    return finar.returns(finar.load("sp500")["adj_close"]).loc["2010":"2014"]


@pytest.mark.parametrize("model", [finar.models.AR(order=2), finar.models.GARCH(vol="gjr", dist="skewt"),
                                   finar.models.GARCH(dist="t")], ids=["ar", "gjr-skewt", "garch-t"])
def test_model_predictive_is_consistent_with_its_density(model, sp500):
    m = model.fit(sp500)
    p = m.predictive(sp500)
    y = sp500.to_numpy()
    np.testing.assert_allclose(p.log_prob(y), m.log_prob(sp500).to_numpy(), rtol=1e-12, equal_nan=True)
    k = m.min_context
    for q in (0.01, 0.3, 0.9):
        np.testing.assert_allclose(p.cdf(p.ppf(q))[k:], q, atol=1e-9)
    np.testing.assert_allclose(m.cdf(sp500).to_numpy(), p.cdf(y), equal_nan=True)
    assert np.isfinite(p.crps(y)[k:]).all() and (p.es(0.01)[k:] > p.var(0.01)[k:]).all()


def test_wavenet_predictive_is_consistent_with_its_density(sp500):
    m = finar.models.WaveNet(residual_channels=4, gate_channels=4, skip_channels=4, layers_per_cycle=3,
                             train={"max_epochs": 2, "window": 16}).fit(sp500.iloc[:600])
    p = m.predictive(sp500)
    assert isinstance(p, HeadPredictive)
    y = sp500.to_numpy()
    # the same float32 head evaluation (its reductions may run in another order: float32 rounding)
    np.testing.assert_allclose(p.log_prob(y), m.log_prob(sp500).to_numpy(), rtol=1e-6, equal_nan=True)
    k = m.min_context
    np.testing.assert_allclose(p.cdf(p.ppf(0.05))[k:], 0.05, atol=1e-9)
    assert np.isfinite(p.crps(y)[k:]).all() and np.isnan(p.crps(y)[:k]).all()
