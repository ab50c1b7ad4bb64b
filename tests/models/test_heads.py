"""Distribution heads: exact densities against scipy references, stability, sampling laws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from finar.data.quantizers import MuLawQuantizer, UniformQuantizer
from finar.errors import DataError
from finar.models.heads import (
    CategoricalHead,
    DiscretizedLogisticMixtureHead,
    GaussianHead,
    Head,
    StudentTHead,
    StudentTMixtureHead,
    _BinnedHead,
    make_head,
)
from tests.conftest import raises_exactly

K = 3


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def t_mixture_params(head: StudentTMixtureHead, raw: np.ndarray):
    """Weights, locs, scales, dfs from raw, written out independently of the head's code."""
    logits, loc, r_s, r_v = np.split(raw, 4, axis=-1)
    w = special.softmax(logits, axis=-1)
    df = head.min_df + np.minimum(softplus(r_v), head.max_df - head.min_df)
    return w, loc, softplus(r_s) + head.min_scale, df


def t_mixture_logpdf(head: StudentTMixtureHead, raw: np.ndarray, y: np.ndarray) -> np.ndarray:
    w, loc, scale, df = t_mixture_params(head, raw)
    return special.logsumexp(np.log(w) + stats.t.logpdf(y[..., None], df, loc, scale), axis=-1)


def logistic_reference(head: DiscretizedLogisticMixtureHead, raw: np.ndarray, y: np.ndarray) -> np.ndarray:
    """float64 log density from scipy's logistic log-CDF/log-SF, edge bins holding their tails."""
    logits, mu, log_s = np.split(raw, 3, axis=-1)
    s = np.exp(np.maximum(log_s, -7.0))
    h, n = (head.high - head.low) / (head.n_bins - 1), head.n_bins
    i = np.clip(np.floor((y - head.low) / h + 0.5), 0, n - 1)[..., None]
    upper, lower = head.low + (i + 0.5) * h, head.low + (i - 0.5) * h
    a, b = (upper - mu) / s, (lower - mu) / s

    def log_cosh(x):
        return np.abs(x) + np.log1p(np.exp(-2 * np.abs(x))) - np.log(2)

    # F(a) - F(b) = (tanh(a/2) - tanh(b/2)) / 2 = sinh((a - b)/2) / (2 cosh(a/2) cosh(b/2))
    inner = np.log(np.sinh(h / s / 2)) - np.log(2) - log_cosh(a / 2) - log_cosh(b / 2)
    log_p = np.where(i == 0, stats.logistic.logcdf(a), np.where(i == n - 1, stats.logistic.logsf(b), inner))
    width = np.where((i == 0) | (i == n - 1), h / 2, h)[..., 0]
    return special.logsumexp(special.log_softmax(logits, axis=-1) + log_p, axis=-1) - np.log(width)


def chi2_pvalue(counts: np.ndarray, probs: np.ndarray) -> float:
    """Chi-square goodness of fit, bins expecting fewer than 5 draws pooled into one."""
    expected = probs * counts.sum()
    big = expected >= 5
    f_obs, f_exp = counts[big], expected[big]
    if (~big).any():
        f_obs, f_exp = np.append(f_obs, counts[~big].sum()), np.append(f_exp, expected[~big].sum())
    return stats.chisquare(f_obs, f_exp * f_obs.sum() / f_exp.sum()).pvalue


# --- continuous heads -----------------------------------------------------------------------------

CONTINUOUS = [GaussianHead(), StudentTHead(), StudentTMixtureHead(K), StudentTMixtureHead(K, min_df=5.0)]


@pytest.mark.parametrize("head", CONTINUOUS, ids=lambda h: type(h).__name__)
def test_density_integrates_to_one(head: Head):
    raw = torch.randn(4, head.n_params, generator=gen(1), dtype=torch.float64)
    raw[:, -1] -= 2.0  # heavy tails (df near 2 for the t heads)
    u = torch.linspace(-30, 30, 600_001, dtype=torch.float64)
    y = torch.sinh(u)  # grid dense near 0 and reaching 5e12, where even t(2) tails are negligible
    dens = head.log_prob(raw[:, None, :], y).exp() * torch.cosh(u)
    mass = torch.trapezoid(dens, u, dim=-1)
    np.testing.assert_allclose(mass.numpy(), 1.0, atol=1e-6)


def test_t_mixture_matches_scipy():
    head = StudentTMixtureHead(K)
    raw = 2 * torch.randn(50, 4 * K, generator=gen(2), dtype=torch.float64)
    raw[:5, 3 * K:] = 1e4  # df capped at max_df
    y = 3 * torch.randn(50, generator=gen(3), dtype=torch.float64)
    expected = t_mixture_logpdf(head, raw.numpy(), y.numpy())
    np.testing.assert_allclose(head.log_prob(raw, y).numpy(), expected, rtol=1e-6, atol=1e-6)
    w, loc, scale, df = t_mixture_params(head, raw.numpy())
    mean = (w * loc).sum(-1)
    var = (w * (stats.t.var(df, loc, scale) + loc**2)).sum(-1) - mean**2
    np.testing.assert_allclose(head.mean(raw).numpy(), mean, rtol=1e-10)
    np.testing.assert_allclose(head.std(raw).numpy(), np.sqrt(var), rtol=1e-8)


def test_df_floor_is_exact_and_the_default_unchanged():
    """min_df raises every component's df to the floor; log_prob stays the exact t-mixture density,
    and the default floor 2 gives bit-identical numbers to a head built without it."""
    raw = 3 * torch.randn(200, 4 * K, generator=gen(5), dtype=torch.float64)
    y = 2 * torch.randn(200, generator=gen(6), dtype=torch.float64)
    floored = StudentTMixtureHead(K, min_df=6.0)
    df = 2 + floored._params(raw)[3]
    assert float(df.min()) >= 6.0 and float(df.max()) <= floored.max_df
    expected = t_mixture_logpdf(floored, raw.numpy(), y.numpy())
    np.testing.assert_allclose(floored.log_prob(raw, y).numpy(), expected, rtol=1e-6, atol=1e-6)
    default, explicit = StudentTMixtureHead(K), StudentTMixtureHead(K, min_df=2.0)
    assert torch.equal(default.log_prob(raw, y), explicit.log_prob(raw, y))
    # a higher floor thins the tails: the 0.1% quantile moves inwards for the same raw outputs
    low, high = StudentTMixtureHead(K).ppf(raw[:20], 0.001), floored.ppf(raw[:20], 0.001)
    assert bool((high >= low - 1e-9).all())
    for bad in (1.5, 200.0, math.nan, None):
        with pytest.raises(DataError, match="min_df"):
            StudentTMixtureHead(K, min_df=bad)


def test_single_heads_match_scipy():
    raw = torch.randn(30, 3, generator=gen(4), dtype=torch.float64)
    y = torch.randn(30, generator=gen(5), dtype=torch.float64)
    loc, scale = raw[:, 0].numpy(), softplus(raw[:, 1].numpy()) + 1e-3
    df = 2 + softplus(raw[:, 2].numpy())
    g, t = GaussianHead(), StudentTHead()
    np.testing.assert_allclose(g.log_prob(raw[:, :2], y).numpy(), stats.norm.logpdf(y, loc, scale),
                               rtol=1e-12)
    np.testing.assert_allclose(t.log_prob(raw, y).numpy(), stats.t.logpdf(y, df, loc, scale), rtol=1e-10)
    np.testing.assert_allclose(t.std(raw).numpy(), stats.t.std(df, loc, scale), rtol=1e-10)
    assert torch.isfinite(t.std(torch.tensor([0.0, 0.0, -30.0]))).item()  # df - 2 ~ 1e-13, still > 0


@pytest.mark.parametrize("head", CONTINUOUS, ids=lambda h: type(h).__name__)
def test_continuous_samples_follow_density(head: Head):
    raw = torch.randn(head.n_params, generator=gen(6), dtype=torch.float64).expand(20_000, -1)
    x = head.sample(raw, gen(7)).numpy()
    r = raw[0].numpy()
    if isinstance(head, StudentTMixtureHead):
        w, loc, scale, df = t_mixture_params(head, r)
        cdf = lambda v: (w * stats.t.cdf(np.asarray(v)[..., None], df, loc, scale)).sum(-1)  # noqa: E731
    elif isinstance(head, StudentTHead):
        cdf = stats.t(2 + softplus(r[2]), r[0], softplus(r[1]) + 1e-3).cdf
    else:
        cdf = stats.norm(r[0], softplus(r[1]) + 1e-3).cdf
    assert stats.kstest(x, cdf).pvalue > 1e-3


def test_t_mixture_temperature_and_top_k_laws():
    head = StudentTMixtureHead(K)
    raw = torch.randn(4 * K, generator=gen(8), dtype=torch.float64)
    w, loc, scale, df = t_mixture_params(head, raw.numpy())
    x = head.sample(raw.expand(20_000, -1), gen(9), temperature=0.5).numpy()
    w_t = special.softmax(np.log(w) / 0.5)
    cdf = lambda v: (w_t * stats.t.cdf(np.asarray(v)[..., None], df, loc, 0.5 * scale)).sum(-1)  # noqa: E731
    assert stats.kstest(x, cdf).pvalue > 1e-3
    k = int(np.argmax(w))
    x1 = head.sample(raw.expand(20_000, -1), gen(10), top_k=1).numpy()
    assert stats.kstest(x1, stats.t(df[k], loc[k], scale[k]).cdf).pvalue > 1e-3


# --- categorical head -----------------------------------------------------------------------------

RETURNS = np.random.default_rng(0).standard_t(4, 2000)
QUANTIZERS = {"uniform": UniformQuantizer(n_bins=64).fit(RETURNS),
              "mulaw": MuLawQuantizer(n_bins=64).fit(RETURNS)}
EDGES = {kind: q.edges_ for kind, q in QUANTIZERS.items()}


@pytest.mark.parametrize("kind", EDGES)
def test_categorical_density_integrates_to_one(kind: str):
    edges = torch.as_tensor(EDGES[kind])
    head = CategoricalHead(edges)
    raw = 3 * torch.randn(5, head.n_params, generator=gen(11), dtype=torch.float64)
    centres, widths = (edges[:-1] + edges[1:]) / 2, edges.diff()
    dens = head.log_prob(raw[:, None, :], centres).exp()  # the density is constant within a bin
    np.testing.assert_allclose((dens * widths).sum(-1).numpy(), 1.0, rtol=1e-12)
    # and it is the quantizer's own dequantised density, with -inf (never clamping) outside
    q = QUANTIZERS[kind]
    y = np.array([EDGES[kind][0], 0.1, EDGES[kind][-1], EDGES[kind][0] - 1e-9, EDGES[kind][-1] + 1.0])
    lp = raw[0].log_softmax(-1).numpy()
    expected = q.log_density(np.broadcast_to(lp, (5, 64)), q.encode(y, out_of_range="clip"), x=y)
    got = head.log_prob(raw[0], torch.as_tensor(y)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.isneginf(got[3:]).all() and np.isfinite(got[:3]).all()
    assert math.isnan(head.log_prob(raw[0], torch.tensor(math.nan, dtype=torch.float64)).item())
    edges_mean = (head.bin_probs(raw) * centres).sum(-1)
    second = (head.bin_probs(raw) * (edges[:-1] ** 2 + edges[:-1] * edges[1:] + edges[1:] ** 2) / 3).sum(-1)
    torch.testing.assert_close(head.mean(raw), edges_mean)
    torch.testing.assert_close(head.std(raw), (second - edges_mean**2).sqrt())


def test_categorical_samples_follow_density():
    edges = torch.as_tensor(EDGES["mulaw"])
    head = CategoricalHead(edges)
    raw = torch.randn(64, generator=gen(12), dtype=torch.float64)
    x = head.sample(raw.expand(50_000, -1), gen(13))
    ids = torch.bucketize(x, edges, right=True) - 1
    assert chi2_pvalue(torch.bincount(ids, minlength=64).numpy(), raw.softmax(-1).numpy()) > 1e-3
    frac = ((x - edges[ids]) / edges.diff()[ids]).numpy()  # uniform within its bin
    assert stats.kstest(frac, "uniform").pvalue > 1e-3


def test_categorical_top_k_one_is_argmax_and_top_p_keeps_the_nucleus():
    head = CategoricalHead(torch.as_tensor(EDGES["uniform"]))
    raw = torch.randn(500, 64, generator=gen(14))
    x = head.sample(raw, gen(15), top_k=1)
    ids = (torch.bucketize(x.double(), head.edges, right=True) - 1).clamp(max=63)
    assert torch.equal(ids, raw.argmax(-1))
    probs, order = raw.softmax(-1).sort(-1, descending=True)
    nucleus_size = ((probs.cumsum(-1) - probs) < 0.5).sum(-1)  # smallest prefix reaching 0.5
    xp = head.sample(raw, gen(16), top_p=0.5)
    idp = (torch.bucketize(xp.double(), head.edges, right=True) - 1).clamp(max=63)
    rank = (order == idp[:, None]).int().argmax(-1)
    assert (rank < nucleus_size).all() and (nucleus_size > 1).any()


# --- discretised logistic mixture ----------------------------------------------------------------

def extreme_raw(head: DiscretizedLogisticMixtureHead, dtype: torch.dtype) -> torch.Tensor:
    k = head.n_components
    raw = torch.randn(64, 3 * k, generator=gen(17), dtype=dtype)
    raw[:16, 2 * k:] = -30.0  # scales at the floor
    raw[16:32, :k] = 1e4 * torch.randn(16, k, generator=gen(18), dtype=dtype)  # huge logits
    raw[32:48, k:2 * k] = 1e3 * torch.randn(16, k, generator=gen(19), dtype=dtype)  # means far outside
    raw[48:, k:2 * k] = torch.tensor([-1.0, 1.0, 0.0, -50.0, 50.0], dtype=dtype)  # on and beyond edges
    raw[48:, 2 * k:] = -30.0
    raw[56:, 2 * k:] = 30.0  # huge scales
    return raw


Y_EXTREME = [-1.0, -1.0 + 1e-6, -0.999, -0.75, -0.004, 0.0, 0.004, 0.5, 0.75, 0.999, 1.0 - 1e-6, 1.0]


def test_logistic_mixture_matches_float64_reference():
    head = DiscretizedLogisticMixtureHead()
    raw = torch.cat([extreme_raw(head, torch.float64), 2 * torch.randn(64, 15, generator=gen(20),
                                                                        dtype=torch.float64)])
    y = torch.tensor(Y_EXTREME, dtype=torch.float64)
    got = head.log_prob(raw[:, None, :], y).numpy()
    expected = logistic_reference(head, raw.numpy()[:, None, :], y.numpy())
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    got32 = head.log_prob(raw[:, None, :].float(), y.float()).double().numpy()
    np.testing.assert_allclose(got32, expected, rtol=1e-5, atol=2e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logistic_mixture_stable_with_finite_gradients(dtype: torch.dtype):
    head = DiscretizedLogisticMixtureHead()
    raw = extreme_raw(head, dtype).requires_grad_()
    y = torch.tensor(Y_EXTREME, dtype=dtype)
    lp = head.log_prob(raw[:, None, :], y)
    assert lp.dtype == dtype and torch.isfinite(lp).all()
    lp.sum().backward()
    assert torch.isfinite(raw.grad).all()
    probs = head.bin_probs(raw.detach())
    torch.testing.assert_close(probs.sum(-1), torch.ones(64, dtype=dtype), rtol=0, atol=1e-5)
    outside = head.log_prob(raw.detach()[:2], torch.tensor([-1.001, 1.001], dtype=dtype))
    assert torch.isneginf(outside).all()


def test_logistic_mixture_density_integrates_to_one_and_moments():
    head = DiscretizedLogisticMixtureHead(n_components=4, n_bins=32, low=-2.0, high=3.0)
    raw = torch.randn(6, 12, generator=gen(21), dtype=torch.float64)
    e = head.edges
    assert e[0] == -2.0 and e[-1] == 3.0 and torch.allclose(e.diff()[[0, -1]], e.diff()[1] / 2)
    dens = head.log_prob(raw[:, None, :], (e[:-1] + e[1:]) / 2).exp()
    np.testing.assert_allclose((dens * e.diff()).sum(-1).numpy(), 1.0, rtol=1e-12)
    probs = head.bin_probs(raw)
    mean = (probs * (e[:-1] + e[1:]) / 2).sum(-1)
    second = (probs * (e[:-1] ** 2 + e[:-1] * e[1:] + e[1:] ** 2) / 3).sum(-1)
    torch.testing.assert_close(head.mean(raw), mean)
    torch.testing.assert_close(head.std(raw), (second - mean**2).sqrt())


def test_logistic_mixture_samples_follow_bin_probs():
    head = DiscretizedLogisticMixtureHead(n_components=3, n_bins=16)
    raw = torch.randn(9, generator=gen(22), dtype=torch.float64)
    raw[6:] -= 2.0  # narrow components, so edge-bin tails and inner bins all matter
    x = head.sample(raw.expand(40_000, -1), gen(23))
    assert ((x >= -1) & (x <= 1)).all()
    ids = (torch.bucketize(x, head.edges, right=True) - 1).clamp(max=15)
    assert chi2_pvalue(torch.bincount(ids, minlength=16).numpy(), head.bin_probs(raw).numpy()) > 1e-3


# --- all heads ------------------------------------------------------------------------------------

ALL = [*CONTINUOUS, CategoricalHead(torch.as_tensor(EDGES["uniform"])),
       DiscretizedLogisticMixtureHead(n_components=3, n_bins=32)]


@pytest.mark.parametrize("head", ALL, ids=lambda h: type(h).__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtypes_and_seeded_sampling(head: Head, dtype: torch.dtype):
    raw = torch.randn(2, 3, 4, head.n_params, generator=gen(24), dtype=dtype)
    y = head.sample(raw, gen(25))
    assert y.shape == (2, 3, 4) and y.dtype == dtype
    for out in (head.log_prob(raw, y), head.mean(raw), head.std(raw)):
        assert out.shape == (2, 3, 4) and out.dtype == dtype and torch.isfinite(out).all()
    assert head.log_prob(raw[0, 0, 0], y[0, 0, 0]).shape == ()
    state = torch.get_rng_state()
    assert torch.equal(head.sample(raw, gen(25)), y)  # same seed, same draws
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is never used
    assert not torch.equal(head.sample(raw, gen(26)), y)
    n = getattr(head, "n_components", getattr(head, "n_bins", 1))
    plain = head.sample(raw, gen(27))
    assert torch.equal(head.sample(raw, gen(27), temperature=1.0, top_k=n, top_p=1.0), plain)
    assert torch.equal(head.sample(raw, gen(27), top_k=n + 5), plain)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("head", ALL, ids=lambda h: type(h).__name__)
def test_cuda(head: Head):
    head = head.to("cuda")
    raw = torch.randn(8, head.n_params, device="cuda")
    y = head.sample(raw, torch.Generator(device="cuda").manual_seed(0))
    assert y.device.type == "cuda" and torch.isfinite(head.log_prob(raw, y)).all()


def test_make_head_and_errors():
    assert isinstance(make_head("t_mixture"), StudentTMixtureHead) and make_head("t_mixture").n_params == 12
    assert make_head("logistic_mixture", n_components=2).n_params == 6
    assert make_head("categorical", edges=[0.0, 1.0, 3.0]).n_params == 2
    with raises_exactly(DataError, "unknown head 'wavenet'"):
        make_head("wavenet")
    for bad in ([0.0, 1.0, 1.0], [1.0, 0.0], [0.0], [[0.0, 1.0]], [0.0, math.inf], ["a", "b"]):
        with raises_exactly(DataError, "edges must"):
            CategoricalHead(bad)
    with raises_exactly(DataError, "raw parameters"):
        GaussianHead().log_prob(torch.zeros(4, 3), torch.zeros(4))
    with raises_exactly(DataError, "temperature"):
        GaussianHead().sample(torch.zeros(2), gen(), temperature=0.0)
    with raises_exactly(DataError, "top_k"):
        CategoricalHead([0.0, 1.0, 2.0]).sample(torch.zeros(2), gen(), top_k=0)
    with raises_exactly(DataError, "top_p"):
        StudentTMixtureHead().sample(torch.zeros(12), gen(), top_p=1.5)
    with raises_exactly(DataError, "low"):
        DiscretizedLogisticMixtureHead(low=1.0, high=1.0)
    with raises_exactly(DataError, "n_components"):
        StudentTMixtureHead(n_components=0)


# ---- CDFs: the exact integral of each head's density ------------------------------------------
def test_t_mixture_cdf_matches_scipy() -> None:
    head = StudentTMixtureHead(n_components=K)
    raw = np.random.default_rng(3).normal(size=(5, 4 * K))
    y = np.array([-3.0, -0.4, 0.0, 0.7, 6.0])
    w, loc, scale, df = t_mixture_params(head, raw)
    want = (w * stats.t.cdf(y[:, None], df, loc, scale)).sum(-1)
    got = head.cdf(torch.tensor(raw, dtype=torch.float64), torch.tensor(y)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_gaussian_cdf_matches_scipy() -> None:
    raw = torch.tensor([[0.3, 0.5], [-1.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([1.0, -4.0], dtype=torch.float64)
    sd = np.log1p(np.exp(raw[:, 1].numpy())) + 1e-3
    want = stats.norm.cdf(y.numpy(), raw[:, 0].numpy(), sd)
    np.testing.assert_allclose(GaussianHead().cdf(raw, y).numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("head", [CategoricalHead(torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])),
                                  DiscretizedLogisticMixtureHead(n_components=2, n_bins=9, low=-2, high=3)],
                         ids=["categorical", "logistic_mixture"])
def test_binned_cdf_integrates_the_density(head: Head) -> None:
    """F is piecewise linear: at every edge it is the sum of bin probabilities below it, between
    edges its slope is the density, and it is 0 below and 1 above the support (NaN stays NaN)."""
    raw = torch.randn(head.n_params, generator=gen(4), dtype=torch.float64)
    edges = head.edges.double()
    probs = head.bin_probs(raw).double()
    at_edges = head.cdf(raw, edges).numpy()
    np.testing.assert_allclose(at_edges, np.concatenate([[0.0], probs.cumsum(0).numpy()]), atol=1e-12)
    mid = (edges[:-1] + edges[1:]) / 2
    h = 1e-6
    slope = (head.cdf(raw, mid + h) - head.cdf(raw, mid - h)) / (2 * h)
    np.testing.assert_allclose(slope.numpy(), head.log_prob(raw, mid).exp().numpy(), rtol=1e-5)
    out = head.cdf(raw, torch.tensor([-10.0, 10.0, math.nan], dtype=torch.float64)).numpy()
    assert out[0] == 0.0 and out[1] == 1.0 and np.isnan(out[2])
    y = torch.linspace(-2.5, 3.5, 41, dtype=torch.float64)  # a closed-form override = the generic sum
    np.testing.assert_allclose(head.cdf(raw, y).numpy(), _BinnedHead.cdf(head, raw, y).numpy(), atol=1e-12)


@pytest.mark.parametrize("head", ALL, ids=lambda h: type(h).__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_es_crps_and_inversion_shapes(head: Head, dtype: torch.dtype):
    """ES, CRPS and draws from uniforms: float64, batch-shaped, NaN only where y is NaN."""
    raw = torch.randn(2, 3, head.n_params, generator=gen(30), dtype=dtype)
    y = head.sample(raw, gen(31))
    y[0, 1] = math.nan
    crps, es = head.crps(raw, y), head.es(raw, 0.025)
    assert crps.shape == es.shape == (2, 3) and crps.dtype == es.dtype == torch.float64
    assert torch.isnan(crps[0, 1]) and torch.isfinite(crps.flatten()[[0, 2, 3, 4, 5]]).all()
    assert (crps[torch.isfinite(crps)] >= 0).all()
    assert (es > -head.ppf(raw, 0.025)).all()  # the tail mean lies beyond the quantile
    u = torch.rand(50, 2, 3, generator=gen(32), dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    draws = head.sample_from_uniform(raw, u)
    assert draws.shape == (50, 2, 3) and draws.dtype == torch.float64 and torch.isfinite(draws).all()
    with raises_exactly(DataError, "alpha"):
        head.es(raw, 1.0)


@pytest.mark.parametrize("head", [GaussianHead(), StudentTHead(), ALL[-2]], ids=lambda h: type(h).__name__)
def test_inversion_of_single_laws_is_the_quantile_function(head: Head):
    """One distribution (or a binned head): draws from uniforms are ``ppf(u)`` itself, monotone in ``u``."""
    raw = torch.randn(4, head.n_params, generator=gen(33), dtype=torch.float64)
    u = torch.linspace(0.01, 0.99, 7, dtype=torch.float64)[:, None].expand(7, 4)
    draws = head.sample_from_uniform(raw, u)
    quantiles = torch.stack([head.ppf(raw, row) for row in u])  # one level per day, row by row
    np.testing.assert_allclose(draws.numpy(), quantiles.numpy(), rtol=1e-9, atol=1e-12)
    assert (draws.diff(dim=0) > 0).all()


def test_binned_draws_from_uniforms_equal_the_quantile_function():
    """The binned heads' fast inversion (bin probabilities computed once) is exactly ``ppf(u)``."""
    from finar.models.heads import Head

    gen = torch.Generator().manual_seed(0)
    for head in (DiscretizedLogisticMixtureHead(n_components=3, n_bins=512),
                 CategoricalHead(torch.linspace(-4, 4, 33))):
        raw = torch.randn(40, head.n_params, generator=gen)
        u = torch.rand(25, 40, generator=gen, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        fast = head.sample_from_uniform(raw, u)
        assert fast.shape == (25, 40)
        assert torch.equal(fast, Head.sample_from_uniform(head, raw, u))
        assert torch.allclose(head.cdf(raw, fast), u, atol=1e-9)


def test_scale_factor_rescales_the_mixture_exactly_and_targets_the_variance():
    """``scale_factor`` c: the density, CDF, quantiles, moments and draws of the mixture with every
    scale times c (written out with scipy); ``target_variance`` finds the c whose variance is right on
    average, ``mean((y - m)^2 / var) = 1``, and leaves the factor as it was."""
    raw = 2 * torch.randn(400, 4 * K, generator=gen(11), dtype=torch.float64)
    y = 3 * torch.randn(400, generator=gen(12), dtype=torch.float64)
    head, c = StudentTMixtureHead(K, min_df=4.0), 0.7
    w, loc, scale, df = t_mixture_params(head, raw.numpy())
    head.scale_factor = c
    dist = [stats.t(df, loc, c * scale)]
    expected = special.logsumexp(np.log(w) + dist[0].logpdf(y.numpy()[:, None]), axis=-1)
    np.testing.assert_allclose(head.log_prob(raw, y).numpy(), expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(head.cdf(raw, y).numpy(), (w * dist[0].cdf(y.numpy()[:, None])).sum(-1),
                               atol=1e-9)
    np.testing.assert_allclose(head.cdf(raw, head.ppf(raw, 0.3)).numpy(), 0.3, atol=1e-7)
    var = (w * ((c * scale) ** 2 * df / (df - 2) + loc**2)).sum(-1) - (w * loc).sum(-1) ** 2
    np.testing.assert_allclose(head.std(raw).numpy(), np.sqrt(var), rtol=1e-9)
    draws = head.sample(raw[:1].expand(40_000, -1), gen(13))  # one row's law
    law = stats.kstest(draws.numpy(), lambda x: head.cdf(raw[:1], torch.as_tensor(x)).numpy())
    assert float(law.pvalue) > 0.01
    target = head.target_variance(raw, y)
    assert head.scale_factor == c  # unchanged: the caller sets it
    head.scale_factor = target
    err = (y - head.mean(raw)).numpy()
    assert np.mean(err**2 / head.std(raw).numpy() ** 2) == pytest.approx(1.0, abs=1e-9)
    head.scale_factor = 1.0  # the default leaves the head bit-identical to one never rescaled
    assert torch.equal(head.log_prob(raw, y), StudentTMixtureHead(K, min_df=4.0).log_prob(raw, y))
