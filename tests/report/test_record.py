"""The benchmark record ships with finar: a verbatim copy of benchmarks/results that cannot drift."""

from __future__ import annotations

import fnmatch
import json
import shutil
import tomllib
from pathlib import Path

import pytest

import finar
from finar.reporting.record import check_results, load_record, main, packaged_results

REPO = Path(__file__).resolve().parents[2]
BENCHMARK_RESULTS = REPO / "benchmarks" / "results"
SYNC = "python -m finar.reporting.record --sync benchmarks/results"


def test_packaged_copy_equals_benchmarks_results() -> None:
    """Fails whenever a benchmark rewrites its results and the copy is not refreshed."""
    assert BENCHMARK_RESULTS.is_dir()
    diff = check_results(BENCHMARK_RESULTS)
    assert diff == {}, f"finar/reporting/results differs from benchmarks/results: {diff}; run `{SYNC}`"


def test_the_record_is_read_from_the_package_not_the_source_tree() -> None:
    folder = packaged_results()
    assert Path(str(folder)).resolve().is_relative_to(Path(finar.__file__).resolve().parent)
    record = load_record()
    assert "shipped with finar" in record.source
    for doc, name in ((record.p1, "p1_sp500_daily.json"), (record.p3, "p3_sp500_facts.json")):
        assert doc == json.loads((BENCHMARK_RESULTS / name).read_text(encoding="utf-8"))


def test_the_copy_is_declared_as_package_data() -> None:
    """An installed finar (a wheel, not this checkout) carries every packaged results file."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["finar"]
    packaged = [f"reporting/results/{t.name}" for t in packaged_results().iterdir()
                if t.name.endswith(".json")]
    assert packaged
    for name in packaged:
        assert any(fnmatch.fnmatch(name, g) for g in globs), name


def test_check_names_every_difference(tmp_path: Path) -> None:
    source = tmp_path / "results"
    shutil.copytree(BENCHMARK_RESULTS, source)
    assert check_results(source) == {} and main(["--check", str(source)]) == 0
    (source / "p2_garch_oracle.json").write_text("{}")
    (source / "p4_anomaly.json").unlink()
    (source / "p9_new.json").write_text("{}")
    assert check_results(source) == {"p2_garch_oracle.json": "differs", "p4_anomaly.json": "extra",
                                     "p9_new.json": "missing"}
    assert main(["--check", str(source)]) == 1


def test_a_results_folder_of_ones_own(tmp_path: Path) -> None:
    (tmp_path / "p1_sp500_daily.json").write_text(json.dumps({"rows": [], "command": "mine"}))
    record = load_record(tmp_path)
    assert record.p1 == {"rows": [], "command": "mine"} and record.p3 is None
    assert record.source == str(tmp_path)
    with pytest.raises(finar.FinarError, match="not a folder"):
        check_results(tmp_path / "absent")
