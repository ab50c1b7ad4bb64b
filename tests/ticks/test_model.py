"""TickModel: exact, causal likelihood; cached generation equals the full pass; seeded sampling that
continues the fitted data; tick-rule sides kept consistent; mixtures of several networks exact and
drawn per trade."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch

import finar
from finar.errors import DataError
from finar.ticks import TickModel, simulate
from finar.ticks.events import ACTIVITY_SECONDS, N_MOVES, activity_memory, follows_tick_rule
from finar.ticks.model import bias_shift

TINY = dict(channels=8, layers=3, hidden=16, n_components=2,
            train=dict(window=64, max_epochs=2, batch_size=8))


@pytest.fixture(scope="module")
def trades() -> pd.DataFrame:
    return simulate(n_events=8_000, seed=0, mu=0.02)  # about 4,700 trades a session: two sessions


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


@pytest.fixture(scope="module")
def mixture(trades) -> TickModel:
    return TickModel(**TINY, members=2).fit(trades.iloc[:6_000])


@pytest.mark.parametrize("name", ["model", "mixture"])
def test_no_look_ahead(name, trades, request):
    model = request.getfixturevalue(name)
    test = trades.iloc[6_000:6_600].copy()
    base = model.log_prob(test)["total"].to_numpy()
    changed = test.copy()
    changed.iloc[400:, changed.columns.get_loc("price")] += 5.0
    changed.iloc[400:, changed.columns.get_loc("size")] = 7.0
    after = model.log_prob(changed)["total"].to_numpy()
    np.testing.assert_allclose(after[:400], base[:400], rtol=1e-5)  # the past does not see the future
    assert not np.allclose(after[400:410], base[400:410])


def _one_session(model, n, seed, closes=None, member=0):
    """A generated session from its open (one stream per close), with the WaveNet outputs of each step
    (of the given member's network)."""
    net, raws = model.networks_[member], []
    step = net.wavenet.step

    def record(*args, **kwargs):
        out = step(*args, **kwargs)
        raws.append(out.clone())
        return out

    day = pd.Timestamp("2024-03-04").value / 1e9
    closes = day + np.asarray([model.hours_[1]] if closes is None else closes) * 86_400
    net.wavenet.step = record
    try:
        g = model._sessions(np.full(len(closes), day + model.hours_[0] * 86_400), closes, n,
                            np.random.default_rng(seed), torch.Generator().manual_seed(seed))
    finally:
        del net.wavenet.step
    return g, raws


@pytest.mark.parametrize(("name", "member"), [("model", 0), ("mixture", 0), ("mixture", 1)])
def test_cached_generation_equals_full_forward(name, member, request):
    model = request.getfixturevalue(name)
    compared = 0
    for seed in range(5):  # several openings: a session's first trade may carry a drawn price jump
        g, raws = _one_session(model, 80, seed=seed, member=member)
        dp, size = model.space_.draw_marks(g["dpc"], g["sb"], np.random.default_rng(0))
        # nanosecond stamps: the gaps recomputed are the generated ones (sample() keeps microseconds,
        # which moves a gap of a few microseconds, and the trunk with it, by more than float error)
        ns = np.round(g["t"] * 1e9).astype(np.int64)
        generated = model.space_.trades_at(ns, g["side"], dp, size, 4500.0)
        # a tiny model may draw a pause longer than a session break: compare the first session
        first = int((model.space_.encode(generated).session == 0).sum())
        if first <= 20:
            continue
        ev = model.space_.encode(generated.iloc[:first])
        assert ev.session.max() == 0 and len(ev) == first
        rows, where, _ = model._padded(ev)  # features recomputed from the trades: clock, activity, memory
        net = model.networks_[member]
        with torch.no_grad():
            cov = net.embed(torch.tensor(rows["cov"])[None])
            full = net.wavenet(torch.tensor(rows["x"])[None], None, cov)[0]
        n = min(len(raws), len(where))
        np.testing.assert_allclose(torch.stack(raws[:n])[:, 0].numpy(), full[where[:n]].numpy(), atol=1e-4)
        compared += 1
    assert compared >= 2


def test_memory_features_by_hand(model):
    t0 = pd.Timestamp("2024-03-04 10:00")
    times = pd.DatetimeIndex([t0 + pd.Timedelta(seconds=s) for s in (0, 2, 2, 12)], name="time")
    frame = pd.DataFrame({"price": [100.0, 100.25, 100.25, 100.0], "size": 1.0, "side": [1, 1, 1, -1]},
                         index=times)
    mem = activity_memory(model.space_.encode(frame))
    a10 = [1.0, 1 + np.exp(-0.2), 2 + np.exp(-0.2), 1 + (2 + np.exp(-0.2)) * np.exp(-1.0)]  # tau = 10 s
    np.testing.assert_allclose(mem[:, 1], np.log1p(a10))
    lam = 0.5 ** (1 / 16)  # the side EWMA with a half-life of 16 trades
    want = np.zeros(4)
    for i, s in enumerate([1, 1, 1, -1]):
        want[i] = lam * (want[i - 1] if i else 0.0) + (1 - lam) * s
    np.testing.assert_allclose(mem[:, len(ACTIVITY_SECONDS)], want)


def test_last_price_moves_by_hand(model):
    t0 = pd.Timestamp("2024-03-04 10:00")
    times = pd.DatetimeIndex([t0 + pd.Timedelta(seconds=s) for s in range(6)], name="time")
    frame = pd.DataFrame({"price": [100.0, 100.25, 100.25, 100.0, 99.75, 99.75], "size": 1.0,
                          "side": [1, 1, 1, -1, -1, -1]}, index=times)
    mem = activity_memory(model.space_.encode(frame))
    assert N_MOVES == 2
    np.testing.assert_array_equal(mem[:, -2], [0, 1, 1, -1, -1, -1])  # the last move, newest first
    np.testing.assert_array_equal(mem[:, -1], [0, 0, 0, 1, -1, -1])  # the one before it


def test_activity_level_by_hand(model):
    t0 = pd.Timestamp("2024-03-04 10:00")
    secs = [0.0, 2.0, 2.0, 500.0]
    times = pd.DatetimeIndex([t0 + pd.Timedelta(seconds=s) for s in secs], name="time")
    frame = pd.DataFrame({"price": 100.0, "size": 1.0, "side": 1}, index=times)
    ev = model.space_.encode(frame)
    g = model._reference(ev, activity_memory(ev))
    T, c, g0 = ACTIVITY_SECONDS[-1], 10.0, model.gap0_
    e = np.asarray(secs)
    a = np.array([np.exp(-(e[i] - e[:i + 1]) / T).sum() for i in range(4)])
    season = np.exp(model._log_season(np.r_[0.0, ev.clock[:-1]]))  # deseasonalised exposure
    inc = np.r_[0.0, T * (1 - np.exp(-np.diff(e) / T)) * season[1:]]
    w = np.array([(np.exp(-(e[i] - e[:i + 1]) / T) * inc[:i + 1]).sum() for i in range(4)])
    want = np.clip((w + c * g0) / (a + c), *model.level_range_)
    np.testing.assert_allclose(g, want)
    assert g[0] == np.clip(c * g0 / (1 + c), *model.level_range_)  # the open: the prior, one trade
    # the log gap the time head scores is measured against the previous trade's level
    d = ev.dt * np.exp(model._log_season(np.r_[0.0, ev.clock[:-1]]))
    np.testing.assert_allclose(model._log_gap(ev, g)[[1, 3]], np.log(d[[1, 3]] / g[[0, 2]]))


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


def test_mixture_is_the_exact_mean_of_its_members(model, mixture, trades):
    test = trades.iloc[6_000:]
    second = TickModel(**TINY).set_params(train__seed=1).fit(trades.iloc[:6_000])
    # member k is the single model of seed + k, bit for bit
    for net, single in zip(mixture.networks_, (model.network_, second.network_), strict=True):
        for a, b in zip(net.state_dict().values(), single.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    lp = mixture.log_prob(test)
    assert np.isnan(lp["total"].iloc[0]) and np.isfinite(lp["total"].iloc[1:]).all()
    one, two = (m.log_prob(test)["total"].iloc[1:] for m in (model, second))
    np.testing.assert_allclose(lp["total"].iloc[1:], np.logaddexp(one, two) - np.log(2), rtol=1e-12)
    # the fields are the chain rule of the mixture: they sum to its total
    np.testing.assert_allclose(lp[["time", "side", "dp", "size"]].sum(axis=1).iloc[1:], lp["total"].iloc[1:])
    # a mixture of one network with itself is that network
    twin = copy.deepcopy(model)
    twin.members, twin.networks_ = 2, [model.network_, copy.deepcopy(model.network_)]
    pd.testing.assert_frame_equal(twin.log_prob(test), model.log_prob(test), check_exact=False, rtol=1e-9)


def test_mixture_draws_each_trade_from_a_member_at_random(mixture):
    mix = copy.deepcopy(mixture)
    for net, b in zip(mix.networks_, (0, 3), strict=True):  # member 0 trades 1 lot, member 1 4 lots
        with torch.no_grad():
            net.size_out[-1].bias.fill_(-50.0)
            net.size_out[-1].bias[b] = 50.0
    s = mix.sample(n_events=3_000, seed=0)
    pd.testing.assert_frame_equal(s, mix.sample(n_events=3_000, seed=0))
    sb = mix.space_.size_bin(s["size"].to_numpy())
    assert np.isin(sb, [0, 3]).mean() > 0.99  # all but the sessions' first trades (empirical marks)
    assert 0.45 < (sb == 0).mean() < 0.55  # equal weights
    assert 0.4 < (np.diff(sb) != 0).mean() < 0.6  # a member per trade, not per stream


def test_errors():
    with pytest.raises(finar.errors.NotFittedError):
        TickModel().sample(n_events=10)
    with pytest.raises(finar.FinarError, match="layers"):
        TickModel(layers=0).fit(simulate(n_events=3_000, seed=0))
    with pytest.raises(finar.FinarError, match="members"):
        TickModel(members=0).fit(simulate(n_events=3_000, seed=0))


def test_streams_stay_apart_when_finished_ones_leave_the_batch(model):
    o, c = model.hours_
    closes = o + np.array([0.02, 0.5, 0.2, 0.001]) * (c - o)
    g, _ = _one_session(model, 10_000, seed=1, closes=closes)
    assert np.all(np.diff(g["stream"]) >= 0) and set(g["stream"]) == {0, 1, 2, 3}
    day = pd.Timestamp("2024-03-04").value / 1e9
    for j in range(4):
        t = g["t"][g["stream"] == j]
        assert t[0] == day + o * 86_400 and np.all(np.diff(t) >= 0) and t[-1] < day + closes[j] * 86_400
    assert len(set(np.bincount(g["stream"]).tolist())) > 2  # lengths differ: finished streams left


def test_sample_continues_the_fitted_data(model, trades):
    train = trades.iloc[:6_000]
    assert train.index[-1].normalize() == train.index[0].normalize() + pd.Timedelta(days=1)  # mid-session
    s = model.sample(n_events=2_000, seed=0)
    last = train.index[-1]
    assert last <= s.index[0] < last + pd.Timedelta(minutes=10)  # the last fitted session goes on
    assert (s.index.normalize() == last.normalize()).sum() > 10
    opens = s.index[1:][np.diff(s.index.normalize().as_unit("ns").asi8) > 0]
    assert all(o.hour == 9 and o.minute == 30 for o in opens)  # later sessions open at the training open
    assert (s.index.hour < 16).all() and (s.index.day_of_week < 5).all()


def test_tick_rule_sides_stay_consistent(model, trades):
    unsigned = trades.drop(columns="side")  # the tick rule signs them
    tm = TickModel(**TINY).fit(unsigned.iloc[:6_000])
    assert tm.tick_rule_ and not model.tick_rule_  # the simulator's sides are the aggressors' own
    s = tm.sample(n_events=3_000, seed=0)
    assert follows_tick_rule(tm.space_.encode(s)).all()  # no generated side contradicts its price change
    lp = tm.log_prob(unsigned.iloc[6_000:])
    assert np.isfinite(lp["total"].iloc[1:]).all()
    with pytest.raises(DataError, match="tick rule"):
        tm.log_prob(trades.iloc[6_000:])  # sides that break the rule


def test_masked_price_changes_are_normalised(trades):
    tm = TickModel(**TINY).set_params(train__max_epochs=1).fit(trades.drop(columns="side").iloc[:3_000])
    net = tm.network_
    h = torch.randn(6, tm.hidden + net.n_prev)  # trunk output and the previous event
    ts = torch.randn(6, 3)
    side = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0, -1.0])
    prev = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.0, 0.0])
    with torch.no_grad():
        p = net.dp_logits(h, ts, side, prev).softmax(-1)
    K = tm.max_ticks
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    assert p[0, :K].sum() == 0 and p[0, K] > 0  # same side (buy): no fall; no change allowed
    assert p[1, :K + 1].sum() == 0  # a new buy side needs a rise
    assert p[2, K:].sum() == 0 and p[3, K + 1:].sum() == 0
    assert (p[4:] > 0).all()  # unknown previous side: nothing masked


def test_an_event_model_with_nested_training_settings(model):
    assert isinstance(model, finar.ticks.EventModel) and finar.models.registry()["tickmodel"] is TickModel
    params = model.get_params(deep=True)
    assert params["train__window"] == 64 and params["train__lr"] == TickModel.default_train.lr
    assert finar.models.clone(model).get_params(deep=True) == params
    assert not finar.models.clone(model).is_fitted
    again = finar.models.create("tickmodel", **TINY).set_params(train__max_epochs=1)
    assert again.train.max_epochs == 1 and again.train.batch_size == 8


def test_save_load_round_trip(model, trades, tmp_path):
    path = model.save(tmp_path / "tick.pt")
    payload = torch.load(path, weights_only=True)  # only plain values and tensors: no pickled objects
    assert payload["model"] == "tickmodel" and payload["params"]["layers"] == TINY["layers"]
    rng_state = torch.random.get_rng_state()
    loaded = finar.models.load(path)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert type(loaded) is TickModel and loaded.get_params() == model.get_params()
    test = trades.iloc[6_000:]
    pd.testing.assert_frame_equal(loaded.log_prob(test), model.log_prob(test), check_exact=True)
    pd.testing.assert_frame_equal(loaded.sample(n_events=500, seed=3), model.sample(n_events=500, seed=3),
                                  check_exact=True)
    assert loaded.training_.history == model.training_.history


def test_mixture_save_load_round_trip(mixture, trades, tmp_path):
    path = mixture.save(tmp_path / "mix.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["params"]["members"] == 2 and len(payload["state"]["more_networks"]) == 1
    loaded = TickModel.load(path)
    test = trades.iloc[6_000:]
    pd.testing.assert_frame_equal(loaded.log_prob(test), mixture.log_prob(test), check_exact=True)
    pd.testing.assert_frame_equal(loaded.sample(n_events=500, seed=3), mixture.sample(n_events=500, seed=3),
                                  check_exact=True)
    assert [r.history for r in loaded.trainings_] == [r.history for r in mixture.trainings_]
    payload["state"]["more_networks"] = []  # a member lost
    torch.save(payload, tmp_path / "short.pt")
    with pytest.raises(finar.errors.ModelFileError, match="network"):
        TickModel.load(tmp_path / "short.pt")


def test_save_load_keeps_time_zone(model, tmp_path):
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
    with pytest.raises(finar.errors.ModelFileError, match="not a readable finar model"):
        TickModel.load(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(finar.errors.ModelFileError, match="not a finar model"):
        TickModel.load(foreign)
    returns_model = finar.models.create("garch").fit(pd.Series(np.random.default_rng(0).normal(0, 0.01, 300)))
    with pytest.raises(finar.errors.ModelFileError, match="not a TickModel"):
        TickModel.load(returns_model.save(tmp_path / "garch.pt"))
    path = model.save(tmp_path / "tick.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(finar.errors.ModelFileError):
        TickModel.load(cut)
    payload = torch.load(path, weights_only=True)
    version = payload["file_version"]
    payload["file_version"] = 99
    torch.save(payload, tmp_path / "newer.pt")
    with pytest.raises(finar.errors.ModelFileError, match="upgrade finar"):
        TickModel.load(tmp_path / "newer.pt")
    payload["file_version"] = version
    del payload["state"]["log_season"]
    torch.save(payload, tmp_path / "damaged.pt")
    with pytest.raises(finar.errors.ModelFileError, match="state does not match"):
        TickModel.load(tmp_path / "damaged.pt")


def test_save_unfitted_raises(tmp_path):
    with pytest.raises(finar.errors.NotFittedError, match="save"):
        TickModel().save(tmp_path / "tick.pt")
    assert not (tmp_path / "tick.pt").exists()


def test_bias_shift_is_the_maximum_likelihood_shift():
    rng = np.random.default_rng(0)
    # a Bernoulli logit: the intercept of a logistic regression with the logits as offset
    z, t = torch.tensor(rng.normal(size=4_000)), torch.tensor(rng.random(4_000) < 0.3)
    glm = sm.GLM(t.numpy().astype(float), np.ones((4_000, 1)), family=sm.families.Binomial(),
                 offset=z.numpy()).fit()
    d = bias_shift(torch.stack([torch.zeros_like(z), z], -1), t.long())
    np.testing.assert_allclose(float(d[1] - d[0]), glm.params[0], rtol=1e-6)
    # a categorical head, one class never seen and some classes impossible in some rows
    x = torch.tensor(rng.normal(size=(6_000, 5)))
    x[:, 0] -= 1.0
    y = torch.tensor(rng.choice(5, size=6_000, p=[0.4, 0.3, 0.2, 0.1, 0.0]))
    x[(torch.tensor(rng.random(6_000)) < 0.2) & (y != 3), 3] = -math.inf  # as the tick rule masks dp
    d = bias_shift(x, y)
    assert d[4] == 0.0  # the unseen class keeps its bias
    p = (x + d)[:, :4].softmax(-1)  # among the classes seen: the predicted shares are the observed ones
    np.testing.assert_allclose(p.mean(0), np.bincount(y, minlength=5)[:4] / len(y), atol=1e-9)

    def loglik(shift):
        return float((x + shift)[:, :4].log_softmax(-1).gather(-1, y[:, None]).sum())

    for probe in torch.eye(5, dtype=torch.float64)[:4] * 0.01:  # a maximum: every move lowers it
        assert loglik(d + probe) < loglik(d) and loglik(d - probe) < loglik(d)


def _heads_on(model: TickModel, net, trades: pd.DataFrame) -> tuple[torch.Tensor, ...]:
    """The heads' outputs and targets of every scored event of ``trades`` (teacher forcing)."""
    ev = model.space_.encode(trades)
    rows, where, scored = model._padded(ev)
    R, parts = model.receptive_field_, []
    with torch.no_grad():
        for a, b in model._spans(ev, where):
            keep = torch.tensor(scored[a + R:b])
            forced = model._forced(net, model._rows_at(rows, a, b))
            targets = [forced[k][0][keep] for k in ("zero", "side", "dpc", "sb")]
            del forced["sb"]
            parts.append([v[0][keep] for v in net.heads(**forced)] + targets)
    return tuple(torch.cat(v) for v in zip(*parts, strict=True))


def test_refit_size_bias_matches_the_fitted_shares_and_raises_the_likelihood(model, trades):
    fit = trades.iloc[:6_000]
    plain = TickModel(**TINY, refit_size_bias=False).fit(fit)
    assert model.refit_size_bias
    # the same network but for the size head's output biases
    for (name, a), b in zip(model.network_.state_dict().items(), plain.network_.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b) == (name != "size_out.2.bias"), name
    # on the fitted trades, the mean predicted probability of every size bin is its share
    size, sb = (_heads_on(model, model.network_, fit)[i] for i in (3, 7))
    shares = torch.bincount(sb, minlength=size.shape[-1]).double() / len(sb)
    seen = shares > 0
    np.testing.assert_allclose(size.double()[:, seen].softmax(-1).mean(0), shares[seen], atol=1e-5)
    # and the likelihood of the fitted trades is higher than the trained network's
    assert model.log_prob(fit)["size"].mean() > plain.log_prob(fit)["size"].mean()
    pd.testing.assert_series_equal(model.log_prob(fit)["dp"], plain.log_prob(fit)["dp"])
    with pytest.raises(DataError, match="refit_size_bias"):
        TickModel(**TINY, refit_size_bias="yes").fit(fit)
