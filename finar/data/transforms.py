"""From prices to model inputs: returns, alignment of several series, training windows."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from finar.data.validate import check_index, check_positive_finite
from finar.errors import (
    DataError,
    DuplicateTimestampError,
    MixedTimeZoneError,
    NonFiniteValueError,
    SeriesTooShortError,
    format_rows,
)

__all__ = ["returns", "align", "windows", "as_frame", "check_length"]


def as_frame(x: pd.Series | pd.DataFrame, *, name: str = "r") -> pd.DataFrame:
    """View a Series as a one-column DataFrame (a DataFrame passes through)."""
    if isinstance(x, pd.Series):
        return x.to_frame(name=x.name if x.name is not None else name)
    if isinstance(x, pd.DataFrame):
        return x
    raise DataError(f"expected a pandas Series or DataFrame, got {type(x).__name__}")


def _is_real(x: object) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool | np.bool_)


def _is_whole(x: object) -> bool:
    return _is_real(x) and bool(np.isfinite(x)) and int(x) == x


def check_length(x: pd.Series | pd.DataFrame | np.ndarray, needed: int, *, what: str) -> None:
    """Raise :class:`SeriesTooShortError` when ``x`` has fewer than ``needed`` rows."""
    n = len(x)
    if n < needed:
        raise SeriesTooShortError(
            f"{what} needs at least {needed} observations, got {n}; pass a longer series"
        )


def returns(prices: pd.Series | pd.DataFrame, kind: Literal["log", "simple"] = "log",
            scale: float = 100.0, *, periods: int = 1) -> pd.Series | pd.DataFrame:
    """Returns of a price series, NaN-free, in percent by default.

    ``log``: ``scale * log(p_t / p_{t-periods})``; ``simple``: ``scale * (p_t / p_{t-periods} - 1)``.
    The first ``periods`` rows, which have no previous price, are the only rows removed.

    Parameters
    ----------
    prices : Series or DataFrame
        Positive, finite prices on a sorted, unique ``DatetimeIndex``. Panels with series of
        different lengths must be aligned first (:func:`align`); NaNs are refused, not dropped.
    kind : {'log', 'simple'}
    scale : float, default 100
        100 gives percent, 1 gives fractions. Log densities of models fitted to these returns
        are in the units of ``scale``.
    periods : int, default 1

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500")["adj_close"])
    >>> round(float(r.std()), 2)
    1.2
    """
    if kind not in ("log", "simple"):
        raise DataError(f"kind must be 'log' or 'simple', got {kind!r}")
    if not _is_real(scale) or not np.isfinite(scale) or scale <= 0:
        raise DataError(f"scale must be a positive number, got {scale!r}")
    if not _is_whole(periods) or periods < 1:
        raise DataError(f"periods must be a positive integer, got {periods!r}")
    frame = as_frame(prices, name="price")
    if not frame.columns.is_unique:
        repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise DataError(f"returns: column names repeat: {repeated}; rename them first")
    if isinstance(frame.index, pd.DatetimeIndex):
        check_index(frame.index)
    check_length(frame, periods + 1, what="returns")
    check_positive_finite(frame, frame.columns, what="price")
    values = frame.to_numpy(dtype=float)
    with np.errstate(over="ignore"):
        if kind == "log":
            out = np.log(values[periods:]) - np.log(values[:-periods])
        else:
            out = values[periods:] / values[:-periods] - 1.0
        out = scale * out
    overflow = ~np.isfinite(out).all(axis=1)
    if overflow.any():  # finite prices can still overflow, e.g. a simple return of 1e300 / 1e-300
        rows = frame.index[periods:][overflow]
        raise NonFiniteValueError(
            f"returns overflow to infinity at {format_rows(rows)}; check the prices there for "
            "a scale error (or use kind='log')"
        )
    result = pd.DataFrame(out, index=frame.index[periods:], columns=frame.columns)
    if isinstance(prices, pd.Series):
        return result.iloc[:, 0].rename(prices.name)
    return result


def align(*series: pd.Series | pd.DataFrame, how: Literal["inner", "outer"] = "inner",
          names: list[str] | None = None) -> pd.DataFrame:
    """Put several series on one time index, one column each.

    ``inner`` keeps only timestamps present in every series (the usual choice for a panel of
    returns); ``outer`` keeps all and leaves NaN where a series has no value, for the caller to
    fill explicitly. The number of rows each input loses under ``inner`` is in
    ``result.attrs["dropped"]``. Each input must have sorted, unique timestamps, and zone-aware
    and naive timestamps cannot be mixed (they would match nothing).
    """
    if how not in ("inner", "outer"):
        raise DataError(f"how must be 'inner' or 'outer', got {how!r}")
    if names is not None and len(names) != len(series):
        raise DataError(f"names= has {len(names)} name(s) for {len(series)} series")
    frames = []
    for i, s in enumerate(series):
        f = as_frame(s, name=f"series_{i}")
        if isinstance(f.index, pd.DatetimeIndex):
            check_index(f.index)  # unsorted or repeated timestamps cannot be aligned by label
        elif not f.index.is_unique:
            raise DuplicateTimestampError(
                f"align: input {i} repeats index labels "
                f"{format_rows(f.index[f.index.duplicated()].unique())}; remove the duplicates")
        if names is not None:
            if f.shape[1] != 1:
                raise DataError("names= needs one-column inputs")
            f = f.set_axis([names[i]], axis=1)
        frames.append(f)
    if not frames:
        raise DataError("align needs at least one series")
    aware = {getattr(f.index, "tz", None) is not None for f in frames}
    if len(aware) > 1:  # pandas would align them on an object index and match nothing
        raise MixedTimeZoneError(
            "align: some inputs have zone-aware timestamps and others naive ones; convert them "
            "to one zone first (e.g. index.tz_localize or tz_convert)")
    cols = [c for f in frames for c in f.columns]
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise DataError(f"column names repeat across inputs: {dup}; pass names=")
    out = pd.concat(frames, axis=1, join=how).sort_index()
    # rows of each input whose timestamp is not in the result (a NaN an input already had is
    # not a dropped row)
    out.attrs["dropped"] = {str(c): int((~f.index.isin(out.index)).sum())
                            for f in frames for c in f.columns}
    return out


def windows(x: pd.Series | pd.DataFrame | np.ndarray, length: int, *, stride: int = 1) -> np.ndarray:
    """Overlapping training windows of ``length`` consecutive observations.

    Returns an array ``(n_windows, length, n_series)`` (a copy, float32 for torch). Window ``k``
    covers rows ``k*stride .. k*stride + length - 1``, so the last window ends on the last row
    when ``(n - length) % stride == 0``.
    """
    try:
        values = np.asarray(x.to_numpy() if isinstance(x, pd.Series | pd.DataFrame) else x,
                            dtype=float)
    except (ValueError, TypeError) as exc:
        raise DataError(f"windows needs numbers: {exc}") from exc
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DataError(f"windows expects 1-D or 2-D data, got shape {values.shape}")
    if not _is_whole(length) or length < 1 or not _is_whole(stride) or stride < 1:
        raise DataError(f"length and stride must be positive integers, got {length}, {stride}")
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise NonFiniteValueError(f"windows: non-finite values at rows {format_rows(rows)}")
    check_length(values, length, what=f"windows of length {length}")
    too_big = np.abs(values) > np.finfo(np.float32).max
    if too_big.any():  # the float32 copy would hold inf
        raise NonFiniteValueError(
            f"windows: values beyond float32's range at rows "
            f"{format_rows(np.flatnonzero(too_big.any(axis=1)))}; rescale them first")
    view = np.lib.stride_tricks.sliding_window_view(values, int(length), axis=0)[::int(stride)]
    return np.ascontiguousarray(view.transpose(0, 2, 1), dtype=np.float32)
