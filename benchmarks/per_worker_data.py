"""What per-worker data costs per arrival: the same sweep with shared data and with a split.

    python benchmarks/per_worker_data.py [--seeds 256] [--workers 16] [--json FILE]

On scikit-learn's digits (1 437 training rows, 64 pixels, 10 classes), minibatches of 32 rows,
exponential workers on the worker clock (every arrival applied), for least squares on the
labels (the cheapest gradient, so the sharper test of the overhead) and a 64-32-10 MLP:
trajectory-arrivals per second with every worker sampling all rows (today's shared data), with
``splits.iid(M)`` and with ``splits.dirichlet(M, 0.1)``. Each figure is the fastest of
``--repeats`` runs of the compiled sweep after a first run that compiles (its time reported
apart), the variants' runs interleaved. The time of a split run over the shared run's is the
cost of per-worker data per arrival (acceptance: at most 1.3); it is given for wall time and
for the process's CPU time, which other jobs on a shared host disturb less.

With a split a step draws the same uniforms as today's row indices and maps them through the
arriving worker's row table inside the gradient: one (H, S) gather of the worker's shard size
and one of ``batch`` table entries per arrival, beside the gradient's own gather of the rows.
"""

import argparse
import platform
import time

from asyncjax import use_cpu_cores

use_cpu_cores()  # before JAX touches a device

import jax  # noqa: E402
import numpy as np  # noqa: E402

import asyncjax as aj  # noqa: E402
from asyncjax._io import write_json  # noqa: E402

SPLIT_SEED = 0  # dirichlet(16, 0.1, seed=0) leaves no worker of digits without rows


def problems(workers: int) -> dict:
    ds = aj.datasets.digits()
    splits = {
        "shared": None,
        "iid": aj.splits.iid(workers),
        "dirichlet(0.1)": aj.splits.dirichlet(workers, 0.1, seed=SPLIT_SEED),
    }
    return {
        "least_squares": {
            k: aj.LeastSquares.from_dataset(ds, batch=32, split=s) for k, s in splits.items()
        },
        "mlp": {k: aj.MLP(ds, hidden=(32,), batch=32, split=s) for k, s in splits.items()},
    }


def timed(problem, workers: int, seeds: int, steps: int) -> np.ndarray:
    """(wall, CPU) seconds of one sweep (compiled on its first call)."""
    grid = aj.Grid(workers=workers, lr=0.01, momentum=0.5, seed=range(seeds))
    kw = dict(delay_model="workers", steps=steps, record_every=steps, progress=False)
    t, c = time.perf_counter(), time.process_time()
    aj.sweep(problem, grid, **kw)
    return np.array([time.perf_counter() - t, time.process_time() - c])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=256)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--mlp-seeds", type=int, default=64)
    p.add_argument("--mlp-steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    rows = []
    for workload, by_split in problems(args.workers).items():
        seeds, steps = (
            (args.seeds, args.steps) if workload != "mlp" else (args.mlp_seeds, args.mlp_steps)
        )
        first = {k: timed(prob, args.workers, seeds, steps) for k, prob in by_split.items()}
        best = {k: np.full(2, np.inf) for k in by_split}
        for _ in range(args.repeats):  # interleaved, so a busy spell on a shared host hits all
            for k, prob in by_split.items():
                best[k] = np.minimum(best[k], timed(prob, args.workers, seeds, steps))
        for split, problem in by_split.items():
            r = seeds * steps / best[split][0]
            row = {
                "workload": workload,
                "split": split,
                "seeds": seeds,
                "steps": steps,
                "arrivals_per_s": r,
                "cost_vs_shared": best[split][0] / best["shared"][0],
                "cpu_s": best[split][1],
                "cpu_cost_vs_shared": best[split][1] / best["shared"][1],
                "first_run_s": first[split][0],
            }
            if problem.shards is not None:
                sizes = problem.shards.sizes
                row["shard_sizes"] = [int(sizes.min()), int(sizes.max())]
            rows.append(row)
            print(
                f"{workload:14s} {split:15s} {r:10.4g} arrivals/s  cost {row['cost_vs_shared']:.2f}x "
                f"shared (CPU time {row['cpu_cost_vs_shared']:.2f}x)  first run {first[split][0]:.1f} s"
            )
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {jax.device_count()} CPU device(s)",
        "jax": jax.__version__,
        "workers": args.workers,
        "repeats": args.repeats,
        "rows": rows,
    }
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
