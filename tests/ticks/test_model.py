"""TickModel: exact, causal likelihood; cached generation equals the full pass; seeded sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import finar
from finar.ticks import TickModel, simulate

TINY = dict(channels=8, layers=3, hidden=16, n_components=2, window=64, max_epochs=2, batch_size=8,
            min_streams=16)


@pytest.fixture(scope="module")
def trades() -> pd.DataFrame:
    return simulate(n_events=8_000, seed=0)


@pytest.fixture(scope="module")
def model(trades) -> TickModel:
    return TickModel(**TINY).fit(trades.iloc[:6_000])


def test_log_prob_shape_units_and_first_trade(model, trades):
    test = trades.iloc[6_000:]
    lp = model.log_prob(test)
    assert list(lp.columns) == ["time", "side", "dp", "size", "total"] and len(lp) == len(test)
    assert np.isnan(lp["total"].iloc[0]) and np.isfinite(lp["total"].iloc[1:]).all()
    np.testing.assert_allclose(lp[["time", "side", "dp", "size"]].sum(axis=1).iloc[1:], lp["total"].iloc[1:])
    # a zero gap is a probability (<= 0 in log); a positive gap a density per second: rescaling the
    # clock by c shifts its log density by -log c (the change of variables is in log_prob)
    zero = np.r_[False, np.diff(test.index.as_unit("ns").asi8) == 0]
    assert (lp["time"][zero] <= 0).all()


def test_no_look_ahead(model, trades):
    test = trades.iloc[6_000:6_600].copy()
    base = model.log_prob(test)["total"].to_numpy()
    changed = test.copy()
    changed.iloc[400:, changed.columns.get_loc("price")] += 5.0
    changed.iloc[400:, changed.columns.get_loc("size")] = 7.0
    after = model.log_prob(changed)["total"].to_numpy()
    np.testing.assert_allclose(after[:400], base[:400], rtol=1e-5)  # the past does not see the future
    assert not np.allclose(after[400:410], base[400:410])


def test_cached_generation_equals_full_forward(model):
    net = model.network_
    raws = []
    step = net.wavenet.step

    def record(*args, **kwargs):
        out = step(*args, **kwargs)
        raws.append(out.clone())
        return out

    net.wavenet.step = record
    try:
        g = model._streams(np.array([0.2]), np.array([0.25]), torch.Generator().manual_seed(0),
                           np.random.default_rng(0))
    finally:
        del net.wavenet.step
    n = min(len(g["tod"]), 40)
    tod = g["tod"][:n]
    dt = np.diff(tod) * model.space_.session_length_
    adjusted = np.where(dt > 0, dt, 1.0) * model._season(tod[:-1])  # deseasonalised gaps
    z = np.where(dt > 0, (np.log(adjusted) - model.u_mean_) / model.u_std_, 0.0)
    x, cov = model._features(g["zero"][:n], np.r_[0.0, z], np.r_[1.0, np.zeros(n - 1)], g["side"][:n],
                             g["dpc"][:n], g["sb"][:n], tod)
    R = model.receptive_field_
    with torch.no_grad():
        cov_t = torch.cat([torch.zeros(R, cov.shape[1]), torch.tensor(cov)])[None]
        full = net.wavenet(torch.cat([torch.zeros(R), torch.tensor(x)])[None], None, net.embed(cov_t))[0, R:]
    np.testing.assert_allclose(torch.stack(raws[:n])[:, 0].numpy(), full.numpy(), atol=1e-4)


def test_sample_is_seeded_and_well_formed(model):
    state = torch.random.get_rng_state()
    a = model.sample(n_events=3_000, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    pd.testing.assert_frame_equal(a, model.sample(n_events=3_000, seed=5))
    assert len(a) == 3_000 and a.index.is_monotonic_increasing
    assert a.columns.tolist() == ["price", "size", "side"] and (a["price"] > 0).all()
    assert set(np.unique(a["side"])) <= {-1, 1}
    ticks = a["price"].to_numpy() / model.space_.tick_
    np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-6)


def test_errors():
    with pytest.raises(finar.errors.NotFittedError):
        TickModel().sample(n_events=10)
    with pytest.raises(finar.FinarError, match="layers"):
        TickModel(layers=0).fit(simulate(n_events=3_000, seed=0))


def test_streams_stay_apart_when_finished_ones_leave_the_batch(model):
    starts, ends = np.array([0.1, 0.5, 0.8, 0.3]), np.array([0.1005, 0.6, 0.82, 0.301])
    g = model._streams(starts, ends, torch.Generator().manual_seed(1), np.random.default_rng(1))
    assert np.all(np.diff(g["stream"]) >= 0) and set(g["stream"]) == {0, 1, 2, 3}
    for j in range(4):
        tod = g["tod"][g["stream"] == j]
        assert tod[0] == starts[j] and np.all(np.diff(tod) >= 0) and tod[-1] < ends[j]
    assert len(set(np.bincount(g["stream"]).tolist())) > 2  # lengths differ: finished streams left


def test_save_load_round_trip(model, trades, tmp_path):
    path = model.save(tmp_path / "tick.pt")
    payload = torch.load(path, weights_only=True)  # only plain values and tensors: no pickled objects
    assert payload["format"] == "finar-tick-model" and payload["params"]["layers"] == TINY["layers"]
    rng_state = torch.random.get_rng_state()
    loaded = TickModel.load(path)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    test = trades.iloc[6_000:]
    pd.testing.assert_frame_equal(loaded.log_prob(test), model.log_prob(test), check_exact=True)
    pd.testing.assert_frame_equal(loaded.sample(n_events=500, seed=3), model.sample(n_events=500, seed=3),
                                  check_exact=True)
    assert loaded.training_.history == model.training_.history


def test_save_load_keeps_time_zone(model, tmp_path):
    import copy

    aware = copy.deepcopy(model)
    aware.space_.tz_ = pd.Timestamp(0, tz="America/New_York").tz
    aware.last_ = (model.last_[0].tz_localize(aware.space_.tz_), model.last_[1])
    loaded = TickModel.load(aware.save(tmp_path / "tick.pt"))
    assert str(loaded.space_.tz_) == "America/New_York" and loaded.last_ == aware.last_


def test_load_rejects_bad_files(model, tmp_path):
    with pytest.raises(finar.errors.ModelFileError, match="not found"):
        TickModel.load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(finar.errors.ModelFileError, match="not a readable finar tick model"):
        TickModel.load(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(finar.errors.ModelFileError, match="not a finar tick model"):
        TickModel.load(foreign)
    returns_model = finar.models.create("garch").fit(pd.Series(np.random.default_rng(0).normal(0, 0.01, 300)))
    with pytest.raises(finar.errors.ModelFileError, match="not a finar tick model"):
        TickModel.load(returns_model.save(tmp_path / "garch.pt"))
    path = model.save(tmp_path / "tick.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(finar.errors.ModelFileError):
        TickModel.load(cut)
    payload = torch.load(path, weights_only=True)
    payload["file_version"] = 99
    torch.save(payload, tmp_path / "newer.pt")
    with pytest.raises(finar.errors.ModelFileError, match="upgrade finar"):
        TickModel.load(tmp_path / "newer.pt")
    payload["file_version"] = 1
    del payload["state"]["season"]
    torch.save(payload, tmp_path / "damaged.pt")
    with pytest.raises(finar.errors.ModelFileError, match="damaged"):
        TickModel.load(tmp_path / "damaged.pt")


def test_save_unfitted_raises(tmp_path):
    with pytest.raises(finar.errors.NotFittedError, match="save"):
        TickModel().save(tmp_path / "tick.pt")
    assert not (tmp_path / "tick.pt").exists()
