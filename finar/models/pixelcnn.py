"""PixelCNN over a panel of returns: days are rows, assets are columns, raster order is time then asset.

A panel ``x`` of ``T`` days and ``J`` assets (or ``J`` intraday bins) is an image with one
channel. Masked convolutions (van den Oord et al. 2016a) factorise its density in raster order,

.. math::  \\log p(x) = \\sum_t \\sum_j \\log p(x_{t,j} \\mid x_{<t,\\cdot},\\ x_{t,<j},\\ c_t)

so each asset conditions on every asset of the previous days in the receptive field and on the
assets *to its left on the same day*: put the market index first and each stock's same-day
density is conditional on the market (the column order is the user's choice and part of the
model). ``c_t`` is an optional market-regime label of day ``t`` (class-conditional PixelCNN).

Two stacks are available:

- ``arch="gated"`` (default): Gated PixelCNN (van den Oord et al. 2016b). A *vertical* stack
  sees the rows above (its output is shifted down one row before it reaches the current row)
  and a *horizontal* stack sees the cells to the left on the current row; the first horizontal
  convolution has mask type A (centre excluded), later ones type B (centre included). Layers are
  gated, ``tanh(W_f * x + V_f c) * sigmoid(W_g * x + V_g c)``, with a residual horizontal
  stream. There is no blind spot: every earlier cell within the receptive field is seen.
- ``arch="original"``: the first PixelCNN, one stack of masked ``(kernel_height, kernel_width)``
  convolutions (mask A, then B) with ReLU and residual connections. With narrow kernels it has
  the *blind spot* (cells above and to the right are never seen); kept to show it.

Convolutions are dilated in time only (layer ``l`` has dilation ``dilation_growth ** l`` along
the rows), so the context grows exponentially with depth as in WaveNet. ``kernel_width=None``
makes kernels span the whole panel, so every asset sees every other asset of the rows above
(asset columns have no natural neighbourhood); each column also gets a learned bias per layer.

Returns are standardised per asset (:class:`~finar.data.scalers.StandardScaler`) and the head
models the standardised value; by default PixelCNN++'s discretised logistic mixture
(:class:`~finar.models.heads.DiscretizedLogisticMixtureHead`) over ``n_bins`` bins on
``[-bound, bound]``, read as uniform within each bin. ``log_prob`` adds the bin width (inside the
head) and the scaler's log-Jacobian, so it is a density in the units of the returns, comparable
with GARCH's. Continuous heads (``'t_mixture'``, ``'student_t'``, ``'gaussian'``) are options.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finar._progress import progress_bar
from finar.data.scalers import StandardScaler, scaler_from_state_dict
from finar.data.transforms import check_length
from finar.errors import DataError, format_rows
from finar.models.base import Forecaster, cdf_values, check_returns, register
from finar.models.heads import Head, make_head
from finar.models.scenarios import Scenarios, future_index
from finar.models.training import TrainConfig, TrainResult, seeded, train

__all__ = ["PixelCNN", "GatedPixelCNN", "OriginalPixelCNN", "MaskedConv2d", "volatility_regime"]

_HEADS = ("logistic_mixture", "t_mixture", "student_t", "gaussian")


class MaskedConv2d(nn.Conv2d):
    """A convolution over the current row and the ``kernel_height - 1`` rows above it.

    The kernel spans rows ``i - (kh - 1) d .. i`` (``d`` the dilation along rows) and columns
    ``j - centre .. j + kw - 1 - centre``. Rows above are fully visible; on the current row
    (the kernel's last row) the cells right of the centre are masked, and the centre itself is
    masked for ``mask_type='A'`` and kept for ``'B'``. ``mask_type=None`` masks nothing (the
    vertical stack of the gated PixelCNN, whose output is shifted down a row before use).
    Padding is at the top and the sides only, so the output keeps the input's shape.

    Examples
    --------
    >>> conv = MaskedConv2d(1, 1, (2, 3), mask_type="A")
    >>> conv.mask.tolist()
    [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
    >>> conv(torch.zeros(1, 1, 4, 5)).shape
    torch.Size([1, 1, 4, 5])
    """

    mask: Tensor

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 mask_type: str | None = "B", centre: int | None = None, dilation: int = 1) -> None:
        kh, kw = kernel_size
        super().__init__(in_channels, out_channels, (kh, kw), dilation=(dilation, 1))
        if mask_type not in ("A", "B", None):
            raise DataError(f"mask_type must be 'A', 'B' or None, got {mask_type!r}")
        centre = kw // 2 if centre is None else centre
        mask = torch.ones(kh, kw)
        if mask_type is not None:
            mask[kh - 1, centre + (mask_type == "B"):] = 0.0
        self.register_buffer("mask", mask)
        self.mask_type = mask_type
        self.padding_lrtb = (centre, kw - 1 - centre, (kh - 1) * dilation, 0)  # F.pad order

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T, J) -> (B, C_out, T, J)
        return F.conv2d(F.pad(x, self.padding_lrtb), self.weight * self.mask, self.bias,
                        dilation=self.dilation)

    @property
    def rows(self) -> int:
        """Input rows that one output row sees: ``(kernel_height - 1) * dilation + 1``."""
        return self.padding_lrtb[2] + 1

    def last_row(self, x: Tensor) -> Tensor:
        """The output row of exactly :attr:`rows` input rows: ``(B, C, rows, J) -> (B, C_out, 1, J)``."""
        return F.conv2d(F.pad(x, self.padding_lrtb[:2]), self.weight * self.mask, self.bias,
                        dilation=self.dilation)


def _gate(x: Tensor) -> Tensor:
    """``tanh(f) * sigmoid(g)`` over the two halves of the channels."""
    f, g = x.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


def _shift_down(x: Tensor) -> Tensor:
    """Row ``i`` receives row ``i - 1`` (zeros in row 0): the vertical stack's view of the past."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class _Biases(nn.Module):
    """Per-column and per-regime biases ``V c`` added to a layer's pre-activations."""

    def __init__(self, channels: int, n_columns: int, n_regimes: int) -> None:
        super().__init__()
        self.column = nn.Parameter(torch.zeros(channels, 1, n_columns))
        self.regime = nn.Embedding(n_regimes, channels) if n_regimes else None
        if self.regime is not None:
            nn.init.zeros_(self.regime.weight)

    def forward(self, regime: Tensor | None, width: int | None = None) -> Tensor:
        """``(B or 1, C, T or 1, width)`` for regime ids ``(B, T)``: the first ``width`` columns' biases."""
        bias = self.column[None, ..., :width]
        if self.regime is not None and regime is not None:
            bias = bias + self.regime(regime).permute(0, 2, 1)[..., None]
        return bias


class _Output(nn.Module):
    """ReLU -> 1x1 (+ regime bias) -> ReLU -> 1x1: features of a cell to its head parameters."""

    def __init__(self, channels: int, n_params: int, n_columns: int, n_regimes: int) -> None:
        super().__init__()
        self.hidden = nn.Conv2d(channels, channels, 1)
        self.bias = _Biases(channels, n_columns, n_regimes)
        self.params = nn.Conv2d(channels, n_params, 1)

    def forward(self, h: Tensor, regime: Tensor | None) -> Tensor:  # (B, C, T, J) -> (B, T, J, P)
        h = F.relu(self.hidden(F.relu(h)) + self.bias(regime, h.shape[-1]))
        return self.params(h).permute(0, 2, 3, 1)


class GatedLayer(nn.Module):
    """One gated layer: vertical stack (rows above) and horizontal stack (cells to the left).

    The vertical pre-activation at row ``i - 1`` reaches the horizontal stack at row ``i``
    through a 1x1 convolution, as in van den Oord et al. (2016b), Figure 2.
    """

    def __init__(self, in_channels: int, channels: int, kernel_height: int, kernel_width: int, row_width: int,
                 dilation: int, first: bool, n_columns: int, n_regimes: int) -> None:
        super().__init__()
        self.v_conv = MaskedConv2d(in_channels, 2 * channels, (kernel_height, kernel_width), None,
                                   dilation=dilation)
        # the centre and the row_width - 1 cells to its left
        self.h_conv = MaskedConv2d(in_channels, 2 * channels, (1, row_width), "A" if first else "B",
                                   centre=row_width - 1)
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.v_bias = _Biases(2 * channels, n_columns, 0)
        self.h_bias = _Biases(2 * channels, n_columns, n_regimes)
        self.first = first

    def vertical(self, v: Tensor, last_row: bool = False) -> tuple[Tensor, Tensor]:
        """``(pre-activation, next v)``; row ``i`` depends on rows ``<= i`` only. With ``last_row``
        ``v`` holds exactly ``v_conv.rows`` rows and only the last output row is computed."""
        pre = (self.v_conv.last_row(v) if last_row else self.v_conv(v)) + self.v_bias(None)
        return pre, _gate(pre)

    def horizontal(self, h: Tensor, v_above: Tensor, regime: Tensor | None) -> Tensor:
        """Next horizontal stream; ``v_above`` holds the vertical pre-activation of the row above."""
        out = self.h_out(_gate(self.h_conv(h) + self.v_to_h(v_above) + self.h_bias(regime, h.shape[-1])))
        return out if self.first else h + out


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN without blind spot: ``forward(x, regime)`` maps ``(B, T, J)`` to ``(B, T, J, P)``.

    The output at cell ``(t, j)`` depends on rows ``t - R .. t - 1`` (``R = receptive_rows``) and
    on cells ``(t, < j)``, never on ``(t, j)`` or later cells; ``regime`` ``(B, T)`` enters row
    ``t`` through the horizontal stack and the output only. The horizontal kernels span
    ``row_width`` cells (the centre and those to its left; default the whole row).
    """

    def __init__(self, n_params: int, *, channels: int, kernel_height: int, kernel_width: int,
                 dilations: Sequence[int], n_columns: int, n_regimes: int,
                 row_width: int | None = None) -> None:
        super().__init__()
        row = n_columns if row_width is None else row_width
        self.layers = nn.ModuleList(
            GatedLayer(1 if i == 0 else channels, channels, kernel_height, kernel_width, row, d, i == 0,
                       n_columns, n_regimes) for i, d in enumerate(dilations))
        self.out = _Output(channels, n_params, n_columns, n_regimes)
        self.receptive_rows = 1 + (kernel_height - 1) * sum(dilations)

    def forward(self, x: Tensor, regime: Tensor | None = None) -> Tensor:
        v = h = x[:, None]  # (B, 1, T, J)
        for layer in self.layers:
            pre, v = layer.vertical(v)
            h = layer.horizontal(h, _shift_down(pre), regime)
        return self.out(h, regime)

    # ---- cached generation: the vertical stack advances a row at a time, the row cell by cell --------
    def start(self, above: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Generation state after the rows ``above`` ``(B, R, J)``: per layer, the vertical
        pre-activation of the last row (what the next row sees) and the layer's recent input rows."""
        v, pres, inputs = above[:, None], [], []
        for layer in self.layers:
            inputs.append(v[:, :, -layer.v_conv.rows:])
            pre, v = layer.vertical(v)
            pres.append(pre[:, :, -1:])
        return pres, inputs

    def advance(self, state: tuple[list[Tensor], list[Tensor]],
                x_row: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """The state after one more finished row ``x_row`` ``(B, J)``: one new row per layer."""
        v, pres, inputs = x_row[:, None, None], [], []
        for layer, past in zip(self.layers, state[1], strict=True):
            past = torch.cat([past[:, :, 1:], v], dim=2)  # (B, C, rows, J), the oldest row dropped
            pre, v = layer.vertical(past, last_row=True)
            pres.append(pre)
            inputs.append(past)
        return pres, inputs

    def row(self, x_row: Tensor, state: tuple[list[Tensor], list[Tensor]], regime: Tensor | None) -> Tensor:
        """Head parameters ``(B, W, P)`` of the cells of a row's first ``W`` columns ``(B, W)``
        after the state's rows (the horizontal stack only looks left, so ``W < J`` is exact)."""
        h = x_row[:, None, None]  # (B, 1, 1, W)
        for layer, above in zip(self.layers, state[0], strict=True):
            h = layer.horizontal(h, above[..., :h.shape[-1]], regime)
        return self.out(h, regime)[:, 0]


class OriginalPixelCNN(nn.Module):
    """The original PixelCNN stack: masked conv A, then residual ReLU + masked conv B layers.

    With ``kernel_width`` smaller than the panel it has a blind spot: the receptive field of
    ``(t, j)`` grows by ``kernel_width // 2`` columns per layer and row above, so cells up and to
    the right are never seen although they come earlier in raster order.
    """

    def __init__(self, n_params: int, *, channels: int, kernel_height: int, kernel_width: int,
                 dilations: Sequence[int], n_columns: int, n_regimes: int) -> None:
        super().__init__()
        k = (kernel_height, kernel_width)
        self.convs = nn.ModuleList(MaskedConv2d(1 if i == 0 else channels, channels, k,
                                                "A" if i == 0 else "B", dilation=d)
                                   for i, d in enumerate(dilations))
        self.biases = nn.ModuleList(_Biases(channels, n_columns, 0) for _ in dilations)
        self.out = _Output(channels, n_params, n_columns, n_regimes)
        self.receptive_rows = (kernel_height - 1) * sum(dilations)

    def forward(self, x: Tensor, regime: Tensor | None = None) -> Tensor:
        h = x[:, None]
        for i, (conv, bias) in enumerate(zip(self.convs, self.biases, strict=True)):
            y = conv(h if i == 0 else F.relu(h)) + bias(None)
            h = y if i == 0 else h + y
        return self.out(h, regime)

    # ---- generation: the stack mixes rows and columns, so each row reruns over its window ------------
    def start(self, above: Tensor) -> Tensor:
        return above

    def advance(self, state: Tensor, x_row: Tensor) -> Tensor:
        return torch.cat([state[:, 1:], x_row[:, None]], dim=1)

    def row(self, x_row: Tensor, state: Tensor, regime: Tensor | None) -> Tensor:
        x = torch.cat([state, F.pad(x_row, (0, state.shape[-1] - x_row.shape[-1]))[:, None]], dim=1)
        reg = None if regime is None else F.pad(regime, (x.shape[1] - 1, 0))
        return self.forward(x, reg)[:, -1, :x_row.shape[-1]]


def volatility_regime(r: pd.Series | pd.DataFrame, window: int = 20, n_regimes: int = 3,
                      edges: Sequence[float] | None = None) -> pd.Series:
    """Market-regime labels ``0 .. n_regimes - 1`` from trailing realised volatility, known before each day.

    ``vol_t = sqrt(mean of r^2 over the panel and the window days before t)`` (days ``t - window
    .. t - 1``, fewer at the start; the first day uses its own row, the only look-ahead, and
    lies within any model's ``min_context``). Labels are the ``vol_t`` quantile classes (terciles
    for 3) cut at ``edges``; without ``edges`` they are the quantiles of ``vol`` over ``r`` itself,
    so compute them on training data and pass ``labels.attrs["edges"]`` for later data.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500")["adj_close"]).loc["2010":"2012"]
    >>> labels = volatility_regime(r)
    >>> sorted(labels.unique().tolist()), len(labels.attrs["edges"])
    ([0, 1, 2], 2)
    """
    frame = check_returns(r)
    if isinstance(window, bool) or int(window) != window or window < 1 or int(n_regimes) != n_regimes \
            or n_regimes < 2:
        raise DataError(f"window must be >= 1 and n_regimes >= 2 (integers), got {window!r}, {n_regimes!r}")
    sq = (frame.to_numpy(dtype=float) ** 2).mean(axis=1)
    past = pd.Series(sq).rolling(int(window), min_periods=1).mean().shift(1)
    past.iloc[0] = sq[0]
    vol = np.sqrt(past.to_numpy())
    if edges is None:
        edges = np.quantile(vol, np.arange(1, n_regimes) / n_regimes).tolist()
    cut = np.asarray(edges, dtype=float)
    if cut.shape != (n_regimes - 1,) or not np.all(np.diff(cut) > 0):
        raise DataError(f"edges must be {n_regimes - 1} increasing numbers, got {edges!r}")
    labels = pd.Series(np.searchsorted(cut, vol, side="right"), index=frame.index, name="regime")
    labels.attrs["edges"] = [float(e) for e in cut]
    return labels


@register("pixelcnn")
class PixelCNN(Forecaster):
    """PixelCNN over a panel (days x assets) with an exact joint likelihood; see the module docstring.

    Parameters
    ----------
    arch : {'gated', 'original'}
        Gated PixelCNN without blind spot, or the original masked stack (blind spot).
    channels : int, default 16
    n_layers : int, default 5
        With the default dilations ``1, 2, ..., 16`` and ``kernel_height=2``: 32 days of context.
    kernel_height : int, default 2
        Rows per kernel (the current row and ``kernel_height - 1`` rows above, dilated).
    kernel_width : int or None, default None
        Odd width in columns of the kernels over the rows above (the vertical stack, or the
        whole original stack); None spans the whole panel (``2 J - 1``), so every asset sees
        every asset of the previous days.
    row_width : int or None, default None
        Gated only: cells of the same day a horizontal kernel spans (the centre and those to its
        left); None spans the whole row, so every asset sees all assets to its left at once.
    dilation_growth : int, default 2
        Layer ``l`` has dilation ``dilation_growth ** l`` along time; 1 for none.
    head : {'logistic_mixture', 't_mixture', 'student_t', 'gaussian'}
        Distribution of a standardised cell given its context.
    n_components : int, default 5
        Mixture components of mixture heads.
    n_bins : int, default 2048
        Bins of the logistic-mixture head on ``[-bound, bound]`` (standardised units).
    bound : float, default 40
        Support of the binned head in standard deviations of each asset; a cell outside it has
        density 0 (``log_prob`` is ``-inf``); ``fit`` refuses training data outside it.
    window : int, default 96
        Target rows per training window (each with ``min_context`` rows of context).
    lr, weight_decay, batch_size, max_epochs, patience : training settings
        Passed to :class:`finar.models.training.TrainConfig`. The defaults (16 channels, 5
        layers, 25 epochs) are the configuration of ``benchmarks/_p4_panel.py`` (21 assets,
        15 years: about 4 minutes on one CPU thread).
    val_fraction : float, default 0.2
        The last fraction of the days is the early-stopping validation set.
    seed : int, default 0
    device : str, default 'cpu'
    progress : bool, default False

    Examples
    --------
    >>> import finar
    >>> px = finar.load("sp500-stocks")[["SP500", "JPM", "BAC"]].loc["2011":"2012"]
    >>> r = finar.returns(px)
    >>> m = PixelCNN(channels=8, n_layers=3, max_epochs=2).fit(r)
    >>> m.min_context, m.log_prob(r, per="day").shape
    (8, (501,))
    >>> m.sample(r, horizon=5, n_paths=10, seed=0).paths.shape
    (10, 5, 3)
    """

    def __init__(self, arch: str = "gated", channels: int = 16, n_layers: int = 5, kernel_height: int = 2,
                 kernel_width: int | None = None, row_width: int | None = None, dilation_growth: int = 2,
                 head: str = "logistic_mixture",
                 n_components: int = 5, n_bins: int = 2048, bound: float = 40.0, window: int = 96,
                 lr: float = 3e-3, weight_decay: float = 0.01, batch_size: int = 4, max_epochs: int = 25,
                 patience: int = 5, val_fraction: float = 0.2, seed: int = 0, device: str = "cpu",
                 progress: bool = False) -> None:
        self.arch = arch
        self.channels = channels
        self.n_layers = n_layers
        self.kernel_height = kernel_height
        self.kernel_width = kernel_width
        self.row_width = row_width
        self.dilation_growth = dilation_growth
        self.head = head
        self.n_components = n_components
        self.n_bins = n_bins
        self.bound = bound
        self.window = window
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.progress = progress

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        tiny = dict(channels=8, n_layers=3, n_bins=256, window=32, max_epochs=2, batch_size=8)
        return [tiny, {**tiny, "head": "t_mixture", "n_components": 2}, {**tiny, "arch": "original"}]

    # ---- configuration ----------------------------------------------------------------------
    @property
    def dilations(self) -> list[int]:
        return [int(self.dilation_growth) ** i for i in range(int(self.n_layers))]

    @property
    def min_context(self) -> int:
        """Days of context before a row's density is defined (the receptive field in rows)."""
        rows = (int(self.kernel_height) - 1) * sum(self.dilations)
        return rows + 1 if self.arch == "gated" else rows

    @property
    def memory(self) -> int:
        """A row's cells depend on the ``min_context`` rows above it (and the row itself) only."""
        return self.min_context

    @property
    def min_fit_obs(self) -> int:  # type: ignore[override]
        # one training target row after min_context, and a validation part of at least one day
        return math.ceil((self.min_context + 1) / (1.0 - float(self.val_fraction))) + 1

    def _validate(self) -> None:
        if self.arch not in ("gated", "original"):
            raise DataError(f"arch must be 'gated' or 'original', got {self.arch!r}")
        if self.head not in _HEADS:
            raise DataError(f"head must be one of {list(_HEADS)}, got {self.head!r}")
        for name in ("channels", "n_layers", "kernel_height", "dilation_growth", "n_components", "n_bins",
                     "window", "batch_size", "max_epochs", "patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise DataError(f"{name} must be a positive integer, got {v!r}")
        if self.arch == "gated" and self.kernel_height < 2:
            raise DataError("the gated PixelCNN needs kernel_height >= 2 to see the rows above")
        for name, odd in (("kernel_width", True), ("row_width", False)):
            w = getattr(self, name)
            if w is not None and (isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 1
                                  or (odd and w % 2 == 0)):
                kind = "an odd positive" if odd else "a positive"
                raise DataError(f"{name} must be None or {kind} integer, got {w!r}")
        if not 0 < float(self.val_fraction) < 0.9:
            raise DataError(f"val_fraction must lie in (0, 0.9), got {self.val_fraction!r}")
        if not (math.isfinite(float(self.bound)) and float(self.bound) > 0):
            raise DataError(f"bound must be a positive number, got {self.bound!r}")

    def _tensor(self, values: np.ndarray) -> Tensor:
        return torch.tensor(values, dtype=torch.float32, device=self.device)

    def _make_head(self) -> Head:
        if self.head == "logistic_mixture":
            b = float(self.bound)
            return make_head(self.head, n_components=int(self.n_components), n_bins=int(self.n_bins),
                             low=-b, high=b)
        if self.head == "t_mixture":
            return make_head(self.head, n_components=int(self.n_components))
        return make_head(self.head)

    def _build(self, n_series: int) -> None:
        kw = 2 * n_series - 1 if self.kernel_width is None else int(self.kernel_width)
        settings = dict(channels=int(self.channels), kernel_height=int(self.kernel_height), kernel_width=kw,
                        dilations=self.dilations, n_columns=n_series, n_regimes=len(self.regimes_))
        with seeded(int(self.seed)):
            if self.arch == "gated":
                row = None if self.row_width is None else min(int(self.row_width), n_series)
                self.network_ = GatedPixelCNN(self.head_.n_params, row_width=row, **settings)
            else:
                self.network_ = OriginalPixelCNN(self.head_.n_params, **settings)
        self.network_.to(self.device)

    # ---- inputs -------------------------------------------------------------------------------
    def _panel(self, r: pd.Series | pd.DataFrame, what: str) -> tuple[pd.DataFrame, np.ndarray]:
        """The checked panel in the fitted column order and its standardised values ``(T, J)``."""
        frame = check_returns(r, what=what)
        cols = [str(c) for c in frame.columns]
        if cols != self.columns_ and not (len(cols) == 1 == len(self.columns_)):
            raise DataError(f"{what}: this PixelCNN was fitted on columns {self.columns_} in this order "
                            f"(the order is part of the model), got {cols}; select them with "
                            f"r[{self.columns_}]")
        return frame, np.asarray(self.scaler_.transform(frame.to_numpy(dtype=float)))

    def _regime_ids(self, regime: Any, index: pd.Index, what: str) -> Tensor | None:
        """Regime ids ``(1, T)`` for the rows ``index``, or None for a model without regimes."""
        if not self.regimes_:
            if regime is not None:
                raise DataError(f"{what}: this PixelCNN was fitted without regime labels; drop regime=")
            return None
        if regime is None:
            raise DataError(f"{what}: this PixelCNN was fitted with regime labels {self.regimes_}; pass "
                            "regime= for the same days")
        if not isinstance(regime, pd.Series) or not regime.index.equals(index):
            raise DataError(f"{what}: regime must be a pandas Series with exactly the rows of the panel "
                            f"({len(index)} rows)")
        return self._ids(regime.tolist(), what)[None]

    def _ids(self, labels: Sequence[Hashable], what: str) -> Tensor:
        lookup = {label: i for i, label in enumerate(self.regimes_)}
        unknown = sorted({str(x) for x in labels if _plain_label(x) not in lookup})
        if unknown:
            raise DataError(f"{what}: unknown regime labels {unknown}; the model knows {self.regimes_}")
        return torch.tensor([lookup[_plain_label(x)] for x in labels], dtype=torch.long, device=self.device)

    # ---- fit ----------------------------------------------------------------------------------
    def fit(self, r: pd.Series | pd.DataFrame, regime: pd.Series | None = None) -> PixelCNN:
        """Fit to a panel of returns (rows days, columns assets in the order the model conditions on).

        Parameters
        ----------
        r : DataFrame or Series
            Finite returns; NaNs are refused (restrict the panel to assets with full history, or
            align it first). Column ``j`` is modelled given columns ``< j`` of the same day.
        regime : Series of labels, optional
            A market-regime label per day (e.g. :func:`volatility_regime`), the class the day's
            cells are conditioned on. It must be known before day ``t`` opens; ``log_prob``,
            ``cdf`` and ``sample`` then need labels too.
        """
        self._validate()
        frame = check_returns(r)
        check_length(frame, self.min_fit_obs, what=f"fitting {type(self).__name__}")
        self.columns_ = [str(c) for c in frame.columns]
        self.regimes_: list[Hashable] = []
        if regime is not None:
            if not isinstance(regime, pd.Series) or not regime.index.equals(frame.index):
                raise DataError("regime must be a pandas Series with exactly the rows of r")
            if regime.isna().any():
                raise DataError(f"regime has missing labels at {format_rows(regime.index[regime.isna()])}")
            found = {_plain_label(x) for x in regime.tolist()}
            self.regimes_ = sorted(found, key=lambda x: (isinstance(x, str), x if isinstance(x, int) else 0,
                                                         str(x)))
        reg = self._regime_ids(regime, frame.index, "fit")
        self.scaler_ = StandardScaler().fit(frame.to_numpy(dtype=float))
        z = np.asarray(self.scaler_.transform(frame.to_numpy(dtype=float)))
        self.head_ = self._make_head()
        if self.head == "logistic_mixture":
            outside = np.abs(z).max(axis=1) > float(self.bound)
            if outside.any():
                raise DataError(f"returns beyond bound={self.bound} standard deviations at "
                                f"{format_rows(frame.index[outside])}; raise bound or use a continuous head")
        self._build(len(self.columns_))
        R, n = self.min_context, len(z)
        cut = round(n * (1 - float(self.val_fraction)))
        size = R + min(int(self.window), cut - R)
        starts = list(range(0, cut - size + 1, size - R))
        if (cut - size) % (size - R):
            starts.append(cut - size)  # the newest training targets too
        ids = torch.zeros((1, n), dtype=torch.long) if reg is None else reg.cpu()
        x = torch.tensor(z, dtype=torch.float32)
        train_data = (torch.stack([x[s:s + size] for s in starts]),
                      torch.stack([ids[0, s:s + size] for s in starts]))
        val_data = (x[None, cut - R:], ids[:, cut - R:])  # one image: the validation days and their context
        head, use_regime = self.head_, bool(self.regimes_)

        def loss(module: nn.Module, xb: Tensor, rb: Tensor) -> Tensor:
            raw = module(xb, rb if use_regime else None)  # (B, T, J, P)
            return -head.log_prob(raw[:, R:], xb[:, R:]).mean()

        config = TrainConfig(lr=float(self.lr), weight_decay=float(self.weight_decay),
                             batch_size=int(self.batch_size), max_epochs=int(self.max_epochs),
                             patience=int(self.patience), seed=int(self.seed),
                             warmup_steps=min(100, 2 * max(1, len(starts) // int(self.batch_size))))
        self.training_ = train(self.network_, loss, train_data, val_data, config, device=self.device,
                               progress=bool(self.progress))
        return self

    # ---- the contract -------------------------------------------------------------------------
    def log_prob(self, r: pd.Series | pd.DataFrame, regime: pd.Series | None = None,
                 per: str = "cell") -> pd.Series | pd.DataFrame:
        """Log density of each cell given the cells before it, in nats in the units of ``r``.

        ``per='cell'`` gives ``log p(r_{t,j} | r_{<t}, r_{t,<j})`` aligned with ``r`` (a Series for
        a Series); ``per='day'`` the joint log density of each day, the sum over its cells, as a
        Series. The first ``min_context`` days are NaN. Cells outside a binned head's support
        (``bound``) have density 0: ``-inf``.
        """
        if per not in ("cell", "day"):
            raise DataError(f"per must be 'cell' or 'day', got {per!r}")
        self._check_fitted()
        log_scale = self._tensor(np.log(self.scaler_.scale_)).double()  # the scaler's Jacobian, per column
        frame, lp = self._per_cell(r, regime, "log_prob",
                                   lambda raw, z: self.head_.log_prob(raw, z).double() - log_scale)
        if per == "day":
            return pd.Series(lp.sum(axis=1), index=frame.index, name="log_prob")
        return _like(r, pd.DataFrame(lp, index=frame.index, columns=frame.columns))

    def cdf(self, r: pd.Series | pd.DataFrame, regime: pd.Series | None = None, *,
            at: Any = None) -> pd.Series | pd.DataFrame:
        """Conditional CDF ``P(R_{t,j} <= r_{t,j} | r_{<t}, r_{t,<j})`` of each observed cell.

        The exact CDF of the density ``log_prob`` evaluates (the head's ``cdf``), NaN for the
        first ``min_context`` days; two-sided tail p-values are ``2 min(F, 1 - F)``. ``at``
        (shaped like ``r``) evaluates each cell's conditional CDF at ``at_{t,j}`` instead (the
        conditioning is always ``r``).
        """
        frame, out = self._per_cell(r, regime, "cdf", self.head_.cdf, at=at)
        return _like(r, pd.DataFrame(out, index=frame.index, columns=frame.columns))

    def ppf(self, r: pd.Series | pd.DataFrame, q: float,
            regime: pd.Series | None = None) -> pd.Series | pd.DataFrame:
        """The ``q``-quantile of each cell's conditional distribution given ``r_{<t}`` and
        ``r_{t,<j}``, in the units of ``r`` (the head's exact quantile function, the inverse of
        :meth:`cdf`); NaN for the first ``min_context`` days. Cell ``(t, j)``'s value does not
        depend on ``r_{t,j}``."""
        self._check_fitted()
        loc, scale = (self._tensor(np.asarray(a, dtype=float)).double() for a in (self.scaler_.loc_,
                                                                                  self.scaler_.scale_))
        frame, out = self._per_cell(r, regime, "ppf",
                                    lambda raw, z: self.head_.ppf(raw, float(q)).double() * scale + loc)
        return _like(r, pd.DataFrame(out, index=frame.index, columns=frame.columns))

    @torch.no_grad()
    def _per_cell(self, r: pd.Series | pd.DataFrame, regime: pd.Series | None, what: str,
                  fn: Callable[[Tensor, Tensor], Tensor], at: Any = None) -> tuple[pd.DataFrame, np.ndarray]:
        """``fn(raw, z)`` of every cell after the first ``min_context`` days (NaN before), ``(T, J)``;
        ``z`` is ``r`` standardised, or ``at`` (shaped like ``r``) standardised."""
        self._check_fitted()
        frame, z = self._panel(r, what)
        reg = self._regime_ids(regime, frame.index, what)
        out = np.full(z.shape, np.nan)
        if len(z) > self.min_context:
            # NaN in ``at`` (e.g. before min_context) gives NaN, so no finite-value check here
            zt = z if at is None else (cdf_values(frame, at) - self.scaler_.loc_) / self.scaler_.scale_
            raw, target = self.network_.eval()(self._tensor(z)[None], reg)[0], self._tensor(zt)
            # a binned head's cdf holds every bin of every cell at once: chunks of ~2e7 numbers
            step = max(1, 20_000_000 // (z.shape[1] * getattr(self.head_, "n_bins", 1) * raw.shape[-1]))
            for s in range(self.min_context, len(z), step):
                rows = slice(s, s + step)
                out[rows] = fn(raw[rows], target[rows]).double().cpu().numpy()
        return frame, out

    def sample(self, context: pd.Series | pd.DataFrame, horizon: int = 1, n_paths: int = 1000,
               seed: int | None = None, *, regime: Hashable | Sequence[Hashable] | None = None,
               temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> Scenarios:
        """Joint scenarios of the whole panel after ``context``: ``paths`` ``(n_paths, horizon, J)``.

        Generation goes day by day and, within a day, asset by asset in the column order,
        batched over paths (the rows above are encoded once per day). ``regime`` is the label of
        every future day, or a sequence of ``horizon`` labels (conditional scenarios, e.g. a
        high-volatility tercile); it is required when the model was fitted with labels.
        ``temperature``, ``top_k`` and ``top_p`` act on the head (:mod:`finar.models.heads`).
        """
        self._check_fitted()
        frame, z = self._panel(context, "sample context")
        check_length(frame, self.min_context, what=f"{type(self).__name__}.sample context")
        if int(horizon) != horizon or horizon < 1 or int(n_paths) != n_paths or n_paths < 1:
            raise DataError(f"horizon and n_paths must be positive integers, got {horizon}, {n_paths}")
        horizon, n = int(horizon), int(n_paths)
        reg = None
        if self.regimes_ or regime is not None:
            if not self.regimes_ or regime is None:
                self._regime_ids(regime, frame.index, "sample")  # raises the matching error
            labels = [regime] * horizon if _is_label(regime) else list(regime)  # type: ignore[arg-type]
            if len(labels) != horizon:
                raise DataError(f"sample: regime needs one label or {horizon} labels, got {len(labels)}")
            reg = self._ids(labels, "sample")[None].expand(n, -1)
        R, J, net = self.min_context, z.shape[1], self.network_.eval()
        buf = torch.zeros((n, R + horizon, J), device=self.device)
        buf[:, :R] = self._tensor(z[-R:])
        seed_int = int(np.random.SeedSequence(seed).generate_state(1)[0])
        gen = torch.Generator(device=self.device).manual_seed(seed_int)
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        with torch.no_grad():
            state = _expand(net.start(buf[:1, :R]), n)  # the context is the same for every path
            for t in progress_bar(range(horizon), total=horizon, enabled=bool(self.progress),
                                  description="PixelCNN sample"):
                reg_t = None if reg is None else reg[:, t:t + 1]
                for j in range(J):
                    raw = net.row(buf[:, R + t, :j + 1], state, reg_t)[:, j]
                    buf[:, R + t, j] = self.head_.sample(raw, gen, **kw)
                if t + 1 < horizon:
                    state = net.advance(state, buf[:, R + t])
        paths = buf[:, R:].double().cpu().numpy() * self.scaler_.scale_ + self.scaler_.loc_
        return Scenarios(paths, future_index(frame.index, horizon), [str(c) for c in frame.columns],
                         seed=seed)

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        tr = self.training_
        return {"network": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
                "scaler": self.scaler_.state_dict(), "columns": list(self.columns_),
                "regimes": list(self.regimes_),
                "training": {"history": [{k: float(v) for k, v in e.items()} for e in tr.history],
                             "best_epoch": int(tr.best_epoch), "best_val_loss": float(tr.best_val_loss),
                             "seconds": float(tr.seconds), "n_steps": int(tr.n_steps)}}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.columns_ = list(state["columns"])
        self.regimes_ = list(state["regimes"])
        self.scaler_ = scaler_from_state_dict(state["scaler"])
        self.head_ = self._make_head()
        self._build(len(self.columns_))
        self.network_.load_state_dict(state["network"])
        self.network_.eval()
        self.training_ = TrainResult(**state["training"])


def _expand(state: Any, n: int) -> Any:
    """Every tensor of a (nested) generation state expanded from batch 1 to ``n``."""
    if isinstance(state, Tensor):
        return state.expand(n, *state.shape[1:])
    return type(state)(_expand(s, n) for s in state)


def _like(r: pd.Series | pd.DataFrame, out: pd.DataFrame) -> pd.Series | pd.DataFrame:
    """A Series named like ``r`` for a Series input, else the DataFrame."""
    return out.iloc[:, 0].rename(r.name) if isinstance(r, pd.Series) else out


def _plain_label(x: Any) -> Hashable:
    """A regime label as a plain int or str (what a weights_only model file can hold)."""
    if isinstance(x, bool | np.bool_):
        return int(x)
    if isinstance(x, int | np.integer):
        return int(x)
    return str(x)


def _is_label(x: Any) -> bool:
    return isinstance(x, str | int | np.integer) or not isinstance(x, Sequence | np.ndarray | pd.Series)
