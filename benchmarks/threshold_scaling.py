"""How the threshold delay scales with the step size η (and the prediction beside it).

    python benchmarks/threshold_scaling.py [--seeds N] [--json FILE]

Streaming PCA as in Figure 1 (Σ = diag(4, 3, 2, 1), from the saddle), μ = 0.9,
η ∈ {2.5e-4, 5e-4, 1e-3, 2e-3}, delays 0…150 in steps of 2. The threshold rule
is the Figure-1 preset's (a diverged trajectory counts as failed, sin² = 1); the
exponent of threshold against η is fitted with a seed-bootstrap interval, next
to the exact stability boundary's.
"""

import argparse
import time

import jax

from asyncjax import use_cpu_cores

use_cpu_cores()  # before JAX touches a device

import numpy as np  # noqa: E402

import asyncjax as aj  # noqa: E402
from asyncjax import analysis, theory  # noqa: E402
from asyncjax._io import write_json  # noqa: E402

MOMENTUM = 0.9
LRS = [2.5e-4, 5e-4, 1e-3, 2e-3]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--steps", type=int, default=40000)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    pca = aj.StreamingPCA([4.0, 3.0, 2.0, 1.0])
    grid = aj.Grid(lr=LRS, delay=range(0, 151, 2), momentum=MOMENTUM, seed=range(args.seeds))
    t = time.perf_counter()
    res = aj.sweep(pca, grid, steps=args.steps, record_every=250)
    wall = time.perf_counter() - t
    thr = analysis.threshold_delays(
        analysis.late_average(res),
        res.coords["delay"].astype(float),
        diverged=analysis.diverged_mask(res),
    )
    pred = np.array([theory.pca_threshold(pca.eigenvalues, MOMENTUM, lr) for lr in LRS])
    fit = analysis.fit_power_law(LRS, thr.threshold, thr.boot)
    fit_pred = analysis.fit_power_law(LRS, pred)
    out = {
        "momentum": MOMENTUM,
        "lr": LRS,
        "threshold": thr.threshold,
        "threshold_ci": np.stack([thr.ci_lo, thr.ci_hi], -1),
        "censored": thr.censored,
        "predicted": pred,
        "exponent_vs_lr": fit.exponent,
        "exponent_ci": fit.exponent_ci,
        "predicted_exponent": fit_pred.exponent,
        "seeds": args.seeds,
        "steps": args.steps,
        "diverged_fraction_below_threshold": thr.diverged_below,
        "diverged_fraction": analysis.diverged_fraction(res).tolist(),
        "divergence_rule": analysis.DIVERGENCE_RULE,
        "wall_s": wall,
        "device": f"{jax.devices()[0].device_kind} x{len(jax.devices())}",
    }
    for lr, t_, p in zip(LRS, thr.threshold, pred):
        print(f"lr={lr:g}: threshold {t_:.1f}, predicted {p}")
    print(
        f"exponent vs lr: {fit.exponent:.3f} {fit.exponent_ci} (boundary: {fit_pred.exponent:.3f}); {wall:.1f} s"
    )
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    main()
