"""Conformance checks: the forecaster contract suite, runnable on any model, yours included.

:func:`check_forecaster` fits a model on a small slice of data and checks every promise of the
contract in :mod:`finar.models.base` (scikit-learn's ``check_estimator`` for finar):

- ``params``: ``get_params``/``set_params``/``clone`` round-trip (``deep=True`` included) and
  ``__init__`` only stores its arguments;
- ``fit``: ``fit`` returns ``self``, learned attributes end in ``_``, an unfitted model refuses to
  score or sample, and neither ``fit`` nor ``sample`` touches global random state;
- ``log_prob_alignment``: a Series gives a Series and a DataFrame a DataFrame, on the same index,
  NaN exactly for the first ``min_context`` days and finite after;
- ``causality``: changing returns after a day does not change ``log_prob`` up to that day, nor
  (tag ``"predictive"``) changing them from that day on its predictive distribution, which must
  not use the day's own return; a declared ``memory`` is honoured;
- ``exog_causality`` (tag ``"exog"``): changing covariate rows from day ``s`` on does not change
  ``log_prob`` up to day ``s``, since row ``t`` conditions ``r_{t+1}``, never ``r_t``;
- ``seeds``: ``sample`` gives :class:`~finar.models.scenarios.Scenarios` shaped
  ``(n_paths, horizon, n_series)`` after the context; the same seed the same paths, another
  seed other paths;
- ``save_load`` (registered classes): the file reads with ``torch.load(weights_only=True)`` and
  the loaded model has the same parameters, ``log_prob`` and paths;
- ``predictive`` (tag ``"predictive"``): ``predictive(r).log_prob(r)`` equals ``log_prob(r)``,
  ``cdf(ppf(q)) = q``, the CDF's slope is the density, ``es >= var``, ``crps >= 0``, finite
  moments, draws distributed as the CDF says, and ``model.cdf``/``model.ppf`` agree;
- ``covariates``: a model tagged ``"exog"`` fits with a covariate and then needs it, with the
  right rows, in ``log_prob``, ``predictive`` and ``sample``; any other model refuses ``exog``;
  one tagged ``"needs_exog"`` refuses to fit without it, and one tagged ``"simulates_exog"``
  samples without ``exog_future`` and refuses it;
- ``bad_input``: NaN, unsorted or repeated days, arrays and too-short series raise finar errors;
- ``panel_joint``: several columns in, as many out; ``joint_log_prob`` is the row sum.

A model tagged ``"needs_exog"`` gets the covariate (on the days of the returns) in every check.

Examples
--------
>>> import finar
>>> from finar.testing import check_forecaster
>>> check_forecaster(finar.models.AR(order=1))  # returns None when every check passes
"""

from __future__ import annotations

import pickle
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from finar._estimator import Estimator, _lookup, clone, plain
from finar._estimator import load as load_model
from finar.errors import DataError, FinarError, NotFittedError
from finar.models.base import Forecaster, check_exog, check_returns
from finar.models.predictive import Predictive
from finar.models.scenarios import Scenarios, future_index

__all__ = ["check_forecaster", "CHECKS"]


class _NotApplicable(Exception):
    """A check that does not apply to this model (e.g. ``save_load`` of an unregistered class)."""


def _fail(message: str) -> NoReturn:
    """A failed check (``check_forecaster`` adds the check's name)."""
    raise AssertionError(message)


def _expect_error(call: Callable[[], Any], what: str, cls: type[Exception] = FinarError,
                  names: str | None = None) -> None:
    """``call()`` must raise ``cls`` (a finar error), whose message mentions ``names`` if given."""
    try:
        call()
    except cls as exc:
        if names is not None and names not in str(exc):
            raise AssertionError(f"{what} raised {type(exc).__name__}, but its message does not name "
                                 f"{names!r}: {exc}") from exc
        return
    except Exception as exc:  # the wrong kind of error
        raise AssertionError(f"{what} raised {type(exc).__name__} ({exc}); expected a {cls.__name__} "
                             "(finar.errors) naming the problem") from exc
    raise AssertionError(f"{what} raised nothing; expected a {cls.__name__} (finar.errors)")


def _first_change(a: np.ndarray, b: np.ndarray, rtol: float = 1e-9, atol: float = 1e-9) -> int | None:
    """Position of the first entry where ``a`` and ``b`` differ (NaN equals NaN), or None."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    same = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    bad = np.flatnonzero(~same)
    return int(bad[0]) if bad.size else None


def _day(label: Any) -> str:
    """A row label for messages: the date alone for a midnight timestamp."""
    if isinstance(label, pd.Timestamp) and label == label.normalize():
        return str(label.date())
    return str(label)


def _canon(value: Any) -> Any:
    """Parameters in a comparable form: nested estimators by class and parameters, arrays as lists."""
    if isinstance(value, Estimator):
        return (type(value).__qualname__, _canon(value.get_params(deep=False)))
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    return plain(value)


def _global_rng() -> bytes:
    """The global random states (Python, NumPy, and torch when loaded) as bytes."""
    state = [random.getstate(), np.random.get_state()]
    if "torch" in sys.modules:
        state.append(sys.modules["torch"].random.get_rng_state().numpy().tobytes())
    return pickle.dumps(state)


# ---- the data and the fitted models the checks share ------------------------------------------------
class _Case:
    """The model under test, its data, and the fits the checks share (each fit done once)."""

    def __init__(self, model: Forecaster, r: pd.Series, exog: pd.DataFrame, panel: pd.DataFrame,
                 seed: int, tiny: bool) -> None:
        self.model, self.r, self.exog, self.panel, self.seed = model, r, exog, panel, seed
        # fitted on all of r, as the contract's promises (finite scores after min_context days)
        # are about the model's mechanics; models with a bounded support (binned heads) may
        # legitimately give -inf to a return far outside everything they were fitted on
        self.train, self.exog_train = r, exog
        self.n_cuts = 3 if tiny else 6
        self._fits: dict[str, Forecaster | Exception] = {}

    def fit(self, key: str, call: Callable[[Forecaster], Any]) -> Forecaster:
        if key not in self._fits:
            m = clone(self.model)
            try:
                call(m)
                self._fits[key] = m
            except Exception as exc:
                self._fits[key] = exc
        out = self._fits[key]
        if isinstance(out, Exception):
            raise AssertionError(f"not run: fitting failed ({type(out).__name__}: {out})") from out
        return out

    def kw(self, r: pd.Series | pd.DataFrame, horizon: int | None = None) -> dict[str, Any]:
        """The covariate arguments for the days of ``r``: none, unless the model is tagged
        ``"needs_exog"`` (then ``exog`` on ``r``'s days, and ``exog_future`` for ``sample`` of
        ``horizon`` days unless it is also tagged ``"simulates_exog"``)."""
        tags = self.model.tags
        if "needs_exog" not in tags:
            return {}
        out: dict[str, Any] = {"exog": self.exog.reindex(r.index)}
        if horizon is not None and horizon > 1 and "simulates_exog" not in tags:
            out["exog_future"] = pd.DataFrame(np.repeat(self.exog.to_numpy()[-1:], horizon - 1, axis=0),
                                              columns=self.exog.columns)
        return out

    def fitted(self) -> Forecaster:
        return self.fit("series", lambda m: m.fit(self.train, **self.kw(self.train)))

    def fitted_exog(self) -> Forecaster:
        if "needs_exog" in self.model.tags:  # the same fit as fitted()
            return self.fitted()
        return self.fit("exog", lambda m: m.fit(self.train, exog=self.exog_train))

    def fitted_panel(self) -> Forecaster:
        return self.fit("panel", lambda m: m.fit(self.panel, **self.kw(self.panel)))

    def cuts(self, k: int) -> list[int]:
        """Days after which the causality checks perturb the data (spread over the scored days)."""
        n = len(self.r)
        return sorted({int(c) for c in np.linspace(min(k + 3, n - 3), n - 10, self.n_cuts)})


def _default_data(tiny: bool) -> tuple[pd.Series, pd.DataFrame]:
    """S&P 500 log returns in percent and the day's log range ``100 ln(high_t / low_t)``.

    800 days from 2010 (the August 2011 sell-off in the middle), or 2,500 from 2004 (2008 in the
    middle), so the last days, which neural models hold out for validation, are like the rest.
    The range is known at the close of day ``t``, as a covariate row must be.
    """
    from finar.data import load, returns

    px = load("sp500")
    start, n = ("2010-01-01", 800) if tiny else ("2004-01-01", 2500)
    r = returns(px["adj_close"]).loc[start:].iloc[:n]
    log_range = 100 * np.log(px["high"] / px["low"])
    return r, log_range.reindex(r.index).rename("log_range").to_frame()


# ---- the checks, in the order they run ---------------------------------------------------------------
def _check_params(case: _Case) -> None:
    m, cls = case.model, type(case.model)
    shallow, deep = m.get_params(deep=False), m.get_params(deep=True)
    names = cls._param_names()
    if sorted(shallow) != sorted(names):
        _fail(f"get_params(deep=False) gives {sorted(shallow)}, not the constructor "
              f"arguments {sorted(names)}")
    missing = sorted(set(shallow) - set(deep))
    if missing:
        _fail(f"get_params(deep=True) lacks {missing}")
    fresh = cls(**shallow)
    extra = sorted(k for k in vars(fresh) if not k.startswith("_") and k not in shallow)
    if extra:
        _fail(f"__init__ sets {extra}, which are not its parameters; __init__ must only store "
              "its arguments (validate and compute in fit)")
    changed = sorted(k for k in shallow if getattr(fresh, k) is not shallow[k])
    if changed:
        _fail(f"__init__ changes or copies the parameters {changed}; store them as given and "
              "validate them in fit")
    if fresh.is_fitted:
        _fail("a new model says is_fitted; only fit may set attributes ending in '_'")
    c = clone(m)
    if type(c) is not cls or _canon(c.get_params(deep=True)) != _canon(deep) or c.is_fitted:
        _fail(f"clone gave {c!r}, not an unfitted {cls.__name__} with equal parameters")
    c2 = clone(m).set_params(**deep)
    if _canon(c2.get_params(deep=True)) != _canon(deep):
        _fail("set_params(**get_params(deep=True)) changed the parameters")
    if not repr(m).startswith(cls.__name__):
        _fail(f"repr {repr(m)!r} does not start with the class name")


def _check_fit(case: _Case) -> None:
    m = clone(case.model)
    _expect_error(lambda: m.log_prob(case.r), "log_prob before fit", NotFittedError)
    _expect_error(lambda: m.sample(case.r, horizon=2, n_paths=3, seed=0), "sample before fit", NotFittedError)
    before = _global_rng()
    out = m.fit(case.train, **case.kw(case.train))
    case._fits["series"] = m
    if out is not m:
        _fail(f"fit returned {type(out).__name__}, not the model itself (return self)")
    if _global_rng() != before:
        _fail("fit changed the global random state (Python, NumPy or torch); use a seeded "
              "generator of its own")
    if not m.is_fitted:
        _fail("after fit, is_fitted is False: learned attributes must end in '_'")
    params = m.get_params(deep=False)
    odd = sorted(k for k in vars(m) if not k.startswith("_") and not k.endswith("_") and k not in params)
    if odd:
        _fail(f"fit set {odd}: learned attributes must end in '_' (private ones start with '_')")
    k = m.min_context
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        _fail(f"min_context must be an int >= 0, got {k!r}")
    if k + 5 >= len(case.r):
        _fail(f"min_context {k} leaves almost nothing to score in {len(case.r)} days; pass a longer r")


def _check_log_prob_alignment(case: _Case) -> None:
    m, r = case.fitted(), case.r
    k = int(m.min_context)
    lp = m.log_prob(r, **case.kw(r))
    if not isinstance(lp, pd.Series) or not lp.index.equals(r.index) or lp.name != r.name:
        _fail(f"log_prob of a Series must be a Series on its index with its name "
              f"{r.name!r}; got {type(lp).__name__}")
    _nan_then_finite(lp, k, "log_prob(r)")
    frame = m.log_prob(r.to_frame(), **case.kw(r))
    if not isinstance(frame, pd.DataFrame) or not frame.index.equals(r.index) or \
            list(frame.columns) != [r.name]:
        _fail(f"log_prob of a one-column DataFrame must be a DataFrame with its index "
              f"and columns; got {type(frame).__name__}")
    if _first_change(frame.iloc[:, 0], lp, 1e-10, 1e-10) is not None:
        _fail("log_prob of r.to_frame() differs from log_prob of r")
    later = r.iloc[-len(r) // 3:]
    _nan_then_finite(m.log_prob(later, **case.kw(later)), k, "log_prob of a shorter, later stretch of r")


def _nan_then_finite(lp: pd.Series, k: int, what: str) -> None:
    values = lp.to_numpy(dtype=float)
    if not np.isnan(values[:k]).all():
        day = lp.index[int(np.flatnonzero(~np.isnan(values[:k]))[0])]
        _fail(f"{what} is not NaN on {_day(day)}, within the first min_context = {k} days")
    bad = ~np.isfinite(values[k:])
    if bad.any():
        day = lp.index[k + int(np.flatnonzero(bad)[0])]
        _fail(f"{what} is not finite on {_day(day)} ({values[k:][bad][0]}), after the "
              f"first min_context = {k} days")


def _check_causality(case: _Case) -> None:
    m, r = case.fitted(), case.r
    kw = case.kw(r)
    base = m.log_prob(r, **kw).to_numpy(dtype=float)
    if _first_change(m.log_prob(r, **kw), base, 0, 0) is not None:
        _fail("log_prob(r) gave different values on two calls: it must be deterministic")
    rng, scale = np.random.default_rng(case.seed), 3 * float(r.std())
    predictive = "predictive" in m.tags
    pred = m.predictive(r, **kw) if predictive else None
    for s in case.cuts(int(m.min_context)):
        bumped = r.copy()
        bumped.iloc[s + 1:] += rng.normal(0.0, scale, len(r) - s - 1)
        after = m.log_prob(bumped, **kw).to_numpy(dtype=float)
        i = _first_change(after[: s + 1], base[: s + 1])
        if i is not None:
            _fail(f"log_prob of {_day(r.index[i])} changed ({base[i]:.6g} -> {after[i]:.6g}) when only "
                  f"returns after {_day(r.index[s])} changed: the model looks ahead")
        if _first_change(after[s + 1:], base[s + 1:]) is None:
            _fail(f"changing the returns after {_day(r.index[s])} changed none of their log_prob")
        if pred is not None:  # day s's distribution may not depend on r_s itself either
            bumped.iloc[s] += scale
            pb = m.predictive(bumped, **kw)
            for name, a, b in (("mean", pred.mean(), pb.mean()), ("std", pred.std(), pb.std()),
                               ("ppf(0.05)", pred.ppf(0.05), pb.ppf(0.05))):
                i = _first_change(b[: s + 1], a[: s + 1])
                if i is not None:
                    _fail(f"the predictive {name} of {_day(r.index[i])} changed when only returns from "
                          f"{_day(r.index[s])} on changed: day t's distribution may only use r_<t"
                          + (", and it uses r_t here: the model looks ahead" if i == s else
                             ": the model looks ahead"))
    memory = m.memory
    if memory is not None:
        p = case.cuts(int(m.min_context))[0]
        bumped = r.copy()
        bumped.iloc[p] += scale
        after = m.log_prob(bumped, **kw).to_numpy(dtype=float)
        i = _first_change(after[p + memory + 1:], base[p + memory + 1:])
        if i is not None:
            day = r.index[p + memory + 1 + i]
            _fail(f"memory is {memory} days, but log_prob of {_day(day)} changed when only the "
                  f"return of {_day(r.index[p])}, {memory + 1 + i} days before, changed")


def _check_exog_causality(case: _Case) -> None:
    if "exog" not in case.model.tags:
        raise _NotApplicable("not tagged 'exog'")
    m, r, x = case.fitted_exog(), case.r, case.exog
    base = m.log_prob(r, exog=x).to_numpy(dtype=float)
    rng = np.random.default_rng(case.seed + 1)
    for s in case.cuts(int(m.min_context)):
        bumped = x.copy()
        noise = np.abs(rng.normal(0.0, 3.0, bumped.iloc[s:].shape)) * x.std().to_numpy()
        bumped.iloc[s:] = bumped.iloc[s:].to_numpy() + noise  # stays positive for positive covariates
        after = m.log_prob(r, exog=bumped).to_numpy(dtype=float)
        i = _first_change(after[: s + 1], base[: s + 1])
        if i is not None:
            _fail(f"log_prob of {_day(r.index[i])} changed when only exog rows from {_day(r.index[s])} "
                  "on changed: exog row t is known at the close of day t and may only "
                  "condition r_{t+1}" + (" (row t conditions r_t here)" if i == s else ""))


def _check_seeds(case: _Case) -> None:
    m, r, seed = case.fitted(), case.r, case.seed
    before = _global_rng()
    a, b, c = (m.sample(context=r, horizon=5, n_paths=40, seed=s, **case.kw(r, 5))
               for s in (seed, seed, seed + 1))
    if _global_rng() != before:
        _fail("sample changed the global random state; draw from a generator seeded by `seed`")
    if not isinstance(a, Scenarios):
        _fail(f"sample must return finar.Scenarios, got {type(a).__name__}")
    if a.paths.shape != (40, 5, 1):
        _fail(f"sample(horizon=5, n_paths=40) of one series gave paths shaped {a.paths.shape}, "
              "not (n_paths, horizon, n_series) = (40, 5, 1)")
    if not np.isfinite(a.paths).all():
        _fail("sample gave non-finite paths")
    if len(a.index) != 5 or not a.index[0] > r.index[-1] or [str(c) for c in a.columns] != [str(r.name)]:
        _fail("Scenarios must be indexed by the 5 days after the context, with its column name")
    if not np.array_equal(a.paths, b.paths):
        _fail(f"the same seed {seed} gave different paths: draw only from the seeded generator")
    if np.allclose(a.paths, c.paths):
        _fail(f"seeds {seed} and {seed + 1} gave the same paths: the seed is ignored")
    if not a.paths[:, -1, 0].std() > 0:
        _fail("all paths are equal")
    half = len(r) // 2
    p = m.sample(context=r.iloc[:half], horizon=3, n_paths=10, seed=seed, **case.kw(r.iloc[:half], 3))
    if p.paths.shape != (10, 3, 1) or not p.index[0] > r.index[half - 1]:
        _fail("sample after a shorter context must start after its last day")
    kw = case.kw(r, 2)
    _expect_error(lambda: m.sample(context=r, horizon=2, n_paths=3, seed=-1, **kw), "sample(seed=-1)")
    _expect_error(lambda: m.sample(context=r, horizon=0, n_paths=3, seed=0, **kw), "sample(horizon=0)")
    _expect_error(lambda: m.sample(context=r, horizon=2, n_paths=0, seed=0, **kw), "sample(n_paths=0)")


def _registered(model: Forecaster) -> None:
    name = type(model).registry_name
    if not name:
        raise _NotApplicable("the class is not registered with finar.models.register")
    if _lookup(name) is not type(model):
        raise AssertionError(f"{type(model).__name__} inherits the registry name {name!r} of "
                             f"{_lookup(name).__name__}, so its files load as that class; register it "
                             "under its own name")


def _check_save_load(case: _Case) -> None:
    _registered(case.model)
    import torch

    m, r = case.fitted(), case.r
    with tempfile.TemporaryDirectory() as tmp:
        path = m.save(Path(tmp) / "model.pt")
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            _fail(f"the model file does not load with torch.load(weights_only=True) ({exc}); "
                  "_get_state must hold plain values and tensors only")
        m2 = load_model(path)
    if type(m2) is not type(m) or _canon(m2.get_params(deep=True)) != _canon(m.get_params(deep=True)):
        _fail(f"the loaded model {m2!r} differs from the saved {m!r}")
    kw = case.kw(r)
    if _first_change(m2.log_prob(r, **kw), m.log_prob(r, **kw), 1e-10, 1e-12) is not None:
        _fail("the loaded model's log_prob differs from the saved model's")
    a, b = (x.sample(context=r, horizon=4, n_paths=10, seed=case.seed, **case.kw(r, 4)) for x in (m, m2))
    if not np.array_equal(a.paths, b.paths):
        _fail("the loaded model samples other paths from the same seed")


def _check_predictive(case: _Case) -> None:
    if "predictive" not in case.model.tags:
        raise _NotApplicable("not tagged 'predictive'")
    m, r = case.fitted(), case.r
    y, k, kw = r.to_numpy(dtype=float), int(m.min_context), case.kw(r)
    pred = m.predictive(r, **kw)
    if not isinstance(pred, Predictive) or len(pred) != len(r) or not pred.index.equals(r.index):
        _fail(f"predictive(r) must be a finar Predictive with r's {len(r)} days, got "
              f"{type(pred).__name__}")
    lp = m.log_prob(r, **kw).to_numpy(dtype=float)
    plp = np.asarray(pred.log_prob(y), dtype=float)
    i = _first_change(plp[k:], lp[k:], 1e-6, 1e-8)
    if i is not None:
        _fail(f"predictive(r).log_prob(r) is {plp[k + i]:.6g} on {_day(r.index[k + i])}, but "
              f"log_prob(r) is {lp[k + i]:.6g}: the two must be the same density")
    mean, std = np.asarray(pred.mean(), float), np.asarray(pred.std(), float)
    if not (np.isnan(mean[:k]).all() and np.isnan(std[:k]).all()):
        _fail(f"the predictive of the first min_context = {k} days must be NaN")
    if not (np.isfinite(mean[k:]).all() and (std[k:] > 0).all() and np.isfinite(std[k:]).all()):
        _fail("predictive mean and std must be finite (std > 0) after min_context days")
    quantiles = {q: np.asarray(pred.ppf(q), float) for q in (0.01, 0.5, 0.9)}
    for q, x in quantiles.items():
        back = np.asarray(pred.cdf(x), float)[k:]
        if not np.allclose(back, q, atol=1e-6):
            _fail(f"cdf(ppf({q})) is {back[np.argmax(np.abs(back - q))]:.8g}, not {q}")
    lo, mid, hi = (x[k:] for x in quantiles.values())
    if not ((lo <= mid) & (mid <= hi)).all():
        _fail("ppf must increase with q")
    full_pit = np.asarray(pred.cdf(y), float)
    pit = full_pit[k:]
    if not ((pit >= 0) & (pit <= 1)).all():
        _fail("cdf(r) must lie in [0, 1]")
    h = 1e-3 * std
    slope = (np.asarray(pred.cdf(y + h), float) - np.asarray(pred.cdf(y - h), float)) / (2 * h)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(slope[k:] / np.exp(plp[k:]) - 1)
    if np.mean(rel > 1e-2) > 0.05:
        j = k + int(np.argmax(rel))
        _fail(f"the slope of cdf is not the density exp(log_prob) (on {_day(r.index[j])}: "
              f"{slope[j]:.6g} vs {np.exp(plp[j]):.6g})")
    var, es = np.asarray(pred.var(0.01), float)[k:], np.asarray(pred.es(0.01), float)[k:]
    if not np.allclose(var, -lo, rtol=1e-9, atol=1e-12):
        _fail("var(0.01) must be -ppf(0.01)")
    if not (np.isfinite(es).all() and (es >= var - 1e-9 * np.abs(var) - 1e-12).all()):
        _fail("es(0.01) must be finite and >= var(0.01)")
    crps = np.asarray(pred.crps(y), float)[k:]
    if not (np.isfinite(crps).all() and (crps >= 0).all()):
        _fail("crps(r) must be finite and >= 0")
    part = pred.take(slice(k, None))
    draws = part.sample(np.random.default_rng(case.seed), 20)
    u = np.concatenate([np.asarray(part.cdf(d), float) for d in draws])  # uniform if draws follow cdf
    if abs(u.mean() - 0.5) > 0.015 or abs(np.mean(u < 0.1) - 0.1) > 0.015:
        _fail("draws of predictive.sample are not distributed as its cdf says")
    if _first_change(m.cdf(r, **kw), full_pit) is not None:
        _fail("model.cdf(r) differs from predictive(r).cdf(r)")
    if _first_change(m.ppf(r, 0.01, **kw), quantiles[0.01]) is not None:
        _fail("model.ppf(r, 0.01) differs from predictive(r).ppf(0.01)")


def _check_covariates(case: _Case) -> None:
    r, x = case.r, case.exog
    if "exog" not in case.model.tags:
        _expect_error(lambda: clone(case.model).fit(case.train, exog=case.exog_train),
                      "fit(exog=...) of a model not tagged 'exog' (it must refuse, not ignore, covariates)")
        return
    if "needs_exog" in case.model.tags:
        _expect_error(lambda: clone(case.model).fit(case.train), "fit without exog of a model tagged "
                      "'needs_exog'", DataError, "exog")
    m = case.fitted_exog()
    k = int(m.min_context)
    lp = m.log_prob(r, exog=x)
    if not isinstance(lp, pd.Series) or not lp.index.equals(r.index):
        _fail("log_prob(r, exog=x) must be a Series on r's index")
    _nan_then_finite(lp, k, "log_prob(r, exog=x)")
    _expect_error(lambda: m.log_prob(r), "log_prob without the exog it was fitted with", DataError, "exog")
    _expect_error(lambda: m.log_prob(r, exog=x.iloc[:-1]), "log_prob with exog missing a row", DataError)
    shifted = x.set_axis(x.index + pd.Timedelta(days=1))
    _expect_error(lambda: m.log_prob(r, exog=shifted), "log_prob with exog on other days", DataError)
    if "predictive" in m.tags:
        _expect_error(lambda: m.predictive(r), "predictive without exog", DataError, "exog")
        plp = np.asarray(m.predictive(r, exog=x).log_prob(r.to_numpy(dtype=float)), float)
        if _first_change(plp[k:], lp.to_numpy(dtype=float)[k:], 1e-6, 1e-8) is not None:
            _fail("predictive(r, exog=x).log_prob(r) differs from log_prob(r, exog=x)")
    fut = pd.DataFrame(np.repeat(x.to_numpy()[-1:], 4, axis=0), index=future_index(r.index, 4),
                       columns=x.columns)
    simulates = "simulates_exog" in m.tags  # it draws the covariates of the simulated days itself
    a, b = (m.sample(context=r, horizon=5, n_paths=20, seed=case.seed, exog=x,
                     **({} if simulates else {"exog_future": fut})) for _ in range(2))
    if a.paths.shape != (20, 5, 1) or not np.array_equal(a.paths, b.paths) or not np.isfinite(a.paths).all():
        _fail("sample with exog must give finite (n_paths, horizon, 1) paths, equal for one seed")
    _expect_error(lambda: m.sample(context=r, horizon=5, n_paths=3, seed=0), "sample without exog",
                  DataError, "exog")
    if simulates:
        _expect_error(lambda: m.sample(context=r, horizon=5, n_paths=3, seed=0, exog=x, exog_future=fut),
                      "sample with exog_future of a model tagged 'simulates_exog'", DataError, "exog_future")
    else:
        _expect_error(lambda: m.sample(context=r, horizon=5, n_paths=3, seed=0, exog=x),
                      "sample(horizon=5) without exog_future", DataError, "exog_future")
    try:
        _registered(m)
    except _NotApplicable:
        return
    with tempfile.TemporaryDirectory() as tmp:
        m2 = load_model(m.save(Path(tmp) / "model.pt"))
    if _first_change(m2.log_prob(r, exog=x), lp, 1e-10, 1e-12) is not None:
        _fail("a model fitted with exog, saved and loaded, scores differently")


def _check_bad_input(case: _Case) -> None:
    train = case.train
    bad = train.copy()
    bad.iloc[10] = np.nan
    day = str(bad.index[10].date()) if isinstance(bad.index, pd.DatetimeIndex) else str(bad.index[10])
    _expect_error(lambda: clone(case.model).fit(bad), "fit with a NaN return", FinarError, day)
    _expect_error(lambda: clone(case.model).fit(train.to_numpy()), "fit with a NumPy array", DataError)
    _expect_error(lambda: clone(case.model).fit(train.iloc[::-1]), "fit with days in reverse order")
    repeated = pd.concat([train.iloc[:60], train.iloc[59:]])
    _expect_error(lambda: clone(case.model).fit(repeated), "fit with a repeated day")
    fresh = clone(case.model)
    needed = max(int(getattr(fresh, "min_fit_obs", 2)), int(fresh.min_context) + 1)
    _expect_error(lambda: clone(case.model).fit(train.iloc[: needed - 1]),
                  f"fit with {needed - 1} days (fewer than min_fit_obs / min_context + 1 = {needed})")
    m = case.fitted()
    _expect_error(lambda: m.log_prob(bad), "log_prob with a NaN return", FinarError, day)
    _expect_error(lambda: m.log_prob(train.iloc[::-1]), "log_prob with days in reverse order")
    _expect_error(lambda: m.sample(context=bad, horizon=2, n_paths=3, seed=0), "sample with a NaN context")


def _check_panel_joint(case: _Case) -> None:
    m, panel = case.fitted_panel(), case.panel
    kw = case.kw(panel)
    lp = m.log_prob(panel, **kw)
    if not isinstance(lp, pd.DataFrame) or lp.shape != panel.shape or not lp.index.equals(panel.index) \
            or list(lp.columns) != list(panel.columns):
        _fail(f"log_prob of a {panel.shape} DataFrame must be a DataFrame of that shape, "
              f"index and columns; got {type(lp).__name__} {getattr(lp, 'shape', '')}")
    joint = m.joint_log_prob(panel, **kw)
    want = lp.sum(axis=1, min_count=lp.shape[1])
    if not isinstance(joint, pd.Series) or not joint.index.equals(panel.index) or \
            _first_change(joint, want, 1e-10, 1e-10) is not None:
        _fail("joint_log_prob(panel) must be the row sum of log_prob(panel)")
    sc = m.sample(panel, horizon=3, n_paths=5, seed=case.seed, **case.kw(panel, 3))
    if sc.paths.shape != (5, 3, panel.shape[1]) or [str(c) for c in sc.columns] != [str(c) for c in panel]:
        _fail(f"sample of {panel.shape[1]} series gave paths {sc.paths.shape}, not "
              f"(5, 3, {panel.shape[1]}) with the panel's columns")
    s = case.fitted()
    kw = case.kw(case.r)
    if _first_change(s.joint_log_prob(case.r, **kw), s.log_prob(case.r, **kw), 1e-10, 1e-10) is not None:
        _fail("joint_log_prob of a Series must equal its log_prob")


#: every check by name, in the order ``check_forecaster`` runs them
CHECKS: dict[str, Callable[[_Case], None]] = {
    "params": _check_params, "fit": _check_fit, "log_prob_alignment": _check_log_prob_alignment,
    "causality": _check_causality, "exog_causality": _check_exog_causality, "seeds": _check_seeds,
    "save_load": _check_save_load, "predictive": _check_predictive, "covariates": _check_covariates,
    "bad_input": _check_bad_input, "panel_joint": _check_panel_joint,
}


def check_forecaster(model: Forecaster, r: pd.Series | pd.DataFrame | None = None, *,
                     exog: pd.Series | pd.DataFrame | None = None, tiny: bool = True, seed: int = 0,
                     checks: Sequence[str] | None = None) -> None:
    """Run the forecaster contract suite on ``model``; raise ``AssertionError`` naming failed checks.

    The model is cloned and fitted on ``r`` (several times: alone, with a covariate, on two
    series), so an unfitted model with small settings keeps this fast; the model passed in is
    left as it is. The checks are listed in :mod:`finar.testing`; those that
    do not apply (``save_load`` of an unregistered class, ``predictive`` without the tag) are
    skipped.

    Parameters
    ----------
    model : Forecaster
        The model to check, e.g. ``MyModel(window=20)``.
    r : Series or DataFrame, optional
        Returns to fit and score (a DataFrame's first column is the series; its columns the
        panel). Default: 800 days from 2010 (2,500 from 2004 with ``tiny=False``) of S&P 500 log
        returns in percent, whose covariate is the day's log range ``100 ln(high / low)``.
    exog : Series or DataFrame, optional
        A covariate with the rows of ``r``, row ``t`` known at the close of day ``t``. Default:
        the log range for the default data, else ``|r_t|``.
    tiny : bool, default True
        Short data and three causality cuts; ``False``: longer data and six cuts.
    seed : int, default 0
        Seeds the perturbations and the sample paths the checks draw.
    checks : sequence of str, optional
        Run only these (names of :data:`CHECKS`); ``fit`` runs implicitly when needed.

    Raises
    ------
    AssertionError
        If any check fails: the message lists each failed check and why.
    DataError
        If the arguments themselves are unusable (not a forecaster, bad ``r`` or ``exog``).
    """
    if not isinstance(model, Forecaster):
        raise DataError(f"check_forecaster needs a finar.models.Forecaster, got {type(model).__name__}")
    names = list(CHECKS) if checks is None else list(checks)
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise DataError(f"unknown checks {unknown}; checks are {list(CHECKS)}")
    if r is None:
        r, default_exog = _default_data(bool(tiny))
    else:
        frame = check_returns(r)
        default_exog = frame.iloc[:, 0].abs().rename("abs_return").to_frame()
    frame = check_returns(r)
    if len(frame) < 60:
        raise DataError(f"check_forecaster needs r with at least 60 days, got {len(frame)}")
    series = frame.iloc[:, 0].rename(frame.columns[0])
    if frame.shape[1] > 1:
        panel = frame
    else:  # a second series on the same days: the first one's values in reverse order
        panel = pd.concat([series, series.set_axis(series.index[::-1]).sort_index()
                           .rename(f"{series.name}_reversed")], axis=1)
    x = check_exog(default_exog if exog is None else exog, series.index, "check_forecaster exog")
    case = _Case(model, series, x, panel, int(seed), bool(tiny))

    failed, passed, skipped = [], [], []
    for name in names:
        try:
            CHECKS[name](case)
        except _NotApplicable as exc:
            skipped.append(f"{name} ({exc})")
        except AssertionError as exc:
            failed.append((name, str(exc), exc))
        except Exception as exc:  # a crash inside a check is a failure of that check
            failed.append((name, f"raised {type(exc).__name__}: {exc}", exc))
        else:
            passed.append(name)
    if failed:
        lines = [f"check_forecaster({model!r}): {len(failed)} of {len(names)} checks failed"]
        lines += [f"- {name}: {msg}" for name, msg, _ in failed]
        lines.append(f"passed: {', '.join(passed) or 'none'}" + (f"; not applicable: {', '.join(skipped)}"
                                                                  if skipped else ""))
        raise AssertionError("\n".join(lines)) from failed[0][2]
