"""Trades as events, and the one event space every tick model is scored in.

Event ``i`` of a session is the tuple ``e_i = (dt_i, side_i, dp_i, size_i)``: the time since the
previous trade in seconds (exactly 0 when it shares its timestamp), the aggressor side (+1/-1),
the price change in ticks and the size. The first trade of each session is context, not scored.

**Units of every log-likelihood** (one shared currency, so models compare exactly):

- ``dt``: a mixed measure, a point mass at 0 plus Lebesgue measure on seconds, so
  ``log p(dt) = log P(dt = 0)`` for shared timestamps and ``log P(dt > 0) + log f(dt)`` with
  ``f`` a density per second otherwise;
- ``side``: a probability; ``dp``: a probability over integer ticks;
- ``size``: a probability over whole units when every training size is a whole number (the
  usual case), else a density per unit of size.

Marks are coded the same way for every model: ``dp`` in classes ``-K..K`` whose edge classes hold
the tails with a geometric decay fitted on the training data, and ``size`` in bins (one per
whole unit up to 8, then log-spaced) whose last bin is a Pareto tail with a Hill index. Within a
class or bin the distribution is fixed by the space, so models differ only in the class/bin
probabilities and the time density.

What a model may condition on besides the earlier events themselves is computed here too, from
the past only: the wall-clock time of day (:func:`clock_of_day`) and the activity profile over
the day (:func:`activity_profile`), decayed trade counts and
long-memory averages (:func:`activity_memory`), and whether sides are those of the tick rule
(:func:`follows_tick_rule`, for files without a side column).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal

from finar.data.validate import clean_trades
from finar.errors import DataError, SeriesTooShortError
from finar.ticks.io import infer_tick_size, session_ids, tick_rule

__all__ = ["Events", "EventSpace", "clock_of_day", "local_seconds", "activity_profile", "activity_memory",
           "follows_tick_rule", "ACTIVITY_SECONDS", "HALF_LIVES", "N_MOVES", "N_MEMORY"]

_DAY_NS = 86_400 * 10**9
#: time scales (seconds) of the decayed trade counts of :func:`activity_memory`
ACTIVITY_SECONDS = (1.0, 10.0, 100.0, 1_000.0, 10_000.0)
#: half-lives (trades) of its exponentially weighted means of sides and of price moves
HALF_LIVES = (16.0, 256.0, 4096.0)
#: its last columns: the directions of the session's last N_MOVES price changes, newest first
N_MOVES = 2
#: its columns
N_MEMORY = len(ACTIVITY_SECONDS) + 2 * len(HALF_LIVES) + N_MOVES


def local_seconds(index: pd.DatetimeIndex) -> np.ndarray:
    """Wall-clock times in the index's own time zone, as seconds since 1970-01-01 00:00 (local)."""
    local = index.tz_localize(None) if index.tz is not None else index
    return local.as_unit("ns").asi8 / 1e9


def clock_of_day(index: pd.DatetimeIndex) -> np.ndarray:
    """Wall-clock time of day in the index's own time zone, as a fraction of 24 hours."""
    local = index.tz_localize(None) if index.tz is not None else index
    return (local.as_unit("ns").asi8 % _DAY_NS) / _DAY_NS


@dataclass
class Events:
    """A trades frame coded as events; arrays of one value per trade."""

    dt: np.ndarray        # seconds since the previous trade of the session (0 for the first)
    side: np.ndarray      # +1 / -1
    dp: np.ndarray        # price change in ticks (0 for the first trade of a session)
    size: np.ndarray      # as traded
    session: np.ndarray   # session number, from 0
    tod: np.ndarray       # time of day: seconds since the session's first trade / session length
    clock: np.ndarray     # wall-clock time of day in the data's time zone, as a fraction of 24 hours
    scored: np.ndarray    # bool: not the first trade of its session
    index: pd.DatetimeIndex

    def __len__(self) -> int:
        return len(self.dt)


class EventSpace:
    """The coding of trades as events, fitted on training trades (see the module docstring).

    Parameters
    ----------
    max_ticks : int, default 10
        ``K``: price changes beyond ``+-K`` ticks fall in the edge classes (geometric tails).
    session_gap : str, default '30min'
        A pause longer than this, or a new calendar day, starts a session.
    tick_size : float, optional
        Inferred from the prices when not given.

    Examples
    --------
    >>> import finar
    >>> t = finar.ticks.simulate(n_events=5_000, seed=0)
    >>> space = EventSpace().fit(t)
    >>> ev = space.encode(t)
    >>> round(float(space.log_mark(ev.dp, ev.size)[1][0]), 3) <= 0
    True
    """

    def __init__(self, max_ticks: int = 10, session_gap: str = "30min",
                 tick_size: float | None = None) -> None:
        self.max_ticks = max_ticks
        self.session_gap = session_gap
        self.tick_size = tick_size

    def fit(self, trades: pd.DataFrame) -> EventSpace:
        t = clean_trades(trades, source="trades")
        self.tick_ = float(self.tick_size) if self.tick_size else infer_tick_size(t["price"].to_numpy())
        sid = session_ids(t.index, gap=self.session_gap)
        start = pd.Series(t.index.as_unit("ns").asi8, index=sid).groupby(level=0)
        span = (start.max() - start.min()).to_numpy() / 1e9
        self.session_length_ = float(max(np.median(span), 1.0))
        firsts = t.index[np.r_[True, np.diff(sid) != 0]]  # in the data's own time zone
        self.session_open_ = pd.Timedelta((firsts - firsts.normalize()).median())
        self.tz_ = t.index.tz
        ev = self.encode(t)
        if ev.scored.sum() < 10:
            raise SeriesTooShortError(f"only {int(ev.scored.sum())} scored trades; fitting needs at least 10")
        dp, size = ev.dp[ev.scored], ev.size[ev.scored]
        K = int(self.max_ticks)
        excess = np.abs(dp[np.abs(dp) >= K]) - K
        m = excess.mean() if excess.size else 1.0
        self.tail_ratio_ = float(np.clip(m / (1 + m), 0.05, 0.95))  # geometric MLE on the excess
        self.integer_sizes_ = bool(np.all(size == np.round(size)))
        top = float(np.quantile(size, 0.995))
        if self.integer_sizes_:
            edges = [1.0, 2, 3, 4, 5, 6, 7, 8]
            while edges[-1] * 1.25 < top:
                edges.append(float(math.ceil(edges[-1] * 1.25)))
            edges.append(float(max(math.ceil(edges[-1] * 1.25), edges[-1] + 1)))
        else:
            lo = float(np.quantile(size, 0.001))
            edges = [0.0, *np.geomspace(max(lo, 1e-12), max(top, lo * 2, 1e-12), 24).tolist()]
        self.size_edges_ = np.asarray(edges, dtype=float)  # last edge starts the Pareto tail
        over = size[size >= self.size_edges_[-1]]
        alpha = 1.0 / np.mean(np.log(over / self.size_edges_[-1])) if over.size >= 5 else 2.0
        self.tail_alpha_ = float(np.clip(alpha, 0.5, 10.0))
        return self

    # ---- coding ----------------------------------------------------------------------------------
    @property
    def n_dp(self) -> int:
        return 2 * int(self.max_ticks) + 1

    @property
    def n_size(self) -> int:
        return len(self.size_edges_)

    def encode(self, trades: pd.DataFrame) -> Events:
        """Code trades as events (sides by the tick rule when the frame has none)."""
        t = clean_trades(trades, source="trades")
        if len(t) < 2:
            raise SeriesTooShortError("need at least 2 trades")
        sid = session_ids(t.index, gap=self.session_gap)
        ns = t.index.as_unit("ns").asi8
        first = np.r_[True, np.diff(sid) != 0]
        dt = np.where(first, 0.0, np.r_[0.0, np.diff(ns)] / 1e9)
        ticks = np.round(t["price"].to_numpy() / self.tick_).astype(np.int64)
        dp = np.where(first, 0, np.r_[0, np.diff(ticks)])
        side = t["side"].to_numpy(dtype=np.int8) if "side" in t else tick_rule(t["price"].to_numpy())
        starts = np.maximum.accumulate(np.where(first, ns, 0))
        tod = (ns - starts) / 1e9 / self.session_length_
        return Events(dt=dt, side=side.astype(np.int8), dp=dp, size=t["size"].to_numpy(dtype=float),
                      session=sid, tod=tod, clock=clock_of_day(t.index), scored=~first, index=t.index)

    def dp_class(self, dp: np.ndarray) -> np.ndarray:
        """Class ``0..2K`` of each price change (``dp + K`` clipped)."""
        K = int(self.max_ticks)
        return (np.clip(dp, -K, K) + K).astype(np.int64)

    def size_bin(self, size: np.ndarray) -> np.ndarray:
        """Bin ``0..n_size-1`` of each size; the last bin is the tail ``>= size_edges_[-1]``."""
        return np.clip(np.searchsorted(self.size_edges_, size, side="right") - 1, 0, self.n_size - 1)

    def log_mark(self, dp: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log-probabilities of ``dp`` and ``size`` *within* their class and bin (fixed by the space).

        Add them to a model's log class/bin probabilities to get the exact log pmf (density).
        """
        K, r = int(self.max_ticks), self.tail_ratio_
        excess = np.maximum(np.abs(dp) - K, 0)
        in_dp = np.where(np.abs(dp) >= K, math.log1p(-r) + excess * math.log(r), 0.0)
        e, b = self.size_edges_, self.size_bin(size)
        last, a = e[-1], self.tail_alpha_
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.integer_sizes_:
                inner = -np.log(np.diff(e))[np.minimum(b, len(e) - 2)]
                s = np.maximum(size, last)
                tail = np.log((s / last) ** -a - ((s + 1) / last) ** -a)
                whole = size == np.round(size)
            else:
                inner = -np.log(np.diff(e))[np.minimum(b, len(e) - 2)]
                tail = math.log(a) + a * math.log(last) - (a + 1) * np.log(np.maximum(size, last))
                whole = np.ones(len(size), bool)
        in_size = np.where(b == len(e) - 1, tail, inner)
        return in_dp, np.where(whole & (size > 0), in_size, -np.inf)

    def draw_marks(self, dp_class: np.ndarray, size_bin: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Price changes and sizes drawn within their classes and bins (inverse of :meth:`log_mark`)."""
        K, r = int(self.max_ticks), self.tail_ratio_
        dp = dp_class.astype(np.int64) - K
        edge = np.abs(dp) == K
        dp = dp + np.sign(dp) * np.where(edge, rng.geometric(1 - r, size=len(dp)) - 1, 0)
        e, a = self.size_edges_, self.tail_alpha_
        u = rng.random(len(size_bin))
        b = np.minimum(size_bin, len(e) - 2)
        tail = e[-1] * (1 - u) ** (-1 / a)  # Pareto above the last edge
        if self.integer_sizes_:
            inner = np.floor(e[b] + u * (e[b + 1] - e[b]))
            tail = np.floor(tail)
        else:
            inner = e[b] + u * (e[b + 1] - e[b])
        return dp, np.where(size_bin == len(e) - 1, tail, inner)

    def decode(self, secs: np.ndarray, side: np.ndarray, dp: np.ndarray, size: np.ndarray,
               session: np.ndarray, start: pd.Timestamp, price0: float) -> pd.DataFrame:
        """Trades from events: ``secs`` are seconds since the session open; session ``k`` is laid
        on the ``k``-th business day after ``start``, opening at the fitted session open; prices
        carry over from one session to the next."""
        days = pd.bdate_range(pd.Timestamp(start).tz_localize(None).normalize() + pd.Timedelta(days=1),
                              periods=int(session.max()) + 1)
        opens = (days + self.session_open_).as_unit("ns").asi8
        ns = opens[session] + np.round(secs * 1e6).astype(np.int64) * 1000  # microsecond stamps
        return self.trades_at(ns, side, dp, size, price0)

    def trades_at(self, ns: np.ndarray, side: np.ndarray, dp: np.ndarray, size: np.ndarray,
                  price0: float) -> pd.DataFrame:
        """Trades from events at wall-clock times ``ns`` (nanoseconds since 1970-01-01 in the data's
        time zone, see :func:`local_seconds`); prices start from ``price0`` and stay positive."""
        ns = np.maximum.accumulate(np.asarray(ns, dtype=np.int64))
        ticks = round(price0 / self.tick_) + np.cumsum(dp)
        ticks = ticks - min(0, int(ticks.min()) - 1)  # prices stay positive
        index = pd.DatetimeIndex(ns, name="time")
        if self.tz_ is not None:
            index = index.tz_localize(self.tz_, nonexistent="shift_forward", ambiguous=False)
        return pd.DataFrame({"price": np.round(ticks * self.tick_, 10), "size": size,
                             "side": side.astype(np.int8)}, index=index)

    # ---- model files ---------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The fitted coding as plain values (what ``torch.load(weights_only=True)`` reads back).

        Time zones are kept by name and the session open in nanoseconds, so a model file restores
        exactly the coding, and hence the log-likelihoods, of the fitted model.
        """
        return {"max_ticks": int(self.max_ticks), "session_gap": str(self.session_gap),
                "tick_size": None if self.tick_size is None else float(self.tick_size),
                "tick": float(self.tick_), "session_length": float(self.session_length_),
                "session_open_ns": int(self.session_open_.value),
                "tz": None if self.tz_ is None else str(self.tz_),
                "tail_ratio": float(self.tail_ratio_), "integer_sizes": bool(self.integer_sizes_),
                "size_edges": [float(e) for e in self.size_edges_], "tail_alpha": float(self.tail_alpha_)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EventSpace:
        """The space :meth:`get_state` describes (raises ``KeyError``/``ValueError`` on a damaged one)."""
        space = cls(int(state["max_ticks"]), str(state["session_gap"]),
                    None if state["tick_size"] is None else float(state["tick_size"]))
        space.tick_, space.session_length_ = float(state["tick"]), float(state["session_length"])
        space.session_open_ = pd.Timedelta(int(state["session_open_ns"]), unit="ns")
        space.tz_ = None if state["tz"] is None else pd.Timestamp(0, tz=state["tz"]).tz
        space.tail_ratio_, space.tail_alpha_ = float(state["tail_ratio"]), float(state["tail_alpha"])
        space.integer_sizes_ = bool(state["integer_sizes"])
        space.size_edges_ = np.asarray(state["size_edges"], dtype=float)
        return space

    def check_same(self, other: EventSpace) -> None:
        """Refuse to compare likelihoods of models coded in different spaces."""
        same = (self.tick_ == other.tick_ and self.max_ticks == other.max_ticks
                and self.integer_sizes_ == other.integer_sizes_
                and np.array_equal(self.size_edges_, other.size_edges_))
        if not same:
            raise DataError("the two models code events differently (tick size, classes or size bins); "
                            "fit them on the same trades")


def activity_profile(ev: Events, n_bins: int = 96, prior: float = 5.0,
                     min_sessions: int = 3) -> tuple[np.ndarray, tuple[float, float]]:
    """The intraday activity profile ``log a(c)`` in ``n_bins`` bins of the 24-hour clock, and the
    trading hours (earliest session open, latest session close, as fractions of a day).

    ``a`` is arrivals (positive gaps) per unit of exposure in each bin over the mean rate, shrunk
    towards the mean by ``prior`` pseudo-arrivals: ``a = (n + prior) / (e + prior / r) / r``.
    A bin traded in fewer than ``min_sessions`` sessions takes the value of the nearest bin (on
    the circle of the day) traded in that many; with none, the profile is flat (``log a = 0``):
    with a day or two of data, the clock cannot be told apart from the day.

    Examples
    --------
    >>> import finar
    >>> t = finar.ticks.simulate(n_events=120_000, seed=0)  # four sessions, 09:30-16:00
    >>> log_a, (open_, close) = activity_profile(EventSpace().fit(t).encode(t))
    >>> bool(log_a[38] > log_a[50]), round(open_ * 24, 1)  # busier at 09:30 than at 12:30
    (True, 9.5)
    """
    n = int(n_bins)
    arrivals = ev.scored & (ev.dt > 0)
    counts = np.bincount(np.minimum((ev.clock[arrivals] * n).astype(np.int64), n - 1), minlength=n)
    span = pd.DataFrame({"s": ev.session, "c": ev.clock}).groupby("s")["c"].agg(["min", "max"]).to_numpy()
    edges = np.arange(n + 1) / n  # sessions never cross midnight (session_ids starts one each day)
    overlap = np.minimum(span[:, 1:], edges[1:]) - np.maximum(span[:, :1], edges[:-1])
    exposure = np.clip(overlap, 0, None).sum(0)
    mean = max(counts.sum(), 1) / max(exposure.sum(), 1e-12)
    log_a = np.log((counts + prior) / (exposure + prior / mean) / mean)
    seen = np.flatnonzero((overlap > 0).sum(0) >= min_sessions)
    if seen.size:
        gap = np.abs(np.arange(n)[:, None] - seen[None, :])
        log_a = log_a[seen[np.argmin(np.minimum(gap, n - gap), axis=1)]]
    else:
        log_a = np.zeros(n)
    return log_a, (float(span[:, 0].min()), float(span[:, 1].max()))


def activity_memory(ev: Events) -> np.ndarray:
    """Recent activity and long memory at every event, the event included, session by session.

    Columns: ``log(1 + A_tau)`` for each ``tau`` in :data:`ACTIVITY_SECONDS`, with
    ``A_tau(t_i) = sum_{j <= i} exp(-(t_i - t_j) / tau)`` the trades of the session counted with
    exponential decay; then exponentially weighted means ``m_i = l m_{i-1} + (1 - l) x_i``
    (``l = 2^(-1/h)``, ``h`` in :data:`HALF_LIVES`, ``m`` = 0 before the session) of the sides
    and of ``dp != 0``; then the directions (``sign(dp)``, 0 before there is one) of the
    session's last :data:`N_MOVES` price changes, newest first: whether the last move continued
    the one before it (the mid-price moved) or reversed it (a bid-ask bounce). Real prices
    rarely move twice in a row; a model that cannot see it makes runs of moves that trend.
    :class:`finar.ticks.TickModel` updates the same quantities trade by trade when it generates
    (its tests check that the two agree).

    Examples
    --------
    >>> import finar
    >>> t = finar.ticks.simulate(n_events=2_000, seed=0)
    >>> mem = activity_memory(EventSpace().fit(t).encode(t))
    >>> mem.shape == (2_000, N_MEMORY), float(mem[0, 0]) == math.log(2)  # the first trade: A = 1
    (True, True)
    """
    secs = local_seconds(ev.index)
    out = np.zeros((len(ev), N_MEMORY))
    n_act, n_hl = len(ACTIVITY_SECONDS), len(HALF_LIVES)
    bounds = np.r_[0, np.flatnonzero(np.diff(ev.session)) + 1, len(ev)]
    for a, b in itertools.pairwise(bounds):
        t = secs[a:b] - secs[a]
        for k, tau in enumerate(ACTIVITY_SECONDS):  # log A_i = logsumexp_j (t_j / tau) - t_i / tau
            out[a:b, k] = np.logaddexp(0.0, np.logaddexp.accumulate(t / tau) - t / tau)
        for k, half in enumerate(HALF_LIVES):
            lam = 0.5 ** (1 / half)
            out[a:b, n_act + k] = signal.lfilter([1 - lam], [1, -lam], ev.side[a:b].astype(float))
            out[a:b, n_act + n_hl + k] = signal.lfilter([1 - lam], [1, -lam], (ev.dp[a:b] != 0).astype(float))
        move = np.sign(ev.dp[a:b]) * ev.scored[a:b]
        signs = move[move != 0]
        count = np.cumsum(move != 0)  # price changes so far, this event's included
        for k in range(N_MOVES):
            j = count - 1 - k
            out[a:b, n_act + 2 * n_hl + k] = np.where(j >= 0, signs[np.maximum(j, 0)] if signs.size else 0, 0)
    return out


def follows_tick_rule(ev: Events) -> np.ndarray:
    """Per event: is its side the tick rule's, given its price change and the previous side? (A
    session's first trade, which has no price change of its own, always is.)"""
    prev = np.r_[0, ev.side[:-1]]
    return ~ev.scored | np.where(ev.dp != 0, ev.side == np.sign(ev.dp), ev.side == prev)
