"""Transformer: exact sliding-window causality, KV cache == recompute, GQA, RoPE, likelihood units."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import finar
from finar.models.transformer import (  # importing registers the model for the contract suite
    CausalSelfAttention,
    RotaryEmbedding,
    Transformer,
    TransformerConfig,
    TransformerNetwork,
)
from tests.models.test_contract import simulate_garch_t

ARCH = dict(context=16, d_model=16, n_layers=2, n_heads=2, n_kv_heads=1)
TINY = dict(config=ARCH, train=dict(window=16, max_epochs=3, batch_size=16))


def tiny(config: dict | None = None, train: dict | None = None, **kw) -> Transformer:
    """A tiny Transformer, with some architecture (config) and training settings changed."""
    return Transformer(config={**ARCH, **(config or {})}, train={**TINY["train"], **(train or {})}, **kw)


@pytest.fixture(scope="module")
def r() -> pd.Series:
    return simulate_garch_t(700, seed=5)


@pytest.fixture(scope="module")
def model(r) -> Transformer:
    return tiny().fit(r)


def _network(context: int = 10, n_layers: int = 3, **kw) -> TransformerNetwork:
    torch.manual_seed(0)
    cfg = TransformerConfig(context=context, d_model=16, n_layers=n_layers, n_heads=4, n_kv_heads=2, **kw)
    return TransformerNetwork(cfg, 5).double().eval()


@pytest.mark.parametrize("kw", [{}, {"norm": "layernorm", "mlp": "gelu"}])
def test_output_depends_exactly_on_the_last_context_inputs(kw):
    """Gradient test: output t (which predicts x_{t+1}) sees x_{t-C+1..t} and nothing else."""
    net = _network(**kw)
    C = net.cfg.context
    assert sum(w - 1 for w in net.cfg.windows) == C - 1
    T = 4 * C
    for t in (C - 1, 2 * C + 3, T - 1):
        x = torch.randn(1, T, dtype=torch.float64, generator=torch.Generator().manual_seed(t),
                        requires_grad=True)
        net(x)[0, t].sum().backward()
        g = x.grad[0].abs()
        assert (g[t + 1:] == 0).all(), "looks ahead"
        assert (g[: t - C + 1] == 0).all(), "sees beyond its context"
        assert (g[t - C + 1: t + 1] > 0).all(), "misses part of its context"


def test_long_sequence_output_equals_the_window_alone():
    """The sliding window makes output t of a long pass the output of x_{t-C+1..t} alone."""
    net = _network()
    C, x = net.cfg.context, torch.randn(3, 50, dtype=torch.float64)
    full = net(x)
    for t in (C - 1, 20, 49):
        torch.testing.assert_close(full[:, t], net(x[:, t - C + 1: t + 1])[:, -1], rtol=1e-10, atol=1e-10)


def test_kv_cache_decoding_equals_recompute_beyond_the_window():
    """Ring-buffer caches over 4x the context equal recomputing the last C inputs at every step."""
    net = _network()
    C, x = net.cfg.context, torch.randn(2, 5 * net.cfg.context, dtype=torch.float64)
    caches = [{} for _ in net.blocks]
    raw = net(x[:, :C], None, None, caches)[:, -1]
    for t in range(C, x.shape[1]):
        torch.testing.assert_close(raw, net(x[:, t - C:t])[:, -1], rtol=1e-10, atol=1e-10)
        raw = net(x[:, t:t + 1], None, None, caches, start=t)[:, 0]


def _attention_by_hand(att: CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d) + causal mask) V per query head; head h reads kv head h // group."""
    T, nh, nkv, hs = x.shape[1], att.n_heads, att.n_kv_heads, att.head_dim
    q = x @ att.q.weight.T
    k, v = (x @ att.kv.weight.T).split(nkv * hs, dim=-1)
    outs = []
    for h in range(nh):
        g = h // (nh // nkv)
        qh, kh, vh = q[..., h * hs:(h + 1) * hs], k[..., g * hs:(g + 1) * hs], v[..., g * hs:(g + 1) * hs]
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(hs)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), -math.inf)
        outs.append(scores.softmax(-1) @ vh)
    return torch.cat(outs, dim=-1) @ att.proj.weight.T


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_grouped_query_attention_equals_attention_by_hand(n_kv_heads):
    torch.manual_seed(1)
    cfg = TransformerConfig(context=12, d_model=16, n_heads=4, n_kv_heads=n_kv_heads, positions="learned")
    att = CausalSelfAttention(cfg, window=12).double().eval()
    x = torch.randn(2, 12, 16, dtype=torch.float64)
    torch.testing.assert_close(att(x, torch.arange(12)), _attention_by_hand(att, x))


def test_rope_scores_depend_only_on_relative_offsets():
    rope = RotaryEmbedding(8, 10000.0)
    q, k = torch.randn(1, 1, 1, 8, dtype=torch.float64), torch.randn(1, 1, 1, 8, dtype=torch.float64)

    def score(m: int, n: int) -> torch.Tensor:
        return (rope(q, torch.tensor([m])) * rope(k, torch.tensor([n]))).sum()

    for m, n, s in [(5, 2, 7), (3, 3, 100), (0, 9, 1000)]:
        torch.testing.assert_close(score(m, n), score(m + s, n + s), rtol=1e-9, atol=1e-9)
    assert not torch.isclose(score(5, 2), score(5, 3))


@pytest.mark.parametrize(("config", "kw"), [({}, {}), ({"tokens": "discrete"}, {"n_bins": 64})])
def test_cached_generation_equals_naive_recompute(r, config, kw):
    m = tiny(config, {"max_epochs": 1}, **kw).fit(r)
    fast = m.sample(r, horizon=40, n_paths=32, seed=3)  # 40 steps > context: the window slides
    slow = m.sample(r, horizon=40, n_paths=32, seed=3, method="naive")
    np.testing.assert_allclose(fast.paths, slow.paths, atol=1e-5, rtol=1e-5)


def test_cached_generation_with_several_series_and_exog(r):
    panel = pd.concat([r.rename("a"), (1.5 * simulate_garch_t(len(r), seed=8)).rename("b").set_axis(r.index)],
                      axis=1)
    exog = pd.DataFrame({"v": np.random.default_rng(0).normal(size=len(r))}, index=r.index)
    m = tiny(train={"max_epochs": 1}).fit(panel, exog=exog)
    future = pd.DataFrame({"v": np.linspace(-1, 1, 19)})
    fast = m.sample(panel, horizon=20, n_paths=32, seed=1, exog=exog, exog_future=future)
    slow = m.sample(panel, horizon=20, n_paths=32, seed=1, exog=exog, exog_future=future, method="naive")
    np.testing.assert_allclose(fast.paths, slow.paths, atol=1e-5, rtol=1e-5)
    assert fast.paths[:, :, 1].std() > 1.2 * fast.paths[:, :, 0].std()
    with pytest.raises(finar.errors.DataError, match="fitted with exog"):
        m.log_prob(panel)


def test_neutral_sampling_settings_equal_plain_sampling(model, r):
    plain = model.sample(r, horizon=5, n_paths=50, seed=2)
    neutral = model.sample(r, horizon=5, n_paths=50, seed=2, temperature=1.0, top_k=None, top_p=1.0)
    np.testing.assert_array_equal(plain.paths, neutral.paths)


def test_log_prob_is_in_the_units_of_the_data(r, model):
    """Doubling the data standardises to the same inputs: log densities drop by exactly log 2."""
    b = tiny().fit(2 * r)
    np.testing.assert_allclose(b.log_prob(2 * r), model.log_prob(r) - np.log(2), rtol=1e-5, atol=1e-5)


def test_log_prob_equals_the_network_on_each_window(model, r):
    """Chunked log_prob is exactly the head evaluated on the last output of each C-window."""
    C, z = model.min_context, torch.tensor(model.scaler_.transform(r.to_numpy()), dtype=torch.float32)
    lp = model.log_prob(r)
    for t in (C, 300, len(r) - 1):
        raw = model.network_(z[None, t - C:t])[0, -1]
        expected = model.head_.log_prob(raw, z[t]).item() - math.log(model.scaler_.scale_[0])
        assert lp.iloc[t] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_absolute_positions_fit_and_stay_causal(r, positions):
    m = tiny({"positions": positions}, {"max_epochs": 1}).fit(r.iloc[:300])
    lp = m.log_prob(r.iloc[:300])
    assert lp.iloc[:16].isna().all() and np.isfinite(lp.iloc[16:]).all()
    bumped = r.iloc[:300].copy()
    bumped.iloc[101:] += 3.0
    np.testing.assert_array_equal(m.log_prob(bumped).iloc[:101], lp.iloc[:101])
    cached, naive = m.sample(r, 20, 8, seed=0), m.sample(r, 20, 8, seed=0, method="naive")
    np.testing.assert_array_equal(cached.paths, naive.paths)


@pytest.mark.parametrize(("config", "kw", "match"), [
    ({"n_kv_heads": 3, "n_heads": 4}, {}, "divide"), ({"positions": "alibi"}, {}, "positions"),
    ({"tokens": "discrete"}, {"head": "t_mixture"}, "categorical"),
    ({"context": 2, "n_layers": 2}, {}, "exceed"), ({"heads": 2}, {}, "no setting 'heads'"),
    ({}, {"device": "bogus"}, "device 'bogus'")])
def test_bad_configuration_raises(r, config, kw, match):
    with pytest.raises(finar.errors.DataError, match=match):
        tiny(config, **kw).fit(r)


def test_architecture_settings_nest_under_config(r):
    m = Transformer(config={"context": 16, "d_model": 16, "n_heads": 2, "n_kv_heads": 1})
    assert isinstance(m.config, TransformerConfig) and m.config.n_layers == 2  # the defaults
    params = m.get_params(deep=True)
    assert params["config__context"] == 16 and params["train__window"] == 32
    m.set_params(config__context=12, train__max_epochs=1)
    assert m.min_context == 12 and m.config.d_model == 16
    assert finar.models.clone(m).get_params(deep=True) == m.get_params(deep=True)
    assert len(m.fit(r.iloc[:300]).training_.history) == 1


def test_registry_and_training(model):
    assert finar.models.registry()["transformer"] is Transformer
    hist = model.training_.history
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
