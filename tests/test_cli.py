"""The ``finar`` command, run in-process with typer's CliRunner on tiny sizes and fixed seeds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

import finar
from finar.cli import app, parse_param, parse_params

runner = CliRunner()
# three years of S&P 500 returns: enough for GARCH, fast to fit
FIT_ARGS = ["--data", "sp500", "--start", "2015-01-01", "--end", "2017-12-31"]


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, *fragments: str) -> str:
    """Exit status 2, one red ``error:`` line naming the problem, no traceback; returns the line."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def garch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "garch.pt"
    result = invoke("fit", *FIT_ARGS, "--model", "garch", "--param", "dist=t", "--out", path)
    assert result.exit_code == 0, result.output
    return path


# ---- help and version ----------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], *([c] for c in sorted(get_command(app).commands))])
def test_help_for_every_command(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "finar" in result.output


def test_help_lists_commands_and_models() -> None:
    assert {"datasets", "fit", "sample", "demo"} <= set(get_command(app).commands)
    result = invoke("fit", "--help")
    for name in finar.models.registry(finar.models.Forecaster):
        assert name in result.output


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"finar {finar.__version__}"


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "Usage:" in result.output and "demo" in result.output


# ---- datasets ------------------------------------------------------------------------------
def test_datasets_lists_bundled_data() -> None:
    result = invoke("datasets")
    assert result.exit_code == 0, result.output
    for name in finar.datasets()["name"]:
        assert name in result.output
    assert "1999-01-04 to 2018-12-31" in result.output  # sp500's span
    assert "5,031" in result.output                       # and its rows


# ---- --param parsing -----------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("p=2", ("p", 2)),
    ("lags=-1", ("lags", -1)),
    ("scale=1.5", ("scale", 1.5)),
    ("tol=1e-3", ("tol", 0.001)),
    ("flag=true", ("flag", True)),
    ("flag=False", ("flag", False)),
    ("o=none", ("o", None)),
    ("o=null", ("o", None)),
    ("dist=t", ("dist", "t")),
    ("order='5'", ("order", "5")),
    (' vol = gjr ', ("vol", "gjr")),
])
def test_parse_param(text: str, expected: tuple[str, object]) -> None:
    key, value = parse_param(text)
    assert (key, value) == expected
    assert type(value) is type(expected[1])


@pytest.mark.parametrize("text", ["dist", "=3", "1a=2", "a b=1"])
def test_parse_param_refuses_malformed(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_param(text)


def test_parse_params_refuses_repeated_key() -> None:
    assert parse_params(["p=1", "q=2"]) == {"p": 1, "q": 2}
    with pytest.raises(typer.BadParameter, match="twice"):
        parse_params(["p=1", "p=2"])


def test_fit_passes_typed_params_to_the_model(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    result = invoke("fit", *FIT_ARGS, "--model", "garch", "-p", "dist=normal", "-p", "p=2",
                    "-p", "o=none", "--out", out)
    assert result.exit_code == 0, result.output
    params = finar.models.load(out).get_params()
    assert params["p"] == 2 and isinstance(params["p"], int)
    assert params["dist"] == "normal" and params["o"] is None
    assert "dist='normal'" in result.output


def test_malformed_param_is_a_usage_error() -> None:
    result = invoke("fit", *FIT_ARGS, "--model", "garch", "--param", "dist")
    assert result.exit_code == 2
    assert "key=value" in result.output and "Traceback" not in result.output


# ---- fit and sample ------------------------------------------------------------------------
def test_fit_summary_matches_the_library(garch_file: Path) -> None:
    r = finar.returns(finar.load("sp500", start="2015-01-01", end="2017-12-31")["adj_close"])
    result = invoke("fit", *FIT_ARGS, "--model", "garch", "--param", "dist=t")
    assert result.exit_code == 0, result.output
    lp = finar.models.load(garch_file).log_prob(r).dropna()
    assert f"{len(lp):,}" in result.output
    assert f"{lp.sum():,.2f}" in result.output     # total log-likelihood
    assert f"{lp.mean():.4f}" in result.output     # mean log score per day
    assert "GARCH(" in result.output


def test_fit_then_sample_round_trip(garch_file: Path, tmp_path: Path) -> None:
    outs = {name: tmp_path / f"{name}.parquet" for name in ("a", "b", "c")}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        result = invoke("sample", "--model", garch_file, *FIT_ARGS, "--horizon", 5, "--paths", 30,
                        "--seed", seed, "--out", outs[name])
        assert result.exit_code == 0, result.output

    frame = pd.read_parquet(outs["a"])
    assert frame.shape == (30 * 5, 1)
    assert frame.index.names == ["path", "time"]
    # the paths follow the last context date (Fri 2017-12-29) on business days
    dates = frame.index.get_level_values("time").unique()
    assert dates[0] == pd.Timestamp("2018-01-01") and len(dates) == 5
    assert outs["a"].read_bytes() == outs["b"].read_bytes()      # same seed, same file
    assert not frame.equals(pd.read_parquet(outs["c"]))          # another seed, other paths

    # the CLI is the library: the same context, horizon, paths and seed give the same paths
    r = finar.returns(finar.load("sp500", start="2015-01-01", end="2017-12-31")["adj_close"])
    sc = finar.models.load(garch_file).sample(context=r, horizon=5, n_paths=30, seed=1)
    pd.testing.assert_frame_equal(frame, sc.to_frame(), check_freq=False)


def test_sample_prints_risk_of_the_cumulative_return(garch_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    result = invoke("sample", "-m", garch_file, *FIT_ARGS, "--horizon", 10, "-n", 200,
                    "--out", out)
    assert result.exit_code == 0, result.output
    cum = pd.read_parquet(out)["adj_close"].to_numpy().reshape(200, 10).sum(axis=1)
    var5 = -np.quantile(cum, 0.05)
    es5 = -cum[cum <= -var5].mean()
    printed = dict(re.findall(r"^(VaR 5%|ES 5%)\s+(-?\d+\.\d+)", result.stdout, flags=re.M))
    assert float(printed["VaR 5%"]) == pytest.approx(var5, abs=0.006)
    assert float(printed["ES 5%"]) == pytest.approx(es5, abs=0.006)


def test_sample_csv_and_html(garch_file: Path, tmp_path: Path) -> None:
    out, page = tmp_path / "s.csv", tmp_path / "pages" / "s.html"
    result = invoke("sample", "-m", garch_file, *FIT_ARGS, "--horizon", 3, "-n", 7, "--out", out,
                    "--html", page, "--title", "<b>mine</b>")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out).shape == (7 * 3, 3)  # path, time, adj_close
    text = page.read_text()
    assert text.count('class="plotly-graph-div"') == 1
    assert "&lt;b&gt;mine&lt;/b&gt;" in text and "<b>mine</b>" not in text


def test_fit_and_sample_a_panel_by_column(tmp_path: Path) -> None:
    model, out = tmp_path / "ar.pt", tmp_path / "s.parquet"
    args = ["--data", "sp500-stocks", "--start", "2020-01-01", "-c", "AAPL", "-c", "msft"]
    result = invoke("fit", *args, "--model", "ar", "-p", "order=1", "--out", model)
    assert result.exit_code == 0, result.output
    assert "AAPL" in result.output and "all (sum)" in result.output
    # sample picks the model's columns by default
    result = invoke("sample", "-m", model, "--data", "sp500-stocks", "--horizon", 2, "-n", 4,
                    "--out", out)
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out).columns.tolist() == ["AAPL", "MSFT"]


# ---- errors --------------------------------------------------------------------------------
def test_unknown_model() -> None:
    result = invoke("fit", *FIT_ARGS, "--model", "nope")
    assert_user_error(result, "unknown model 'nope'", "garch")


def test_unknown_dataset() -> None:
    result = invoke("fit", "--data", "nope", "--model", "garch")
    assert_user_error(result, "unknown dataset 'nope'", "sp500")


def test_unknown_model_parameter_names_the_parameters() -> None:
    result = invoke("fit", *FIT_ARGS, "--model", "garch", "-p", "foo=1")
    assert_user_error(result, "'foo'", "dist='t'")


def test_bad_parameter_value() -> None:
    result = invoke("fit", *FIT_ARGS, "--model", "garch", "-p", "dist=cauchy")
    assert_user_error(result, "dist", "'cauchy'")


def test_missing_column() -> None:
    result = invoke("fit", *FIT_ARGS, "--model", "garch", "--column", "nothere")
    assert_user_error(result, "nothere", "adj_close")


def test_missing_or_foreign_model_file(tmp_path: Path) -> None:
    assert_user_error(invoke("sample", "-m", tmp_path / "none.pt", "--data", "sp500"),
                      "model file not found")
    foreign = tmp_path / "foreign.pt"
    foreign.write_text("not a model")
    assert_user_error(invoke("sample", "-m", foreign, "--data", "sp500"), "not a readable finar model")


def test_unknown_output_type_is_refused_before_work(garch_file: Path, tmp_path: Path) -> None:
    result = invoke("sample", "-m", garch_file, "--data", "sp500", "--out", tmp_path / "s.xlsx")
    assert_user_error(result, ".parquet or .csv")
    assert not (tmp_path / "s.xlsx").exists()


# ---- demo ----------------------------------------------------------------------------------
def test_demo_fast_writes_scenarios_and_page(tmp_path: Path) -> None:
    result = invoke("demo", "--out-dir", tmp_path / "reports", "--fast")
    assert result.exit_code == 0, result.output
    parquet, page = tmp_path / "reports" / "sp500_scenarios.parquet", tmp_path / "reports" / "sp500.html"
    frame = pd.read_parquet(parquet)
    assert frame.shape == (250 * 20, 1)
    assert frame.index.get_level_values("time")[0] == pd.Timestamp("2018-01-01")
    text = page.read_text()
    assert text.count('class="plotly-graph-div"') == 2  # GARCH and AR
    assert "GARCH(1,1)-t" in text and "AR(aic)" in text
    assert str(parquet) in result.stdout.replace("\n", "") and str(page) in result.stdout.replace("\n", "")


# ---- report, backtest, anomalies, ticks -------------------------------------------------------
SMALL_TOML = """
[fan]
horizon = 10
n_paths = 50
[facts]
n_paths = 10
length = 300
lags = 30
[backtest]
refit_every = 200
n_paths = 50
[[models]]
name = "GARCH(1,1) Student-t"
model = "garch"
params = { dist = "t" }
"""


def test_report_on_a_csv_with_a_config(tmp_path: Path) -> None:
    csv = tmp_path / "my prices.csv"
    finar.load("sp500", start="2016-01-01")[["close"]].to_csv(csv)
    (tmp_path / "report.toml").write_text(SMALL_TOML)
    out = tmp_path / "out" / "r.html"
    result = invoke("report", "--data", csv, "--config", tmp_path / "report.toml", "--out", out,
                    "--title", "My <b>prices</b>")
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if re.match(r"\[\d/\d\] ", line)]
    assert len(progress) == 7 and progress[0].startswith("[1/7] Data overview")
    page = out.read_text()
    assert "My &lt;b&gt;prices&lt;/b&gt;" in page and "GARCH(1,1) Student-t" in page
    assert str(out) in result.stdout.replace("\n", "")


def test_report_bad_config_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "report.toml").write_text("[fan]\nhorizn = 3\n")
    result = invoke("report", "--config", tmp_path / "report.toml", "--out", tmp_path / "r.html")
    assert_user_error(result, "unknown key [fan] 'horizn'")
    assert not (tmp_path / "r.html").exists()


def test_backtest_prints_what_the_library_computes(tmp_path: Path) -> None:
    out = tmp_path / "daily.csv"
    result = invoke("backtest", "--data", "sp500", "-m", "garch:dist=t", "-m", "ar:order=1",
                    "--test-start", "2018-01-01", "--refit-every", "120", "--out", out)
    assert result.exit_code == 0, result.output
    r = finar.returns(finar.load("sp500")["adj_close"])
    bt = finar.backtest(finar.models.GARCH(dist="t"), r, "2018-01-01", refit_every=120, progress=False)
    s = bt.summary()
    row = next(line for line in result.stdout.splitlines() if line.startswith("garch:dist=t"))
    assert f"{s['log_score']:.4f}" in row and f"{s['hit_1']:.2%}" in row and s["traffic_light"] in row
    daily = pd.read_csv(out)
    assert set(daily["model"]) == {"garch:dist=t", "ar:order=1"} and len(daily) == 2 * len(bt.daily)
    assert np.allclose(daily.loc[daily["model"] == "garch:dist=t", "log_score"], bt.daily["log_score"])
    assert "backtest of garch:dist=t" in result.stderr


def test_backtest_defaults_read_the_range_when_the_data_has_it() -> None:
    """Without -m: GARCH-t and AR, plus GJR-X with the day's range when the bars have high and low
    prices (and the command says so); returns only on close-only data."""
    ohlc = invoke("backtest", "--data", "sp500", "--start", "2016-01-01", "--test-start", "2018-07-02",
                  "--refit-every", "250")
    assert ohlc.exit_code == 0, ohlc.output
    rows = [line.split()[0] for line in ohlc.stdout.splitlines() if line[:1].isalpha() and ":" in line[:20]]
    assert "garchx:vol=gjr,dist=t,exog=true" in rows and "garch:dist=t" in rows
    assert "Covariate: the day's Parkinson range" in ohlc.stderr
    close = invoke("backtest", "--data", "wti", "--start", "2016-01-01", "--test-start", "2018-07-02",
                   "--refit-every", "250")
    assert close.exit_code == 0, close.output
    assert "garchx" not in close.stdout and "garch:dist=t" in close.stdout
    assert "no high/low prices, so models see returns only" in close.stderr.replace("\n", " ")


def test_backtest_unknown_model_is_a_one_line_error() -> None:
    assert_user_error(invoke("backtest", "-m", "nosuch"), "unknown model 'nosuch'")


def test_anomalies_flags_what_the_detector_flags(tmp_path: Path) -> None:
    out = tmp_path / "flags.csv"
    result = invoke("anomalies", "--data", "sp500", "-m", "garch:dist=t", "--start", "2012-01-01",
                    "--train-end", "2017-12-31", "--out", out)
    assert result.exit_code == 0, result.output
    r = finar.returns(finar.load("sp500", start="2012-01-01")["adj_close"])
    det = finar.AnomalyDetector(finar.models.GARCH(dist="t"), level=0.01).fit(r.loc[:"2017-12-31"])
    flags = det.score(r.loc["2018-01-01":], context=r.loc[:"2017-12-31"])
    assert f"; {int(flags['flag'].sum())} flagged at level 0.01" in result.stdout.replace("\n", " ")
    written = pd.read_csv(out, index_col=0, parse_dates=True)
    assert written["flag"].tolist() == flags["flag"].tolist()


def test_ticks_fits_samples_and_scores(tmp_path: Path) -> None:
    args = ["ticks", "--events", "4000", "--synthetic", "1000", "-p", "channels=8", "-p", "layers=3",
            "-p", "hidden=8", "-p", "train__window=64", "-p", "train__max_epochs=1",
            "--out", tmp_path / "syn.parquet"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "zero_gap_share" in result.stdout
    assert len(pd.read_parquet(tmp_path / "syn.parquet")) == 1000


def test_make_demo_rebuilds_its_report(tmp_path: Path) -> None:
    """``make demo`` runs the main job again over its earlier report: its command passes --force,
    which replaces an existing page (without it the command refuses, as every command does)."""
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    line = next(ln.strip() for ln in makefile.split("\ndemo:")[1].splitlines() if "finar" in ln)
    args = line.split()[1:]
    assert args[:1] == ["report"] and "--force" in args
    assert args[args.index("--out") + 1] == "reports/sp500.html"
    out = tmp_path / "sp500.html"
    out.write_text("an earlier report")
    assert_user_error(invoke("report", "--out", out, "--fast", "--data", "nope"), str(out), "--force")
    assert out.read_text() == "an earlier report"
