"""Measured numbers of the worker model and the mitigations, for the README.

    python benchmarks/worker_model.py [--json FILE] [--seeds N]

1. The staleness law of exponential workers against (1/M)(1 − 1/M)^l, M = 2, 4, 16:
   χ² goodness of fit and the KS distance on thinned samples (every 30·M-th update
   after a 30·M burn-in, 2 000 seeds), for the memoryless clock and for the full
   clock (gamma times with k = 1, which are exponential).
2. A 10× straggler among M = 8 workers: wall-clock per update, mean staleness and
   P(τ ≥ 6M), against the NumPy reference ``simulate_worker_staleness``.
3. The delay-adaptive step on Figure 1 at μ = 0.9 (η = 5e-4, 30 000 steps, constant
   delays 0…300 in steps of 10): threshold delays with bootstrap intervals for
   c = ∞ (no mitigation), 5, 10 and 20.
"""

import argparse
import json
import platform
import time

from asyncjax import use_cpu_cores

use_cpu_cores()  # before JAX touches a device

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

import asyncjax as aj  # noqa: E402
from asyncjax import analysis, delays  # noqa: E402
from asyncjax._io import write_json  # noqa: E402
from asyncjax._reference.workers import simulate_worker_staleness  # noqa: E402


def staleness_law(n_seeds: int) -> list[dict]:
    out = []
    for law, model in (
        ("memoryless", delays.workers("exponential")),
        ("full clock", delays.workers("gamma")),
    ):
        for m in (2, 4, 16):
            lag = 30 * m
            tau = delays.worker_schedule(model, m, np.arange(n_seeds), 31 * lag)["staleness"][
                :, lag::lag
            ].ravel()
            top = int(
                np.floor(np.log(5.0 / (tau.size / m)) / np.log1p(-1.0 / m))
            )  # ≥ 5 expected per bin
            pmf = aj.theory.staleness_pmf(np.arange(top), m)
            probs = np.append(pmf, 1.0 - pmf.sum())
            counts = np.bincount(np.minimum(tau, top), minlength=top + 1)
            chi2 = stats.chisquare(counts, tau.size * probs)
            # KS distance of a discrete law: D = max over integers l of |F_n(l) − F(l)| (scipy's
            # kstest assumes a continuous law and mishandles the ties); for scale, 1.36/√n ≈ 0.006
            grid = np.arange(tau.max() + 1)
            d_ks = np.abs(
                np.cumsum(np.bincount(tau)) / tau.size - (1.0 - (1.0 - 1.0 / m) ** (grid + 1))
            ).max()
            out.append(
                {
                    "clock": law,
                    "workers": m,
                    "samples": int(tau.size),
                    "mean": float(tau.mean()),
                    "chi2": float(chi2.statistic),
                    "chi2_dof": top,
                    "chi2_p": float(chi2.pvalue),
                    "ks_D": float(d_ks),
                }
            )
            print(
                f"{law:10s} M={m:2d}: mean {tau.mean():6.3f} (M-1 = {m - 1}), chi2 p = {chi2.pvalue:.3f} "
                f"({top} dof), KS D = {d_ks:.4f}",
                flush=True,
            )
    return out


def straggler() -> dict:
    m, steps = 8, 50_000
    out = {}
    for law in ("constant", "exponential"):
        model = delays.workers(law, straggler=10.0, bins=2000)
        summ = delays.clock_summary(model, [m], np.arange(64), steps=steps, record_every=steps)
        hist = summ["staleness_hist"][0].sum(axis=0)
        runs = [
            simulate_worker_staleness(
                m, steps, compute=law, straggler=10.0, seed=s, return_time=True
            )
            for s in range(8)
        ]
        out[law] = {
            "wall_per_update": float(summ["wall_time"][0, :, -1].mean() / steps),
            "reference_wall_per_update": float(np.mean([t[-1] / t.size for _, t in runs])),
            "rate_prediction": 1 / 7.1,
            "mean_staleness": float(summ["staleness_mean"].mean()),
            "reference_mean_staleness": float(np.mean([tau.mean() for tau, _ in runs])),
            "tail_6M": float(hist[6 * m :].sum() / hist.sum()),
            "reference_tail_6M": float(np.mean([np.mean(tau >= 6 * m) for tau, _ in runs])),
            "tail_6M_without_straggler": (1 - 1 / m) ** (6 * m) if law == "exponential" else 0.0,
            "max_staleness": int(summ["staleness_max"].max()),
        }
        print(f"straggler, {law}: {out[law]}", flush=True)
    return out


def threshold_shift(n_seeds: int) -> dict:
    pca = aj.StreamingPCA([4.0, 3.0, 2.0, 1.0])
    ds = np.arange(0, 301, 10)
    cs = [1e9, 5.0, 10.0, 20.0]
    t0 = time.perf_counter()
    res = aj.sweep(
        pca,
        aj.Grid(adaptive_c=cs, delay=ds, momentum=0.9, lr=5e-4, seed=range(n_seeds)),
        steps=30_000,
        record_every=250,
        mitigation="delay_adaptive",
    )
    wall = time.perf_counter() - t0
    thr = analysis.threshold_delays(analysis.late_average(res), ds.astype(float))
    out = {
        "c": ["inf", 5.0, 10.0, 20.0],
        "threshold": thr.threshold.tolist(),
        "ci": np.stack([thr.ci_lo, thr.ci_hi], -1).tolist(),
        "censored": thr.censored.tolist(),
        "delays": ds.tolist(),
        "seeds": n_seeds,
        "sweep_s": wall,
        "late_error": analysis.late_average(res).mean(-1).tolist(),
        "rule": thr.rule,
    }
    for c, t, lo, hi, cen in zip(out["c"], thr.threshold, thr.ci_lo, thr.ci_hi, thr.censored):
        print(
            f"delay-adaptive c={c}: threshold {t:.1f} [{lo:.1f}, {hi:.1f}]{' (censored)' if cen else ''}",
            flush=True,
        )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", help="write the numbers to this JSON file")
    parser.add_argument("--seeds", type=int, default=100, help="seeds of the threshold sweep")
    args = parser.parse_args()
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "staleness_law": staleness_law(2000),
        "straggler": straggler(),
        "threshold_shift": threshold_shift(args.seeds),
    }
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    else:
        print(json.dumps(result["threshold_shift"], indent=1)[:2000])
