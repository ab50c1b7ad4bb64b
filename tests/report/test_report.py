"""finar.report: sections, offline page, escaping, numbers from finar and from the recorded benchmarks."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import plotly.offline
import pytest

import finar
from finar.protocols import P1, P3
from finar.reporting import ConfigError, ModelSpec, Report, ReportConfig
from finar.reporting.context import Context
from finar.reporting.page import Section, fmt
from finar.reporting.pipeline import Data
from finar.reporting.record import P1_COLUMNS, P3_COLUMNS, load_record, read_result, registry_rows
from finar.reporting.sections import SECTIONS, tick_realism
from tests.data.test_yahoo import END, START, FakeYahoo, fresh_yfinance, no_network  # noqa: F401
from tests.report.conftest import SMALL

HOSTILE = '<script>alert("x")</script>'


def section_html(page: str, key: str) -> str:
    m = re.search(rf'<section id="{re.escape(key)}">(.*?)</section>', page, flags=re.S)
    assert m, f"no section {key}"
    return m.group(1)


@pytest.fixture(scope="module")
def page(small_report: Report) -> str:
    return small_report.to_html()


def test_every_section_in_order_and_built(small_report: Report) -> None:
    keys = [s.key for s in small_report.sections]
    assert keys == [k for k, _, _ in SECTIONS if k != "portfolio"]  # one series: no portfolio section
    assert small_report.unavailable == {}
    for s in small_report.sections:
        assert s.notes or not s.available, f"section {s.key} states no span/settings"


def test_page_is_self_contained(page: str, small_report: Report) -> None:
    js = plotly.offline.get_plotlyjs()
    assert page.count(js) == 1                                   # embedded once
    rest = page.replace(js, "")
    assert not re.search(r"<script[^>]+src=", rest)              # nothing fetched
    assert "cdn.plot.ly" not in rest and "https://" not in rest
    n_divs = len(re.findall(r'class="plotly-graph-div"', page))
    assert n_divs == sum(s.figures for s in small_report.sections) >= 12


def test_sections_state_span_settings_and_seed(page: str) -> None:
    for key in ("comparison", "pit-var"):
        text = section_html(page, key)
        assert "Test days 2015-01-01 to 2018-12-31" in text and "seed 0" in text
    fans = section_html(page, "fans")
    assert "100 paths of 20 days, seed 0" in fans and '"name":"realised"' in fans
    facts = section_html(page, "facts")
    assert "2009-05-01" in facts and "20 paths of 600 days" in facts
    assert "Data: sp500, column adj_close" in section_html(page, "overview")


def test_own_p1_run_equals_the_recorded_benchmark(small_report: Report, page: str) -> None:
    """The report runs P1's settings, so its classical rows reproduce the recorded figures exactly."""
    rec = {r["model"]: r for r in load_record().p1["rows"] if r["kind"] == "finar"}
    comparison = section_html(page, "comparison")
    for name in ("AR(aic)", "GARCH(1,1) Student-t"):
        cells = rf"<td>{re.escape(html.escape(name))}</td><td[^>]*>{fmt(rec[name]['log_score'])}</td>"
        assert re.search(cells, comparison), name
        assert f'<td class="tl-{rec[name]["traffic_light"]}">' in comparison
    hits = round(rec["GARCH(1,1) Student-t"]["hit_1"] * 1006)
    assert f"1% VaR: {hits} exceedances in 1,006 days" in section_html(page, "pit-var")
    record = section_html(page, "record")
    assert record.count('<td class="best">same</td>') == 2  # both of this run's rows match the record


def test_record_lists_every_registered_model_with_its_recorded_figures(page: str) -> None:
    record_doc = load_record()
    assert record_doc.p1 is not None and record_doc.p3 is not None
    rows = registry_rows(record_doc)
    forecasters = finar.models.registry(finar.models.Forecaster)
    assert set(forecasters) == set(rows["registry"])  # every forecaster, and no tick model or detector
    section = section_html(page, "record")
    for key in forecasters:
        assert f"<td>{key}</td>" in section
    tables = dict(zip(("P1", "P3"), section.split("P3: stylized facts"), strict=True))
    # every finar row of both results files appears under some registered model, with its figures
    for protocol, doc, cols in (("P1", record_doc.p1, P1_COLUMNS), ("P3", record_doc.p3, P3_COLUMNS)):
        for row in doc["rows"]:
            if row["kind"] != "finar" or (protocol == "P3" and row["seed"] != 0):
                continue
            mine = rows[(rows["protocol"] == protocol) & (rows["model"] == row["model"])]
            assert len(mine) == 1, (protocol, row["model"])
            for c in cols:
                assert mine.iloc[0][c] == row.get(c) or (row.get(c) is None and pd.isna(mine.iloc[0][c]))
            shown = re.search(rf"<td>{re.escape(html.escape(row['model']))}</td>((?:<td[^>]*>[^<]*</td>)+)",
                              tables[protocol])
            assert shown and f">{fmt(row[cols[0]])}<" in shown.group(1), row["model"]


def test_default_settings_are_the_recorded_protocols() -> None:
    """The report's defaults are the settings of finar.protocols, which the benchmark files say they ran."""
    record = load_record()
    p1, p3 = record.p1, record.p3
    assert p1["test_period"] == list(P1.test_period) and p1["refit_every"] == P1.refit_every
    cfg = ReportConfig()
    assert p1["dm_baseline"] == cfg.baseline_name == P1.baseline and cfg.refit_every == P1.refit_every
    assert p3["window"] == list(P3.window) and p3["burn_in"] == P3.burn_in == cfg.facts_burn_in
    assert cfg.facts_lags == P3.lags
    names = {r["model"] for r in p1["rows"]}
    assert {m.name for m in ReportConfig().models} <= names  # the default models are P1 rows


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    column = "<img src=y onerror=alert(2)>"
    px = finar.load("sp500", start="2016-01-01")[["open", "close"]].rename(columns={"open": column})
    path = tmp_path / "<img src=x onerror=alert(1)>.csv"
    px.to_csv(path)
    cfg = ReportConfig(models=(ModelSpec(HOSTILE, "garch", {"dist": "t"}),), column=column, refit_every=200,
                       fan_horizon=10, fan_paths=50, facts_paths=10, facts_length=300, facts_lags=30,
                       backtest_paths=50)
    rep = finar.report(path, config=cfg, title=HOSTILE + " & co")
    assert rep.unavailable == {}
    page = rep.to_html()
    body = page.split("</head>", 1)[1]
    for raw in (HOSTILE, "<img src=x", "<img src=y"):
        assert raw not in body
    for raw in (HOSTILE, "<img src=x onerror=alert(1)>", f"column {column}"):
        assert html.escape(raw) in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in body
    assert "<script>alert" not in page  # nor inside figure JSON, where plotly writes \u003c


def test_short_yahoo_series_shows_what_it_cannot_build(tmp_path: Path) -> None:
    rep = finar.report("yahoo:SPY", load_options={"session": FakeYahoo(), "cache_dir": tmp_path},
                       config=replace(SMALL, start=START, end=END))
    built = {s.key: s for s in rep.sections}
    assert built["overview"].available and "yahoo:SPY" in built["overview"].notes[0]
    for key in ("comparison", "fans", "facts"):
        assert not built[key].available
    assert "Not available" in rep.to_html()


def test_config_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "report.toml"
    path.write_text('seed = 3\n[backtest]\nstart = "2016-01-04"\nrefit_every = 60\n[fan]\nhorizon = 30\n'
                    '[[models]]\nname = "GJR skew-t"\nmodel = "garch"\n'
                    'params = { vol = "gjr", dist = "skewt" }\n'
                    '[[models]]\nmodel = "wavenet"\nrefit = false\n')
    cfg = ReportConfig.from_toml(path)
    assert (cfg.seed, cfg.backtest_start, cfg.refit_every, cfg.fan_horizon) == (3, "2016-01-04", 60, 30)
    assert cfg.models == (ModelSpec("GJR skew-t", "garch", {"vol": "gjr", "dist": "skewt"}),
                          ModelSpec("wavenet", "wavenet", {}, refit=False))
    assert ReportConfig.from_toml(path, fast=True).fan_paths == ReportConfig.fast().fan_paths


def test_seeds_make_an_ensemble_of_the_network(tmp_path: Path) -> None:
    path = tmp_path / "report.toml"
    path.write_text('[[models]]\nname = "TF x2"\nmodel = "transformer"\nparams = { train__warm_epochs = 3 }\n'
                    'seeds = [4, 7]\nrefit = true\n')
    spec = ReportConfig.from_toml(path).models[0]
    assert spec.seeds == (4, 7) and ReportConfig.from_toml(path).to_dict()["models"][0]["seeds"] == [4, 7]
    ens = spec.create()
    assert isinstance(ens, finar.models.Ensemble) and ens.warm_start
    assert [(m.get_params()["train"].seed, m.get_params()["train"].warm_epochs) for m in ens.members] == [
        (4, 3), (7, 3)]
    # a joint network's seeds mix whole days (each day's vector from one seed's joint law)
    joint = ModelSpec("PixelCNN x2", "pixelcnn", {"channels": 8}, seeds=(0, 1)).create()
    assert isinstance(joint, finar.models.JointEnsemble) and "joint" in joint.tags
    with pytest.raises(ConfigError, match="a train__seed parameter"):
        ModelSpec("GARCH x2", "garch", {}, seeds=(0, 1)).create()
    with pytest.raises(ConfigError, match="seeds must differ"):
        ModelSpec("WN", "wavenet", {}, seeds=(1, 1)).create()


@pytest.mark.parametrize(("text", "match"), [
    ("[fan]\nhorizn = 3\n", "unknown key \\[fan\\] 'horizn'"),
    ("colour = 1\n", "unknown entry 'colour'"),
    ('[[models]]\nmodel = "nosuch"\n', "unknown model 'nosuch'"),
    ('[[models]]\nmodel = "wavenet"\nseeds = 3\n', "seeds must be a list of integers"),
    ("[fan]\nhorizon = 0\n", "fan_horizon must be a positive integer"),
    ('[anomaly]\nmodel = "absent"\n', "anomaly_model 'absent' is not one of"),
    ("[fan\n", "not valid TOML"),
])
def test_bad_config_names_the_problem(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "report.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        ReportConfig.from_toml(path)


def test_anomaly_section_shows_what_the_detector_flags(page: str) -> None:
    r = finar.returns(finar.load("sp500")["adj_close"])
    train, test = r.loc[:"2014-12-31"], r.loc["2015-01-01":"2018-12-31"]
    det = finar.AnomalyDetector(finar.models.GARCH(dist="t"), level=0.01).fit(train)
    flags = det.score(test, context=train)
    section = section_html(page, "anomalies")
    assert f"{int(flags['flag'].sum())} of {len(flags):,} days flagged" in section
    assert f"fitted on {fmt(train.index[0])} to {fmt(train.index[-1])}" in section
    first_event = det.events(flags).iloc[0]
    assert f"<td class=\"num\">{fmt(first_event['start'])}</td>" in section


def test_tick_section_shows_the_realism_of_a_fitted_tick_model() -> None:
    trades = finar.ticks.simulate(n_events=4_000, seed=0)
    params = {"channels": 8, "layers": 3, "hidden": 8, "train__window": 64, "train__max_epochs": 1}
    cfg = replace(SMALL, tick_events=800, tick_params=params)
    px = finar.load("sp500", start="2018-01-01")[["adj_close"]]
    sec = Section("ticks", "Tick realism")
    tick_realism(Context(Data("sp500", px, finar.returns(px["adj_close"])), cfg, trades, HOSTILE), sec)
    body = sec.to_html()
    synth = sec.results["synthetic"]
    assert len(synth) == 800
    expected = finar.ticks.realism(trades, synth).table()
    for metric, row in expected.iterrows():
        assert f"<td>{html.escape(str(metric))}</td>" in body and fmt(row.iloc[-1]) in body
    assert sec.figures == 1 and HOSTILE not in body and html.escape(HOSTILE) in body
    # the recorded real-trade results, beside the real-vs-real floor, from the packaged P5 file
    recorded = read_result("p5_ticks.json")
    emini = {r["model"]: r for r in recorded["rows"] if r["data"] == "emini"}
    assert "Recorded P5 on real trades" in body and "<td>real vs real</td>" in body
    for model in ("TickModel", "Hawkes", "MarkovHawkes"):
        assert f"<td>{model}</td>" in body and fmt(emini[model]["auroc"]) in body
    # means over several generated streams, with the lowest and highest stream beside them
    assert "AUROC, lowest to highest stream" in body and "<td>real, end of training</td>" in body
    assert f"<td>{html.escape(emini['TickModel']['auroc_range'])}</td>" in body
