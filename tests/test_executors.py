"""finar.executors: serial, joblib and Ray give the same results; failures are named, the rest kept."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import finar
from finar.errors import DataError, SeriesTooShortError
from finar.evaluation.backtesting import backtest_panel
from finar.executors import JoblibExecutor, TaskError, run_tasks, sample_assets, task_seed
from finar.models import GARCH
from tests.conftest import raises_exactly
from tests.ray_session import local_ray

ASSETS = ["AAPL", "MSFT", "XOM"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return finar.returns(finar.load("sp500-stocks")[ASSETS]).loc["2015-01-01":"2016-06-30"]


ray_session = pytest.fixture(scope="module")(local_ray)


class BrokenGARCH(GARCH):
    """A GARCH whose fit fails like a crashed dependency (not a FinarError, so it is retried)."""

    def fit(self, r, *args, **kwargs):
        raise RuntimeError("the optimiser library crashed")


def square_unless_marked(x: int, marker: str) -> int:
    """Fails on x == 1 the first time only (the marker file survives across worker processes)."""
    if x == 1 and not Path(marker).exists():
        Path(marker).touch()
        raise OSError("transient failure")
    return x * x


def bad_input(x: int) -> int:
    if x == 2:
        raise SeriesTooShortError("series 2 is too short")
    return x


# --- run_tasks --------------------------------------------------------------------------------------

def test_results_come_back_in_item_order_on_every_local_executor() -> None:
    items = list(range(-5, 5))
    expected = [abs(i) for i in items]
    assert run_tasks(abs, items, progress=False) == expected
    assert run_tasks(abs, items, executor=JoblibExecutor(2, backend="threading"), progress=False) == expected
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert run_tasks(abs, items, executor=pool, progress=False) == expected


def test_a_failed_task_is_retried(tmp_path: Path) -> None:
    marker = str(tmp_path / "failed-once")
    assert run_tasks(square_unless_marked, [0, 1, 2], common={"marker": marker}, retries=1,
                     progress=False) == [0, 1, 4]
    Path(marker).unlink()
    with pytest.raises(TaskError, match=r"1 of 3 .*: 1 \(OSError: transient failure\)") as info:
        run_tasks(square_unless_marked, [0, 1, 2], common={"marker": marker}, retries=0, progress=False)
    assert info.value.results == {"0": 0, "2": 4}
    assert info.value.failures.loc["1", "attempts"] == 1


def test_finar_errors_are_not_retried_and_keep_their_type() -> None:
    with pytest.raises(TaskError, match=r"b \(SeriesTooShortError") as info:
        run_tasks(bad_input, [1, 2, 3], names=["a", "b", "c"], retries=3, progress=False)
    assert info.value.failures.loc["b", "attempts"] == 1  # bad input fails the same way every time
    assert type(info.value.exceptions["b"]) is SeriesTooShortError
    assert info.value.results == {"a": 1, "c": 3}


def test_bad_arguments_are_named() -> None:
    with raises_exactly(DataError, "unique"):
        run_tasks(abs, [1, 2], names=["x", "x"], progress=False)
    with raises_exactly(DataError, "one name per item"):
        run_tasks(abs, [1, 2], names=["x"], progress=False)
    with raises_exactly(DataError, "executor must be"):
        run_tasks(abs, [1], executor="spark", progress=False)
    with raises_exactly(DataError, "retries"):
        run_tasks(abs, [1], retries=-1, progress=False)


def test_task_seeds_depend_on_the_name_only() -> None:
    seeds = [task_seed(7, a) for a in ASSETS]
    assert len(set(seeds)) == 3 and seeds == [task_seed(7, a) for a in ASSETS]
    assert task_seed(8, "AAPL") != seeds[0]


def test_single_series_backtest_still_raises_the_blocks_own_error(panel: pd.DataFrame) -> None:
    with raises_exactly(DataError, "n_jobs=2 only applies to joblib"):
        finar.backtest(GARCH(), panel["AAPL"], start="2016-01-01", n_jobs=2, executor="serial",
                       progress=False)
    with pytest.raises(RuntimeError, match="optimiser library crashed"):
        finar.backtest(BrokenGARCH(), panel["AAPL"], start="2016-06-01", progress=False)


# --- on Ray -----------------------------------------------------------------------------------------

def kwargs() -> dict:
    return {"start": "2016-05-02", "refit_every": 15, "n_paths": 200, "progress": False}


def test_ray_and_serial_backtests_are_identical(ray_session, panel: pd.DataFrame) -> None:
    serial = backtest_panel(GARCH(dist="t"), panel, **kwargs())
    on_ray = backtest_panel(GARCH(dist="t"), panel, executor="ray", **kwargs())
    assert list(on_ray) == ASSETS
    for a in ASSETS:
        pd.testing.assert_frame_equal(on_ray[a].daily, serial[a].daily, check_exact=True)
        assert on_ray[a].daily["fit_date"].nunique() == 3  # three refit blocks, each its own task
    alone = backtest_panel(GARCH(dist="t"), panel[["MSFT"]], **kwargs())["MSFT"]
    pd.testing.assert_frame_equal(alone.daily, serial["MSFT"].daily, check_exact=True)  # seeds per asset
    one = finar.backtest(GARCH(dist="t"), panel["XOM"], **kwargs(), executor="ray")
    two = finar.backtest(GARCH(dist="t"), panel["XOM"], **kwargs())
    pd.testing.assert_frame_equal(one.daily, two.daily, check_exact=True)


def test_a_failing_asset_is_named_and_the_others_are_kept(ray_session, panel: pd.DataFrame) -> None:
    models = {"AAPL": GARCH(dist="t"), "MSFT": BrokenGARCH(dist="t"), "XOM": GARCH(dist="t")}
    with pytest.raises(TaskError, match=r"1 of 3 assets failed \(MSFT\).*MSFT/2016-05-02.*crashed") as info:
        backtest_panel(models, panel, executor="ray", **kwargs())
    err = info.value
    assert sorted(err.results) == ["AAPL", "XOM"]
    assert all(i.startswith("MSFT/") for i in err.failures.index)
    assert (err.failures["attempts"] == 2).all()  # retried once
    serial = backtest_panel(GARCH(dist="t"), panel[["AAPL", "XOM"]], **kwargs())
    for a in ("AAPL", "XOM"):
        pd.testing.assert_frame_equal(err.results[a].daily, serial[a].daily, check_exact=True)


def test_scenarios_and_stylized_facts_are_the_same_on_ray(ray_session, panel: pd.DataFrame) -> None:
    serial = sample_assets(GARCH(dist="t"), panel, train=panel, horizon=400, n_paths=20, seed=3,
                           progress=False)
    on_ray = sample_assets(GARCH(dist="t"), panel, train=panel, horizon=400, n_paths=20, seed=3,
                           executor="ray", progress=False)
    for a in ASSETS:
        np.testing.assert_array_equal(on_ray[a].paths, serial[a].paths)
    assert not np.array_equal(serial["AAPL"].paths, serial["MSFT"].paths)
    gens = {a: s.paths for a, s in serial.items()}
    real = panel["AAPL"]
    facts = finar.stylized_facts(real, gens, lags=50)
    facts_ray = finar.stylized_facts(real, gens, lags=50, executor="ray")
    pd.testing.assert_frame_equal(facts_ray.table(), facts.table(), check_exact=True)


def test_sample_assets_fits_and_samples_with_covariates(panel: pd.DataFrame) -> None:
    """Each asset's model is fitted and simulated with its covariates, picked by date."""
    x = {a: panel[[a]].abs().set_axis(["abs_r"], axis=1) for a in ASSETS}  # each stock's own |r|
    future = pd.DataFrame({"abs_r": [1.0, 2.0]})
    out = sample_assets(finar.models.AR(order=1), panel, train=panel, exog=x, exog_future=future, horizon=3,
                        n_paths=50, seed=4, progress=False)
    for a in ASSETS:
        m = finar.models.AR(order=1).fit(panel[a], exog=x[a])
        direct = m.sample(panel[a], horizon=3, n_paths=50, seed=task_seed(4, a), exog=x[a],
                          exog_future=future)
        np.testing.assert_array_equal(out[a].paths, direct.paths)
    with raises_exactly(DataError, "lacks the days"):
        late = {a: v.iloc[5:] for a, v in x.items()}
        sample_assets(finar.models.AR(order=1), panel, train=panel, exog=late, horizon=1, n_paths=5,
                      progress=False)
