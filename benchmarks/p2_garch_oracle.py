"""PROTOCOLS P2 ("garch-oracle"): distance to the true conditional density on simulated data.

A GARCH(1,1) with standardised Student-t innovations (nu = 6; omega = 0.02, alpha = 0.09,
beta = 0.89 on the percent scale) is simulated for 5,000 training and 5,000 test days per seed.
Every forecaster is fitted once on the training days and scored one step ahead on the test days
with its exact ``log_prob``, conditioning on the growing context. The oracle scores with the true
parameters and the true conditional variance. Per model and seed: ``gap_nats`` = oracle mean log
score - model mean log score (an estimate of the mean KL divergence) and the Diebold-Mariano
statistic of the daily differences. Adding a model is one line in ``MODELS``.

    python benchmarks/p2_garch_oracle.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

import finar
from finar.evaluation import stattests

OMEGA, ALPHA, BETA, NU = 0.02, 0.09, 0.89, 6.0
N_TRAIN = N_TEST = 5000
SEEDS = (0, 1, 2)
BURN = 1000

MODELS = {
    "GARCH(1,1) Student-t": lambda: finar.models.GARCH(dist="t"),
    "GARCH(1,1) normal": lambda: finar.models.GARCH(dist="normal"),
    "GJR-GARCH(1,1,1) skew-t": lambda: finar.models.GARCH(vol="gjr", dist="skewt"),
    "AR(aic)": lambda: finar.models.AR(order="aic"),
    "WaveNet t-mixture": lambda: finar.models.WaveNet(),
    "WaveNet categorical": lambda: finar.models.WaveNet(head="categorical", n_bins=128),
    "Transformer t-mixture": lambda: finar.models.Transformer(),
    "Transformer discrete tokens": lambda: finar.models.Transformer({"tokens": "discrete"}, n_bins=128),
}
PROTOCOLS = {"GARCH(1,1) Student-t": 0.0005, "GARCH(1,1) normal": 0.025, "constant normal": 0.166}


def simulate(seed: int) -> tuple[pd.Series, np.ndarray]:
    """Returns and the true conditional variance of each day (known before the day)."""
    rng = np.random.default_rng(seed)
    n = BURN + N_TRAIN + N_TEST
    z = rng.standard_t(NU, size=n) / np.sqrt(NU / (NU - 2))
    r, s2 = np.empty(n), np.empty(n)
    var = OMEGA / (1 - ALPHA - BETA)
    for t in range(n):
        s2[t] = var
        r[t] = np.sqrt(var) * z[t]
        var = OMEGA + ALPHA * r[t] ** 2 + BETA * var
    index = pd.bdate_range("1990-01-01", periods=n - BURN, name="time")
    return pd.Series(r[BURN:], index=index, name="sim"), s2[BURN:]


def oracle_log_score(r: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Exact log density of r_t under the true standardised-t GARCH."""
    scale = np.sqrt(s2 * (NU - 2) / NU)
    return stats.t.logpdf(r, NU, scale=scale)


def main() -> None:
    rows = []
    for seed in SEEDS:
        r, s2 = simulate(seed)
        oracle = oracle_log_score(r.to_numpy()[N_TRAIN:], s2[N_TRAIN:])
        train = r.iloc[:N_TRAIN]
        scores: dict[str, np.ndarray] = {}
        timing: dict[str, float] = {}
        for name, make in MODELS.items():
            t0 = time.perf_counter()
            model = make().fit(train)
            timing[name] = time.perf_counter() - t0
            scores[name] = model.log_prob(r).to_numpy()[N_TRAIN:]
        # reference: a constant normal with the training mean and variance
        scores["constant normal"] = stats.norm.logpdf(r.to_numpy()[N_TRAIN:], train.mean(), train.std(ddof=0))
        for name, lp in scores.items():
            dm = stattests.diebold_mariano(oracle, lp)
            rows.append({"model": name, "kind": "reference" if name == "constant normal" else "finar",
                         "seed": seed, "gap_nats": float(oracle.mean() - lp.mean()),
                         "dm_t": dm.statistic, "dm_p": dm.p_value,
                         "oracle_log_score": float(oracle.mean()), "log_score": float(lp.mean()),
                         "fit_seconds": timing.get(name, 0.0)})
            print(f"seed {seed} {name:28s} gap {rows[-1]['gap_nats']:.4f} nats/day  DM t {dm.statistic:.2f}",
                  flush=True)
    table = pd.DataFrame(rows)
    mean = table.groupby("model", sort=False)[["gap_nats", "dm_t"]].mean()
    for name, row in mean.iterrows():
        rows.append({"model": name, "kind": table.loc[table["model"] == name, "kind"].iloc[0],
                     "seed": "mean", "gap_nats": row["gap_nats"], "dm_t": row["dm_t"],
                     "protocols_gap_nats": PROTOCOLS.get(name)})
    write_results("p2_garch_oracle", "P2", rows, columns=[
        "model", "kind", "seed", "gap_nats", "protocols_gap_nats", "dm_t", "dm_p", "log_score",
        "oracle_log_score", "fit_seconds"],
        extra={"true_params": {"omega": OMEGA, "alpha": ALPHA, "beta": BETA, "nu": NU},
               "n_train": N_TRAIN, "n_test": N_TEST, "seeds": list(SEEDS)},
        notes="gap_nats = oracle mean log score - model mean log score on the 5,000 test days "
              "(nats/day; ~ mean KL divergence); dm_t = Diebold-Mariano statistic of oracle minus "
              "model daily log scores (positive: the oracle is better).")


if __name__ == "__main__":
    main()
