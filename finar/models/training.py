"""The one training loop every finar network uses (WaveNet, Transformer, PixelCNN, tick model).

A network is a plain ``nn.Module``; its estimator supplies ``loss_fn(module, *batch)``, the mean
negative log-likelihood per observation in nats, and :func:`train` does the rest: AdamW, linear
warm-up then cosine decay, gradient clipping by global norm, early stopping on the validation
loss with the best weights restored. Randomness is explicit: shuffling draws from a
``torch.Generator`` seeded with ``TrainConfig.seed``, and the whole run (dropout included) happens
inside :func:`seeded`, so the same config gives bit-identical weights on CPU while the caller's
global RNG state is left as it was.

Validation data must come *after* the training data in time (:func:`time_split`), otherwise the
early-stopping score looks ahead.

Data-parallel training. Under ``torchrun`` with a process group (:func:`init_distributed`: gloo
on CPU, nccl on GPU), :func:`train` wraps the network in ``DistributedDataParallel``: every rank
draws the same global batch and takes its contiguous share of the windows, and local losses are
weighted by their share, so the averaged gradient is that of the global batch's mean loss and
the loss curve is the single-process one with the same ``batch_size`` (up to float rounding;
dropout masks differ, being drawn per rank). Every rank scores the whole validation set, so
early stopping stops all ranks at the same epoch; their weights stay identical throughout.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from finar._estimator import check_int, check_number
from finar.errors import DataError, FinarError

__all__ = ["TrainConfig", "TRAIN_DEFAULTS", "TrainResult", "as_config", "train", "seeded", "time_split",
           "split_tensors", "parameter_groups", "lr_schedule", "evaluate", "init_distributed", "on_epoch"]

logger = logging.getLogger("finar.training")
Tensors = Sequence[torch.Tensor]
C = TypeVar("C")
_epoch_hook: ContextVar[Callable[[dict], None] | None] = ContextVar("finar_epoch_hook", default=None)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings of a finar network; bad values raise :class:`~finar.errors.DataError`.

    :func:`train` reads the optimisation settings; the estimators' ``fit`` also reads ``window``
    and ``val_fraction`` to cut the training and validation windows, and seeds the network's
    initial weights with ``seed``. Every network estimator takes one as ``train=`` (a mapping
    changes only the settings it names, starting from the model's defaults), and
    ``get_params(deep=True)`` / ``set_params`` reach each field as ``train__lr`` etc.

    ``warm_epochs`` (estimators): with 0, every ``fit`` trains a new network; with ``k > 0``, a
    ``fit`` of a model already fitted on the same columns and covariates keeps its network, scaler
    and head and trains them for ``k`` more epochs on the new data (a fine-tune, as in the refits
    of :func:`finar.backtest`, each block starting from the previous block's weights). The tuned
    weights are kept only if they lower the validation loss of the weights the tune started from:
    early stopping that counts the start as an epoch (``training_.best_epoch`` is -1 when the
    start was kept).

    ``init`` (estimators): the path of a model file of the same class and architecture (written
    by ``save``, e.g. after :meth:`~finar.models.neural.NeuralForecaster.pretrain` on many series);
    a fit that trains a new network starts from its weights instead of random ones, then trains
    with the settings above (early stopping on this series' validation days). Each series keeps
    its own scaler.

    ``pretrain`` (estimators): ``True`` starts a new fit from a network pretrained on finar's
    bundled daily series up to the end of the last year of the fit's data, trained once with
    the same architecture and settings (seed 0) and cached (:mod:`finar.models.pretraining`).

    ``variance_target`` (estimators, continuous heads): after training, every component scale of
    the head is multiplied by one factor ``c`` that makes the predictive variance right on
    average over the fit's days, ``mean((z_t - m_t)^2 / var_t) = 1``
    (:meth:`~finar.models.heads._LocScaleMixture.target_variance`), as GARCH's variance targeting
    ties the long-run variance to the sample's. Maximum likelihood does not: a head whose tails
    are floored (``min_df``) or too light tends to a slightly wide variance, and a network that
    reads slow volatility states feeds such a bias back into the level of long simulated paths.
    ``c`` is part of the model (``log_prob``, ``predictive`` and ``sample`` all use it), and a
    warm refit trains at ``c = 1`` and targets again.

    The warm-up rule (``warmup_steps=None``) is the same for every network:
    ``min(100, 2 * steps_per_epoch)`` with ``steps_per_epoch = max(1, n_windows // batch_size)``.

    Examples
    --------
    >>> TrainConfig(lr=3e-4, max_epochs=20).batch_size
    32
    >>> TrainConfig(batch_size=16).warmup(n_rows=100)
    12
    """

    lr: float = 1e-3            # peak learning rate, reached at the end of warm-up
    weight_decay: float = 0.01  # AdamW decoupled decay, on weight matrices only (parameter_groups)
    batch_size: int = 32        # windows per optimiser step; the last batch of an epoch may be smaller
    max_epochs: int = 100       # the schedule always spans max_epochs, even if training stops early
    warmup_steps: int | None = None  # linear warm-up steps from lr / warmup_steps; None: the rule above
    min_lr_ratio: float = 0.1   # cosine decay ends at lr * min_lr_ratio on the last step
    grad_clip: float = 1.0      # max global L2 norm of the gradients; math.inf disables clipping
    patience: int = 10          # epochs without a better val loss before stopping
    seed: int = 0               # initial weights (estimators), shuffling and dropout
    window: int = 32            # estimators: targets per training window, each after a full context
    val_fraction: float = 0.2   # estimators: the last fraction of the data (in time) validates
    warm_epochs: int = 0        # estimators: > 0 makes a refit on the same columns a fine-tune (below)
    init: str | None = None     # estimators: a model file whose network starts a new fit (pretraining)
    pretrain: bool = False      # estimators: start a new fit from pooled pretraining on bundled series
    variance_target: bool = False  # estimators: rescale the head so its variance is right on the fit data

    def __post_init__(self) -> None:
        def check(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for name in ("batch_size", "max_epochs", "patience", "window"):
            check(name, check_int(f"TrainConfig.{name}", getattr(self, name), 1))
        check("warm_epochs", check_int("TrainConfig.warm_epochs", self.warm_epochs, 0))
        if self.init is not None:
            if not isinstance(self.init, str | os.PathLike) or not str(self.init):
                raise DataError(f"TrainConfig.init must be the path of a model file or None, got "
                                f"{self.init!r}")
            check("init", str(self.init))
        if not isinstance(self.pretrain, bool | int) or self.pretrain not in (0, 1):
            raise DataError(f"TrainConfig.pretrain must be True or False, got {self.pretrain!r}")
        check("pretrain", bool(self.pretrain))
        if not isinstance(self.variance_target, bool | int) or self.variance_target not in (0, 1):
            raise DataError(f"TrainConfig.variance_target must be True or False, got "
                            f"{self.variance_target!r}")
        check("variance_target", bool(self.variance_target))
        if self.pretrain and self.init is not None:
            raise DataError("TrainConfig: give init (a model file) or pretrain=True, not both")
        check("seed", check_int("TrainConfig.seed", self.seed, 0))
        if self.warmup_steps is not None:
            check("warmup_steps", check_int("TrainConfig.warmup_steps", self.warmup_steps, 0))
        check("lr", check_number("TrainConfig.lr", self.lr, 0.0, low_open=True))
        check("weight_decay", check_number("TrainConfig.weight_decay", self.weight_decay, 0.0))
        check("min_lr_ratio", check_number("TrainConfig.min_lr_ratio", self.min_lr_ratio, 0.0, 1.0))
        check("val_fraction", check_number("TrainConfig.val_fraction", self.val_fraction, 0.0, 0.9,
                                           low_open=True, high_open=True))
        clip = self.grad_clip
        if clip != math.inf:  # inf disables clipping
            clip = check_number("TrainConfig.grad_clip", clip, 0.0, low_open=True)
        check("grad_clip", float(clip))

    def warmup(self, n_rows: int) -> int:
        """Warm-up steps for ``n_rows`` training windows: ``warmup_steps``, or the rule
        ``min(100, 2 * max(1, n_rows // batch_size))`` when it is None."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return min(100, 2 * max(1, int(n_rows) // self.batch_size))


TRAIN_DEFAULTS = TrainConfig()  # what a network file changes with dataclasses.replace for its defaults


def as_config(value: C | Mapping[str, Any] | None, defaults: C, owner: str = "train") -> C:
    """An estimator's config argument (``train=``, a network's ``config=``) as a frozen dataclass.

    An instance of ``defaults``' class is taken as it is; a mapping (e.g. ``{"max_epochs": 5}``, or
    the plain dict a model file holds) changes the settings it names in ``defaults``; None gives
    ``defaults``. ``owner`` names the argument in errors.

    Examples
    --------
    >>> as_config({"max_epochs": 5}, TrainConfig(lr=0.01)).lr
    0.01
    """
    cls = type(defaults)
    if value is None:
        return defaults
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        valid = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in value if k not in valid)
        if unknown:
            raise DataError(f"{owner} has no setting {unknown[0]!r}; {cls.__name__}'s settings are {valid}")
        return replace(defaults, **value)
    raise DataError(f"{owner} must be a {cls.__name__}, a mapping of its settings or None, got "
                    f"{type(value).__name__}")


@dataclass
class TrainResult:
    """What :func:`train` did.

    ``history`` has one dict per epoch with ``epoch`` (counted from 0, so ``history[best_epoch]``
    is the best row), ``train_loss`` (mean over the epoch's batches, weighted by batch size),
    ``val_loss`` (NaN without validation data), ``lr`` (of the epoch's last step) and ``seconds``.
    Without validation data ``best_epoch`` is the last epoch and ``best_val_loss`` is NaN.
    """

    history: list[dict]
    best_epoch: int
    best_val_loss: float
    seconds: float
    n_steps: int


@contextmanager
def seeded(seed: int, device: str | torch.device | None = None) -> Iterator[None]:
    """Seed torch's CPU RNG (and ``device``'s, if CUDA) inside the block, restoring them after.

    Use it to initialise a module reproducibly without touching the global RNG state that the
    caller sees afterwards. Only the forked generators are seeded (unlike ``torch.manual_seed``,
    which would also reseed every CUDA device, lazily, after the block).

    Examples
    --------
    >>> with seeded(0):
    ...     a = torch.randn(2)
    >>> with seeded(0):
    ...     b = torch.randn(2)
    >>> torch.equal(a, b)
    True
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:  # fork_rng has initialised CUDA, so the generators exist
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def time_split(n: int, val_fraction: float, *, gap: int = 0) -> tuple[slice, slice]:
    """Split ``n`` time-ordered items into ``(train, val)`` slices; validation is the last part.

    Items are never shuffled across time: a validation window that precedes training windows
    would let the early-stopping score see the future. The validation part has
    ``max(1, round(n * val_fraction))`` items; ``gap`` items before it are dropped, e.g.
    ``gap = window_length - 1`` for stride-1 windows so no observation is in both parts.

    Examples
    --------
    >>> time_split(10, 0.3)
    (slice(0, 7, None), slice(7, 10, None))
    """
    if not (isinstance(val_fraction, numbers.Real) and 0 < val_fraction < 1):
        raise DataError(f"val_fraction must be strictly between 0 and 1; got {val_fraction!r}.")
    if not isinstance(gap, numbers.Integral) or gap < 0:
        raise DataError(f"gap must be an integer >= 0; got {gap!r}.")
    n_val = max(1, round(n * val_fraction))
    if n - n_val - gap < 1:
        raise DataError(f"Cannot split {n} items into training, a gap of {gap} and {n_val} validation "
                        "items; use more data, a smaller val_fraction or a smaller gap.")
    return slice(0, n - n_val - gap), slice(n - n_val, n)


def split_tensors(tensors: Tensors, val_fraction: float, *,
                  gap: int = 0) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Split tensors sharing their first (time-ordered) dimension with :func:`time_split`.

    Examples
    --------
    >>> x, ids = torch.arange(10.0), torch.zeros(10, dtype=torch.long)
    >>> (x_tr, _), (x_val, _) = split_tensors((x, ids), 0.2)
    >>> x_val.tolist()
    [8.0, 9.0]
    """
    tensors = _check_tensors(tensors, "tensors")
    tr, val = time_split(len(tensors[0]), val_fraction, gap=gap)
    return tuple(t[tr] for t in tensors), tuple(t[val] for t in tensors)


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: weight decay on weight matrices only.

    Parameters with ``ndim < 2`` (biases, norm scales and shifts) and the weights of
    ``nn.Embedding``/``nn.EmbeddingBag`` get no decay: shrinking them towards zero is not a
    sensible prior (a norm scale of 0 kills its signal; rare embeddings would just fade).
    Frozen parameters (``requires_grad=False``) are left out; shared parameters appear once.
    """
    embeddings = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding | nn.EmbeddingBag)}
    decay, no_decay = [], []
    for p in module.parameters():  # parameters() already deduplicates tied weights
        if p.requires_grad:
            (no_decay if p.ndim < 2 or id(p) in embeddings else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def lr_schedule(config: TrainConfig, total_steps: int, n_rows: int | None = None) -> Callable[[int], float]:
    """The learning-rate multiplier of step ``s`` (from 0), for ``torch.optim.lr_scheduler.LambdaLR``.

    Linear warm-up ``(s + 1) / w`` reaches 1 at step ``w - 1``, with ``w = config.warmup(n_rows)``
    (``n_rows`` training windows size the warm-up when ``warmup_steps`` is None); then
    ``r + (1 - r) (1 + cos(pi p)) / 2`` with ``r = min_lr_ratio`` and ``p`` going from 0 to 1 at
    the last step ``total_steps - 1``. If ``w >= total_steps`` only warm-up happens.

    Examples
    --------
    >>> f = lr_schedule(TrainConfig(warmup_steps=2, min_lr_ratio=0.1), total_steps=5)
    >>> [round(f(s), 3) for s in range(5)]
    [0.5, 1.0, 1.0, 0.55, 0.1]
    """
    if config.warmup_steps is None and n_rows is None:
        raise DataError("lr_schedule: warmup_steps=None sizes the warm-up from the number of training "
                        "windows; pass n_rows")
    warmup, r = config.warmup(0 if n_rows is None else n_rows), config.min_lr_ratio

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = min(1.0, (step - warmup) / max(1, total_steps - 1 - warmup))
        return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * p))

    return factor


def train(module: nn.Module, loss_fn: Callable[..., torch.Tensor], train_data: Tensors,
          val_data: Tensors | None = None, config: TrainConfig = TrainConfig(), *,
          device: str | torch.device = "cpu", progress: bool = True,
          distributed: bool | None = None) -> TrainResult:
    """Fit ``module`` by minimising ``loss_fn`` with AdamW; return the per-epoch history.

    Each step draws a batch of rows (the same rows of every tensor in ``train_data``, e.g. windows
    ``(N, L, C)`` and series ids ``(N,)``), moves it to ``device`` and calls
    ``loss_fn(module, *batch)``, which returns the mean NLL per observation (teacher forcing is
    the loss's business). With ``val_data`` the val loss is computed after every epoch (in eval
    mode, without gradients); training stops after ``patience`` epochs without improvement, and
    the weights (``state_dict``, buffers included) of the best epoch are restored. Without
    ``val_data`` it runs ``max_epochs`` and keeps the last weights. The module ends in eval mode.

    The module is moved with ``module.to(device)``; data stays where it is and only batches are
    moved, so CUDA works exactly like CPU (``device="cuda"``). Runs are bit-identical on CPU for a
    given ``config.seed``; on CUDA some kernels are not deterministic. Per-epoch lines are logged
    at INFO on the ``"finar.training"`` logger; a transient progress bar is drawn on stderr when it
    is a terminal and ``progress`` is true.

    ``distributed=None`` trains data-parallel (module docstring) when a ``torch.distributed``
    process group with more than one rank is initialised, ``True`` requires one, ``False``
    trains this process alone. Only rank 0 logs and draws progress. Data-parallel, ``loss_fn``
    receives the ``DistributedDataParallel`` wrapper and must call it (``module(x)``, not
    ``module.part(x)``), since gradients are synchronised by its forward pass.

    Raises
    ------
    FinarError
        If a loss or gradient norm is NaN/inf. Training stops before the bad update, the best
        weights so far are restored (without ``val_data``: the current, finite ones) and the
        message names the epoch and step.

    Examples
    --------
    >>> x = torch.linspace(-1, 1, 64).unsqueeze(1)
    >>> net = nn.Linear(1, 1)
    >>> mse = lambda m, x, y: ((m(x) - y) ** 2).mean()
    >>> result = train(net, mse, (x, 2 * x), config=TrainConfig(lr=0.1, max_epochs=5), progress=False)
    >>> len(result.history), net.training
    (5, False)
    """
    train_data = _check_tensors(train_data, "train_data")
    if val_data is not None:
        val_data = _check_tensors(val_data, "val_data")
        if len(val_data) != len(train_data):
            raise DataError(f"val_data has {len(val_data)} tensors but train_data has {len(train_data)}; "
                            "loss_fn receives both the same way, so pass the same kinds of tensors.")
    device = torch.device(device)
    module.to(device)
    rank, world = _world(distributed)
    net: nn.Module = module
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # static_graph: the parameters a loss uses are the same every step, though some may be
        # unused (e.g. a one-series embedding), which plain DDP rejects
        net = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                      static_graph=True)
        progress = progress and rank == 0
    groups = parameter_groups(module, config.weight_decay)
    if not groups:
        raise FinarError(f"{type(module).__name__} has no trainable parameters (requires_grad=True).")
    params = [p for g in groups for p in g["params"]]
    n, bs = len(train_data[0]), config.batch_size
    total_steps = config.max_epochs * math.ceil(n / bs)
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(config, total_steps, n))
    shuffler = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    best_state, best_epoch, best_val, bad_epochs, step = None, 0, math.inf, 0, 0
    start = time.perf_counter()

    def fail(what: str, value: float, epoch: int, hint: str) -> FinarError:
        kept = "the (finite) weights were kept"
        if best_state is not None:
            module.load_state_dict(best_state)
            kept = f"the weights of epoch {best_epoch} were restored"
        lr = optimizer.param_groups[0]["lr"]
        return FinarError(f"{what} is {value} at epoch {epoch}, step {step} (lr {lr:.3g}); training stopped "
                          f"and {kept}. {hint}")

    try:
        # each rank its own dropout stream; rank 0 (or a single process) keeps config.seed
        with seeded(config.seed + rank, device), _epoch_bar(config.max_epochs, progress) as bar:
            for epoch in range(config.max_epochs):
                t0 = time.perf_counter()
                module.train()
                total = 0.0
                for idx in torch.randperm(n, generator=shuffler).split(bs):
                    if world > 1:
                        loss, value = _sharded_loss(net, loss_fn, train_data, idx, rank, world, device)
                    else:
                        loss = _scalar(loss_fn(module, *_batch(train_data, idx, device)))
                        value = loss.item()
                    if not math.isfinite(value):
                        raise fail("the training loss", value, epoch, "Check train_data for NaN/inf or "
                                   f"extreme values, or lower TrainConfig.lr (now {config.lr:g}).")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip).item()
                    if not math.isfinite(norm):
                        raise fail("the gradient norm", norm, epoch, "Check loss_fn for operations with "
                                   f"infinite derivatives, or lower TrainConfig.lr (now {config.lr:g}).")
                    lr = optimizer.param_groups[0]["lr"]
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    total += value * len(idx)
                val_loss = math.nan
                if val_data is not None:
                    val_loss = evaluate(module, loss_fn, val_data, bs, device)
                    if not math.isfinite(val_loss):
                        raise fail("the validation loss", val_loss, epoch,
                                   "Check val_data for NaN/inf or values unlike the training data.")
                    if val_loss < best_val:
                        best_val, best_epoch, bad_epochs = val_loss, epoch, 0
                        best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                    else:
                        bad_epochs += 1
                row = {"epoch": epoch, "train_loss": total / n, "val_loss": val_loss, "lr": lr,
                       "seconds": time.perf_counter() - t0}
                history.append(row)
                if rank == 0:
                    logger.info("epoch %d of %d: train %.5f, val %.5f, lr %.3g (%.2fs)", epoch,
                                config.max_epochs, row["train_loss"], val_loss, lr, row["seconds"])
                bar(f"train {row['train_loss']:.4f}  val {val_loss:.4f}")
                hook = _epoch_hook.get()
                if hook is not None and rank == 0:
                    hook(dict(row))
                if bad_epochs >= config.patience:
                    logger.info("early stop: no better val loss for %d epochs", config.patience)
                    break
    finally:
        module.eval()
    if best_state is not None:
        module.load_state_dict(best_state)
        logger.info("restored the weights of epoch %d (val %.5f)", best_epoch, best_val)
    else:
        best_epoch, best_val = len(history) - 1, math.nan
    return TrainResult(history, best_epoch, best_val, time.perf_counter() - start, step)


@torch.no_grad()
def evaluate(module: nn.Module, loss_fn: Callable[..., torch.Tensor], data: Tensors, batch_size: int,
             device: str | torch.device = "cpu") -> float:
    """Mean of ``loss_fn`` over ``data``: batch means in order, weighted by batch size.

    Puts ``module`` in eval mode (no dropout) and computes no gradients. Weighting by batch size
    is exact when every row (window) holds the same number of observations.
    """
    module.eval()
    n, device = len(data[0]), torch.device(device)
    return sum(_scalar(loss_fn(module, *_batch(data, idx, device))).item() * len(idx)
               for idx in torch.arange(n).split(batch_size)) / n


@contextmanager
def on_epoch(callback: Callable[[dict], None]) -> Iterator[None]:
    """Call ``callback(row)`` after every epoch of every :func:`train` run inside the block.

    ``row`` is the epoch's ``TrainResult.history`` entry. It reaches the loop of an estimator's
    ``fit`` without a new argument on every network, e.g. to report validation losses to Ray
    Tune (:mod:`finar.tune`) or to a dashboard. Under DDP only rank 0 calls it.

    Examples
    --------
    >>> rows = []
    >>> x = torch.linspace(-1, 1, 8).unsqueeze(1)
    >>> with on_epoch(rows.append):
    ...     _ = train(nn.Linear(1, 1), lambda m, x: (m(x) ** 2).mean(), (x,),
    ...               config=TrainConfig(max_epochs=3), progress=False)
    >>> [row["epoch"] for row in rows]
    [0, 1, 2]
    """
    token = _epoch_hook.set(callback)
    try:
        yield
    finally:
        _epoch_hook.reset(token)


def init_distributed(device: str | torch.device | None = None) -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` describes; return ``(rank, world_size, device)``.

    The backend is nccl for CUDA, gloo for CPU. ``device=None`` picks ``cuda:LOCAL_RANK`` when
    CUDA is available, else the CPU. Call it once per process before fitting; :func:`train`
    (and so every finar network's ``fit``) then trains data-parallel. Already initialised: the
    existing group is used.

    Examples
    --------
    A script ``fit.py`` run on each of 2 nodes with
    ``torchrun --nnodes 2 --nproc-per-node 4 --rdzv-endpoint head:29500 fit.py``::

        rank, world, device = init_distributed()
        m = finar.models.WaveNet(device=str(device)).fit(r)
        if rank == 0:
            m.save("wavenet.pt")
    """
    local = int(os.environ.get("LOCAL_RANK", 0))
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise FinarError("init_distributed needs the RANK and WORLD_SIZE environment variables that "
                             "torchrun sets; start the script with torchrun --nproc-per-node N ...")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _world(distributed: bool | None) -> tuple[int, int]:
    ready = dist.is_available() and dist.is_initialized()
    if distributed and not ready:
        raise FinarError("train(distributed=True) needs a torch.distributed process group; call "
                         "finar.models.training.init_distributed() under torchrun first")
    if distributed is False or not ready:
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def _sharded_loss(net: nn.Module, loss_fn: Callable[..., torch.Tensor], data: tuple[torch.Tensor, ...],
                  idx: torch.Tensor, rank: int, world: int,
                  device: torch.device) -> tuple[torch.Tensor, float]:
    """This rank's share of the global batch ``idx``: the loss to back-propagate and the global mean.

    The local mean is weighted by ``world * n_local / n_global``, so DDP's average of the ranks'
    gradients is the gradient of the global batch's mean. A rank without rows (a last batch
    smaller than the world) runs one row with weight 0: every rank must join each all-reduce.
    """
    mine = idx.tensor_split(world)[rank]
    weight = world * len(mine) / len(idx)
    loss = _scalar(loss_fn(net, *_batch(data, mine if len(mine) else idx[:1], device)))
    total = torch.tensor([loss.item() * len(mine)], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return loss * weight, total.item() / len(idx)


def _check_tensors(data: Tensors, name: str) -> tuple[torch.Tensor, ...]:
    data = (data,) if isinstance(data, torch.Tensor) else tuple(data)
    if not data or not all(isinstance(t, torch.Tensor) for t in data):
        raise DataError(f"{name} must be a non-empty tuple of torch tensors; got "
                        f"{[type(t).__name__ for t in data]}.")
    sizes = [len(t) if t.ndim else 0 for t in data]
    if len(set(sizes)) > 1 or sizes[0] == 0:
        raise DataError(f"The tensors of {name} must share a non-empty first dimension; got sizes {sizes}.")
    return data


def _batch(data: tuple[torch.Tensor, ...], idx: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    # non_blocking only towards CUDA: a non-blocking copy to the CPU could be read before it lands
    return [t[idx.to(t.device)].to(device, non_blocking=device.type == "cuda") for t in data]


def _scalar(loss: torch.Tensor) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise FinarError(f"loss_fn must return a scalar tensor (mean NLL per observation); got {shape}.")
    return loss.reshape(())


@contextmanager
def _epoch_bar(total: int, enabled: bool) -> Iterator[Callable[[str], None]]:
    """Yield ``update(text)`` advancing a transient rich bar over epochs on stderr (as finar._progress)."""
    if enabled:
        from rich.console import Console

        console = Console(stderr=True)
        enabled = console.is_terminal
    if not enabled:
        yield lambda text: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[losses]}"), console=console, transient=True) as bar:
        task = bar.add_task("train", total=total, losses="")
        yield lambda text: bar.update(task, advance=1, losses=text)
