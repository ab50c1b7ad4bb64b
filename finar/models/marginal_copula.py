"""MarginalCopula: any forecasters' one-step laws joined by one of finar's copulas (Sklar).

Each column ``i`` keeps its own univariate forecaster (a GARCH, a pretrained Transformer, ...),
whose exact one-step predictive law ``F_{i,t}`` (density ``f_{i,t}``) reads only that column's
past; the columns of a day are joined by the copula of a :class:`~finar.models.Copula`,
:class:`~finar.models.DCC` or :class:`~finar.models.NeuralDCC` on the PITs
``u_{t,i} = F_{i,t}(r_{t,i})``:

.. math::

    \\log p(r_t \\mid r_{<t}) = \\sum_i \\log f_{i,t}(r_{t,i}) + \\log c_t(u_{t,1}, \\dots, u_{t,N}),

with ``c_t`` the copula density, whose correlation follows the copula's own recursion on the
past scores ``x = G^{-1}(u)``. Both parts are exact, so ``log_prob`` is the exact joint density
split by the chain rule over columns (as in :class:`~finar.models.copula.CopulaGARCH`: cell
``j`` is column ``j`` given the past and the columns to its left). With GARCH(1,1)-t marginals and
a DCC copula this is :class:`~finar.models.DCC` itself (a test checks the equality); the point is
the other marginals: the forecaster that scores best column by column, with the copula's
correlation dynamics on top.

Fitting is two-step (inference functions for margins): each column's forecaster on its own
series, then the copula on the training PITs of the days on which every marginal is defined
(after the largest ``min_context``). Neural marginals score their training days in-sample, as
GARCH does. Refits (``warm_start``): a marginal that warm-starts (``train__warm_epochs``)
fine-tunes its previous fit, a :class:`~finar.models.NeuralDCC` copula with ``warm_start`` its
network; the rest refit afresh.

Sampling draws the copula's uniforms first (its recursion depends on past scores only, never on
the marginals), then turns each column's uniforms into its path with its forecaster's exact
quantile function given the path so far, ``r_{t+h,i} = F_{i,t+h}^{-1}(u_{t+h,i})``: the paths
have the marginals' exact path laws and the copula's dependence. One day ahead works with
every forecaster that has a predictive law; longer paths need a forecaster whose ``sample``
takes ``uniforms`` (finar's WaveNet and Transformer, and GARCH). ``given`` (stress scenarios)
fixes some columns on the first days and draws the others from the copula's exact conditional
law given their scores.

Examples
--------
>>> import finar
>>> r = finar.returns(finar.load("sp500-stocks")[["SP500", "JPM", "XOM"]]).loc["2010":"2014"]
>>> m = finar.models.MarginalCopula(finar.models.GARCH(vol="gjr", dist="skewt"),
...                                 finar.models.DCC(family="t")).fit(r)
>>> m.sample(r, horizon=5, n_paths=100, seed=0).paths.shape
(100, 5, 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import special

from finar._estimator import check_seed, clone
from finar.data.transforms import check_length
from finar.errors import DataError
from finar.models.base import Exog, Forecaster, check_horizon, check_returns, register
from finar.models.copula import (
    CopulaGARCH,
    ScoreConditionalPredictive,
    from_tail,
    lower_tail,
    normalise,
    t_logpdf,
)
from finar.models.predictive import Predictive
from finar.models.scenarios import Scenarios, future_index

__all__ = ["MarginalConditionalPredictive", "MarginalCopula", "takes_uniforms"]

#: the smallest PIT tail kept: below it ``1 - u`` is float64 rounding, not information
_TAIL_FLOOR = 2.0**-53


def takes_uniforms(model: Forecaster) -> bool:
    """Whether ``model.sample`` can be driven by given uniforms (``sample(..., uniforms=u)``)."""
    return bool(getattr(model, "takes_uniforms", False))


def tails(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PITs ``u`` as the copula reads them: tails ``min(u, 1 - u)`` (floored at float64's
    resolution) and sides ``sign(u - 1/2)``."""
    return np.maximum(np.minimum(u, 1.0 - u), _TAIL_FLOOR), np.sign(u - 0.5)


def recent(model: Forecaster, context: pd.Series) -> pd.Series:
    """The end of ``context`` that ``model``'s next predictions can depend on (all of it when its
    memory is unbounded)."""
    return context if model.memory is None else context.iloc[-max(model.memory, model.min_context, 1):]


def next_predictive(model: Forecaster, context: pd.Series) -> Predictive:
    """``model``'s exact law of the day after ``context``: its predictive over the context and one
    placeholder day, whose value no causal model reads, taking that last day."""
    context = recent(model, context)
    ext = pd.concat([context, pd.Series([0.0], index=future_index(context.index, 1))])
    ext.name = context.name
    return model.predictive(ext).take([len(ext) - 1])


@dataclass(frozen=True, eq=False)
class MarginalConditionalPredictive(ScoreConditionalPredictive):
    """One column's law on each day given the past and some of the same day's other columns, in a
    :class:`MarginalCopula`: its copula score ``x = G^{-1}(F(r))`` (``F`` the column's own one-step
    CDF, ``G`` the copula's univariate CDF) has the copula's closed-form conditional law (Student-t
    with ``df`` degrees of freedom, or normal), location ``loc`` and scale ``scale``; the return is
    ``F^{-1}(G(x))``. ``cdf``, ``ppf`` and ``log_prob`` are exact (``log_prob`` adds the change of
    variables ``log f(r) - log g(x)``); moments as in
    :class:`~finar.models.copula.ScoreConditionalPredictive`. Days without every marginal's context
    are NaN. Built by :meth:`MarginalCopula.conditional_predictive`.
    """

    index: pd.Index
    marginal: Predictive
    copula_nu: float
    df: float
    loc: np.ndarray
    scale: np.ndarray

    def take(self, positions: Sequence[int] | np.ndarray | slice) -> MarginalConditionalPredictive:
        """The distributions of a subset of days (by position)."""
        idx = np.arange(len(self))[positions]
        return MarginalConditionalPredictive(self.index[idx], self.marginal.take(idx), self.copula_nu,
                                             self.df, self.loc[idx], self.scale[idx])

    def _score(self, y: np.ndarray) -> np.ndarray:
        return from_tail(*tails(self.marginal.cdf(np.asarray(y, dtype=float))), self.copula_nu)

    def _value(self, s: np.ndarray) -> np.ndarray:
        x = self.loc + self.scale * s
        p = np.maximum(lower_tail(x, self.copula_nu), _TAIL_FLOOR)
        u = np.where(x > 0, 1.0 - p, p)
        bad = np.isnan(u)  # days without a law: NaN out, not a quantile level
        return np.where(bad, np.nan, self.marginal.ppf(np.where(bad, 0.5, u)))

    def log_prob(self, y: np.ndarray) -> np.ndarray:
        """``log p(y_t | the given columns, past)``: the score's conditional density, ``dx/dr`` included."""
        x = self._score(y)
        s = (x - self.loc) / self.scale
        return (t_logpdf(s, self.df) - np.log(self.scale) + self.marginal.log_prob(np.asarray(y, dtype=float))
                - t_logpdf(x, self.copula_nu))

    def cdf(self, y: np.ndarray) -> np.ndarray:
        """``P(r_t <= y_t | the given columns, past)`` per day: conditional PIT values."""
        s = (self._score(y) - self.loc) / self.scale
        return special.ndtr(s) if not np.isfinite(self.df) else special.stdtr(self.df, s)

    def _cdf_grid(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([self.cdf(x[:, m]) for m in range(x.shape[1])])


@register("marginalcopula")
class MarginalCopula(Forecaster):
    """Each column's own forecaster joined by a copula (two-step, exact joint density).

    Parameters
    ----------
    marginal : Forecaster, default GARCH(dist='t')
        The univariate forecaster of every column (cloned per column); it needs an exact
        predictive law (tag ``'predictive'``).
    copula : Copula, DCC or NeuralDCC, default DCC(family='t')
        Supplies the copula (its marginal settings are not used): static Gaussian or t, DCC(1,1),
        or the neural-gated asymmetric DCC.

    Attributes
    ----------
    marginals_ : dict of str to Forecaster
        The fitted forecaster of each column.
    copula_ : CopulaGARCH
        The fitted copula (``a_``, ``b_``, ``nu_``, ``qbar_``, ...).
    columns_ : list of str
    n_obs_ : int
        Training days; the copula was fitted on the last ``n_obs_ - min_context`` of them.
    """

    tags: ClassVar[frozenset[str]] = frozenset({"predictive", "joint"})

    def __init__(self, marginal: Forecaster | None = None, copula: CopulaGARCH | None = None) -> None:
        self.marginal = marginal
        self.copula = copula

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        from finar.models.dcc import DCC
        from finar.models.garch import GARCH
        from finar.models.transformer import Transformer

        tiny = Transformer._tiny_params()[0]
        return [{"marginal": GARCH(vol="gjr", dist="t"), "copula": DCC(family="t")},
                {"marginal": Transformer(**tiny), "copula": DCC(family="gaussian")}]

    def _parts(self) -> tuple[Forecaster, CopulaGARCH]:
        from finar.models.dcc import DCC
        from finar.models.garch import GARCH

        marginal = GARCH(dist="t") if self.marginal is None else self.marginal
        copula = DCC(family="t") if self.copula is None else self.copula
        if (not isinstance(marginal, Forecaster) or "predictive" not in marginal.tags
                or "joint" in marginal.tags):
            raise DataError(f"marginal must be a univariate finar forecaster with an exact predictive law, "
                            f"got {marginal!r}")
        if not isinstance(copula, CopulaGARCH):
            raise DataError(f"copula must be a finar Copula, DCC or NeuralDCC, got {copula!r}")
        return marginal, copula

    @property
    def min_context(self) -> int:
        marginals = getattr(self, "marginals_", None)
        if marginals:
            return max(m.min_context for m in marginals.values())
        return self._parts()[0].min_context

    @property
    def min_fit_obs(self) -> int:
        marginal = self._parts()[0]
        return max(int(getattr(marginal, "min_fit_obs", 2)), marginal.min_context + CopulaGARCH.min_fit_obs)

    @property
    def warm_start(self) -> bool:
        """Whether a refit fine-tunes the previous fit: True when the marginal or the copula
        warm-starts; :func:`finar.evaluation.joint.joint_backtest` then refits in place."""
        marginal, copula = self._parts()
        return bool(getattr(marginal, "warm_start", False) or getattr(copula, "warm_start", False))

    # ---- fitting ----------------------------------------------------------------------
    def fit(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> MarginalCopula:
        """Fit each column's forecaster, then the copula on their training PITs."""
        marginal, copula = self._parts()
        self._no_exog(exog)
        frame = check_returns(r, fitting=True)
        check_length(frame, self.min_fit_obs, what=f"fitting {type(self).__name__}")
        columns = [str(c) for c in frame.columns]
        previous = getattr(self, "marginals_", None) or {}
        same = repr(marginal)

        def start(col: str) -> Forecaster:
            p = previous.get(col)  # the previous fit of the same specification, if it warm-starts
            warm = p is not None and repr(p) == same and getattr(p, "warm_start", False)
            return p if warm else clone(marginal)

        self.marginals_ = {c: start(c).fit(frame[col]) for c, col in zip(columns, frame.columns, strict=True)}
        old = getattr(self, "copula_", None)
        warm = old is not None and repr(old) == repr(copula) and getattr(old, "warm_start", False)
        self.copula_ = old if warm else clone(copula)
        self._cache = None
        _, u, _ = self._marginals(frame)
        ok = np.isfinite(u).all(axis=1)
        if not ok.any():
            raise DataError(f"{type(self).__name__}: no training day has every marginal defined")
        self.copula_.fit_copula(*tails(u[ok]), columns)
        # the copula's own marginals are unused here: none, so its state (and files) stay small
        self.copula_.marginals_, self.copula_.series_name_, self.copula_.n_obs_ = {}, None, int(ok.sum())
        self.columns_ = columns
        self.series_name_ = r.name if isinstance(r, pd.Series) else None
        self.n_obs_ = len(frame)
        return self

    def _no_exog(self, exog: Exog) -> None:
        if exog is not None:
            raise DataError(f"{type(self).__name__} takes no exog; drop the argument")

    def _frame(self, r: pd.Series | pd.DataFrame, what: str) -> pd.DataFrame:
        self._check_fitted(what)
        frame = check_returns(r, what="context" if what == "sample" else "r")
        cols = [str(c) for c in frame.columns]
        if cols != self.columns_ and not (len(cols) == 1 and len(self.columns_) == 1):
            raise DataError(f"{type(self).__name__} was fitted on columns {self.columns_} (in that order: "
                            f"the chain rule conditions each column on those before it); got {cols}")
        return frame

    def _marginals(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[Predictive]]:
        """Marginal log densities and PITs (T, N) of ``frame`` (NaN before a marginal's context)
        and each column's predictive laws; the last frame's are kept, so scoring and sampling
        the same frame run each network once."""
        cache = getattr(self, "_cache", None)
        if (cache is not None and frame.index.equals(cache["index"])
                and frame.columns.equals(cache["columns"])
                and np.array_equal(frame.to_numpy(dtype=float), cache["y"])):
            return cache["lp"], cache["u"], cache["preds"]
        y = frame.to_numpy(dtype=float)
        lp, u, preds = np.empty(y.shape), np.empty(y.shape), []
        for j, (col, m) in enumerate(zip(frame.columns, self.marginals_.values(), strict=True)):
            pred = m.predictive(frame[col])
            lp[:, j], u[:, j] = pred.log_prob(y[:, j]), pred.cdf(y[:, j])
            preds.append(pred)
        self._cache = {"columns": frame.columns, "index": frame.index, "y": y, "lp": lp, "u": u,
                       "preds": preds}
        return lp, u, preds

    def _copula_state(self, frame: pd.DataFrame) -> tuple[Any, ...]:
        """Marginal log densities, PITs and predictive laws of ``frame``; the days with every
        marginal defined (``ok``); there, the copula scores ``x`` and correlations ``corr`` (None
        when no day has them)."""
        lp, u, preds = self._marginals(frame)
        ok = np.isfinite(u).all(axis=1)
        if not ok.any():
            return lp, u, preds, ok, None, None
        cop = self.copula_
        x = self._scores(u[ok])
        corr, _ = cop._correlations(x, np.asarray(cop.qbar_, dtype=float), cop.a_, cop.b_)
        return lp, u, preds, ok, x, corr

    def _scores(self, u: np.ndarray) -> np.ndarray:
        return self.copula_._scores(*tails(u), self.copula_.nu_)

    # ---- densities --------------------------------------------------------------------
    def log_prob(self, r: pd.Series | pd.DataFrame, *, exog: Exog = None) -> pd.Series | pd.DataFrame:
        """``log p(r_{t,j} | r_{t,<j}, r_{<t})`` per cell (rows sum to the joint density); NaN on
        days before every marginal has its context."""
        frame = self._frame(r, "log_prob")
        self._no_exog(exog)
        lp, _, _, ok, x, corr = self._copula_state(frame)
        out = np.full(lp.shape, np.nan)
        if x is not None:
            out[ok] = lp[ok] + self.copula_._chain(x, corr)
        values = pd.DataFrame(out, index=frame.index, columns=frame.columns)
        return values.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else values

    def conditional_log_prob(self, r: pd.DataFrame, given: Sequence[str]) -> pd.Series:
        """``log p(r_{t,rest} | r_{t,given}, r_{<t})`` per day, exactly: the other columns' marginal
        densities plus the copula's chain-rule terms with the given columns first."""
        frame = self._frame(r, "conditional_log_prob")
        g = self._given_positions(given)
        lp, _, _, ok, x, corr = self._copula_state(frame)
        out = np.full(len(frame), np.nan)
        if x is not None:
            order = np.r_[g, np.setdiff1d(np.arange(frame.shape[1]), g)]
            chain = self.copula_._chain(x[:, order], corr[..., order, :][..., :, order])
            rest = order[len(g):]
            out[ok] = chain[:, len(g):].sum(axis=1) + lp[ok][:, rest].sum(axis=1)
        return pd.Series(out, index=frame.index, name="conditional_log_prob")

    def conditional_cdf(self, r: pd.DataFrame, given: Sequence[str]) -> pd.DataFrame:
        """PITs of the other columns, each given only ``given``'s same-day returns and the past:
        the copula's closed-form conditional law of the column's score (as
        :meth:`finar.models.copula.CopulaGARCH.conditional_cdf`) at the score of its marginal PIT.
        Uniform and independent over days when the model is right."""
        frame = self._frame(r, "conditional_cdf")
        g = self._given_positions(given)
        rest = np.setdiff1d(np.arange(frame.shape[1]), g)
        _, _, _, ok, x, corr = self._copula_state(frame)
        out = np.full((len(frame), len(rest)), np.nan)
        if x is not None:
            out[ok] = self.copula_._conditional_pits(x, corr, g)
        return pd.DataFrame(out, index=frame.index, columns=frame.columns[rest])

    def conditional_predictive(self, r: pd.DataFrame, *, given: str = "others",
                               exog: Exog = None) -> dict[str, MarginalConditionalPredictive]:
        """Each column's one-step law given the past *and* the same day's other columns
        (``given='others'``) or the columns to its left (``'left'``, whose log density is the cell
        of :meth:`log_prob`), exactly: the copula's conditional law of the column's score (as in
        :meth:`finar.models.copula.CopulaGARCH.conditional_predictive`) mapped through the
        column's own forecaster. :class:`finar.AnomalyDetector` uses it with ``given=``."""
        frame = self._frame(r, "conditional_predictive")
        self._no_exog(exog)
        if given not in ("others", "left"):
            raise DataError(f"given must be 'others' or 'left', got {given!r}")
        _, u, preds, ok, x, corr = self._copula_state(frame)
        cop = self.copula_
        loc, scale = np.full(u.shape, np.nan), np.full(u.shape, np.nan)
        extra = np.zeros(u.shape[1])
        if x is not None:
            loc[ok], scale[ok], extra = cop._given_laws(x, corr, given)
        return {str(c): MarginalConditionalPredictive(frame.index, preds[j], float(cop.nu_),
                                                      float(cop.nu_ + extra[j]), loc[:, j].copy(),
                                                      scale[:, j].copy())
                for j, c in enumerate(frame.columns)}

    def predictive(self, r: pd.Series | pd.DataFrame, *,
                   exog: Exog = None) -> Predictive | dict[str, Predictive]:
        """Each column's marginal one-step law ``p(r_{t,j} | r_{<t})``: its own forecaster's."""
        frame = self._frame(r, "predictive")
        self._no_exog(exog)
        out = {str(c): m.predictive(frame[c]) for c, m in zip(frame.columns, self.marginals_.values(),
                                                               strict=True)}
        return next(iter(out.values())) if isinstance(r, pd.Series) else out

    def _given_positions(self, given: Sequence[str] | Mapping[str, Any]) -> np.ndarray:
        names = [str(g) for g in given]
        unknown = [g for g in names if g not in self.columns_]
        if unknown or len(set(names)) != len(names) or not names:
            raise DataError(f"given names columns {unknown or names} that are not distinct columns of the "
                            f"model; columns are {self.columns_}")
        return np.array([self.columns_.index(g) for g in names], dtype=int)

    # ---- sampling ---------------------------------------------------------------------
    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None, *, exog: Exog = None, exog_future: Exog = None,
               given: Mapping[str, float | Sequence[float]] | None = None) -> Scenarios:
        """Joint paths: the copula's uniforms, then each column's path from its forecaster's exact
        quantile function given the path so far (see the module docstring).

        Parameters
        ----------
        given : mapping, optional
            Column name -> a return (the first simulated day) or a sequence of returns (the
            first ``len`` days), e.g. ``{"SP500": -5.0}``: those days' other columns are drawn
            from the copula's exact conditional law given the given columns' scores.
        """
        frame = self._frame(context, "sample")
        self._no_exog(exog)
        if exog_future is not None:
            raise DataError(f"{type(self).__name__} takes no exog_future; drop the argument")
        check_length(frame, max(1, self.min_context), what=f"{type(self).__name__}.sample context")
        horizon, n_paths = check_horizon(horizon, n_paths)
        seed = check_seed(seed)
        if horizon > 1:
            lacking = sorted({type(m).__name__ for m in self.marginals_.values() if not takes_uniforms(m)})
            if lacking:
                raise DataError(f"{type(self).__name__}: {lacking} cannot draw paths from given uniforms, so "
                                "only horizon=1 (the next day's exact quantiles) is possible with it")
        fixed = self._given_values(given, horizon, frame)
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        cop = self.copula_
        qbar = np.asarray(cop.qbar_, dtype=float)
        _, u_ctx, _ = self._marginals(frame)
        ok = np.isfinite(u_ctx).all(axis=1)
        _, q = cop._correlations(self._scores(u_ctx[ok]), qbar, cop.a_, cop.b_, normalised=False)
        corr_next = normalise(q)
        dynamic = not (cop.a_ == 0.0 and cop.b_ == 0.0)
        n_cols = frame.shape[1]
        u = np.empty((n_paths, horizon, n_cols))
        for h in range(horizon):
            corr = corr_next if h == 0 or not dynamic else normalise(q)
            if h < len(fixed):
                g, p_g, sign_g = fixed[h]
                x, p, sign = cop._draw_given(corr, g, np.broadcast_to(p_g, (n_paths, len(g))),
                                             np.broadcast_to(sign_g, (n_paths, len(g))), rng)
            else:
                x, p, sign = cop._draw_scores(corr, rng, n_paths)
            p = np.maximum(p, _TAIL_FLOOR)
            u[:, h] = np.where(sign > 0, 1.0 - p, p)
            if dynamic:
                q = cop._q_update(q, x, qbar)
        paths = np.empty((n_paths, horizon, n_cols))
        values = self._given_paths(given)
        for j, (col, m) in enumerate(zip(frame.columns, self.marginals_.values(), strict=True)):
            ctx = frame[col]
            k = len(values.get(str(col), ()))
            if k:  # the given days, exactly, and the column's path on from them
                paths[:, :k, j] = values[str(col)]
                ctx = pd.concat([ctx, pd.Series(values[str(col)], index=future_index(ctx.index, k))])
            if k < horizon:
                paths[:, k:, j] = self._drive(m, ctx, u[:, k:, j])
        return Scenarios(paths, future_index(frame.index, horizon), [str(c) for c in frame.columns],
                         seed=seed, joint=True)

    def next_day_scenarios(self, r: pd.DataFrame, positions: Sequence[int], n_paths: int,
                           seeds: Sequence[int]) -> np.ndarray:
        """One-day joint scenarios ``(len(positions), n_paths, N)`` for the days at ``positions`` of
        ``r``, each given only the days before it, from one pass of each marginal over ``r``: row
        ``k`` holds the draws of ``sample(r.iloc[:positions[k]], 1, n_paths, seeds[k])`` (the same
        uniforms; for networks equal up to float rounding, their windows being batched
        differently). :func:`finar.evaluation.joint.joint_backtest` uses it."""
        frame = self._frame(r, "next_day_scenarios")
        _, _, preds, ok, _, corr = self._copula_state(frame)
        first = int(np.argmax(ok))
        cop = self.copula_
        out = np.empty((len(positions), check_horizon(1, n_paths)[1], frame.shape[1]))
        for k, (t, s) in enumerate(zip(positions, seeds, strict=True)):
            if not first <= t < len(frame) or not ok[t]:
                raise DataError(f"next_day_scenarios: position {t} needs every marginal's context before it")
            rng = np.random.default_rng(np.random.SeedSequence(check_seed(s)))
            _, p, sign = cop._draw_scores(corr if corr.ndim == 2 else corr[t - first], rng, n_paths)
            p = np.maximum(p, _TAIL_FLOOR)
            uu = np.where(sign > 0, 1.0 - p, p)
            for j, pred in enumerate(preds):
                out[k, :, j] = pred.take([t]).ppf(uu[:, j:j + 1])[:, 0]
        return out

    @staticmethod
    def _drive(m: Forecaster, context: pd.Series, u: np.ndarray) -> np.ndarray:
        """Paths ``(n, h)`` of one column from its uniforms ``u`` ``(n, h)``."""
        if u.shape[1] == 1:  # one day: the next day's exact quantile function, for any forecaster
            return next_predictive(m, context).ppf(u)
        return m.sample(context, horizon=u.shape[1], n_paths=len(u), seed=0, uniforms=u).paths[:, :, 0]

    def _given_paths(self, given: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
        if given is None:
            return {}
        return {str(k): np.atleast_1d(np.asarray(v, dtype=float)) for k, v in given.items()}

    def _given_values(self, given: Mapping[str, Any] | None, horizon: int,
                      frame: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per given day ``h``: the given columns' positions and the tails and sides of their PITs
        under their forecasters given the context and the given days before ``h``."""
        if given is None:
            return []
        if not isinstance(given, Mapping) or not given:
            raise DataError("given must be a non-empty mapping of column name -> return(s), "
                            "e.g. {'SP500': -5.0}")
        pos = self._given_positions(given)
        values = self._given_paths(given)
        for name, vals in values.items():
            if vals.ndim != 1 or len(vals) > horizon or not np.isfinite(vals).all():
                raise DataError(f"given[{name!r}] must be a finite return or a sequence of at most horizon "
                                f"= {horizon} returns, got {given[name]!r}")
        marginals = list(self.marginals_.values())
        n_days = max(map(len, values.values()))
        by_day: list[tuple[list[int], list[tuple[float, float]]]] = [([], []) for _ in range(n_days)]
        for name, col in zip(values, pos, strict=True):
            vals, m = values[name], marginals[col]
            ctx = recent(m, frame.iloc[:, int(col)])
            ext = pd.concat([ctx, pd.Series(vals, index=future_index(ctx.index, len(vals)))])
            ext.name = ctx.name
            pit = m.predictive(ext).cdf(ext.to_numpy(dtype=float))[len(ctx):]
            p, sign = tails(pit)
            for h in range(len(vals)):
                by_day[h][0].append(int(col))
                by_day[h][1].append((float(p[h]), float(sign[h])))
        return [(np.array(c), np.array([v[0] for v in ps]), np.array([v[1] for v in ps])) for c, ps in by_day]

    # ---- model files ------------------------------------------------------------------
    def save(self, path: Any, *, overwrite: bool = False) -> Any:
        """Write the fitted model (each column's forecaster and the copula, with their states) to
        ``path``; read it back with :func:`finar.models.load`."""
        from finar._estimator import write_model_file

        self._check_fitted("save")
        for m in (*self.marginals_.values(), self.copula_):
            if not m.registry_name:
                raise DataError(f"{type(m).__name__} is not registered and cannot be saved")
        params = {"marginal": None, "copula": None}
        return write_model_file(path, {"model": self.registry_name, "params": params,
                                       "state": self._get_state()}, overwrite=overwrite)

    def _get_state(self) -> dict[str, Any]:
        from finar._estimator import plain

        def rec(m: Forecaster) -> dict[str, Any]:
            return {"model": m.registry_name, "params": plain(m.get_params(deep=False)),
                    "state": m._get_state()}

        return {"columns": list(self.columns_), "n_obs": self.n_obs_, "series_name": self.series_name_,
                "marginals": [rec(m) for m in self.marginals_.values()], "copula": rec(self.copula_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        from finar._estimator import rebuild

        def build(rec: dict[str, Any]) -> Any:
            m = rebuild(rec["model"], rec["params"])
            m._set_state(rec["state"])
            return m

        self.columns_ = list(state["columns"])
        self.n_obs_ = int(state["n_obs"])
        self.series_name_ = state["series_name"]
        self.marginals_ = {c: build(rec) for c, rec in zip(self.columns_, state["marginals"], strict=True)}
        self.copula_ = build(state["copula"])
        first = next(iter(self.marginals_.values()))
        self.marginal, self.copula = clone(first), clone(self.copula_)
        self._cache = None

    def _check_state(self) -> None:
        if len(self.marginals_) != len(self.columns_):
            raise ValueError(f"{len(self.marginals_)} marginals for {len(self.columns_)} columns")
        for m in (*self.marginals_.values(), self.copula_):
            m._check_state()
