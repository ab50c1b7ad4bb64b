"""Distribution heads: a network's raw outputs per step -> an exact conditional density.

A forecaster's network emits ``raw`` of shape ``(..., n_params)`` for every step; a head turns it
into the distribution of the next value ``y`` (``...``). Every head has an exact density:
``log_prob`` is the log density in nats (continuous heads, and binned heads read as uniform
within each bin), ``sample`` draws from exactly that density at ``temperature=1`` with no
``top_k``/``top_p``, and ``mean``/``std`` are its exact moments. ``std`` exists for every head
here: each t has ``df > 2`` by construction and the binned heads have bounded support.

**Units.** Heads work in the network's *scaled* units. When the network sees ``z = (x - m) / s``
the density of the data is ``log p(x) = head.log_prob(raw, z) - log s``: the caller adds the
scaler's log-Jacobian, and maps samples back with ``x = m + s * z``.

**Sampling.** Every draw comes from the ``generator`` passed in (a fresh, OS-seeded one when it is
``None``), never from torch's global RNG. ``temperature`` divides the logits of mixture weights or
bins; for continuous components it also multiplies their scale (``temperature < 1`` concentrates,
``> 1`` spreads). ``top_k`` keeps the ``k`` most likely components (bins for the categorical head),
``top_p`` the smallest set of them whose probability reaches ``top_p`` (nucleus sampling).
Single-distribution heads are one-component mixtures, so there ``top_k``/``top_p`` change nothing.
``temperature=1, top_k=None (or all), top_p=1`` is plain sampling, draw for draw.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finar.errors import DataError
from finar.models.predictive import crps_quadrature, normal_crps, t_crps

__all__ = [
    "CategoricalHead",
    "DiscretizedLogisticMixtureHead",
    "GaussianHead",
    "Head",
    "StudentTHead",
    "StudentTMixtureHead",
    "continuous_head",
    "make_head",
]

_LN2 = math.log(2.0)


def _check_number(name: str, value: Any, least: float) -> float:
    """``value`` as a finite float above ``least``, or a DataError naming the argument."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not (math.isfinite(out) and out > least):
        raise DataError(f"{name} must be a finite number > {least:g}, got {value!r}")
    return out


def _check_int(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise DataError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def _check_level(alpha: Any) -> float:
    a = _check_number("alpha", alpha, 0.0)
    if a >= 1:
        raise DataError(f"alpha must lie in (0, 1), got {alpha!r}")
    return a


def _generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    if generator is None:  # a fresh one seeded from OS entropy; torch's global generator is untouched
        generator = torch.Generator(device=device)
        generator.seed()
    return generator


def _filter_logits(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None) -> Tensor:
    """``logits / temperature`` with all but the top-k / nucleus entries set to ``-inf``."""
    logits = logits / temperature
    n = logits.shape[-1]
    if top_k is not None and top_k < n:
        keep = torch.full_like(logits, -math.inf)
        idx = logits.topk(top_k, dim=-1).indices  # exactly k kept, ties broken by topk
        logits = keep.scatter(-1, idx, logits.gather(-1, idx))
    if top_p is not None and top_p < 1:
        probs, order = logits.softmax(-1).sort(dim=-1, descending=True)
        before = probs.cumsum(-1) - probs  # mass of the more likely entries; the first is kept
        drop = torch.zeros_like(before, dtype=torch.bool).scatter(-1, order, before >= top_p)
        logits = logits.masked_fill(drop, -math.inf)
    return logits


def _pick(logits: Tensor, generator: torch.Generator) -> Tensor:
    """Index drawn with probabilities ``softmax(logits)`` (Gumbel-max, float64 noise)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=torch.float64)
    gumbel = -torch.log(-torch.log(u.clamp(min=torch.finfo(torch.float64).tiny)))
    return (logits.double() + gumbel).argmax(-1)


def _log1mexp(d: Tensor) -> Tensor:
    """``log(1 - exp(-d))`` for ``d > 0`` (Maechler 2012); both where-branches stay finite."""
    return torch.where(d > _LN2, torch.log1p(-torch.exp(-d.clamp(min=_LN2))),
                       torch.log(-torch.expm1(-d.clamp(max=_LN2))))


def _t_log_pdf(y: Tensor, loc: Tensor, scale: Tensor, df: Tensor) -> Tensor:
    """Student-t: ``log G((v+1)/2) - log G(v/2) - log(s sqrt(v pi)) - (v+1)/2 log(1 + z^2/v)``."""
    z = (y - loc) / scale
    return (torch.lgamma((df + 1) / 2) - torch.lgamma(df / 2) - 0.5 * torch.log(df * math.pi)
            - torch.log(scale) - (df + 1) / 2 * torch.log1p(z * z / df))


def _t_draw(df: Tensor, generator: torch.Generator) -> Tensor:
    """Standard t(df) draws: ``Z / sqrt(2 Gamma(df/2) / df)``, all from ``generator``."""
    z = torch.randn(df.shape, generator=generator, device=df.device, dtype=df.dtype)
    chi2 = 2 * torch._standard_gamma(df / 2, generator=generator)  # the only generator-aware gamma
    return z / torch.sqrt(chi2 / df)


class Head(nn.Module, ABC):
    """Base class: maps ``raw`` ``(..., n_params)`` to a distribution over ``y`` ``(...)``."""

    n_params: int

    def _raw(self, raw: Tensor) -> Tensor:
        if raw.shape[-1:] != (self.n_params,):
            raise DataError(f"raw has shape {tuple(raw.shape)}; {type(self).__name__} needs "
                            f"{self.n_params} raw parameters on its last axis")
        return raw

    @staticmethod
    def _check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
        _check_number("temperature", temperature, 0.0)
        if top_k is not None:
            _check_int("top_k", top_k, 1)
        if top_p is not None and not 0 < _check_number("top_p", top_p, 0.0) <= 1:
            raise DataError(f"top_p must be None or in (0, 1], got {top_p!r}")

    @abstractmethod
    def log_prob(self, raw: Tensor, y: Tensor) -> Tensor:
        """Log density (nats) of ``y`` ``(...)`` under ``raw`` ``(..., n_params)`` -> ``(...)``."""

    @abstractmethod
    def cdf(self, raw: Tensor, y: Tensor) -> Tensor:
        """``P(Y <= y)`` under ``raw`` ``(..., n_params)`` -> ``(...)`` in float64 (NaN where ``y`` is).

        The exact CDF of the density :meth:`log_prob` describes: a probability integral
        transform (PIT) of the observation, used for tail p-values and PIT histograms.
        """

    def ppf(self, raw: Tensor, q: Tensor | float) -> Tensor:
        """Quantile ``F^{-1}(q)`` -> ``(...)`` in float64: bisection on :meth:`cdf` inside a bracket
        that holds it (binned heads invert their piecewise linear CDF exactly instead)."""
        q = torch.as_tensor(q, dtype=torch.float64, device=raw.device)
        if bool(((q <= 0) | (q >= 1)).any()):
            raise DataError(f"quantile levels must lie in (0, 1), got {q.tolist()}")
        lo, hi = self._ppf_bracket(raw.detach(), q)
        for _ in range(80):  # the bracket shrinks 2^80-fold: float64 resolution
            mid = (lo + hi) / 2
            below = self.cdf(raw, mid) < q
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return (lo + hi) / 2

    def _ppf_bracket(self, raw: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no quantile function")

    @abstractmethod
    def sample(self, raw: Tensor, generator: torch.Generator | None = None, *, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None) -> Tensor:
        """One draw per step, ``(..., n_params)`` -> ``(...)``, from ``generator`` only."""

    @abstractmethod
    def mean(self, raw: Tensor) -> Tensor:
        """Mean of the distribution, ``(...)``."""

    @abstractmethod
    def std(self, raw: Tensor) -> Tensor:
        """Standard deviation of the distribution, ``(...)``."""

    @abstractmethod
    def es(self, raw: Tensor, alpha: float) -> Tensor:
        """Expected shortfall ``-E[Y | Y <= F^{-1}(alpha)] = -(1/alpha) int_0^alpha F^{-1}(u) du``
        (a positive loss) -> ``(...)`` in float64, exact."""

    @abstractmethod
    def crps(self, raw: Tensor, y: Tensor) -> Tensor:
        """``CRPS(F, y) = int (F(x) - 1{x >= y})^2 dx`` -> ``(...)`` in float64 (NaN where ``y`` is)."""

    def sample_from_uniform(self, raw: Tensor, u: Tensor) -> Tensor:
        """Exact draws from uniforms ``u`` ``(n, ...)`` (float64 in ``(0, 1)``) -> ``(n, ...)`` float64:
        the quantile function ``F^{-1}(u)``, in chunks of ``n`` (mixtures override it with a cheaper
        exact inversion). Seeded from a numpy Generator, unlike :meth:`sample`."""
        per_row = max(1, int(np.prod(raw.shape[:-1])) * getattr(self, "n_bins", 1))
        step = max(1, 4_000_000 // per_row)  # bounds the (rows, days, bins) arrays of binned heads
        return torch.cat([self.ppf(raw, u[i:i + step]) for i in range(0, len(u), step)])


class _LocScaleMixture(Head):
    """Shared by the continuous heads: ``p(y) = sum_k w_k f((y - mu_k) / s_k) / s_k``, ``f`` a
    standard normal or t. ``_params`` gives ``log w``, ``mu``, ``s`` and ``v - 2`` (``None`` for the
    normal), each ``(..., K)``; ``s = softplus(r_s) + min_scale``, ``v = min_df + min(softplus(r_v),
    max_df - min_df)``. ``min_df`` (default 2) is the floor of every ``v``: a model choice that
    bounds how heavy a conditional tail can be (``min_df > 4``: every conditional has a finite
    fourth moment, so long simulated paths cannot be dominated by a handful of draws).

    ``scale_factor`` (1 unless a fit's variance targeting sets it, see
    :meth:`target_variance`) multiplies every ``s_k``: the head's density, CDF, quantiles and
    draws are then those of the rescaled mixture, exactly."""

    def __init__(self, min_scale: float = 1e-3, max_df: float = 200.0, min_df: float = 2.0) -> None:
        super().__init__()
        self.scale_factor = 1.0
        self.min_scale = _check_number("min_scale", min_scale, 0.0)
        self.max_df = _check_number("max_df", max_df, 2.0)
        self.min_df = _check_number("min_df", min_df, 0.0)
        if not 2.0 <= self.min_df < self.max_df:
            raise DataError(f"min_df must lie in [2, max_df={self.max_df:g}), got {min_df!r}")

    @abstractmethod
    def _params(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]: ...

    def _scale_excess(self, r_s: Tensor, r_v: Tensor | None) -> tuple[Tensor, Tensor | None]:
        # v - 2, exactly (min_df - 2 is 0.0 by default, which leaves the sum bit-identical)
        excess = None if r_v is None else (self.min_df - 2) + F.softplus(r_v).clamp(
            max=self.max_df - self.min_df)
        scale = F.softplus(r_s) + self.min_scale
        return (scale if self.scale_factor == 1.0 else scale * self.scale_factor), excess

    def target_variance(self, raw: Tensor, y: Tensor) -> float:
        """The ``scale_factor`` ``c`` that makes the predictive variance right on average over
        targets ``y`` with head parameters ``raw``: ``mean((y - m)^2 / (c^2 A + B)) = 1``, with
        ``m`` the mixture mean, ``A = sum_k w_k s_k^2 v_k / (v_k - 2)`` its within-component
        variance (``s_k`` at factor 1) and ``B`` the variance of the component means. The left
        side falls as ``c`` grows, so bisection finds it (clipped to ``[1/8, 8]``)."""
        w, loc, scale, df = self._numpy(raw)  # scales at the current factor: divided out below
        mean = (w * loc).sum(-1)
        within = (w * scale**2 * (1.0 if df is None else df / (df - 2))).sum(-1) / self.scale_factor**2
        between = (w * (loc - mean[..., None]) ** 2).sum(-1)
        err2 = (np.asarray(y.detach().double().cpu().numpy()) - mean) ** 2
        lo, hi = np.log(1 / 8), np.log(8.0)
        for _ in range(60):  # log c to about 1e-17: float64's own precision
            mid = (lo + hi) / 2
            if np.mean(err2 / (np.exp(2 * mid) * within + between)) > 1:
                lo = mid
            else:
                hi = mid
        return float(np.exp((lo + hi) / 2))

    def log_prob(self, raw: Tensor, y: Tensor) -> Tensor:
        log_w, loc, scale, excess = self._params(raw)
        y = y[..., None]
        if excess is None:
            z = (y - loc) / scale
            log_f = -0.5 * z * z - torch.log(scale) - 0.5 * math.log(2 * math.pi)
        else:
            log_f = _t_log_pdf(y, loc, scale, 2 + excess)
        return torch.logsumexp(log_w + log_f, dim=-1)

    def cdf(self, raw: Tensor, y: Tensor) -> Tensor:
        """``sum_k w_k F((y - mu_k) / s_k)``, ``F`` the standard normal or t(``v_k``) CDF, in float64."""
        log_w, loc, scale, excess = (None if t is None else t.detach().double() for t in self._params(raw))
        z = (y.detach().double()[..., None] - loc) / scale
        if excess is None:
            c = torch.special.ndtr(z)
        else:  # torch has no t CDF: scipy's stdtr, exact in float64
            df, z = torch.broadcast_tensors(2 + excess, z)
            c = torch.from_numpy(scipy.special.stdtr(df.cpu().numpy(), z.cpu().numpy())).to(z.device)
        return (log_w.exp() * c).sum(-1)

    def _ppf_bracket(self, raw: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
        """A mixture's quantile lies between its components' quantiles at the same level."""
        _, loc, scale, excess = (None if t is None else t.detach().double() for t in self._params(raw))
        q = q[..., None].expand(loc.shape)
        if excess is None:
            z = torch.special.ndtri(q)
        else:
            z = torch.from_numpy(scipy.special.stdtrit((2 + excess).cpu().numpy(), q.cpu().numpy())).to(loc)
        x = loc + scale * z
        return x.min(-1).values, x.max(-1).values

    def ppf(self, raw: Tensor, q: Tensor | float) -> Tensor:
        """Quantile ``F^{-1}(q)`` in float64, ``q`` broadcast against the batch: Newton's method on
        the mixture CDF inside the bracket of its components' quantiles, falling back to bisection
        whenever a step would leave the bracket; converged to float64 resolution in a few steps
        (the generic bisection needs 80)."""
        q = torch.as_tensor(q, dtype=torch.float64, device=raw.device)
        if bool(((q <= 0) | (q >= 1) | torch.isnan(q)).any()):
            raise DataError(f"quantile levels must lie in (0, 1), got {q.tolist()}")
        w, mu, s, df = self._numpy(raw)
        shape = np.broadcast_shapes(w.shape[:-1], tuple(q.shape))
        k = w.shape[-1]
        w, mu, s = (np.broadcast_to(a, (*shape, k)).reshape(-1, k) for a in (w, mu, s))
        df = None if df is None else np.broadcast_to(df, (*shape, k)).reshape(-1, k)
        qv = np.broadcast_to(q.cpu().numpy(), shape).reshape(-1)
        zq = scipy.special.ndtri(qv)[:, None] if df is None else scipy.special.stdtrit(df, qv[:, None])
        lo, hi = (mu + s * zq).min(-1), (mu + s * zq).max(-1)  # the mixture's quantile lies between
        x = (lo + hi) / 2
        active = np.flatnonzero(hi > lo)
        for _ in range(200):
            if not len(active):
                break
            z = (x[active, None] - mu[active]) / s[active]
            d = None if df is None else df[active]
            f_cdf = (w[active] * self._std_cdf(z, d)).sum(-1) - qv[active]
            f_pdf = (w[active] * self._std_pdf(z, d) / s[active]).sum(-1)
            lo[active] = np.where(f_cdf < 0, x[active], lo[active])
            hi[active] = np.where(f_cdf < 0, hi[active], x[active])
            with np.errstate(divide="ignore", invalid="ignore"):
                step = x[active] - f_cdf / f_pdf
            inside = np.isfinite(step) & (step > lo[active]) & (step < hi[active])
            new = np.where(inside, step, (lo[active] + hi[active]) / 2)
            tol = 4e-16 * np.abs(new) + 1e-300  # float64 resolution at the quantile
            done = (np.abs(new - x[active]) <= tol) | (f_cdf == 0) | ~(hi[active] - lo[active] > tol)
            x[active] = np.where(f_cdf == 0, x[active], new)
            active = active[~done]
        return torch.as_tensor(x.reshape(shape), device=raw.device)

    @staticmethod
    def _std_pdf(z: np.ndarray, df: np.ndarray | None) -> np.ndarray:
        if df is None:
            return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return np.exp(scipy.special.gammaln((df + 1) / 2) - scipy.special.gammaln(df / 2)
                      - 0.5 * np.log(df * math.pi) - (df + 1) / 2 * np.log1p(z * z / df))

    def sample(self, raw: Tensor, generator: torch.Generator | None = None, *, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None) -> Tensor:
        self._check_sampling(temperature, top_k, top_p)
        log_w, loc, scale, excess = self._params(raw)
        g = _generator(generator, raw.device)
        if log_w.shape[-1] == 1:  # one component: nothing to pick
            k = torch.zeros_like(loc, dtype=torch.long)
        else:
            k = _pick(_filter_logits(log_w, temperature, top_k, top_p), g)[..., None]
        loc, scale = loc.gather(-1, k)[..., 0], scale.gather(-1, k)[..., 0]
        if excess is None:
            return loc + temperature * scale * torch.randn(loc.shape, generator=g, device=raw.device,
                                                           dtype=raw.dtype)
        return loc + temperature * scale * _t_draw(2 + excess.gather(-1, k)[..., 0], g)

    def mean(self, raw: Tensor) -> Tensor:
        log_w, loc, _, _ = self._params(raw)
        return (log_w.exp() * loc).sum(-1)

    def std(self, raw: Tensor) -> Tensor:
        """``sqrt(sum_k w_k (s_k^2 v_k / (v_k - 2) + (mu_k - mean)^2))`` (``v_k/(v_k-2) = 1`` if normal)."""
        log_w, loc, scale, excess = self._params(raw)
        var = scale**2 if excess is None else scale**2 * (2 + excess) / excess
        w, mean = log_w.exp(), (log_w.exp() * loc).sum(-1, keepdim=True)
        return torch.sqrt((w * (var + (loc - mean) ** 2)).sum(-1))

    def _numpy(self, raw: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """``w, mu, s, v`` ``(..., K)`` in float64 (``v`` None for the normal), as :meth:`cdf` has them."""
        log_w, loc, scale, excess = (None if t is None else t.detach().double().cpu().numpy()
                                     for t in self._params(raw))
        return np.exp(log_w), loc, scale, None if excess is None else 2 + excess

    @staticmethod
    def _std_cdf(z: np.ndarray, df: np.ndarray | None) -> np.ndarray:
        return scipy.special.ndtr(z) if df is None else scipy.special.stdtr(df, z)

    def es(self, raw: Tensor, alpha: float) -> Tensor:
        """Closed form at the mixture quantile ``q``: ``-(1/alpha) sum_k w_k (mu_k F_k(c_k) - s_k g(c_k))``,
        ``c_k = (q - mu_k) / s_k``, with ``-g(c) = E[Z 1{Z <= c}]``: ``g = phi`` for the normal and
        ``g(c) = (v + c^2) / (v - 1) f_v(c)`` for the t (finite because ``v > 2``)."""
        alpha = _check_level(alpha)
        q = self.ppf(raw, alpha).cpu().numpy()[..., None]
        w, mu, s, df = self._numpy(raw)
        c = (q - mu) / s
        g = self._std_pdf(c, df) if df is None else (df + c * c) / (df - 1) * self._std_pdf(c, df)
        tail = (w * (mu * self._std_cdf(c, df) - s * g)).sum(-1)  # E[Y 1{Y <= q}]
        return torch.as_tensor(-tail / alpha, device=raw.device)

    def crps(self, raw: Tensor, y: Tensor) -> Tensor:
        """Closed form for one component (:func:`~finar.models.predictive.normal_crps`,
        :func:`~finar.models.predictive.t_crps`); a mixture by
        :func:`~finar.models.predictive.crps_quadrature` of its CDF, cut at each component's scale."""
        w, mu, s, df = self._numpy(raw)
        shape = np.broadcast_shapes(w.shape[:-1], tuple(y.shape))
        yv = np.broadcast_to(y.detach().double().cpu().numpy(), shape).reshape(-1)
        w, mu, s = (np.broadcast_to(a, (*shape, a.shape[-1])).reshape(-1, a.shape[-1]) for a in (w, mu, s))
        df = None if df is None else np.broadcast_to(df, (*shape, df.shape[-1])).reshape(-1, df.shape[-1])
        ok, out = np.isfinite(yv), np.full(len(yv), np.nan)
        if w.shape[-1] == 1:
            z = (yv[ok] - mu[ok, 0]) / s[ok, 0]
            out[ok] = s[ok, 0] * (normal_crps(z) if df is None else t_crps(z, df[ok, 0]))
        else:
            rows_ok = np.flatnonzero(ok)

            def cdf(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
                r = rows_ok[rows]
                z = (x[..., None] - mu[r, None, :]) / s[r, None, :]
                return (w[r, None, :] * self._std_cdf(z, None if df is None else df[r, None, :])).sum(-1)

            out[ok] = crps_quadrature(cdf, yv[ok], mu[ok], s[ok])
        return torch.as_tensor(out.reshape(shape), device=raw.device)

    def sample_from_uniform(self, raw: Tensor, u: Tensor) -> Tensor:
        """Exact inversion of the mixture by composition with one uniform: ``u`` picks component
        ``k`` where ``C_{k-1} <= u < C_k`` (``C`` the cumulative weights), and ``(u - C_{k-1}) / w_k``,
        uniform again, goes through component ``k``'s quantile function."""
        w, mu, s, df = self._numpy(raw)
        u = u.detach().double().cpu().numpy()
        cw = np.cumsum(w, axis=-1)
        k = np.minimum((u[..., None] >= cw).sum(-1), w.shape[-1] - 1)[..., None]  # (n, ..., 1)

        def pick(a: np.ndarray) -> np.ndarray:
            return np.take_along_axis(np.broadcast_to(a, (*u.shape, a.shape[-1])), k, axis=-1)[..., 0]

        v = np.clip((u - pick(cw - w)) / np.maximum(pick(w), 1e-300), 1e-15, 1 - 1e-15)
        z = scipy.special.ndtri(v) if df is None else scipy.special.stdtrit(pick(df), v)
        return torch.as_tensor(pick(mu) + pick(s) * z, device=raw.device)


class GaussianHead(_LocScaleMixture):
    """Normal ``N(mu, sigma^2)`` with ``raw = [mu, r]``, ``sigma = softplus(r) + min_scale``.

    ``log p(y) = -log(sigma sqrt(2 pi)) - (y - mu)^2 / (2 sigma^2)``; sampling draws
    ``mu + temperature * sigma * Z``.

    Examples
    --------
    >>> head = GaussianHead()
    >>> raw = torch.tensor([[0.5, 20.0]])  # (steps, n_params)
    >>> head.mean(raw).tolist(), round(head.std(raw).item(), 3)
    ([0.5], 20.001)
    """

    n_params = 2

    def __init__(self, min_scale: float = 1e-3) -> None:
        super().__init__(min_scale)

    def _params(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        loc, r_s = self._raw(raw)[..., None].unbind(-2)
        return torch.zeros_like(loc), loc, *self._scale_excess(r_s, None)


class StudentTHead(_LocScaleMixture):
    """Student t with ``raw = [mu, r_s, r_v]``: ``s = softplus(r_s) + min_scale`` and
    ``v = 2 + min(softplus(r_v), max_df - 2)``, so ``2 < v <= max_df`` and the variance
    ``s^2 v / (v - 2)`` always exists (``v - 2`` is kept as ``softplus(r_v)`` itself, so ``std`` is
    finite whenever that is positive). ``max_df`` (default 200) caps ``v`` where the t is already
    indistinguishable from a normal. Density as in :func:`scipy.stats.t` with ``loc``/``scale``;
    sampling draws ``mu + temperature * s * T_v``.

    Examples
    --------
    >>> head = StudentTHead()
    >>> raw = torch.tensor([0.0, 1.0, 1.0])  # s = 1.314, v = 3.313
    >>> round(head.std(raw).item(), 4), head.sample(raw, torch.Generator().manual_seed(0)).shape
    (2.0875, torch.Size([]))
    """

    n_params = 3

    def _params(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        loc, r_s, r_v = self._raw(raw)[..., None].unbind(-2)
        return torch.zeros_like(loc), loc, *self._scale_excess(r_s, r_v)


class StudentTMixtureHead(_LocScaleMixture):
    """Mixture of ``K`` Student t's, finar's default head for returns.

    ``p(y) = sum_k w_k t(y; mu_k, s_k, v_k)`` with ``raw = [logits (K), mu (K), r_s (K), r_v (K)]``,
    ``w = softmax(logits)`` and ``s_k``, ``v_k`` as in :class:`StudentTHead` (so ``2 < v_k <= max_df``
    and the variance exists). ``log_prob`` is a ``logsumexp`` over components. ``sample`` picks
    ``k`` from ``softmax(logits / temperature)`` restricted to the ``top_k`` / nucleus components,
    then draws ``mu_k + temperature * s_k * T_{v_k}``: temperature both sharpens the choice of
    component and narrows (``< 1``) or widens (``> 1``) the component itself.

    Examples
    --------
    >>> head = StudentTMixtureHead(n_components=3)
    >>> head.n_params, tuple(head.mean(torch.zeros(5, 12)).shape)
    (12, (5,))
    """

    def __init__(self, n_components: int = 3, min_scale: float = 1e-3, max_df: float = 200.0,
                 min_df: float = 2.0) -> None:
        super().__init__(min_scale, max_df, min_df)
        self.n_components = _check_int("n_components", n_components, 1)
        self.n_params = 4 * n_components

    def _params(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        logits, loc, r_s, r_v = self._raw(raw).unflatten(-1, (4, self.n_components)).unbind(-2)
        return logits.log_softmax(-1), loc, *self._scale_excess(r_s, r_v)


class _BinnedHead(Head):
    """Piecewise-uniform densities ``p(y) = P(bin(y)) / width(bin(y))`` on finite bins."""

    edges: Tensor  # (n_bins + 1,) float64 buffer; moved to the inputs' device and dtype on use

    def _bin_stats(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        probs = self.bin_probs(raw)
        edges = self.edges.to(probs)
        return probs, edges[:-1] + edges.diff() / 2, edges.diff()

    @abstractmethod
    def bin_probs(self, raw: Tensor) -> Tensor:
        """Probabilities of all bins, ``(..., n_bins)``."""

    def mean(self, raw: Tensor) -> Tensor:
        probs, centers, _ = self._bin_stats(raw)
        return (probs * centers).sum(-1)

    def std(self, raw: Tensor) -> Tensor:
        """Exact for the piecewise-uniform density: ``sum_k P_k (width_k^2/12 + (c_k - mean)^2)``."""
        probs, centers, widths = self._bin_stats(raw)
        mean = (probs * centers).sum(-1, keepdim=True)
        return torch.sqrt((probs * (widths**2 / 12 + (centers - mean) ** 2)).sum(-1))

    def es(self, raw: Tensor, alpha: float) -> Tensor:
        """Exact sum over bins: the mass ``m_k = clamp(alpha - C_k, 0, P_k)`` of bin ``k`` below the
        ``alpha``-quantile (``C_k`` the mass below the bin) is uniform on ``[e_k, e_k + m_k w_k / P_k]``,
        so ``int_0^alpha F^{-1} = sum_k m_k (e_k + m_k w_k / (2 P_k))``."""
        alpha = _check_level(alpha)
        probs = self.bin_probs(raw).detach().double()
        edges = self.edges.to(probs)
        below = probs.cumsum(-1) - probs
        mass = torch.minimum((alpha - below).clamp(min=0), probs)
        frac = mass / probs.clamp(min=torch.finfo(torch.float64).tiny)
        return -(mass * (edges[:-1] + frac * edges.diff() / 2)).sum(-1) / alpha

    def crps(self, raw: Tensor, y: Tensor) -> Tensor:
        """Exact: ``F`` is linear on each bin, so ``int F^2`` and ``int (1 - F)^2`` over the parts of bin
        ``k`` below and above ``y`` are ``length (a^2 + ab + b^2) / 3`` with ``a, b`` the values of ``F``
        (or ``1 - F``) at the part's ends; outside ``[e_0, e_n]`` the integrand is 1 up to ``y``."""
        probs = self.bin_probs(raw).detach().double()
        shape = torch.broadcast_shapes(probs.shape[:-1], y.shape)
        probs, y = probs.expand(*shape, probs.shape[-1]), y.detach().double().expand(shape)
        edges = self.edges.to(probs)
        f_edge = torch.cat([torch.zeros_like(probs[..., :1]), probs.cumsum(-1)], -1).clamp(max=1)
        a, b = f_edge[..., :-1], f_edge[..., 1:]  # F at each bin's lower and upper edge
        x = torch.minimum(torch.maximum(y[..., None], edges[:-1]), edges[1:])  # y clipped into each bin
        f_y = a + (b - a) * (x - edges[:-1]) / edges.diff()
        low = (x - edges[:-1]) * (a * a + a * f_y + f_y * f_y) / 3
        high = (edges[1:] - x) * ((1 - f_y) ** 2 + (1 - f_y) * (1 - b) + (1 - b) ** 2) / 3
        outside = (edges[0] - y).clamp(min=0) + (y - edges[-1]).clamp(min=0)
        return torch.where(torch.isnan(y), math.nan, (low + high).sum(-1) + outside)

    def cdf(self, raw: Tensor, y: Tensor) -> Tensor:
        """Piecewise linear: ``sum_{j<k} P_j + P_k (y - edges[k]) / width_k`` for ``y`` in bin ``k``."""
        probs = self.bin_probs(raw).detach().double()
        shape = torch.broadcast_shapes(probs.shape[:-1], y.shape)
        probs, y = probs.expand(*shape, probs.shape[-1]), y.detach().double().expand(shape)
        ids, _ = self._bins(y)
        edges = self.edges.to(probs)
        below = (probs.cumsum(-1) - probs).gather(-1, ids[..., None])[..., 0]
        p_bin = probs.gather(-1, ids[..., None])[..., 0]
        frac = ((y - edges[ids]) / edges.diff()[ids]).clamp(0, 1)
        out = (below + p_bin * frac).clamp(0, 1)
        out = torch.where(y < edges[0], 0.0, torch.where(y > edges[-1], 1.0, out))
        return torch.where(torch.isnan(y), math.nan, out)

    def ppf(self, raw: Tensor, q: Tensor | float) -> Tensor:
        """Exact inverse of the piecewise linear CDF (the smallest ``y`` with ``F(y) = q``)."""
        q = torch.as_tensor(q, dtype=torch.float64, device=raw.device)
        if bool(((q <= 0) | (q >= 1)).any()):
            raise DataError(f"quantile levels must lie in (0, 1), got {q.tolist()}")
        probs = self.bin_probs(raw).detach().double()
        shape = torch.broadcast_shapes(probs.shape[:-1], q.shape)
        probs, q = probs.expand(*shape, probs.shape[-1]), q.expand(shape)
        cum = probs.cumsum(-1)
        k = torch.searchsorted(cum.contiguous(), q[..., None].contiguous())
        k = k.clamp(max=probs.shape[-1] - 1)[..., 0]
        below = (cum - probs).gather(-1, k[..., None])[..., 0]
        p_bin = probs.gather(-1, k[..., None])[..., 0].clamp(min=torch.finfo(torch.float64).tiny)
        edges = self.edges.to(probs)
        return edges[k] + ((q - below) / p_bin).clamp(0, 1) * edges.diff()[k]

    def sample_from_uniform(self, raw: Tensor, u: Tensor) -> Tensor:
        """:meth:`ppf` at uniforms ``u`` ``(n, ...)``, with the bin probabilities computed once (not
        once per chunk of draws: with 2,048 bins and 1,000 days that is most of the work)."""
        probs = self.bin_probs(raw).detach().double()  # (..., n_bins)
        cum = probs.cumsum(-1)
        uu = u.to(probs).movedim(0, -1).expand(*probs.shape[:-1], u.shape[0]).contiguous()  # (..., n)
        k = torch.searchsorted(cum.contiguous(), uu).clamp(max=probs.shape[-1] - 1)
        below = (cum - probs).gather(-1, k)
        p_bin = probs.gather(-1, k).clamp(min=torch.finfo(torch.float64).tiny)
        edges = self.edges.to(probs)
        return (edges[k] + ((uu - below) / p_bin).clamp(0, 1) * edges.diff()[k]).movedim(-1, 0)

    def _bins(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Bin ids (``edges[k] <= y < edges[k+1]``, the last bin closed) and an inside-support mask."""
        edges = self.edges.to(y)
        inside = (y >= edges[0]) & (y <= edges[-1])
        ids = (torch.bucketize(y.contiguous(), edges, right=True) - 1).clamp(0, len(edges) - 2)
        return ids, inside

    def _density(self, log_p: Tensor, ids: Tensor, inside: Tensor, y: Tensor) -> Tensor:
        """``log P - log width`` at ``ids``; ``-inf`` outside the support, NaN where ``y`` is NaN."""
        out = log_p - self.edges.diff().log().to(log_p)[ids.to(log_p.device)]
        out = torch.where(inside, out, -math.inf)
        return torch.where(torch.isnan(y), math.nan, out)

    def _uniform_in(self, ids: Tensor, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        u = torch.rand(ids.shape, generator=generator, device=ids.device, dtype=torch.float64)
        edges = self.edges.to(device=ids.device, dtype=torch.float64)
        return (edges[ids] + u * edges.diff()[ids]).to(dtype)


class CategoricalHead(_BinnedHead):
    """Categorical over ``n_bins`` finite bins, read as uniform within each bin.

    ``raw`` holds ``n_bins`` logits; ``log p(y) = log_softmax(raw)[k] - log(edges[k+1] - edges[k])``
    for ``edges[k] <= y < edges[k+1]`` (the last bin closed): the exact density of the dequantised
    model, as in :meth:`finar.data.quantizers.UniformQuantizer.log_density`. Outside
    ``[edges[0], edges[-1]]`` the density is zero and ``log_prob`` is ``-inf`` (never clamped).
    ``sample`` picks a bin (``temperature``, ``top_k``, ``top_p`` act on the bin logits only) and
    draws uniformly inside it.

    Parameters
    ----------
    edges : 1-D array or tensor
        ``n_bins + 1`` finite, strictly increasing edges, e.g. a fitted quantizer's ``edges_``.

    Examples
    --------
    >>> head = CategoricalHead(torch.tensor([-1.0, 0.0, 2.0]))
    >>> head.log_prob(torch.zeros(2), torch.tensor(1.0)).exp().item()
    0.25
    """

    def __init__(self, edges: Any) -> None:
        super().__init__()
        try:
            e = torch.as_tensor(np.asarray(edges.detach().cpu() if isinstance(edges, Tensor) else edges,
                                           dtype=float))
        except (TypeError, ValueError) as err:
            raise DataError(f"edges must be a 1-D sequence of numbers, got {edges!r}") from err
        if e.ndim != 1 or len(e) < 2 or not bool(torch.isfinite(e).all()) or not bool((e.diff() > 0).all()):
            raise DataError(f"edges must be a 1-D sequence of at least 2 finite, strictly increasing "
                            f"values, got shape {tuple(e.shape)}: {e.tolist()[:6]}...; pass a fitted "
                            "quantizer's edges_")
        self.register_buffer("edges", e)
        self.n_bins = len(e) - 1
        self.n_params = self.n_bins

    def bin_probs(self, raw: Tensor) -> Tensor:
        return self._raw(raw).softmax(-1)

    def log_prob(self, raw: Tensor, y: Tensor) -> Tensor:
        shape = torch.broadcast_shapes(self._raw(raw).shape[:-1], y.shape)
        y = y.to(raw.dtype).expand(shape)
        ids, inside = self._bins(y)
        log_p = raw.expand(*shape, self.n_bins).log_softmax(-1).gather(-1, ids[..., None])[..., 0]
        return self._density(log_p, ids, inside, y)

    def sample(self, raw: Tensor, generator: torch.Generator | None = None, *, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None) -> Tensor:
        self._check_sampling(temperature, top_k, top_p)
        g = _generator(generator, raw.device)
        ids = _pick(_filter_logits(self._raw(raw), temperature, top_k, top_p), g)
        return self._uniform_in(ids, g, raw.dtype)


class DiscretizedLogisticMixtureHead(_BinnedHead):
    """PixelCNN++'s discretised mixture of logistics (Salimans et al. 2017), on finite bins.

    ``raw = [logits (K), mu (K), log_s (K)]``, ``w = softmax(logits)``, ``log s = max(log_s, -7)``.
    The ``n_bins`` bin centres are ``c_i = low + i h``, ``h = (high - low) / (n_bins - 1)``; bin ``i``
    spans ``[c_i - h/2, c_i + h/2]`` cut to ``[low, high]``, so the two edge bins have width ``h/2``
    as in PixelCNN++. With ``sigma`` the logistic CDF,

    - ``P_k(i) = sigma((c_i + h/2 - mu_k)/s_k) - sigma((c_i - h/2 - mu_k)/s_k)`` for inner bins,
    - ``P_k(0) = sigma((low + h/2 - mu_k)/s_k)`` and ``P_k(n-1) = 1 - sigma((high - h/2 - mu_k)/s_k)``:
      an edge bin holds the logistic's mass over itself *plus* the tail beyond it.

    PixelCNN++ gives the edge bins the tails to ``+-inf``; finar keeps every bin finite instead, so
    the total mass 1 lies on ``[low, high]`` and the density is ``p(y) = sum_k w_k P_k(i) / width_i``
    for ``y`` in bin ``i``, ``-inf`` in log outside ``[low, high]``. Stability: PixelCNN++'s
    softplus forms for the edge bins, and for inner bins the exact identity
    ``sigma(a) - sigma(b) = sigma(a) sigma(-b) (1 - e^{-(a-b)})`` evaluated in log space; it stays
    accurate where the CDF difference underflows, so PixelCNN++'s mid-point fallback
    ``log pdf(c_i) + log h`` (an approximation) is not needed. ``sample`` picks a component like
    :class:`StudentTMixtureHead` (``temperature`` also scales ``s_k``), draws its bin exactly by
    inverse CDF, then a value uniform in the bin.

    Examples
    --------
    >>> head = DiscretizedLogisticMixtureHead(n_components=2, n_bins=8)
    >>> head.bin_probs(torch.zeros(6)).shape, round(head.bin_probs(torch.zeros(6)).sum().item(), 6)
    (torch.Size([8]), 1.0)
    """

    def __init__(self, n_components: int = 5, n_bins: int = 256, low: float = -1.0, high: float = 1.0,
                 min_log_scale: float = -7.0) -> None:
        super().__init__()
        self.n_components = _check_int("n_components", n_components, 1)
        self.n_bins = _check_int("n_bins", n_bins, 2)
        self.low = _check_number("low", low, -math.inf)
        self.high = _check_number("high", high, -math.inf)
        if not self.low < self.high:
            raise DataError(f"need low < high, got low={low!r}, high={high!r}")
        self.min_log_scale = _check_number("min_log_scale", min_log_scale, -math.inf)
        self.n_params = 3 * n_components
        self.h = (self.high - self.low) / (n_bins - 1)
        inner = self.low + (torch.arange(1, n_bins, dtype=torch.float64) - 0.5) * self.h
        self.register_buffer("edges", torch.cat([inner.new_tensor([low]), inner, inner.new_tensor([high])]))

    def _mixture(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, loc, log_s = self._raw(raw).unflatten(-1, (3, self.n_components)).unbind(-2)
        return logits.log_softmax(-1), loc, log_s.clamp(min=self.min_log_scale)

    def _log_bin_prob(self, raw: Tensor, ids: Tensor) -> Tensor:
        """``log sum_k w_k P_k(ids)``; ``ids`` broadcasts against ``raw.shape[:-1] + (K,)``."""
        log_w, loc, log_s = self._mixture(raw)
        inv_s, c = torch.exp(-log_s), self.low + ids.to(raw.dtype) * self.h  # c: bin centres
        a = (c + self.h / 2 - loc) * inv_s  # upper edge of the bin, standardised
        b = (c - self.h / 2 - loc) * inv_s  # lower edge
        d = (self.h * inv_s).clamp(min=torch.finfo(raw.dtype).tiny)  # a - b, exactly
        inner = F.logsigmoid(a) + F.logsigmoid(-b) + _log1mexp(d)
        log_p = torch.where(ids == 0, F.logsigmoid(a), torch.where(ids == self.n_bins - 1,
                                                                   F.logsigmoid(-b), inner))
        return torch.logsumexp(log_w + log_p, dim=-1)

    def bin_probs(self, raw: Tensor) -> Tensor:
        ids = torch.arange(self.n_bins, device=raw.device)[:, None]  # (n_bins, 1) against (..., 1, K)
        return self._log_bin_prob(raw[..., None, :], ids).exp()

    def log_prob(self, raw: Tensor, y: Tensor) -> Tensor:
        y = y.to(raw.dtype)
        ids, inside = self._bins(y)
        return self._density(self._log_bin_prob(raw, ids[..., None]), ids, inside, y)

    def cdf(self, raw: Tensor, y: Tensor) -> Tensor:
        """Closed form in ``O(K)`` per value: the mixture's logistic CDF at the lower edge of ``y``'s
        bin ``i`` (the mass of all bins below it; 0 for bin 0) plus ``P(i)`` times the fraction of
        the bin below ``y``."""
        raw, y = raw.detach().double(), y.detach().double()
        ids, _ = self._bins(y)
        log_w, loc, log_s = self._mixture(raw)
        lower = (self.low + ids.double() * self.h - self.h / 2)[..., None]  # bin i's lower edge (i >= 1)
        below = (log_w.exp() * torch.sigmoid((lower - loc) * torch.exp(-log_s))).sum(-1)
        below = torch.where(ids == 0, 0.0, below)
        p_bin = self._log_bin_prob(raw, ids[..., None]).exp()
        edges = self.edges.to(y)
        frac = ((y - edges[ids]) / edges.diff()[ids]).clamp(0, 1)
        out = (below + p_bin * frac).clamp(0, 1)
        out = torch.where(y < edges[0], 0.0, torch.where(y > edges[-1], 1.0, out))
        return torch.where(torch.isnan(y), math.nan, out)

    def sample(self, raw: Tensor, generator: torch.Generator | None = None, *, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None) -> Tensor:
        self._check_sampling(temperature, top_k, top_p)
        log_w, loc, log_s = self._mixture(raw)
        g = _generator(generator, raw.device)
        k = _pick(_filter_logits(log_w, temperature, top_k, top_p), g)[..., None]
        loc, scale = loc.gather(-1, k)[..., 0].double(), log_s.gather(-1, k)[..., 0].double().exp()
        u = torch.rand(loc.shape, generator=g, device=raw.device, dtype=torch.float64)
        x = loc + temperature * scale * torch.logit(u)  # the logistic, tails included
        pos = ((x - self.low) / self.h + 0.5).clamp(0, self.n_bins - 1)  # tails -> edge bins
        return self._uniform_in(pos.floor().long(), g, raw.dtype)


_HEADS: dict[str, type[Head]] = {
    "gaussian": GaussianHead,
    "student_t": StudentTHead,
    "t_mixture": StudentTMixtureHead,
    "categorical": CategoricalHead,
    "logistic_mixture": DiscretizedLogisticMixtureHead,
}


def continuous_head(name: str, n_components: int, min_df: float) -> Head:
    """A continuous head with the settings it takes: ``n_components`` for the mixtures, ``min_df``
    for the t heads (the networks' ``head``, ``n_components`` and ``min_df`` parameters).

    >>> continuous_head("t_mixture", 2, 6.0).min_df, continuous_head("gaussian", 2, 6.0).n_params
    (6.0, 2)
    """
    kw: dict[str, Any] = {}
    if name in ("t_mixture", "logistic_mixture"):
        kw["n_components"] = int(n_components)
    if name in ("t_mixture", "student_t"):
        kw["min_df"] = float(min_df)
    return make_head(name, **kw)


def make_head(name: str, **kwargs: Any) -> Head:
    """The head called ``name`` built with ``kwargs``: 'gaussian' (:class:`GaussianHead`),
    'student_t', 't_mixture', 'categorical' (needs ``edges=``) or 'logistic_mixture'.

    Examples
    --------
    >>> make_head("t_mixture", n_components=2).n_params
    8
    """
    if name not in _HEADS:
        raise DataError(f"unknown head {name!r}; choose one of {sorted(_HEADS)}")
    return _HEADS[name](**kwargs)
