"""The range covariate through the report: a WaveNet fitted with it is backtested, scored by the
detector and shown with it; models that need it are left out (and say so) on close-only data."""

from __future__ import annotations

import numpy as np
import pytest

import finar
from finar.reporting import ModelSpec, ReportConfig
from finar.reporting.pipeline import ConfigError, load_data, range_covariate, run_backtest

TINY_WAVENET = {"residual_channels": 8, "gate_channels": 8, "skip_channels": 8, "layers_per_cycle": 3,
                "train": {"max_epochs": 2, "window": 32, "batch_size": 16}}


def _config(**kw) -> ReportConfig:
    base = dict(models=(ModelSpec("GARCH(1,1) Student-t", "garch", {"dist": "t"}),
                        ModelSpec("WaveNet + range", "wavenet", TINY_WAVENET, refit=False, exog=True)),
                anomaly_model="WaveNet + range", backtest_start="2018-07-02", fan_horizon=10, fan_paths=50,
                facts_paths=10, facts_length=300, facts_lags=20, facts_burn_in=50, backtest_paths=50)
    return ReportConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def report():
    return finar.report("sp500", config=_config(start="2014-01-01"))


def test_wavenet_with_the_range_is_backtested_scored_and_shown(report) -> None:
    sections = {s.key: s for s in report.sections}
    comparison = sections["comparison"]
    assert comparison.available, comparison.reason
    notes = " ".join(comparison.notes)
    assert "WaveNet + range" in notes and "Parkinson range" in notes
    page = report.to_html()
    assert "WaveNet + range" in page and "Parkinson range" in page
    assert "WaveNet + range" in "".join(comparison.parts)  # a row of the score table
    anomalies = sections["anomalies"]
    assert anomalies.available, anomalies.reason
    assert any("Parkinson range" in n for n in anomalies.notes)
    assert any("Detector: WaveNet + range" in n for n in anomalies.notes)
    assert "Covariates: covariate: the day's Parkinson range" in " ".join(report.subtitle)
    # the scenario sections leave the covariate model out, and say why
    assert any("Left out here: WaveNet + range" in n for n in sections["fans"].notes)


def test_the_backtest_really_used_the_covariate() -> None:
    d = load_data("sp500", start="2014-01-01")
    spec = ModelSpec("WaveNet + range", "wavenet", TINY_WAVENET, refit=False, exog=True)
    with_x = run_backtest(d.returns, spec, "2018-07-02", None, refit_every=20, n_paths=10, seed=0,
                          exog=d.exog)
    scrambled = d.exog.copy()
    scrambled.loc["2018-07-02":] = scrambled.loc["2018-07-02":].to_numpy()[::-1]
    other = run_backtest(d.returns, spec, "2018-07-02", None, refit_every=20, n_paths=10, seed=0,
                         exog=scrambled)
    a, b = with_x.daily["log_score"], other.daily["log_score"]
    assert a.iloc[0] == b.iloc[0]  # day 1's forecast uses covariates of the day before the test
    assert not np.allclose(a.iloc[2:], b.iloc[2:])  # later days read the (changed) covariate


def test_close_only_data_leaves_the_range_models_out() -> None:
    px = finar.load("sp500").loc["2014":, ["adj_close"]]
    rep = finar.report(px, config=_config())
    assert "WaveNet + range" not in [m.name for m in rep.config.models]
    assert "left out: WaveNet + range" in " ".join(rep.subtitle)
    assert "no high/low prices" in " ".join(rep.subtitle)


def test_range_covariate_modes() -> None:
    px = finar.load("sp500").loc["2018"]
    r = finar.returns(px["adj_close"])
    x, note = range_covariate(px, r.index, "auto")
    assert list(x.columns) == ["parkinson"] and x.index.equals(r.index) and "Parkinson" in note
    assert range_covariate(px, r.index, "none")[0] is None
    assert range_covariate(px[["close"]], r.index, "auto")[0] is None
    with pytest.raises(ConfigError, match="high and low"):
        range_covariate(px[["close"]], r.index, "range")
    bad = px.copy()
    bad.iloc[3, bad.columns.get_loc("high")] = bad.iloc[3]["low"] - 1
    with pytest.raises(finar.FinarError, match="high < low"):
        range_covariate(bad, r.index, "range")
    x, note = range_covariate(bad, r.index, "auto")
    assert x is None and "unusable" in note
    with pytest.raises(ConfigError, match="covariates must be"):
        range_covariate(px, r.index, "yes")
