"""A reference simulator of trades with known parameters (docs/protocols.md P5).

Each session (09:30-16:00 on business days) is generated in four layers, each with one job:

1. **Orders arrive** as a Hawkes process with exponential kernel,
   ``lambda(t) = mu * u(t) + sum_{t_j < t} alpha * exp(-beta (t - t_j))``, branching ratio
   ``alpha / beta``, and an intraday U-shape ``u(t) = (0.5 + a (2 t / L - 1)^2) / (0.5 + a / 3)``
   (mean 1 over the session, ``a = u_shape``) on the baseline; simulated by its cluster representation
   (immigrants from the baseline, each event begetting Poisson(``branching``) children at
   Exp(``beta``) delays).
2. **Each order** is a single trade with probability ``p_single``, else a sweep of
   ``1 + Geometric`` trades (mean ``trades_per_order``); all trades of an order share its
   timestamp; the resting depth at the touch is ``Geometric`` (mean ``depth``) trades,
   and a sweep deeper than that trades one tick through and moves the quote.
3. **Order signs have long memory**: runs of one sign with discrete Pareto lengths,
   ``P(length >= l) = l^-sign_alpha`` (sign ACF decaying as ``k^-(sign_alpha - 1)``), mixed with
   independent signs with probability ``noise_share``.
4. **Prices** live on a one-tick spread: buys trade at the ask, sells at the bid (bid-ask bounce);
   after an order the quote follows its sign with probability ``impact`` and moves at random
   with probability ``volatility``. **Sizes** are 1 with probability ``p_unit``, else
   ``floor(2 U^(-1/size_alpha))`` (power-law tail of index ``size_alpha``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from finar._estimator import check_seed
from finar.errors import DataError

__all__ = ["SimParams", "simulate"]


@dataclass(frozen=True)
class SimParams:
    """Parameters of :func:`simulate` (defaults give futures-like streams, ~28,000 trades a day)."""

    mu: float = 0.12                # baseline order rate per second (before the U-shape)
    branching: float = 0.5          # Hawkes branching ratio alpha / beta
    beta: float = 0.5               # Hawkes decay rate per second
    u_shape: float = 2.5            # intraday U amplitude a: baseline (0.5 + a (2t/L - 1)^2) / (0.5 + a/3)
    p_single: float = 0.5           # share of orders of a single trade
    trades_per_order: float = 9.0   # mean trades of the other orders (all at one timestamp)
    depth: float = 15.0             # mean resting depth at the touch, in trades
    sign_alpha: float = 1.5         # tail index of sign-run lengths (ACF exponent sign_alpha - 1)
    noise_share: float = 0.8        # share of orders with an independent sign
    impact: float = 0.02            # P(quote moves with the order's sign after an order)
    volatility: float = 0.02        # P(quote moves one tick at random after an order)
    p_unit: float = 0.5             # share of trades of size 1
    size_alpha: float = 2.0         # tail index of sizes above 1
    tick: float = 0.25
    price0: float = 4500.0
    session_seconds: float = 23_400.0
    open_time: str = "09:30"
    start: str = "2024-01-02"


def _arrivals(p: SimParams, rng: np.random.Generator) -> np.ndarray:
    """Order times (seconds from the open) of one session: Hawkes by clusters, U-shaped baseline."""
    L, norm = p.session_seconds, 0.5 + p.u_shape / 3
    peak = (0.5 + p.u_shape) / norm  # the U-shape is highest at the open and the close
    n = rng.poisson(p.mu * peak * L)
    u = rng.uniform(0, L, n)
    shape = (0.5 + p.u_shape * (2 * u / L - 1) ** 2) / norm
    times = gen = u[rng.random(n) < shape / peak]
    while gen.size:  # one generation of children per pass
        kids = rng.poisson(p.branching, gen.size)
        gen = np.repeat(gen, kids) + rng.exponential(1 / p.beta, kids.sum())
        gen = gen[gen < L]
        times = np.concatenate([times, gen])
    return np.sort(np.round(times, 6))


def _signs(n: int, p: SimParams, rng: np.random.Generator) -> np.ndarray:
    runs = np.floor(rng.random(n) ** (-1 / p.sign_alpha)).astype(np.int64)  # P(len >= l) = l^-alpha
    run_sign = rng.choice(np.array([-1, 1]), size=n)
    signs = np.repeat(run_sign, runs)[:n]
    noise = rng.random(n) < p.noise_share
    return np.where(noise, rng.choice(np.array([-1, 1]), size=n), signs)


def _session(p: SimParams, rng: np.random.Generator, bid: int) -> tuple[pd.DataFrame, int]:
    t = _arrivals(p, rng)
    n = t.size
    sign = _signs(n, p, rng)
    k = np.where(rng.random(n) < p.p_single, 1, 1 + rng.geometric(1 / (p.trades_per_order - 1), n))
    depth = rng.geometric(1 / p.depth, n)
    move = np.where(rng.random(n) < p.impact, sign, 0) + np.where(
        rng.random(n) < p.volatility, rng.choice(np.array([-1, 1]), size=n), 0)
    price = np.empty(k.sum(), dtype=np.int64)
    pos = 0
    for j in range(n):  # the quote is path-dependent: one pass over orders (not trades)
        s, kj, dj = int(sign[j]), int(k[j]), int(depth[j])
        touch = bid + 1 if s > 0 else bid
        price[pos:pos + kj] = touch
        if kj > dj:  # swept through the touch: trade one level deeper, the quote moves
            price[pos + dj:pos + kj] = touch + s
            bid += s
        bid += int(move[j])
        pos += kj
    sizes = np.where(rng.random(pos) < p.p_unit, 1.0,
                     np.floor(2 * (1 - rng.random(pos)) ** (-1 / p.size_alpha)))
    frame = pd.DataFrame({"seconds": np.repeat(t, k), "price": price, "size": sizes,
                          "side": np.repeat(sign, k).astype(np.int8)})
    return frame, bid


def simulate(n_events: int = 200_000, seed: int = 0, params: SimParams | None = None,
             **overrides: float) -> pd.DataFrame:
    """Simulate ``n_events`` trades (whole sessions, the last one cut) with known parameters.

    Parameters
    ----------
    n_events : int, default 200_000
    seed : int, default 0
        The same seed gives the same trades; the global RNG is not touched.
    params : SimParams, optional
    **overrides
        Fields of :class:`SimParams` to change, e.g. ``branching=0.3``.

    Returns
    -------
    DataFrame
        Index ``time`` (microsecond timestamps, several trades per timestamp in sweeps);
        columns ``price`` (multiples of ``tick``), ``size`` (whole units), ``side`` (+1/-1).

    Examples
    --------
    >>> t = simulate(n_events=10_000, seed=0)
    >>> len(t), t.columns.tolist()
    (10000, ['price', 'size', 'side'])
    >>> bool((t.index.to_series().diff() == pd.Timedelta(0)).mean() > 0.5)  # sweeps share stamps
    True
    """
    if isinstance(n_events, bool) or not isinstance(n_events, int | np.integer) or n_events < 2:
        raise DataError(f"n_events must be an integer >= 2, got {n_events!r}")
    seed = check_seed(seed)
    p = params or SimParams()
    try:
        p = SimParams(**{**asdict(p), **overrides})
    except TypeError as exc:
        raise DataError(f"unknown simulator parameter: {exc}") from exc
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(p.start, periods=10_000)
    open_ = pd.Timedelta(p.open_time + ":00")
    frames, total, bid = [], 0, round(p.price0 / p.tick)
    for day in days:
        frame, bid = _session(p, rng, bid)
        frame.index = pd.DatetimeIndex(
            (day + open_).value + np.round(frame.pop("seconds").to_numpy() * 1e6).astype(np.int64) * 1000,
            name="time")
        frames.append(frame)
        total += len(frame)
        if total >= n_events:
            break
    out = pd.concat(frames).iloc[:n_events]
    out["price"] = np.round(out["price"].to_numpy() * p.tick, 10)
    return out
