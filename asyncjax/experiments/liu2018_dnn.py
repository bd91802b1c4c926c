"""``asyncjax reproduce liu2018-dnn``: momentum against workers on a small network (Liu et al. 2018, §4.2).

One sweep of the MLP on scikit-learn's digits over the paper's momentum grid
and 1–16 workers on the virtual clock; the held-out accuracy after a fixed
budget picks the best momentum for every worker count.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from asyncjax import analysis, plotting
from asyncjax.experiments._common import divergence, drawing, headline_table, run_sweep
from asyncjax.experiments._momentum_workers import (
    best_falls,
    best_index,
    best_of,
    draw_tuning,
    paired_margin,
    seed_stats,
)

NEEDS_DIGITS = True  # the runner checks for scikit-learn before anything runs
FIGURES = ("accuracy_vs_momentum.png",)

# What the paper states (SphereResNet34 on CIFAR-100): best μ at one and at eight workers.
PAPER_BEST = {1.0: 0.9, 8.0: 0.5}


def _claims(
    workers: np.ndarray, momenta: np.ndarray, mean: np.ndarray, best_mu: np.ndarray
) -> dict[str, Any]:
    """The paper's three statements, each checked against the measured means."""
    out: dict[str, Any] = {}
    for m, mu in PAPER_BEST.items():
        hit = np.flatnonzero(workers == m)
        out[f"best_is_{mu:g}_at_{m:g}_workers"] = bool(hit.size and best_mu[hit[0]] == mu)
    eight = np.flatnonzero(workers == 8.0)
    top = int(np.argmax(momenta))
    out["largest_momentum_worst_at_8_workers"] = bool(
        eight.size and np.argmin(mean[eight[0]]) == top
    )
    out["best_falls_as_workers_grow"] = best_falls(best_mu)
    return out


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs the sweep and returns the summary (the documented keys, and more)."""
    t0 = time.perf_counter()
    res, spec = run_sweep(cfg, out, progress, meta)
    drawing(FIGURES, progress)
    sim_s = time.perf_counter() - t0
    if res.dims["accuracy"][:3] != ("momentum", "workers", "seed"):
        raise ValueError(
            f"liu2018-dnn needs grid axes momentum, workers (in that order); got {res.dims['accuracy']}"
        )

    momenta = res.coords["momentum"].astype(float)
    workers = res.coords["workers"].astype(float)
    flags = analysis.diverged_mask(res).transpose(1, 0, 2)  # (workers, momentum, seed)
    acc = analysis.at_step(res, int(res.coords["step"][-1]), "accuracy").transpose(1, 0, 2)
    acc = np.where(flags, 0.0, acc)  # a diverged trajectory classifies nothing: counted as failed
    st = seed_stats(acc, flags)
    best = best_index(st.mean, maximize=True)
    best_mu = best_of(momenta, best)
    lr = float(spec.grid.fixed["lr"])
    law = res.attrs["delay"]["law"]
    fig = draw_tuning(
        workers,
        momenta,
        st,
        best,
        ylabel="held-out accuracy after the budget",
        log=False,
        title=f"MLP on digits, η={lr:g}, batch {res.attrs['problem']['batch']}, "
        f"{res.attrs['steps']} steps, {acc.shape[-1]} seeds, {law} compute times",
        reference=PAPER_BEST,
        reference_label="Liu et al. (SphereResNet34, CIFAR-100)",
    )
    plotting.save(fig, out / FIGURES[0])
    return {
        "workers": workers,
        "momentum_grid": momenta,
        "accuracy": st.mean,
        "accuracy_ci": st.ci,
        "best_momentum": best_mu,
        "worst_momentum": momenta[np.argmin(st.mean, axis=1)],
        "best_margin": paired_margin(acc, best, maximize=True),
        "claims": _claims(workers, momenta, st.mean, best_mu),
        "paper_best": {"workers": list(PAPER_BEST), "momentum": list(PAPER_BEST.values())},
        "compute_times": law,
        "staleness_mean": res["staleness_mean"].mean(axis=-1),
        "lr": lr,
        "batch": int(res.attrs["problem"]["batch"]),
        "steps": int(res.attrs["steps"]),
        "seeds": int(acc.shape[-1]),
        "diverged_fraction": st.diverged,
        "divergence_rule": analysis.DIVERGENCE_RULE
        + " For held-out accuracy the failed value is 0.",
        **divergence(res),
        "simulation_s": sim_s,
    }


def headline(summary: dict[str, Any]) -> str:
    """Per worker count: the best momentum and the held-out accuracy over the momentum grid."""
    return headline_table(
        summary,
        "per worker count: the best momentum, and held-out accuracy at each momentum of "
        "momentum_grid (seed mean):",
        ("workers", "best_momentum", "accuracy"),
        scalars=("momentum_grid",),
    )
