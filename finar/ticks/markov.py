"""Exponential-Hawkes arrivals with Markov marks: the classical model of the bid-ask bounce.

The i.i.d. marks of :mod:`finar.ticks.baselines` cannot show a bid-ask bounce: a trade at the ask
is followed by one at the bid no more often than by any other. :class:`MarkovHawkes` keeps their
exponential Hawkes arrivals (distinct timestamps) and lets everything else follow a first-order
Markov chain given the previous trade. The previous trade's *state* is

.. math::  s_{i-1} = (z_{i-1},\\ side_{i-1},\\ \\mathrm{sign}(dp_{i-1}),\\ b_{i-1})

with ``z`` the zero-gap flag (the trade shared its timestamp with the one before it: part of a
sweep) and ``b`` a coarse size bucket, and event ``i`` factorises field by field, in the order of
:mod:`finar.ticks.events` (so that its log-likelihood is in the shared units and compares exactly
with every other tick model's):

.. math::  p(e_i \\mid e_{<i}) = P(z_i \\mid s_{i-1})\\,
           [f(t_i \\mid \\text{earlier arrivals})]^{1 - z_i}\\,
           P(side_i \\mid s_{i-1}, z_i)\\, P(c_i \\mid s_{i-1}, z_i, side_i)\\,
           P(k_i \\mid s_{i-1}, z_i, side_i, \\mathrm{sign}(dp_i))

with ``c`` the price-change class and ``k`` the size bin of the event space (the within-class tail
and within-bin terms are the space's), and ``f`` the exponential Hawkes density of the next
arrival (:class:`~finar.ticks.baselines.Hawkes`). Each conditional table is estimated by smoothed
counts, shrunk towards the same table pooled over the previous state,

.. math::  \\hat P(x \\mid s, u) = \\frac{n(s, u, x) + \\kappa\\, \\bar P(x \\mid u)}{n(s, u) + \\kappa},
           \\qquad \\bar P(x \\mid u) \\propto n(u, x) + 1/2,

(``u`` the fields of the event already drawn, ``kappa`` = ``prior``), which is the maximum of the
posterior under a Dirichlet prior, so every probability is positive and the likelihood exact.
With tick-rule sides (files without a side column) the previous side is the sign of the last
non-zero price change, so the chain carries exactly the memory a bounce needs.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
import pandas as pd

from finar._estimator import check_int, check_number, check_seed, plain, register
from finar.ticks.baselines import EmpiricalMarks, Hawkes, _arrivals
from finar.ticks.events import Events, EventSpace

__all__ = ["MarkovHawkes", "MarkovMarks"]

_BUCKET_QUANTILES = (0.5, 0.8, 0.95)  # coarse size buckets of the state, by training size bins


def _smoothed_log(counts: np.ndarray, prior: float) -> np.ndarray:
    """Log of ``(n + prior * pooled) / (sum n + prior)`` along the last axis; ``pooled`` is the
    table summed over the first axis (the previous state), add-half smoothed."""
    pooled = counts.sum(0) + 0.5
    pooled = pooled / pooled.sum(-1, keepdims=True)
    return np.log((counts + prior * pooled) / (counts.sum(-1, keepdims=True) + prior))


class MarkovMarks:
    """The Markov chain of zero-gap flags and marks of :class:`MarkovHawkes` (module docstring).

    Tables, indexed by the previous state ``s`` (see :meth:`state`) and the fields already drawn:
    ``log_zero_[s, z]``, ``log_side_[s, z, side > 0]``, ``log_dp_[s, z, side > 0, c]``,
    ``log_size_[s, z, side > 0, sign(dp) + 1, k]``.
    """

    def __init__(self, prior: float) -> None:
        self.prior = prior

    # ---- the previous trade's state ------------------------------------------------------------
    def bucket(self, size_bin: np.ndarray) -> np.ndarray:
        """Coarse size bucket ``0..n_buckets-1`` of each size bin."""
        return np.searchsorted(self.bucket_edges_, size_bin, side="left")

    def state(self, zero: np.ndarray, side: np.ndarray, sign: np.ndarray, size_bin: np.ndarray) -> np.ndarray:
        """State index of trades with zero-gap flags, sides (+1/-1), price-change signs and size bins."""
        return (((zero.astype(np.int64) * 2 + (side > 0)) * 3 + (np.sign(sign).astype(np.int64) + 1))
                * self.n_buckets_ + self.bucket(size_bin))

    @property
    def n_states(self) -> int:
        return 12 * self.n_buckets_

    def _coded(self, ev: Events, space: EventSpace) -> dict[str, np.ndarray]:
        """Fields of every event and the state of the trade before it (``prev``; 0 for session firsts)."""
        zero = ((ev.dt == 0) & ev.scored).astype(np.int64)
        dpc, sb = space.dp_class(ev.dp), space.size_bin(ev.size)
        own = self.state(zero, ev.side, ev.dp, sb)
        return {"prev": np.r_[0, own[:-1]], "zero": zero, "side": (ev.side > 0).astype(np.int64),
                "sign": np.sign(ev.dp).astype(np.int64) + 1, "dpc": dpc, "sb": sb}

    # ---- fit and score -------------------------------------------------------------------------
    def fit(self, ev: Events, space: EventSpace) -> MarkovMarks:
        sb = space.size_bin(ev.size[ev.scored])
        self.bucket_edges_ = np.unique(np.quantile(sb, _BUCKET_QUANTILES, method="higher")).astype(np.int64)
        self.n_buckets_ = len(self.bucket_edges_) + 1
        c = {k: v[ev.scored] for k, v in self._coded(ev, space).items()}
        S, nd, ns = self.n_states, space.n_dp, space.n_size

        def counts(shape: tuple[int, ...], *keys: np.ndarray) -> np.ndarray:
            flat = np.ravel_multi_index(keys, shape)
            return np.bincount(flat, minlength=math.prod(shape)).reshape(shape).astype(float)

        p = float(self.prior)
        self.log_zero_ = _smoothed_log(counts((S, 2), c["prev"], c["zero"]), p)
        self.log_side_ = _smoothed_log(counts((S, 2, 2), c["prev"], c["zero"], c["side"]), p)
        self.log_dp_ = _smoothed_log(counts((S, 2, 2, nd), c["prev"], c["zero"], c["side"], c["dpc"]), p)
        self.log_size_ = _smoothed_log(counts((S, 2, 2, 3, ns), c["prev"], c["zero"], c["side"], c["sign"],
                                              c["sb"]), p)
        return self

    def log_prob(self, ev: Events, space: EventSpace) -> dict[str, np.ndarray]:
        """Log-probabilities of every event's zero-gap flag, side, dp and size given the trade
        before it (within-class terms included; values of session firsts are meaningless)."""
        c = self._coded(ev, space)
        in_dp, in_size = space.log_mark(ev.dp, ev.size)
        s, z, sd = c["prev"], c["zero"], c["side"]
        return {"zero": self.log_zero_[s, z], "positive": self.log_zero_[s, 0],
                "side": self.log_side_[s, z, sd], "dp": self.log_dp_[s, z, sd, c["dpc"]] + in_dp,
                "size": self.log_size_[s, z, sd, c["sign"], c["sb"]] + in_size}

    def cdfs(self) -> dict[str, Any]:
        """Cumulative tables as nested lists (fast scalar draws with :func:`bisect.bisect_right`)."""
        def cum(log_table: np.ndarray) -> list:
            c = np.cumsum(np.exp(log_table), -1)
            return (c / c[..., -1:]).tolist()

        return {"zero": np.exp(self.log_zero_[:, 1]).tolist(),
                "side": np.exp(self.log_side_[..., 1]).tolist(),
                "dp": cum(self.log_dp_), "size": cum(self.log_size_),
                "bucket": self.bucket(np.arange(self.log_size_.shape[-1])).tolist()}

    # ---- model files -------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return plain({"prior": float(self.prior), "bucket_edges": self.bucket_edges_,
                      "log_zero": self.log_zero_, "log_side": self.log_side_, "log_dp": self.log_dp_,
                      "log_size": self.log_size_})

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MarkovMarks:
        marks = cls(float(state["prior"]))
        marks.bucket_edges_ = np.asarray(state["bucket_edges"], dtype=np.int64)
        marks.n_buckets_ = len(marks.bucket_edges_) + 1
        for key in ("log_zero", "log_side", "log_dp", "log_size"):
            setattr(marks, key + "_", np.asarray(state[key], dtype=float))
        return marks


@register("markovhawkes")
class MarkovHawkes(Hawkes):
    """Exponential Hawkes arrivals, a zero-gap class for sweeps and Markov marks (module docstring).

    Parameters
    ----------
    prior : float, default 5.0
        ``kappa``: pseudo-counts with which each conditional table is shrunk towards the table
        pooled over the previous state.
    max_ticks : int, default 10
        Price changes beyond ``+-max_ticks`` ticks fall in the edge classes of the event space.
    session_gap : str, default '30min'
        A pause longer than this, or a new calendar day, starts a session.

    Attributes
    ----------
    mu_, alpha_, beta_ : float
        The Hawkes arrival parameters (:class:`~finar.ticks.baselines.Hawkes`).
    chain_ : MarkovMarks
        The fitted tables of zero-gap flags, sides, price-change classes and size bins.

    Examples
    --------
    >>> import finar
    >>> from finar.evaluation.stylized import acf
    >>> t = finar.ticks.simulate(n_events=20_000, seed=0)
    >>> m = MarkovHawkes().fit(t)
    >>> s = m.sample(n_events=20_000, seed=1)
    >>> bool(acf(s["price"].diff().dropna().to_numpy(), 1)[1] < -0.05)  # a bid-ask bounce
    True
    """

    def __init__(self, prior: float = 5.0, max_ticks: int = 10, session_gap: str = "30min") -> None:
        super().__init__(max_ticks, session_gap)
        self.prior = prior

    def _validate(self) -> None:
        super()._validate()
        check_number("prior", self.prior, 0.0, math.inf, low_open=True)

    def fit(self, trades: pd.DataFrame) -> MarkovHawkes:
        """Fit arrivals and chain to a trades frame (``time`` index, ``price``, ``size``, ``side``)."""
        self._validate()
        space = EventSpace(int(self.max_ticks), self.session_gap).fit(trades)
        ev = space.encode(trades)
        self.space_ = space
        self.marks_ = EmpiricalMarks().fit(ev, space)  # first trades of generated sessions
        self.chain_ = MarkovMarks(float(self.prior)).fit(ev, space)
        self.last_ = (ev.index[-1], float(trades["price"].iloc[-1]))
        self._fit_arrivals(_arrivals(ev))
        return self

    def log_prob(self, trades: pd.DataFrame) -> pd.DataFrame:
        """Per-trade log-likelihood in nats (columns ``time side dp size total``); NaN for the first
        trade of each session, which is conditioned on. Units: see :mod:`finar.ticks.events`."""
        self._check_fitted("log_prob")
        ev = self.space_.encode(trades)
        lp = self.chain_.log_prob(ev, self.space_)
        lt = lp["zero"].copy()
        pos = ev.scored & (ev.dt > 0)
        lt[pos] = lp["positive"][pos] + self._log_densities(_arrivals(ev))  # arrivals 1.. of each session
        out = pd.DataFrame({"time": lt, "side": lp["side"], "dp": lp["dp"], "size": lp["size"]},
                           index=ev.index)
        out["total"] = out.sum(axis=1)
        out[~ev.scored] = np.nan
        return out

    def _session(self, a: np.ndarray, budget: int, cdf: dict[str, Any],
                 rng: np.random.Generator) -> tuple[list, list, list, list]:
        """Times, sides, price-change classes and size bins of one session's trades (at most
        ``budget``) over its arrival times ``a``: the chain runs trade by trade, a zero-gap flag
        keeping the timestamp and a positive gap moving to the next arrival, until the arrivals
        are used up."""
        K, n_b, top = int(self.max_ticks), self.chain_.n_buckets_, self.space_.n_size - 1
        s0, c0, b0 = self.marks_.draw(1, self.space_, rng)  # the session's first trade: marginals
        x_side, x_dpc, x_sb, z, j = int(s0[0]), int(c0[0]), int(b0[0]), 0, 0
        secs: list[float] = []
        side: list[int] = []
        dpc: list[int] = []
        sb: list[int] = []
        while True:
            for u_zero, u_side, u_dp, u_size in rng.random((min(budget - len(secs), 1 << 16), 4)).tolist():
                secs.append(a[j])
                side.append(x_side)
                dpc.append(x_dpc)
                sb.append(x_sb)
                if len(secs) == budget:
                    return secs, side, dpc, sb
                sign = (x_dpc > K) - (x_dpc < K)
                s = ((z * 2 + (x_side > 0)) * 3 + sign + 1) * n_b + cdf["bucket"][x_sb]  # MarkovMarks.state
                z = int(u_zero < cdf["zero"][s])
                if not z:
                    j += 1
                    if j == a.size:
                        return secs, side, dpc, sb
                up = int(u_side < cdf["side"][s][z])
                x_side = 1 if up else -1
                x_dpc = min(bisect.bisect_right(cdf["dp"][s][z][up], u_dp), 2 * K)
                sign = (x_dpc > K) - (x_dpc < K)
                x_sb = min(bisect.bisect_right(cdf["size"][s][z][up][sign + 1], u_size), top)

    def sample(self, n_events: int = 100_000, seed: int | None = None) -> pd.DataFrame:
        """``n_events`` synthetic trades: whole sessions after the fitted data, the last one cut.

        Each session's arrivals are simulated first (the Hawkes cluster representation), then
        the chain runs over them (:meth:`_session`). The same ``seed`` gives the same trades.
        """
        self._check_fitted("sample")
        n_events = check_int("n_events", n_events, least=1)
        rng = np.random.default_rng(check_seed(seed))
        cdf = self.chain_.cdfs()
        parts: list[tuple[list, ...]] = []
        total = 0
        while total < n_events:
            a = self._simulate(rng)
            if a.size:
                parts.append(self._session(a, n_events - total, cdf, rng))
                total += len(parts[-1][0])
        secs, side, dpc, sb = (np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(4))
        session = np.repeat(np.arange(len(parts)), [len(p[0]) for p in parts])
        dp, size = self.space_.draw_marks(dpc.astype(np.int64), sb.astype(np.int64), rng)
        return self.space_.decode(secs, side, dp, size, session, *self.last_)

    # ---- model files ---------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        return {**super()._get_state(), "chain": self.chain_.get_state()}

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self.chain_ = MarkovMarks.from_state(state["chain"])
