"""Data-parallel training: 2 gloo processes give the single-process loss curve of the same global batch."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import finar
from finar.errors import FinarError
from finar.models.training import TrainConfig, init_distributed, train
from tests.conftest import raises_exactly

WORLD = 2


class Regression(nn.Module):
    """Gaussian regression with a learned scale; the loss goes through forward(), as DDP needs."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.log_sigma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.linear(x).squeeze(-1), self.log_sigma


def nll(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    mean, log_sigma = m(x)
    return (0.5 * ((y - mean) / log_sigma.exp()) ** 2 + log_sigma).mean()


def regression_data() -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(81, 3, generator=g)
    y = x @ torch.tensor([0.5, -1.0, 2.0]) + 0.3 * torch.randn(81, generator=g)
    return (x[:65], y[:65]), (x[65:], y[65:])  # 65 = 2 batches of 32 and one of 1: rank 1 gets no row


CONFIG = TrainConfig(lr=0.05, batch_size=32, max_epochs=6, warmup_steps=2, patience=3, seed=3)


def returns() -> pd.Series:
    return finar.returns(finar.load("sp500")["adj_close"]).iloc[-500:]


def tiny_wavenet() -> finar.models.WaveNet:
    return finar.models.WaveNet(residual_channels=8, gate_channels=8, skip_channels=8, layers_per_cycle=3,
                                n_components=2, train=dict(window=16, batch_size=32, max_epochs=2, seed=1))


def fit_both() -> dict:
    """The regression and a tiny WaveNet, trained in this process (or its rank of the group)."""
    module = Regression()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        module.linear.reset_parameters()
    train_data, val_data = regression_data()
    reg = train(module, nll, train_data, val_data, CONFIG, progress=False)
    wn = tiny_wavenet().fit(returns())
    return {"regression": reg.history, "regression_state": module.state_dict(),
            "wavenet": wn.training_.history, "wavenet_state": wn.network_.state_dict()}


def _worker(rank: int, port: int, out: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    got_rank, world, device = init_distributed()
    assert (got_rank, world, device.type) == (rank, WORLD, "cpu")
    try:
        torch.save(fit_both(), f"{out}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[dict]]:
    out = tmp_path_factory.mktemp("ddp")
    torch.multiprocessing.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    with torch.random.fork_rng():
        torch.set_num_threads(1)  # as the workers: the same kernels' summation order
        single = fit_both()
    return single, ranks


def curves(history: list[dict]) -> np.ndarray:
    return np.array([[row["train_loss"], row["val_loss"]] for row in history])


@pytest.mark.parametrize("what", ["regression", "wavenet"])
def test_two_gloo_processes_give_the_single_process_loss_curve(runs: tuple, what: str) -> None:
    single, ranks = runs
    assert len(ranks[0][what]) == len(single[what])  # same epochs, so the same early-stopping decisions
    np.testing.assert_allclose(curves(ranks[0][what]), curves(single[what]), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(curves(ranks[1][what]), curves(ranks[0][what]))  # reduced, not local
    for key, value in single[f"{what}_state"].items():
        assert torch.equal(ranks[0][f"{what}_state"][key], ranks[1][f"{what}_state"][key]), key
        torch.testing.assert_close(ranks[0][f"{what}_state"][key], value, rtol=1e-3, atol=1e-4)


def test_the_loss_curve_is_not_trivially_equal(runs: tuple) -> None:
    """Guard the check above: training did move the loss, and a different batch size changes it."""
    single, _ = runs
    losses = curves(single["regression"])[:, 0]
    assert losses[-1] < losses[0] - 0.1
    module = Regression()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        module.linear.reset_parameters()
    other = train(module, nll, *regression_data(), TrainConfig(**{**CONFIG.__dict__, "batch_size": 16}),
                  progress=False)
    assert not np.allclose(curves(other.history), curves(single["regression"]), rtol=1e-4, atol=1e-5)


def test_distributed_true_without_a_process_group_is_an_error() -> None:
    with raises_exactly(FinarError, "process group"):
        train(Regression(), nll, *regression_data(), CONFIG, progress=False, distributed=True)
