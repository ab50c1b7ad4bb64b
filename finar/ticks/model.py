"""TickModel: an autoregressive model of trades with an exact likelihood per event.

Each trade is an event ``e_i = (dt_i, side_i, dp_i, size_i)`` (see :mod:`finar.ticks.events`)
and the stream is factorised event by event and, within an event, field by field:

.. math::  p(e_i \\mid e_{<i}) = p(dt_i \\mid h_i)\\, p(side_i \\mid h_i, dt_i)\\,
           p(dp_i \\mid h_i, dt_i, side_i)\\, p(size_i \\mid h_i, dt_i, side_i, dp_i)

with ``h_i`` the output of a causal :class:`~finar.models.wavenet.WaveNetNetwork` over the earlier
events of the session and the time of day. The heads:

- ``dt``: an explicit zero-gap class (``sigmoid``) plus a Student-t mixture
  (:class:`~finar.models.heads.StudentTMixtureHead`) over the standardised, deseasonalised log
  gap ``z = (log(dt a(tod_{i-1})) - m) / s``, with ``a`` the intraday activity profile of the
  training trades relative to its mean (known before the trade: the diurnal adjustment of
  duration models), so ``log p(dt) = log P(dt > 0) + log p(z) - log s - log dt`` (per second:
  change of variables; ``a`` cancels);
- ``side``: Bernoulli; ``dp``: categorical over the classes ``-K..K``; ``size``: categorical over
  the log-spaced size bins; the within-class tails and within-bin shares are those of the shared
  event space, so log-likelihoods compare exactly with the baselines'.

Generation runs many streams at once with WaveNet's cached step (Paine et al. 2016): every session
is cut into segments of about ``segment_events`` trades (shorter ones when few sessions are asked
for, so that ``min_streams`` streams run at once), each a stream that starts from an empty
context at its time of day (its first trade drawn from the empirical marks) and stops at the end of
its segment; segments and sessions are laid end to end.

A fitted model is written with :meth:`TickModel.save` and read back with :meth:`TickModel.load`:
the file holds only plain values and tensors (the constructor parameters, the network weights and
the fitted event space, marks, seasonality and gap scaler), read with ``torch.load(weights_only=True)``
so that loading a file from someone else cannot run code.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finar.errors import DataError, ModelFileError, NotFittedError
from finar.models.base import _plain, read_model_file, write_model_file
from finar.models.heads import StudentTMixtureHead
from finar.models.training import TrainConfig, TrainResult, seeded, train
from finar.models.wavenet import CausalConv1d, WaveNetNetwork
from finar.ticks.baselines import EmpiricalMarks
from finar.ticks.events import Events, EventSpace

__all__ = ["TickModel", "TickNetwork"]

_HARMONICS = 2  # sin/cos of the time of day at 1 and 2 cycles per session
_SEASON_BINS = 26  # intraday activity profile: 15-minute bins of a 6.5-hour session
TICK_FILE_FORMAT = "finar-tick-model"  # the marker of a TickModel.save file
TICK_FILE_VERSION = 1  # bump when the saved state changes; TickModel.load refuses newer files


class _ColumnConv(nn.Conv1d):
    """A ``Conv1d`` that computes single-column inputs ``(B, C, 1)`` with one matrix product.

    Cached generation feeds WaveNet one column at a time, where ``F.conv1d`` costs about four times
    a ``F.linear`` on CPU; the result is the same convolution (same weights, same sums).
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] == 1 and self.kernel_size[0] == 1:
            return F.linear(x[:, :, 0], self.weight[:, :, 0], self.bias)[:, :, None]
        return super().forward(x)

    def step(self, taps: Tensor) -> Tensor:  # CausalConv1d.step: (B, C, k) -> (B, C_out)
        return F.linear(taps.flatten(1), self.weight.flatten(1), self.bias)


class _CausalColumnConv(CausalConv1d):
    step = _ColumnConv.step


def _column_convs(net: nn.Module) -> None:
    """Give every convolution of ``net`` the single-column fast path of :class:`_ColumnConv`."""
    for m in net.modules():
        if type(m) is nn.Conv1d:
            m.__class__ = _ColumnConv
        elif type(m) is CausalConv1d:
            m.__class__ = _CausalColumnConv


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def _categorical(logits: Tensor, gen: torch.Generator) -> Tensor:
    """One draw per row of ``softmax(logits)`` by inverse CDF (cheaper than ``torch.multinomial``)."""
    cdf = logits.softmax(-1).double().cumsum(-1)
    u = torch.rand((len(logits), 1), generator=gen, device=logits.device, dtype=torch.float64)
    return (cdf < u * cdf[:, -1:]).sum(-1).clamp(max=logits.shape[-1] - 1)


class TickNetwork(nn.Module):
    """WaveNet trunk over event features plus one head per field (see the module docstring).

    ``trunk(x, cov)`` maps the log-gap channel ``x`` (B, T) and the other event features ``cov``
    (B, T, n_features) to ``h`` (B, T, hidden); ``h_t`` sees events ``<= t`` only and
    parameterises event ``t + 1``.
    """

    def __init__(self, n_features: int, n_dp: int, n_size: int, *, channels: int, dilations: list[int],
                 hidden: int, n_components: int, dropout: float, n_embed: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, n_embed)  # one-hot marks and time of day -> a few channels
        self.wavenet = WaveNetNetwork(hidden, residual_channels=channels, gate_channels=channels,
                                      skip_channels=channels, kernel_size=2, dilations=dilations, n_series=1,
                                      embedding_dim=1, n_covariates=n_embed, dropout=dropout)
        _column_convs(self.wavenet)
        self.time_head = StudentTMixtureHead(n_components)
        self.time_out = _mlp(hidden, hidden, 1 + self.time_head.n_params)  # zero-gap logit, mixture
        self.side_out = _mlp(hidden + 2, hidden, 1)
        self.dp_out = _mlp(hidden + 3, hidden, n_dp)
        self.size_out = _mlp(hidden + 3 + n_dp, hidden, n_size)
        self.n_dp = n_dp

    @property
    def receptive_field(self) -> int:
        return self.wavenet.receptive_field

    def trunk(self, x: Tensor, cov: Tensor) -> Tensor:
        return F.relu(self.wavenet(x, None, self.embed(cov)))

    def fields(self, h: Tensor, zero: Tensor, z: Tensor, side: Tensor, dpc: Tensor) -> tuple[Tensor, ...]:
        """Head outputs given the event's earlier fields (teacher forcing or generated values):
        time raw, side logit, dp logits, size logits."""
        t = torch.stack([zero, torch.where(zero > 0, 0.0, z)], dim=-1)
        ts = torch.cat([t, side[..., None]], dim=-1)
        return (self.time_out(h), self.side_out(torch.cat([h, t], -1))[..., 0],
                self.dp_out(torch.cat([h, ts], -1)),
                self.size_out(torch.cat([h, ts, F.one_hot(dpc, self.n_dp).to(h.dtype)], -1)))

    def log_lik(self, h: Tensor, zero: Tensor, z: Tensor, side: Tensor, dpc: Tensor, sb: Tensor) -> Tensor:
        """Per-field log-likelihoods (..., 4): time (in standardised log-gap units, without the
        Jacobian), side, dp class, size bin."""
        t_raw, s_logit, dp_logits, size_logits = self.fields(h, zero, z, side, dpc)
        l0 = t_raw[..., 0]
        cont = F.logsigmoid(-l0) + self.time_head.log_prob(t_raw[..., 1:], torch.where(zero > 0, 0.0, z))
        lt = torch.where(zero > 0, F.logsigmoid(l0), cont)
        ls = F.logsigmoid(torch.where(side > 0, s_logit, -s_logit))
        ld = dp_logits.log_softmax(-1).gather(-1, dpc[..., None])[..., 0]
        lz = size_logits.log_softmax(-1).gather(-1, sb[..., None])[..., 0]
        return torch.stack([lt, ls, ld, lz], dim=-1)


class TickModel:
    """Autoregressive generative model of trades (PROTOCOLS.md P5), exact log-likelihood per event.

    Parameters
    ----------
    channels : int, default 32
        Residual, gate and skip widths of the WaveNet trunk.
    layers : int, default 7
        Dilations ``1, 2, ..., 2**(layers-1)``: a receptive field of ``2**layers`` events.
    hidden : int, default 64
        Width of the trunk output and of the field heads.
    n_components : int, default 4
        Student-t components of the log-gap mixture.
    max_ticks : int, default 10
        Price-change classes ``-K..K`` (edge classes carry geometric tails).
    session_gap : str, default '30min'
        A pause longer than this, or a new day, starts a session.
    window : int, default 1024
        Scored events per training window (each with a full receptive field of context).
    lr, batch_size, max_epochs, patience, weight_decay : training settings
        Passed to :class:`finar.models.training.TrainConfig`.
    val_fraction : float, default 0.1
        The last windows in time are the early-stopping validation set.
    segment_events : int, default 2000
        At most about this many trades per parallel stream (see the module docstring).
    min_streams : int, default 1024
        Cut sessions into more segments (of at least ~250 trades) until this many streams run
        in parallel: the cost of a generation step hardly grows with the number of streams.
    seed : int, default 0
    device : str, default 'cpu'
    progress : bool, default False

    Notes
    -----
    ``save(path)`` writes a fitted model atomically and the class method ``TickModel.load(path)``
    reads it back (safely, with ``torch.load(weights_only=True)``); the loaded model gives the same
    ``log_prob`` and, for the same seed, the same ``sample``.

    Examples
    --------
    >>> import finar, pathlib, tempfile
    >>> t = finar.ticks.simulate(n_events=6_000, seed=0)
    >>> tm = TickModel(channels=8, layers=4, hidden=16, window=128, max_epochs=1).fit(t)
    >>> synth = tm.sample(n_events=500, seed=1)
    >>> len(synth), synth.columns.tolist()
    (500, ['price', 'size', 'side'])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     back = TickModel.load(tm.save(pathlib.Path(folder) / "tick_model.pt"))
    >>> back.log_prob(t.iloc[:1_000]).equals(tm.log_prob(t.iloc[:1_000]))
    True
    """

    def __init__(self, channels: int = 32, layers: int = 7, hidden: int = 64, n_components: int = 4,
                 max_ticks: int = 10, session_gap: str = "30min", window: int = 1024, lr: float = 3e-3,
                 batch_size: int = 4, max_epochs: int = 15, patience: int = 3, weight_decay: float = 0.01,
                 dropout: float = 0.0, val_fraction: float = 0.1, segment_events: int = 2000,
                 min_streams: int = 1024, seed: int = 0,
                 device: str = "cpu", progress: bool = False) -> None:
        self.channels = channels
        self.layers = layers
        self.hidden = hidden
        self.n_components = n_components
        self.max_ticks = max_ticks
        self.session_gap = session_gap
        self.window = window
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.val_fraction = val_fraction
        self.segment_events = segment_events
        self.min_streams = min_streams
        self.seed = seed
        self.device = device
        self.progress = progress

    # ---- features ------------------------------------------------------------------------------
    def _features(self, zero: np.ndarray, z: np.ndarray, first: np.ndarray, side: np.ndarray,
                  dpc: np.ndarray, sb: np.ndarray, tod: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network input of each event: the log-gap channel and the other features."""
        sp = self.space_
        n = len(zero)
        cov = np.zeros((n, self.n_features_), dtype=np.float32)
        cov[:, 0], cov[:, 1], cov[:, 2] = zero, first, side
        cov[np.arange(n), 3 + dpc] = 1.0
        cov[np.arange(n), 3 + sp.n_dp + sb] = 1.0
        k = 3 + sp.n_dp + sp.n_size
        cov[:, k] = tod
        for j in range(_HARMONICS):
            cov[:, k + 1 + 2 * j] = np.sin(2 * math.pi * (j + 1) * tod)
            cov[:, k + 2 + 2 * j] = np.cos(2 * math.pi * (j + 1) * tod)
        x = np.where((zero > 0) | (first > 0), 0.0, z).astype(np.float32)
        return x, cov

    def _season(self, tod: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """Intraday activity relative to the day's mean, at times of day ``tod`` (piecewise constant)."""
        n = len(self.season_)
        if isinstance(tod, Tensor):
            b = (tod * n).long().clamp(0, n - 1)
            return torch.as_tensor(self.season_, dtype=tod.dtype, device=tod.device)[b]
        return self.season_[np.clip((tod * n).astype(np.int64), 0, n - 1)]

    def _fit_season(self, ev: Events) -> None:
        """Arrivals per unit of exposure in ``_SEASON_BINS`` bins of the session, over their mean."""
        n = _SEASON_BINS
        arrivals = ev.scored & (ev.dt > 0)
        counts = np.bincount(np.clip((ev.tod[arrivals] * n).astype(np.int64), 0, n - 1), minlength=n)
        last = pd.Series(ev.tod).groupby(ev.session).max().to_numpy()  # each session covers [0, last]
        exposure = np.clip(last[:, None] - np.arange(n)[None, :] / n, 0, 1 / n).sum(0)
        rate = (counts + 0.5) / np.maximum(exposure, 1e-9)
        self.season_ = np.where(exposure > 0, rate / ((counts.sum() + 0.5 * n) / exposure.sum()), 1.0)

    def _log_gap(self, ev: Events) -> np.ndarray:
        """Log of the deseasonalised gap ``dt * season(tod of the previous trade)`` (0 where dt = 0)."""
        prev_tod = np.r_[0.0, ev.tod[:-1]]
        with np.errstate(divide="ignore"):
            return np.where(ev.dt > 0, np.log(np.where(ev.dt > 0, ev.dt, 1.0) * self._season(prev_tod)), 0.0)

    def _targets(self, ev: Events) -> dict[str, np.ndarray]:
        zero = (ev.dt == 0) & ev.scored
        z = np.where(ev.dt > 0, (self._log_gap(ev) - self.u_mean_) / self.u_std_, 0.0)
        return {"zero": zero.astype(np.float32), "z": z.astype(np.float32),
                "side": ev.side.astype(np.float32),
                "dpc": self.space_.dp_class(ev.dp), "sb": self.space_.size_bin(ev.size),
                "first": (~ev.scored).astype(np.float32), "tod": ev.tod.astype(np.float32)}

    def _padded(self, ev: Events) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Per-row arrays of all sessions, each preceded by ``R`` empty rows; also where each event
        landed and the row mask of scored events."""
        R, tg = self.receptive_field_, self._targets(ev)
        x, cov = self._features(tg["zero"], tg["z"], tg["first"], tg["side"], tg["dpc"], tg["sb"], tg["tod"])
        pad_before = R * (ev.session - ev.session[0] + 1)  # R empty rows before each session
        rows = np.arange(len(ev)) + pad_before
        n_rows = int(rows[-1]) + 1
        out = {"x": np.zeros(n_rows, np.float32), "cov": np.zeros((n_rows, self.n_features_), np.float32)}
        out["x"][rows], out["cov"][rows] = x, cov
        for key in ("zero", "z", "side"):
            out[key] = np.zeros(n_rows, np.float32)
            out[key][rows] = tg[key]
        for key in ("dpc", "sb"):
            out[key] = np.zeros(n_rows, np.int64)
            out[key][rows] = tg[key]
        scored = np.zeros(n_rows, bool)
        scored[rows] = ev.scored
        return out, rows, scored

    # ---- fit -----------------------------------------------------------------------------------
    def fit(self, trades: pd.DataFrame) -> TickModel:
        """Fit to a trades frame (``time`` index; ``price``, ``size``, optional ``side``)."""
        for name in ("channels", "layers", "hidden", "n_components", "window", "batch_size", "max_epochs",
                     "segment_events", "min_streams"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise DataError(f"{name} must be a positive integer, got {v!r}")
        self.space_ = EventSpace(self.max_ticks, self.session_gap).fit(trades)
        ev = self.space_.encode(trades)
        self.marks_ = EmpiricalMarks().fit(ev, self.space_)
        self._fit_season(ev)
        u = self._log_gap(ev)[ev.scored & (ev.dt > 0)]
        self.u_mean_, self.u_std_ = float(u.mean()), float(max(u.std(), 1e-6))
        counts = np.bincount(ev.session)
        self.events_per_session_ = float(np.median(counts)) if len(counts) > 2 else float(counts.max())
        self.last_ = (ev.index[-1], float(trades["price"].iloc[-1]))
        self.n_features_ = 3 + self.space_.n_dp + self.space_.n_size + 1 + 2 * _HARMONICS
        self._build_network()
        rows, _, scored = self._padded(ev)
        R, W = self.receptive_field_, int(self.window)
        starts = np.arange(0, max(len(scored) - R, 1), W)
        idx = np.clip(starts[:, None] + np.arange(R + W)[None, :], 0, len(scored) - 1)
        mask = scored[idx] & (starts[:, None] + np.arange(R + W)[None, :] < len(scored))
        mask[:, :R] = False  # the first R rows of a window are context only
        keep = mask.any(axis=1)
        idx, mask = idx[keep], mask[keep]
        if len(idx) < 2:
            raise DataError(f"{len(ev)} trades are too few for windows of {R} + {W} events; pass more trades "
                            "or lower layers/window")
        n_val = max(1, round(len(idx) * float(self.val_fraction)))
        tensors = [torch.tensor(rows[k][idx]) for k in ("x", "cov", "zero", "z", "side", "dpc", "sb")]
        tensors.append(torch.tensor(mask))
        train_t = [t[:-n_val] for t in tensors] if len(idx) > n_val else tensors
        val_t = [t[-n_val:] for t in tensors]

        def loss(net: TickNetwork, x: Tensor, cov: Tensor, zero: Tensor, z: Tensor, side: Tensor, dpc: Tensor,
                 sb: Tensor, m: Tensor) -> Tensor:
            h = net.trunk(x[:, :-1], cov[:, :-1])[:, R - 1:]  # output t predicts row t + 1
            ll = net.log_lik(h, zero[:, R:], z[:, R:], side[:, R:], dpc[:, R:], sb[:, R:]).sum(-1)
            m = m[:, R:]
            return -(ll * m).sum() / m.sum().clamp(min=1)

        config = TrainConfig(lr=float(self.lr), weight_decay=float(self.weight_decay),
                             batch_size=int(self.batch_size), max_epochs=int(self.max_epochs),
                             patience=int(self.patience), seed=int(self.seed),
                             warmup_steps=min(100, max(1, len(idx) // int(self.batch_size))))
        self.training_ = train(self.network_, loss, train_t, val_t, config, device=self.device,
                               progress=bool(self.progress))
        return self

    def _build_network(self) -> None:
        """A fresh ``network_`` (seeded initial weights) for the fitted event space."""
        dilations = [2 ** i for i in range(int(self.layers))]
        with seeded(int(self.seed)):
            self.network_ = TickNetwork(self.n_features_, self.space_.n_dp, self.space_.n_size,
                                        channels=int(self.channels), dilations=dilations,
                                        hidden=int(self.hidden),
                                        n_components=int(self.n_components), dropout=float(self.dropout))
        self.receptive_field_ = self.network_.receptive_field

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "network_"):
            raise NotFittedError(f"TickModel.{what} needs fit first")

    # ---- likelihood ------------------------------------------------------------------------------
    @torch.no_grad()
    def log_prob(self, trades: pd.DataFrame) -> pd.DataFrame:
        """Per-trade log-likelihood ``log p(e_i | e_<i)`` in nats, columns ``time side dp size total``.

        NaN for the first trade of each session (conditioned on). Units as in
        :mod:`finar.ticks.events`: the time term is per second (zero gaps: a probability).
        """
        self._check_fitted("log_prob")
        ev = self.space_.encode(trades)
        rows, where, scored = self._padded(ev)
        net, dev = self.network_.eval(), self.device
        R = self.receptive_field_
        out = np.full((len(scored), 4), np.nan)
        bounds = np.r_[np.flatnonzero(np.diff(ev.session)) + 1, len(ev)]
        lo = 0
        for hi in bounds:  # one session at a time: its rows are [where[lo] - R, where[hi - 1]]
            a, b = int(where[lo]) - R, int(where[hi - 1]) + 1
            lo = hi
            if b - a <= R + 1:
                continue
            t = {k: torch.tensor(v[a:b], device=dev)[None] for k, v in rows.items()}
            h = net.trunk(t["x"][:, :-1], t["cov"][:, :-1])[:, R - 1:]
            ll = net.log_lik(h, t["zero"][:, R:], t["z"][:, R:], t["side"][:, R:], t["dpc"][:, R:],
                             t["sb"][:, R:])[0]
            out[a + R:b] = ll.double().cpu().numpy()
        ll = out[where]
        pos = ev.scored & (ev.dt > 0)
        # z = (log(dt s) - m) / sd with s the seasonal factor: p(dt) = p(z) / (sd dt), s cancels
        ll[pos, 0] -= math.log(self.u_std_) + np.log(ev.dt[pos])
        in_dp, in_size = self.space_.log_mark(ev.dp, ev.size)
        ll[:, 2] += in_dp
        ll[:, 3] += in_size
        frame = pd.DataFrame(ll, index=ev.index, columns=["time", "side", "dp", "size"])
        frame["total"] = frame.sum(axis=1)
        frame[~ev.scored] = np.nan
        return frame

    def loglik_per_event(self, trades: pd.DataFrame) -> float:
        """Mean of :meth:`log_prob`'s ``total`` over scored trades (nats per event)."""
        return float(self.log_prob(trades)["total"].mean())

    # ---- generation ------------------------------------------------------------------------------
    @torch.no_grad()
    def _streams(self, starts: np.ndarray, ends: np.ndarray, gen: torch.Generator,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Generate one stream per segment ``[starts, ends)`` (times of day).

        Returns flat arrays of the kept trades, stream by stream and in time order within each:
        ``stream``, ``tod``, ``zero``, ``side``, ``dpc`` (price-change class), ``sb`` (size bin).
        Finished streams leave the batch once half of it is done, so the longest streams do not
        keep the others computing.
        """
        net, dev, R = self.network_.eval(), self.device, self.receptive_field_
        B, L = len(starts), self.space_.session_length_
        side0, dpc0, sb0 = self.marks_.draw(B, self.space_, rng)
        first_x, first_cov = self._features(np.zeros(B), np.zeros(B), np.ones(B), side0, dpc0, sb0, starts)
        # R empty rows, as before every session in training, are the same for all streams: run
        # them once, copy the queues, then feed each stream's first trade
        empty = torch.zeros((1, R, self.n_features_), device=dev)
        _, queues = net.wavenet.start_cache(torch.zeros((1, R), device=dev), None, net.embed(empty))
        queues = [[buf.expand(B, -1, -1).contiguous(), pos] for buf, pos in queues]
        raw = net.wavenet.step(queues, torch.tensor(first_x, device=dev), None,
                               net.embed(torch.tensor(first_cov, device=dev)))
        tod = torch.tensor(starts, dtype=torch.float64, device=dev)
        end = torch.tensor(ends, dtype=torch.float64, device=dev)
        ids = torch.arange(B, device=dev)  # the stream of each row of the batch
        k = 3 + self.space_.n_dp + self.space_.n_size
        max_steps = int(3 * self.events_per_session_ * float(np.max(ends - starts)) + 200)
        rec: dict[str, list[Tensor]] = {
            "stream": [ids], "tod": [tod.clone()], "zero": [torch.zeros(B, device=dev)],
            "side": [torch.tensor(side0, device=dev, dtype=torch.float32)],
            "dpc": [torch.tensor(dpc0, device=dev)], "sb": [torch.tensor(sb0, device=dev)],
            "keep": [torch.ones(B, dtype=torch.bool, device=dev)]}
        alive = torch.ones(B, dtype=torch.bool, device=dev)
        for _ in range(max_steps):
            n = len(ids)
            h = F.relu(raw)
            t_raw = net.time_out(h)
            zero = (torch.rand(n, generator=gen, device=dev) < torch.sigmoid(t_raw[:, 0])).float()
            z = net.time_head.sample(t_raw[:, 1:], gen)
            u = (self.u_mean_ + self.u_std_ * z.double()).clamp(max=math.log(10 * L))
            dt = torch.where(zero > 0, 0.0, torch.exp(u) / self._season(tod))
            zt = torch.stack([zero, torch.where(zero > 0, 0.0, z)], -1)
            s_logit = net.side_out(torch.cat([h, zt], -1))[:, 0]
            side = torch.where(torch.rand(n, generator=gen, device=dev) < torch.sigmoid(s_logit), 1.0, -1.0)
            ts = torch.cat([zt, side[:, None]], -1)
            dpc = _categorical(net.dp_out(torch.cat([h, ts], -1)), gen)
            size_in = torch.cat([h, ts, F.one_hot(dpc, self.space_.n_dp).float()], -1)
            sb = _categorical(net.size_out(size_in), gen)
            tod = tod + dt / L
            alive = alive & (tod < end)
            for key, v in (("stream", ids), ("tod", tod), ("zero", zero), ("side", side), ("dpc", dpc),
                           ("sb", sb), ("keep", alive)):
                rec[key].append(v)
            if not bool(alive.any()):
                break
            if 2 * int(alive.sum()) < n:  # drop finished streams from the batch
                rows = alive.nonzero()[:, 0]
                ids, tod, end, alive, z = ids[rows], tod[rows], end[rows], alive[rows], z[rows]
                zero, side, dpc, sb, raw = zero[rows], side[rows], dpc[rows], sb[rows], raw[rows]
                queues = [[buf[rows], pos] for buf, pos in queues]
                n = len(ids)
            cov = torch.zeros((n, self.n_features_), device=dev)
            cov[:, 0], cov[:, 2] = zero, side
            rows_n = torch.arange(n, device=dev)
            cov[rows_n, 3 + dpc] = 1.0
            cov[rows_n, 3 + self.space_.n_dp + sb] = 1.0
            tf = tod.float()
            cov[:, k] = tf
            for j in range(_HARMONICS):
                cov[:, k + 1 + 2 * j] = torch.sin(2 * math.pi * (j + 1) * tf)
                cov[:, k + 2 + 2 * j] = torch.cos(2 * math.pi * (j + 1) * tf)
            raw = net.wavenet.step(queues, torch.where(zero > 0, 0.0, z), None, net.embed(cov))
        out = {key: torch.cat(v).cpu().numpy() for key, v in rec.items()}
        keep = out.pop("keep")
        order = np.argsort(out["stream"][keep], kind="stable")  # steps were appended in time order
        return {key: v[keep][order] for key, v in out.items()}

    def sample(self, n_events: int = 100_000, seed: int | None = None) -> pd.DataFrame:
        """``n_events`` synthetic trades (``time`` index; ``price``, ``size``, ``side``).

        Whole sessions on the business days after the fitted data, generated as parallel segments
        (see the module docstring), the last session cut to ``n_events``. The same ``seed`` gives the
        same trades; torch's and numpy's global RNGs are not touched.
        """
        self._check_fitted("sample")
        if isinstance(n_events, bool) or not isinstance(n_events, int | np.integer) or n_events < 1:
            raise DataError(f"n_events must be a positive integer, got {n_events!r}")
        rng = np.random.default_rng(seed)
        gen = torch.Generator(device=self.device).manual_seed(int(rng.integers(2**62)))
        parts: list[pd.DataFrame] = []
        total, session0, rate = 0, 0, max(self.events_per_session_, 1.0)
        covered = 0.0  # sessions generated so far (segments / segments per session)
        while total < n_events:
            n_sessions = max(1, math.ceil((n_events - total) / rate * 1.05))
            per = max(round(rate / int(self.segment_events)), math.ceil(int(self.min_streams) / n_sessions))
            per = max(1, min(per, int(rate // 250)))  # streams of at least ~250 trades
            # only the segments needed: the last session is cut at n_events anyway
            n_seg = min(per * n_sessions, math.ceil((n_events - total) / (rate / per) * 1.05) + 1)
            edges = np.linspace(0, 1, per + 1)
            starts, ends = np.tile(edges[:-1], n_sessions)[:n_seg], np.tile(edges[1:], n_sessions)[:n_seg]
            g = self._streams(starts, ends, gen, rng)
            dp, size = self.space_.draw_marks(g["dpc"], g["sb"], rng)
            parts.append(pd.DataFrame({"secs": g["tod"] * self.space_.session_length_, "side": g["side"],
                                       "dp": dp, "size": size, "session": session0 + g["stream"] // per}))
            total += len(g["tod"])
            session0 += math.ceil(n_seg / per)
            covered += n_seg / per
            rate = max(total / covered, 1.0)  # events per session the model actually generates
        ev = pd.concat(parts, ignore_index=True).iloc[:n_events]
        return self.space_.decode(ev["secs"].to_numpy(), ev["side"].to_numpy(), ev["dp"].to_numpy(),
                                  ev["size"].to_numpy(), ev["session"].to_numpy(), *self.last_)

    # ---- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to ``path`` atomically; read it back with :meth:`load`."""
        self._check_fitted("save")
        params = {name: getattr(self, name) for name in inspect.signature(TickModel.__init__).parameters
                  if name != "self"}
        return write_model_file(path, {"params": _plain(params), "state": self._get_state()},
                                fmt=TICK_FILE_FORMAT, version=TICK_FILE_VERSION)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | None = None) -> TickModel:
        """Read a model written by :meth:`save` (``torch.load(weights_only=True)``: no code runs).

        ``device`` overrides the saved one (e.g. ``"cpu"`` for a model fitted on a GPU).

        Raises
        ------
        ModelFileError
            If the file is missing, corrupted, not a finar tick model, or from a newer file version.
        """
        payload = read_model_file(path, fmt=TICK_FILE_FORMAT, version=TICK_FILE_VERSION,
                                  what="finar tick model")
        try:
            model = cls(**payload["params"])
            if device is not None:
                model.device = device
            model._set_state(payload["state"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: weight shapes
            raise ModelFileError(f"{str(path)!r}: tick model state is damaged: {exc}") from exc
        return model

    def _get_state(self) -> dict[str, Any]:
        """Learned state as plain values and tensors: everything ``log_prob`` and ``sample`` read."""
        sp, marks = self.space_, self.marks_
        return _plain({
            "network": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
            "space": {"tick": sp.tick_, "session_length": sp.session_length_,
                      "session_open_ns": sp.session_open_.value,
                      "tz": None if sp.tz_ is None else str(sp.tz_),
                      "tail_ratio": sp.tail_ratio_, "integer_sizes": sp.integer_sizes_,
                      "size_edges": sp.size_edges_, "tail_alpha": sp.tail_alpha_},
            "marks": {"p_zero": marks.p_zero_, "p_buy": marks.p_buy_, "log_dp": marks.log_dp_,
                      "log_size": marks.log_size_},
            "season": self.season_, "u_mean": self.u_mean_, "u_std": self.u_std_,
            "events_per_session": self.events_per_session_,
            "last_time_ns": self.last_[0].value, "last_price": self.last_[1],  # UTC ns for aware stamps
            "n_features": self.n_features_, "training": dataclasses.asdict(self.training_)})

    def _set_state(self, state: dict[str, Any]) -> None:
        sp = state["space"]
        self.space_ = EventSpace(self.max_ticks, self.session_gap)
        self.space_.tick_, self.space_.session_length_ = float(sp["tick"]), float(sp["session_length"])
        self.space_.session_open_ = pd.Timedelta(int(sp["session_open_ns"]), unit="ns")
        self.space_.tz_ = None if sp["tz"] is None else pd.Timestamp(0, tz=sp["tz"]).tz
        self.space_.tail_ratio_, self.space_.tail_alpha_ = float(sp["tail_ratio"]), float(sp["tail_alpha"])
        self.space_.integer_sizes_ = bool(sp["integer_sizes"])
        self.space_.size_edges_ = np.asarray(sp["size_edges"], dtype=float)
        m = state["marks"]
        self.marks_ = EmpiricalMarks()
        self.marks_.p_zero_, self.marks_.p_buy_ = float(m["p_zero"]), float(m["p_buy"])
        self.marks_.log_dp_ = np.asarray(m["log_dp"], dtype=float)
        self.marks_.log_size_ = np.asarray(m["log_size"], dtype=float)
        self.season_ = np.asarray(state["season"], dtype=float)
        self.u_mean_, self.u_std_ = float(state["u_mean"]), float(state["u_std"])
        self.events_per_session_ = float(state["events_per_session"])
        last = pd.Timestamp(int(state["last_time_ns"]), unit="ns")
        if self.space_.tz_ is not None:
            last = last.tz_localize("UTC").tz_convert(self.space_.tz_)
        self.last_ = (last, float(state["last_price"]))
        self.n_features_ = int(state["n_features"])
        self._build_network()
        self.network_.load_state_dict(state["network"])
        self.network_.to(self.device).eval()
        self.training_ = TrainResult(**state["training"])

    def __repr__(self) -> str:
        keys = ("channels", "layers", "hidden", "n_components", "max_epochs", "seed")
        return "TickModel(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in keys) + ")"

