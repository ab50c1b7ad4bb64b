"""The minimal scenario page: self-contained, one fan per model, escaped text, right numbers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.offline
import pytest

from finar.errors import DataError
from finar.models.scenarios import Scenarios, future_index
from finar.reporting import scenario_page
from finar.reporting.scenarios import fan_chart

N_PATHS, HORIZON = 400, 15


@pytest.fixture(scope="module")
def history() -> pd.Series:
    rng = np.random.default_rng(0)
    index = pd.bdate_range("2020-01-01", periods=300, name="time")
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300))), index=index, name="px")


@pytest.fixture(scope="module")
def scenarios(history: pd.Series) -> dict[str, Scenarios]:
    index = future_index(history.index, HORIZON)
    return {name: Scenarios(np.random.default_rng(seed).normal(0, vol, (N_PATHS, HORIZON, 1)),
                            index, ["px"], seed=seed)
            for name, seed, vol in (("calm", 0, 0.5), ("wild", 1, 2.0))}


@pytest.fixture(scope="module")
def page(scenarios: dict[str, Scenarios], history: pd.Series, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("page") / "sub" / "page.html"
    assert scenario_page(scenarios, history, "Test page", path) == path
    return path.read_text()


def test_one_plotly_graph_div_per_model(page: str) -> None:
    ids = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', page)
    assert len(ids) == 2 and len(set(ids)) == 2
    assert re.findall(r'Plotly\.newPlot\(\s*"([^"]+)"', page) == ids  # each div gets its chart


def test_plotly_js_is_embedded_not_fetched(page: str) -> None:
    assert plotly.offline.get_plotlyjs() in page
    assert page.count(plotly.offline.get_plotlyjs()[:200]) == 1  # embedded once, not per chart
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.I)
    assert not re.search(r"<link[^>]*https?://", page, flags=re.I)


def test_title_and_names_are_escaped(scenarios: dict[str, Scenarios], history: pd.Series,
                                     tmp_path: Path) -> None:
    nasty = '<script>alert("x")</script> & co'
    path = scenario_page({"<b>m</b>": scenarios["calm"]}, history, nasty, tmp_path / "p.html")
    text = path.read_text()
    assert "<script>alert" not in text and "<b>m</b>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in text
    assert f"<title>{'&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co'}</title>" in text
    assert "&lt;b&gt;m&lt;/b&gt;" in text


def test_page_states_span_horizon_paths_seed(page: str, history: pd.Series) -> None:
    assert f"{history.index[0].date()} to {history.index[-1].date()}" in page
    assert f"Horizon: {HORIZON} steps" in page and f"paths: {N_PATHS}" in page
    assert "seed: differs by model" in page  # the two models used seeds 0 and 1


def test_risk_table_matches_scenarios(page: str, scenarios: dict[str, Scenarios]) -> None:
    for sc in scenarios.values():
        for alpha in (0.01, 0.05):
            for measure in (sc.var, sc.es):
                value = float(measure(alpha, cumulative=True).iloc[-1, 0])
                assert f"<td class=num>{value:.2f}</td>" in page


def test_fan_is_quantiles_of_price_from_the_last_price(scenarios: dict[str, Scenarios],
                                                       history: pd.Series) -> None:
    sc = scenarios["wild"]
    fig = fan_chart(sc, history, "px", window=50)
    hist, *_, median = fig.data
    assert len(hist.x) == 50 and hist.y[-1] == history.iloc[-1]
    assert median.y[0] == pytest.approx(history.iloc[-1])  # the fan starts at the last price
    expected = np.quantile(history.iloc[-1] * np.exp(np.cumsum(sc.paths[:, :, 0] / 100, axis=1)),
                           0.5, axis=0)
    np.testing.assert_allclose(median.y[1:], expected)
    assert list(median.x[1:]) == list(sc.index)


def test_fan_of_cumulative_returns(scenarios: dict[str, Scenarios], history: pd.Series,
                                   tmp_path: Path) -> None:
    r = 100 * np.log(history).diff().dropna()
    fig = fan_chart(scenarios["calm"], r, "px", kind="returns")
    hist, *_, median = fig.data
    assert hist.y[-1] == pytest.approx(0.0) and median.y[0] == 0.0
    assert hist.y[0] == pytest.approx(-r.iloc[-249:].sum())  # rebased to 0 at the last date
    assert scenario_page(scenarios, r, "returns", tmp_path / "r.html", kind="returns").exists()


def test_same_inputs_same_bytes(scenarios: dict[str, Scenarios], history: pd.Series,
                                tmp_path: Path) -> None:
    a = scenario_page(scenarios, history, "t", tmp_path / "a.html").read_bytes()
    b = scenario_page(scenarios, history, "t", tmp_path / "b.html").read_bytes()
    assert a == b
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html"]  # no temp files left


def test_bad_input(scenarios: dict[str, Scenarios], history: pd.Series, tmp_path: Path) -> None:
    out = tmp_path / "x.html"
    with pytest.raises(DataError, match="non-empty"):
        scenario_page({}, history, "t", out)
    early = Scenarios(np.zeros((2, 3, 1)), future_index(history.index[:-5], 3), ["px"])
    with pytest.raises(DataError, match="not after"):  # history that runs past the scenarios' start
        scenario_page({"early": early}, history, "t", out)
    with pytest.raises(DataError, match="price"):
        scenario_page(scenarios, -history, "t", out)
    two = history.to_frame().assign(other=history)
    with pytest.raises(DataError, match="'other'"):
        scenario_page(scenarios, two, "t", out)
    assert not out.exists()
