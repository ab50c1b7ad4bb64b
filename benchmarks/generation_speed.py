"""Generation speed: cached generation vs naive recompute, and paths per second.

- per-step time of cached vs naive generation for 1,000 paths at a receptive field >= 1,024;
- 1,000 and 10,000 paths x 250 steps in paths per second, beside arch's GARCH(1,1) simulation
  of the same size (``finar.models.GARCH.sample``, which runs arch's simulation forecast); the
  best of 2 runs for the networks and of 5 for arch, whose single runs vary by 2x;
- the Transformer's KV cache vs recomputing its context window, 1,000 paths x 1,000 steps, and
  10,000 x 250 paths beside arch;
- the floating-point operations per generated step of one path (``torch.utils.flop_counter``: the
  difference between generating ``h`` steps and one, per step and path) and this machine's float32
  matrix-product rate, so the time the arithmetic alone needs is visible beside the measured time;
- the bytes of keys and values the Transformer's decoding reads per step and path, and this
  machine's memory read rate: the time the KV-cache traffic alone needs.

The network is untrained (speed does not depend on the weights).

    python benchmarks/generation_speed.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from _common import write_results
from torch.utils.flop_counter import FlopCounterMode

import finar
from finar.models.transformer import Transformer
from finar.models.wavenet import WaveNet

HORIZON = 250


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def flops_per_step(model, r, n: int = 64, h: int = 9) -> float:
    """Floating-point operations per generated step and path (prefill excluded)."""
    def count(steps: int) -> int:
        with FlopCounterMode(display=False) as fc:
            model.sample(r, horizon=steps, n_paths=n, seed=0)
        return fc.get_total_flops()

    return (count(h) - count(1)) / ((h - 1) * n)


def read_gbps(gib: float = 1.0) -> float:
    """This machine's memory read rate: the sum of a float32 tensor of ``gib`` GiB, GB/s."""
    a = torch.ones(int(gib * 2 ** 30 / 4))
    return a.numel() * 4 / timed(lambda: a.sum(), repeat=3) / 1e9


def kv_bytes_per_step(tf: Transformer) -> int:
    """Bytes of keys and values a decoding step reads per path: every layer's window, float32."""
    cfg = tf.architecture
    return sum(2 * cfg.n_kv_heads * w * (cfg.d_model // cfg.n_heads) * 4 for w in cfg.windows)


def matmul_gflops(size: int = 2048) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    seconds = timed(lambda: a @ b, repeat=5)
    return 2 * size ** 3 / seconds / 1e9


def main() -> None:
    r = finar.returns(finar.load("sp500")["adj_close"])
    # receptive field 1 + 2 * 1023 = 2047 >= 1,024: kernel 2, dilations 1..512, two cycles
    big = WaveNet(layers_per_cycle=10, cycles=2, train=dict(max_epochs=1, window=64, batch_size=8)).fit(r)
    rows = [{"name": "receptive field", "value": big.min_context, "unit": "steps"}]
    steps = 5
    naive = timed(lambda: big.sample(r, horizon=steps, n_paths=1000, seed=0, method="naive")) / steps
    cached = timed(lambda: big.sample(r, horizon=50, n_paths=1000, seed=0), repeat=2) / 50
    rows += [{"name": "naive recompute, 1,000 paths", "value": naive * 1e3, "unit": "ms/step"},
             {"name": "cached queues, 1,000 paths", "value": cached * 1e3, "unit": "ms/step"},
             {"name": "speed-up cached vs naive", "value": naive / cached, "unit": "x"}]
    model = WaveNet(train={"max_epochs": 1}).fit(r)  # the default configuration (receptive field 32)
    garch = finar.models.GARCH(dist="t").fit(r)
    for n in (1000, 10_000):
        # best of several runs: a single run of arch's fast simulation varies by 2x on a busy machine
        wn = timed(lambda n=n: model.sample(r, horizon=HORIZON, n_paths=n, seed=0), repeat=2)
        ga = timed(lambda n=n: garch.sample(r, horizon=HORIZON, n_paths=n, seed=0), repeat=5)
        rows += [{"name": f"WaveNet {n:,} x {HORIZON} paths", "value": n / wn, "unit": "paths/s"},
                 {"name": f"arch GARCH(1,1)-t {n:,} x {HORIZON} paths", "value": n / ga, "unit": "paths/s"},
                 {"name": f"WaveNet time / arch time, {n:,} paths", "value": wn / ga, "unit": "x"}]
    # Transformer: KV cache vs recompute of the context window, 1,000 paths x 1,000 steps
    tf = Transformer(train={"max_epochs": 1}).fit(r)
    kv = timed(lambda: tf.sample(r, horizon=1000, n_paths=1000, seed=0))
    naive_tf = timed(lambda: tf.sample(r, horizon=1000, n_paths=1000, seed=0, method="naive"))
    rows += [{"name": "Transformer KV cache, 1,000 x 1,000", "value": kv, "unit": "s"},
             {"name": "Transformer recompute, 1,000 x 1,000", "value": naive_tf, "unit": "s"},
             {"name": "speed-up KV cache vs recompute", "value": naive_tf / kv, "unit": "x"}]
    n = 10_000
    tf_t = timed(lambda: tf.sample(r, horizon=HORIZON, n_paths=n, seed=0), repeat=2)
    ga = timed(lambda: garch.sample(r, horizon=HORIZON, n_paths=n, seed=0), repeat=5)
    rows += [{"name": f"Transformer {n:,} x {HORIZON} paths", "value": n / tf_t, "unit": "paths/s"},
             {"name": f"Transformer time / arch time, {n:,} paths", "value": tf_t / ga, "unit": "x"}]
    # the arithmetic: FLOPs per generated step of one path, and what the matrix units of this
    # machine can do, so the least time the arithmetic alone needs is visible
    peak = matmul_gflops()
    rows.append({"name": "float32 matrix product, 2048^2", "value": peak, "unit": "GFLOP/s"})
    for name, m in (("WaveNet", model), ("Transformer", tf)):
        f = flops_per_step(m, r)
        rows += [{"name": f"{name} FLOPs per generated step and path", "value": f, "unit": "FLOP"},
                 {"name": f"{name} {n:,} x {HORIZON}: arithmetic at the matrix-product rate", "value":
                  f * n * HORIZON / (peak * 1e9), "unit": "s"}]
    # the Transformer's decoding reads its whole KV cache at every step: the memory traffic alone
    rate, kv = read_gbps(), kv_bytes_per_step(tf)
    rows += [{"name": "memory read rate, sum of 1 GiB float32", "value": rate, "unit": "GB/s"},
             {"name": "Transformer KV cache read per generated step and path", "value": kv, "unit": "B"},
             {"name": f"Transformer {n:,} x {HORIZON}: KV-cache reads at that rate", "value":
              kv * n * HORIZON / (rate * 1e9), "unit": "s"}]
    for row in rows:
        print(f"{row['name']:45s} {row['value']:10.3f} {row['unit']}", flush=True)
    write_results("generation_speed", "speed", rows, columns=["name", "value", "unit"],
                  extra={"horizon": HORIZON})


if __name__ == "__main__":
    main()
