"""Ensembles: the mixture of several forecasters' predictive densities, itself a forecaster.

.. math::

    p(r_t \\mid r_{<t}) = \\sum_k w_k \\, p_k(r_t \\mid r_{<t})

Members can be seeds of one network (averaging out initialisation noise, which at ~0.01
nats/day is as large as many claimed gains) or different architectures. The log density is
exact (``logsumexp`` of the members' log densities plus ``log w``); the predictive
distribution is the exact mixture (CDF the weighted sum, quantiles by bisection on it, ES and
CRPS by numerical integration of its distribution function), and scenarios draw each path from
one member chosen with probability ``w_k``, so paths follow the mixture of the members' path laws.

A day is scored only when every member has enough context (``min_context`` is the largest).

Examples
--------
>>> import finar
>>> r = finar.returns(finar.load("sp500")["adj_close"]).loc["2010":"2014"]
>>> ens = finar.models.Ensemble([finar.models.GARCH(dist="t"), finar.models.GARCH(vol="gjr")]).fit(r)
>>> round(float(ens.log_prob(r).mean()), 3) >= round(float(ens.members_[0].log_prob(r).mean()), 3) - 0.05
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from finar._estimator import check_seed, clone, register
from finar.data.transforms import as_frame
from finar.errors import DataError
from finar.models.base import Exog, Forecaster, check_horizon, check_returns
from finar.models.predictive import Predictive
from finar.models.scenarios import Scenarios, future_index

__all__ = ["Ensemble", "JointEnsemble", "MixturePredictive"]

# Gauss-Legendre nodes on (0, 1) for the half-line integrals of the CRPS and ES
_GL_X, _GL_W = np.polynomial.legendre.leggauss(96)
_GL_X, _GL_W = (_GL_X + 1) / 2, _GL_W / 2


class MixturePredictive(Predictive):
    """``sum_k w_k P_k``: the day-by-day mixture of members' predictive distributions."""

    def __init__(self, parts: Sequence[Predictive], weights: np.ndarray) -> None:
        if not parts:
            raise DataError("a mixture needs at least one component")
        self.parts = list(parts)
        self.weights = np.asarray(weights, dtype=float)
        self.index = self.parts[0].index

    def take(self, positions: Any) -> MixturePredictive:
        return MixturePredictive([p.take(positions) for p in self.parts], self.weights)

    def log_prob(self, y: np.ndarray) -> np.ndarray:
        lps = np.stack([p.log_prob(y) for p in self.parts])  # (K, T)
        return logsumexp(lps + np.log(self.weights)[:, None], axis=0)

    def cdf(self, y: np.ndarray) -> np.ndarray:
        return np.tensordot(self.weights, np.stack([p.cdf(y) for p in self.parts]), axes=1)

    def mean(self) -> np.ndarray:
        return np.tensordot(self.weights, np.stack([p.mean() for p in self.parts]), axes=1)

    def std(self) -> np.ndarray:
        means = np.stack([p.mean() for p in self.parts])
        second = np.stack([p.std() ** 2 for p in self.parts]) + means**2
        var = np.tensordot(self.weights, second, axes=1) - self.mean() ** 2
        return np.sqrt(np.maximum(var, 0.0))

    def ppf(self, q: float | np.ndarray) -> np.ndarray:
        """Bisection on the mixture CDF inside the members' quantiles (which bracket it)."""
        qa = np.asarray(q, dtype=float)
        if ((qa <= 0) | (qa >= 1)).any():
            raise DataError(f"quantile levels must lie in (0, 1), got {q!r}")
        qs = np.stack([p.ppf(qa) for p in self.parts])
        lo, hi = qs.min(axis=0), qs.max(axis=0)
        shape = lo.shape
        for _ in range(60):
            mid = (lo + hi) / 2
            c = self._cdf_any(mid)
            below = c < np.broadcast_to(qa, shape) if qa.ndim == 0 else c < qa
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return (lo + hi) / 2

    def _cdf_any(self, x: np.ndarray) -> np.ndarray:
        """The mixture CDF at ``x`` shaped ``(..., T)``."""
        flat = x.reshape(-1, len(self))
        out = np.stack([self.cdf(row) for row in flat])
        return out.reshape(x.shape)

    def _integral(self, start: np.ndarray, sign: float, fn: Any) -> np.ndarray:
        """``int fn(F(x)) dx`` over ``x = start + sign * s``, ``s`` in ``(0, inf)``, per day.

        ``s = c t / (1 - t)`` maps ``(0, 1)`` to the half-line with ``c`` each day's std."""
        c = self.std()
        total = np.zeros(len(self))
        for t, w in zip(_GL_X, _GL_W, strict=True):
            s = c * t / (1 - t)
            total += w * fn(self.cdf(start + sign * s)) * c / (1 - t) ** 2
        return total

    def es(self, alpha: float) -> np.ndarray:
        """``-q + (1/alpha) int_{-inf}^{q} F(x) dx`` (integration by parts of the tail mean)."""
        q = self.ppf(alpha)
        return -q + self._integral(q, -1.0, lambda f: f) / alpha

    def crps(self, y: np.ndarray) -> np.ndarray:
        """``int_{-inf}^{y} F^2 dx + int_{y}^{inf} (1 - F)^2 dx``."""
        y = np.asarray(y, dtype=float)
        return self._integral(y, -1.0, lambda f: f**2) + self._integral(y, 1.0, lambda f: (1 - f) ** 2)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        pick = rng.choice(len(self.parts), size=n, p=self.weights)
        draws = np.stack([p.sample(rng, n) for p in self.parts])  # (K, n, T)
        return np.take_along_axis(draws, pick[None, :, None], axis=0)[0]


@register("ensemble")
class Ensemble(Forecaster):
    """Mixture of the predictive densities of several forecasters.

    Parameters
    ----------
    members : list of Forecaster
        Unfitted (or fitted) models; ``fit`` fits a clone of each.
    weights : sequence of float, optional
        Mixture weights (normalised); equal by default.

    Attributes
    ----------
    members_ : list of Forecaster
        The fitted members.
    weights_ : ndarray
    """

    tags: ClassVar[frozenset[str]] = frozenset({"predictive", "exog"})
    _joint: ClassVar[bool] = False

    def __init__(self, members: Sequence[Forecaster] = (), weights: Sequence[float] | None = None) -> None:
        self.members = members
        self.weights = weights

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        from finar.models.garch import GARCH

        return [{"members": [GARCH(dist="t"), GARCH(vol="gjr", dist="normal")]}]

    def _check(self) -> tuple[list[Forecaster], np.ndarray]:
        members = list(self.members)
        if not members or not all(isinstance(m, Forecaster) for m in members):
            raise DataError("Ensemble needs a non-empty list of finar forecasters as members")
        w = (np.full(len(members), 1.0 / len(members)) if self.weights is None
             else np.asarray(self.weights, float))
        if w.shape != (len(members),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise DataError(f"weights must be {len(members)} non-negative numbers, got {self.weights!r}")
        joint = ["joint" in m.tags for m in members]
        if any(joint) and not self._joint:
            # a day's mixture of joint models must mix whole days, not cells (see JointEnsemble)
            raise DataError("Ensemble mixes univariate forecasters; members "
                            f"{[type(m).__name__ for m, j in zip(members, joint, strict=True) if j]} are "
                            "joint models: use finar.models.JointEnsemble")
        if self._joint and not all(joint):
            raise DataError("JointEnsemble mixes joint models (tag 'joint'); members "
                            f"{[type(m).__name__ for m, j in zip(members, joint, strict=True) if not j]} "
                            "are not: use finar.models.Ensemble, or join them with MarginalCopula")
        return members, w / w.sum()

    @property
    def min_context(self) -> int:
        members = self.members_ if hasattr(self, "members_") else list(self.members)
        return max((m.min_context for m in members), default=0)

    @property
    def memory(self) -> int | None:
        mems = [m.memory for m in (self.members_ if hasattr(self, "members_") else self.members)]
        return None if any(m is None for m in mems) else max(mems, default=0)

    @property
    def min_fit_obs(self) -> int:  # type: ignore[override]
        return max((getattr(m, "min_fit_obs", 2) for m in self.members), default=2)

    @property
    def warm_start(self) -> bool:
        """Whether a refit fine-tunes the fitted members: True when any member warm-starts
        (``train__warm_epochs > 0``). :func:`finar.backtest` then runs the blocks in order."""
        return any(bool(getattr(m, "warm_start", False)) for m in self.members)

    def fit(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> Ensemble:
        """Fit a clone of each member; on a refit of a fitted ensemble, members that warm-start
        refit their own fitted copy (a fine-tune of the previous fit), the others start afresh."""
        members, w = self._check()
        if any("predictive" not in m.tags for m in members):
            raise DataError("every Ensemble member needs an exact predictive distribution (tag 'predictive')")
        kw = {"exog": exog} if exog is not None else {}
        previous = getattr(self, "members_", None)
        if previous is None or len(previous) != len(members):
            previous = [None] * len(members)

        def start(m: Forecaster, p: Forecaster | None) -> Forecaster:
            # the previous fit of the same specification (set_params since then starts afresh)
            same = p is not None and type(p) is type(m) and repr(p) == repr(m)
            return p if same and getattr(p, "warm_start", False) else clone(m)

        self.members_ = [start(m, p).fit(r, **kw) for m, p in zip(members, previous, strict=True)]
        self.weights_ = w
        self.columns_ = [str(c) for c in as_frame(r).columns]
        return self

    def _member_kw(self, m: Forecaster, exog: Exog) -> dict[str, Any]:
        return {"exog": exog} if exog is not None else {}

    def log_prob(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> pd.Series | pd.DataFrame:
        self._check_fitted()
        lps = [as_frame(m.log_prob(r, **self._member_kw(m, exog))) for m in self.members_]
        stack = np.stack([lp.to_numpy(dtype=float) for lp in lps])  # (K, T, N)
        out = logsumexp(stack + np.log(self.weights_)[:, None, None], axis=0)
        out[np.isnan(stack).any(axis=0)] = np.nan
        frame = pd.DataFrame(out, index=lps[0].index, columns=lps[0].columns)
        return frame.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else frame

    def predictive(self, r: pd.Series | pd.DataFrame, *,
                   exog: Exog = None) -> Predictive | dict[str, Predictive]:
        self._check_fitted()
        preds = [m.predictive(r, **self._member_kw(m, exog)) for m in self.members_]
        if isinstance(r, pd.Series):
            return MixturePredictive(preds, self.weights_)
        return {c: MixturePredictive([p[c] for p in preds], self.weights_) for c in preds[0]}

    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None, *, exog: Exog = None, exog_future: Exog = None) -> Scenarios:
        """Each path from one member, drawn with probability ``w_k`` (multinomial counts)."""
        self._check_fitted()
        check_returns(context, what="context")
        horizon, n_paths = check_horizon(horizon, n_paths)
        seed = check_seed(seed)
        ss = np.random.SeedSequence(seed)
        pick_seq, *member_seqs = ss.spawn(len(self.members_) + 1)
        counts = np.random.default_rng(pick_seq).multinomial(n_paths, self.weights_)
        parts, first = [], None
        for m, k, s in zip(self.members_, counts, member_seqs, strict=True):
            if k == 0:
                continue
            kw = {} if exog is None else {"exog": exog, "exog_future": exog_future}
            if "simulates_exog" in m.tags:  # it draws the simulated days' covariates itself
                kw.pop("exog_future", None)
            sc = m.sample(context, horizon=horizon, n_paths=int(k), seed=int(s.generate_state(1)[0]), **kw)
            first = first or sc
            parts.append(sc.paths)
        paths = np.concatenate(parts, axis=0)
        order = np.random.default_rng(pick_seq.spawn(1)[0]).permutation(n_paths)
        return Scenarios(paths[order], first.index, list(first.columns), seed=seed)

    # ---- files: each member as (name, params, state), the ensemble's own params emptied ----------
    def save(self, path: Any, *, overwrite: bool = False) -> Any:
        """Write the fitted ensemble, each member with its state, to ``path`` (an existing file
        only with ``overwrite=True``); read it back with :func:`finar.models.load`."""
        from finar._estimator import plain, write_model_file

        self._check_fitted("save")
        for m in self.members_:
            if not m.registry_name:
                raise DataError(f"Ensemble member {type(m).__name__} is not registered and cannot be saved")
        return write_model_file(path, {"model": self.registry_name,
                                       "params": {"members": [], "weights": plain(self.weights)},
                                       "state": self._get_state()}, overwrite=overwrite)

    def _get_state(self) -> dict[str, Any]:
        from finar._estimator import plain

        return {"weights": self.weights_.tolist(), "columns": list(self.columns_),
                "members": [{"model": m.registry_name, "params": plain(m.get_params(deep=False)),
                             "state": m._get_state()} for m in self.members_]}

    def _set_state(self, state: dict[str, Any]) -> None:
        from finar._estimator import rebuild

        members = []
        for rec in state["members"]:
            m = rebuild(rec["model"], rec["params"])  # checked, and on load's device
            m._set_state(rec["state"])
            members.append(m)
        self.members_ = members
        self.members = [clone(m) for m in members]
        self.weights_ = np.asarray(state["weights"], dtype=float)
        self.columns_ = list(state["columns"])

    def _check_state(self) -> None:
        if self.weights_.shape != (len(self.members_),):
            raise ValueError(f"{self.weights_.size} weights for {len(self.members_)} members")
        for m in self.members_:
            m._check_state()


def systematic_counts(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """How many of ``n`` draws come from each component: systematic sampling, i.e. the points
    ``(u + i) / n`` (``u`` uniform) counted in the cumulative weights. Each draw is marginally from
    the mixture, and component ``k`` gets ``floor(n w_k)`` or ``ceil(n w_k)`` draws (lower variance
    than multinomial counts)."""
    edges = np.cumsum(weights)
    edges[-1] = 1.0
    points = (rng.random() + np.arange(n)) / n
    return np.bincount(np.searchsorted(edges, points, side="right"), minlength=len(weights))


def _n_max(weight: float, n_paths: int) -> int:
    """More draws than systematic counts can give a component of weight ``weight``."""
    return int(np.floor(n_paths * weight)) + 1


@register("joint-ensemble")
class JointEnsemble(Ensemble):
    """Mixture of joint models: each day's vector comes from one member, chosen with probability
    ``w_k``.

    .. math::

        p(r_t \\mid r_{<t}) = \\sum_k w_k \\, p_k(r_t \\mid r_{<t}), \\qquad r_t \\in \\mathbb{R}^N

    Unlike :class:`Ensemble`, which mixes each column's law, the mixture is over the whole day's
    vector, so it keeps each member's dependence between the columns. Everything is exact:

    - ``log_prob`` gives the chain-rule cells of the mixture, ``log p(r_{t,j} | r_{t,<j}, r_{<t})``
      (the log of the weighted sum of the members' densities of ``r_{t,<=j}`` minus that of
      ``r_{t,<j}``); rows sum to the joint log density of the day;
    - ``conditional_log_prob`` and ``conditional_cdf`` given some columns of the day weigh the
      members by their posterior ``w_k p_k(r_{t,given}) / sum``, with ``log p_k(r_{t,given})`` the
      member's joint minus its conditional log density (or, for a member without
      ``conditional_log_prob``, its cells of the given columns when they lead its order);
    - ``sample`` draws each path from one member (systematic counts, see
      :func:`systematic_counts`); with ``given`` (one day) the members are chosen by their
      posterior given those values, then each draws its exact conditional scenarios. Members
      continue their own paths, so multi-day paths follow the mixture of the members' path laws,
      while ``log_prob`` scores the one-step mixture (as :class:`Ensemble`).

    Parameters
    ----------
    members : list of Forecaster
        Joint models (tag ``"joint"``): :class:`~finar.models.DCC`, :class:`~finar.models.NeuralDCC`,
        :class:`~finar.models.MarginalCopula`, :class:`~finar.models.PixelCNN`, ...
    weights : sequence of float, optional
        Mixture weights (normalised); equal by default.

    Examples
    --------
    >>> import finar
    >>> px = finar.load("sp500-stocks")[["SP500", "AAPL", "MSFT"]].loc["2010":"2013"]
    >>> r = finar.returns(px)
    >>> m = finar.models.JointEnsemble([finar.models.DCC(family="t"),
    ...                                 finar.models.Copula(family="gaussian")]).fit(r)
    >>> m.sample(r, horizon=5, n_paths=100, seed=0, given={"SP500": -4.0}).paths.shape
    (100, 5, 3)
    """

    tags: ClassVar[frozenset[str]] = frozenset({"predictive", "joint"})
    _joint: ClassVar[bool] = True

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        from finar.models.copula import Copula
        from finar.models.dcc import DCC

        return [{"members": [DCC(family="t"), Copula(family="gaussian")], "weights": [2, 1]}]

    def _lw(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.weights_)

    def log_prob(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> pd.Series | pd.DataFrame:
        """``log p(r_{t,j} | r_{t,<j}, r_{<t})`` of the mixture per cell; rows sum to the joint."""
        self._check_fitted()
        lps = [as_frame(m.log_prob(r, **self._member_kw(m, exog))) for m in self.members_]
        cells = np.stack([lp.to_numpy(dtype=float) for lp in lps])  # (K, T, N)
        prefix = logsumexp(np.cumsum(cells, axis=2) + self._lw()[:, None, None], axis=0)  # log p(r_{t,<=j})
        out = np.diff(prefix, axis=1, prepend=0.0)
        out[np.isnan(cells).any(axis=(0, 2))] = np.nan
        frame = pd.DataFrame(out, index=lps[0].index, columns=lps[0].columns)
        return frame.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else frame

    def joint_log_prob(self, r: pd.DataFrame | pd.Series, *, exog: Exog = None) -> pd.Series:
        """The day's joint log density, ``log sum_k w_k p_k(r_t | r_{<t})``."""
        self._check_fitted()
        joint = np.stack([m.joint_log_prob(r, **self._member_kw(m, exog)).to_numpy(dtype=float)
                          for m in self.members_])
        out = logsumexp(joint + self._lw()[:, None], axis=0)
        out[np.isnan(joint).any(axis=0)] = np.nan
        return pd.Series(out, index=as_frame(r).index, name="joint_log_prob")

    def _given_terms(self, r: pd.DataFrame, given: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per member and day: the joint log density and ``log p_k(r_{t,given} | r_{<t})``, the
        joint minus the member's ``conditional_log_prob``, or (a member without one, e.g. PixelCNN)
        the sum of its chain-rule cells of the given columns when they lead its order."""
        names, cols = [str(g) for g in given], [str(c) for c in r.columns]
        if not names or len(set(names)) != len(names) or any(g not in cols for g in names):
            raise DataError(f"given must name distinct columns of r ({cols}), got {list(given)}")
        joint, marg = [], []
        for m in self.members_:
            j = m.joint_log_prob(r).to_numpy(dtype=float)
            if hasattr(m, "conditional_log_prob"):
                marg.append(j - m.conditional_log_prob(r, names).to_numpy(dtype=float))
            elif cols[:len(names)] == names:
                marg.append(as_frame(m.log_prob(r))[names].to_numpy(dtype=float).sum(axis=1))
            else:
                raise DataError(f"{type(m).__name__}'s density of {names} alone is exact only when they "
                                f"are the leading columns of its order ({cols[:len(names)]}); reorder the "
                                "columns")
            joint.append(j)
        return np.stack(joint), np.stack(marg)

    def conditional_log_prob(self, r: pd.DataFrame, given: Sequence[str]) -> pd.Series:
        """``log p(r_{t,rest} | r_{t,given}, r_{<t})`` per day, exactly: the mixture's joint log
        density minus the mixture of the members' densities of the given columns."""
        self._check_fitted()
        frame = self._panel(r, "conditional_log_prob")
        joint, marg = self._given_terms(frame, given)
        lw = self._lw()[:, None]
        out = logsumexp(joint + lw, axis=0) - logsumexp(marg + lw, axis=0)
        return pd.Series(out, index=frame.index, name="conditional_log_prob")

    def posterior(self, r: pd.DataFrame, given: Sequence[str]) -> pd.DataFrame:
        """Each member's weight given the past and the day's ``given`` columns, per day:
        ``w_k p_k(r_{t,given} | r_{<t})`` normalised (rows sum to 1; NaN before the context)."""
        self._check_fitted()
        frame = self._panel(r, "posterior")
        _, marg = self._given_terms(frame, given)
        post = marg + self._lw()[:, None]
        post = np.exp(post - logsumexp(post, axis=0))
        return pd.DataFrame(post.T, index=frame.index, columns=[f"member_{k}" for k in range(len(post))])

    def conditional_cdf(self, r: pd.DataFrame, given: Sequence[str]) -> pd.DataFrame:
        """PITs of the other columns, each given only ``given``'s same-day returns and the past:
        the members' conditional CDFs weighed by their :meth:`posterior`."""
        self._check_fitted()
        frame = self._panel(r, "conditional_cdf")
        missing = [type(m).__name__ for m in self.members_ if not hasattr(m, "conditional_cdf")]
        if missing:
            raise DataError(f"conditional_cdf needs every member's conditional CDF; {missing} have none")
        post = self.posterior(frame, given).to_numpy()
        parts = [m.conditional_cdf(frame, given) for m in self.members_]
        out = sum(post[:, [k]] * p.to_numpy(dtype=float) for k, p in enumerate(parts))
        return pd.DataFrame(out, index=frame.index, columns=parts[0].columns)

    def conditional_predictive(self, r: pd.DataFrame, *, given: str = "others", exog: Exog = None) -> Any:
        raise DataError("JointEnsemble has no per-column conditional predictive (its members' weights "
                        "change with each column's conditioning set); use conditional_cdf or "
                        "conditional_log_prob, or a member's conditional_predictive")

    def _panel(self, r: pd.Series | pd.DataFrame, what: str) -> pd.DataFrame:
        if not isinstance(r, pd.Series | pd.DataFrame):
            raise DataError(f"{type(self).__name__}.{what} needs a DataFrame of the model's columns, got "
                            f"{type(r).__name__}")
        check_returns(r, what=what)
        return as_frame(r)

    # ---- scenarios --------------------------------------------------------------------
    def _draw_plan(self, seed: int, n_paths: int,
                   weights: np.ndarray) -> tuple[np.ndarray, list[int], np.random.Generator]:
        """Counts per member, the members' seeds and the shuffling generator of one draw."""
        pick_seq, *member_seqs = np.random.SeedSequence(seed).spawn(len(self.members_) + 1)
        rng = np.random.default_rng(pick_seq)
        counts = systematic_counts(weights, n_paths, rng)
        return counts, [int(s.generate_state(1)[0]) for s in member_seqs], rng

    def _given_weights(self, context: pd.DataFrame, given: Mapping[str, Any]) -> np.ndarray:
        """The members' posterior given the first simulated day's given values."""
        if not isinstance(given, Mapping) or not given:
            raise DataError("given must be a non-empty mapping of column name -> return, "
                            "e.g. {'SP500': -5.0}")
        values = {}
        for name, v in given.items():
            a = np.atleast_1d(np.asarray(v, dtype=float))
            if a.ndim != 1 or not np.isfinite(a).all():
                raise DataError(f"given[{name!r}] must be a finite return, got {v!r}")
            if len(a) > 1:
                raise DataError(f"{type(self).__name__} conditions on the first simulated day only "
                                f"(given[{name!r}] has {len(a)} days): a member's weight needs the "
                                "density of the given paths, which over several days depends on the "
                                "other columns' unknown days")
            values[str(name)] = float(a[0])
        unknown = sorted(set(values) - {str(c) for c in context.columns})
        if unknown:
            raise DataError(f"given names {unknown}, not columns of the context {list(context.columns)}")
        day = pd.DataFrame([[values.get(str(c), 0.0) for c in context.columns]], columns=context.columns,
                           index=future_index(context.index, 1))
        ext = pd.concat([context, day])  # the others' values do not matter: joint - conditional
        post = self.posterior(ext, list(values)).to_numpy()[-1]
        if not np.isfinite(post).all():
            raise DataError("the members' densities of the given values are not finite; is the context "
                            "long enough for every member?")
        return post

    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None, *, exog: Exog = None, exog_future: Exog = None,
               given: Mapping[str, float | Sequence[float]] | None = None) -> Scenarios:
        """Joint paths, each from one member (systematic counts over the weights).

        Parameters
        ----------
        given : mapping, optional
            Column name -> the first simulated day's return, e.g. ``{"SP500": -5.0}``: the members
            are chosen with their posterior given those values, and each draws its exact conditional
            scenarios (see the members' ``sample``)."""
        self._check_fitted()
        frame = self._panel(context, "sample")
        horizon, n_paths = check_horizon(horizon, n_paths)
        seed = check_seed(seed)
        weights = self.weights_ if given is None else self._given_weights(frame, given)
        counts, seeds, rng = self._draw_plan(seed, n_paths, weights)
        kw: dict[str, Any] = {} if given is None else {"given": given}
        if exog is not None or exog_future is not None:
            kw.update(exog=exog, exog_future=exog_future)
        parts, first = [], None
        for j, (m, k, s) in enumerate(zip(self.members_, counts, seeds, strict=True)):
            if k:  # ceil(n w_k) draws, the first k kept: the same draws as next_day_scenarios
                sc = m.sample(frame, horizon=horizon, n_paths=_n_max(weights[j], n_paths), seed=s, **kw)
                first = first or sc
                parts.append(sc.paths[:k])
        paths = np.concatenate(parts, axis=0)[rng.permutation(n_paths)]
        return Scenarios(paths, first.index, list(first.columns), seed=seed, joint=True)

    def next_day_scenarios(self, r: pd.DataFrame, positions: Sequence[int], n_paths: int,
                           seeds: Sequence[int]) -> np.ndarray:
        """One-day joint scenarios ``(len(positions), n_paths, N)``, row ``k`` the draws of
        ``sample(r.iloc[:positions[k]], 1, n_paths, seeds[k])``, from one pass of each member
        (its own ``next_day_scenarios`` where it has one).
        :func:`finar.evaluation.joint.joint_backtest` uses it."""
        self._check_fitted()
        frame = self._panel(r, "next_day_scenarios")
        plans = [self._draw_plan(check_seed(s), n_paths, self.weights_) for s in seeds]
        draws = []
        for j, m in enumerate(self.members_):
            n_j = _n_max(self.weights_[j], n_paths)
            member_seeds = [plan[1][j] for plan in plans]
            if hasattr(m, "next_day_scenarios"):
                draws.append(m.next_day_scenarios(frame, positions, n_j, member_seeds))
            else:
                draws.append(np.stack([m.sample(frame.iloc[:t], 1, n_j, s).paths[:, 0, :]
                                       for t, s in zip(positions, member_seeds, strict=True)]))
        out = np.empty((len(plans), n_paths, frame.shape[1]))
        for i, (counts, _, rng) in enumerate(plans):
            rows = np.concatenate([d[i, :k] for d, k in zip(draws, counts, strict=True)], axis=0)
            out[i] = rows[rng.permutation(n_paths)]
        return out
