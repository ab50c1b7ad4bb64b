"""What the hostile-input suite shares: small data, tiny models fitted once, the exact-error check.

Every case of the suite either asserts the exact :mod:`finar.errors` class and a message fragment
that names the problem (:func:`raises_exactly`), or asserts a correct result. Models are tiny
(a few channels, one epoch) and fitted once per session, so the whole suite runs in about a
minute on two cores.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import finar
from tests.conftest import raises_exactly

__all__ = ["FACTORIES", "NEURAL", "business_days", "raises_exactly", "simulate_returns"]

# ---- tiny configurations (as in tests/models): fitted in well under a second each -------------------
WAVENET = dict(residual_channels=8, gate_channels=8, skip_channels=8, layers_per_cycle=3, cycles=1,
               train={"window": 32, "max_epochs": 1, "batch_size": 16})
TRANSFORMER = dict(config=dict(context=16, d_model=16, n_layers=1, n_heads=2, n_kv_heads=1),
                   train=dict(window=16, max_epochs=1, batch_size=16))
PIXELCNN = dict(channels=8, n_layers=2, n_bins=64, train=dict(window=32, max_epochs=1, batch_size=8))
TICKMODEL = dict(channels=8, layers=2, hidden=8, n_components=2,
                 train=dict(window=64, max_epochs=1, batch_size=8))


def _ensemble() -> finar.models.Ensemble:
    return finar.models.Ensemble([finar.models.GARCH(dist="t"), finar.models.AR(order=1)])


#: every univariate forecaster of finar, as a factory of a fresh tiny instance
FACTORIES: dict[str, Callable[[], finar.models.Forecaster]] = {
    "ar": lambda: finar.models.AR(order=2),
    "garch": lambda: finar.models.GARCH(dist="t"),
    "garchx": lambda: finar.models.GARCHX(),
    "wavenet": lambda: finar.models.WaveNet(**WAVENET),
    "transformer": lambda: finar.models.Transformer(**TRANSFORMER),
    "pixelcnn": lambda: finar.models.PixelCNN(**PIXELCNN),
    "ensemble": _ensemble,
}
NEURAL = ("wavenet", "transformer", "pixelcnn")


def business_days(n: int, start: str = "2010-01-01") -> pd.DatetimeIndex:
    return pd.bdate_range(start, periods=n, name="time")


def simulate_returns(n: int = 400, seed: int = 0, start: str = "2010-01-01", name: str = "r") -> pd.Series:
    """GARCH(1,1)-t percent returns on business days: what the models are made for."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(6, size=n) / np.sqrt(1.5)
    out, s2 = np.empty(n), 1.0
    for t in range(n):
        out[t] = 0.03 + np.sqrt(s2) * z[t]
        s2 = 0.02 + 0.08 * (out[t] - 0.03) ** 2 + 0.9 * s2
    return pd.Series(out, index=business_days(n, start), name=name)


@pytest.fixture(scope="session")
def r() -> pd.Series:
    return simulate_returns()


@pytest.fixture(scope="session")
def fitted(r: pd.Series) -> Callable[[str], finar.models.Forecaster]:
    """``fitted(name)``: the tiny model ``name`` fitted to ``r``, once per session (never modify it)."""
    cache: dict[str, finar.models.Forecaster] = {}

    def get(name: str) -> finar.models.Forecaster:
        if name not in cache:
            cache[name] = FACTORIES[name]().fit(r)
        return cache[name]

    return get


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread():
    """Small tensors: one thread is fastest, and two spin-waiting threads on a busy machine are slow."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trades() -> pd.DataFrame:
    return finar.ticks.simulate(n_events=3_000, seed=0)


@pytest.fixture(scope="session")
def tick_model(trades: pd.DataFrame) -> finar.ticks.TickModel:
    return finar.ticks.TickModel(**TICKMODEL).fit(trades)
