"""Where the stationary preset's 1.5–3% excess over Theorem 5 comes from.

`asyncjax reproduce liu2018-stationary` reads every simulated/theory ratio
1.5–3% above 1 (2–7 of its standard errors). This script separates the two
things behind that:

* ``scan``: the ratio against η/(1−μ) (μ = 0; the SDE and, with common random
  numbers, the simulation depend on η and μ only through it), 1000 seeds,
  averaged over steps 80 000–240 000: a real excess that grows with η/(1−μ),
  the higher-order terms the leading-order SDE leaves out.
* ``windows``: μ = 0, η = 2.5e-4 and 5e-4, 4000 seeds, the ratio in successive
  40 000-step windows of one long run: at small η/(1−μ) it scatters around 1
  within its standard errors, and the preset's window (steps 20 000–60 000 of
  seeds 0–999) is one draw of that scatter, shared by all ten of its points
  because they share their data streams.

Run:  python benchmarks/stationary_excess.py [--x64] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--x64", action="store_true", help="simulate in float64 (other random streams)")
    p.add_argument("--json", help="write the numbers to this file")
    p.add_argument(
        "--seeds", type=int, default=4000, help="seeds of the window study (default 4000)"
    )
    args = p.parse_args(argv)
    if args.x64:
        jax.config.update("jax_enable_x64", True)

    import asyncjax as aj
    from asyncjax import analysis, theory

    aj.use_cpu_cores()
    pca = aj.StreamingPCA([4.0, 3.0, 2.0, 1.0])
    alpha2 = pca.fourth_moments()
    out: dict = {
        "dtype": "float64" if args.x64 else "float32",
        "device": f"{jax.devices()[0].device_kind} x{len(jax.devices())}",
        "asyncjax_version": aj.__version__,
    }
    t0 = time.perf_counter()

    # --- ratio against η/(1−μ), long stationary average
    lrs = [6.25e-5, 1.25e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3]
    res = aj.sweep(
        pca,
        aj.Grid(momentum=0.0, lr=lrs, seed=range(1000)),
        steps=240_000,
        record_every=1000,
        init=[1.0, 0.0, 0.0, 0.0],
    )
    keep = res.coords["step"] >= 80_000
    per_seed = analysis.with_failures(res)[..., keep].mean(axis=-1)
    b = analysis.band(per_seed, axis=-1)
    th = theory.sde_stationary_error(pca.eigenvalues, 0.0, np.array(lrs), alpha2)
    out["scan"] = {
        "momentum": 0.0,
        "lr_over_one_minus_momentum": lrs,
        "seeds": 1000,
        "window_steps": [80_000, 240_000],
        "ratio": (b.mean / th).tolist(),
        "ratio_stderr": (b.stderr / th).tolist(),
        "diverged_fraction": analysis.diverged_fraction(res).tolist(),
    }
    print("ratio against eta/(1-mu), mu = 0, steps 80k-240k, 1000 seeds:")
    for lr, r, se in zip(lrs, out["scan"]["ratio"], out["scan"]["ratio_stderr"]):
        print(f"  eta/(1-mu) = {lr:<8g} {r:.4f} ± {se:.4f}  ({(r - 1) / se:+.1f} SE)", flush=True)

    # --- successive windows of one long run, many seeds
    lrs = [2.5e-4, 5e-4]
    res = aj.sweep(
        pca,
        aj.Grid(momentum=0.0, lr=lrs, seed=range(args.seeds)),
        steps=240_000,
        record_every=500,
        init=[1.0, 0.0, 0.0, 0.0],
    )
    err = analysis.with_failures(res)  # (lr, seed, step)
    steps = res.coords["step"]
    th = theory.sde_stationary_error(pca.eigenvalues, 0.0, np.array(lrs), alpha2)
    windows = [
        (20_000, 60_000),
        (60_000, 100_000),
        (100_000, 140_000),
        (140_000, 180_000),
        (180_000, 240_000),
    ]
    rows = []
    print(f"ratio in successive windows, mu = 0, {args.seeds} seeds:")
    for a, z in windows:
        sel = (steps >= a) & (steps <= z)
        w = err[..., sel].mean(axis=-1)
        m, se = w.mean(axis=-1) / th, w.std(axis=-1, ddof=1) / np.sqrt(args.seeds) / th
        rows.append({"steps": [a, z], "ratio": m.tolist(), "ratio_stderr": se.tolist()})
        print(
            f"  steps {a:>6}-{z:<6} "
            + "   ".join(f"eta={lr:g}: {r:.4f} ± {s:.4f}" for lr, r, s in zip(lrs, m, se)),
            flush=True,
        )
    sel = steps >= 20_000
    w = err[..., sel].mean(axis=-1)
    pooled = (w.mean(axis=-1) / th).tolist()
    pooled_se = (w.std(axis=-1, ddof=1) / np.sqrt(args.seeds) / th).tolist()
    out["windows"] = {
        "momentum": 0.0,
        "lr": lrs,
        "seeds": args.seeds,
        "windows": rows,
        "pooled_steps": [20_000, 240_000],
        "pooled_ratio": pooled,
        "pooled_ratio_stderr": pooled_se,
    }
    print(
        "  pooled 20k-240k: "
        + "   ".join(f"eta={lr:g}: {r:.4f} ± {s:.4f}" for lr, r, s in zip(lrs, pooled, pooled_se))
    )
    out["wall_s"] = time.perf_counter() - t0
    if args.json:
        from asyncjax._io import write_json

        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
