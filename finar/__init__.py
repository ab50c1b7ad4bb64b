"""finar: autoregressive generative models for quantitative finance, with exact likelihoods.

>>> import finar
>>> r = finar.returns(finar.load("sp500")["adj_close"])
>>> m = finar.models.GARCH(dist="t").fit(r)
>>> sc = m.sample(context=r, horizon=20, n_paths=1000, seed=0)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("finar")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

from finar import models, ticks
from finar.anomaly import AnomalyDetector, inject_anomalies
from finar.data import align, datasets, load, returns, windows
from finar.errors import FinarError, FinarWarning
from finar.evaluation import BacktestResult, StylizedFacts, backtest, compare, stylized_facts
from finar.models.scenarios import Scenarios
from finar.reporting import report

__all__ = ["__version__", "models", "AnomalyDetector", "inject_anomalies", "load", "datasets", "returns",
           "align", "windows", "Scenarios", "FinarError", "FinarWarning", "backtest", "compare",
           "BacktestResult", "stylized_facts", "StylizedFacts", "report", "ticks"]
