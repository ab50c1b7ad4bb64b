"""What a report runs: models, periods, sizes and seeds, with defaults and a TOML reader.

The defaults follow the protocols (docs/protocols.md), with the settings of :mod:`finar.protocols`: the model
comparison is P1 (test days 2015-01-01 to 2018-12-31 where the data covers them, refit every 20
days, neural models fitted once before the test period, seed 0) and the stylized facts are P3's
(window from 2009-05-01, generators fitted on it and simulated after a 500-day burn-in, lags
1-250), with fewer and shorter paths than the benchmark so that the whole report runs in
minutes. A ``report.toml`` overrides any of it::

    seed = 0
    [data]
    column = "adj_close"
    start = "1999-01-01"
    [backtest]
    start = "2015-01-01"
    refit_every = 20
    [fan]
    horizon = 250
    n_paths = 1000
    [facts]
    n_paths = 300
    length = 1500
    [anomaly]
    model = "GARCH(1,1) Student-t"
    level = 0.01
    [portfolio]        # used when the data has several price columns (e.g. sp500-stocks)
    index = "SP500"    # the market index: stressed, and left out of the equal-weight portfolio
    fall = -5.0        # the index's return on the first scenario day of the stress fan (%)
    horizon = 20
    n_paths = 1000
    # weights = { AAPL = 0.5, XOM = 0.5 }   # default: equal weights (see below)
    [[models]]
    name = "GARCH(1,1) Student-t"
    model = "garch"
    params = { dist = "t" }
    [[models]]
    name = "WaveNet + range"
    model = "wavenet"
    params = { train__seed = 0 }
    refit = false
    exog = true        # the day's range (Parkinson) as a covariate, when the data has high/low
    [[models]]
    name = "Transformer, pretrained, warm refits, 3 seeds"
    model = "transformer"
    # pretrain: start from one network pretrained on the bundled daily series up to the fit's
    # last year (finar.models.pretraining; a few minutes once, then cached)
    params = { train__warm_epochs = 3, train__pretrain = true }
    seeds = [0, 1, 2]  # an Ensemble: the mixture of the network trained from each seed

Models with ``exog = true`` are given the data's covariates (the day's range, see
:func:`finar.reporting.pipeline.range_covariate`); the report says which.

A panel of several price columns (``column = ["SP500", "AAPL", "XOM"]``, or data without an
``adj_close``/``close`` column such as ``sp500-stocks``) adds the portfolio section
(:mod:`finar.reporting.portfolio`): DCC-t and independent GARCH-t scenarios of an equal-weight
portfolio, unconditional and given a fall of the index. The single-series sections model the
index column (``[portfolio] index``, by default a column named ``SP500``), else the first column.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from finar.models import Forecaster, registry
from finar.protocols import P1, P3
from finar.reporting.pipeline import ConfigError, ModelSpec

__all__ = ["ConfigError", "ModelSpec", "ReportConfig", "DEFAULT_MODELS", "DEFAULT_NEURAL", "FAST_MODELS",
           "TICK_PARAMS"]

#: TickModel settings of the report: a small network that trains in about a minute on 2 CPU cores
#: (training settings as ``train__<setting>``, see :func:`finar.reporting.pipeline.build`)
TICK_PARAMS = {"channels": 16, "layers": 6, "hidden": 32, "train__window": 256, "train__max_epochs": 5}


#: the name of finar's default neural forecaster in the report, P1 and P1m
DEFAULT_NEURAL = "Transformer t-mixture, pretrained on 22 series, warm refits (3 epochs), seeds 0-2"

# Names as in benchmarks/p1_sp500_daily.py, so the report's rows line up with the recorded ones.
DEFAULT_MODELS = (
    ModelSpec("AR(aic)", "ar", {"order": "aic"}),
    ModelSpec("GARCH(1,1) Student-t", "garch", {"dist": "t"}),
    ModelSpec("GJR-GARCH(1,1,1) skew-t", "garch", {"vol": "gjr", "dist": "skewt"}),
    # the classical model that reads the day's range (used when the data has high/low prices)
    ModelSpec("GJR-X(range) Student-t", "garchx", {"vol": "gjr", "dist": "t"}, exog=True),
    ModelSpec("WaveNet t-mixture, seed 0", "wavenet", {"train__seed": 0}, refit=False),
    ModelSpec("Transformer t-mixture, seed 0", "transformer", {"train__seed": 0}, refit=False),
    # finar's default neural forecaster: the Transformer started from one network pretrained on
    # the 22 bundled daily series up to the end of the year before the test period
    # (finar.models.pretraining), refitted every 20 test days by a 3-epoch fine-tune of its
    # previous weights (epochs chosen on 2011-2014, fitted before 2011: benchmarks/p1_many_series.py,
    # warm_selection), three seeds mixed (finar.models.Ensemble)
    ModelSpec(DEFAULT_NEURAL, "transformer", {"train__warm_epochs": 3, "train__pretrain": True},
              seeds=(0, 1, 2)),
    # the tail floor P3's rule chose on P1's training data (benchmarks/p1_sp500_daily.py): long
    # scenario paths that do not explode (docs/benchmarks.md, P3 tails)
    ModelSpec("WaveNet t-mixture, df >= 10 (chosen before 2015), seed 0", "wavenet",
              {"min_df": 10.0, "train__seed": 0}, refit=False),
)
FAST_MODELS = DEFAULT_MODELS[:2]


@dataclass(frozen=True)
class ReportConfig:
    """Settings of :func:`finar.report`; every field has a default (see the module docstring).

    ``None`` for a date means: P1's / P3's date when the data covers it with enough history
    before it, else a date chosen from the data (the last quarter of the series for tests, the
    whole series for the facts); the page states the dates it used.

    ``column`` is one price column, or several (a panel, e.g. ``("SP500", "AAPL", "XOM")``).
    The ``portfolio_*`` and ``stress_fall`` settings are used when the data has several
    columns (:func:`finar.reporting.portfolio.portfolio_plan` has the rules):
    ``portfolio_index`` names the market index column (default: a column named ``SP500``, if
    any), ``portfolio_weights`` the portfolio by column name (default: equal weights on the
    columns other than the index), ``stress_fall`` the index's return on the first day of the
    stress scenarios (percent log return), ``portfolio_horizon`` and ``portfolio_paths`` the
    scenarios' days and paths.
    """

    models: tuple[ModelSpec, ...] = DEFAULT_MODELS
    seed: int = 0
    column: str | tuple[str, ...] | None = None
    start: str | None = None
    end: str | None = None
    backtest_start: str | None = None
    backtest_end: str | None = None
    refit_every: int = P1.refit_every
    backtest_paths: int = 1000
    baseline: str | None = None
    fan_horizon: int = 250
    fan_paths: int = 1000
    facts_start: str | None = None
    facts_paths: int = 300
    facts_length: int = 1500
    facts_burn_in: int = P3.burn_in
    facts_lags: int = P3.lags
    anomaly_model: str | None = None
    anomaly_level: float = 0.01
    tick_events: int = 20_000
    tick_params: dict[str, Any] = field(default_factory=lambda: dict(TICK_PARAMS))
    portfolio_index: str | None = None
    portfolio_weights: dict[str, float] | None = None
    stress_fall: float = -5.0
    portfolio_horizon: int = 20
    portfolio_paths: int = 1000

    @classmethod
    def fast(cls) -> ReportConfig:
        """Two classical models and small sizes: a report in a minute or two."""
        return cls(models=FAST_MODELS, fan_horizon=60, fan_paths=200, facts_paths=50, facts_length=1000,
                   backtest_paths=200, tick_events=5_000,
                   tick_params={"channels": 8, "layers": 4, "hidden": 16, "train__window": 128,
                                "train__max_epochs": 2})

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("a report needs at least one model")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ConfigError(f"model names repeat: {names}; give each [[models]] entry its own name")
        for key in ("refit_every", "backtest_paths", "fan_horizon", "fan_paths", "facts_paths",
                    "facts_length", "facts_lags", "tick_events", "portfolio_horizon", "portfolio_paths"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        if isinstance(self.facts_burn_in, bool) or not isinstance(self.facts_burn_in, int) \
                or self.facts_burn_in < 0:
            raise ConfigError(f"facts_burn_in must be a non-negative integer, got {self.facts_burn_in!r}")
        if not 0 < self.anomaly_level < 0.5:
            raise ConfigError(f"anomaly_level must lie in (0, 0.5), got {self.anomaly_level!r}")
        for key in ("baseline", "anomaly_model"):
            value = getattr(self, key)
            if value is not None and value not in names:
                raise ConfigError(f"{key} {value!r} is not one of the report's models {names}")
        self._check_portfolio()

    def _check_portfolio(self) -> None:
        """Types of ``column`` and the portfolio settings (their names are checked against the data
        by :func:`finar.reporting.portfolio.portfolio_plan`)."""
        col = self.column
        if col is not None and not isinstance(col, str):
            if not isinstance(col, list | tuple) or not col or not all(isinstance(c, str) for c in col) \
                    or len(set(col)) != len(col):
                raise ConfigError(f"column must be a column name or a list of distinct names, got {col!r}")
            object.__setattr__(self, "column", tuple(col))
        if self.portfolio_index is not None and not isinstance(self.portfolio_index, str):
            raise ConfigError(f"portfolio_index must be a column name, got {self.portfolio_index!r}")
        if not _is_number(self.stress_fall) or not math.isfinite(self.stress_fall):
            raise ConfigError(f"stress_fall must be a finite return in percent (e.g. -5.0), got "
                              f"{self.stress_fall!r}")
        w = self.portfolio_weights
        if w is not None:
            if not isinstance(w, dict) or not w or not all(isinstance(k, str) for k in w):
                raise ConfigError(f"portfolio_weights must be a non-empty table of column name -> weight, "
                                  f"e.g. {{ AAPL = 0.5, XOM = 0.5 }}; got {w!r}")
            bad = {k: v for k, v in w.items() if not _is_number(v) or not math.isfinite(v)}
            if bad:
                raise ConfigError(f"portfolio_weights must be finite numbers; got {bad!r}")
            if not any(v != 0 for v in w.values()):
                raise ConfigError("portfolio_weights are all zero: the portfolio holds nothing")

    @property
    def baseline_name(self) -> str:
        """The model the others are tested against: P1's baseline when present, else the first."""
        names = [m.name for m in self.models]
        if self.baseline is not None:
            return self.baseline
        return P1.baseline if P1.baseline in names else names[0]

    @property
    def anomaly_name(self) -> str:
        return self.anomaly_model if self.anomaly_model is not None else self.baseline_name

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], *, fast: bool = False) -> ReportConfig:
        """Read a ``report.toml`` (see the module docstring); missing keys keep their defaults."""
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the report config {str(path)!r}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{str(path)!r} is not valid TOML: {exc}") from exc
        return cls.from_dict(doc, fast=fast, source=str(path))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, fast: bool = False, source: str = "config") -> ReportConfig:
        """Build from the TOML layout as a dict (sections ``data backtest fan facts anomaly ticks
        portfolio``)."""
        base = cls.fast() if fast else cls()
        tables = {"data": {"column": "column", "start": "start", "end": "end"},
                  "backtest": {"start": "backtest_start", "end": "backtest_end", "refit_every": "refit_every",
                               "n_paths": "backtest_paths", "baseline": "baseline"},
                  "fan": {"horizon": "fan_horizon", "n_paths": "fan_paths"},
                  "facts": {"start": "facts_start", "n_paths": "facts_paths", "length": "facts_length",
                            "burn_in": "facts_burn_in", "lags": "facts_lags"},
                  "anomaly": {"model": "anomaly_model", "level": "anomaly_level"},
                  "ticks": {"n_events": "tick_events", "params": "tick_params"},
                  "portfolio": {"index": "portfolio_index", "weights": "portfolio_weights",
                                "fall": "stress_fall", "horizon": "portfolio_horizon",
                                "n_paths": "portfolio_paths"}}
        changes: dict[str, Any] = {}
        for key, value in doc.items():
            if key == "seed":
                changes["seed"] = value
            elif key == "models":
                changes["models"] = tuple(_model_spec(m, i, source) for i, m in enumerate(value))
            elif key in tables and isinstance(value, dict):
                for sub, v in value.items():
                    if sub not in tables[key]:
                        raise ConfigError(f"{source}: unknown key [{key}] {sub!r}; known: "
                                          f"{sorted(tables[key])}")
                    changes[tables[key][sub]] = (str(v) if sub in ("start", "end")
                                                 else tuple(v) if isinstance(v, list) else v)
            else:
                raise ConfigError(f"{source}: unknown entry {key!r}; known: seed, [[models]], "
                                  f"{', '.join(f'[{t}]' for t in tables)}")
        return replace(base, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the page's settings notes and JSON."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("models", "tick_params")}
        out["tick_params"] = dict(self.tick_params)
        out["portfolio_weights"] = None if self.portfolio_weights is None else dict(self.portfolio_weights)
        out["models"] = [{"name": m.name, "model": m.model, "params": dict(m.params),
                          "refit": m.refit, "exog": m.exog, "seeds": list(m.seeds)} for m in self.models]
        return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _model_spec(entry: Any, i: int, source: str) -> ModelSpec:
    if not isinstance(entry, dict) or "model" not in entry:
        raise ConfigError(f"{source}: [[models]] entry {i + 1} needs at least model = \"<registered name>\"")
    unknown = set(entry) - {"name", "model", "params", "refit", "exog", "seeds"}
    if unknown:
        raise ConfigError(f"{source}: [[models]] entry {i + 1} has unknown keys {sorted(unknown)}")
    model = str(entry["model"]).lower()
    forecasters = registry(Forecaster)
    if model not in forecasters:
        raise ConfigError(f"{source}: [[models]] entry {i + 1}: unknown model {entry['model']!r}; "
                          f"registered forecasters: {sorted(forecasters)}")
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: [[models]] entry {i + 1}: params must be a table, "
                          "e.g. { dist = \"t\" }")
    refit = entry.get("refit", True)
    if not isinstance(refit, bool):
        raise ConfigError(f"{source}: [[models]] entry {i + 1}: refit must be true or false, got {refit!r}")
    exog = entry.get("exog", False)
    if not isinstance(exog, bool):
        raise ConfigError(f"{source}: [[models]] entry {i + 1}: exog must be true or false, got {exog!r}")
    seeds = entry.get("seeds", [])
    if not isinstance(seeds, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in seeds):
        raise ConfigError(f"{source}: [[models]] entry {i + 1}: seeds must be a list of integers, e.g. "
                          f"[0, 1, 2], got {seeds!r}")
    return ModelSpec(str(entry.get("name", model)), model, dict(params), refit, exog, tuple(seeds))
