"""NeuralDCC: a DCC copula whose weights a small network sets each day from the cross-section.

The marginals are GARCH(1,1)-t per column and the joint shocks a Student-t (or Gaussian) copula,
as in :class:`finar.models.DCC`. The correlation recursion is the asymmetric DCC of Cappiello,
Engle & Sheppard (2006) with *time-varying* weights,

.. math::

    Q_t = \\omega_t \\bar Q + g_t (\\delta \\bar Q - \\bar N) + a_t\\, x_{t-1} x_{t-1}^\\top
          + g_t\\, n_{t-1} n_{t-1}^\\top + b_t\\, Q_{t-1},
    \\qquad (\\omega_t, a_t, b_t, \\delta g_t)
      = \\operatorname{softmax}(\\ell_0 + W_2 \\tanh(W_1 f_{t-1} + c_1)),

where ``x`` are the copula scores, ``n = min(x, 0)`` their negative parts, ``Nbar = E[n n']``,
``delta`` the largest eigenvalue of ``Qbar^{-1/2} Nbar Qbar^{-1/2}`` (so every term is positive
semi-definite and ``Q_t`` stays positive definite), and ``f_{t-1}`` three numbers read from the
previous day's cross-section: the first column's score (put the index first), the mean score
and the mean squared score minus one. With ``W_2 = 0`` the weights are constant and the model
is ADCC; the network lets the news, decay and asymmetry weights depend on the market's state
(e.g. correlations reacting more after a market-wide fall).

Fitting: the marginals and ``nu`` as in DCC-t (two-step), then ``ell_0`` (ADCC) and then the
network by full-batch L-BFGS in torch on the training scores, the network's last layer starting
at zero and training stopping at the best log-likelihood on the last ``val_fraction`` of the
training days (on one torch thread, restored afterwards: the matrices are small, and several
threads on busy cores made it ten times slower). With ``warm_start``, a refit starts the network
from the previous fit and fine-tunes it for ``warm_iter`` iterations. The density, sampling (the
recursion one step at a time per path: cached generation) and model files are those of
:class:`finar.models.copula.CopulaGARCH`.

References
----------
Cappiello, L., Engle, R. and Sheppard, K. (2006). Asymmetric dynamics in the correlations of
global equity and bond returns. J. Financial Econometrics 4(4), 537-572.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import special

from finar._estimator import check_int, check_number
from finar.models.base import register
from finar.models.copula import normalise
from finar.models.dcc import DCC

__all__ = ["NeuralDCC"]

N_FEATURES = 3


def features(x: np.ndarray) -> np.ndarray:
    """``f_t`` (..., 3) from scores ``x`` (..., N): first column, mean, mean square minus one (clipped)."""
    f = np.stack([x[..., 0], x.mean(axis=-1), (x**2).mean(axis=-1) - 1.0], axis=-1)
    return np.clip(f, -8.0, 8.0)


def gates(net: dict[str, np.ndarray], f: np.ndarray) -> np.ndarray:
    """``(omega, a, b, delta g)`` (..., 4), a softmax of the network's logits for features ``f``."""
    h = np.tanh(f @ net["w1"].T + net["c1"])
    return special.softmax(net["ell0"] + h @ net["w2"].T, axis=-1)


@register("neuraldcc")
class NeuralDCC(DCC):
    """DCC copula over GARCH(1,1)-t marginals with asymmetry and weights set daily by a small MLP.

    Parameters
    ----------
    family : {'t', 'gaussian', 't-mix'}, default 't'
        ``'t-mix'``: the tails of :class:`~finar.models.DCC`'s ``'t-mix'`` on the network's
        correlations (the network is trained with the t copula, the mixture weights after it).
    dist : {'t', 'normal'}, default 't'
    mean : {'constant', 'zero'}, default 'constant'
    hidden : int, default 8
        Width of the gate network's hidden layer.
    max_iter : int, default 60
        L-BFGS iterations of each torch stage.
    val_fraction : float, default 0.2
        Last share of the training days used to stop the network's training.
    seed : int, default 0
        Seed of the network's first-layer initialisation.
    warm_start : bool, default False
        When fitted again on the same columns (a refit on a longer window, as in
        :func:`finar.evaluation.joint.joint_backtest`), start the gate network from the previous
        fit's weights and train it for ``warm_iter`` L-BFGS iterations (a fine-tune), instead of
        from scratch; the marginals, the DCC stage and ``Qbar``/``Nbar`` are always refitted.
    warm_iter : int, default 15
        L-BFGS iterations of a warm-started fit; 0 keeps the previous network as it is (only the
        marginals, the DCC stage, ``nu``, ``Qbar`` and ``Nbar`` are refitted).

    Attributes
    ----------
    net_ : dict
        ``w1`` (hidden, 3), ``c1``, ``w2`` (4, hidden), ``ell0`` (4,) as nested lists.
    nbar_ : list of lists
        ``Nbar``, the second moment of the training scores' negative parts.
    delta_ : float
    gate_stats_ : dict
        Mean and range of the fitted weights over the training days.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500-stocks")[["SP500", "JPM", "XOM"]]).loc["2005":"2014"]
    >>> m = finar.models.create("neuraldcc", max_iter=5).fit(r)
    >>> m.sample(r, horizon=5, n_paths=50, seed=0).paths.shape
    (50, 5, 3)
    """

    _families: ClassVar[tuple[str, ...]] = ("t", "gaussian", "t-mix")

    def __init__(self, family: str = "t", dist: str = "t", mean: str = "constant", hidden: int = 8,
                 max_iter: int = 60, val_fraction: float = 0.2, seed: int = 0, warm_start: bool = False,
                 warm_iter: int = 15) -> None:
        super().__init__(family=family, dist=dist, mean=mean)
        self.hidden = hidden
        self.max_iter = max_iter
        self.val_fraction = val_fraction
        self.seed = seed
        self.warm_start = warm_start
        self.warm_iter = warm_iter

    @classmethod
    def _tiny_params(cls) -> list[dict[str, Any]]:
        return [{"hidden": 4, "max_iter": 3}]

    # ---- the recursion ------------------------------------------------------------------
    def _net(self) -> dict[str, np.ndarray] | None:
        net = getattr(self, "net_", None)
        return None if net is None else {k: np.asarray(v, dtype=float) for k, v in net.items()}

    def _correlations(self, x: np.ndarray, qbar: np.ndarray, a: float, b: float,
                      normalised: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        net = self._net()
        if net is None:  # while DCC's stage of fit runs
            return super()._correlations(x, qbar, a, b, normalised)
        nbar, delta = np.asarray(self.nbar_, dtype=float), float(self.delta_)
        w = gates(net, features(x))                                   # (T, 4): weights for day t+1
        n = np.minimum(x, 0.0)
        q = np.empty((len(x) + 1, *qbar.shape))
        q[0] = qbar
        for t in range(len(x)):  # Q_{t+1} from day t's scores
            om, a_t, b_t, dg = w[t]
            g = dg / delta
            q[t + 1] = (om * qbar + g * (delta * qbar - nbar) + a_t * np.outer(x[t], x[t])
                        + g * np.outer(n[t], n[t]) + b_t * q[t])
        return (normalise(q[:-1]) if normalised else None), q[-1]

    def _q_update(self, q: np.ndarray, x: np.ndarray, qbar: np.ndarray) -> np.ndarray:
        net = self._net()
        if net is None:
            return super()._q_update(q, x, qbar)
        nbar, delta = np.asarray(self.nbar_, dtype=float), float(self.delta_)
        w = gates(net, features(x))[..., None, None]                  # (n, 4, 1, 1)
        n = np.minimum(x, 0.0)
        g = w[:, 3] / delta
        return (w[:, 0] * qbar + g * (delta * qbar - nbar) + w[:, 1] * np.einsum("ni,nj->nij", x, x)
                + g * np.einsum("ni,nj->nij", n, n) + w[:, 2] * q)

    # ---- fitting -------------------------------------------------------------------------
    def fit_copula(self, p: np.ndarray, sign: np.ndarray, columns: Any) -> None:
        """DCC-t's stage and then the gate network on the training PITs (see the module docstring);
        with ``warm_start``, a refit on the same columns fine-tunes the previous network."""
        net = self._net() if self.warm_start else None
        previous = None if net is None else (net, list(self.columns_))
        for name in ("net_", "nbar_", "delta_", "gate_stats_"):
            self.__dict__.pop(name, None)
        self._init_net = previous
        try:
            super().fit_copula(p, sign, columns)
        finally:
            self.__dict__.pop("_init_net", None)
        if len(self.columns_) == 1:  # one column: no dependence, no network
            self.net_, self.nbar_, self.delta_, self.gate_stats_ = None, None, 0.0, {}

    def _fit_dependence(self, p: np.ndarray, sign: np.ndarray) -> None:
        self.net_ = None
        super()._fit_dependence(p, sign)                               # a_, b_, nu_ of DCC
        hidden = check_int("hidden", self.hidden, 1)
        max_iter = check_int("max_iter", self.max_iter, 1)
        val = check_number("val_fraction", self.val_fraction, 0.0, 0.5)
        x = self._scores(p, sign, self.nu_)
        qbar = x.T @ x / len(x)
        n = np.minimum(x, 0.0)
        nbar = n.T @ n / len(x)
        ev, vec = np.linalg.eigh(qbar)
        root_inv = vec @ np.diag(ev**-0.5) @ vec.T
        delta = float(np.linalg.eigvalsh(root_inv @ nbar @ root_inv).max())
        self.nbar_, self.delta_ = nbar.tolist(), delta
        init, columns = getattr(self, "_init_net", None) or (None, None)
        if init is not None and (columns != list(self.columns_) or init["w1"].shape[0] != hidden):
            init = None  # other columns or another width: nothing to start from
        warm_iter = check_int("warm_iter", self.warm_iter, 0)
        if init is not None and warm_iter == 0:  # warm start, the network kept as it is
            net = init
        else:  # from scratch, or a fine-tune of the previous network
            net = _train(x, qbar, nbar, delta, self.nu_, self.a_, self.b_, hidden,
                         max_iter if init is None else warm_iter, val, self.seed, init=init)
        self.net_ = {k: v.tolist() for k, v in net.items()}
        w = gates(net, features(x))
        self.gate_stats_ = {name: [float(w[:, i].mean()), float(w[:, i].min()), float(w[:, i].max())]
                            for i, name in enumerate(("omega", "a", "b", "delta_g"))}

    def _get_state(self) -> dict[str, Any]:
        return {**super()._get_state(), "net": self.net_, "nbar": self.nbar_, "delta": self.delta_,
                "gate_stats": self.gate_stats_}

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self.net_ = state["net"]
        self.nbar_ = state["nbar"]
        self.delta_ = float(state["delta"])
        self.gate_stats_ = state["gate_stats"]


def _train(x: np.ndarray, qbar: np.ndarray, nbar: np.ndarray, delta: float, nu: float, a: float, b: float,
           hidden: int, max_iter: int, val_fraction: float, seed: int,
           init: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Stage 1: constant weights (ADCC, from DCC's a, b); stage 2: the network, early-stopped.
    From ``init`` (a previous fit's network): stage 2 only, starting at ``init``."""
    import torch

    dt = torch.float64
    xs, qb, nb = (torch.as_tensor(v, dtype=dt) for v in (x, qbar, nbar))
    f = torch.as_tensor(features(x), dtype=dt)
    n_fit = len(x) - round(val_fraction * len(x))
    gen = torch.Generator().manual_seed(int(seed))
    om0 = max(1.0 - a - b - 1e-3, 1e-4)
    p = {"w1": torch.randn(hidden, N_FEATURES, generator=gen, dtype=dt) * 0.5,
         "c1": torch.zeros(hidden, dtype=dt), "w2": torch.zeros(4, hidden, dtype=dt),
         "ell0": torch.log(torch.tensor([om0, a, b, 1e-3], dtype=dt))}
    if init is not None:
        p = {k: torch.as_tensor(np.asarray(init[k], dtype=float), dtype=dt).clone() for k in p}
    for v in p.values():
        v.requires_grad_(True)

    def nll(upto: int, start: int = 0) -> torch.Tensor:
        w = torch.softmax(p["ell0"] + torch.tanh(f @ p["w1"].T + p["c1"]) @ p["w2"].T, dim=-1)
        qt = q_scan(xs[: upto - 1], w[: upto - 1], qb, nb, delta)[start:upto]
        d = torch.sqrt(torch.diagonal(qt, dim1=-2, dim2=-1))
        corr = qt / (d[:, :, None] * d[:, None, :])
        return -_copula_loglik(xs[start:upto], corr, nu).mean()

    def run(params: list[torch.Tensor], iters: int) -> None:
        opt = torch.optim.LBFGS(params, max_iter=1, line_search_fn="strong_wolfe")
        best = (float("inf"), {k: v.detach().clone() for k, v in p.items()})
        for _ in range(iters):
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = nll(n_fit)
                loss.backward()
                return loss
            try:
                opt.step(closure)
                with torch.no_grad():
                    score = float(nll(len(x), n_fit)) if n_fit < len(x) else float(nll(len(x)))
            except torch.linalg.LinAlgError:  # a line-search trial where a weight underflowed (Q_t not
                break                         # positive definite): stop, keep the best point so far
            if not np.isfinite(score):
                break
            if score < best[0]:
                best = (score, {k: v.detach().clone() for k, v in p.items()})
        with torch.no_grad():
            for k, v in best[1].items():
                p[k].copy_(v)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 21 x 21 matrices: one thread is as fast, and 10x faster on busy cores
    try:
        if init is None:
            run([p["ell0"]], max(1, max_iter // 3))
        run([p["w1"], p["c1"], p["w2"], p["ell0"]], max_iter)
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().numpy().copy() for k, v in p.items()}


def q_scan(x: Any, w: Any, qbar: Any, nbar: Any, delta: float, block: int = 64) -> Any:
    """``Q_0 .. Q_T`` (T + 1, N, N) of the gated recursion for scores ``x`` (T, N) and weights ``w``
    (T, 4), in torch, as a scan: ``Q_t = b_t Q_{t-1} + U_t`` is linear, so within a block of days
    ``Q_j = P_j (Q_start + sum_{s <= j} U_s / P_s)`` with ``P_j`` the product of the ``b``'s; blocks of
    64 days keep ``1 / P`` far from overflow. Equal to the day-by-day loop of
    :meth:`NeuralDCC._correlations` (tested), and differentiable without a 4,000-step graph."""
    import torch

    g = (w[:, 3] / delta)[:, None, None]
    neg = torch.clamp(x, max=0.0)
    u = (w[:, 0, None, None] * qbar + g * (delta * qbar - nbar)
         + w[:, 1, None, None] * x[:, :, None] * x[:, None, :] + g * neg[:, :, None] * neg[:, None, :])
    b = w[:, 2]
    out, q = [qbar[None]], qbar
    for s in range(0, len(x), block):
        pb = torch.cumprod(b[s:s + block], dim=0)[:, None, None]       # (L, 1, 1)
        qs = pb * (q + torch.cumsum(u[s:s + block] / pb, dim=0))
        out.append(qs)
        q = qs[-1]
    return torch.cat(out, dim=0)


def _copula_loglik(x: Any, corr: Any, nu: float) -> Any:
    """Per-day copula log density (torch): the elliptical density of ``x`` under ``corr`` minus its
    univariate marginals (Gaussian for ``nu = inf``, Student-t otherwise)."""
    import torch

    n = x.shape[-1]
    chol = torch.linalg.cholesky(corr)
    w = torch.linalg.solve_triangular(chol, x[..., None], upper=False)[..., 0]
    logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    quad = (w**2).sum(-1)
    if np.isinf(nu):
        return -logdet - 0.5 * quad + 0.5 * (x**2).sum(-1)
    lg = special.gammaln  # the -n/2 log(nu pi) of the joint and of the marginals cancel
    joint = lg((nu + n) / 2) - lg(nu / 2) - logdet - (nu + n) / 2 * torch.log1p(quad / nu)
    marg = n * (lg((nu + 1) / 2) - lg(nu / 2)) - (nu + 1) / 2 * torch.log1p(x**2 / nu).sum(-1)
    return joint - marg
