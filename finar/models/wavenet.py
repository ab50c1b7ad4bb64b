"""WaveNet-style forecaster: dilated causal convolutions with an exact likelihood head.

van den Oord et al. (2016): a stack of causal convolutions whose dilations double from layer to
layer (1, 2, 4, ...) and repeat in cycles, so the receptive field grows exponentially with depth;
each residual block applies the gated activation ``tanh(W_f * x) * sigmoid(W_g * x)`` with
residual and skip connections. The output at time ``t`` parameterises a distribution head
(:mod:`finar.models.heads`) for ``x_{t+1}``, so

.. math::  \\log p(x) = \\sum_t \\log p(x_t \\mid x_{t-R}, \\dots, x_{t-1})

with ``R`` the receptive field (``min_context``). Inputs are standardised per series; the
scaler's log-Jacobian enters ``log_prob``, so log scores are in the units of the data. Fitting,
scoring and files are the template of :class:`~finar.models.neural.NeuralForecaster`.

``vol_halflives`` adds slow volatility states: at each day ``t`` the network also reads
``log v_t`` for each half-life ``h``, where ``v_t = lam v_{t-1} + (1 - lam) z_t^2`` with
``lam = 2**(-1/h)`` and ``v = 1`` (the fitted variance) before the first day given. They are
deterministic functions of the days up to ``t``, so the likelihood stays exact and causal, but a
conditional then depends on all the days given, not only the last ``R`` (as a GARCH variance
recursion does): the returns' volatility clustering decays over hundreds of days, further than a
receptive field of 32. Generation continues the states on each path.

Generation uses the fast algorithm of Paine et al. (2016): every layer keeps a queue of its
recent inputs at its dilation, so a new step costs one column per layer instead of a pass over
the whole receptive field; a column is a matrix product (:meth:`CausalConv1d.step`). The naive
full-recompute generator is kept for verification.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import lfilter
from torch import Tensor, nn

from finar._estimator import check_int, check_number, register
from finar.errors import DataError
from finar.models.heads import Head, continuous_head, make_head
from finar.models.neural import NeuralForecaster
from finar.models.training import TRAIN_DEFAULTS, TrainConfig, as_config

__all__ = ["WaveNet", "WaveNetConfig", "WaveNetNetwork", "CausalConv1d", "ResidualBlock", "Queues"]


@dataclass(frozen=True)
class WaveNetConfig:
    """Architecture of :class:`WaveNetNetwork`."""

    residual_channels: int = 32  # width of the residual stream
    gate_channels: int = 32      # width of the gated activation
    skip_channels: int = 32      # width of the skip connections and the output stack
    kernel_size: int = 2
    layers_per_cycle: int = 5    # dilations 1, 2, ..., 2**(layers_per_cycle - 1) ...
    cycles: int = 1              # ... repeated `cycles` times
    embedding_dim: int = 8       # series-id embedding of a global model over several series
    dropout: float = 0.0         # on the gated activations, in training

    def __post_init__(self) -> None:
        for name in ("residual_channels", "gate_channels", "skip_channels", "kernel_size", "layers_per_cycle",
                     "cycles", "embedding_dim"):
            object.__setattr__(self, name, check_int(name, getattr(self, name)))
        object.__setattr__(self, "dropout", check_number("dropout", self.dropout, 0.0, 1.0, high_open=True))

    @property
    def dilations(self) -> list[int]:
        return [2 ** i for i in range(self.layers_per_cycle)] * self.cycles

    @property
    def receptive_field(self) -> int:
        """``R = 1 + (kernel_size - 1) * sum(dilations)``: output ``t`` sees ``x_{t-R+1..t}``."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)


def _pointwise(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """A 1x1 convolution of one column ``(B, C)`` -> ``(B, C_out)``, as the matrix product it is."""
    return F.linear(x, conv.weight[:, :, 0], conv.bias)


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution that sees only the present and the past: left padding only."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left = (kernel_size - 1) * dilation  # inputs before t that output t sees

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T) -> (B, C_out, T)
        return super().forward(F.pad(x, (self.left, 0)))

    def step(self, taps: list[Tensor]) -> Tensor:
        """One output column from its ``kernel_size`` input taps, each (B, C), oldest first ->
        (B, C_out): ``b + sum_j W_j tap_j``, one matrix product per tap on the queue's contiguous
        columns (no gather of the taps into one block)."""
        w = self.weight
        out = F.linear(taps[-1], w[:, :, -1], self.bias)
        for j in range(len(taps) - 1):
            out = torch.addmm(out, taps[j], w[:, :, j].t())  # out of place: FLOP counters see it
        return out


class Queues:
    """The generation state of a WaveNet (Paine et al. 2016): per block, a ring buffer of its most
    recent ``left + 1`` inputs, time-major ``(size, B, C)``, and the slot of the oldest one.

    Time-major buffers make both the write of a new column and the read of a tap one contiguous
    ``(B, C)`` block, so a step copies nothing it does not compute on.
    """

    def __init__(self, buffers: list[Tensor], oldest: list[int]) -> None:
        self.buffers, self.oldest = buffers, oldest

    def expand(self, n: int) -> Queues:
        """The same state for ``n`` rows (from a state of one row), each row its own copy."""
        return Queues([b.expand(-1, n, -1).contiguous() for b in self.buffers], list(self.oldest))

    def select(self, rows: Tensor) -> Queues:
        """The state of the given rows only."""
        return Queues([b[:, rows] for b in self.buffers], list(self.oldest))

    def push(self, i: int, h: Tensor, dilation: int, k: int) -> list[Tensor]:
        """Write block ``i``'s newest input ``h`` (B, C); return its ``k`` taps, oldest first."""
        buf, newest = self.buffers[i], self.oldest[i]
        size = buf.shape[0]
        buf[newest] = h  # overwrite the oldest column with the newest input
        self.oldest[i] = (newest + 1) % size
        return [buf[(newest - (k - 1 - j) * dilation) % size] for j in range(k)]


class ResidualBlock(nn.Module):
    """Dilated causal conv, gated activation with conditioning, residual and skip outputs."""

    def __init__(self, residual: int, gate: int, skip: int, kernel_size: int, dilation: int,
                 cond_channels: int, dropout: float) -> None:
        super().__init__()
        self.conv = CausalConv1d(residual, 2 * gate, kernel_size, dilation)
        self.cond = nn.Conv1d(cond_channels, 2 * gate, 1, bias=False) if cond_channels else None
        self.res = nn.Conv1d(gate, residual, 1)
        self.skip = nn.Conv1d(gate, skip, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        """``x`` (B, residual, T), ``cond`` (B, n_cond, T) -> (``x`` + residual update, skip)."""
        h = self.conv(x)  # (B, 2G, T)
        if cond is not None and self.cond is not None:
            h = h + self.cond(cond)
        f, g = h.chunk(2, dim=1)
        z = self.drop(torch.tanh(f) * torch.sigmoid(g))  # the gated activation
        return x + self.res(z), self.skip(z)

    def step(self, taps: list[Tensor], cond: Tensor | None) -> tuple[Tensor, Tensor]:
        """One column: ``taps`` (``k`` of (B, residual), oldest first), ``cond`` (B, n_cond) ->
        (residual update, skip)."""
        h = self.conv.step(taps)  # (B, 2G)
        if cond is not None and self.cond is not None:
            h = h + _pointwise(self.cond, cond)
        f, g = h.chunk(2, dim=1)
        z = self.drop(torch.tanh(f) * torch.sigmoid(g))
        return _pointwise(self.res, z), _pointwise(self.skip, z)


class WaveNetNetwork(nn.Module):
    """The network: input 1x1 conv, residual blocks, skip sum -> ReLU -> 1x1 -> ReLU -> 1x1.

    ``forward(x, series, cov)`` maps inputs ``x`` (B, T) to head parameters (B, T, n_params); the
    output at ``t`` depends on ``x_{t-R+1..t}`` and ``cov_t`` only and parameterises ``x_{t+1}``.
    ``n_series > 1`` adds a series-id embedding; ``n_covariates`` exog channels condition every
    gate (global conditioning, as WaveNet's speaker id).
    """

    def __init__(self, config: WaveNetConfig, n_params: int, *, n_series: int = 1,
                 n_covariates: int = 0) -> None:
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(n_series, c.embedding_dim) if n_series > 1 else None
        cond = (c.embedding_dim if self.embed is not None else 0) + n_covariates
        self.input = nn.Conv1d(1, c.residual_channels, 1)
        self.blocks = nn.ModuleList(
            ResidualBlock(c.residual_channels, c.gate_channels, c.skip_channels, c.kernel_size, d, cond,
                          c.dropout) for d in c.dilations)
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(c.skip_channels, c.skip_channels, 1), nn.ReLU(),
                                 nn.Conv1d(c.skip_channels, n_params, 1))
        self.receptive_field = c.receptive_field

    def _cond(self, series: Tensor | None, cov: Tensor | None, length: int) -> Tensor | None:
        """Conditioning channels (B, n_cond, T): the series embedding and the covariates."""
        parts = []
        if self.embed is not None and series is not None:
            parts.append(self.embed(series)[:, :, None].expand(-1, -1, length))  # (B, E, T)
        if cov is not None:
            parts.append(cov.transpose(1, 2))  # (B, n_cov, T)
        return torch.cat(parts, dim=1) if parts else None

    def forward(self, x: Tensor, series: Tensor | None = None, cov: Tensor | None = None,
                keep_inputs: list[Tensor] | None = None) -> Tensor:
        h = self.input(x[:, None, :])  # (B, residual, T)
        cond = self._cond(series, cov, x.shape[1])
        skip = 0.0
        for block in self.blocks:
            if keep_inputs is not None:
                keep_inputs.append(h)
            h, s = block(h, cond)
            skip = skip + s
        return self.out(skip).transpose(1, 2)  # (B, T, n_params)

    # ---- fast generation (Paine et al. 2016) ------------------------------------------------
    @torch.no_grad()
    def start_cache(self, x: Tensor, series: Tensor | None, cov: Tensor | None) -> tuple[Tensor, Queues]:
        """Run the context once; return the last output (B, n_params) and the :class:`Queues`.

        Queue ``i`` holds block ``i``'s ``left_i + 1`` most recent inputs, oldest in slot 0.
        """
        inputs: list[Tensor] = []
        raw = self.forward(x, series, cov, keep_inputs=inputs)
        buffers = []
        for block, h in zip(self.blocks, inputs, strict=True):
            size = block.conv.left + 1
            h = F.pad(h, (max(0, size - h.shape[2]), 0))[:, :, -size:]  # (B, C, size)
            buffers.append(h.permute(2, 0, 1).contiguous())  # (size, B, C)
        return raw[:, -1], Queues(buffers, [0] * len(buffers))

    @torch.no_grad()
    def step(self, queues: Queues, x_t: Tensor, series: Tensor | None, cov_t: Tensor | None) -> Tensor:
        """Feed one new input ``x_t`` (B,); return the head parameters for ``x_{t+1}`` (B, n_params)."""
        h = _pointwise(self.input, x_t[:, None])  # (B, residual)
        parts = [] if self.embed is None or series is None else [self.embed(series)]
        if cov_t is not None:
            parts.append(cov_t)
        cond = torch.cat(parts, dim=1) if parts else None  # (B, n_cond)
        skip = 0.0
        for i, block in enumerate(self.blocks):
            taps = queues.push(i, h, block.conv.dilation[0], block.conv.kernel_size[0])
            r, s = block.step(taps, cond)
            h = h + r
            skip = skip + s
        hidden, last = self.out[1], self.out[3]  # ReLU -> 1x1 -> ReLU -> 1x1, one column
        return _pointwise(last, F.relu(_pointwise(hidden, F.relu(skip))))


@register("wavenet")
class WaveNet(NeuralForecaster):
    """WaveNet forecaster of daily returns with an exact likelihood.

    Parameters
    ----------
    residual_channels, gate_channels, skip_channels : int, default 32
        Widths of the residual stream, the gated activation and the skip connections.
    kernel_size : int, default 2
    layers_per_cycle : int, default 5
        Dilations ``1, 2, ..., 2**(layers_per_cycle-1)``, repeated ``cycles`` times. The
        defaults (receptive field 32 days) scored best on S&P 500 validation runs of PROTOCOLS
        P1; wider fields (128-511 days) overfit the ~4,000 daily returns.
    cycles : int, default 1
    head : {'t_mixture', 'student_t', 'gaussian', 'categorical', 'logistic_mixture'}
        Distribution of the next return (see :mod:`finar.models.heads`).
    n_components : int, default 3
        Mixture components of mixture heads.
    n_bins : int, default 256
        Bins of the categorical head (uniform bins on the standardised returns).
    min_df : float, default 2.0
        Floor of the degrees of freedom of the t heads (``'t_mixture'``, ``'student_t'``): a
        model choice bounding how heavy each conditional tail may be (see
        :class:`~finar.models.heads.StudentTMixtureHead`); above 4 every conditional has a finite
        fourth moment. Ignored by the other heads.
    embedding_dim : int, default 8
        Series-id embedding when fitted on several series (global conditioning).
    dropout : float, default 0.0
    vol_halflives : tuple of float, default ()
        Half-lives in days of slow volatility states the network reads beside the returns (module
        docstring), e.g. ``(5, 20, 60, 250)``; ``()``: none. Each series has its own states.
    train : TrainConfig or mapping, optional
        Training settings (:class:`~finar.models.training.TrainConfig`: ``lr``, ``batch_size``,
        ``max_epochs``, ``patience``, ``window`` (predicted steps per training window),
        ``val_fraction``, ``seed`` of the initial weights, shuffling and dropout, ...); a mapping
        changes only the settings it names. ``get_params(deep=True)`` lists them as ``train__lr``.
    device : str, default 'cpu'
    progress : bool, default False
        A progress bar over the training epochs.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500")["adj_close"]).loc["2012":"2014"]
    >>> m = finar.models.WaveNet(layers_per_cycle=4, residual_channels=8, gate_channels=8,
    ...                          skip_channels=8, train={"max_epochs": 2}).fit(r)
    >>> m.min_context, m.get_params()["train__max_epochs"]
    (16, 2)
    """

    default_train = TRAIN_DEFAULTS
    _added_params: ClassVar[dict[str, Any]] = {"vol_halflives": ()}  # files from before it load as before

    def __init__(self, residual_channels: int = 32, gate_channels: int = 32, skip_channels: int = 32,
                 kernel_size: int = 2, layers_per_cycle: int = 5, cycles: int = 1, head: str = "t_mixture",
                 n_components: int = 3, n_bins: int = 256, min_df: float = 2.0, embedding_dim: int = 8,
                 dropout: float = 0.0, vol_halflives: tuple[float, ...] = (),
                 train: TrainConfig | Mapping[str, Any] | None = default_train, device: str = "cpu",
                 progress: bool = False) -> None:
        self.residual_channels = residual_channels
        self.gate_channels = gate_channels
        self.skip_channels = skip_channels
        self.kernel_size = kernel_size
        self.layers_per_cycle = layers_per_cycle
        self.cycles = cycles
        self.head = head
        self.n_components = n_components
        self.n_bins = n_bins
        self.min_df = min_df
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.vol_halflives = vol_halflives
        # a TrainConfig always (a mapping from the user or a model file is applied to the defaults),
        # so that get_params(deep=True) lists train__lr etc. and a loaded model equals its original
        self.train = as_config(train, self.default_train, "WaveNet.train")
        self.device = device
        self.progress = progress

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        tiny = dict(residual_channels=8, gate_channels=8, skip_channels=8, layers_per_cycle=4, cycles=1,
                    train={"window": 64, "max_epochs": 3, "batch_size": 16})
        return [tiny, {**tiny, "head": "categorical", "n_bins": 64}, {**tiny, "vol_halflives": (5.0, 50.0)}]

    # ---- configuration ----------------------------------------------------------------------
    @property
    def config(self) -> WaveNetConfig:
        """The architecture settings as the network's frozen config (checked there)."""
        return WaveNetConfig(self.residual_channels, self.gate_channels, self.skip_channels, self.kernel_size,
                             self.layers_per_cycle, self.cycles, self.embedding_dim, self.dropout)

    @property
    def min_context(self) -> int:
        return self.config.receptive_field

    def _validate(self) -> None:
        _ = self.config
        check_int("n_components", self.n_components)
        check_int("n_bins", self.n_bins, 2)
        check_number("min_df", self.min_df, 2.0)
        _ = self._decays

    # ---- slow volatility states -------------------------------------------------------------
    @property
    def _decays(self) -> np.ndarray:
        """``lam = 2**(-1/h)`` per half-life of ``vol_halflives`` (checked)."""
        hl = self.vol_halflives
        if isinstance(hl, str) or not isinstance(hl, tuple | list):
            raise DataError(f"vol_halflives must be a tuple of half-lives in days, got {hl!r}")
        return np.array([0.5 ** (1.0 / check_number("vol_halflives", h, 0.0, low_open=True)) for h in hl])

    @property
    def _n_states(self) -> int:
        return len(self._decays)

    def _architecture(self) -> dict[str, Any]:
        # a model file stores the half-lives as a list: the same architecture as the tuple
        return {**super()._architecture(), "vol_halflives": tuple(float(h) for h in self.vol_halflives)}

    def _states(self, z: np.ndarray) -> np.ndarray | None:
        lam = self._decays
        if not len(lam):
            return None
        out = np.empty((len(z), len(lam), z.shape[1]))
        for k, a in enumerate(lam):  # v_t = a v_{t-1} + (1 - a) z_t^2 from v_{-1} = 1, per column
            out[:, k] = lfilter([1 - a], [1, -a], z ** 2, axis=0, zi=np.full((1, z.shape[1]), a))[0]
        return np.log(out)

    @property
    def memory(self) -> int | None:
        """The receptive field, or None with ``vol_halflives`` (the states remember every day)."""
        return None if self._n_states else self.min_context

    def _make_head(self, z: np.ndarray | None = None) -> Head:
        if self.head == "categorical":
            if z is not None:  # fitted bins: uniform on the standardised returns, wide tail bins
                from finar.data.quantizers import UniformQuantizer

                self.edges_ = UniformQuantizer(n_bins=int(self.n_bins)).fit(z.ravel()).edges_.tolist()
            return make_head("categorical", edges=torch.tensor(self.edges_, dtype=torch.float32))
        return continuous_head(self.head, self.n_components, self.min_df)

    def _network(self, n_series: int, n_covariates: int) -> WaveNetNetwork:
        return WaveNetNetwork(self.config, self.head_.n_params, n_series=n_series, n_covariates=n_covariates)

    # ---- the model's conditionals -------------------------------------------------------------
    def _conditionals(self, z: Tensor, sid: int, cov: Tensor | None) -> Tensor:
        """Head parameters for targets ``z[R:]`` (n - R, n_params): one pass of the causal network."""
        raw = self.network_.eval()(z[None, :-1], torch.tensor([sid], device=self.device),
                                   None if cov is None else cov[None, :-1])[0]
        return raw[self.min_context - 1:]

    # ---- generation ---------------------------------------------------------------------------
    def _draw(self, z: np.ndarray, cov: np.ndarray | None, sid: int, horizon: int, n: int,
              gen: torch.Generator, kw: dict[str, Any], method: str) -> np.ndarray:
        draw = self._generate if method == "cached" else self._generate_naive
        return draw(z, cov, sid, horizon, n, gen, kw)

    def _path_states(self, cov: np.ndarray | None, R: int, n: int) -> _PathStates | None:
        """The states of the context's last day (the last columns of its covariate row), per path."""
        if not self._n_states or cov is None:
            return None
        return _PathStates(self._decays, cov[R - 1, cov.shape[1] - self._n_states:], n, self.device)

    @torch.no_grad()
    def _generate(self, z: np.ndarray, cov: np.ndarray | None, sid: int, horizon: int, n: int,
                  gen: torch.Generator, kw: dict[str, Any]) -> np.ndarray:
        net, dev, R = self.network_.eval(), self.device, len(z)
        series = torch.full((n,), sid, dtype=torch.long, device=dev)
        c = self._tensor(cov)
        states = self._path_states(cov, R, n)
        x = torch.tensor(z, dtype=torch.float32, device=dev)[None, :]
        raw, queues = net.start_cache(x, series[:1], None if c is None else c[None, :R])
        queues = queues.expand(n)
        raw = raw.expand(n, -1)
        out = torch.empty((n, horizon), device=dev)
        for h in range(horizon):
            out[:, h] = self._pick(raw, gen, kw, h)
            if h + 1 < horizon:
                c_t = None if c is None else c[R + h][None, :].expand(n, -1)
                if states is not None:  # the exog columns, then this path's states after out[:, h]
                    c_t = torch.cat([c_t[:, :c.shape[1] - states.k], states.update(out[:, h])], dim=1)
                raw = net.step(queues, out[:, h], series, c_t)
        return out.double().cpu().numpy()

    @torch.no_grad()
    def _generate_naive(self, z: np.ndarray, cov: np.ndarray | None, sid: int, horizon: int, n: int,
                        gen: torch.Generator, kw: dict[str, Any]) -> np.ndarray:
        """Full recompute over the receptive field at every step: slow, kept for verification."""
        net, dev, R = self.network_.eval(), self.device, self.min_context
        series = torch.full((n,), sid, dtype=torch.long, device=dev)
        c = self._tensor(cov)
        states = self._path_states(cov, R, n)
        if c is not None:  # each path's own covariate rows: the states differ from path to path
            c = c[None].expand(n, -1, -1).clone()
        x = torch.tensor(z, dtype=torch.float32, device=dev)[None, :].expand(n, -1)
        for h in range(horizon):
            raw = net(x[:, -R:], series, None if c is None else c[:, h:h + R])[:, -1]
            x = torch.cat([x, self._pick(raw, gen, kw, h)[:, None]], dim=1)
            if states is not None and h + 1 < horizon:
                c[:, R + h, c.shape[2] - states.k:] = states.update(x[:, -1])
        return x[:, -horizon:].double().cpu().numpy()


class _PathStates:
    """The volatility states of ``n`` paths: ``v <- lam v + (1 - lam) z^2`` per new draw ``z``,
    in float64 as :meth:`WaveNet._states` computes them; the network reads ``log v`` (float32)."""

    def __init__(self, decays: np.ndarray, last_log: np.ndarray, n: int, device: str) -> None:
        self.k = len(decays)
        self.lam = torch.tensor(decays, dtype=torch.float64, device=device)
        self.v = torch.tensor(np.exp(last_log), dtype=torch.float64, device=device)[None].repeat(n, 1)

    def update(self, z: Tensor) -> Tensor:
        self.v = self.lam * self.v + (1 - self.lam) * z.double()[:, None] ** 2
        return self.v.log().float()
