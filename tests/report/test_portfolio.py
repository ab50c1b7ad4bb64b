"""The report's portfolio section: plan rules, risk numbers by hand, the stress, labels and escaping."""

from __future__ import annotations

import html
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import FinarError
from finar.models.scenarios import Scenarios
from finar.reporting import ConfigError, Report, ReportConfig
from finar.reporting.context import Context
from finar.reporting.page import Section, page_html
from finar.reporting.pipeline import load_data
from finar.reporting.portfolio import dependence_label, portfolio_plan
from finar.reporting.sections import data_overview, portfolio
from finar.reporting.tables import portfolio_risk
from tests.report.conftest import STOCKS

HOSTILE = "<script>alert(1)</script>"
STRESS = "SP500 -5% on day 1"


def section_html(page: str, key: str) -> str:
    m = re.search(rf'<section id="{re.escape(key)}">(.*?)</section>', page, flags=re.S)
    assert m, f"no section {key}"
    return m.group(1)


def the_section(rep: Report, key: str) -> Section:
    return next(s for s in rep.sections if s.key == key)


# ---- numbers by hand ------------------------------------------------------------------------------
def test_portfolio_risk_against_a_hand_computation() -> None:
    """1-day and horizon VaR/ES of a portfolio of log-return paths, computed here from the formula."""
    rng = np.random.default_rng(3)
    paths = rng.normal(0.0, 2.0, size=(400, 3, 2))
    sc = Scenarios(paths, pd.bdate_range("2024-01-01", periods=3), ["a", "b"], joint=True)
    p = sc.portfolio({"a": 0.75, "b": 0.25})
    by_hand = 100 * np.log1p(0.75 * np.expm1(paths[..., 0] / 100) + 0.25 * np.expm1(paths[..., 1] / 100))
    risk = portfolio_risk({("m", "u"): p}).loc[("m", "u")]
    for x, tag in ((by_hand[:, 0], "1-day"), (by_hand.sum(axis=1), "horizon")):
        for a in (0.01, 0.05):
            q = np.quantile(x, a)
            assert risk[f"VaR {a:.0%} {tag}"] == pytest.approx(-q)
            assert risk[f"ES {a:.0%} {tag}"] == pytest.approx(-x[x <= q].mean())
    assert p.joint and dependence_label(p) == "joint across assets"


def test_dependence_labels() -> None:
    idx = pd.bdate_range("2024-01-01", periods=2)
    paths = np.zeros((5, 2, 2))
    # columns drawn one by one (a per-column model on a DataFrame, the independence copula)
    assert dependence_label(Scenarios(paths, idx, ["a", "b"])) == "independent across assets"
    assert dependence_label(Scenarios(paths, idx, ["a", "b"]).portfolio([0.5, 0.5])) == \
        "independent across assets"
    assert dependence_label(Scenarios(paths, idx, ["a", "b"], joint=True)) == "joint across assets"
    assert dependence_label(Scenarios(paths[..., :1], idx, ["a"])) == "one series"


# ---- the plan and the settings --------------------------------------------------------------------
def test_plan_takes_the_index_out_of_the_equal_weight_portfolio() -> None:
    plan = portfolio_plan(["AAPL", "XOM", "JPM", "SP500"])
    assert plan.index == plan.lead == "SP500" and plan.held == ["AAPL", "XOM", "JPM"]
    np.testing.assert_allclose(plan.weights.to_numpy(), [1 / 3, 1 / 3, 1 / 3, 0.0])
    assert "other than the index SP500" in plan.rule
    # no column named like an index: every column, and the stress falls on the first
    plan = portfolio_plan(["x", "y"])
    assert plan.index is None and plan.lead == "x" and plan.weights.tolist() == [0.5, 0.5]
    plan = portfolio_plan(["x", "y", "z"], index="z", weights={"x": 1.0})
    assert plan.lead == "z" and plan.held == ["x"] and plan.weights.tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"index": "NOPE"}, r"index column 'NOPE' is not in the data.*\['x', 'y'\]"),
    ({"weights": {"zzz": 1.0}}, r"name columns \['zzz'\].*\['x', 'y'\]"),
    ({"weights": {"x": 0.0}}, "not all zero"),
])
def test_plan_errors_name_the_columns(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        portfolio_plan(["x", "y"], **kwargs)
    assert isinstance(err.value, FinarError)


@pytest.mark.parametrize(("changes", "match"), [
    ({"stress_fall": float("nan")}, "stress_fall must be a finite"),
    ({"stress_fall": "-5"}, "stress_fall must be a finite"),
    ({"portfolio_horizon": 0}, "portfolio_horizon must be a positive integer"),
    ({"portfolio_paths": 2.5}, "portfolio_paths must be a positive integer"),
    ({"portfolio_weights": {"a": "half"}}, "portfolio_weights must be finite"),
    ({"portfolio_weights": {}}, "non-empty table"),
    ({"portfolio_weights": {"a": 0}}, "all zero"),
    ({"portfolio_index": 3}, "portfolio_index must be a column name"),
    ({"column": ["a", "a"]}, "list of distinct names"),
])
def test_bad_portfolio_settings(changes: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ReportConfig(**changes)


def test_portfolio_settings_from_toml_layout() -> None:
    cfg = ReportConfig.from_dict({"data": {"column": ["SP500", "AAPL"]},
                                  "portfolio": {"index": "SP500", "fall": -8.0, "horizon": 5, "n_paths": 50,
                                                "weights": {"AAPL": 1.0}}})
    assert cfg.column == ("SP500", "AAPL") and cfg.portfolio_index == "SP500" and cfg.stress_fall == -8.0
    assert (cfg.portfolio_horizon, cfg.portfolio_paths, cfg.portfolio_weights) == (5, 50, {"AAPL": 1.0})
    with pytest.raises(ConfigError, match=r"unknown key \[portfolio\] 'drop'"):
        ReportConfig.from_dict({"portfolio": {"drop": -5}})


def test_a_stress_column_not_in_the_data_stops_the_report_before_any_section() -> None:
    with pytest.raises(ConfigError, match="index column 'NOPE' is not in the data"):
        finar.report("sp500-stocks", config=replace(STOCKS, column=("SP500", "AAPL"), portfolio_index="NOPE"))
    with pytest.raises(ConfigError, match=r"name columns \['MSFT'\]"):
        finar.report("sp500-stocks", config=replace(STOCKS, column=("SP500", "AAPL"),
                                                    portfolio_weights={"MSFT": 1.0}))


# ---- the panel report --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page(stocks_report: Report) -> str:
    return stocks_report.to_html()


def test_panel_report_has_the_portfolio_section(stocks_report: Report, page: str) -> None:
    keys = [s.key for s in stocks_report.sections]
    assert keys == ["overview", "comparison", "fans", "portfolio", "pit-var", "facts", "anomalies", "record"]
    assert stocks_report.unavailable == {}
    assert stocks_report.title == "finar report: sp500-stocks (21 columns)"
    sec = the_section(stocks_report, "portfolio")
    assert sec.figures == 4
    text = section_html(page, "portfolio")
    assert "equal weights on the 20 columns other than the index SP500" in text
    assert "300 paths of 10 days" in text and "seed 0" in text
    assert "Correlation of the generated paths" in text
    # the single-series sections model the index
    assert "Data: sp500-stocks, column SP500" in section_html(page, "overview")


def test_stress_fan_holds_the_given_fall_on_day_one(stocks_report: Report, page: str) -> None:
    sec = the_section(stocks_report, "portfolio")
    for run in sec.results["runs"].values():
        j = run.stressed.columns.index("SP500")
        assert (run.stressed.paths[:, 0, j] == STOCKS.stress_fall).all()
        assert run.stressed.quantile(0.5, cumulative=True)["SP500"].iloc[0] == STOCKS.stress_fall
        assert run.given == {"SP500": -5.0}
        assert not (run.scenarios.paths[:, 0, j] == STOCKS.stress_fall).all()
    text = section_html(page, "portfolio")
    assert html.escape(STRESS) in text and "SP500 median (given -5% on day 1)" in text


def test_stressed_var_is_worse_for_a_positively_correlated_panel(stocks_report: Report) -> None:
    sec = the_section(stocks_report, "portfolio")
    risk = sec.results["risk"]
    assert sec.results["correlation"]["DCC-t"]["mean_corr_real"] > 0.3
    for tag in ("1-day", "horizon"):
        for m in ("VaR 1%", "ES 1%", "VaR 5%", "ES 5%"):
            stressed, plain = (risk.loc[("DCC-t", s), f"{m} {tag}"] for s in (STRESS, "unconditional"))
            assert stressed > plain
    # the joint model passes the fall on to the stocks; the independent reference does not
    gap = {name: risk.loc[(name, STRESS), "VaR 1% 1-day"] - risk.loc[(name, "unconditional"), "VaR 1% 1-day"]
           for name in ("DCC-t", "Independent GARCH-t")}
    assert gap["DCC-t"] > 2.0 and abs(gap["Independent GARCH-t"]) < 0.5


def test_independent_model_is_labelled_as_such(stocks_report: Report, page: str) -> None:
    runs = the_section(stocks_report, "portfolio").results["runs"]
    assert runs["DCC-t"].dependence == "joint across assets"
    assert runs["Independent GARCH-t"].dependence == "independent across assets"
    text = section_html(page, "portfolio")
    assert "<h3>Independent GARCH-t (independent across assets)</h3>" in text
    assert "<h3>DCC-t (joint across assets)</h3>" in text
    assert "<td>Independent GARCH-t</td><td>independent across assets</td>" in text
    assert "Independent GARCH-t, independent across assets: the portfolio" in text  # the fan's caption
    corr = the_section(stocks_report, "portfolio").results["correlation"]
    assert abs(corr["Independent GARCH-t"]["mean_corr_generated"]) < 0.05
    assert corr["DCC-t"]["mean_corr_generated"] > 0.2


def test_hostile_column_names_are_escaped() -> None:
    """A column named like markup, stressed as the index: its name reaches the page escaped only."""
    px = finar.load("sp500-stocks", start="2013-01-01", end="2016-12-31")[["AAPL", "XOM", "JPM", "SP500"]]
    px = px.rename(columns={"SP500": HOSTILE})
    cfg = replace(STOCKS, start=None, end=None, portfolio_index=HOSTILE, portfolio_paths=100)
    ctx = Context(load_data(px), cfg)
    assert ctx.plan is not None and ctx.plan.lead == HOSTILE and ctx.returns.name == HOSTILE
    sections = []
    for key, build in (("overview", data_overview), ("portfolio", portfolio)):
        sec = Section(key, key)
        build(ctx, sec)
        sections.append(sec)
    runs = sections[1].results["runs"]
    assert (runs["DCC-t"].stressed.paths[:, 0, 3] == -5.0).all()
    page = page_html(f"report on {HOSTILE}", [HOSTILE], sections, "footer")
    assert HOSTILE not in page and "<script>alert" not in page and "alert(1)</script>" not in page
    assert html.escape(HOSTILE) in page
    assert page.count(html.escape(HOSTILE)) >= 5  # notes, table cells, headings, the stress trace
