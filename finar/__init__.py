"""finar: autoregressive generative models for quantitative finance, with exact likelihoods.

>>> import finar
>>> r = finar.returns(finar.load("sp500")["adj_close"])
>>> m = finar.models.GARCH(dist="t").fit(r)
>>> sc = m.sample(context=r, horizon=20, n_paths=1000, seed=0)

``import finar`` imports neither torch nor plotly: the names that need them (the neural models
of :mod:`finar.models`, :mod:`finar.ticks`, :func:`report`) are imported on first use.
"""

from finar import models
from finar._lazy import lazy_exports
from finar._version import __version__
from finar.anomaly import AnomalyDetector, inject_anomalies
from finar.data import align, datasets, load, returns, windows
from finar.errors import FinarError, FinarWarning
from finar.evaluation import (
    BacktestResult,
    StylizedFacts,
    backtest,
    backtest_panel,
    compare,
    stylized_facts,
)
from finar.models.scenarios import Scenarios

#: names imported on first access (torch or plotly underneath): see :mod:`finar._lazy`
_LAZY = {
    "report": "finar.reporting",
    "ticks": "finar.ticks",
    "testing": "finar.testing",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["__version__", "models", "AnomalyDetector", "inject_anomalies", "load", "datasets", "returns",
           "align", "windows", "Scenarios", "FinarError", "FinarWarning", "backtest", "backtest_panel",
           "compare", "BacktestResult", "stylized_facts", "StylizedFacts", "report", "ticks",
           "testing"]
