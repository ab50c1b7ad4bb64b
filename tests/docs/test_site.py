"""The documentation site: every page built, the protocol page, generated benchmark tables,
notebook pages with their figures, and no reference to a file the project does not have.

The build itself is ``mkdocs build --strict`` (``make docs``, which ``make test`` runs first):
a broken link, a stale docstring parameter or a results file without a table fails it. These
tests read that build (see :mod:`tests.docs.site`) and check what the strict build cannot.
"""

from __future__ import annotations

import html
import importlib.util
import json
import logging
import re
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml

from tests.docs.blocks import DOCS
from tests.docs.site import NOTEBOOKS, ROOT, built_site, page

README_LIMIT = 8 * 1024
#: user-facing text that must point to the protocol page, not to a PROTOCOLS.md finar lacks
PROTOCOL_TEXT = [ROOT / "README.md", *NOTEBOOKS, *sorted((ROOT / "finar" / "reporting").glob("*.py")),
                 *sorted((ROOT / "finar" / "cli").glob("*.py"))]


def hook(name: str) -> ModuleType:
    """A module of docs/_scripts, loaded from its file as mkdocs loads hooks."""
    path = ROOT / "docs" / "_scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"finar_docs_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in nav_pages(item)]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in nav_pages(v)]
    return []


def text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def site() -> Path:
    return built_site()


# ---- the pages ---------------------------------------------------------------------------------
def test_every_page_of_the_nav_is_built(site: Path) -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace("!ENV", ""))
    pages = nav_pages(config["nav"])
    assert {"index.md", "getting-started.md", "protocols.md", "benchmarks.md", "testing.md"} <= set(pages)
    guides = {p for p in pages if p.startswith("guide/")}
    assert {f"guide/{g}.md" for g in ("data", "models", "evaluation", "scenarios", "anomalies", "ticks",
                                      "reports", "scaling-out")} <= guides
    assert {f"notebooks/{nb.stem}.md" for nb in NOTEBOOKS} <= set(pages)
    for src in pages:
        assert page(site, src).is_file(), src


def test_the_api_reference_is_generated_from_docstrings(site: Path) -> None:
    models = page(site, "api/models.md").read_text(encoding="utf-8")
    for name in ("finar.models.garch.GARCH", "finar.models.wavenet.WaveNet", "finar.models.base.Forecaster",
                 "finar.models.predictive.Predictive"):
        assert f'id="{name}"' in models, name
    assert "Examples" in models and "Parameters" in models
    assert not re.search(r":(func|class|mod|meth|data|attr):<code>", models), "a Sphinx role left on the page"
    assert 'id="finar.testing.check_forecaster"' in page(site, "api/testing.md").read_text(encoding="utf-8")


def test_the_protocol_page_restates_p1_to_p6(site: Path) -> None:
    body = page(site, "protocols.md").read_text(encoding="utf-8")
    for p in ("p1", "p1m", "p2", "p3", "p4", "p5", "p6"):
        assert f'id="{p}"' in body, p
    words = text(page(site, "protocols.md"))
    for fact in ("2015-01-01", "1,006", "-1.0728", "nu = 6", "2009-05-01", "Quant GANs", "AUROC", "mlfinpy",
                 "DCC(1,1)", "-28.948"):
        assert fact in words, fact


def test_no_page_cites_a_protocols_md(site: Path) -> None:
    # the API pages render docstrings of modules outside this test's care (listed in the docs report);
    # every other page, the notebooks, the report and the CLI point to the protocol page
    for built in sorted(site.rglob("*.html")):
        if "api" in built.relative_to(site).parts:
            continue
        assert "PROTOCOLS.md" not in built.read_text(encoding="utf-8"), built.relative_to(site)
    for source in PROTOCOL_TEXT:
        assert "PROTOCOLS.md" not in source.read_text(encoding="utf-8"), source.relative_to(ROOT)


# ---- benchmark tables ----------------------------------------------------------------------------
def test_every_results_file_has_its_table_on_the_benchmarks_page(site: Path) -> None:
    bench = hook("benchmarks")
    body = text(page(site, "benchmarks.md"))
    results = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert len(results) >= 10
    for path in results:
        assert f"benchmarks/results/{path.name}" in body, path.name
        table = bench.render(path.stem)
        for line in table.splitlines()[2:]:
            if not line.startswith("|"):
                break
            first = re.split(r"(?<!\\)\|", line)[1].strip().replace("\\|", "|")
            assert first in body, (path.name, first)


def test_tables_follow_the_results_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    bench = hook("benchmarks")
    p1 = json.loads((ROOT / "benchmarks" / "results" / "p1_sp500_daily.json").read_text(encoding="utf-8"))
    p1["rows"] = [{**p1["rows"][0], "model": "a model", "log_score": -0.98765}]
    (tmp_path / "p1_sp500_daily.json").write_text(json.dumps(p1), encoding="utf-8")
    unplaced = {"protocol": "P9", "rows": [{"x": 1}]}
    (tmp_path / "unplaced.json").write_text(json.dumps(unplaced), encoding="utf-8")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    page_ = SimpleNamespace(file=SimpleNamespace(src_uri="benchmarks.md"))

    bench.on_pre_build(None)
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.finar.benchmarks"):
        out = bench.on_page_markdown("text\n<!-- results: p1_sp500_daily -->\n<!-- results: gone -->\n",
                                     page_, None, None)
        bench.on_post_build(None)
    assert "| a model | finar | -0.9877 |" in out
    assert "missing: benchmarks/results/gone.json" in out
    missing = [r.getMessage() for r in caplog.records if "gone" in r.getMessage()]
    placed = [r.getMessage() for r in caplog.records if "without a table" in r.getMessage()]
    assert len(missing) == 1 and len(placed) == 1
    assert placed[0].endswith(": unplaced")


def test_p3_rows_are_means_over_seeds() -> None:
    bench = hook("benchmarks")
    rows = [{"model": "real", "kind": "real", "seed": None, "dy_1": None},
            {"model": "g", "kind": "finar", "seed": 0, "dy_1": 1.0},
            {"model": "g", "kind": "finar", "seed": 1, "dy_1": 3.0}]
    means = bench.seed_means(rows)
    assert [m["model"] for m in means] == ["real", "g"]
    assert means[1]["dy_1"] == 2.0 and means[1]["seeds"] == 2


# ---- notebook pages ------------------------------------------------------------------------------
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_page_shows_every_figure_offline(site: Path, notebook: Path) -> None:
    body = page(site, f"notebooks/{notebook.stem}.md").read_text(encoding="utf-8")
    nb = hook("notebooks").last_executed(notebook)  # the executed copy the build converted
    assert nb is not None, f"no executed copy of {notebook.name} in the notebook cache: build the site first"
    figures = sum("plotly-graph-div" in "".join(o.get("data", {}).get("text/html", ""))
                  for c in nb.cells for o in c.get("outputs", []))
    assert body.count('class="plotly-graph-div"') == figures
    if figures:
        asset = re.findall(r'<script src="([^"]*plotly\.min\.js)"></script>', body)
        assert len(asset) == 1
        assert (page(site, f"notebooks/{notebook.stem}.md").parent / asset[0]).resolve().is_file()
        assert body.index(asset[0]) < body.index('class="plotly-graph-div"')
    assert not re.search(r'\bsrc="(https?:)?//', body), "a notebook page loads something from the network"
    assert 'href="../docs/' not in body and 'href="../../docs/' not in body


def test_notebook_links_to_the_site_resolve(site: Path) -> None:
    for nb in NOTEBOOKS:
        where = page(site, f"notebooks/{nb.stem}.md")
        for href in re.findall(r'href="(\.\.[^"#]*)(#[^"]*)?"', where.read_text(encoding="utf-8")):
            target = (where.parent / href[0]).resolve()
            target = target / "index.html" if target.is_dir() else target
            assert target.is_file(), (nb.name, href)
            if href[1]:
                assert f'id="{href[1][1:]}"' in target.read_text(encoding="utf-8"), (nb.name, href)


# ---- the README -----------------------------------------------------------------------------------
def test_the_readme_is_a_landing_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) < README_LIMIT
    assert "make demo" in readme and "make test" in readme and "```python" in readme
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", readme)
    assert len(links) >= 8
    for link in links:
        assert (ROOT / link).is_file(), link
    # its ten lines are the getting-started page's, which the code-block test runs
    ten = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    started = re.findall(r"```python\n(.*?)```", (DOCS / "getting-started.md").read_text(encoding="utf-8"),
                         flags=re.S)
    assert len(ten) == 1 and ten[0] in started
    assert len([line for line in ten[0].splitlines() if line.strip()]) <= 12


def test_the_readme_figures_are_the_recorded_ones() -> None:
    """The P5 figures the README quotes are those of benchmarks/results/p5_ticks.json."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = json.loads((ROOT / "benchmarks" / "results" / "p5_ticks.json").read_text(encoding="utf-8"))["rows"]
    emini = {r["model"]: r for r in rows if r["data"] == "emini"}
    quoted = [f"{emini['TickModel']['loglik_per_event']:.3f} nats per trade",
              f"Hawkes {emini['Hawkes']['loglik_per_event']:.3f}",
              f"AUROC {emini['TickModel']['auroc']:.3f}", f"give {emini['real vs real']['auroc']:.3f}",
              f"give {emini['real, end of training']['auroc']:.3f}"]
    text = " ".join(readme.split())
    for figure in quoted:
        assert figure in text, figure


# ---- the API pages' module lists ------------------------------------------------------------------
def test_api_pages_list_every_module_and_flag_renamed_ones(caplog: pytest.LogCaptureFixture) -> None:
    api = hook("api")
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.finar.api"):
        out = api.expand("finar.evaluation", ["scoring", "gone", "-joint"], "api/evaluation.md")
    blocks = re.findall(r"^::: (\S+)$", out, flags=re.M)
    assert blocks[0] == "finar.evaluation.scoring"
    every = {f"finar.evaluation.{m}" for m in api.modules("finar.evaluation")}
    assert set(blocks) == every - {"finar.evaluation.joint"} and "finar.evaluation.stattests" in every
    assert [r.getMessage() for r in caplog.records if "gone" in r.getMessage()]
    assert "cli" in api.modules("finar") and "_estimator" not in api.modules("finar")
