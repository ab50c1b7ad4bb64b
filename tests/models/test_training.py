"""The shared training loop: optimum reached, best weights restored, schedule, clipping, seeds, errors;
the settings every network shares (one TrainConfig, nested parameters, no training code in network files)."""

from __future__ import annotations

import inspect
import itertools
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

import finar
from finar.errors import DataError, FinarError
from finar.models.training import (
    TRAIN_DEFAULTS,
    TrainConfig,
    lr_schedule,
    parameter_groups,
    seeded,
    split_tensors,
    time_split,
    train,
)
from tests.conftest import raises_exactly

QUIET = {"progress": False}


class GaussianRegression(nn.Module):
    """y ~ N(a x + b, sigma^2): the NLL optimum is the OLS fit with the residual variance."""

    def __init__(self, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.mean = nn.Sequential(nn.Linear(1, hidden), nn.Dropout(dropout), nn.Linear(hidden, 1)) if hidden \
            else nn.Linear(1, 1)
        self.log_sigma = nn.Parameter(torch.zeros(()))


def gaussian_nll(m: GaussianRegression, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = (y - m.mean(x).squeeze(-1)) / m.log_sigma.exp()
    return (0.5 * z**2 + m.log_sigma + 0.5 * math.log(2 * math.pi)).mean()


def regression_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, generator=g)
    return x, 1.5 * x[:, 0] - 0.5 + 0.3 * torch.randn(n, generator=g)


class Location(nn.Module):
    """A single mean parameter; loss 0.5 (y - mu)^2."""

    def __init__(self, mu: float) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(mu))


def location_nll(m: Location, y: torch.Tensor) -> torch.Tensor:
    return (0.5 * (y - m.mu) ** 2).mean()


def drifting_run(patience: int = 3, max_epochs: int = 200):
    """mu walks from -3 towards the training mean +3; the val mean 0 is passed on the way, so the val loss
    falls, then rises. Returns the result, the model and mu as each validation pass saw it."""
    seen: list[float] = []

    def loss(m: Location, y: torch.Tensor) -> torch.Tensor:
        if not m.training:
            seen.append(m.mu.item())
        return location_nll(m, y)

    model = Location(-3.0)
    cfg = TrainConfig(lr=0.2, weight_decay=0.0, warmup_steps=0, min_lr_ratio=1.0, batch_size=8,
                      max_epochs=max_epochs, patience=patience)
    result = train(model, loss, (torch.full((8,), 3.0),), (torch.zeros(4),), cfg, **QUIET)
    return result, model, seen


def test_reaches_known_optimum_and_ends_in_eval_mode():
    x, y = regression_data(512, seed=0)
    design = torch.cat([x, torch.ones_like(x)], dim=1)
    resid = y - design @ torch.linalg.lstsq(design, y.unsqueeze(1)).solution[:, 0]
    optimum = 0.5 * (math.log(2 * math.pi * resid.pow(2).mean().item()) + 1)
    model = GaussianRegression()
    cfg = TrainConfig(lr=0.05, weight_decay=0.0, batch_size=128, max_epochs=150, warmup_steps=20)
    result = train(model, gaussian_nll, (x, y), config=cfg, **QUIET)
    with torch.no_grad():
        final = gaussian_nll(model, x, y).item()
    assert result.history[0]["train_loss"] > optimum + 0.5
    assert optimum <= final < optimum + 1e-3
    assert result.n_steps == 150 * 4 and len(result.history) == 150
    assert not model.training
    assert math.isnan(result.best_val_loss) and result.best_epoch == 149  # no val data: last weights


def test_best_weights_restored_and_early_stopping_at_patience():
    result, model, seen = drifting_run(patience=3)
    val = [row["val_loss"] for row in result.history]
    best = result.best_epoch
    assert 0 < best < len(val) - 1 and val[-1] > val[best]  # the val loss did get worse later
    assert result.best_val_loss == min(val) == val[best]
    assert model.mu.item() == seen[best]  # the exact weights the best validation pass saw
    assert model.mu.item() != seen[-1]
    assert len(result.history) == best + 1 + 3  # stopped after `patience` epochs without improvement
    assert all(v >= val[best] for v in val[best + 1:])


def test_patience_changes_stopping_epoch():
    short, _, _ = drifting_run(patience=1)
    long, _, _ = drifting_run(patience=5)
    assert short.best_epoch == long.best_epoch
    assert len(short.history) == short.best_epoch + 2 and len(long.history) == long.best_epoch + 6


def test_schedule_warmup_then_cosine_to_min():
    cfg = TrainConfig(lr=0.01, warmup_steps=5, min_lr_ratio=0.1, max_epochs=25, batch_size=4)
    result = train(Location(0.0), location_nll, (torch.randn(4),), config=cfg, **QUIET)  # one step per epoch
    lrs = [row["lr"] for row in result.history]
    assert lrs[:5] == pytest.approx([0.002, 0.004, 0.006, 0.008, 0.01])
    assert lrs[5] == pytest.approx(0.01)
    assert lrs[-1] == pytest.approx(0.001)
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))
    assert lrs[15] == pytest.approx(0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * 10 / 19)))


def test_lr_schedule_drives_lambdalr():
    cfg = TrainConfig(lr=1.0, warmup_steps=3, min_lr_ratio=0.2)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_schedule(cfg, total_steps=12))
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[2] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.2)
    assert lrs[7] == pytest.approx(0.6)  # half-way through the cosine: r + (1 - r) / 2


def test_gradient_clipping_bounds_global_norm():
    norms: list[float] = []

    def probe(optimizer, args, kwargs):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    x, y = regression_data(64, seed=1)
    handle = register_optimizer_step_pre_hook(probe)
    try:
        train(GaussianRegression(), lambda m, x, y: 100 * gaussian_nll(m, x, y), (x, 10 * y),
              config=TrainConfig(grad_clip=0.5, max_epochs=3, batch_size=16), **QUIET)
    finally:
        handle.remove()
    assert len(norms) == 12
    assert max(norms) == pytest.approx(0.5, rel=1e-5)  # clipping was active and exact
    assert all(n <= 0.5 * (1 + 1e-5) for n in norms)


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.lin, self.norm = nn.Embedding(5, 3), nn.Linear(3, 3), nn.LayerNorm(3)


def test_parameter_groups_decay_only_matrices():
    m = Mixed()
    m.emb.weight.requires_grad_(False)
    decay, no_decay = parameter_groups(m, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert [id(p) for p in decay["params"]] == [id(m.lin.weight)]
    assert {id(p) for p in no_decay["params"]} == {id(m.lin.bias), id(m.norm.weight), id(m.norm.bias)}


def test_no_weight_decay_on_biases_norms_embeddings():
    with seeded(0):
        m = Mixed()
    before = {k: v.clone() for k, v in m.state_dict().items()}

    def zero_grad_loss(m: Mixed, x: torch.Tensor) -> torch.Tensor:  # zero gradients: AdamW only decays
        return 0 * sum(p.sum() for p in m.parameters()) + x.sum() * 0

    cfg = TrainConfig(lr=0.1, weight_decay=0.5, warmup_steps=0, min_lr_ratio=1.0, max_epochs=4, batch_size=8)
    train(m, zero_grad_loss, (torch.zeros(8),), config=cfg, **QUIET)
    after = m.state_dict()
    for name in ["emb.weight", "lin.bias", "norm.weight", "norm.bias"]:
        assert torch.equal(after[name], before[name]), name
    torch.testing.assert_close(after["lin.weight"], before["lin.weight"] * (1 - 0.1 * 0.5) ** 4)


def run_with_dropout(seed: int):
    with seeded(123):
        model = GaussianRegression(hidden=8, dropout=0.3)
    x, y = regression_data(40, seed=2)
    cfg = TrainConfig(lr=0.01, batch_size=8, max_epochs=4, warmup_steps=2, seed=seed)
    result = train(model, gaussian_nll, (x[:30], y[:30]), (x[30:], y[30:]), cfg, **QUIET)
    return model.state_dict(), [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]


def test_same_seed_identical_different_seed_different():
    (w1, h1), (w2, h2), (w3, h3) = run_with_dropout(0), run_with_dropout(0), run_with_dropout(1)
    assert h1 == h2 and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert h1 != h3 and not all(torch.equal(w1[k], w3[k]) for k in w1)


def test_seeded_and_train_leave_global_rng_untouched():
    model = GaussianRegression(hidden=4, dropout=0.5)
    torch.manual_seed(99)
    state = torch.get_rng_state()
    with seeded(7):
        a = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), state)
    with seeded(7):
        assert torch.equal(torch.rand(3), a)
    x, y = regression_data(16, seed=3)
    train(model, gaussian_nll, (x, y), config=TrainConfig(max_epochs=2, batch_size=4), **QUIET)
    assert torch.equal(torch.get_rng_state(), state)


def test_nan_loss_raises_and_keeps_best_finite_weights():
    calls = 0
    seen: list[float] = []

    def loss(m: Location, y: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        if not m.training:
            seen.append(m.mu.item())
            return location_nll(m, y)
        calls += 1
        return location_nll(m, y) * (math.nan if calls == 6 else 1.0)

    model = Location(0.0)
    cfg = TrainConfig(lr=0.1, batch_size=4, max_epochs=10)
    with raises_exactly(FinarError, r"training loss is nan at epoch 5, step 5.*lower TrainConfig.lr") as info:
        train(model, loss, (torch.ones(4),), (torch.ones(4),), cfg, **QUIET)
    assert "weights of epoch 4 were restored" in str(info.value)
    assert model.mu.item() == seen[-1] and math.isfinite(model.mu.item()) and not model.training


def test_nan_in_inputs_is_reported():
    x, y = regression_data(16, seed=4)
    y[3] = math.nan
    model = GaussianRegression()
    with raises_exactly(FinarError, "Check train_data for NaN"):
        train(model, gaussian_nll, (x, y), config=TrainConfig(batch_size=16), **QUIET)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_time_split_puts_last_fraction_in_validation():
    assert time_split(10, 0.3) == (slice(0, 7), slice(7, 10))
    assert time_split(10, 0.01) == (slice(0, 9), slice(9, 10))  # at least one validation item
    assert time_split(10, 0.2, gap=3) == (slice(0, 5), slice(8, 10))
    x, ids = torch.arange(10.0), torch.arange(10) * 2
    (x_tr, id_tr), (x_val, id_val) = split_tensors((x, ids), 0.3)
    assert x_tr.tolist() == list(range(7)) and x_val.tolist() == [7.0, 8.0, 9.0]
    assert id_tr.tolist() == [0, 2, 4, 6, 8, 10, 12] and id_val.tolist() == [14, 16, 18]


@pytest.mark.parametrize(("n", "fraction", "gap", "match"), [
    (10, 0.0, 0, "val_fraction"), (10, 1.0, 0, "val_fraction"), (1, 0.5, 0, "Cannot split"),
    (10, 0.2, 8, "Cannot split"), (10, 0.2, -1, "gap")])
def test_time_split_bad_arguments(n, fraction, gap, match):
    with raises_exactly(DataError, match):
        time_split(n, fraction, gap=gap)


@pytest.mark.parametrize(("field", "value"), [
    ("lr", 0.0), ("lr", math.inf), ("lr", math.nan), ("weight_decay", -0.1), ("batch_size", 0),
    ("batch_size", 2.5), ("max_epochs", 0), ("warmup_steps", -1), ("min_lr_ratio", 1.5), ("grad_clip", 0.0),
    ("patience", 0), ("seed", -1), ("patience", True)])
def test_bad_config_raises(field, value):
    with raises_exactly(DataError, f"TrainConfig.{field} must be"):
        TrainConfig(**{field: value})


def test_bad_data_raises():
    x = torch.zeros(8, 1)
    with raises_exactly(DataError, r"share a non-empty first dimension; got sizes \[8, 7\]"):
        train(Location(0.0), location_nll, (x, torch.zeros(7)), **QUIET)
    with raises_exactly(DataError, "val_data has 1 tensors but train_data has 2"):
        train(Location(0.0), location_nll, (x, x), (x,), **QUIET)
    with raises_exactly(FinarError, r"loss_fn must return a scalar tensor.*\(8,\)"):
        train(Location(0.0), lambda m, y: y - m.mu, (torch.zeros(8),), **QUIET)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_cuda():
    x, y = regression_data(64, seed=5)
    model = GaussianRegression(hidden=4, dropout=0.1)
    result = train(model, gaussian_nll, (x, y), (x, y), TrainConfig(lr=0.05, max_epochs=5), device="cuda",
                   **QUIET)
    assert next(model.parameters()).is_cuda
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


# ---- the settings of every network --------------------------------------------------------------
NETWORKS = {"wavenet": {"layers_per_cycle": 3}, "transformer": {"config": {"context": 12}},
            "pixelcnn": {"channels": 8, "regime_column": "regime"}, "tickmodel": {"layers": 4}}
NETWORK_FILES = ["finar/models/wavenet.py", "finar/models/transformer.py", "finar/models/pixelcnn.py",
                 "finar/ticks/model.py"]


def test_warmup_rule_is_one_rule():
    assert TrainConfig(batch_size=32).warmup(n_rows=100) == 2 * (100 // 32)
    assert TrainConfig(batch_size=4).warmup(n_rows=10_000) == 100
    assert TrainConfig(batch_size=64).warmup(n_rows=10) == 2  # at least one step per epoch
    assert TrainConfig(warmup_steps=7).warmup(n_rows=10_000) == 7
    with raises_exactly(DataError, "pass n_rows"):
        lr_schedule(TrainConfig(), total_steps=10)
    result = train(Location(0.0), location_nll, (torch.randn(40),), config=TrainConfig(lr=0.1, batch_size=4,
                   max_epochs=3), **QUIET)  # 10 steps per epoch: 20 warm-up steps, then the cosine
    lrs = [row["lr"] for row in result.history]  # of each epoch's last step
    assert lrs == pytest.approx([0.05, 0.1, 0.01])


@pytest.mark.parametrize("path", NETWORK_FILES)
def test_no_network_file_builds_a_training_config_or_loop(path):
    text = (Path(finar.__file__).parent.parent / path).read_text()
    assert "TrainConfig(" not in text and "def train" not in text


@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_settings_nest_and_round_trip(name):
    cls = finar.models.registry()[name]
    # training settings nest under train: the constructor keeps the architecture (WaveNet's 13
    # settings, vol_halflives included) and train, device, progress
    assert len(inspect.signature(cls.__init__).parameters) - 1 <= 16
    m = finar.models.create(name, **NETWORKS[name], train={"max_epochs": 2, "lr": 0.02})
    params = m.get_params(deep=True)
    assert params["train__max_epochs"] == 2 and params["train__lr"] == 0.02
    assert params["train__batch_size"] == cls.default_train.batch_size  # the model's own defaults
    assert finar.models.clone(m).get_params(deep=True) == params
    m.set_params(train__lr=3e-4, train__seed=5)
    before = {k.removeprefix("train__"): v for k, v in params.items() if k.startswith("train__")}
    assert m.train == TrainConfig(**{**before, "lr": 3e-4, "seed": 5})
    with raises_exactly(DataError, "has no setting 'epochs'"):
        m.set_params(train__epochs=3)
    assert cls(train=None).train == cls.default_train == cls().train
    assert TRAIN_DEFAULTS == TrainConfig()
