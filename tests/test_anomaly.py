"""AnomalyDetector and inject_anomalies: nominal false alarms, detection, causality, events, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import finar
from finar.anomaly import AnomalyDetector, _pit, _run_stats, _stats, inject_anomalies
from finar.errors import DataError, NotFittedError, SeriesTooShortError
from tests.conftest import raises_exactly
from tests.models.test_contract import simulate_garch_t


@pytest.fixture(scope="module")
def r() -> pd.Series:
    return simulate_garch_t(3000, seed=5)


@pytest.fixture(scope="module")
def det(r: pd.Series) -> AnomalyDetector:
    return AnomalyDetector(finar.models.GARCH(dist="t"), level=0.05).fit(r.iloc[:1500])


class NoCdfGARCH(finar.models.GARCH):
    """A model declared without a predictive distribution: the detector must fall back to paths
    (and never call ``predictive``, ``cdf`` or ``ppf``)."""

    tags = frozenset({"exog"})

    def predictive(self, r, *, exog=None):
        raise AssertionError("the detector probed a model whose tags lack 'predictive'")


@pytest.mark.parametrize("calibration", ["conformal", "train", "model"])
def test_false_alarm_rate_is_nominal_on_data_from_the_model(r: pd.Series, calibration: str) -> None:
    """On clean data from the model itself, the share of flagged days is the level."""
    level = 0.05
    d = AnomalyDetector(finar.models.GARCH(dist="t"), level=level, calibration=calibration).fit(r.iloc[:1500])
    flags = d.score(r.iloc[1500:], context=r.iloc[:1500])
    rate = flags["flag"].mean()
    assert 0.6 * level <= rate <= 1.5 * level, rate
    # the model p-values are uniform-ish too: the tail test alone flags about `level` of the days
    pit = flags["pit"].to_numpy()
    assert abs(np.mean(2 * np.minimum(pit, 1 - pit) <= level) - level) < 0.02


@pytest.mark.parametrize("window", [1, 3])
def test_injected_anomalies_are_flagged(r: pd.Series, window: int) -> None:
    d = AnomalyDetector(finar.models.GARCH(dist="t"), level=0.05, window=window,
                        flat_window=max(2, window)).fit(r.iloc[:1500])
    test = r.iloc[1500:2000].copy()
    sigma = pd.Series(d.model_.predictive(r).scale, index=r.index)[test.index]
    x, lab = inject_anomalies(test, sigma, n_events=8, kinds=("jump", "stale"), seed=1)
    flags = d.score(x, context=r.iloc[:1500])
    assert flags.loc[lab == "jump", "flag"].all()
    clean = lab == ""
    assert flags.loc[clean, "flag"].mean() < 0.1
    # frozen prices rank above clean days; the 3-day flat test flags the run by its third zero
    stale = flags.loc[lab == "stale", "stat"]
    assert stale.median() > flags.loc[clean, "stat"].quantile(0.9)
    if window == 3:
        for s in lab.index[(lab == "stale") & (lab.shift(1) != "stale")]:
            run = flags.loc[s:].iloc[:5]
            assert run["flag"].iloc[2:].all(), run


def test_scores_are_causal(r: pd.Series, det: AnomalyDetector) -> None:
    """Day t's statistic uses data up to t only: changing later days changes nothing before."""
    test = r.iloc[1500:1800]
    full = det.score(test, context=r.iloc[:1500])
    bumped = test.copy()
    bumped.iloc[150:] = bumped.iloc[150:] * 4 + 1.0  # wild later data, repairs included
    after = det.score(bumped, context=r.iloc[:1500])
    cols = ["score", "pit", "stat", "p_value", "flag"]
    pd.testing.assert_frame_equal(after.iloc[:150][cols], full.iloc[:150][cols])
    assert not np.allclose(after["stat"].iloc[150:], full["stat"].iloc[150:])


def test_score_columns_and_meaning(r: pd.Series, det: AnomalyDetector) -> None:
    test = r.iloc[1500:1600]
    flags = det.score(test, context=r.iloc[:1500])
    assert list(flags.columns) == ["score", "pit", "stat", "p_value", "flag"]
    assert flags.index.equals(test.index)
    lp = det.model_.log_prob(r.iloc[:1600]).iloc[1500:]
    np.testing.assert_allclose(flags["score"], -lp.to_numpy())  # the surprisal -log p(r_t | past)
    np.testing.assert_array_equal(flags["flag"], flags["p_value"] <= det.level)
    assert ((flags["p_value"] > 0) & (flags["p_value"] <= 1)).all()
    # without context the first min_context days only condition
    alone = det.score(test)
    assert alone["stat"].iloc[: det.model_.min_context].isna().all()


def test_events_group_consecutive_flags(det: AnomalyDetector) -> None:
    idx = pd.bdate_range("2020-01-01", periods=8)
    flags = pd.DataFrame({"stat": [1, 5, 7, 2, 1, 9, 1, 1.0], "p_value": [0.5, 0.01, 0.001, 0.02, 0.5, 1e-4,
                                                                       0.5, 0.5],
                          "flag": [False, True, True, True, False, True, False, False]}, index=idx)
    ev = det.events(flags)
    assert ev[["start", "end", "peak", "n_days"]].values.tolist() == [
        [idx[1], idx[3], idx[2], 3], [idx[5], idx[5], idx[5], 1]]
    merged = det.events(flags, max_gap=2)
    assert len(merged) == 1 and merged["n_days"].iloc[0] == 4 and merged["peak"].iloc[0] == idx[5]
    assert det.events(flags.assign(flag=False)).empty


def test_panel_scores_per_asset_and_per_day(r: pd.Series) -> None:
    panel = pd.DataFrame({"A": r.iloc[:1200].to_numpy(), "B": simulate_garch_t(1200, seed=8).to_numpy()},
                         index=r.index[:1200])
    d = AnomalyDetector(finar.models.GARCH(dist="t"), level=0.05).fit(panel.iloc[:900])
    x = panel.iloc[900:].copy()
    x.iloc[50, 1] += 15.0
    long = d.score(x, context=panel.iloc[:900])
    assert long.index.names == ["time", "asset"] and len(long) == 2 * len(x)
    assert bool(long.loc[(x.index[50], "B"), "flag"])
    day = d.score(x, context=panel.iloc[:900], per="day")
    assert day.loc[x.index[50], "asset"] == "B" and bool(day.loc[x.index[50], "flag"])
    ev = d.events(long)
    assert "asset" in ev.columns and ((ev["asset"] == "B") & (ev["start"] == x.index[50])).any()


class UnboundedWaveNet(finar.models.WaveNet):
    """WaveNet claiming unbounded memory: the detector recomputes everything after a repair."""

    @property
    def memory(self):
        return None


def test_finite_memory_shortcut_is_exact(r: pd.Series) -> None:
    """Recomputing only the receptive field after a repair gives the full recomputation's stats."""
    params = dict(residual_channels=4, gate_channels=4, skip_channels=4, layers_per_cycle=3,
                  train={"window": 16, "max_epochs": 2, "seed": 0})
    x = r.iloc[:500].copy()
    x.iloc[[360, 400, 401, 440]] += [12.0, -9.0, 9.0, 15.0]  # tail days: repairs
    a = AnomalyDetector(finar.models.WaveNet(**params), calibration="model").fit(r.iloc[:300])
    b = AnomalyDetector(UnboundedWaveNet(**params), calibration="model").fit(r.iloc[:300])
    sa, sb = a.score(x.iloc[300:], context=x.iloc[:300]), b.score(x.iloc[300:], context=x.iloc[:300])
    assert sa["flag"].iloc[[60, 100, 140]].all()
    pd.testing.assert_frame_equal(sa, sb)


def test_panel_fan_out_matches_serial(r: pd.Series) -> None:
    """Per-asset tasks on joblib workers give exactly the serial scores."""
    panel = pd.DataFrame({"A": r.iloc[:700].to_numpy(), "B": simulate_garch_t(700, seed=3).to_numpy()},
                         index=r.index[:700])
    serial = AnomalyDetector(finar.models.GARCH(dist="t")).fit(panel.iloc[:500])
    fanned = AnomalyDetector(finar.models.GARCH(dist="t"), executor="joblib").fit(panel.iloc[:500])
    np.testing.assert_array_equal(fanned.calibration_, serial.calibration_)
    flags = serial.score(panel.iloc[500:], context=panel.iloc[:500])
    pd.testing.assert_frame_equal(fanned.score(panel.iloc[500:], context=panel.iloc[:500]), flags)
    # one task per asset = one joint run over the panel (repairs recompute every column there)
    _, joint = _run_stats(serial.model_, panel, None, 500, 1, 2, 0.5, 0.01, 0.01, serial.impute_,
                          serial.typical_, serial.resolution_, 1000, 0)
    np.testing.assert_allclose(flags["stat"].unstack("asset")[["A", "B"]].to_numpy(), joint, rtol=1e-12)


def test_model_without_cdf_uses_sample_paths(r: pd.Series) -> None:
    exact = AnomalyDetector(finar.models.GARCH(dist="t"), calibration="model").fit(r.iloc[:1000])
    paths = AnomalyDetector(NoCdfGARCH(dist="t"), calibration="model", n_paths=4000).fit(r.iloc[:1000])
    a = exact.score(r.iloc[1000:1040], context=r.iloc[:1000])["pit"]
    b = paths.score(r.iloc[1000:1040], context=r.iloc[:1000])["pit"]
    np.testing.assert_allclose(b, a, atol=0.03)  # Monte Carlo error of 4000 draws: sd <= 0.008
    # the flat test's small-move probabilities q = P(|R| <= |r|) agree too
    x = r.iloc[960:1040].to_frame()
    res = exact.resolution_
    u_e, q_e = _pit(exact.model_, x, None, 40, 4000, 0, res)
    u_p, q_p = _pit(paths.model_, x, None, 40, 4000, 0, res)
    np.testing.assert_allclose(q_p[40:], q_e[40:], atol=0.03)
    np.testing.assert_allclose(u_p[40:], u_e[40:], atol=0.03)


def test_bad_input_errors(r: pd.Series, det: AnomalyDetector) -> None:
    with raises_exactly(DataError, "level"):
        AnomalyDetector(finar.models.GARCH(), level=0.7).fit(r)
    with raises_exactly(DataError, "calibration"):
        AnomalyDetector(finar.models.GARCH(), calibration="bogus").fit(r)
    with raises_exactly(DataError, "finar forecaster"):
        AnomalyDetector("garch").fit(r)
    with raises_exactly(NotFittedError, "fit"):
        AnomalyDetector(finar.models.GARCH()).score(r)
    with raises_exactly(SeriesTooShortError, "calibration needs at least 999 days"):
        AnomalyDetector(finar.models.GARCH(), level=0.001).fit(r.iloc[:800])
    with raises_exactly(DataError, "context must end before r starts"):
        det.score(r.iloc[100:200], context=r.iloc[:150])
    with raises_exactly(DataError, "refit=False needs a fitted model"):
        AnomalyDetector(finar.models.GARCH(), refit=False).fit(r)
    with raises_exactly(DataError, "per must be"):
        det.score(r.iloc[:200], per="week")


def test_inject_anomalies_follows_the_protocol() -> None:
    idx = pd.bdate_range("2015-01-01", periods=600)
    r = pd.Series(np.random.default_rng(0).normal(size=600), index=idx)
    sigma = pd.Series(2.0, index=idx)
    x, lab = inject_anomalies(r, sigma, n_events=32, seed=3)
    counts = lab[lab != ""].value_counts()
    assert counts.to_dict() == {"burst": 40, "stale": 40, "bad_print": 16, "jump": 8}
    starts = np.flatnonzero((lab != "").to_numpy() & (lab.shift(1, fill_value="") == "").to_numpy())
    assert len(starts) == 32 and np.diff(starts).min() >= 12
    stale = lab == "stale"
    assert (x[stale] == 0).all()
    jump = lab == "jump"
    assert ((x[jump] - r[jump]).abs().between(8, 16)).all()  # 4..8 sigmas of 2
    np.testing.assert_allclose(x[lab == "burst"], 3 * r[lab == "burst"])
    np.testing.assert_array_equal(x[lab == ""], r[lab == ""])
    again, _ = inject_anomalies(r, sigma, n_events=32, seed=3)
    pd.testing.assert_series_equal(again, x)
    # panels: every event on one asset; decouple only on calm days
    panel = pd.DataFrame({"A": r, "B": r[::-1].to_numpy()}, index=idx)
    xp, lp = inject_anomalies(panel, panel * 0 + 1.0, n_events=10, kinds=("decouple",), seed=0)
    hit = (lp == "decouple").to_numpy()
    assert hit.sum() == 10 and hit.sum(axis=1).max() == 1
    np.testing.assert_array_equal(xp.to_numpy()[~hit], panel.to_numpy()[~hit])  # the others untouched
    np.testing.assert_allclose(np.abs(xp.to_numpy()[hit] - panel.to_numpy()[hit]), 5.0)
    med = np.median(panel.abs().to_numpy(), axis=1)
    assert (med[hit.any(axis=1)] < np.median(med)).all()
    # flip: on market days, an asset that moved with the market reverses
    wide = pd.DataFrame(np.random.default_rng(1).normal(size=(600, 6)) + np.random.default_rng(2).normal(
        size=(600, 1)), index=idx)
    xf, lf = inject_anomalies(wide, wide * 0 + 1.0, n_events=10, kinds=("flip",), seed=0)
    hit = (lf == "flip").to_numpy()
    assert hit.sum() == 10 and hit.sum(axis=1).max() == 1
    np.testing.assert_array_equal(xf.to_numpy()[hit], -wide.to_numpy()[hit])
    np.testing.assert_array_equal(xf.to_numpy()[~hit], wide.to_numpy()[~hit])
    days = hit.any(axis=1)
    med = np.median(wide.abs().to_numpy(), axis=1)
    assert (med[days] > np.quantile(med, 0.8)).all()
    assert (np.sign(wide.to_numpy()[hit]) == np.sign(np.median(wide.to_numpy()[days], axis=1))).all()
    with raises_exactly(DataError, "unknown anomaly kinds"):
        inject_anomalies(r, sigma, kinds=("meteor",))
    with raises_exactly(DataError, "cannot place"):
        inject_anomalies(r.iloc[:100], sigma.iloc[:100], n_events=32)


def test_conformal_blocks_are_scored_out_of_sample(r: pd.Series) -> None:
    """Rolling origin: each calibration block is scored by a model fitted on the days before it
    only, and the scoring model is then fitted on all the training days."""
    train = r.iloc[:1200]
    d = AnomalyDetector(finar.models.GARCH(dist="t"), level=0.05, calibration_fraction=0.5,
                        calibration_folds=2).fit(train)
    blocks = []
    for a, b in [(600, 900), (900, 1200)]:
        m = finar.models.GARCH(dist="t").fit(train.iloc[:a])
        _, st = _stats(d, train.iloc[:b].to_frame(), None, a, m)
        blocks.append(st.ravel())
    np.testing.assert_array_equal(d.calibration_, np.sort(np.concatenate(blocks)))
    full = finar.models.GARCH(dist="t").fit(train)
    np.testing.assert_allclose(d.model_.log_prob(r).to_numpy(), full.log_prob(r).to_numpy(), rtol=1e-12)
    with raises_exactly(DataError, "calibration_folds must be a positive integer"):
        AnomalyDetector(finar.models.GARCH(), calibration_folds=0).fit(train)


def test_flat_test_finds_frozen_prices_whatever_the_drift(r: pd.Series) -> None:
    """The flat test asks how probable a move at most this small was, not how close to the
    predictive centre: a frozen price stands out even when the model expects a drift."""
    drifted = r * 0.5 + 0.4  # the predictive median sits well above zero
    d = AnomalyDetector(finar.models.GARCH(dist="t"), level=0.01).fit(drifted.iloc[:1500])
    assert d.resolution_[0] == pytest.approx(drifted.iloc[:1500].abs().min() / 2)
    x = drifted.iloc[1500:1700].copy()
    x.iloc[100:105] = 0.0
    flags = d.score(x, context=drifted.iloc[:1500])
    assert flags["flag"].iloc[101:105].all(), flags.iloc[98:106]
    assert flags["flag"].iloc[:100].mean() < 0.05
    # an exact zero is always a flat candidate, however strict flat_gate is
    strict = AnomalyDetector(finar.models.GARCH(dist="t"), level=0.01, flat_gate=1e-12)
    strict.fit(drifted.iloc[:1500])
    assert strict.score(x, context=drifted.iloc[:1500])["flag"].iloc[101:105].all()
    with raises_exactly(DataError, "resolution must be a number >= 0 or None"):
        AnomalyDetector(finar.models.GARCH(), resolution=-1.0).fit(r)
    with raises_exactly(DataError, r"flat_gate must lie in \(0, 1\]"):
        AnomalyDetector(finar.models.GARCH(), flat_gate=0.0).fit(r)


# ---- covariates, capabilities from tags, the estimator kernel ------------------------------------

@pytest.fixture(scope="module")
def with_signal(r: pd.Series) -> tuple[pd.Series, pd.DataFrame]:
    """Returns whose mean follows yesterday's signal: r_t += 0.8 x_{t-1}."""
    x = pd.DataFrame({"signal": np.random.default_rng(4).normal(size=len(r))}, index=r.index)
    return r + 0.8 * x["signal"].shift(1, fill_value=0.0), x


def test_covariates_reach_every_fit_and_score(with_signal) -> None:
    y, x = with_signal
    d = AnomalyDetector(finar.models.GARCH(dist="t"), level=0.05).fit(y.iloc[:1500], exog=x.iloc[:1500])
    assert d.exog_columns_ == ["signal"] and d.model_.exog_columns_ == ["signal"]
    test, ctx = slice(1500, 1800), slice(0, 1500)
    flags = d.score(y.iloc[test], context=y.iloc[ctx], exog=x.iloc[test], context_exog=x.iloc[ctx])
    pred = d.model_.predictive(y.iloc[:1800], exog=x.iloc[:1800])
    np.testing.assert_allclose(flags["score"], -pred.log_prob(y.to_numpy()[:1800])[1500:], rtol=1e-12)
    pit = pred.cdf(y.to_numpy()[:1800])[1500:]
    first_tail = int(np.argmax(2 * np.minimum(pit, 1 - pit) <= 0.05))  # later days see it repaired
    np.testing.assert_allclose(flags["pit"].iloc[:first_tail + 1], pit[:first_tail + 1], rtol=1e-12)
    blind = AnomalyDetector(finar.models.GARCH(dist="t"), level=0.05).fit(y.iloc[:1500])
    blind_flags = blind.score(y.iloc[test], context=y.iloc[ctx])
    assert flags["score"].mean() < blind_flags["score"].mean() - 0.1  # the signal explains the mean
    # causal in the covariates too: changing them from day 150 on changes nothing before it
    bumped = x.iloc[test].copy()
    bumped.iloc[150:] += 3.0
    after = d.score(y.iloc[test], context=y.iloc[ctx], exog=bumped, context_exog=x.iloc[ctx])
    pd.testing.assert_frame_equal(after.iloc[:150], flags.iloc[:150])
    with raises_exactly(DataError, "fitted with covariates"):
        d.score(y.iloc[test], context=y.iloc[ctx])
    with raises_exactly(DataError, "fitted without covariates"):
        blind.score(y.iloc[test], exog=x.iloc[test])
    with raises_exactly(DataError, "exactly the rows"):
        d.score(y.iloc[test], exog=x.iloc[1501:1800])


def test_path_fallback_is_chosen_by_tags_and_takes_covariates(with_signal) -> None:
    """A model without the 'predictive' tag is never asked for its predictive (NoCdfGARCH raises),
    and its one-step paths are drawn with the covariates."""
    y, x = with_signal
    exact = AnomalyDetector(finar.models.GARCH(dist="t"), calibration="model").fit(y.iloc[:1000],
                                                                                   exog=x.iloc[:1000])
    paths = AnomalyDetector(NoCdfGARCH(dist="t"), calibration="model", n_paths=4000).fit(
        y.iloc[:1000], exog=x.iloc[:1000])
    kw = dict(context=y.iloc[:1000], context_exog=x.iloc[:1000], exog=x.iloc[1000:1030])
    a = exact.score(y.iloc[1000:1030], **kw)["pit"]
    b = paths.score(y.iloc[1000:1030], **kw)["pit"]
    np.testing.assert_allclose(b, a, atol=0.03)


def test_detector_is_an_estimator_with_a_model_file(tmp_path, r: pd.Series, det: AnomalyDetector) -> None:
    from finar.models import clone

    params = det.get_params(deep=True)
    assert params["level"] == 0.05 and params["model__dist"] == "t"
    assert repr(det) == "AnomalyDetector(model=GARCH(), level=0.05)"
    fresh = clone(det)
    assert not fresh.is_fitted and fresh.get_params(deep=False)["level"] == 0.05
    assert fresh.set_params(model__dist="normal").model.dist == "normal" and det.model.dist == "t"
    loaded = finar.models.load(det.save(tmp_path / "detector.pt"))
    assert isinstance(loaded, AnomalyDetector) and loaded.model.get_params() == det.model.get_params()
    kw = dict(context=r.iloc[:1500])
    pd.testing.assert_frame_equal(loaded.score(r.iloc[1500:1700], **kw), det.score(r.iloc[1500:1700], **kw))
    with raises_exactly(NotFittedError, "fit"):
        fresh.save(tmp_path / "unfitted.pt")


def test_a_wavenet_with_a_covariate_is_scored_without_paths(with_signal, monkeypatch) -> None:
    y, x = with_signal

    def refuse(*args, **kwargs):
        raise AssertionError("the detector drew sample paths from a model with a predictive distribution")

    monkeypatch.setattr(finar.models.WaveNet, "sample", refuse)
    net = finar.models.WaveNet(residual_channels=4, gate_channels=4, skip_channels=4, layers_per_cycle=3,
                               train={"max_epochs": 2, "window": 16})
    d = AnomalyDetector(net, calibration="model").fit(y.iloc[:600], exog=x.iloc[:600])
    flags = d.score(y.iloc[600:700], context=y.iloc[:600], exog=x.iloc[600:700], context_exog=x.iloc[:600])
    pred = d.model_.predictive(y.iloc[:700], exog=x.iloc[:700])
    np.testing.assert_allclose(flags["score"], -pred.log_prob(y.to_numpy()[:700])[600:], rtol=1e-6)
    pit = pred.cdf(y.to_numpy()[:700])[600:]
    first_tail = int(np.argmax(2 * np.minimum(pit, 1 - pit) <= 0.01))  # later days see it repaired
    np.testing.assert_allclose(flags["pit"].iloc[:first_tail + 1], pit[:first_tail + 1], rtol=1e-12)
