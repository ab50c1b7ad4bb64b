"""Several backtests in one table, with Diebold-Mariano tests against a baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from finar.errors import DataError
from finar.evaluation import stattests
from finar.evaluation.backtesting import BacktestResult

__all__ = ["compare"]


def compare(results: Sequence[BacktestResult], baseline: int | str = 0, *,
            es_sims: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per backtest: :meth:`BacktestResult.summary` plus DM tests against ``baseline``.

    ``dm_log_score`` and ``dm_crps`` are Diebold-Mariano statistics (HAC variance) of the daily
    score differences model minus baseline, oriented so that a positive statistic means the
    model is better (higher log score, lower CRPS); ``*_p`` are two-sided p-values.

    Parameters
    ----------
    results : sequence of BacktestResult
        Backtests over the same test days (checked).
    baseline : int or str
        Position or name of the baseline backtest.
    """
    results = list(results)
    if not results:
        raise DataError("compare needs at least one backtest result")
    names = [r.name for r in results]
    if len(set(names)) != len(names):
        raise DataError(f"backtest names repeat: {names}; pass name= to finar.backtest")
    if isinstance(baseline, str):
        if baseline not in names:
            raise DataError(f"baseline {baseline!r} is not one of {names}")
        baseline = names.index(baseline)
    base = results[baseline]
    for r in results:
        if not r.daily.index.equals(base.daily.index):
            raise DataError(f"{r.name!r} and {base.name!r} were scored on different days; "
                            "run both backtests with the same start, end and horizon")
    rows = []
    for r in results:
        row = r.summary(es_sims=es_sims, seed=seed)
        for score, sign in (("log_score", 1.0), ("crps", -1.0)):
            a, b = r.daily[score].to_numpy(), base.daily[score].to_numpy()
            if r is base or np.isnan(a).any() or np.isnan(b).any():
                row[f"dm_{score}"], row[f"dm_{score}_p"] = np.nan, np.nan
                continue
            dm = stattests.diebold_mariano(sign * a, sign * b)
            row[f"dm_{score}"], row[f"dm_{score}_p"] = dm.statistic, dm.p_value
        row["baseline"] = base.name
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")
