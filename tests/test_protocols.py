"""finar.protocols holds the settings every recorded benchmark says it ran."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from finar.anomaly import KINDS
from finar.protocols import P1, P2, P3, P4, P5, P6, SPEED
from finar.reporting.record import packaged_results


def recorded(name: str) -> dict[str, Any]:
    return json.loads(packaged_results().joinpath(f"{name}.json").read_text(encoding="utf-8"))


def test_p1() -> None:
    doc = recorded("p1_sp500_daily")
    assert doc["test_period"] == list(P1.test_period)
    assert doc["refit_every"] == P1.refit_every and doc["dm_baseline"] == P1.baseline
    assert {r["n_days"] for r in doc["rows"] if r["kind"] == "finar"} == {P1.n_test_days}
    assert any(r["model"] == P1.baseline for r in doc["rows"])
    speed = recorded("backtest_speed")
    assert speed["test_days"] == P1.n_test_days and speed["refit_every"] == SPEED.backtest_refit_every


def test_p2() -> None:
    doc = recorded("p2_garch_oracle")
    assert doc["true_params"] == P2.true_params
    assert (doc["n_train"], doc["n_test"], doc["seeds"]) == (P2.n_train, P2.n_test, list(P2.seeds))


def test_p3() -> None:
    doc = recorded("p3_sp500_facts")
    assert doc["window"] == list(P3.window)
    assert doc["calibration_window"] == [P3.start, P3.calibration_end]
    assert (doc["n_paths"], doc["length"], doc["burn_in"]) == (P3.n_paths, P3.length, P3.burn_in)
    assert doc["seeds"] == list(P3.seeds) and P3.record_seed in P3.seeds


def test_p4() -> None:
    doc = recorded("p4_anomaly")
    assert (doc["train_end"], doc["test"], doc["seeds"]) == (P4.train_end, list(P4.test), list(P4.seeds))
    assert {r["level"] for r in doc["rows"]} == {P4.level}
    assert {r["anomaly_kind"] for r in doc["rows"]} == {*P4.kinds, "mean"}
    assert P4.kinds == KINDS  # the kinds finar.inject_anomalies cycles through by default
    panel = recorded("p4_anomaly_panel")
    assert (panel["panel_train"], panel["panel_test"]) == (list(P4.panel_train), list(P4.panel_test))
    assert {r["anomaly_kind"] for r in panel["rows"]} == {*P4.panel_kinds, *P4.panel_extra_kinds, "mean"}
    gate = recorded("p4_flat_gate")
    assert (gate["fit"], gate["validation"]) == (list(P4.selection_fit), list(P4.selection_validation))
    assert gate["seeds"] == list(P4.selection_seeds)


def test_p5() -> None:
    doc = recorded("p5_ticks")
    assert (doc["epochs"], doc["threads"]) == (P5.epochs, P5.threads)
    simulator = [r for r in doc["rows"] if r["data"] == "simulator"]
    assert simulator and {r["n_train"] + r["n_test"] for r in simulator} == {P5.n_events}
    assert {r["n_train"] for r in simulator} == {int(P5.train_fraction * P5.n_events)}


def test_p6_and_the_panel_benchmarks() -> None:
    for name, train, test in (("panel_sp500_stocks", "train", "test"), ("p4_panel_loglik", "train", "test")):
        doc = recorded(name)
        assert (doc[train], doc[test]) == (list(P6.train), list(P6.test)), name
    assert recorded("p4_panel_loglik")["columns"][0] == P6.index_column
    scale = recorded("scaleout_panel")
    assert (scale["data_start"], scale["test"]) == (SPEED.scaleout_data_start, list(SPEED.scaleout_test))
    assert recorded("generation_speed")["horizon"] == SPEED.horizon


def test_settings_cannot_be_changed_in_place() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        P1.refit_every = 5  # type: ignore[misc]
    assert dataclasses.replace(P1, refit_every=5).refit_every == 5 and P1.refit_every == 20
