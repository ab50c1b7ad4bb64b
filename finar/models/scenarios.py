"""``finar.Scenarios``: sample paths of future returns and the risk numbers read off them."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from finar.errors import DataError

__all__ = ["Scenarios", "future_index", "portfolio_returns"]


def _infer_freq_offsets() -> contextlib.AbstractContextManager:
    """pandas' future behaviour of ``infer_freq`` (an offset, not a string) where pandas has the
    option, which silences its deprecation warning; both forms go through ``to_offset``."""
    try:
        return pd.option_context("future.infer_freq_returns_offset", True)
    except (KeyError, AttributeError):  # pandas without the option (OptionError is a KeyError)
        return contextlib.nullcontext()


def future_index(index: pd.Index, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after ``index``: business days for daily data.

    A ``DatetimeIndex`` with a frequency (set or inferable) continues with it; one without
    continues in business days. Any other index continues as integers.
    """
    if isinstance(index, pd.DatetimeIndex) and len(index):
        freq = index.freq
        if freq is None and len(index) >= 3:
            try:
                with _infer_freq_offsets():
                    freq = pd.infer_freq(index[-min(len(index), 50):])
            except (TypeError, ValueError):
                freq = None
        offset = pd.tseries.frequencies.to_offset(freq) if freq else pd.offsets.BDay()
        if isinstance(offset, pd.offsets.Day):  # daily data with gaps: stay on business days
            offset = pd.offsets.BDay()
        return pd.date_range(index[-1] + offset, periods=horizon, freq=offset, name="time")
    start = int(index[-1]) + 1 if len(index) and pd.api.types.is_integer_dtype(index) else len(index)
    return pd.RangeIndex(start, start + horizon, name="step")


class Scenarios:
    """Sample paths of future returns from a forecaster, with quantiles and risk measures.

    Parameters
    ----------
    paths : ndarray, shape (n_paths, horizon, n_series)
        Simulated returns, in the units of the data the model was fitted on.
    index : Index
        The ``horizon`` future timestamps.
    columns : sequence of str
        One name per series.
    scale : float, default 100
        Units of the returns (100 = percent); used by :meth:`to_prices`.
    kind : {'log', 'simple'}
        Return kind, used by :meth:`to_prices` and cumulative statistics.
    seed : int, optional
        The seed the paths were drawn with, kept for reports.
    joint : bool, default False
        Whether the columns were drawn jointly (from a model tagged ``"joint"``, such as
        :class:`finar.models.DCC`), so that a path's columns share their shocks. Scenarios of a
        panel from per-column models are independent across columns: their portfolio has no
        correlation and too small a VaR. ``repr`` says which.
    source : str, optional
        What the paths describe when they were derived from other scenarios (e.g. a
        portfolio), for ``repr`` and reports.

    Notes
    -----
    VaR and ES are reported as positive losses: ``var(a) = -q_a`` where ``q_a`` is the
    ``a``-quantile of the return, and ``es(a) = -E[r | r <= q_a]``. With ``cumulative=True``
    they refer to the return accumulated from the first step up to each step.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> sc = Scenarios(np.random.default_rng(0).normal(size=(1000, 5, 1)),
    ...                pd.bdate_range("2024-01-01", periods=5), ["spx"])
    >>> sc.var(0.05).shape
    (5, 1)
    """

    def __init__(self, paths: np.ndarray, index: pd.Index | Sequence[object],
                 columns: Sequence[object], *, scale: float = 100.0, kind: str = "log",
                 seed: int | None = None, joint: bool = False, source: str | None = None) -> None:
        paths = np.asarray(paths, dtype=float)
        if paths.ndim != 3:
            raise DataError(f"paths must be (n_paths, horizon, n_series), got shape {paths.shape}")
        index = pd.Index(index)
        if len(index) != paths.shape[1] or len(columns) != paths.shape[2]:
            raise DataError(
                f"paths of shape {paths.shape} do not match {len(index)} dates and "
                f"{len(columns)} columns"
            )
        if not np.isfinite(paths).all():
            raise DataError("scenario paths contain NaN or infinite values")
        if kind not in ("log", "simple"):
            raise DataError(f"kind must be 'log' or 'simple', got {kind!r}")
        self.paths = paths
        self.index = index
        self.columns = list(columns)
        self.scale = float(scale)
        self.kind = kind
        self.seed = seed
        self.joint = bool(joint)
        self.source = source

    @property
    def dependence(self) -> str:
        """``'joint'``, ``'independent'`` (columns drawn separately) or ``'single'`` (one column)."""
        if self.paths.shape[2] == 1 and self.source is None:
            return "single"
        return "joint" if self.joint else "independent"

    def __repr__(self) -> str:
        n, h, _s = self.paths.shape
        dep = {"joint": "joint columns", "independent": "independent columns"}.get(self.dependence)
        extra = "".join(f", {v}" for v in (dep, self.source) if v)
        return (f"Scenarios(n_paths={n}, horizon={h}, columns={self.columns}, "
                f"start={self.index[0]}, seed={self.seed}{extra})")

    @property
    def n_paths(self) -> int:
        return self.paths.shape[0]

    @property
    def horizon(self) -> int:
        return self.paths.shape[1]

    def _values(self, cumulative: bool) -> np.ndarray:
        if not cumulative:
            return self.paths
        if self.kind == "log":
            return np.cumsum(self.paths, axis=1)
        growth = np.cumprod(1.0 + self.paths / self.scale, axis=1)
        return self.scale * (growth - 1.0)

    def _frame(self, values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=self.index, columns=self.columns)

    def mean(self, cumulative: bool = False) -> pd.DataFrame:
        """Mean return per step and series (cumulative from the first step if asked)."""
        return self._frame(self._values(cumulative).mean(axis=0))

    def std(self, cumulative: bool = False) -> pd.DataFrame:
        """Standard deviation across paths per step and series."""
        return self._frame(self._values(cumulative).std(axis=0, ddof=1))

    def quantile(self, q: float | Sequence[float], cumulative: bool = False) -> pd.DataFrame:
        """Quantiles across paths. A list of ``q`` gives columns ``(q, series)``."""
        qs = np.atleast_1d(np.asarray(q, dtype=float))
        if ((qs <= 0) | (qs >= 1)).any():
            raise DataError(f"quantile levels must lie in (0, 1), got {q!r}")
        values = np.quantile(self._values(cumulative), qs, axis=0)  # (n_q, horizon, n_series)
        if np.ndim(q) == 0:
            return self._frame(values[0])
        cols = pd.MultiIndex.from_product([qs, self.columns], names=["q", "series"])
        return pd.DataFrame(values.transpose(1, 0, 2).reshape(self.horizon, -1),
                            index=self.index, columns=cols)

    def var(self, alpha: float = 0.01, cumulative: bool = False) -> pd.DataFrame:
        """Value at risk at level ``alpha`` as a positive loss: ``-quantile(alpha)``."""
        return -self.quantile(alpha, cumulative=cumulative)

    def es(self, alpha: float = 0.01, cumulative: bool = False) -> pd.DataFrame:
        """Expected shortfall at level ``alpha`` as a positive loss: ``-E[r | r <= q_alpha]``."""
        values = self._values(cumulative)
        q = np.quantile(values, alpha, axis=0)
        tail = np.where(values <= q, values, np.nan)
        return -self._frame(np.nanmean(tail, axis=0))

    def portfolio(self, weights: Sequence[float] | np.ndarray | Mapping[str, float] | pd.Series,
                  name: str = "portfolio") -> Scenarios:
        """The return paths of a portfolio of the columns, rebalanced to ``weights`` every step.

        Each step's portfolio simple return is ``R_p = sum_i w_i R_i`` (the rest, ``1 - sum w``,
        in cash at zero return), in the units and kind of the paths: for log returns in percent,
        ``r_p = 100 log(1 + sum_i w_i (exp(r_i / 100) - 1))``. ``var``, ``es`` and ``quantile``
        of the result are the portfolio's. Only joint scenarios (``joint=True``) give a portfolio
        its diversification right; the result keeps the flag.

        Parameters
        ----------
        weights : sequence, array, mapping or Series
            One weight per column (in column order), or weights by column name (missing names
            weigh 0). Negative weights (short positions) are allowed.
        name : str, default 'portfolio'

        Returns
        -------
        Scenarios
            Paths ``(n_paths, horizon, 1)``.

        Raises
        ------
        DataError
            If the weights do not match the columns or are not finite, or a path loses more
            than everything in one step (``1 + R_p <= 0`` with log returns).
        """
        w = self._weights(weights)
        values = portfolio_returns(self.paths, w, kind=self.kind, scale=self.scale)
        label = f"portfolio of {len(self.columns)} series" + ("" if self.joint else ", drawn independently")
        return Scenarios(values[..., None], self.index, [name], scale=self.scale, kind=self.kind,
                         seed=self.seed, joint=self.joint, source=label)

    def _weights(self, weights: Sequence[float] | np.ndarray | Mapping[str, float] | pd.Series) -> np.ndarray:
        if isinstance(weights, Mapping | pd.Series):
            unknown = [k for k in weights.keys() if k not in self.columns]
            if unknown:
                raise DataError(f"weights name columns {unknown} that the scenarios do not have "
                                f"({self.columns})")
            w = np.array([float(weights.get(c, 0.0)) for c in self.columns])
        else:
            w = np.asarray(weights, dtype=float)
            if w.shape != (len(self.columns),):
                raise DataError(f"weights must have one entry per column ({len(self.columns)}: "
                                f"{self.columns}), got shape {w.shape}")
        if not np.isfinite(w).all():
            raise DataError(f"weights must be finite, got {w.tolist()}")
        return w

    def to_prices(self, last_price: float | Sequence[float] | pd.Series) -> np.ndarray:
        """Price paths ``(n_paths, horizon, n_series)`` starting from ``last_price``."""
        last = np.asarray(
            last_price.reindex(self.columns).to_numpy() if isinstance(last_price, pd.Series)
            else last_price, dtype=float)
        last = np.broadcast_to(last, (self.paths.shape[2],))
        if not (np.isfinite(last).all() and (last > 0).all()):
            raise DataError(f"last_price must be positive and finite, got {last_price!r}")
        if self.kind == "log":
            growth = np.exp(np.cumsum(self.paths / self.scale, axis=1))
        else:
            growth = np.cumprod(1.0 + self.paths / self.scale, axis=1)
        return last * growth

    def to_frame(self) -> pd.DataFrame:
        """Long format: index ``(path, time)``, one column per series; for Parquet/CSV."""
        n, h, s = self.paths.shape
        index = pd.MultiIndex.from_product([np.arange(n), self.index],
                                           names=["path", self.index.name or "time"])
        return pd.DataFrame(self.paths.reshape(n * h, s), index=index, columns=self.columns)


def portfolio_returns(values: np.ndarray, weights: np.ndarray, *, kind: str = "log",
                      scale: float = 100.0) -> np.ndarray:
    """Portfolio returns of ``values`` (..., n_series) with ``weights`` rebalanced every step.

    ``R_p = sum_i w_i R_i`` in simple returns; log returns (``kind='log'``, in units of
    ``1 / scale``) are converted to simple returns and back. The same formula serves scenarios
    (:meth:`Scenarios.portfolio`) and realised returns, so VaR forecasts and outcomes match.
    """
    values = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    if kind == "simple":
        return values @ w
    growth = np.expm1(values / scale) @ w
    if (growth <= -1.0).any():
        raise DataError("a portfolio return is at or below -100% on some step (1 + R_p <= 0), so its log "
                        "return is undefined; check the weights (leverage) or use simple returns")
    return scale * np.log1p(growth)
