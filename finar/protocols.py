"""The settings of finar's evaluation protocols (``docs/protocols.md``), in one place.

Every quality claim finar makes is measured by a benchmark script under ``benchmarks/`` that
follows one protocol; the report (:func:`finar.report`) runs the same settings at smaller
sizes and sets its figures beside the recorded ones; tests check that the recorded results
files say they ran these settings. All three read them from here, so a date or a window is
written once.

Each protocol is one frozen dataclass instance (:data:`P1` ... :data:`P6`, plus the speed
benchmarks' :data:`SPEED`). Dates are ISO strings, inclusive, as pandas slices and the results
files take them; returns are daily percent log returns (:func:`finar.returns`).

This module imports nothing from finar, so any layer can use it.

Examples
--------
>>> from finar.protocols import P1, P3
>>> P1.test_start, P1.test_end, P1.refit_every
('2015-01-01', '2018-12-31', 20)
>>> P3.window
('2009-05-01', '2018-12-31')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["P1", "P1M", "P2", "P3", "P4", "P5", "P6", "SPEED", "AnomalyInject", "GarchOracle",
           "JointPanel", "ManySeries", "SP500Daily", "SP500Facts", "SpeedBenchmarks", "TicksRealism"]


@dataclass(frozen=True)
class SP500Daily:
    """P1 ("sp500-daily"): one-step density forecasts of the S&P 500.

    A forecast for a test day uses data up to the day before only; classical models are
    refitted on an expanding window every ``refit_every`` test days, a neural model may be
    fitted once on the data before ``test_start``.
    """

    #: bundled dataset and price column (arch's ``sp500``, adjusted close)
    dataset: str = "sp500"
    column: str = "adj_close"
    #: first and last test day (inclusive): 1,006 trading days
    test_start: str = "2015-01-01"
    test_end: str = "2018-12-31"
    n_test_days: int = 1006
    #: expanding-window refit of the classical models, in test days
    refit_every: int = 20
    #: start of the shorter training window of the "from 2009-05" rows
    late_train_from: str = "2009-05-01"
    #: rolling window (days) of the i.i.d. normal and historical-simulation references
    reference_window: int = 500
    #: VaR levels with hit rates, Kupiec and Christoffersen tests; the ES (Acerbi-Szekely Z2) level
    var_levels: tuple[float, ...] = (0.01, 0.05)
    es_level: float = 0.025
    #: days of the rolling Basel traffic light (at 99%)
    traffic_light_window: int = 250
    #: draws per day for the fair ensemble CRPS of models without a closed form
    crps_draws: int = 1000
    #: the Diebold-Mariano baseline: the benchmark row every model is tested against
    baseline: str = "GARCH(1,1) Student-t"
    seed: int = 0

    @property
    def test_period(self) -> tuple[str, str]:
        """``(test_start, test_end)``, as the results file records it."""
        return self.test_start, self.test_end


@dataclass(frozen=True)
class ManySeries:
    """P1m ("many-series"): P1's test on many series, one configuration per model."""

    #: bundled datasets: the S&P 500 of P1, WTI and each stock of ``sp500-stocks``
    datasets: tuple[str, ...] = ("sp500", "wti", "sp500-stocks")
    test_start: str = SP500Daily.test_start
    test_end: str = SP500Daily.test_end
    refit_every: int = SP500Daily.refit_every
    baseline: str = SP500Daily.baseline


@dataclass(frozen=True)
class GarchOracle:
    """P2 ("garch-oracle"): distance to the true conditional density of a simulated GARCH(1,1)-t.

    ``r_t = sigma_t z_t``, ``sigma_t^2 = omega + alpha r_{t-1}^2 + beta sigma_{t-1}^2``, ``z_t``
    a standardised Student-t with ``nu`` degrees of freedom; percent scale.
    """

    omega: float = 0.02
    alpha: float = 0.09
    beta: float = 0.89
    nu: float = 6.0
    #: simulated days for fitting and for scoring (after ``burn_in`` dropped days)
    n_train: int = 5000
    n_test: int = 5000
    burn_in: int = 1000
    seeds: tuple[int, ...] = (0, 1, 2)

    @property
    def true_params(self) -> dict[str, float]:
        """``{"omega", "alpha", "beta", "nu"}``, as the results file records them."""
        return {"omega": self.omega, "alpha": self.alpha, "beta": self.beta, "nu": self.nu}


@dataclass(frozen=True)
class SP500Facts:
    """P3 ("sp500-facts"): synthetic return scenarios and stylized facts.

    Each generator is fitted on the window, draws ``n_paths`` paths of ``burn_in + length``
    days conditioned on the window, and the first ``burn_in`` days are dropped.
    """

    dataset: str = "sp500"
    column: str = "adj_close"
    #: the real window (the Quant GANs paper's)
    start: str = "2009-05-01"
    end: str = "2018-12-31"
    n_paths: int = 500
    length: int = 4000
    burn_in: int = 500
    seeds: tuple[int, ...] = (0, 1, 2)
    #: the seed whose rows the report's benchmark record shows
    record_seed: int = 0
    #: aggregation horizons (days) of the EMD and DY scores and of aggregational Gaussianity
    horizons: tuple[int, ...] = (1, 5, 20, 100)
    #: lags 1..``lags`` of the ACF and leverage scores
    lags: int = 250
    #: equal-width bins of the DY histogram distance
    dy_bins: int = 70
    #: mean block length of the stationary block bootstrap (the noise-floor reference)
    block_size: int = 20
    #: share of the largest observations in the Hill tail index
    hill_fraction: float = 0.05
    #: end of the window that reproduces PROTOCOLS' calibration figures (before the 2018 sell-off)
    calibration_end: str = "2018-11-26"

    @property
    def window(self) -> tuple[str, str]:
        """``(start, end)``, as the results file records it."""
        return self.start, self.end


@dataclass(frozen=True)
class AnomalyInject:
    """P4 ("anomaly-inject"): labelled anomalies injected into S&P 500 returns.

    Detectors are fitted on data up to ``train_end`` and score the test period; each seed
    injects ``n_events`` events at least ``min_gap`` trading days apart, cycling through
    ``kinds``, scaled by a GARCH(1,1)-t's conditional volatility (see
    :func:`finar.inject_anomalies`).
    """

    dataset: str = "sp500"
    column: str = "adj_close"
    train_end: str = "2010-12-31"
    test_start: str = "2011-01-01"
    test_end: str = "2018-12-31"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    #: seeds of a ``--quick`` run
    quick_seeds: tuple[int, ...] = (0, 1)
    n_events: int = 32
    min_gap: int = 12
    kinds: tuple[str, ...] = ("jump", "burst", "bad_print", "stale")
    #: nominal level of the detectors' flags (the false-alarm rate is read against it)
    level: float = 0.01
    #: window (days) of the rolling z-score reference
    zscore_window: int = 60
    # the panel part: the 20 stocks of ``sp500-stocks`` (the index first, as conditioning column)
    panel_train: tuple[str, str] = ("2000-01-01", "2014-12-31")
    panel_test: tuple[str, str] = ("2015-01-01", "2018-12-31")
    panel_n_events: int = 48
    #: kinds of the panel headline (the cross-sectional ``flip`` in place of ``decouple``, which real
    #: one-stock news saturates), and the kind reported beside it
    panel_kinds: tuple[str, ...] = ("jump", "burst", "bad_print", "stale", "flip")
    panel_extra_kinds: tuple[str, ...] = ("decouple",)
    # model selection of the detector's settings inside the training span, never on the test period
    selection_fit: tuple[str, str] = ("1999-01-01", "2006-12-31")
    selection_validation: tuple[str, str] = ("2007-01-01", "2010-12-31")
    selection_seeds: tuple[int, ...] = (100, 101, 102, 103, 104)

    @property
    def test(self) -> tuple[str, str]:
        """``(test_start, test_end)``, as the results file records it."""
        return self.test_start, self.test_end


@dataclass(frozen=True)
class TicksRealism:
    """P5 ("ticks-realism"): generated trades against held-out trades.

    Each stream is split in time order: fit on the first ``train_fraction``, score and compare
    on the rest. The acceptance bars are those of ``docs/protocols.md``.
    """

    #: trades of the reference simulator's stream
    n_events: int = 200_000
    train_fraction: float = 0.7
    #: TickModel training epochs and torch threads of the benchmark run
    epochs: int = 30
    threads: int = 1
    seed: int = 0
    #: bar interval of the bar-return metrics
    bar_interval: str = "1min"
    #: trades generated by the generation-speed test
    speed_events: int = 1_000_000
    # acceptance bars
    auroc_bar: float = 0.75
    auroc_goal: float = 0.6
    zero_gap_tolerance: float = 0.03
    dp_acf1_tolerance: float = 0.05
    min_wins_vs_hawkes: int = 13
    #: the real stream: E-mini S&P 500 futures trades inside this wheel (fetched at run time)
    real_source: str = "mlfinpy==0.1.2:mlfinpy/dataset/data/tick_data.csv"


@dataclass(frozen=True)
class JointPanel:
    """P6 ("joint-panel"): joint scenarios for a portfolio of the ``sp500-stocks`` panel."""

    dataset: str = "sp500-stocks"
    #: the index column, first in the panel (portfolios are over the stocks)
    index_column: str = "SP500"
    train_start: str = "2000-01-01"
    train_end: str = "2014-12-31"
    test_start: str = "2015-01-01"
    test_end: str = "2018-12-31"
    #: refit of the classical joint models, in test days
    refit_every: int = 60
    seeds: tuple[int, ...] = (0, 1, 2)
    #: joint scenarios per day (or per 20-day origin) of the energy and variogram scores
    n_scenarios: int = 1000
    variogram_order: float = 0.5
    #: co-crash: days when at least ``co_crash_count`` stocks fall more than ``co_crash_sigmas``
    co_crash_count: int = 15
    co_crash_sigmas: float = 2.0
    #: window (days) of the generated-vs-real correlation matrices
    correlation_window: int = 250

    @property
    def train(self) -> tuple[str, str]:
        """``(train_start, train_end)``, as the results files record it."""
        return self.train_start, self.train_end

    @property
    def test(self) -> tuple[str, str]:
        """``(test_start, test_end)``, as the results files record it."""
        return self.test_start, self.test_end


@dataclass(frozen=True)
class SpeedBenchmarks:
    """Settings of the speed benchmarks (``backtest_speed``, ``generation_speed``, ``scaleout_panel``)."""

    #: backtest speed: GARCH(1,1)-t refitted every day over P1's test days, at these VaR/ES levels
    backtest_levels: tuple[float, ...] = (0.01, 0.025, 0.05)
    backtest_refit_every: int = 1
    #: generation speed: steps per path
    horizon: int = 250
    #: scale-out: returns from ``scaleout_data_start``, test days, and workers per executor
    scaleout_data_start: str = "2008-01-01"
    scaleout_test: tuple[str, str] = ("2018-10-01", "2018-12-31")
    scaleout_workers: int = 2


#: docs/protocols.md P1, one-step density forecasts of the S&P 500
P1 = SP500Daily()
#: docs/protocols.md P1m, the same on many series
P1M = ManySeries()
#: docs/protocols.md P2, distance to the oracle on simulated GARCH(1,1)-t data
P2 = GarchOracle()
#: docs/protocols.md P3, stylized facts of generated scenarios
P3 = SP500Facts()
#: docs/protocols.md P4, anomaly flags on injected anomalies
P4 = AnomalyInject()
#: docs/protocols.md P5, synthetic tick data
P5 = TicksRealism()
#: docs/protocols.md P6, joint scenarios for a portfolio
P6 = JointPanel()
#: the speed benchmarks
SPEED = SpeedBenchmarks()
