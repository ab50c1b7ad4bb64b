"""The result tables the report renders as HTML and the CLI as rich tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finar.models.scenarios import Scenarios, future_index
from finar.reporting.pipeline import SectionUnavailable
from finar.reporting.tables import (
    ALL_SERIES,
    realism_table,
    risk_table,
    score_table,
    tail_risk,
    top_anomalies,
)

INDEX = pd.bdate_range("2020-01-01", periods=4, name="time")


def test_score_table_per_series_and_joint() -> None:
    lp = pd.DataFrame({"a": [np.nan, -1.0, -2.0, -3.0], "b": [np.nan, np.nan, -1.0, -1.0]}, index=INDEX)
    t = score_table(lp)
    assert t.index.tolist() == ["a", "b", ALL_SERIES]
    assert t.loc["a"].tolist() == [3, -6.0, -2.0]
    assert t.loc[ALL_SERIES].tolist() == [2, -7.0, -3.5]  # only the days both series are scored
    assert score_table(lp["a"]).index.tolist() == ["a"]


@pytest.fixture(scope="module")
def scenarios() -> Scenarios:
    paths = np.random.default_rng(0).normal(0, 1, (500, 5, 2))
    return Scenarios(paths, future_index(INDEX, 5), ["x", "y"], seed=0)


def test_risk_tables_are_the_scenarios_own_measures(scenarios: Scenarios) -> None:
    tails = tail_risk(scenarios)
    assert tails.columns.tolist() == ["VaR 1%", "ES 1%", "VaR 5%", "ES 5%"]
    for a in (0.01, 0.05):
        np.testing.assert_allclose(tails[f"VaR {a:.0%}"], scenarios.var(a, cumulative=True).iloc[-1])
        np.testing.assert_allclose(tails[f"ES {a:.0%}"], scenarios.es(a, cumulative=True).iloc[-1])
    risk = risk_table(scenarios)
    assert risk.columns.tolist() == ["x", "y"] and risk.index[0] == "quantile 1%"
    cum = scenarios.paths.sum(axis=1)
    np.testing.assert_allclose(risk.loc["mean"], cum.mean(axis=0))
    np.testing.assert_allclose(risk.loc["VaR 5%"], tails["VaR 5%"])


def test_top_anomalies_rank_by_the_detectors_statistic() -> None:
    flags = pd.DataFrame({"score": [5.0, 1.0, 9.0, 2.0], "p_value": [0.001, 0.5, 0.0001, 0.002],
                          "flag": [True, False, True, True], "stat": [1.0, 0.0, 2.0, 3.0]}, index=INDEX)
    r = pd.Series([1.0, 2.0, 3.0, 4.0], index=INDEX)
    top = top_anomalies(flags, r, 2)
    assert top.index.tolist() == [INDEX[3], INDEX[2]]  # by stat, flagged days only
    assert top["return"].tolist() == [4.0, 3.0] and top.index.name == "day"
    assert top_anomalies(flags.drop(columns="stat"), r, 1).index.tolist() == [INDEX[2]]


def test_realism_table_shapes() -> None:
    frame = pd.DataFrame({"real": [1.0]}, index=["m"])
    assert realism_table(frame) is frame
    assert realism_table({"m": 1.0}).loc["m", "value"] == 1.0
    with pytest.raises(SectionUnavailable, match="returned int"):
        realism_table(3)
