"""PixelCNN over a panel of returns: days are rows, assets are columns, raster order is time then asset.

A panel ``x`` of ``T`` days and ``J`` assets (or ``J`` intraday bins) is an image with one
channel. Masked convolutions (van den Oord et al. 2016a) factorise its density in raster order,

.. math::  \\log p(x) = \\sum_t \\sum_j \\log p(x_{t,j} \\mid x_{<t,\\cdot},\\ x_{t,<j},\\ c_{t-1})

so each asset conditions on every asset of the previous days in the receptive field and on the
assets *to its left on the same day*: put the market index first and each stock's same-day
density is conditional on the market (the column order is the user's choice and part of the
model). Since ``log_prob`` of cell ``(t, j)`` conditions on the cells before it, the sum over a
day's cells is the exact joint density of the day (tag ``"joint"``, :meth:`joint_log_prob`).

``c_{t-1}`` is the row of ``exog`` known at the close of the day before (the covariate rule of
:mod:`finar.models.base`): the column named by ``regime_column`` is a market-regime label
(class-conditional PixelCNN; e.g. :func:`volatility_regime`), embedded per layer; the other
columns are numeric covariates, standardised and projected per layer.

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
Fitting, scoring, the predictive per cell and files are the panel-mode template of
:class:`~finar.models.neural.NeuralForecaster`; generation is cached row by row.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finar._estimator import check_int, check_number, register
from finar._progress import progress_bar
from finar.data.scalers import StandardScaler
from finar.errors import DataError, format_rows
from finar.models.base import Exog, check_exog, check_returns, future_exog
from finar.models.heads import Head, make_head
from finar.models.neural import NeuralForecaster
from finar.models.training import TRAIN_DEFAULTS, TrainConfig, as_config

__all__ = ["PixelCNN", "PixelCNNConfig", "GatedPixelCNN", "OriginalPixelCNN", "MaskedConv2d",
           "volatility_regime"]

_HEADS = ("logistic_mixture", "t_mixture", "student_t", "gaussian")


@dataclass(frozen=True)
class PixelCNNConfig:
    """Architecture of :class:`GatedPixelCNN` / :class:`OriginalPixelCNN`; bad values raise DataError."""

    arch: str = "gated"             # "gated" (no blind spot) or "original" (one masked stack)
    channels: int = 16
    n_layers: int = 5
    kernel_height: int = 2          # rows per kernel: the current row and kernel_height - 1 above
    kernel_width: int | None = None  # odd columns of the kernels over the rows above; None: 2 J - 1
    row_width: int | None = None    # gated: cells of the same row a horizontal kernel spans; None: J
    dilation_growth: int = 2        # layer l has dilation dilation_growth ** l along time

    def __post_init__(self) -> None:
        if self.arch not in ("gated", "original"):
            raise DataError(f"arch must be 'gated' or 'original', got {self.arch!r}")
        for name in ("channels", "n_layers", "kernel_height", "dilation_growth"):
            object.__setattr__(self, name, check_int(name, getattr(self, name)))
        if self.arch == "gated" and self.kernel_height < 2:
            raise DataError("the gated PixelCNN needs kernel_height >= 2 to see the rows above")
        for name, odd in (("kernel_width", True), ("row_width", False)):
            w = getattr(self, name)
            if w is None:
                continue
            if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 1 or (odd and w % 2 == 0):
                kind = "an odd positive" if odd else "a positive"
                raise DataError(f"{name} must be None or {kind} integer, got {w!r}")
            object.__setattr__(self, name, int(w))

    @property
    def dilations(self) -> list[int]:
        return [self.dilation_growth ** i for i in range(self.n_layers)]

    @property
    def receptive_rows(self) -> int:
        """Rows above a row that its cells see: ``(kernel_height - 1) sum(dilations)``, + 1 gated
        (the vertical stack's shift)."""
        rows = (self.kernel_height - 1) * sum(self.dilations)
        return rows + 1 if self.arch == "gated" else rows


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
    """Per-column, per-regime and covariate biases ``V c`` added to a layer's pre-activations."""

    def __init__(self, channels: int, n_columns: int, n_regimes: int, n_covariates: int = 0) -> None:
        super().__init__()
        self.column = nn.Parameter(torch.zeros(channels, 1, n_columns))
        self.regime = nn.Embedding(n_regimes, channels) if n_regimes else None
        if self.regime is not None:
            nn.init.zeros_(self.regime.weight)
        self.cov = nn.Linear(n_covariates, channels, bias=False) if n_covariates else None
        if self.cov is not None:
            nn.init.zeros_(self.cov.weight)

    def forward(self, regime: Tensor | None, cov: Tensor | None = None, width: int | None = None) -> Tensor:
        """``(B or 1, C, T or 1, width)`` for regime ids ``(B, T)`` and covariates ``(B, T, K)``:
        the first ``width`` columns' biases."""
        bias = self.column[None, ..., :width]
        if self.regime is not None and regime is not None:
            bias = bias + self.regime(regime).permute(0, 2, 1)[..., None]
        if self.cov is not None and cov is not None:
            bias = bias + self.cov(cov).permute(0, 2, 1)[..., None]
        return bias


class _Output(nn.Module):
    """ReLU -> 1x1 (+ conditioning bias) -> ReLU -> 1x1: features of a cell to its head parameters."""

    def __init__(self, channels: int, n_params: int, n_columns: int, n_regimes: int,
                 n_covariates: int) -> None:
        super().__init__()
        self.hidden = nn.Conv2d(channels, channels, 1)
        self.bias = _Biases(channels, n_columns, n_regimes, n_covariates)
        self.params = nn.Conv2d(channels, n_params, 1)

    def forward(self, h: Tensor, regime: Tensor | None, cov: Tensor | None) -> Tensor:
        """Features ``(B, C, T, J)`` -> head parameters ``(B, T, J, P)``."""
        h = F.relu(self.hidden(F.relu(h)) + self.bias(regime, cov, h.shape[-1]))
        return self.params(h).permute(0, 2, 3, 1)


class GatedLayer(nn.Module):
    """One gated layer: vertical stack (rows above) and horizontal stack (cells to the left).

    The vertical pre-activation at row ``i - 1`` reaches the horizontal stack at row ``i``
    through a 1x1 convolution, as in van den Oord et al. (2016b), Figure 2.
    """

    def __init__(self, in_channels: int, channels: int, kernel_height: int, kernel_width: int, row_width: int,
                 dilation: int, first: bool, n_columns: int, n_regimes: int, n_covariates: int) -> None:
        super().__init__()
        self.v_conv = MaskedConv2d(in_channels, 2 * channels, (kernel_height, kernel_width), None,
                                   dilation=dilation)
        # the centre and the row_width - 1 cells to its left
        self.h_conv = MaskedConv2d(in_channels, 2 * channels, (1, row_width), "A" if first else "B",
                                   centre=row_width - 1)
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.v_bias = _Biases(2 * channels, n_columns, 0)
        self.h_bias = _Biases(2 * channels, n_columns, n_regimes, n_covariates)
        self.first = first

    def vertical(self, v: Tensor, last_row: bool = False) -> tuple[Tensor, Tensor]:
        """``(pre-activation, next v)``; row ``i`` depends on rows ``<= i`` only. With ``last_row``
        ``v`` holds exactly ``v_conv.rows`` rows and only the last output row is computed."""
        pre = (self.v_conv.last_row(v) if last_row else self.v_conv(v)) + self.v_bias(None)
        return pre, _gate(pre)

    def horizontal(self, h: Tensor, v_above: Tensor, regime: Tensor | None, cov: Tensor | None) -> Tensor:
        """Next horizontal stream; ``v_above`` holds the vertical pre-activation of the row above."""
        bias = self.h_bias(regime, cov, h.shape[-1])
        out = self.h_out(_gate(self.h_conv(h) + self.v_to_h(v_above) + bias))
        return out if self.first else h + out


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN without blind spot: ``forward(x, regime, cov)`` maps ``(B, T, J)`` to ``(B, T, J, P)``.

    The output at cell ``(t, j)`` depends on rows ``t - R .. t - 1`` (``R = receptive_rows``) and
    on cells ``(t, < j)``, never on ``(t, j)`` or later cells; ``regime`` ``(B, T)`` and ``cov``
    ``(B, T, K)`` enter row ``t`` through the horizontal stack and the output only. The
    horizontal kernels span ``row_width`` cells (the centre and those to its left; default the
    whole row).
    """

    def __init__(self, config: PixelCNNConfig, n_params: int, *, n_columns: int, n_regimes: int = 0,
                 n_covariates: int = 0) -> None:
        super().__init__()
        c = config
        kw = 2 * n_columns - 1 if c.kernel_width is None else c.kernel_width
        row = n_columns if c.row_width is None else min(c.row_width, n_columns)
        self.layers = nn.ModuleList(
            GatedLayer(1 if i == 0 else c.channels, c.channels, c.kernel_height, kw, row, d, i == 0,
                       n_columns, n_regimes, n_covariates) for i, d in enumerate(c.dilations))
        self.out = _Output(c.channels, n_params, n_columns, n_regimes, n_covariates)
        self.receptive_rows = 1 + (c.kernel_height - 1) * sum(c.dilations)

    def forward(self, x: Tensor, regime: Tensor | None = None, cov: Tensor | None = None) -> Tensor:
        v = h = x[:, None]  # (B, 1, T, J)
        for layer in self.layers:
            pre, v = layer.vertical(v)
            h = layer.horizontal(h, _shift_down(pre), regime, cov)
        return self.out(h, regime, cov)

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

    def row(self, x_row: Tensor, state: tuple[list[Tensor], list[Tensor]], regime: Tensor | None = None,
            cov: Tensor | None = None) -> Tensor:
        """Head parameters ``(B, W, P)`` of the cells of a row's first ``W`` columns ``(B, W)``
        after the state's rows (the horizontal stack only looks left, so ``W < J`` is exact);
        ``regime`` ``(B, 1)`` and ``cov`` ``(B, 1, K)`` condition the row."""
        h = x_row[:, None, None]  # (B, 1, 1, W)
        for layer, above in zip(self.layers, state[0], strict=True):
            h = layer.horizontal(h, above[..., :h.shape[-1]], regime, cov)
        return self.out(h, regime, cov)[:, 0]


class OriginalPixelCNN(nn.Module):
    """The original PixelCNN stack: masked conv A, then residual ReLU + masked conv B layers.

    With ``kernel_width`` smaller than the panel it has a blind spot: the receptive field of
    ``(t, j)`` grows by ``kernel_width // 2`` columns per layer and row above, so cells up and to
    the right are never seen although they come earlier in raster order.
    """

    def __init__(self, config: PixelCNNConfig, n_params: int, *, n_columns: int, n_regimes: int = 0,
                 n_covariates: int = 0) -> None:
        super().__init__()
        c = config
        k = (c.kernel_height, 2 * n_columns - 1 if c.kernel_width is None else c.kernel_width)
        self.convs = nn.ModuleList(MaskedConv2d(1 if i == 0 else c.channels, c.channels, k,
                                                "A" if i == 0 else "B", dilation=d)
                                   for i, d in enumerate(c.dilations))
        self.biases = nn.ModuleList(_Biases(c.channels, n_columns, 0) for _ in c.dilations)
        self.out = _Output(c.channels, n_params, n_columns, n_regimes, n_covariates)
        self.receptive_rows = (c.kernel_height - 1) * sum(c.dilations)

    def forward(self, x: Tensor, regime: Tensor | None = None, cov: Tensor | None = None) -> Tensor:
        h = x[:, None]
        for i, (conv, bias) in enumerate(zip(self.convs, self.biases, strict=True)):
            y = conv(h if i == 0 else F.relu(h)) + bias(None)
            h = y if i == 0 else h + y
        return self.out(h, regime, cov)

    # ---- generation: the stack mixes rows and columns, so each row reruns over its window ------------
    def start(self, above: Tensor) -> Tensor:
        return above

    def advance(self, state: Tensor, x_row: Tensor) -> Tensor:
        return torch.cat([state[:, 1:], x_row[:, None]], dim=1)

    def row(self, x_row: Tensor, state: Tensor, regime: Tensor | None = None,
            cov: Tensor | None = None) -> Tensor:
        x = torch.cat([state, F.pad(x_row, (0, state.shape[-1] - x_row.shape[-1]))[:, None]], dim=1)
        above = x.shape[1] - 1  # the state's rows get no conditioning: only the last row is read
        reg = None if regime is None else F.pad(regime, (above, 0))
        cv = None if cov is None else F.pad(cov, (0, 0, above, 0))
        return self.forward(x, reg, cv)[:, -1, :x_row.shape[-1]]


def volatility_regime(r: pd.Series | pd.DataFrame, window: int = 20, n_regimes: int = 3,
                      edges: Sequence[float] | None = None) -> pd.Series:
    """Market-regime labels ``0 .. n_regimes - 1`` from trailing realised volatility, known at each close.

    ``vol_t = sqrt(mean of r^2 over the panel and the days t - window + 1 .. t)`` (fewer at the
    start): row ``t`` uses days up to ``t`` only, so it follows the covariate rule (known at the
    close of day ``t``, conditioning day ``t + 1``) and serves as an exog column directly, e.g.
    ``PixelCNN(regime_column="regime").fit(r, exog=volatility_regime(r).to_frame())``. Labels
    are the ``vol_t`` quantile classes (terciles for 3) cut at ``edges``; without ``edges`` they
    are the quantiles of ``vol`` over ``r`` itself, so compute them on training data and pass
    ``labels.attrs["edges"]`` for later data.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500")["adj_close"]).loc["2010":"2012"]
    >>> labels = volatility_regime(r)
    >>> sorted(labels.unique().tolist()), len(labels.attrs["edges"])
    ([0, 1, 2], 2)
    """
    frame = check_returns(r)
    window, n_regimes = check_int("window", window), check_int("n_regimes", n_regimes, 2)
    sq = (frame.to_numpy(dtype=float) ** 2).mean(axis=1)
    vol = np.sqrt(pd.Series(sq).rolling(window, min_periods=1).mean().to_numpy())
    if edges is None:
        edges = np.quantile(vol, np.arange(1, n_regimes) / n_regimes).tolist()
    cut = np.asarray(edges, dtype=float)
    if cut.shape != (n_regimes - 1,) or not np.all(np.diff(cut) > 0):
        raise DataError(f"edges must be {n_regimes - 1} increasing numbers, got {edges!r}")
    labels = pd.Series(np.searchsorted(cut, vol, side="right"), index=frame.index, name="regime")
    labels.attrs["edges"] = [float(e) for e in cut]
    return labels


@register("pixelcnn")
class PixelCNN(NeuralForecaster):
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
    regime_column : str, optional
        The exog column holding a market-regime label per day (any hashable labels, e.g.
        :func:`volatility_regime`; row ``t`` conditions day ``t + 1``), embedded as a class; the
        other exog columns are numeric covariates. ``sample`` takes the labels of the simulated
        days in ``exog_future``.
    train : TrainConfig or mapping, optional
        Training settings (:class:`~finar.models.training.TrainConfig`); ``window`` is the
        target rows per training window. The defaults (lr 3e-3, batch_size 4, max_epochs 25,
        patience 5, window 96; 16 channels, 5 layers) are the configuration of
        ``benchmarks/_p4_panel.py`` (21 assets, 15 years: about 4 minutes on one CPU thread).
    device : str, default 'cpu'
    progress : bool, default False
        Progress bars over the training epochs and the generated days.

    Examples
    --------
    >>> import finar
    >>> px = finar.load("sp500-stocks")[["SP500", "JPM", "BAC"]].loc["2011":"2012"]
    >>> r = finar.returns(px)
    >>> m = PixelCNN(channels=8, n_layers=3, train={"max_epochs": 2}).fit(r)
    >>> m.min_context, m.joint_log_prob(r).shape
    (8, (501,))
    >>> m.sample(r, horizon=5, n_paths=10, seed=0).paths.shape
    (10, 5, 3)
    """

    tags = frozenset({"predictive", "exog", "joint"})
    takes_uniforms = False  # its cells are drawn jointly, each given the cells before it
    panel = True
    default_train = replace(TRAIN_DEFAULTS, lr=3e-3, batch_size=4, max_epochs=25, patience=5, window=96)

    def __init__(self, arch: str = "gated", channels: int = 16, n_layers: int = 5, kernel_height: int = 2,
                 kernel_width: int | None = None, row_width: int | None = None, dilation_growth: int = 2,
                 head: str = "logistic_mixture", n_components: int = 5, n_bins: int = 2048,
                 bound: float = 40.0, regime_column: str | None = None,
                 train: TrainConfig | Mapping[str, Any] | None = default_train, device: str = "cpu",
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
        self.regime_column = regime_column
        self.train = as_config(train, self.default_train, "PixelCNN.train")  # see WaveNet.__init__
        self.device = device
        self.progress = progress

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        tiny = dict(channels=8, n_layers=3, n_bins=256, train=dict(window=32, max_epochs=2, batch_size=8))
        return [tiny, {**tiny, "head": "t_mixture", "n_components": 2}, {**tiny, "arch": "original"}]

    # ---- configuration ----------------------------------------------------------------------
    @property
    def config(self) -> PixelCNNConfig:
        """The architecture settings as the network's frozen config (checked there)."""
        return PixelCNNConfig(self.arch, self.channels, self.n_layers, self.kernel_height, self.kernel_width,
                              self.row_width, self.dilation_growth)

    @property
    def min_context(self) -> int:
        """Days of context before a row's density is defined (the receptive field in rows; at
        least 1, the day whose exog conditions the first scored day)."""
        return max(1, self.config.receptive_rows)

    def _validate(self) -> None:
        _ = self.config
        if self.head not in _HEADS:
            raise DataError(f"head must be one of {list(_HEADS)}, got {self.head!r}")
        check_int("n_components", self.n_components)
        check_int("n_bins", self.n_bins)
        check_number("bound", self.bound, 0.0, low_open=True)
        if self.regime_column is not None and not isinstance(self.regime_column, str):
            raise DataError(f"regime_column must be None or an exog column name, got {self.regime_column!r}")

    def _make_head(self, z: np.ndarray | None = None) -> Head:
        if self.head == "logistic_mixture":
            b = float(self.bound)
            return make_head(self.head, n_components=int(self.n_components), n_bins=int(self.n_bins),
                             low=-b, high=b)
        if self.head == "t_mixture":
            return make_head(self.head, n_components=int(self.n_components))
        return make_head(self.head)

    def _check_fit_data(self, frame: pd.DataFrame, z: np.ndarray) -> None:
        if self.head == "logistic_mixture":
            outside = np.abs(z).max(axis=1) > float(self.bound)
            if outside.any():
                raise DataError(f"returns beyond bound={self.bound} standard deviations at "
                                f"{format_rows(frame.index[outside])}; raise bound or use a continuous head")

    def _network(self, n_series: int, n_covariates: int) -> nn.Module:
        cls = GatedPixelCNN if self.arch == "gated" else OriginalPixelCNN
        return cls(self.config, self.head_.n_params, n_columns=n_series, n_regimes=len(self.regimes_),
                   n_covariates=n_covariates - bool(self.regimes_))

    def _series_ids(self, frame: pd.DataFrame, what: str) -> list[int]:
        cols = [str(c) for c in frame.columns]
        if cols != self.columns_ and not (len(cols) == 1 == len(self.columns_)):
            raise DataError(f"{what}: this PixelCNN was fitted on columns {self.columns_} in this order "
                            f"(the order is part of the model), got {cols}; select them with "
                            f"r[{self.columns_}]")
        return list(range(len(cols)))

    # ---- covariates: numeric columns, then the regime id -----------------------------------------
    def _split_exog(self, exog: Exog, index: pd.Index, what: str,
                    columns: list[str] | None) -> tuple[pd.DataFrame | None, pd.Series | None]:
        """``exog`` as (checked numeric covariates, regime labels) for the days ``index``."""
        key = self.regime_column
        if key is None:
            return check_exog(exog, index, what, columns), None
        if not isinstance(exog, pd.DataFrame) or key not in exog.columns:
            raise DataError(f"{what}: regime_column={key!r} needs exog, a DataFrame with a {key!r} column")
        if not exog.index.equals(index):
            raise DataError(f"{what} must have exactly the rows of the returns ({len(index)} rows); got "
                            f"{len(exog)} rows. Row t is known at the close of day t and conditions day t+1")
        labels = exog[key]
        if labels.isna().any():
            missing = format_rows(labels.index[labels.isna()])
            raise DataError(f"{what} has missing {key!r} labels at {missing}")
        rest = exog.drop(columns=[key])
        if columns == [] or (columns is None and rest.shape[1] == 0):  # no numeric covariates
            return None, labels
        return check_exog(rest, index, what, columns), labels

    def _condition_array(self, numeric: pd.DataFrame | None, labels: pd.Series | None,
                         what: str) -> np.ndarray:
        """Standardised numeric covariates, then the regime id (as a float column): ``(T, K)``."""
        parts = [] if numeric is None else [np.asarray(self.exog_scaler_.transform(numeric.to_numpy(float)))]
        if labels is not None:
            lookup = {label: i for i, label in enumerate(self.regimes_)}
            plain = [_plain_label(x) for x in labels.tolist()]
            unknown = sorted({str(x) for x in plain if x not in lookup})
            if unknown:
                raise DataError(f"{what}: unknown regime labels {unknown}; the model knows {self.regimes_}")
            parts.append(np.array([lookup[x] for x in plain], dtype=float)[:, None])
        return np.concatenate(parts, axis=1)

    def _fit_covariates(self, exog: Exog, index: pd.Index) -> np.ndarray | None:
        if exog is None and self.regime_column is None:
            self.exog_columns_, self.regimes_ = [], []
            return None
        numeric, labels = self._split_exog(exog, index, "fit exog", None)
        self.regimes_: list[Hashable] = [] if labels is None else sorted(
            {_plain_label(x) for x in labels.tolist()},
            key=lambda x: (isinstance(x, str), x if isinstance(x, int) else 0, str(x)))
        names = [] if numeric is None else list(numeric.columns)
        if numeric is not None:
            self.exog_scaler_ = StandardScaler().fit(numeric.to_numpy(dtype=float))
        self.exog_columns_ = names + ([self.regime_column] if labels is not None else [])
        return self._condition_array(numeric, labels, "fit exog")

    def _numeric_columns(self) -> list[str]:
        return self.exog_columns_[:-1] if self.regimes_ else self.exog_columns_

    def _covariates(self, exog: Exog, index: pd.Index, what: str) -> np.ndarray | None:
        self._check_exog_given(exog, what)
        if exog is None:
            return None
        numeric, labels = self._split_exog(exog, index, f"{what} exog", self._numeric_columns())
        return self._condition_array(numeric, labels, what)

    def _future_covariates(self, exog_future: Exog, horizon: int) -> np.ndarray:
        numeric_cols = self._numeric_columns()
        if horizon == 1:  # the first simulated day is conditioned by the context's last row
            return np.zeros((0, len(self.exog_columns_)))
        if not self.regimes_:
            return np.asarray(self.exog_scaler_.transform(future_exog(exog_future, numeric_cols, horizon)))
        key = self.regime_column
        if not isinstance(exog_future, pd.DataFrame) or key not in exog_future.columns \
                or len(exog_future) < horizon - 1:
            raise DataError(f"sample: the model was fitted with regime labels {self.regimes_}; pass "
                            f"exog_future, a DataFrame with a {key!r} column (and {numeric_cols}) of at "
                            f"least horizon - 1 = {horizon - 1} rows")
        fut = exog_future.iloc[:horizon - 1]
        numeric = None
        if numeric_cols:
            numeric = pd.DataFrame(future_exog(fut.drop(columns=[key]), numeric_cols, horizon),
                                   columns=numeric_cols)
        return self._condition_array(numeric, fut[key], "exog_future")

    def _conditions(self, c: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Regime ids ``(B, T)`` and covariates ``(B, T, K)`` of each row: row ``t`` gets exog row
        ``t - 1`` (known at the close of the day before; row 0, always context, gets zeros)."""
        if c.shape[-1] == 0:
            return None, None
        c = F.pad(c, (0, 0, 1, 0))[:, :-1]
        n_num = c.shape[-1] - bool(self.regimes_)
        return (c[..., -1].long() if self.regimes_ else None), (c[..., :n_num] if n_num else None)

    # ---- the model's conditionals -------------------------------------------------------------
    def _forward_train(self, module: nn.Module, x: Tensor, *cond: Tensor) -> Tensor:
        """Panels ``x`` (B, R + span, J): the masked network's outputs at the target rows."""
        return module(x, *self._conditions(cond[0]))[:, self.min_context:]

    def _conditionals(self, z: Tensor, sid: int, cov: Tensor | None) -> Tensor:
        raise NotImplementedError("PixelCNN conditions each cell on the whole panel: see _head_params")

    @torch.no_grad()
    def _head_params(self, z: np.ndarray, sids: list[int], cov: np.ndarray | None) -> list[Tensor]:
        """One pass over the panel: head parameters of every cell given the cells before it."""
        c = self._tensor(np.zeros((len(z), 0)) if cov is None else cov)[None]
        raw = self.network_.eval()(self._tensor(z)[None], *self._conditions(c))[0, self.min_context:]
        return [raw[:, j].contiguous() for j in range(z.shape[1])]

    # ---- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def _paths(self, z: np.ndarray, sids: list[int], cov: np.ndarray | None, horizon: int, n: int,
               seeds: np.ndarray, kw: dict[str, Any], method: str) -> np.ndarray:
        """Joint paths: day by day and, within a day, asset by asset in the column order, batched
        over paths (the rows above are encoded once per day: ``start``/``advance``/``row``).
        ``method='naive'`` reruns the network over each new cell's receptive field instead."""
        if kw.get("uniforms") is not None:
            raise DataError("PixelCNN draws its panel jointly (each cell given the cells before it); "
                            "it cannot be driven by given uniforms")
        R, J, net = self.min_context, z.shape[1], self.network_.eval()
        buf = torch.zeros((n, R + horizon, J), device=self.device)
        buf[:, :R] = self._tensor(z)
        # one conditioning row per row of buf (the last exog row conditions no simulated day)
        c = np.zeros((R + horizon, 0)) if cov is None else np.concatenate([cov, cov[-1:]])
        reg, cv = self._conditions(self._tensor(c)[None])
        reg = None if reg is None else reg.expand(n, -1)
        cv = None if cv is None else cv.expand(n, -1, -1)
        gen = torch.Generator(device=self.device).manual_seed(int(seeds[0]))
        state = _expand(net.start(buf[:1, :R]), n) if method == "cached" else None  # the same context
        for t in progress_bar(range(horizon), total=horizon, enabled=bool(self.progress),
                              description="PixelCNN sample"):
            rows = slice(R + t, R + t + 1) if method == "cached" else slice(t, R + t + 1)
            reg_t = None if reg is None else reg[:, rows]
            cv_t = None if cv is None else cv[:, rows]
            for j in range(J):
                if method == "cached":
                    raw = net.row(buf[:, R + t, :j + 1], state, reg_t, cv_t)[:, j]
                else:
                    raw = net(buf[:, rows], reg_t, cv_t)[:, -1, j]
                buf[:, R + t, j] = self.head_.sample(raw, gen, **kw)
            if method == "cached" and t + 1 < horizon:
                state = net.advance(state, buf[:, R + t])
        return buf[:, R:].double().cpu().numpy()

    # ---- persistence --------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        return {**super()._get_state(), "regimes": list(self.regimes_)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.regimes_ = list(state["regimes"])  # before the network is rebuilt: it embeds them
        super()._set_state(state)


def _expand(state: Any, n: int) -> Any:
    """Every tensor of a (nested) generation state expanded from batch 1 to ``n``."""
    if isinstance(state, Tensor):
        return state.expand(n, *state.shape[1:])
    return type(state)(_expand(s, n) for s in state)


def _plain_label(x: Any) -> Hashable:
    """A regime label as a plain int or str (what a weights_only model file can hold)."""
    if isinstance(x, bool | np.bool_):
        return int(x)
    if isinstance(x, int | np.integer):
        return int(x)
    return str(x)
