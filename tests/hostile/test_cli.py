"""Every ``finar`` command on hostile input, and the rule that nothing is lost.

No command overwrites an existing file unless ``--force`` is given, and none writes over one of
its own inputs even then; each refusal is one ``error:`` line, exit status 2, before any work.
The other cases give a bad seed, file, date or parameter to each command and check the one-line
error names it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import finar
from tests.test_cli import assert_user_error, invoke

SMALL_TOML = """
[fan]
horizon = 5
n_paths = 20
[facts]
n_paths = 5
length = 200
lags = 10
[backtest]
refit_every = 250
n_paths = 20
[[models]]
name = "AR(1)"
model = "ar"
params = { order = 1 }
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with a small price file, a trades file, a report config and a fitted model."""
    folder = tmp_path_factory.mktemp("cli")
    finar.load("sp500", start="2016-01-01")[["high", "low", "close"]].to_csv(folder / "px.csv")
    finar.ticks.simulate(n_events=3_000, seed=0).to_csv(folder / "trades.csv")
    (folder / "report.toml").write_text(SMALL_TOML)
    result = invoke("fit", "--data", folder / "px.csv", "--model", "ar", "-p", "order=1", "--out",
                    folder / "ar.pt")
    assert result.exit_code == 0, result.output
    return folder


TICK_ARGS = ["--events", "3000", "--synthetic", "300", "-p", "channels=8", "-p", "layers=2", "-p", "hidden=8",
             "-p", "train__window=64", "-p", "train__max_epochs=1"]


def command(name: str, work: Path, out: Path) -> list[str | Path]:
    """The arguments of a quick run of ``name`` writing its main output to ``out``."""
    px = work / "px.csv"
    return {
        "fit": ["fit", "--data", px, "--model", "ar", "-p", "order=1", "--out", out],
        "sample --out": ["sample", "-m", work / "ar.pt", "--data", px, "-n", 5, "--out", out],
        "sample --html": ["sample", "-m", work / "ar.pt", "--data", px, "-n", 5, "--html", out],
        "report": ["report", "--data", px, "--config", work / "report.toml", "--out", out],
        "backtest": ["backtest", "--data", px, "-m", "ar:order=1", "--test-start", "2018-09-01",
                     "--refit-every", "200", "--covariates", "none", "--out", out],
        "anomalies": ["anomalies", "--data", px, "-m", "ar:order=1", "--train-end", "2018-06-30",
                      "--covariates", "none", "--out", out],
        "ticks": ["ticks", *TICK_ARGS, "--out", out],
    }[name]


SUFFIX = {"fit": ".pt", "sample --out": ".csv", "sample --html": ".html", "report": ".html",
          "backtest": ".csv", "anomalies": ".parquet", "ticks": ".parquet"}
WRITERS = sorted(SUFFIX)


# ---- nothing lost: existing files -------------------------------------------------------------------
@pytest.mark.parametrize("name", WRITERS)
def test_an_existing_output_is_kept_without_force(name, work, tmp_path):
    out = tmp_path / f"out{SUFFIX[name]}"
    out.write_bytes(b"precious")
    result = invoke(*command(name, work, out))
    assert_user_error(result, str(out), "exists", "--force")
    assert out.read_bytes() == b"precious"
    assert result.stdout == ""  # refused before any work: nothing was computed or printed


@pytest.mark.parametrize("name", WRITERS)
def test_force_replaces_an_existing_output(name, work, tmp_path):
    out = tmp_path / f"out{SUFFIX[name]}"
    out.write_bytes(b"old")
    result = invoke(*command(name, work, out), "--force")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() != b"old" and out.stat().st_size > 100
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left behind


@pytest.mark.parametrize("name", WRITERS)
def test_a_folder_as_output_is_refused(name, work, tmp_path):
    out = tmp_path / f"folder{SUFFIX[name]}"
    out.mkdir()
    assert_user_error(invoke(*command(name, work, out), "--force"), "is a folder")
    assert out.is_dir()


# ---- nothing lost: an output that is an input ---------------------------------------------------------
INPUT_CASES = {
    "sample --data px.csv --out px.csv": lambda w: ["sample", "-m", w / "ar.pt", "--data", w / "px.csv",
                                                    "--out", w / "px.csv"],
    "report --out equals --data": lambda w: ["report", "--data", w / "px.html", "--out", w / "px.html"],
    "backtest --out equals --data": lambda w: ["backtest", "--data", w / "px.csv", "-m", "ar", "--out",
                                               w / "px.csv"],
    "anomalies --out equals --data": lambda w: ["anomalies", "--data", w / "px.csv", "--out", w / "px.csv"],
    "ticks --out equals --trades": lambda w: ["ticks", "--trades", w / "trades.csv", "--out",
                                              w / "trades.csv"],
    "report --out equals --config": lambda w: ["report", "--data", w / "px.csv", "--config", w / "px.html",
                                               "--out", w / "px.html"],
    "a path spelled another way": lambda w: ["sample", "-m", w / "ar.pt", "--data", w / "px.csv", "--out",
                                             w / "." / "sub" / ".." / "px.csv"],
}


@pytest.mark.parametrize("case", sorted(INPUT_CASES))
def test_an_output_that_is_an_input_is_refused_even_with_force(case, work):
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    if case.startswith("report"):
        (work / "px.html").write_text("<html></html>")
        before["px.html"] = b"<html></html>"
    result = invoke(*INPUT_CASES[case](work), "--force")
    line = assert_user_error(result, "is also", "even with --force")
    assert "--data" in line or "--trades" in line or "--config" in line or "another output" in line
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before


def test_an_output_linked_to_the_input_is_refused(work, tmp_path):
    link = tmp_path / "link.parquet"
    os.symlink(work / "px.csv", link)
    before = (work / "px.csv").read_bytes()
    result = invoke("sample", "-m", work / "ar.pt", "--data", work / "px.csv", "--out", link, "--force")
    assert_user_error(result, "is also --data")
    assert (work / "px.csv").read_bytes() == before


@pytest.mark.parametrize("out", ["prices.csv", "model", "model.parquet", "model.html"])
def test_fit_out_needs_a_model_file_name(out, work, tmp_path):
    assert_user_error(invoke("fit", "--data", work / "px.csv", "-m", "ar", "--out", tmp_path / out), ".pt")
    assert not (tmp_path / out).exists()


@pytest.mark.parametrize(("args", "fragment"), [
    (["sample", "--out", "s.xlsx"], ".parquet or .csv"), (["sample", "--html", "s.csv"], ".html"),
    (["backtest", "--out", "b.json"], ".parquet or .csv"), (["report", "--out", "r.pdf"], ".html"),
])
def test_outputs_need_their_file_type(args, fragment, work, tmp_path):
    cmd, option, name = args
    base = {"sample": ["sample", "-m", work / "ar.pt", "--data", work / "px.csv"],
            "backtest": ["backtest", "--data", work / "px.csv"],
            "report": ["report", "--data", work / "px.csv"]}[cmd]
    assert_user_error(invoke(*base, option, tmp_path / name), fragment)


# ---- demo: its own files are replaced, anyone else's are kept ----------------------------------------
def test_demo_reruns_over_its_own_files_but_keeps_others(tmp_path):
    first = invoke("demo", "--out-dir", tmp_path, "--fast")
    assert first.exit_code == 0, first.output
    again = invoke("demo", "--out-dir", tmp_path, "--fast")  # its documented job: rebuild its outputs
    assert again.exit_code == 0, again.output
    mine = tmp_path / "sp500.html"
    mine.write_text("<html>the full report of make demo</html>")
    assert_user_error(invoke("demo", "--out-dir", tmp_path, "--fast"), "sp500.html", "--force")
    assert mine.read_text() == "<html>the full report of make demo</html>"
    forced = invoke("demo", "--out-dir", tmp_path, "--fast", "--force")
    assert forced.exit_code == 0, forced.output
    assert "scenarios for 2018" in mine.read_text()


# ---- seeds, files, dates, parameters -----------------------------------------------------------------
@pytest.mark.parametrize("cmd", ["sample", "backtest", "ticks"])
def test_a_negative_seed(cmd, work):
    base = {"sample": ["sample", "-m", work / "ar.pt", "--data", work / "px.csv"],
            "backtest": ["backtest", "--data", work / "px.csv"], "ticks": ["ticks"]}[cmd]
    assert_user_error(invoke(*base, "--seed", "-1"), "--seed", "-1")


def test_fit_on_a_missing_file(tmp_path):
    assert_user_error(invoke("fit", "--data", tmp_path / "none.csv", "-m", "ar"), "file not found")


def test_fit_on_a_constant_series(tmp_path):
    path = tmp_path / "flat.csv"
    pd.DataFrame({"close": 5.0}, index=pd.bdate_range("2020-01-01", periods=100, name="time")).to_csv(path)
    assert_user_error(invoke("fit", "--data", path, "-m", "ar"), "constant")


def test_fit_on_a_file_with_a_repeated_day(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("time,close\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n2020-01-03,4\n")
    assert_user_error(invoke("fit", "--data", path, "-m", "ar"), "2020-01-02")


def test_fit_on_a_semicolon_csv_works(tmp_path, work):
    path = tmp_path / "semi.csv"
    pd.read_csv(work / "px.csv").to_csv(path, sep=";", index=False)
    result = invoke("fit", "--data", path, "-m", "ar", "-p", "order=1")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("device", ["bogus", "cuda:99"])
def test_fit_with_a_bad_device(device, work):
    assert_user_error(invoke("fit", "--data", work / "px.csv", "-m", "wavenet", "-p", f"device={device}"),
                      "device")


def test_sample_from_a_corrupt_model_file(work, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes((work / "ar.pt").read_bytes()[:100])
    assert_user_error(invoke("sample", "-m", bad, "--data", work / "px.csv"), "not a readable finar model")


def test_sample_from_a_model_with_an_extra_parameter(work, tmp_path):
    import torch

    payload = torch.load(work / "ar.pt", weights_only=True)
    payload["params"]["bogus"] = 1
    torch.save(payload, tmp_path / "extra.pt")
    assert_user_error(invoke("sample", "-m", tmp_path / "extra.pt", "--data", work / "px.csv"), "bogus")


def test_sample_from_a_tick_model_file(tmp_path, tick_model):
    path = tick_model.save(tmp_path / "tm.pt")
    assert_user_error(invoke("sample", "-m", path, "--data", "sp500"), "not a forecaster")


@pytest.mark.parametrize(("args", "fragment"), [
    (["--test-start", "notadate"], "test start must be a date"),
    (["--start", "2030-01-01"], "no data between"),
    (["--refit-every", "0"], None),
])
def test_backtest_bad_dates_and_settings(args, fragment, work):
    result = invoke("backtest", "--data", work / "px.csv", "-m", "ar", *args)
    if fragment is None:  # a click range check: a usage error, status 2, naming the option
        assert result.exit_code == 2 and "--refit-every" in result.output
    else:
        assert_user_error(result, fragment)


def test_anomalies_with_a_train_end_after_the_data(work):
    assert_user_error(invoke("anomalies", "--data", work / "px.csv", "-m", "ar", "--train-end", "2030-01-01"),
                      "no days to score")


def test_anomalies_with_a_train_end_that_is_no_date(work):
    assert_user_error(invoke("anomalies", "--data", work / "px.csv", "-m", "ar", "--train-end", "notadate"),
                      "train end must be a date", "notadate")


def test_ticks_on_a_corrupt_parquet_file(tmp_path):
    bad = tmp_path / "t.parquet"
    bad.write_bytes(b"PAR1garbagePAR1")
    assert_user_error(invoke("ticks", "--trades", bad), "t.parquet")


def test_report_with_a_missing_config(work, tmp_path):
    assert_user_error(invoke("report", "--data", work / "px.csv", "--config", tmp_path / "none.toml",
                             "--out", tmp_path / "r.html"), "none.toml")
    assert not (tmp_path / "r.html").exists()


def test_the_written_outputs_are_what_the_library_computes(work, tmp_path):
    out = tmp_path / "s.csv"
    result = invoke("sample", "-m", work / "ar.pt", "--data", work / "px.csv", "--horizon", 3, "-n", 4,
                    "--seed", 5, "--out", out)
    assert result.exit_code == 0, result.output
    r = finar.returns(finar.load(work / "px.csv")["close"])
    sc = finar.models.load(work / "ar.pt").sample(r, horizon=3, n_paths=4, seed=5)
    np.testing.assert_allclose(pd.read_csv(out)["close"].to_numpy(), sc.paths.ravel())
