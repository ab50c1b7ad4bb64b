"""TickModel: an autoregressive model of trades with an exact likelihood per event.

Each trade is an event ``e_i = (dt_i, side_i, dp_i, size_i)`` (see :mod:`finar.ticks.events`)
and the stream is factorised event by event and, within an event, field by field:

.. math::  p(e_i \\mid e_{<i}) = p(dt_i \\mid h_i)\\, p(side_i \\mid h_i, dt_i)\\,
           p(dp_i \\mid h_i, dt_i, side_i)\\, p(size_i \\mid h_i, dt_i, side_i, dp_i)

with ``h_i`` the output of a causal :class:`~finar.models.wavenet.WaveNetNetwork` over the earlier
events of the session. Each event enters it with its fields and with what a trader knows at
that moment, so that the model conditions on the clock and on recent activity:

- **the clock**: the intraday activity profile ``a(c)`` at the trade's wall-clock time ``c``
  (arrivals per unit of exposure in 15-minute bins of the 24-hour day, shrunk towards the mean
  rate where little was seen, over that mean). A bin traded in fewer than three sessions takes
  the value of the nearest bin traded in three or more, and the profile is flat when there is
  none: with one or two days of data, the clock cannot be told apart from the day (on P5's
  E-mini stream a holiday morning and a busy one share the same clock times);
- **the activity level** of the session, a mean gap ``g_i = (w_i + c g_0) / (A_T(t_i) + c)``:
  trades counted with exponential decay over ``T`` = 10,000 seconds,
  ``A_T(t_i) = sum_{j <= i} exp(-(t_i - t_j) / T)``, over the session's exposure ``w_i`` (its
  seconds since the first trade, each weighted by the activity profile ``a(c)`` and decayed like
  ``A_T``; with a flat profile ``w_i = T (1 - exp(-e_i / T))`` after ``e_i`` seconds), shrunk
  towards the training mean gap ``g_0`` by ``c = 10`` pseudo-trades and kept within the range of
  levels seen in training: a deseasonalised level, so that it moves with the session's activity
  beyond the clock's profile only.
  It remembers the state of the session (a quiet overnight, a busy day session) and is the
  **anchor of the time head**: gaps are modelled *relative to it* (below), so that a generated
  stream keeps the level it starts from and changes it only as slowly as ``A_T`` moves;
- **recent activity** relative to that level: trades counted with decay over 1, 10, 100 and 1,000
  seconds against those the level gives, ``log(1 + A_tau) - log(1 + tau / g)`` (bursts and
  lulls), and ``log g`` itself. Fed absolute counts instead, the network learned from P5's one busy
  morning a feedback from counts to rates that, trade by trade in free generation, ran a stream
  up to the busiest minutes of training or down to overnight levels (from twice to three times
  the real rate, or a quarter of it to a twentieth, by the features, the training seed and the
  generation seed). With the level, two generation seeds kept 85-90% of the real rate. These
  choices were made by fitting on the first 80% of P5's E-mini training trades and generating
  the last 20% (the held-out 30% not used);
- **long memory** of trade signs and of price moves: exponentially weighted means of ``side``
  and of ``dp != 0`` with half-lives of 16, 256 and 4,096 trades, and **the directions of the last
  two price changes** (:func:`~finar.ticks.events.activity_memory`), clipped to their training
  range: beyond it the network has never seen what follows, and generated trades would run away
  with them. The field heads read the last two directions directly, beside the previous event's
  fields: whether the last move reversed the one before it (a bid-ask bounce) or continued it (the
  mid-price moved) sets the next one. Real E-mini prices rarely move twice in a row (after a
  continuation, the next change continues in 4% of cases on the last 20% of P5's training
  trades); without these inputs (and the level above) generated prices did so in 12-15%, trended,
  and their 1-minute returns were 1.5 to 2.4 times as volatile as real ones; with them, 2-5%.

The heads read the trunk's output and, directly, the previous event's fields and the directions
of the last two price changes (the Markov structure of marks, such as the bid-ask bounce, is then
a lookup):

- ``dt``: an explicit zero-gap class (sweeps: trades sharing a timestamp) plus a Student-t
  mixture (:class:`~finar.models.heads.StudentTMixtureHead`) over the standardised,
  deseasonalised log gap against the previous trade's level, ``z = (log(dt a(c_{i-1}) /
  g_{i-1}) - m) / s``, so ``log p(dt) = log P(dt > 0) + log p(z) - log s - log dt`` (per second;
  ``a`` and ``g``, known before the trade, cancel);
- ``side``: Bernoulli; ``dp``: categorical over the classes ``-K..K``; ``size``: categorical over
  the size bins; the within-class tails and within-bin shares are those of the shared event
  space, so log-likelihoods compare exactly with the baselines';
- **tick-rule sides**: when every training side is the one the tick rule gives (files without a
  side column, such as P5's E-mini trades), a side is a function of the price change and the
  previous side. The price-change head then gives zero probability to the classes that
  contradict it (a new side needs a price change in its direction; the same side, no change or
  one in its direction) and renormalises: generated sides and prices stay consistent and the
  likelihood stays exact.

**The size head's biases at their maximum likelihood** (``refit_size_bias``, the default). After
training, the output biases of the size head are set to their maximum-likelihood values on the
fitted trades, the rest of the network fixed (:func:`bias_shift`: a concave problem, solved by
Newton's method); the mean predicted probability of every size bin then equals its share of the
fitted trades. Stochastic training stops short of it: on P5's E-mini training trades the trained
size head gave a trade of one lot a mean probability of 0.488 against its share of 0.500
(teacher-forced, on the fitted trades themselves), too little in every two-hour block of them,
and streams generated from it carried the bias into the held-out hours (a size-one share of 0.474).
Only the size head's biases move, so the likelihood stays exact and model files keep their
layout. Chosen on the training span (fitted on its first 80%, scored on its last 20%, two
training seeds): refitting the biases of all four heads raised the size term there for both seeds
(by 0.0004 and 0.0007 nats per trade) and left the others within 0.0001, either way, so only the
size head's are refitted. One shift fits the whole span's mix of regimes: refitted on P5's whole
E-mini training span, whose overnight hours move the price more often than its day session (6.7%
of trades against 4.5%), the price head's shift raised every move's probability, and the generated
day session moved its price more often and traded faster (a discriminator AUROC of 0.79 on the
held-out trades, against 0.72 with the size head's refit alone).

**Generation continues the fitted data.** The session of the last fitted trade goes on from that
trade, with its context (the last ``R`` events and the activity memory), until the close of the
trading hours seen in training (the latest session close on the clock); further sessions open at
the earliest training open on the following business days, from an empty context as in training
(the first trade drawn from the empirical marks), all of them at once, one stream per session,
with WaveNet's cached step (Paine et al. 2016).

**A mixture of networks** (``members=K``): ``K`` networks fitted from the seeds ``seed, seed + 1,
...`` (member ``k`` is, bit for bit, the network of a single TickModel with seed ``seed + k``) share
the features above and are mixed event by event with equal weights,

.. math::  p(e_i \\mid e_{<i}) = \\frac{1}{K} \\sum_k p_k(e_i \\mid e_{<i}),

an exact density in the same units. Its per-field terms are the chain rule of the mixture (a
field's term is read against the members' posterior weights given the event's earlier fields),
so they still sum to the total. Generation draws each trade from one member picked at random,
and every member then reads it: the stream is one stream of the mixture, not a stream of one
member. Seeds of one network disagree most where the data say little (free generation amplifies
it), and the mixture averages those disagreements out; fitting and generation cost ``K`` times
a single network's.

TickModel follows the event-model contract (:class:`finar.ticks.contract.EventModel`) and the
training template of the daily networks: windows of ``R + window`` events cut by
:func:`finar.models.neural.window_starts`, one :class:`~finar.models.training.TrainConfig`
(``train=``) with the one warm-up rule, :func:`finar.models.training.train`. A fitted model is
written with ``save`` and read back with :func:`finar.models.load`: the file holds only plain
values and tensors, read with ``torch.load(weights_only=True)`` so that loading a file from
someone else cannot run code.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finar._estimator import check_device, check_int, check_number, check_seed, plain, register
from finar.errors import DataError, ModelFileError
from finar.models.heads import StudentTMixtureHead
from finar.models.neural import stack_windows, window_starts
from finar.models.training import (
    TRAIN_DEFAULTS,
    TrainConfig,
    TrainResult,
    as_config,
    seeded,
    split_tensors,
    train,
)
from finar.models.wavenet import Queues, WaveNetConfig, WaveNetNetwork
from finar.ticks.baselines import EmpiricalMarks
from finar.ticks.contract import EventModel
from finar.ticks.events import (
    ACTIVITY_SECONDS,
    HALF_LIVES,
    N_MEMORY,
    N_MOVES,
    Events,
    EventSpace,
    activity_memory,
    activity_profile,
    follows_tick_rule,
    local_seconds,
)

__all__ = ["TickModel", "TickNetwork"]

_DAY = 86_400.0
#: pseudo-trades at the training mean gap that the session's activity level starts from
LEVEL_PRIOR = 10.0


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def _member_picker(k: int, n: int, gen: torch.Generator) -> Any:
    """For ``n`` rows, one member of ``k`` each at random (equal weights): a function that takes the
    members' outputs (``k`` tensors of ``n`` rows) and returns each row's from its member. With one
    member it draws nothing, so a single network's streams are those it always gave."""
    if k == 1:
        return lambda outs: outs[0]
    member = torch.randint(k, (n,), generator=gen, device=gen.device)
    rows = torch.arange(n, device=gen.device)
    return lambda outs: torch.stack(outs)[member, rows]


def _categorical(logits: Tensor, gen: torch.Generator) -> Tensor:
    """One draw per row of ``softmax(logits)`` by inverse CDF (cheaper than ``torch.multinomial``)."""
    cdf = logits.softmax(-1).double().cumsum(-1)
    u = torch.rand((len(logits), 1), generator=gen, device=logits.device, dtype=torch.float64)
    return (cdf < u * cdf[:, -1:]).sum(-1).clamp(max=logits.shape[-1] - 1)


def bias_shift(logits: Tensor, target: Tensor) -> Tensor:
    """The shift ``d`` of a categorical head's output biases that maximises the log-likelihood of
    the events the logits were computed on, the rest of the network fixed: at the maximum, the
    head's mean predicted probability of every class equals the class's share of the events.

    Classes no event falls in keep their bias, and the likelihood maximised is that of the class
    among the classes seen, ``sum_i log softmax_seen(logits_i + d)[target_i]``: with a class never
    seen the full likelihood has no maximum (it keeps rising as that class's probability falls to
    zero). It is concave in ``d`` and unchanged when every seen class's shift moves by the same
    amount; the shift returned has a zero mean over the events. ``logits`` (N, K) (``-inf`` for
    impossible classes), ``target`` (N,) class indices; float64, Newton's method with step halving,
    so the likelihood never falls.
    """
    x, y = logits.double(), target.long()
    k = x.shape[-1]
    counts = torch.bincount(y, minlength=k).double()
    free = (counts > 0).nonzero()[:, 0]
    d = torch.zeros(k, dtype=torch.float64, device=x.device)
    if len(free) < 2:  # one class only: nothing to match
        return d
    xf, n = x[:, free], counts[free]
    yf = torch.searchsorted(free, y)  # the target's position among the seen classes
    w = n / n.sum()

    def loglik(df: Tensor) -> Tensor:
        return (xf + df).log_softmax(-1).gather(-1, yf[:, None]).sum()

    df = torch.zeros(len(free), dtype=torch.float64, device=x.device)
    best = loglik(df)
    eye = torch.eye(len(free), dtype=torch.float64, device=x.device)
    for _ in range(50):
        p = (xf + df).softmax(-1)
        grad = n - p.sum(0)
        if float(grad.abs().max()) <= 1e-9 * len(x):
            break
        hess = torch.diag(p.sum(0)) - p.T @ p  # minus the Hessian: positive semi-definite
        step = torch.linalg.solve(hess + 1e-9 * len(x) * eye, grad)
        step = step - (w * step).sum()  # the likelihood does not see a common move
        for _ in range(30):
            value = loglik(df + step)
            if value >= best:
                df, best = df + step, value
                break
            step = step / 2
        else:
            break
    d[free] = df
    return d


def mixture_fields(ll: list[Tensor]) -> Tensor:
    """Per-field log-likelihoods ``(..., 4)`` of the equal-weight mixture of the members' ``ll[k]``.

    ``p(e) = (1/K) sum_k p_k(e)`` factorised field by field with the chain rule: the term of field
    ``j`` is ``log p(f_j | f_<j) = L_j - L_{j-1}`` with ``L_j = logsumexp_k(sum_{i <= j} ll[k]_i) - log K``,
    so that the fields sum to the mixture's exact ``log p(e)`` (each field is read against the
    members' posterior weights given the fields before it).
    """
    if len(ll) == 1:
        return ll[0]
    joint = torch.logsumexp(torch.stack(ll).cumsum(-1), dim=0) - math.log(len(ll))  # L_j: (..., 4)
    return torch.diff(joint, dim=-1, prepend=torch.zeros_like(joint[..., :1]))


class TickNetwork(nn.Module):
    """WaveNet trunk over event features plus one head per field (see the module docstring).

    ``trunk(x, cov)`` maps the log-gap channel ``x`` (B, T) and the other event features ``cov``
    (B, T, n_features) to ``h`` (B, T, hidden); ``h_t`` sees events ``<= t`` only and
    parameterises event ``t + 1``. The heads also read the previous event's own fields and the
    last ``n_moves`` columns of its features (the directions of the last price changes) directly
    (``prev``: its row of ``cov``), so that the Markov structure of marks (the bid-ask bounce) is
    a lookup rather than something the trunk must carry. With ``tick_rule`` the price-change
    classes that contradict the side and the previous side are masked out.
    """

    def __init__(self, n_features: int, n_dp: int, n_size: int, *, channels: int, layers: int,
                 hidden: int, n_components: int, dropout: float, tick_rule: bool = False,
                 n_embed: int = 16, n_moves: int = 0) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, n_embed)  # marks, clock and memory -> a few channels
        # cached generation feeds it one column at a time: WaveNet's step is matrix products
        self.wavenet = WaveNetNetwork(WaveNetConfig(channels, channels, channels, kernel_size=2,
                                                    layers_per_cycle=layers, dropout=dropout),
                                      hidden, n_covariates=n_embed)
        # the previous event's zero flag, start flag, side, dp, size, and the last n_moves columns of
        # its features (the directions of the last price changes)
        self.n_fields, self.n_moves = 3 + n_dp + n_size, int(n_moves)
        self.n_prev = self.n_fields + self.n_moves
        k = hidden + self.n_prev
        self.time_head = StudentTMixtureHead(n_components)
        self.time_out = _mlp(k, hidden, 1 + self.time_head.n_params)  # zero-gap logit, mixture
        self.side_out = _mlp(k + 2, hidden, 1)
        self.dp_out = _mlp(k + 3, hidden, n_dp)
        self.size_out = _mlp(k + 3 + n_dp, hidden, n_size)
        self.n_dp, self.tick_rule = n_dp, bool(tick_rule)
        self.register_buffer("dp_sign", torch.sign(torch.arange(n_dp) - (n_dp - 1) // 2), persistent=False)

    @property
    def receptive_field(self) -> int:
        return self.wavenet.receptive_field

    def trunk(self, x: Tensor, cov: Tensor) -> Tensor:
        return F.relu(self.wavenet(x, None, self.embed(cov)))

    def with_prev(self, h: Tensor, prev: Tensor) -> Tensor:
        """The heads' input: trunk output and the previous event's fields, ``(..., hidden + n_prev)``."""
        moves = prev[..., prev.shape[-1] - self.n_moves:]
        return torch.cat([h, prev[..., :self.n_fields], moves], -1)

    def dp_logits(self, hp: Tensor, ts: Tensor, side: Tensor, prev_side: Tensor) -> Tensor:
        """Price-change logits; with ``tick_rule``, ``-inf`` where the class contradicts the sides
        (nothing is masked after an unknown previous side, ``prev_side == 0``)."""
        logits = self.dp_out(torch.cat([hp, ts], -1))
        if not self.tick_rule:
            return logits
        s, p, c = side[..., None], prev_side[..., None], self.dp_sign
        ok = (p == 0) | (c == s) | ((c == 0) & (s == p))
        return logits.masked_fill(~ok, -math.inf)

    def heads(self, h: Tensor, zero: Tensor, z: Tensor, side: Tensor, dpc: Tensor, prev: Tensor
              ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The heads' outputs for events whose fields are known (teacher forcing): the time head's
        raw output (its first column the zero-gap logit), the side logit, the price-change logits
        (masked under the tick rule) and the size logits; ``prev`` is the previous event's row of
        features."""
        t = torch.stack([zero, torch.where(zero > 0, 0.0, z)], dim=-1)
        ts = torch.cat([t, side[..., None]], dim=-1)
        h = self.with_prev(h, prev)
        t_raw = self.time_out(h)
        s_logit = self.side_out(torch.cat([h, t], -1))[..., 0]
        dp_logits = self.dp_logits(h, ts, side, prev[..., 2])
        size_logits = self.size_out(torch.cat([h, ts, F.one_hot(dpc, self.n_dp).to(h.dtype)], -1))
        return t_raw, s_logit, dp_logits, size_logits

    def log_lik(self, h: Tensor, zero: Tensor, z: Tensor, side: Tensor, dpc: Tensor, sb: Tensor,
                prev: Tensor) -> Tensor:
        """Per-field log-likelihoods (..., 4): time (in standardised log-gap units, without the
        Jacobian), side, dp class, size bin; ``prev`` is the previous event's row of features."""
        t_raw, s_logit, dp_logits, size_logits = self.heads(h, zero, z, side, dpc, prev)
        z = torch.where(zero > 0, 0.0, z)
        cont = F.logsigmoid(-t_raw[..., 0]) + self.time_head.log_prob(t_raw[..., 1:], z)
        lt = torch.where(zero > 0, F.logsigmoid(t_raw[..., 0]), cont)
        ls = F.logsigmoid(torch.where(side > 0, s_logit, -s_logit))
        ld = dp_logits.log_softmax(-1).gather(-1, dpc[..., None])[..., 0]
        lz = size_logits.log_softmax(-1).gather(-1, sb[..., None])[..., 0]
        return torch.stack([lt, ls, ld, lz], dim=-1)


@register("tickmodel")
class TickModel(EventModel):
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
    dropout : float, default 0.0
    members : int, default 1
        Networks mixed event by event with equal weights (see the module docstring), fitted from
        the seeds ``train.seed + k``; 1 is a single network.
    refit_size_bias : bool, default True
        After training, set the size head's output biases to their maximum-likelihood values on
        the fitted trades, the rest of the network fixed (:func:`bias_shift`; see the module
        docstring).
    train : TrainConfig or mapping, optional
        Training settings (:class:`~finar.models.training.TrainConfig`); ``window`` is the scored
        events per training window (each after a full receptive field of context) and the last
        ``val_fraction`` of the windows in time validate. Defaults: lr 3e-3, batch_size 4,
        max_epochs 30, patience 10, window 1024, val_fraction 0.1; a mapping changes only the
        settings it names.
    device : str, default 'cpu'
    progress : bool, default False

    Attributes
    ----------
    tick_rule_ : bool
        Whether the training sides are those of the tick rule (then generated sides are too).
    hours_ : tuple of float
        Earliest session open and latest session close on the training clock (fractions of a day).
    networks_ : list of TickNetwork
        The fitted networks, one per member; ``network_`` is the first.
    trainings_ : list of TrainResult
        Their training histories; ``training_`` is the first's.

    Notes
    -----
    ``save(path)`` writes a fitted model atomically and :func:`finar.models.load` (or
    ``TickModel.load``) reads it back safely, with ``torch.load(weights_only=True)``; the loaded
    model gives the same ``log_prob`` and, for the same seed, the same ``sample``.

    Examples
    --------
    >>> import finar, pathlib, tempfile
    >>> t = finar.ticks.simulate(n_events=6_000, seed=0)
    >>> tm = TickModel(channels=8, layers=4, hidden=16, train={"window": 128, "max_epochs": 1}).fit(t)
    >>> synth = tm.sample(n_events=500, seed=1)
    >>> len(synth), synth.columns.tolist()
    (500, ['price', 'size', 'side'])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     back = finar.models.load(tm.save(pathlib.Path(folder) / "tick_model.pt"))
    >>> back.log_prob(t.iloc[:1_000]).equals(tm.log_prob(t.iloc[:1_000]))
    True
    """

    # patience 10: the validation loss is noisy from epoch to epoch, and with 3 some seeds stopped
    # at epoch 9-12, half trained (chosen on P5's E-mini training span, held-out trades unread)
    default_train = dataclasses.replace(TRAIN_DEFAULTS, lr=3e-3, batch_size=4, max_epochs=30, patience=10,
                                        window=1024, val_fraction=0.1)

    #: files written before ``members`` existed hold one network, and those written before
    #: ``refit_size_bias`` were fitted without it (see finar._estimator.rebuild)
    _added_params: ClassVar[dict[str, Any]] = {"members": 1, "refit_size_bias": False}

    def __init__(self, channels: int = 32, layers: int = 7, hidden: int = 64, n_components: int = 4,
                 max_ticks: int = 10, session_gap: str = "30min", dropout: float = 0.0, members: int = 1,
                 refit_size_bias: bool = True, train: TrainConfig | Mapping[str, Any] | None = default_train,
                 device: str = "cpu", progress: bool = False) -> None:
        self.channels = channels
        self.layers = layers
        self.hidden = hidden
        self.n_components = n_components
        self.max_ticks = max_ticks
        self.session_gap = session_gap
        self.dropout = dropout
        self.members = members
        self.refit_size_bias = refit_size_bias
        # a TrainConfig always (a mapping changes the defaults it names): see WaveNet.__init__
        self.train = as_config(train, self.default_train, "TickModel.train")
        self.device = device
        self.progress = progress

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | None = None) -> TickModel:
        """Read a model written by ``save``: :func:`finar.models.load`, checked to be a TickModel.

        Raises
        ------
        ModelFileError
            If the file is missing, corrupted, not a finar model file, from a newer file version,
            or holds another model.
        """
        from finar._estimator import load

        model = load(path, device=device)
        if not isinstance(model, cls):
            raise ModelFileError(f"{str(path)!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def _train_config(self) -> TrainConfig:
        return as_config(self.train, self.default_train, "TickModel.train")

    # ---- the clock and the features --------------------------------------------------------------
    def _log_season(self, clock: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """``log a(c)`` at clock times ``c`` (fractions of a day)."""
        n = len(self.log_season_)
        if isinstance(clock, Tensor):
            table = self._tables(clock.device)["log_season"]
            return table[(clock * n).long().clamp(0, n - 1)].to(clock.dtype)
        return self.log_season_[np.clip((clock * n).astype(np.int64), 0, n - 1)]

    def _tables(self, device: str | torch.device) -> dict[str, Tensor]:
        """The fitted profile and memory scaler as float64 tensors on ``device`` (made once)."""
        names = ("log_season", "mem_mean", "mem_std", "mem_lo", "mem_hi")
        key = (str(device), *(id(getattr(self, k + "_")) for k in names))
        if getattr(self, "_cache", (None,))[0] != key:
            f64 = {"dtype": torch.float64, "device": device}
            self._cache = (key, {k: torch.as_tensor(getattr(self, k + "_"), **f64) for k in names})
        return self._cache[1]

    def _cov(self, zero: Tensor, first: Tensor, side: Tensor, dpc: Tensor, sb: Tensor, log_season: Tensor,
             memory: Tensor) -> Tensor:
        """Network features of events (rows): zero-gap flag, session start, side, one-hot price change
        and size, ``log a(clock)`` and the standardised memory features."""
        tables = self._tables(memory.device)
        # clipped to the training range: beyond it the network has never seen what follows
        mem = memory.double().clamp(tables["mem_lo"], tables["mem_hi"])
        mem = (mem - tables["mem_mean"]) / tables["mem_std"]
        return torch.cat([torch.stack([zero, first, side], -1).float(),
                          F.one_hot(dpc, self.space_.n_dp).float(), F.one_hot(sb, self.space_.n_size).float(),
                          log_season[:, None].float(), mem.float()], dim=-1)

    def _deseasonalised(self, ev: Events) -> np.ndarray:
        """The deseasonalised gaps ``dt * a(clock of the previous trade)`` (0 for the first trade)."""
        prev = np.r_[0.0, ev.clock[:-1]]
        return np.where(ev.scored, ev.dt * np.exp(self._log_season(prev)), 0.0)

    def _exposure(self, ev: Events) -> np.ndarray:
        """The session's deseasonalised exposure at every trade, with the decay of the slowest
        activity scale ``T``: ``w_i = sum_{j <= i} exp(-(t_i - t_j) / T) T (1 - exp(-dt_j / T))
        a(c_{j-1})``, i.e. ``w' = w exp(-dt / T) + T (1 - exp(-dt / T)) a(c)`` trade by trade (with a
        flat profile, ``T (1 - exp(-e / T))`` after ``e`` seconds of the session)."""
        secs = local_seconds(ev.index)
        first = np.r_[0, np.flatnonzero(np.diff(ev.session)) + 1]
        e = secs - np.repeat(secs[first], np.diff(np.r_[first, len(ev)]))
        T = ACTIVITY_SECONDS[-1]
        season = np.exp(self._log_season(np.r_[0.0, ev.clock[:-1]]))  # a(c) of the previous trade
        inc = np.where(ev.scored, -T * np.expm1(-ev.dt / T) * season, 0.0)
        grow = np.exp(e / T)  # e <= one day: at most exp(8.64)
        out = np.empty(len(ev))
        for a, b in itertools.pairwise(np.r_[first, len(ev)]):
            out[a:b] = np.cumsum(grow[a:b] * inc[a:b]) / grow[a:b]
        return out

    def _level(self, log_a: np.ndarray | Tensor, w: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """The session's activity level as a mean gap in seconds, ``g = (w + c g0) / (A_T + c)``:
        trades counted with the slowest decay ``T`` (``log_a = log(1 + A_T)``) over the exposure
        ``w``, shrunk towards the training mean gap ``g0`` by ``c`` (:data:`LEVEL_PRIOR`)
        pseudo-trades, and kept within the range of levels seen in training."""
        lo, hi = self.level_range_
        if isinstance(log_a, Tensor):
            return ((w + LEVEL_PRIOR * self.gap0_) / (torch.expm1(log_a) + LEVEL_PRIOR)).clamp(lo, hi)
        return np.clip((w + LEVEL_PRIOR * self.gap0_) / (np.expm1(log_a) + LEVEL_PRIOR), lo, hi)

    def _relative(self, memory: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """The network's memory features: decayed trade counts against those the level ``g`` gives,
        ``log(1 + A_tau) - log(1 + tau / g)``, for all but the slowest scale, whose column becomes
        ``log g``; the other columns as they are."""
        n, out = len(ACTIVITY_SECONDS) - 1, memory.copy()
        out[:, :n] -= np.log1p(np.asarray(ACTIVITY_SECONDS[:n])[None, :] / ref[:, None])
        out[:, n] = np.log(ref)
        return out

    def _reference(self, ev: Events, memory: np.ndarray) -> np.ndarray:
        """The activity level ``g`` (a mean gap, seconds) at every trade, the trade included."""
        return self._level(memory[:, len(ACTIVITY_SECONDS) - 1], self._exposure(ev))

    def _log_gap(self, ev: Events, ref: np.ndarray) -> np.ndarray:
        """Log of the deseasonalised gap against the previous trade's activity level,
        ``log(dt a(c_{i-1}) / g_{i-1})`` (0 where dt = 0)."""
        d, prev = self._deseasonalised(ev), np.r_[self.gap0_, ref[:-1]]
        with np.errstate(divide="ignore"):
            return np.where(ev.dt > 0, np.log(np.where(ev.dt > 0, d, 1.0) / prev), 0.0)

    def _padded(self, ev: Events, memory: np.ndarray | None = None
                ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Per-row arrays of all sessions, each preceded by ``R`` empty rows; also where each event
        landed and the row mask of scored events."""
        R, sp = self.receptive_field_, self.space_
        memory = activity_memory(ev) if memory is None else memory
        ref = self._reference(ev, memory)
        memory = self._relative(memory, ref)
        zero = ((ev.dt == 0) & ev.scored).astype(np.float32)
        z = np.where(ev.dt > 0, (self._log_gap(ev, ref) - self.u_mean_) / self.u_std_, 0.0).astype(np.float32)
        tg = {"zero": zero, "z": z, "side": ev.side.astype(np.float32),
              "dpc": sp.dp_class(ev.dp), "sb": sp.size_bin(ev.size)}
        cov = self._cov(*(torch.as_tensor(v) for v in (zero, (~ev.scored).astype(np.float32), tg["side"],
                                                        tg["dpc"], tg["sb"], self._log_season(ev.clock),
                                                        memory))).numpy()
        tg["x"] = np.where(ev.scored & (ev.dt > 0), z, 0.0).astype(np.float32)
        rows = np.arange(len(ev)) + R * (ev.session - ev.session[0] + 1)  # R empty rows before each session
        n_rows = int(rows[-1]) + 1
        out = {"cov": np.zeros((n_rows, self.n_features_), np.float32)}
        out["cov"][rows] = cov
        for key in ("x", "zero", "z", "side", "dpc", "sb"):
            out[key] = np.zeros(n_rows, tg[key].dtype)
            out[key][rows] = tg[key]
        scored = np.zeros(n_rows, bool)
        scored[rows] = ev.scored
        return out, rows, scored

    # ---- fit -----------------------------------------------------------------------------------
    def fit(self, trades: pd.DataFrame) -> TickModel:
        """Fit to a trades frame (``time`` index; ``price``, ``size``, optional ``side``)."""
        config = self._train_config()
        check_device(self.device)
        for name in ("channels", "layers", "hidden", "n_components", "max_ticks", "members"):
            check_int(name, getattr(self, name))
        check_number("dropout", self.dropout, 0.0, 1.0, high_open=True)
        if not isinstance(self.refit_size_bias, bool | np.bool_):
            raise DataError(f"refit_size_bias must be True or False, got {self.refit_size_bias!r}")
        self.__dict__.pop("_cache", None)  # tables of an earlier fit
        self.space_ = EventSpace(self.max_ticks, self.session_gap).fit(trades)
        ev = self.space_.encode(trades)
        self.tick_rule_ = bool(follows_tick_rule(ev).all())
        self.marks_ = EmpiricalMarks().fit(ev, self.space_)
        self.log_season_, self.hours_ = activity_profile(ev)
        memory = activity_memory(ev)
        d = self._deseasonalised(ev)[ev.scored]
        self.gap0_ = float(max(d.mean(), 1e-6))  # a session's level at its open
        self.level_range_ = (0.0, math.inf)
        ref = self._reference(ev, memory)
        self.level_range_ = (float(ref.min()), float(ref.max()))
        u = self._log_gap(ev, ref)[ev.scored & (ev.dt > 0)]
        self.u_mean_, self.u_std_ = float(u.mean()), float(max(u.std(), 1e-6))
        rel = self._relative(memory, ref)
        self.mem_mean_, self.mem_std_ = rel.mean(0), np.maximum(rel.std(0), 1e-6)
        self.mem_lo_, self.mem_hi_ = rel.min(0), rel.max(0)
        self.events_per_session_ = float(np.median(np.bincount(ev.session)))
        self.last_ = (ev.index[-1], float(trades["price"].iloc[-1]))
        self.n_features_ = 3 + self.space_.n_dp + self.space_.n_size + 1 + N_MEMORY
        self._build_networks(config.seed)
        rows, where, scored = self._padded(ev, memory)
        R = self.receptive_field_
        # generation goes on from the last R rows and the memory of the last trade
        self.tail_ = {"x": rows["x"][-R:], "cov": rows["cov"][-R:], "memory": memory[-1],
                      "exposure": float(self._exposure(ev)[-1])}
        span = min(config.window, len(scored) - R)
        starts = window_starts(0, len(scored), R, span) if span >= 1 else []
        if not starts:
            raise DataError(f"{len(ev)} trades are too few for windows of {R} + {config.window} events; "
                            "pass more trades or lower layers/train.window")
        keys = ("x", "cov", "zero", "z", "side", "dpc", "sb")
        *windows, mask = stack_windows([rows[k] for k in keys] + [scored], starts, R + span)
        mask[:, :R] = False  # the first R rows of a window are context only
        if len(starts) > 1:  # the last window may repeat targets of the one before: score them once
            mask[-1, :R + span - (starts[-1] - starts[-2])] = False
        keep = mask.any(axis=1)  # windows of padding only (between sessions) teach nothing
        if keep.sum() < 2:
            raise DataError(f"{len(ev)} trades give {int(keep.sum())} training window(s) of {R} + {span} "
                            "events; pass more trades or lower layers/train.window")
        tensors = [torch.tensor(w[keep]) for w in windows] + [torch.tensor(mask[keep])]
        train_t, val_t = split_tensors(tensors, config.val_fraction)  # the last windows in time validate

        def loss(net: TickNetwork, x: Tensor, cov: Tensor, zero: Tensor, z: Tensor, side: Tensor, dpc: Tensor,
                 sb: Tensor, m: Tensor) -> Tensor:
            h = net.trunk(x[:, :-1], cov[:, :-1])[:, R - 1:]  # output t predicts row t + 1
            ll = net.log_lik(h, zero[:, R:], z[:, R:], side[:, R:], dpc[:, R:], sb[:, R:], cov[:, R - 1:-1])
            m = m[:, R:]
            # where, not a product: rows after a session's end may be impossible under the tick rule
            return -torch.where(m, ll.sum(-1), 0.0).sum() / m.sum().clamp(min=1)

        # member k is the network a single TickModel with seed + k would fit, bit for bit (on CPU)
        self.trainings_ = [train(net, loss, train_t, val_t, dataclasses.replace(config, seed=config.seed + k),
                                 device=self.device, progress=bool(self.progress))
                           for k, net in enumerate(self.networks_)]
        self.training_ = self.trainings_[0]
        if self.refit_size_bias:
            self._refit_size_bias(rows, self._spans(ev, where), scored)
        return self

    def _spans(self, ev: Events, where: np.ndarray) -> list[tuple[int, int]]:
        """The padded rows ``[a, b)`` of each session (its ``R`` empty rows first) with a scored event."""
        R, out, lo = self.receptive_field_, [], 0
        for hi in np.r_[np.flatnonzero(np.diff(ev.session)) + 1, len(ev)]:
            a, b = int(where[lo]) - R, int(where[hi - 1]) + 1
            lo = hi
            if b - a > R + 1:
                out.append((a, b))
        return out

    def _rows_at(self, rows: dict[str, np.ndarray], a: int, b: int) -> dict[str, Tensor]:
        """Padded rows ``[a, b)`` (one session, :meth:`_spans`) as ``(1, b - a)`` tensors on the device."""
        return {k: torch.tensor(v[a:b], device=self.device)[None] for k, v in rows.items()}

    def _forced(self, net: TickNetwork, t: dict[str, Tensor]) -> dict[str, Tensor]:
        """``net``'s trunk over one session's rows ``t`` (teacher forcing) and the fields each output
        predicts: the keyword arguments of ``net.log_lik`` (``net.heads`` takes them but ``sb``)."""
        R = self.receptive_field_
        return {"h": net.trunk(t["x"][:, :-1], t["cov"][:, :-1])[:, R - 1:], "zero": t["zero"][:, R:],
                "z": t["z"][:, R:], "side": t["side"][:, R:], "dpc": t["dpc"][:, R:], "sb": t["sb"][:, R:],
                "prev": t["cov"][:, R - 1:-1]}

    @torch.no_grad()
    def _refit_size_bias(self, rows: dict[str, np.ndarray], spans: list[tuple[int, int]],
                         scored: np.ndarray) -> None:
        """Each network's size-head output biases set to their maximum-likelihood values on the
        fitted events, the rest of the network fixed (:func:`bias_shift`)."""
        R = self.receptive_field_
        for net in self.networks_:
            net.eval()
            logits, bins = [], []
            for a, b in spans:
                keep = torch.tensor(scored[a + R:b], device=self.device)
                forced = self._forced(net, self._rows_at(rows, a, b))
                sb = forced.pop("sb")
                logits.append(net.heads(**forced)[3][0][keep])
                bins.append(sb[0][keep])
            bias = net.size_out[-1].bias
            bias += bias_shift(torch.cat(logits), torch.cat(bins)).to(bias.dtype)

    def _build_networks(self, seed: int) -> None:
        """Fresh ``networks_`` for the fitted event space, member ``k``'s initial weights seeded with
        ``seed + k``; ``network_`` is the first."""
        nets = []
        for k in range(int(self.members)):
            with seeded(seed + k):
                nets.append(TickNetwork(self.n_features_, self.space_.n_dp, self.space_.n_size,
                                        channels=int(self.channels), layers=int(self.layers),
                                        hidden=int(self.hidden), n_components=int(self.n_components),
                                        dropout=float(self.dropout), tick_rule=self.tick_rule_,
                                        n_moves=N_MOVES).to(self.device))
        self.networks_ = nets
        self.network_ = nets[0]
        self.receptive_field_ = self.network_.receptive_field

    # ---- likelihood ------------------------------------------------------------------------------
    @torch.no_grad()
    def log_prob(self, trades: pd.DataFrame) -> pd.DataFrame:
        """Per-trade log-likelihood ``log p(e_i | e_<i)`` in nats, columns ``time side dp size total``.

        NaN for the first trade of each session (conditioned on). Units as in
        :mod:`finar.ticks.events`: the time term is per second (zero gaps: a probability).

        Raises
        ------
        DataError
            If the model was fitted on tick-rule sides and ``trades`` has sides that break the rule.
        """
        self._check_fitted("log_prob")
        ev = self.space_.encode(trades)
        if self.tick_rule_ and not (ok := follows_tick_rule(ev)).all():
            bad = np.flatnonzero(~ok)
            raise DataError(f"this TickModel was fitted on sides signed by the tick rule, and the trades "
                            f"at rows {bad[:5].tolist()} ({len(bad)} in all) have sides that break it; drop "
                            "their 'side' column (the tick rule then signs them) or fit a model on such "
                            "trades")
        rows, where, scored = self._padded(ev)
        nets, R = [net.eval() for net in self.networks_], self.receptive_field_
        out = np.full((len(scored), 4), np.nan)
        for a, b in self._spans(ev, where):  # one session at a time
            t = self._rows_at(rows, a, b)
            lls = [net.log_lik(**self._forced(net, t))[0].double() for net in nets]
            out[a + R:b] = mixture_fields(lls).cpu().numpy()
        ll = out[where]
        pos = ev.scored & (ev.dt > 0)
        # z = (log(dt a) - m) / s with a the activity profile: p(dt) = p(z) / (s dt), a cancels
        ll[pos, 0] -= math.log(self.u_std_) + np.log(ev.dt[pos])
        in_dp, in_size = self.space_.log_mark(ev.dp, ev.size)
        ll[:, 2] += in_dp
        ll[:, 3] += in_size
        frame = pd.DataFrame(ll, index=ev.index, columns=["time", "side", "dp", "size"])
        frame["total"] = frame.sum(axis=1)
        frame[~ev.scored] = np.nan
        return frame

    # ---- generation ------------------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, queues: list[Queues], raw: list[Tensor], t: Tensor, close: Tensor, memory: Tensor,
             w: Tensor, prev: Tensor, budget: int, gen: torch.Generator) -> dict[str, np.ndarray]:
        """Run one stream per row from its state (each member's WaveNet queues and last output
        ``raw``, local clock time ``t`` in seconds, raw ``memory``, exposure ``w`` and features
        ``prev`` of its last trade) until it passes ``close`` or has made ``budget`` trades.

        Returns flat arrays of the new trades, stream by stream and in time order within each:
        ``stream``, ``t``, ``side``, ``dpc`` (price-change class), ``sb`` (size bin). Finished streams
        leave the batch once half of it is done, so the longest streams do not keep the others
        computing. With several members, each trade of each stream is drawn from one member picked
        at random (equal weights), and every member's WaveNet then reads it.
        """
        nets, dev, K = [net.eval() for net in self.networks_], self.device, int(self.max_ticks)
        tau = torch.tensor(ACTIVITY_SECONDS, dtype=torch.float64, device=dev)
        lam = torch.tensor([0.5 ** (1 / h) for h in HALF_LIVES], dtype=torch.float64, device=dev)
        n_act, n_hl = len(ACTIVITY_SECONDS), len(HALF_LIVES)
        act, ewma = torch.expm1(memory[:, :n_act]), memory[:, n_act:]  # decayed counts A and the EWMAs
        ids = torch.arange(len(t), device=dev)  # the stream of each row of the batch
        count = torch.zeros(len(t), dtype=torch.long, device=dev)
        alive = t < close
        rec: dict[str, list[Tensor]] = {k: [] for k in ("stream", "t", "side", "dpc", "sb", "keep")}
        for _ in range(budget):
            n = len(ids)
            pick = _member_picker(len(nets), n, gen)
            hs = [net.with_prev(F.relu(r), prev) for net, r in zip(nets, raw, strict=True)]
            t_raw = pick([net.time_out(h) for net, h in zip(nets, hs, strict=True)])
            zero = (torch.rand(n, generator=gen, device=dev) < torch.sigmoid(t_raw[:, 0])).float()
            z = nets[0].time_head.sample(t_raw[:, 1:], gen)
            # the deseasonalised gap is g exp(m + s z), with g the activity level
            ref = self._level(torch.log1p(act[:, -1]), w)
            u = (self.u_mean_ + self.u_std_ * z.double() + torch.log(ref)).clamp(max=math.log(_DAY))
            log_a = self._log_season(torch.remainder(t, _DAY) / _DAY)
            dt = torch.where(zero > 0, 0.0, torch.exp(u - log_a))
            zt = torch.stack([zero, torch.where(zero > 0, 0.0, z)], -1)
            s_logit = pick([net.side_out(torch.cat([h, zt], -1))[:, 0]
                            for net, h in zip(nets, hs, strict=True)])
            up = torch.rand(n, generator=gen, device=dev) < torch.sigmoid(s_logit)
            new_side = torch.where(up, 1.0, -1.0)
            ts = torch.cat([zt, new_side[:, None]], -1)
            dpc = _categorical(pick([net.dp_logits(h, ts, new_side, prev[:, 2])
                                     for net, h in zip(nets, hs, strict=True)]), gen)
            one_hot = F.one_hot(dpc, self.space_.n_dp).float()
            sb = _categorical(pick([net.size_out(torch.cat([h, ts, one_hot], -1))
                                    for net, h in zip(nets, hs, strict=True)]), gen)
            side, t, count = new_side, t + dt, count + 1
            alive = alive & (t < close)
            for key, v in zip(rec, (ids, t, side, dpc, sb, alive), strict=True):
                rec[key].append(v)
            alive = alive & (count < budget)
            if not bool(alive.any()):
                break
            act = act * torch.exp(-dt[:, None] / tau) + 1.0
            w = w * torch.exp(-dt / tau[-1]) - tau[-1] * torch.expm1(-dt / tau[-1]) * torch.exp(log_a)
            moved = (dpc != K)[:, None]  # the last directions shift by one where the price changed
            moves = torch.cat([torch.sign(dpc - K).double()[:, None], ewma[:, 2 * n_hl:-1]], -1)
            ewma = torch.cat([lam * ewma[:, :n_hl] + (1 - lam) * side.double()[:, None],
                              lam * ewma[:, n_hl:2 * n_hl] + (1 - lam) * moved.double(),
                              torch.where(moved, moves, ewma[:, 2 * n_hl:])], -1)
            if 2 * int(alive.sum()) < n:  # drop finished streams from the batch
                rows = alive.nonzero()[:, 0]
                ids, t, close, alive, count = ids[rows], t[rows], close[rows], alive[rows], count[rows]
                z, zero, side, dpc, sb, act, ewma, w = (v[rows]
                                                        for v in (z, zero, side, dpc, sb, act, ewma, w))
                queues = [q.select(rows) for q in queues]
            ref = self._level(torch.log1p(act[:, -1]), w)
            mem = torch.cat([torch.log1p(act[:, :-1]) - torch.log1p(tau[:-1] / ref[:, None]),
                             torch.log(ref)[:, None], ewma], -1)
            prev = self._cov(zero, torch.zeros_like(zero), side, dpc, sb,
                             self._log_season(torch.remainder(t, _DAY) / _DAY), mem)
            x = torch.where(zero > 0, 0.0, z)
            raw = [net.wavenet.step(q, x, None, net.embed(prev)) for net, q in zip(nets, queues, strict=True)]
        if not rec["stream"]:
            return {k: np.empty(0) for k in ("stream", "t", "side", "dpc", "sb")}
        out = {key: torch.cat(v).cpu().numpy() for key, v in rec.items()}
        keep = out.pop("keep")
        order = np.argsort(out["stream"][keep], kind="stable")  # steps were appended in time order
        return {key: v[keep][order] for key, v in out.items()}

    @torch.no_grad()
    def _continue(self, t0: float, close: float, budget: int, gen: torch.Generator) -> dict[str, np.ndarray]:
        """The fitted data's last session, on from its last trade (its context and memory carried over)."""
        dev = self.device
        x, cov = (torch.tensor(np.asarray(self.tail_[k]), dtype=torch.float32, device=dev)[None]
                  for k in ("x", "cov"))
        raw, queues = map(list, zip(*(net.eval().wavenet.start_cache(x, None, net.embed(cov))
                                      for net in self.networks_), strict=True))
        f64 = {"dtype": torch.float64, "device": dev}
        memory = torch.tensor(np.asarray(self.tail_["memory"]), **f64)[None]
        return self._run(queues, raw, torch.tensor([t0], **f64), torch.tensor([close], **f64), memory,
                         torch.tensor([self.tail_["exposure"]], **f64), cov[0, -1:], budget, gen)

    @torch.no_grad()
    def _sessions(self, opens: np.ndarray, closes: np.ndarray, budget: int, rng: np.random.Generator,
                  gen: torch.Generator) -> dict[str, np.ndarray]:
        """New sessions, one stream each, from an empty context (as in training) and a first trade
        drawn from the empirical marks at the open."""
        nets, dev, R, B = [n.eval() for n in self.networks_], self.device, self.receptive_field_, len(opens)
        side0, dpc0, sb0 = self.marks_.draw(B, self.space_, rng)
        empty = torch.zeros((1, R, self.n_features_), device=dev)
        x0 = torch.zeros((1, R), device=dev)
        queues = [net.wavenet.start_cache(x0, None, net.embed(empty))[1].expand(B) for net in nets]
        t = torch.tensor(opens, dtype=torch.float64, device=dev)
        side = torch.tensor(side0, dtype=torch.float32, device=dev)
        memory = torch.zeros((B, N_MEMORY), dtype=torch.float64, device=dev)
        memory[:, :len(ACTIVITY_SECONDS)] = math.log(2.0)  # A = 1: the trade itself
        lam = torch.tensor([0.5 ** (1 / h) for h in HALF_LIVES], dtype=torch.float64, device=dev)
        n_act = len(ACTIVITY_SECONDS)
        memory[:, n_act:n_act + len(lam)] = (1 - lam) * side.double()[:, None]
        # a session's first trade enters the network as in training, without a price change (its
        # drawn change is the jump from the last price, which events code as 0 at a session start)
        dpc = torch.full((B,), int(self.max_ticks), device=dev)
        sb = torch.as_tensor(sb0, device=dev)
        zeros = torch.zeros(B, device=dev)
        w = torch.zeros(B, dtype=torch.float64, device=dev)  # no exposure yet at the open
        ref = self._level(memory[:, n_act - 1], w)
        tau = torch.tensor(ACTIVITY_SECONDS[:-1], dtype=torch.float64, device=dev)
        rel = torch.cat([memory[:, :n_act - 1] - torch.log1p(tau / ref[:, None]), torch.log(ref)[:, None],
                         memory[:, n_act:]], -1)
        cov = self._cov(zeros, torch.ones(B, device=dev), side, dpc, sb,
                        self._log_season(torch.remainder(t, _DAY) / _DAY), rel)
        raw = [net.wavenet.step(q, zeros, None, net.embed(cov)) for net, q in zip(nets, queues, strict=True)]
        g = self._run(queues, raw, t, torch.tensor(closes, dtype=torch.float64, device=dev), memory, w, cov,
                      budget - 1, gen)
        first = {"stream": np.arange(B), "t": opens, "side": side0, "dpc": dpc0, "sb": sb0}
        out = {k: np.r_[first[k], g[k]] for k in first}
        order = np.argsort(out["stream"], kind="stable")  # a stream's first trade comes first
        return {k: v[order] for k, v in out.items()}

    def sample(self, n_events: int = 100_000, seed: int | None = None) -> pd.DataFrame:
        """``n_events`` synthetic trades (``time`` index; ``price``, ``size``, ``side``) that follow
        the fitted data: its last session goes on, then whole sessions on the following business
        days (see the module docstring), the last one cut to ``n_events``. The same ``seed`` gives
        the same trades; torch's and numpy's global RNGs are not touched.
        """
        self._check_fitted("sample")
        n_events = check_int("n_events", n_events)
        rng = np.random.default_rng(check_seed(seed))
        gen = torch.Generator(device=self.device).manual_seed(int(rng.integers(2**62)))
        t0 = float(local_seconds(pd.DatetimeIndex([self.last_[0]]))[0])
        day = math.floor(t0 / _DAY) * _DAY
        parts: list[dict[str, np.ndarray]] = []
        if t0 < day + self.hours_[1] * _DAY:
            parts.append(self._continue(t0, day + self.hours_[1] * _DAY, n_events, gen))
        total = sum(len(p["t"]) for p in parts)
        rate, made, new = self.events_per_session_, 0, 0  # trades per generated session, re-estimated
        while total < n_events:
            k = max(1, math.ceil((n_events - total) / max(rate, 1.0) * 1.1))
            days = pd.bdate_range(pd.Timestamp(day, unit="s") + pd.Timedelta(days=1), periods=k)
            days_s = days.as_unit("ns").asi8 / 1e9
            g = self._sessions(days_s + self.hours_[0] * _DAY, days_s + self.hours_[1] * _DAY,
                               n_events - total, rng, gen)
            parts.append(g)
            made, new, total = made + k, new + len(g["t"]), total + len(g["t"])
            rate = new / made
            day = float(days_s[-1])
        g = {k: np.concatenate([p[k] for p in parts])[:n_events] for k in ("t", "side", "dpc", "sb")}
        dp, size = self.space_.draw_marks(g["dpc"].astype(np.int64), g["sb"].astype(np.int64), rng)
        ns = np.round(g["t"] * 1e6).astype(np.int64) * 1000  # microsecond stamps
        return self.space_.trades_at(ns, g["side"], dp, size, self.last_[1])

    # ---- persistence ------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        """Learned state as plain values and tensors: everything ``log_prob`` and ``sample`` read."""
        return plain({
            "network": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
            # the other members of a mixture (none for one network: files of single models are unchanged)
            "more_networks": [{k: v.detach().cpu() for k, v in net.state_dict().items()}
                              for net in self.networks_[1:]],
            "more_training": [dataclasses.asdict(r) for r in self.trainings_[1:]],
            "space": self.space_.get_state(), "marks": self.marks_.get_state(),
            "tick_rule": self.tick_rule_, "log_season": self.log_season_, "hours": list(self.hours_),
            "u_mean": self.u_mean_, "u_std": self.u_std_, "gap0": self.gap0_,
            "level_range": list(self.level_range_),
            "mem_mean": self.mem_mean_, "mem_std": self.mem_std_,
            "mem_lo": self.mem_lo_, "mem_hi": self.mem_hi_,
            "events_per_session": self.events_per_session_, "tail": self.tail_,
            "last_time_ns": self.last_[0].value, "last_price": self.last_[1],  # UTC ns for aware stamps
            "n_features": self.n_features_, "training": dataclasses.asdict(self.training_)})

    def _set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.pop("_cache", None)
        self.space_ = EventSpace.from_state(state["space"])
        self.marks_ = EmpiricalMarks.from_state(state["marks"])
        self.tick_rule_ = bool(state["tick_rule"])
        self.log_season_ = np.asarray(state["log_season"], dtype=float)
        self.hours_ = (float(state["hours"][0]), float(state["hours"][1]))
        self.u_mean_, self.u_std_ = float(state["u_mean"]), float(state["u_std"])
        self.gap0_ = float(state["gap0"])
        self.level_range_ = (float(state["level_range"][0]), float(state["level_range"][1]))
        self.mem_mean_ = np.asarray(state["mem_mean"], dtype=float)
        self.mem_std_ = np.asarray(state["mem_std"], dtype=float)
        self.mem_lo_ = np.asarray(state["mem_lo"], dtype=float)
        self.mem_hi_ = np.asarray(state["mem_hi"], dtype=float)
        self.events_per_session_ = float(state["events_per_session"])
        tail = state["tail"]
        self.tail_ = {"x": np.asarray(tail["x"], dtype=np.float32),
                      "cov": np.asarray(tail["cov"], dtype=np.float32),
                      "memory": np.asarray(tail["memory"], dtype=float), "exposure": float(tail["exposure"])}
        last = pd.Timestamp(int(state["last_time_ns"]), unit="ns")
        if self.space_.tz_ is not None:
            last = last.tz_localize("UTC").tz_convert(self.space_.tz_)
        self.last_ = (last, float(state["last_price"]))
        self.n_features_ = int(state["n_features"])
        more = state.get("more_networks", [])  # files written before mixtures have none
        if len(more) + 1 != int(self.members):
            raise ModelFileError(f"the file holds {len(more) + 1} network(s) for members={self.members}")
        self._build_networks(self._train_config().seed)
        for net, weights in zip(self.networks_, [state["network"], *more], strict=True):
            net.load_state_dict(weights)
            net.eval()
        self.trainings_ = [TrainResult(**r) for r in [state["training"], *state.get("more_training", [])]]
        self.training_ = self.trainings_[0]

    def _to_device(self, device: str) -> None:
        for net in self.networks_:
            net.to(device)
