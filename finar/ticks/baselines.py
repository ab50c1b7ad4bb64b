"""Classical baselines for trade streams: Hawkes, ACD(1,1) and seasonal Poisson arrivals.

Each baseline models the *arrivals* (distinct timestamps) of a session as a point process and
everything else as i.i.d. marks drawn from the empirical distributions of the training trades:
after each trade the next one shares its timestamp with probability ``pi_0`` (the zero-gap share),
and sides, price-change classes and size bins are i.i.d. categorical (add-half smoothed counts)
within the :class:`~finar.ticks.events.EventSpace`. Their log-likelihoods are in the same units
as :class:`~finar.ticks.TickModel`'s (see :mod:`finar.ticks.events`):
``log p(e_i) = log p(dt_i) + log p(side_i) + log p(dp_i) + log p(size_i)`` with
``log p(dt_i) = log pi_0`` for a shared timestamp and ``log(1 - pi_0) + log f(dt_i | past arrivals)``
otherwise, ``f`` the point process's conditional density of the next arrival (per second).

The exponential Hawkes fit is finar's own maximum-likelihood code (the ``tick`` package's fitters
fail on Python 3.11): the log-likelihood is computed in ``O(n)`` with ``np.logaddexp.accumulate``
and maximised over ``log mu, log alpha, log beta`` by L-BFGS-B.

All three follow the event-model contract (:class:`finar.ticks.contract.EventModel`): parameters,
``clone`` and ``repr`` from the estimator kernel, ``save(path)`` and ``finar.models.load(path)``
through the one model-file format (plain values only, read with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import math
import warnings
from abc import abstractmethod
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, signal, special

from finar._estimator import check_int, check_seed, plain, register
from finar.errors import ConvergenceWarning, DataError
from finar.ticks.contract import EventModel
from finar.ticks.events import Events, EventSpace

__all__ = ["EmpiricalMarks", "Hawkes", "ACD", "SeasonalPoisson"]


class EmpiricalMarks:
    """i.i.d. zero-gap flag, side, price-change class and size bin, from smoothed counts."""

    def fit(self, ev: Events, space: EventSpace) -> EmpiricalMarks:
        s = ev.scored
        self.p_zero_ = float(np.mean(ev.dt[s] == 0))
        self.p_buy_ = float((np.sum(ev.side[s] > 0) + 0.5) / (s.sum() + 1))
        dp = np.bincount(space.dp_class(ev.dp[s]), minlength=space.n_dp) + 0.5
        size = np.bincount(space.size_bin(ev.size[s]), minlength=space.n_size) + 0.5
        self.log_dp_, self.log_size_ = np.log(dp / dp.sum()), np.log(size / size.sum())
        return self

    def log_prob(self, ev: Events, space: EventSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log-probabilities of side, dp and size of every event (within-class terms included)."""
        in_dp, in_size = space.log_mark(ev.dp, ev.size)
        side = np.where(ev.side > 0, math.log(self.p_buy_), math.log1p(-self.p_buy_))
        dp = self.log_dp_[space.dp_class(ev.dp)] + in_dp
        return side, dp, self.log_size_[space.size_bin(ev.size)] + in_size

    def draw(self, n: int, space: EventSpace, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """``n`` i.i.d. (side, dp class, size bin)."""
        side = np.where(rng.random(n) < self.p_buy_, 1, -1).astype(np.int8)
        dpc = rng.choice(space.n_dp, size=n, p=np.exp(self.log_dp_))
        sb = rng.choice(space.n_size, size=n, p=np.exp(self.log_size_))
        return side, dpc, sb

    def get_state(self) -> dict[str, Any]:
        """The fitted probabilities as plain values (for model files)."""
        return {"p_zero": self.p_zero_, "p_buy": self.p_buy_, "log_dp": plain(self.log_dp_),
                "log_size": plain(self.log_size_)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EmpiricalMarks:
        """The marks :meth:`get_state` describes."""
        marks = cls()
        marks.p_zero_, marks.p_buy_ = float(state["p_zero"]), float(state["p_buy"])
        marks.log_dp_ = np.asarray(state["log_dp"], dtype=float)
        marks.log_size_ = np.asarray(state["log_size"], dtype=float)
        return marks


def _arrivals(ev: Events) -> list[np.ndarray]:
    """Distinct trade times of each session, in seconds from its first trade."""
    secs = np.cumsum(np.where(ev.scored, ev.dt, 0.0))
    start = np.maximum.accumulate(np.where(ev.scored, 0, np.arange(len(ev))))
    secs = secs - secs[start]
    new = ~ev.scored | (ev.dt > 0)
    return [secs[new & (ev.session == k)] for k in np.unique(ev.session)]


class _ArrivalModel(EventModel):
    """Arrivals by a point process, marks by :class:`EmpiricalMarks` (see the module docstring).

    A subclass fits and scores the arrivals (``_fit_arrivals``, ``_log_density`` or
    ``_log_densities``, ``_simulate``) and lists its fitted arrival parameters for model files
    (``_arrival_state``, ``_set_arrival_state``); fitting, scoring, sampling and files of the
    whole event stream live here.
    """

    def __init__(self, max_ticks: int = 10, session_gap: str = "30min") -> None:
        self.max_ticks = max_ticks
        self.session_gap = session_gap

    def _validate(self) -> None:
        check_int("max_ticks", self.max_ticks, least=1)
        bad = DataError(f"session_gap must be a positive duration such as '30min', got {self.session_gap!r}")
        try:
            gap = pd.Timedelta(self.session_gap)
        except (TypeError, ValueError) as exc:
            raise bad from exc
        if not gap > pd.Timedelta(0):  # NaT compares False
            raise bad

    def fit(self, trades: pd.DataFrame) -> _ArrivalModel:
        """Fit arrivals and marks to a trades frame (``time`` index, ``price``, ``size``, ``side``)."""
        self._validate()
        space = EventSpace(int(self.max_ticks), self.session_gap).fit(trades)
        ev = space.encode(trades)
        self.space_ = space
        self.marks_ = EmpiricalMarks().fit(ev, space)
        self.last_ = (ev.index[-1], float(trades["price"].iloc[-1]))
        self._fit_arrivals(_arrivals(ev))
        return self

    @abstractmethod
    def _fit_arrivals(self, sessions: list[np.ndarray]) -> None: ...

    def _log_density(self, a: np.ndarray) -> np.ndarray:
        """Log density (per second) of arrivals ``a[1:]`` given the earlier ones, one session.

        A subclass implements this or overrides :meth:`_log_densities` (ACD fits all sessions at once)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither _log_density nor _log_densities")

    def _log_densities(self, sessions: list[np.ndarray]) -> np.ndarray:
        """:meth:`_log_density` of every session, concatenated."""
        return np.concatenate([self._log_density(a) if a.size > 1 else np.empty(0) for a in sessions])

    @abstractmethod
    def _simulate(self, rng: np.random.Generator) -> np.ndarray:
        """Arrival times (seconds from the open) of one session."""

    def log_prob(self, trades: pd.DataFrame) -> pd.DataFrame:
        """Per-trade log-likelihood in nats (columns ``time side dp size total``); NaN for the first
        trade of each session, which is conditioned on. Units: see :mod:`finar.ticks.events`."""
        self._check_fitted("log_prob")
        ev = self.space_.encode(trades)
        side, dp, size = self.marks_.log_prob(ev, self.space_)
        lt = np.full(len(ev), math.log(self.marks_.p_zero_) if self.marks_.p_zero_ > 0 else -np.inf)
        dens = self._log_densities(_arrivals(ev))  # arrivals 1.. of each session
        pos = ev.scored & (ev.dt > 0)
        lt[pos] = math.log1p(-self.marks_.p_zero_) + dens
        out = pd.DataFrame({"time": lt, "side": side, "dp": dp, "size": size}, index=ev.index)
        out["total"] = out.sum(axis=1)
        out[~ev.scored] = np.nan
        return out

    def sample(self, n_events: int = 100_000, seed: int | None = None) -> pd.DataFrame:
        """``n_events`` synthetic trades: whole sessions after the fitted data, the last one cut.

        The same ``seed`` gives the same trades."""
        self._check_fitted("sample")
        n_events = check_int("n_events", n_events, least=1)
        rng = np.random.default_rng(check_seed(seed))
        p0, secs, session, total = self.marks_.p_zero_, [], [], 0
        while total < n_events:
            a = self._simulate(rng)
            k = rng.geometric(1 - p0, a.size) if p0 > 0 else np.ones(a.size, np.int64)
            secs.append(np.repeat(a, k))
            session.append(np.full(int(k.sum()), len(session)))
            total += int(k.sum())
        secs_, sess = np.concatenate(secs)[:n_events], np.concatenate(session)[:n_events]
        side, dpc, sb = self.marks_.draw(n_events, self.space_, rng)
        dp, size = self.space_.draw_marks(dpc, sb, rng)
        return self.space_.decode(secs_, side, dp, size, sess, *self.last_)

    # ---- model files ---------------------------------------------------------------------------
    @abstractmethod
    def _arrival_state(self) -> dict[str, Any]:
        """The fitted arrival parameters as plain values."""

    @abstractmethod
    def _set_arrival_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_arrival_state` wrote (``space_`` is already restored)."""

    def _get_state(self) -> dict[str, Any]:
        last_time, last_price = self.last_
        return plain({"space": self.space_.get_state(), "marks": self.marks_.get_state(),
                      "last_time_ns": int(last_time.value),  # UTC nanoseconds for aware stamps
                      "last_price": last_price, "arrivals": self._arrival_state()})

    def _set_state(self, state: dict[str, Any]) -> None:
        self.space_ = EventSpace.from_state(state["space"])
        self.marks_ = EmpiricalMarks.from_state(state["marks"])
        last = pd.Timestamp(int(state["last_time_ns"]), unit="ns")
        if self.space_.tz_ is not None:
            last = last.tz_localize("UTC").tz_convert(self.space_.tz_)
        self.last_ = (last, float(state["last_price"]))
        self._set_arrival_state(state["arrivals"])


@register("hawkes")
class Hawkes(_ArrivalModel):
    """Exponential Hawkes arrivals, ``lambda(t) = mu + alpha sum_{t_j < t} exp(-beta (t - t_j))``,
    by maximum likelihood; marks as in :class:`EmpiricalMarks`.

    The arrival log-likelihood of a session, conditioned on its first arrival, is
    ``sum_m [log lambda(t_m) - mu (t_m - t_{m-1}) - alpha/beta (R_{m-1} + 1 - R_m)]`` with
    ``R_m = sum_{j<m} exp(-beta (t_m - t_j))``.

    Parameters
    ----------
    max_ticks : int, default 10
        Price changes beyond ``+-max_ticks`` ticks fall in the edge classes of the event space.
    session_gap : str, default '30min'
        A pause longer than this, or a new calendar day, starts a session.

    Attributes
    ----------
    mu_, alpha_, beta_ : float
        Baseline rate (per second), jump and decay of the intensity; ``branching_ = alpha_ / beta_``.

    Examples
    --------
    >>> import finar
    >>> t = finar.ticks.simulate(n_events=20_000, seed=0)
    >>> h = Hawkes().fit(t)
    >>> 0 < h.branching_ < 1
    True
    """

    @staticmethod
    def _terms(a: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
        acc = np.logaddexp.accumulate(beta * a)  # log sum_{j<=m} exp(beta t_j)
        r = np.exp(acc[:-1] - beta * a[1:])  # R_m for m >= 1
        r_prev = np.r_[0.0, r[:-1]]  # R_{m-1}, R_0 = 0
        return r, r_prev

    def _ll(self, theta: np.ndarray, sessions: list[np.ndarray]) -> float:
        mu, alpha, beta = np.exp(theta)
        total = 0.0
        for a in sessions:
            if a.size < 2:
                continue
            r, r_prev = self._terms(a, beta)
            total += np.sum(np.log(mu + alpha * r) - mu * np.diff(a) - alpha / beta * (r_prev + 1 - r))
        return float(total)

    def _fit_arrivals(self, sessions: list[np.ndarray]) -> None:
        n = sum(max(a.size - 1, 0) for a in sessions)
        span = sum(a[-1] - a[0] for a in sessions if a.size > 1)
        x0 = np.log([0.5 * n / span, 0.5 * 1.0, 1.0])
        res = optimize.minimize(lambda th: -self._ll(th, sessions) / n, x0, method="L-BFGS-B",
                                bounds=[(-20, 10), (-20, 10), (-7, 7)])
        if not res.success:
            warnings.warn(f"Hawkes MLE did not converge: {res.message}", ConvergenceWarning, stacklevel=3)
        self.mu_, self.alpha_, self.beta_ = (float(v) for v in np.exp(res.x))
        self.branching_ = self.alpha_ / self.beta_
        self.session_length_ = self.space_.session_length_

    def _log_density(self, a: np.ndarray) -> np.ndarray:
        mu, alpha, beta = self.mu_, self.alpha_, self.beta_
        r, r_prev = self._terms(a, beta)
        return np.log(mu + alpha * r) - mu * np.diff(a) - alpha / beta * (r_prev + 1 - r)

    def _simulate(self, rng: np.random.Generator) -> np.ndarray:
        L = self.session_length_
        times = gen = rng.uniform(0, L, rng.poisson(self.mu_ * L))
        while gen.size:  # cluster representation: Poisson(branching) children at Exp(beta) delays
            kids = rng.poisson(self.branching_, gen.size)
            gen = np.repeat(gen, kids) + rng.exponential(1 / self.beta_, kids.sum())
            times = np.concatenate([times, gen[gen < L]])
            gen = gen[gen < L]
        return np.sort(times)

    def _arrival_state(self) -> dict[str, Any]:
        return {"mu": self.mu_, "alpha": self.alpha_, "beta": self.beta_}

    def _set_arrival_state(self, state: dict[str, Any]) -> None:
        self.mu_, self.alpha_, self.beta_ = (float(state[k]) for k in ("mu", "alpha", "beta"))
        self.branching_ = self.alpha_ / self.beta_
        self.session_length_ = self.space_.session_length_


@register("acd")
class ACD(_ArrivalModel):
    """Weibull ACD(1,1) durations (Engle and Russell 1998) between arrivals; marks as in
    :class:`EmpiricalMarks`.

    ``x_m = psi_m eps_m``, ``psi_m = omega + a x_{m-1} + b psi_{m-1}``, ``eps`` Weibull with shape
    ``k`` and mean 1, so ``f(x) = k/theta (x/theta)^(k-1) exp(-(x/theta)^k)``,
    ``theta = psi / Gamma(1 + 1/k)``. Sessions are chained (the first duration of a session
    follows the last of the previous one).

    Parameters
    ----------
    max_ticks : int, default 10
        Price changes beyond ``+-max_ticks`` ticks fall in the edge classes of the event space.
    session_gap : str, default '30min'
        A pause longer than this, or a new calendar day, starts a session.

    Attributes
    ----------
    omega_, a_, b_, k_ : float
        ``omega``, ``a``, ``b`` of the duration recursion (``a + b < 1``) and the Weibull shape.

    Examples
    --------
    >>> import finar
    >>> t = finar.ticks.simulate(n_events=20_000, seed=0)
    >>> m = ACD().fit(t)
    >>> bool(m.a_ + m.b_ < 1)
    True
    """

    def _psi(self, x: np.ndarray, omega: float, a: float, b: float) -> np.ndarray:
        mean = omega / max(1 - a - b, 1e-6)
        u = omega + a * np.r_[mean, x[:-1]]
        psi, _ = signal.lfilter([1.0], [1.0, -b], u, zi=[b * mean])
        return np.maximum(psi, 1e-12)

    @staticmethod
    def _weibull(x: np.ndarray, psi: np.ndarray, k: float) -> np.ndarray:
        theta = psi / math.gamma(1 + 1 / k)
        with np.errstate(divide="ignore"):
            return math.log(k) - np.log(theta) + (k - 1) * np.log(x / theta) - (x / theta) ** k

    def _unpack(self, th: np.ndarray) -> tuple[float, float, float, float]:
        omega, k = math.exp(th[0]), math.exp(th[3])
        a, b = special.expit(th[1]), special.expit(th[2])
        b = b * (1 - a)  # a + b < 1: stationary
        return omega, a, b, k

    def _fit_arrivals(self, sessions: list[np.ndarray]) -> None:
        x = np.concatenate([np.diff(a) for a in sessions])
        x = np.maximum(x, 1e-9)

        def nll(th: np.ndarray) -> float:
            omega, a, b, k = self._unpack(th)
            return -float(np.mean(self._weibull(x, self._psi(x, omega, a, b), k)))

        m = float(x.mean())
        res = optimize.minimize(nll, np.array([math.log(0.1 * m), -2.0, 1.5, math.log(0.7)]),
                                method="L-BFGS-B", bounds=[(-30, 10), (-10, 10), (-10, 10), (-3, 2)])
        self.omega_, self.a_, self.b_, self.k_ = self._unpack(res.x)
        self.last_x_ = float(x[-1])
        self.session_length_ = self.space_.session_length_

    def _log_densities(self, sessions: list[np.ndarray]) -> np.ndarray:
        x = np.maximum(np.concatenate([np.diff(a) for a in sessions]), 1e-9)
        return self._weibull(x, self._psi(x, self.omega_, self.a_, self.b_), self.k_)

    def _simulate(self, rng: np.random.Generator) -> np.ndarray:
        L, t, out = self.session_length_, 0.0, []
        psi, x = self.omega_ / max(1 - self.a_ - self.b_, 1e-6), self.last_x_
        scale = 1 / math.gamma(1 + 1 / self.k_)
        while True:
            psi = self.omega_ + self.a_ * x + self.b_ * psi
            x = psi * scale * rng.weibull(self.k_)
            t += x
            if t >= L:
                return np.asarray(out)
            out.append(t)

    def _arrival_state(self) -> dict[str, Any]:
        return {"omega": self.omega_, "a": self.a_, "b": self.b_, "k": self.k_, "last_x": self.last_x_}

    def _set_arrival_state(self, state: dict[str, Any]) -> None:
        self.omega_, self.a_, self.b_, self.k_ = (float(state[k]) for k in ("omega", "a", "b", "k"))
        self.last_x_ = float(state["last_x"])
        self.session_length_ = self.space_.session_length_


@register("seasonalpoisson")
class SeasonalPoisson(_ArrivalModel):
    """Inhomogeneous Poisson arrivals with a piecewise-constant intraday rate (``n_bins`` bins over
    the session, estimated as arrivals / exposure); marks as in :class:`EmpiricalMarks`.

    Parameters
    ----------
    n_bins : int, default 26
        Intraday bins of the rate (26 bins of 15 minutes over a 6.5-hour session).
    max_ticks : int, default 10
        Price changes beyond ``+-max_ticks`` ticks fall in the edge classes of the event space.
    session_gap : str, default '30min'
        A pause longer than this, or a new calendar day, starts a session.

    Attributes
    ----------
    grid_ : ndarray
        Bin edges in seconds from the session open; ``rates_`` the arrival rate per second in each.

    Examples
    --------
    >>> import finar
    >>> t = finar.ticks.simulate(n_events=20_000, seed=0)
    >>> sp = SeasonalPoisson(n_bins=13).fit(t)
    >>> bool(sp.rates_[0] > sp.rates_[6])  # busier at the open than at midday
    True
    """

    def __init__(self, n_bins: int = 26, max_ticks: int = 10, session_gap: str = "30min") -> None:
        super().__init__(max_ticks, session_gap)
        self.n_bins = n_bins

    def _validate(self) -> None:
        super()._validate()
        check_int("n_bins", self.n_bins, least=1)

    def _fit_arrivals(self, sessions: list[np.ndarray]) -> None:
        L = self.space_.session_length_
        self.grid_ = np.linspace(0, L, int(self.n_bins) + 1)
        counts = np.zeros(int(self.n_bins))
        exposure = np.zeros(int(self.n_bins))
        for a in sessions:
            b = np.clip(np.searchsorted(self.grid_, a[1:], side="right") - 1, 0, int(self.n_bins) - 1)
            counts += np.bincount(b, minlength=int(self.n_bins))
            exposure += np.clip(min(a[-1], L) - self.grid_[:-1], 0, np.diff(self.grid_))
        self.rates_ = (counts + 0.5) / np.maximum(exposure, 1e-9)
        self.cum_ = np.r_[0.0, np.cumsum(self.rates_ * np.diff(self.grid_))]

    def _cum(self, t: np.ndarray) -> np.ndarray:
        """Integrated rate; beyond the session length the last bin's rate continues."""
        inside = np.interp(t, self.grid_, self.cum_)
        return inside + np.maximum(t - self.grid_[-1], 0) * self.rates_[-1]

    def _log_density(self, a: np.ndarray) -> np.ndarray:
        b = np.clip(np.searchsorted(self.grid_, a[1:], side="right") - 1, 0, int(self.n_bins) - 1)
        return np.log(self.rates_[b]) - np.diff(self._cum(a))

    def _simulate(self, rng: np.random.Generator) -> np.ndarray:
        n = rng.poisson(self.cum_[-1])
        return np.sort(np.interp(rng.uniform(0, self.cum_[-1], n), self.cum_, self.grid_))

    def _arrival_state(self) -> dict[str, Any]:
        return {"grid": plain(self.grid_), "rates": plain(self.rates_), "cum": plain(self.cum_)}

    def _set_arrival_state(self, state: dict[str, Any]) -> None:
        self.grid_, self.rates_, self.cum_ = (np.asarray(state[k], dtype=float)
                                              for k in ("grid", "rates", "cum"))
