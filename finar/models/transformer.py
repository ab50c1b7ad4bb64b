"""Decoder-only Transformer forecaster with sliding-window attention and an exact likelihood.

A GPT-style stack (Vaswani et al. 2017; Radford et al. 2019) of pre-norm blocks: causal
self-attention with grouped-query heads (GQA, Ainslie et al. 2023: ``n_kv_heads`` key/value heads
shared by groups of query heads), rotary position embeddings (RoPE, Su et al. 2021), RMSNorm and
a SwiGLU MLP (Shazeer 2020). The input at position ``t`` is ``x_t`` (a linear projection of the
standardised value, or the embedding of its bin); the output at ``t`` parameterises a
distribution head (:mod:`finar.models.heads`) for ``x_{t+1}``.

**Sliding-window attention.** In layer ``l`` a query attends to itself and the ``w_l - 1``
positions before it. Stacked, the windows grow like dilated convolutions: the output at ``t``
sees ``x_{t-R+1..t}`` with ``R = 1 + sum_l (w_l - 1)``. The windows split ``context - 1`` over the
layers, so ``R = C = context`` exactly and the model is

.. math::  \\log p(x) = \\sum_{t \\ge C} \\log p(x_t \\mid x_{t-C}, \\dots, x_{t-1}).

With RoPE, attention scores depend only on relative offsets, so this conditional is the same
wherever ``t`` sits in a longer sequence: training on windows of ``C + window`` values (loss on the
last ``window`` outputs), ``log_prob`` on long chunks and generation compute the same function.
With absolute positions (``"learned"``, ``"sinusoidal"``) it is the last output of the window
``x_{t-C..t-1}`` at positions ``0..C-1``; training then uses one target per window and generation
recomputes the window at each step (a shifted window would make cached keys stale).

**KV cache.** Layer ``l`` keeps a ring buffer of its last ``w_l`` keys and values
(``n_paths x n_kv_heads x w_l x head_dim``), rotated at their absolute positions; a new token
overwrites the slot of the one leaving the window and attends to all slots (no mask needed).
``method="naive"`` recomputes the last ``C`` values at every step, for verification.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finar._estimator import check_int, check_number, register
from finar.errors import DataError
from finar.models.heads import Head, continuous_head, make_head
from finar.models.neural import NeuralForecaster, window_starts
from finar.models.training import TRAIN_DEFAULTS, TrainConfig, as_config

__all__ = ["Transformer", "TransformerConfig", "TransformerNetwork", "CausalSelfAttention",
           "RotaryEmbedding"]


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture of :class:`TransformerNetwork`; bad values raise :class:`~finar.errors.DataError`."""

    context: int = 64             # C: every output sees exactly the last C inputs (all layers)
    d_model: int = 32             # width of the residual stream
    n_layers: int = 2
    n_heads: int = 4              # query heads; head_dim = d_model // n_heads
    n_kv_heads: int = 2           # key/value heads: n_heads -> MHA, 1 -> MQA, else GQA
    tokens: str = "continuous"    # "continuous": linear projection; "discrete": bin embedding
    positions: str = "rope"       # "rope", "learned" or "sinusoidal"
    norm: str = "rmsnorm"         # "rmsnorm" or "layernorm" (pre-norm)
    mlp: str = "swiglu"           # "swiglu" or "gelu"
    dropout: float = 0.1
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        for name in ("context", "d_model", "n_layers", "n_heads", "n_kv_heads"):
            object.__setattr__(self, name, check_int(name, getattr(self, name)))
        object.__setattr__(self, "dropout", check_number("dropout", self.dropout, 0.0, 1.0, high_open=True))
        object.__setattr__(self, "rope_base", check_number("rope_base", self.rope_base, 1.0, low_open=True))
        choices = {"tokens": ("continuous", "discrete"), "positions": ("rope", "learned", "sinusoidal"),
                   "norm": ("rmsnorm", "layernorm"), "mlp": ("swiglu", "gelu")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise DataError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.n_heads % self.n_kv_heads or self.d_model % self.n_heads:
            raise DataError(f"n_kv_heads ({self.n_kv_heads}) must divide n_heads ({self.n_heads}) and "
                            f"n_heads must divide d_model ({self.d_model})")
        if self.positions == "rope" and (self.d_model // self.n_heads) % 2:
            raise DataError(f"RoPE needs an even head size, got d_model // n_heads = "
                            f"{self.d_model // self.n_heads}")
        if self.context <= self.n_layers:
            raise DataError(f"context ({self.context}) must exceed n_layers ({self.n_layers}): each layer's "
                            "attention window spans (context - 1) / n_layers earlier steps")

    @property
    def windows(self) -> list[int]:
        """Attention window per layer: ``sum(w - 1) = context - 1``, so the receptive field is C."""
        q, extra = divmod(self.context - 1, self.n_layers)
        return [1 + q + (i < extra) for i in range(self.n_layers)]


def _norm(cfg: TransformerConfig) -> nn.Module:
    return nn.RMSNorm(cfg.d_model) if cfg.norm == "rmsnorm" else nn.LayerNorm(cfg.d_model)


class RotaryEmbedding(nn.Module):
    """RoPE: rotate channel pairs ``(i, i + hs/2)`` by ``pos * base**(-2i/hs)``.

    The rotation of ``q`` at ``m`` and ``k`` at ``n`` gives ``q_m . k_n`` that depends on ``m - n``
    only, which makes a sliding window translation invariant and a KV cache valid.
    """

    def __init__(self, head_dim: int, base: float) -> None:
        super().__init__()
        inv = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("inv_freq", inv, persistent=False)  # float64: exact at large positions

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:  # x (B, h, T, hs), pos (T,)
        angle = pos.to(torch.float64)[:, None] * self.inv_freq.to(device=pos.device, dtype=torch.float64)
        cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)  # (T, hs/2)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    """Sliding-window causal self-attention with grouped-query heads and an optional KV cache."""

    def __init__(self, cfg: TransformerConfig, window: int) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads = cfg.n_heads, cfg.n_kv_heads
        self.head_dim, self.window = cfg.d_model // cfg.n_heads, window
        self.q = nn.Linear(cfg.d_model, self.n_heads * self.head_dim, bias=False)
        self.kv = nn.Linear(cfg.d_model, 2 * self.n_kv_heads * self.head_dim, bias=False)
        self.proj = nn.Linear(self.n_heads * self.head_dim, cfg.d_model, bias=False)
        self.rope = RotaryEmbedding(self.head_dim, cfg.rope_base) if cfg.positions == "rope" else None
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, pos: Tensor, cache: dict[str, Tensor] | None = None) -> Tensor:
        """``x`` (B, T, d) at positions ``pos`` (T,). ``cache``: an empty dict is filled (prefill of
        at least ``window`` positions); a filled one takes one new token (T = 1) and is updated."""
        B, T, _ = x.shape
        nh, nkv, hs, C = self.n_heads, self.n_kv_heads, self.head_dim, self.window
        q = self.q(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k, v = self.kv(x).view(B, T, 2, nkv, hs).permute(2, 0, 3, 1, 4)  # each (B, nkv, T, hs)
        if self.rope is not None:
            q, k = self.rope(q, pos), self.rope(k, pos)
        mask, causal = None, T > 1
        if cache is not None and "k" in cache:  # decode: the new key replaces the one leaving the window
            slot = int(pos[-1]) % C
            cache["k"][:, :, slot], cache["v"][:, :, slot] = k[:, :, -1], v[:, :, -1]
            k, v, causal = cache["k"], cache["v"], False  # (B, nkv, C, hs): the whole window
        elif cache is not None:  # prefill: keep the last C keys, position p in slot p mod C
            if T < C:
                raise ValueError(f"prefill needs at least window={C} positions, got {T}")
            slots = pos[-C:] % C
            cache["k"], cache["v"] = torch.empty_like(k[:, :, -C:]), torch.empty_like(v[:, :, -C:])
            cache["k"][:, :, slots], cache["v"][:, :, slots] = k[:, :, -C:], v[:, :, -C:]
        if T > C:  # query i sees keys i-C+1..i
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril().triu(1 - C)
            causal = False
        if T == 1 and not causal and mask is None:
            # one query per head (decoding): the g = nh // nkv query heads of a kv head attend as g
            # queries of that head, with no copy of the cached keys and values. Two batched matrix
            # products: at this shape (B small problems of g x C) they ran 1.3-1.6x faster than
            # scaled_dot_product_attention's CPU kernel on one thread, with the same arithmetic
            s = q.reshape(B, nkv, nh // nkv, hs) @ k.transpose(-1, -2) * hs ** -0.5  # (B, nkv, g, C)
            y = s.softmax(dim=-1) @ v  # (B, nkv, g, hs)
            return self.resid_drop(self.proj(y.reshape(B, 1, nh * hs)))
        k = k.repeat_interleave(nh // nkv, dim=1)  # (B, nh, S, hs): query head h uses kv head h // g
        v = v.repeat_interleave(nh // nkv, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh * hs)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    """SwiGLU ``down(silu(gate(x)) * up(x))`` (hidden 8d/3) or GELU ``down(gelu(up(x)))`` (hidden 4d)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.swiglu = cfg.mlp == "swiglu"
        hidden = 8 * cfg.d_model // 3 if self.swiglu else 4 * cfg.d_model
        self.up = nn.Linear(cfg.d_model, (2 if self.swiglu else 1) * hidden, bias=False)
        self.down = nn.Linear(hidden, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.up(x)
        if self.swiglu:
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h)
        return self.drop(self.down(h))


class Block(nn.Module):
    """Pre-norm residual block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, cfg: TransformerConfig, window: int) -> None:
        super().__init__()
        self.norm1, self.attn = _norm(cfg), CausalSelfAttention(cfg, window)
        self.norm2, self.mlp = _norm(cfg), MLP(cfg)

    def forward(self, x: Tensor, pos: Tensor, cache: dict[str, Tensor] | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), pos, cache)
        return x + self.mlp(self.norm2(x))


def _sinusoids(n: int, d: int) -> Tensor:
    """Vaswani et al.'s fixed position encodings, (n, d): sines on even channels, cosines on odd."""
    angle = torch.arange(n, dtype=torch.float64)[:, None] * 10000.0 ** (-torch.arange(0, d, 2) / d)
    table = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)[:, :d]  # (n, d)
    return table.float()


class TransformerNetwork(nn.Module):
    """Embeddings -> blocks -> final norm -> linear map to head parameters.

    ``forward(x, series, cov)`` maps inputs ``x`` (B, T) to head parameters (B, T, n_params); the
    output at ``t`` depends on ``x_{t-C+1..t}`` (and ``cov`` at those steps) only and parameterises
    ``x_{t+1}``. ``n_series > 1`` adds a series-id embedding; ``n_covariates`` exog columns are
    projected into the input. ``caches`` (one dict per layer, see :class:`CausalSelfAttention`)
    and ``start`` serve cached decoding. With ``tokens="discrete"`` the input value is replaced by
    its bin between ``edges`` (values beyond the outer edges fall into the outer bins).
    """

    def __init__(self, cfg: TransformerConfig, n_params: int, *, n_series: int = 1, n_covariates: int = 0,
                 edges: Tensor | None = None) -> None:
        super().__init__()
        self.cfg, d = cfg, cfg.d_model
        if cfg.tokens == "discrete":
            if edges is None:
                raise ValueError("discrete tokens need the bin edges")
            self.register_buffer("edges", torch.as_tensor(edges, dtype=torch.float32))
            self.tok: nn.Module = nn.Embedding(len(edges) - 1, d)
        else:
            self.tok = nn.Linear(1, d)
        self.series = nn.Embedding(n_series, d) if n_series > 1 else None
        self.cov = nn.Linear(n_covariates, d, bias=False) if n_covariates else None
        self.pos = nn.Embedding(cfg.context, d) if cfg.positions == "learned" else None
        if cfg.positions == "sinusoidal":
            self.register_buffer("sinusoids", _sinusoids(cfg.context, d), persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, w) for w in cfg.windows)
        self.norm = _norm(cfg)
        self.out = nn.Linear(d, n_params)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections shrink with depth
            if name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def embed(self, x: Tensor, pos: Tensor, series: Tensor | None, cov: Tensor | None) -> Tensor:
        if self.cfg.tokens == "discrete":
            ids = torch.bucketize(x.contiguous(), self.edges[1:-1].to(x.dtype), right=True)  # (B, T)
            h = self.tok(ids)  # (B, T, d)
        else:
            h = self.tok(x[..., None])  # (B, T, d)
        if self.series is not None and series is not None:
            h = h + self.series(series)[:, None, :]
        if self.cov is not None and cov is not None:
            h = h + self.cov(cov)
        if self.pos is not None:
            h = h + self.pos(pos)
        elif self.cfg.positions == "sinusoidal":
            h = h + self.sinusoids[pos].to(h.dtype)
        return self.drop(h)

    def forward(self, x: Tensor, series: Tensor | None = None, cov: Tensor | None = None,
                caches: list[dict[str, Tensor]] | None = None, start: int = 0) -> Tensor:
        T = x.shape[1]
        if self.cfg.positions != "rope" and start + T > self.cfg.context:
            raise ValueError(f"absolute positions cover {self.cfg.context} steps; got {start + T}")
        pos = torch.arange(start, start + T, device=x.device)
        h = self.embed(x, pos, series, cov)
        for i, block in enumerate(self.blocks):
            h = block(h, pos, None if caches is None else caches[i])
        return self.out(self.norm(h))  # (B, T, n_params)


@register("transformer")
class Transformer(NeuralForecaster):
    """Decoder-only Transformer forecaster of returns with an exact likelihood.

    Parameters
    ----------
    config : TransformerConfig or mapping, optional
        The architecture (:class:`TransformerConfig`): ``context`` (``C``: each conditional uses
        exactly the previous ``C`` values, ``min_context``; default 64), ``d_model``, ``n_layers``,
        ``n_heads``, ``n_kv_heads`` (32, 2, 4, 2), ``tokens`` (``'continuous'``: a linear
        projection of the standardised value; ``'discrete'``: an embedding of its bin),
        ``positions`` (``'rope'``, ``'learned'``, ``'sinusoidal'``), ``norm``, ``mlp``,
        ``dropout`` (0.1). A mapping changes only the settings it names; ``get_params(deep=True)``
        lists them as ``config__context`` etc. Ten switches: one frozen config, as nanoGPT's.
    head : str, optional
        Distribution of the next return (:mod:`finar.models.heads`); default ``'t_mixture'`` for
        continuous tokens. Discrete tokens always use ``'categorical'`` over their own bins.
    quantizer : {'uniform', 'mulaw', 'meanscaled'}
        Bins on the standardised returns for discrete tokens and the categorical head: uniform
        with wide tail bins, mu-law, or Chronos' mean-scaled bins (uniform on +-15 mean |z|;
        values beyond get log density -inf, as the model gives them no mass).
    n_bins, n_components : int, default 256, 3
    min_df : float, default 2.0
        Floor of the degrees of freedom of the t heads, as for :class:`finar.models.WaveNet`.
    train : TrainConfig or mapping, optional
        Training settings, as for :class:`finar.models.WaveNet`; ``window`` predicted steps per
        training window with RoPE (absolute positions train one step per window).
    device : str, default 'cpu'
    progress : bool, default False

    Examples
    --------
    >>> import finar
    >>> from finar.models.transformer import Transformer
    >>> r = finar.returns(finar.load("sp500")["adj_close"]).loc["2013":"2014"]
    >>> m = Transformer({"context": 16, "d_model": 16, "n_heads": 2, "n_kv_heads": 1},
    ...                 train={"max_epochs": 1}).fit(r)
    >>> m.min_context, m.get_params()["config__n_heads"]
    (16, 2)
    """

    default_config = TransformerConfig()
    default_train = TRAIN_DEFAULTS

    def __init__(self, config: TransformerConfig | Mapping[str, Any] | None = default_config,
                 head: str | None = None, quantizer: str = "uniform", n_bins: int = 256,
                 n_components: int = 3, min_df: float = 2.0,
                 train: TrainConfig | Mapping[str, Any] | None = default_train,
                 device: str = "cpu", progress: bool = False) -> None:
        # config and train are held as frozen configs (a mapping changes the defaults it names), so
        # that get_params(deep=True) lists config__context, train__lr ... and a loaded model equals
        # its original
        self.config = as_config(config, self.default_config, "Transformer.config")
        self.head, self.quantizer = head, quantizer
        self.n_bins, self.n_components, self.min_df = n_bins, n_components, min_df
        self.train = as_config(train, self.default_train, "Transformer.train")
        self.device, self.progress = device, progress

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        tiny = dict(config=dict(context=16, d_model=16, n_layers=2, n_heads=2, n_kv_heads=1),
                    train=dict(window=16, max_epochs=3, batch_size=16))
        return [tiny, {**tiny, "config": {**tiny["config"], "tokens": "discrete"}, "n_bins": 64}]

    # ---- configuration ----------------------------------------------------------------------
    @property
    def architecture(self) -> TransformerConfig:
        """``config`` as a TransformerConfig (``set_params(config={...})`` may have stored a mapping)."""
        return as_config(self.config, self.default_config, "Transformer.config")

    @property
    def min_context(self) -> int:
        return self.architecture.context

    def _span(self, config: TrainConfig) -> int:
        """Targets per training window: ``window`` with RoPE, 1 with absolute positions."""
        return config.window if self.architecture.positions == "rope" else 1

    @property
    def head_name(self) -> str:
        return "categorical" if self.architecture.tokens == "discrete" else (self.head or "t_mixture")

    def _validate(self) -> None:
        cfg = self.architecture
        check_int("n_bins", self.n_bins, 2)
        check_int("n_components", self.n_components)
        check_number("min_df", self.min_df, 2.0)
        if self.quantizer not in ("uniform", "mulaw", "meanscaled"):
            raise DataError(f"quantizer must be 'uniform', 'mulaw' or 'meanscaled', got {self.quantizer!r}")
        if cfg.tokens == "discrete" and self.head not in (None, "categorical"):
            raise DataError(f"tokens='discrete' predicts its own bins with head='categorical'; got "
                            f"head={self.head!r}: drop head or use tokens='continuous'")

    def _make_head(self, z: np.ndarray | None = None) -> Head:
        name = self.head_name
        if name == "categorical":
            if z is not None:  # bins on the standardised returns of the training part
                from finar.data.quantizers import MeanScaledQuantizer, MuLawQuantizer, UniformQuantizer

                q = {"uniform": UniformQuantizer, "mulaw": MuLawQuantizer,
                     "meanscaled": MeanScaledQuantizer}[self.quantizer]
                self.edges_ = np.ravel(q(n_bins=int(self.n_bins)).fit(z.ravel()).edges_).tolist()
            return make_head("categorical", edges=torch.tensor(self.edges_, dtype=torch.float32))
        return continuous_head(name, self.n_components, self.min_df)

    def _network(self, n_series: int, n_covariates: int) -> TransformerNetwork:
        cfg = self.architecture
        edges = torch.tensor(self.edges_, dtype=torch.float32) if cfg.tokens == "discrete" else None
        return TransformerNetwork(cfg, self.head_.n_params, n_series=n_series, n_covariates=n_covariates,
                                  edges=edges)

    # ---- the model's conditionals -------------------------------------------------------------
    @torch.no_grad()
    def _conditionals(self, z: Tensor, sid: int, cov: Tensor | None, batch: int = 64) -> Tensor:
        """Head parameters for targets ``z[C:]`` (n - C, n_params), from chunks of ``C + span`` rows."""
        C, net = self.min_context, self.network_.eval()
        span = min(256 if self.architecture.positions == "rope" else 1, len(z) - C)
        starts = window_starts(0, len(z), C, span)
        out = torch.empty(len(z) - C, self.head_.n_params, device=self.device)
        for b in range(0, len(starts), batch):
            chunk = starts[b:b + batch]
            x = torch.stack([z[s:s + C + span - 1] for s in chunk])  # (W, C + span - 1) inputs
            c = None if cov is None else torch.stack([cov[s:s + C + span - 1] for s in chunk])
            raw = net(x, torch.full((len(chunk),), sid, device=self.device), c)[:, C - 1:]  # (W, span, P)
            for s, r_s in zip(chunk, raw, strict=True):
                out[s:s + span] = r_s  # targets s + C ..; overlaps of the last chunk are identical
        return out

    # ---- generation ---------------------------------------------------------------------------
    def _draw(self, z: np.ndarray, cov: np.ndarray | None, sid: int, horizon: int, n: int,
              gen: torch.Generator, kw: dict[str, Any], method: str) -> np.ndarray:
        # absolute positions shift with the window at every step: cached keys would be stale
        cached = method == "cached" and self.architecture.positions == "rope"
        return self._generate(z, cov, sid, horizon, n, gen, kw, cached)

    @torch.no_grad()
    def _generate(self, z: np.ndarray, cov: np.ndarray | None, sid: int, horizon: int, n: int,
                  gen: torch.Generator, kw: dict[str, Any], cached: bool) -> np.ndarray:
        """Paths after the window ``z`` (C,): KV-cached, or recomputing the last C values per step."""
        net, dev, C = self.network_.eval(), self.device, self.min_context
        series = torch.full((n,), sid, dtype=torch.long, device=dev)
        c = self._tensor(cov)
        x = torch.empty((n, C + horizon), dtype=torch.float32, device=dev)  # context, then the paths
        x[:, :C] = torch.tensor(z, dtype=torch.float32, device=dev)
        if cached:  # prefill once, then share the caches across paths
            caches: list[dict[str, Tensor]] = [{} for _ in net.blocks]
            raw = net(x[:1, :C], series[:1], None if c is None else c[None, :C], caches)[:, -1].expand(n, -1)
            caches = [{k: t.expand(n, -1, -1, -1).contiguous() for k, t in cache.items()} for cache in caches]
        for h in range(horizon):
            if not cached:
                window = x[:, h:h + C]
                raw = net(window, series, None if c is None else c[h:h + C][None].expand(n, -1, -1))[:, -1]
            x[:, C + h] = self._pick(raw, gen, kw, h)
            if cached and h + 1 < horizon:
                c_t = None if c is None else c[C + h][None, None, :].expand(n, -1, -1)
                raw = net(x[:, C + h:C + h + 1], series, c_t, caches, start=C + h)[:, 0]
        return x[:, C:].double().cpu().numpy()

