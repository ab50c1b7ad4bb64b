"""A real browser opens a report the tests produced: no console errors, every figure drawn.

Headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it) loads a copy of the report
with a small probe script added: it records console errors and uncaught exceptions from the
first line of ``<head>`` on, and after load writes, for every plotly graph div, how many traces
it has and how many it drew into the page, which ``--dump-dom`` returns. The unmodified report
is then screenshotted to ``tests/artifacts/report.png`` (git-ignored) with console logging on.
The report of the bundled panel ``sp500-stocks`` (with its portfolio section) gets the same probe.
Without a browser the test skips, unless ``FINAR_REQUIRE_BROWSER=1`` (set by ``.ci/run``),
where it fails: in CI it must run.

The notebook pages of the documentation site get the same check: the built site
(:func:`tests.docs.site.built_site`) is copied, the probe added to each notebook page, and the
copy served over HTTP on 127.0.0.1 (as a reader's browser would get it: the site's search
worker does not load from ``file://``); each page must draw every plotly figure it holds, with
no console error and nothing fetched from the network (the pages load plotly.js from the site).
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from finar.reporting import Report
from tests.docs.site import NOTEBOOKS, built_site
from tests.report.conftest import ARTIFACTS

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
         "--no-first-run", "--disable-extensions", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PROBE_HEAD = """<script>
window.__finarErrors = [];
window.addEventListener("error", function (ev) { window.__finarErrors.push("uncaught: " + ev.message); });
(function () { var orig = console.error; console.error = function () {
  window.__finarErrors.push("console.error: " + Array.prototype.join.call(arguments, " "));
  return orig.apply(console, arguments); }; })();
</script>"""
PROBE_TAIL = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var divs = Array.prototype.slice.call(document.querySelectorAll(".plotly-graph-div"));
  var out = divs.map(function (gd) { return {id: gd.id, traces: (gd.data || []).length,
    drawn: gd.querySelectorAll("g.trace, g.barlayer .point, g.scatterlayer .trace").length,
    svg: gd.querySelectorAll("svg.main-svg").length, laid_out: !!gd._fullLayout}; });
  var pre = document.createElement("pre"); pre.id = "finar-probe";
  pre.textContent = JSON.stringify({errors: window.__finarErrors, graphs: out,
    height: document.documentElement.scrollHeight, sections: document.querySelectorAll("section").length});
  document.body.appendChild(pre); }, 1500); });
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("FINAR_REQUIRE_BROWSER") == "1":
        pytest.fail("FINAR_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
    pytest.skip("no chromium on PATH; .ci/run installs it and sets FINAR_REQUIRE_BROWSER=1")


def run(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, *FLAGS, *args], capture_output=True, text=True, timeout=180, check=False)


def console_errors(stderr: str) -> list[str]:
    """Chromium's console lines (``--enable-logging=stderr``) that report an error."""
    return [line for line in stderr.splitlines()
            if ":CONSOLE(" in line and re.search(r"error|uncaught", line, flags=re.IGNORECASE)]


def probe_report(browser: str, report_file: Path, report: Report, tmp_path: Path) -> dict:
    """A probed copy of ``report_file`` opened: no errors, every figure of ``report`` drawn."""
    page = report_file.read_text(encoding="utf-8")
    probe = tmp_path / f"probe-{report_file.stem}.html"
    probed = page.replace("<head>", "<head>\n" + PROBE_HEAD, 1).replace("</body>", PROBE_TAIL + "</body>")
    probe.write_text(probed, encoding="utf-8")
    dumped = run(browser, "--dump-dom", "--virtual-time-budget=30000", "--enable-logging=stderr", "--v=0",
                 probe.as_uri())
    m = re.search(r'<pre id="finar-probe">(.*?)</pre>', dumped.stdout, flags=re.S)
    assert m, f"the probe did not run; chromium said: {dumped.stderr[-2000:]}"
    result = json.loads(html.unescape(m.group(1)))
    assert result["errors"] == []
    assert console_errors(dumped.stderr) == []
    expected = sum(s.figures for s in report.sections)
    assert len(result["graphs"]) == expected
    for g in result["graphs"]:
        assert g["laid_out"] and g["svg"] >= 1 and g["traces"] >= 1 and g["drawn"] >= 1, g
    assert result["sections"] == len(report.sections)
    return result


def test_report_opens_in_chromium_with_every_figure_drawn(small_report_file: Path, small_report: Report,
                                                          tmp_path: Path) -> None:
    browser = chromium()
    result = probe_report(browser, small_report_file, small_report, tmp_path)

    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    height = min(int(result["height"]) + 50, 16000)
    done = run(browser, f"--screenshot={shot}", f"--window-size=1400,{height}", "--virtual-time-budget=30000",
               "--enable-logging=stderr", "--v=0", small_report_file.resolve().as_uri())
    assert console_errors(done.stderr) == []
    assert shot.is_file() and shot.stat().st_size > 50_000, done.stderr[-2000:]


# ---- the notebook pages of the documentation site ---------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # no request log on the test's output
        pass


@pytest.fixture(scope="module")
def served_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A probed copy of the built site, served on 127.0.0.1; yields its base URL."""
    chromium()  # skip (or fail in CI) before building anything
    copy = tmp_path_factory.mktemp("docs") / "site"
    shutil.copytree(built_site(), copy)
    for nb in NOTEBOOKS:
        page = copy / "notebooks" / nb.stem / "index.html"
        text = page.read_text(encoding="utf-8")
        text = text.replace("<head>", "<head>\n" + PROBE_HEAD, 1).replace("</body>", PROBE_TAIL + "</body>")
        page.write_text(text, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=copy)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_page_draws_every_figure(served_site: str, notebook: Path) -> None:
    browser = chromium()
    page = built_site() / "notebooks" / notebook.stem / "index.html"
    expected = page.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    dumped = run(browser, "--dump-dom", "--virtual-time-budget=30000", "--enable-logging=stderr", "--v=0",
                 f"{served_site}/notebooks/{notebook.stem}/")
    m = re.search(r'<pre id="finar-probe">(.*?)</pre>', dumped.stdout, flags=re.S)
    assert m, f"the probe did not run; chromium said: {dumped.stderr[-2000:]}"
    result = json.loads(html.unescape(m.group(1)))
    assert result["errors"] == []
    assert console_errors(dumped.stderr) == []
    assert len(result["graphs"]) == expected
    for g in result["graphs"]:
        assert g["laid_out"] and g["svg"] >= 1 and g["traces"] >= 1 and g["drawn"] >= 1, g


def test_panel_report_of_sp500_stocks_opens_in_chromium(stocks_report_file: Path, stocks_report: Report,
                                                        tmp_path: Path) -> None:
    """``finar report --data sp500-stocks`` (small sizes): the portfolio section's fans draw too."""
    browser = chromium()
    result = probe_report(browser, stocks_report_file, stocks_report, tmp_path)
    ids = {g["id"] for g in result["graphs"]}
    assert {f"portfolio-{i}" for i in range(1, 5)} <= ids
