"""The P1m ("many-series") table of the benchmarks page: series by model, gains and DM t."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.docs.test_site import hook


def test_p1m_table_is_series_by_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = hook("benchmarks")
    base, net = "GARCH(1,1) Student-t", "WaveNet t-mixture, df >= 8 (chosen before 2015), seed 0"
    rows = [{"series": "SP500", "model": base, "log_score": -1.07, "dm_t": None, "default": True},
            {"series": "SP500", "model": net, "log_score": -1.06, "gain_vs_garch_t": 0.0123, "dm_t": 2.04,
             "default": True},
            {"series": "AAPL", "model": base, "log_score": -1.8, "dm_t": None, "default": True},
            {"series": "AAPL", "model": "GJR-X(range) Student-t", "log_score": None, "dm_t": None,
             "default": True, "note": "n/a: no high/low"}]
    doc = {"protocol": "P1m", "dm_baseline": base, "series": ["SP500", "AAPL"],
           "models": [base, "GJR-X(range) Student-t", net], "rows": rows, "complete": False,
           "missing": [["AAPL", net]], "summary": [{"model": net, "wins": 1}]}
    (tmp_path / "p1m.json").write_text(json.dumps(doc), encoding="utf-8")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    lines = bench.render("p1m").splitlines()
    assert lines[0] == "| series | GARCH(1,1) t: log score | GJR-X(range) t | WaveNet t-mixture, df >= 8 |"
    assert lines[2] == "| SP500 | -1.0700 | missing | +0.0123 (2.0) |"
    assert lines[3] == "| AAPL | -1.8000 | n/a | missing |"
    assert "| WaveNet t-mixture, df >= 8 (chosen before 2015), seed 0 | 1 |" in bench.render("p1m", "summary")
