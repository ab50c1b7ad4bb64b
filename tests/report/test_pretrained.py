"""A report model with ``train__pretrain``: the report says so, and the backtest's network was
pretrained on nothing after the day before the test period."""

from __future__ import annotations

import pandas as pd

from finar.reporting import ModelSpec, ReportConfig
from finar.reporting.context import Context
from finar.reporting.page import Section
from finar.reporting.pipeline import load_data
from finar.reporting.sections import model_comparison

TINY = {"residual_channels": 4, "gate_channels": 4, "skip_channels": 4, "layers_per_cycle": 2,
        "train__max_epochs": 1, "train__warm_epochs": 1, "train__pretrain": True}


def test_a_pretrained_model_in_the_report(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FINAR_CACHE_DIR", str(tmp_path))
    spec = ModelSpec("WaveNet, pretrained", "wavenet", TINY, seeds=(0, 1))
    config = ReportConfig(models=(ModelSpec("GARCH(1,1) Student-t", "garch", {"dist": "t"}), spec),
                          start="2014-01-01", backtest_start="2018-07-02", fan_horizon=10, fan_paths=50,
                          facts_paths=10, facts_length=300, facts_lags=20, facts_burn_in=50,
                          backtest_paths=50)
    ctx = Context(load_data("sp500", start=config.start), config, None, "", False, None)
    comparison = Section("comparison", "Model comparison")
    model_comparison(ctx, comparison)
    notes = " ".join(comparison.notes)
    assert "pretrained on finar's bundled daily series" in notes
    assert "up to the end of the last year before 2018-07-02" in notes
    assert "WaveNet, pretrained" in notes
    # one pretraining for both seeds, cut before the test period
    files = sorted((tmp_path / "pretrained").glob("wavenet_*.pt"))
    assert len(files) == 1
    assert pd.Timestamp(files[0].name.split("_")[1]) <= pd.Timestamp("2017-12-31")
