"""``asyncjax reproduce mitliagkas2016``: asynchrony begets momentum (Mitliagkas et al. 2016).

Two sweeps on the worker clock with exponential compute times (the queuing
model), M ∈ {1, 2, 4, 8, 16, 32}:

* ``implicit``: Async-SGD (no explicit momentum) on a noisy quadratic, every
  step recorded; `asyncjax.analysis.implicit_momentum_fit` reads the
  momentum its mean trajectory implies, set against 1 − 1/M
  (`asyncjax.theory.implicit_momentum`).
* ``tuned``: the MLP on digits at one step size over a momentum grid reaching
  −0.8; the training loss after the budget picks the best algorithmic
  momentum for every M.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from asyncjax import analysis, plotting, theory
from asyncjax.experiments._common import divergence, drawing, headline_table, run_sweep
from asyncjax.experiments._momentum_workers import (
    SeedStats,
    best_falls,
    best_index,
    best_of,
    draw_tuning,
    paired_margin,
    seed_stats,
    workers_axis,
)
from asyncjax.results import Results

NEEDS_DIGITS = True  # the runner checks for scikit-learn before anything runs
FIGURES = ("implicit_momentum.png", "best_momentum.png")

_MIN_SEEDS = 4  # analysis.implicit_momentum_fit splits the seeds in two halves of at least 2


def _implicit(res: Results, eigenvalues: np.ndarray, lr: float, n_boot: int) -> dict[str, Any]:
    """Fits the implicit momentum for every worker count of the ``implicit`` sweep."""
    workers = res.coords["workers"].astype(float)
    iterates = res["iterates"]  # (workers, seed, step, component)
    flags = analysis.diverged_mask(res)  # (workers, seed)
    fits = []
    for i in range(workers.size):
        kept = iterates[i][~flags[i]]  # a frozen trajectory no longer follows the dynamics
        fits.append(
            analysis.implicit_momentum_fit(kept, lambda x: -eigenvalues * x, lr, n_boot=n_boot)
        )
    m = np.array([f.momentum for f in fits])
    ci = np.array([f.momentum_ci for f in fits])
    predicted = theory.implicit_momentum(workers)
    return {
        "workers": workers,
        "implicit_momentum": m,
        "implicit_momentum_ci": ci,
        "predicted": predicted,
        "implicit_abs_error": np.abs(m - predicted),
        "implicit_ci_covers": (ci[:, 0] <= predicted) & (predicted <= ci[:, 1]),
        "implicit_diverged_fraction": flags.mean(axis=-1),
    }


def implicit_figure(workers: np.ndarray, m: np.ndarray, ci: np.ndarray, *, title: str) -> Any:
    """Measured implicit momentum (95% CI) against the queuing model's 1 − 1/M."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    fine = np.geomspace(workers.min(), workers.max(), 200)
    ax.plot(
        fine,
        theory.implicit_momentum(fine),
        "-",
        color="tab:red",
        lw=1.5,
        label="queuing model: 1 − 1/M",
    )
    ax.errorbar(
        workers,
        m,
        yerr=np.abs(ci.T - m[None, :]),
        fmt="o",
        color="k",
        capsize=4,
        label="fitted to the mean trajectories (95% CI)",
    )
    for w, v, (lo, hi) in zip(workers, m, ci):
        ax.annotate(
            f"{v:.3f} [{lo:.3f}, {hi:.3f}]",
            (w, v),
            xytext=(6, -10),
            textcoords="offset points",
            fontsize=7,
        )
    workers_axis(ax, workers)
    ax.set_xlim(workers.min() / 1.3, workers.max() * 2.2)  # room on the right for the numbers
    ax.set_ylabel("implicit momentum")
    ax.set_ylim(min(-0.1, float(ci.min()) - 0.05), 1.05)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _tuned(res: Results) -> tuple[dict[str, Any], SeedStats, np.ndarray]:
    """Training loss after the budget per (workers, momentum) and the best momentum per M.

    Returns:
      The summary's entries, the (workers, momentum) `SeedStats` of the
      loss, and the (workers,) index of the best momentum (-1: none).
    """
    workers = res.coords["workers"].astype(float)
    momenta = res.coords["momentum"].astype(float)
    loss = analysis.at_step(
        res, int(res.coords["step"][-1])
    )  # (workers, momentum, seed); diverged = inf
    st = seed_stats(loss, analysis.diverged_mask(res))
    best = best_index(st.mean, maximize=False)
    best_mu = best_of(momenta, best)
    zero = int(np.argmin(np.abs(momenta)))  # μ = 0, or the grid's momentum nearest to it
    negative = np.where(momenta < 0, st.mean, np.nan)
    lowest_negative = (
        np.nanmin(negative, axis=1) if (momenta < 0).any() else np.full(workers.size, np.nan)
    )
    entries = {
        "momentum_grid": momenta,
        "loss": st.mean,
        "loss_ci": st.ci,
        "best_algorithmic_momentum": best_mu,
        "best_margin": paired_margin(loss, best, maximize=False),
        "naive_rule": best_mu[0] - theory.implicit_momentum(workers),
        "best_negative_vs_zero": lowest_negative / st.mean[:, zero],
        "diverged_fraction": st.diverged,
    }
    return entries, st, best


def _claims(tuned: dict[str, Any], workers: np.ndarray) -> dict[str, Any]:
    """The paper's two claims about the best algorithmic momentum, read off the measured best."""
    best = tuned["best_algorithmic_momentum"]
    return {
        "best_falls_as_workers_grow": best_falls(best),
        "workers_where_negative_momentum_is_best": workers[best < 0],
        "note": "best_falls_as_workers_grow: the best momentum never rises from one worker count to the next "
        "and ends lower than it starts. best_negative_vs_zero: the lowest mean loss over the negative "
        "momenta divided by the loss at μ = 0, per M (below 1: some negative momentum beats none).",
    }


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs both sweeps and returns the summary (the documented keys, and more)."""
    n_seeds = cfg["sweep"]["implicit"]["grid"]["seeds"]
    if n_seeds < _MIN_SEEDS:
        raise ValueError(
            f"mitliagkas2016 fits the implicit momentum on two halves of the seeds and needs at least "
            f"{_MIN_SEEDS} of them; got {n_seeds} (--seeds)"
        )
    t0 = time.perf_counter()
    res_i, spec_i = run_sweep(cfg, out, progress, meta, "implicit", record_iterates=True)
    res_t, spec_t = run_sweep(cfg, out, progress, meta, "tuned")
    drawing(FIGURES, progress)
    sim_s = time.perf_counter() - t0

    lr_i, lr_t = float(spec_i.grid.fixed["lr"]), float(spec_t.grid.fixed["lr"])
    imp = _implicit(
        res_i, spec_i.problem.eigenvalues, lr_i, int(cfg.get("analysis", {}).get("bootstrap", 400))
    )
    tuned, st, best = _tuned(res_t)
    workers = imp["workers"]
    if not np.array_equal(workers, res_t.coords["workers"].astype(float)):
        raise ValueError(
            "the implicit and tuned sweeps of mitliagkas2016 must share their worker counts"
        )

    n_i = res_i["iterates"].shape[1]
    plotting.save(
        implicit_figure(
            workers,
            imp["implicit_momentum"],
            imp["implicit_momentum_ci"],
            title=f"Async-SGD on a noisy quadratic, η={lr_i:g}, {n_i} seeds, exponential "
            "compute times",
        ),
        out / FIGURES[0],
    )
    n_t = int(res_t["diverged_at"].shape[-1])
    fig = draw_tuning(
        workers,
        tuned["momentum_grid"],
        st,
        best,
        ylabel="training loss after the budget",
        log=True,
        title=f"MLP on digits, η={lr_t:g}, {res_t.attrs['steps']} steps, {n_t} seeds",
        extra_lines=[(tuned["naive_rule"], "best at M = 1 minus (1 − 1/M)")],
    )
    plotting.save(fig, out / FIGURES[1])
    return {
        **imp,
        **tuned,
        "claims": _claims(tuned, workers),
        "implicit_settings": {
            "problem": "quadratic",
            "eigenvalues": spec_i.problem.eigenvalues,
            "lr": lr_i,
            "noise": spec_i.problem.noise,
            "steps": int(res_i.attrs["steps"]),
            "seeds": n_i,
        },
        "tuned_settings": {
            "problem": res_t.attrs["problem"]["problem"],
            "hidden": res_t.attrs["problem"]["hidden"],
            "batch": res_t.attrs["problem"]["batch"],
            "lr": lr_t,
            "steps": int(res_t.attrs["steps"]),
            "seeds": n_t,
        },
        "compute_times": {
            "implicit": res_i.attrs["delay"]["law"],
            "tuned": res_t.attrs["delay"]["law"],
            "note": "exponential times of mean 1 are the queuing model of Mitliagkas et al.",
        },
        "divergence_rule": analysis.DIVERGENCE_RULE
        + " The implicit-momentum fit leaves diverged trajectories "
        "out (a frozen iterate no longer follows the dynamics); training loss counts them as "
        "infinite.",
        **divergence(res_i, res_t),
        "simulation_s": sim_s,
    }


def headline(summary: dict[str, Any]) -> str:
    """Per worker count: the implicit momentum and 1 − 1/M, and the best algorithmic momentum."""
    return headline_table(
        summary,
        "per worker count: implicit momentum of Async-SGD (95% interval) against 1 - 1/M, and the "
        "best algorithmic momentum after re-tuning (loss per momentum: summary.json):",
        (
            "workers",
            "implicit_momentum",
            "implicit_momentum_ci",
            "predicted",
            "best_algorithmic_momentum",
        ),
    )
