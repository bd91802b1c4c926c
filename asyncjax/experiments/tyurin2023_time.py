"""``asyncjax reproduce tyurin2023-time``: time to ε against workers with fixed compute times.

Tyurin & Richtárik (NeurIPS 2023) ask, for n workers with fixed compute times
τ_1 ≤ … ≤ τ_n, which server rule reaches E‖∇f‖² ≤ ε in the least wall-clock
time, and answer with time complexities (`asyncjax.theory.time_complexity`):
the optimal one, attained by Rennala SGD and Ringmaster ASGD, stops improving
once the fastest m* workers are in and does not degrade as slower ones join,
while ASGD's and minibatch SGD's grow with n. This preset runs one sweep per
method (ASGD, delay-adaptive ASGD, minibatch, Rennala, Ringmaster) on a noisy
quadratic with τ_i = √i and every n in the sweep, tunes each method's step
(and B, R or c) over its grid per n, and sets the measured times beside the
formulas, scaled by one constant fitted on the methods that attain the bound.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from asyncjax import plotting, theory
from asyncjax.analysis import laid_out
from asyncjax.experiments._common import divergence, drawing, headline_table, run_sweep
from asyncjax.experiments._time_to_eps import (
    RULE,
    interval,
    null_if_never,
    tuned_time,
    with_grad_sq,
)
from asyncjax.results import Results

FIGURES = ("time_to_eps.png", "grad_sq_vs_time.png")

LABELS = {
    "asgd": "ASGD",
    "delay_adaptive": "delay-adaptive ASGD",
    "minibatch": "minibatch SGD",
    "rennala": "Rennala SGD",
    "ringmaster": "Ringmaster ASGD",
}
_N_AXIS = {"minibatch": "batch"}  # the sweep axis that is the worker count n (see the TOML)


def compute_times(n: int) -> np.ndarray:
    """(n,) the preset's fixed compute times τ_i = √i, i = 1 … n."""
    return np.sqrt(np.arange(1, n + 1, dtype=np.float64))


def _problem_facts(specs: dict[str, Any]) -> tuple[float, int]:
    """The gradient-noise variance E‖ξ‖² = dσ² and d, the same in every sweep (else refused)."""
    facts = {
        name: (tuple(np.asarray(sp.problem.eigenvalues).tolist()), float(sp.problem.noise))
        for name, sp in specs.items()
    }
    if len(set(facts.values())) != 1:
        raise ValueError(f"tyurin2023-time: every sweep must run the same quadratic; got {facts}")
    lam, sigma = next(iter(facts.values()))
    return len(lam) * sigma**2, len(lam)


def _workers_of(name: str, res: Results) -> np.ndarray:
    """The worker counts n of a sweep (minibatch: its batch axis, on the largest n's clock)."""
    axis = _N_AXIS.get(name, "workers")
    n = res.coords[axis].astype(int)
    if axis == "batch":  # waiting for the fastest n of N sorted fixed times is minibatch on n
        top = int(np.max(np.asarray(res.attrs["grid"]["fixed"].get("workers", -1))))
        if top != int(n.max()) or "workers" in res.coords:
            raise ValueError(
                "tyurin2023-time runs minibatch SGD as msync on one worker count N with batch = "
                f"n for every n <= N, the largest equal to N; got workers={top}, batch={n.tolist()}"
            )
    return n


def _resolution(res: Results, keep: str, tuned: Any, eps: float) -> np.ndarray:
    """(n,) wall time between the first record <= ε of the best point and the record before it.

    The first-record rule can overstate the time to ε by at most this much.
    """
    dims = ("seed", keep) + tuned.tuned_axes + ("step",)
    wall = laid_out(res, "wall_time", dims).mean(axis=0)
    sq = laid_out(with_grad_sq(res), "grad_sq", dims).mean(axis=0)
    wall = np.broadcast_to(wall, sq.shape).reshape(sq.shape[0], -1, sq.shape[-1])
    sq = sq.reshape(sq.shape[0], -1, sq.shape[-1])
    out = np.full(sq.shape[0], np.nan)
    for i in range(sq.shape[0]):
        j = int(np.argmin(tuned.table[i].reshape(-1)))
        hit = np.flatnonzero(sq[i, j] <= eps)
        if hit.size and hit[0] > 0:
            out[i] = wall[i, j, hit[0]] - wall[i, j, hit[0] - 1]
    return out


def _best_curves(res: Results, keep: str, tuned: Any) -> tuple[np.ndarray, np.ndarray]:
    """(n, R) wall time and seed-mean ‖∇f‖² of each n's best grid point."""
    dims = ("seed", keep) + tuned.tuned_axes + ("step",)
    sq = laid_out(with_grad_sq(res), "grad_sq", dims).mean(axis=0)
    wall = np.broadcast_to(laid_out(res, "wall_time", dims).mean(axis=0), sq.shape)
    sq = sq.reshape(sq.shape[0], -1, sq.shape[-1])
    wall = wall.reshape(sq.shape)
    pick = np.argmin(tuned.table.reshape(tuned.table.shape[0], -1), axis=1)
    rows = np.arange(sq.shape[0])
    return wall[rows, pick], sq[rows, pick]


def time_figure(
    workers: np.ndarray,
    methods: list[str],
    t: np.ndarray,
    ci: np.ndarray,
    theory_t: np.ndarray,
    *,
    title: str,
) -> Any:
    """Time to ε against n per method (95% intervals), the scaled formulas dashed."""
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    colors = plotting.distinct_colors(len(methods))
    for k, (m, c) in enumerate(zip(methods, colors)):
        ok = np.isfinite(t[k])
        shift = 1.0 + 0.03 * (k - (len(methods) - 1) / 2)  # keep the error bars apart
        lo, hi = ci[k, :, 0], np.where(np.isfinite(ci[k, :, 1]), ci[k, :, 1], t[k])
        ax.errorbar(
            workers[ok] * shift,
            t[k, ok],
            yerr=[  # the re-tuned interval need not contain the estimate: bars clipped at it
                np.maximum(t[k, ok] - lo[ok], 0.0),
                np.maximum(hi[ok] - t[k, ok], 0.0),
            ],
            fmt="o-",
            color=c,
            capsize=3,
            lw=1.6,
            label=f"{LABELS.get(m, m)} (tuned)",
        )
        if np.isfinite(theory_t[k]).any():
            ax.plot(workers, theory_t[k], "--", color=c, lw=1.1, alpha=0.8)
    ax.plot([], [], "--", color="gray", label="formula × fitted constant")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(workers.astype(float))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _p: f"{x:g}"))
    ax.xaxis.set_minor_locator(plt.NullLocator())
    plotting.tidy_log_axis(ax.yaxis)
    ax.set_xlabel("workers n (compute times √1 … √n)")
    ax.set_ylabel("time to ε (virtual seconds)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def curves_figure(
    workers: np.ndarray,
    methods: list[str],
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    eps: float,
    *,
    title: str,
) -> Any:
    """Seed-mean ‖∇f‖² against wall-clock time at each method's tuned setting, smallest and largest n."""
    picks = [0, len(workers) - 1] if len(workers) > 1 else [0]
    fig, axes = plt.subplots(1, len(picks), figsize=(6.0 * len(picks), 4.4), sharey=True)
    axes = np.atleast_1d(axes)
    colors = plotting.distinct_colors(len(methods))
    for ax, i in zip(axes, picks):
        horizon = 0.0
        for m, c in zip(methods, colors):
            wall, sq = curves[m]
            ax.plot(wall[i], sq[i], color=c, lw=1.4, label=LABELS.get(m, m))
            below = np.flatnonzero(sq[i] <= eps)
            if below.size:
                horizon = max(horizon, float(wall[i][below[0]]))
        ax.axhline(eps, color="k", lw=0.8, ls=":", label="ε")
        ax.set_yscale("log")
        if horizon > 0:
            ax.set_xlim(0, 2.5 * horizon)
        ax.set_xlabel("wall-clock time (virtual seconds)")
        ax.set_title(f"n = {int(workers[i])}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("seed-mean ‖∇f‖² at the tuned setting")
    axes[-1].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _tuned_settings(name: str, tuned: Any, workers: np.ndarray) -> list[dict[str, Any]]:
    """Per n: the best grid values of a method (lr and B, R or c)."""
    return [
        {"workers": int(n), **{ax: float(v[i]) for ax, v in tuned.best.items()}}
        for i, n in enumerate(workers)
    ]


def _paired_ratio(num: Any, den: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """num/den per n with the paired seed-bootstrap interval (both re-tuned in every resample)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num.time / den.time
        boot = num.boot / den.boot
    boot = np.where(np.isnan(boot), np.inf, boot)
    lo = np.quantile(boot, 0.025, axis=0, method="lower")
    hi = np.quantile(boot, 0.975, axis=0, method="higher")
    return r, np.stack([lo, hi], axis=-1), boot


def _flat(tuned: Any) -> bool:
    """Every n's 95% interval shares a value with every other n's: flat within the bootstrap noise."""
    ci = tuned.ci
    return bool(np.all(np.isfinite(tuned.time)) and ci[:, 0].max() <= ci[:, 1].min())


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs every method's sweep and returns the summary (the documented keys, and more)."""
    a = cfg.get("analysis", {})
    eps, n_boot = float(a["eps"]), int(a.get("bootstrap", 1000))
    formula = dict(a.get("formula", {}))
    calibrate = list(a.get("calibrate", []))
    methods = list(cfg["sweep"])
    unknown = [m for m in [*formula, *calibrate] if m not in methods]
    if unknown:
        raise ValueError(f"tyurin2023-time: [analysis] names {unknown[0]!r}, which is no sweep")

    t0 = time.perf_counter()
    runs = {m: run_sweep(cfg, out, progress, meta, m) for m in methods}
    drawing(FIGURES, progress)
    sim_s = time.perf_counter() - t0

    results = {m: r for m, (r, _) in runs.items()}
    variance, d = _problem_facts({m: sp for m, (_, sp) in runs.items()})
    s = variance / eps
    counts = {m: _workers_of(m, r) for m, r in results.items()}
    workers = counts[methods[0]]
    for m, n in counts.items():
        if not np.array_equal(n, workers):
            raise ValueError(
                f"tyurin2023-time: every method must run the same worker counts; {methods[0]} "
                f"has {workers.tolist()}, {m} has {n.tolist()}"
            )
    tuned = {
        m: tuned_time(results[m], eps, (_N_AXIS.get(m, "workers"),), n_boot=n_boot) for m in methods
    }
    t = np.stack([tuned[m].time for m in methods])  # (M, N)
    ci = np.stack([interval(tuned[m].time, tuned[m].ci) for m in methods])

    raw = np.full(t.shape, np.nan)  # the formulas, in units of LΔ/ε
    for k, m in enumerate(methods):
        if m in formula:
            raw[k] = [theory.time_complexity(compute_times(n), s, formula[m]) for n in workers]
    rows = [methods.index(m) for m in calibrate]
    ok = np.isfinite(t[rows]) & np.isfinite(raw[rows])
    const = float(np.exp(np.mean(np.log(t[rows][ok] / raw[rows][ok])))) if ok.any() else np.nan

    summary: dict[str, Any] = {
        "workers": workers,
        "methods": methods,
        "time_to_eps": null_if_never(t),
        "time_to_eps_ci": ci,
        "theory": const * raw,
        "eps": eps,
        "s": s,
        "formula": {m: formula.get(m) for m in methods},
        "theory_unscaled": raw,
        "theory_constant": const,
        "calibrated_on": calibrate,
        "tuned": {m: _tuned_settings(m, tuned[m], workers) for m in methods},
        "updates_at_eps": {
            m: np.where(tuned[m].updates >= 0, tuned[m].updates, np.nan) for m in methods
        },
        "events_at_eps": {
            m: null_if_never(np.where(tuned[m].events >= 0, tuned[m].events, np.inf))
            for m in methods
        },
        "time_resolution": {
            m: _resolution(results[m], _N_AXIS.get(m, "workers"), tuned[m], eps) for m in methods
        },
    }
    if "asgd" in tuned and "ringmaster" in tuned:
        r, r_ci, _ = _paired_ratio(tuned["asgd"], tuned["ringmaster"])
        summary["asgd_to_ringmaster"] = null_if_never(r)
        summary["asgd_to_ringmaster_ci"] = interval(r, r_ci)
        summary["asgd_to_ringmaster_theory"] = [
            theory.time_complexity(compute_times(n), s, "asgd")
            / theory.time_complexity(compute_times(n), s, "optimal")
            for n in workers
        ]
    growth, growth_ci = {}, {}
    for m in methods:  # T(n_max) / T(n_min), paired over the same resamples
        with np.errstate(invalid="ignore", divide="ignore"):
            g = tuned[m].time[-1] / tuned[m].time[0]
            b = np.nan_to_num(tuned[m].boot[:, -1] / tuned[m].boot[:, 0], nan=np.inf)
        growth[m] = g if np.isfinite(g) else np.nan
        growth_ci[m] = [
            float(np.quantile(b, 0.025, method="lower")),
            float(np.quantile(b, 0.975, method="higher")),
        ]
    summary["growth"] = growth
    summary["growth_ci"] = growth_ci
    summary["flat"] = {m: _flat(tuned[m]) for m in methods}
    summary["claims"] = {
        "rennala_flat": summary["flat"].get("rennala"),
        "ringmaster_flat": summary["flat"].get("ringmaster"),
        "asgd_grows": bool(growth_ci.get("asgd", [0.0])[0] > 1.0),
        "note": "flat: the 95% intervals of the tuned time to eps at every n share a value. "
        "asgd_grows: the paired interval of T(n_max)/T(n_min) for ASGD (constant step, tuned "
        "per n) lies above 1.",
    }

    title = (
        f"f = ½Σλx², d = {d}, s = E‖ξ‖²/ε = {s:.3g}, ε = {eps:g}, τ_i = √i; "
        f"{int(results[methods[0]]['diverged_at'].shape[-1])} seeds"
    )
    plotting.save(time_figure(workers, methods, t, ci, const * raw, title=title), out / FIGURES[0])
    curves = {m: _best_curves(results[m], _N_AXIS.get(m, "workers"), tuned[m]) for m in methods}
    plotting.save(curves_figure(workers, methods, curves, eps, title=title), out / FIGURES[1])

    spec0 = runs[methods[0]][1]
    summary.update(
        {
            "settings": {
                "problem": "quadratic",
                "eigenvalues": np.asarray(spec0.problem.eigenvalues),
                "noise": float(spec0.problem.noise),
                "noise_variance": variance,
                "compute_times": "tau_i = sqrt(i), i = 1 ... n (fixed)",
                "seeds": int(results[methods[0]]["diverged_at"].shape[-1]),
                "events": {m: int(r.attrs["steps"]) for m, r in results.items()},
                "record_every": {m: int(r.attrs["record_every"]) for m, r in results.items()},
                "grids": {
                    m: {
                        k: v
                        for k, v in r.attrs["grid"]["axes"].items()
                        if k not in ("seed", "workers")
                    }
                    for m, r in results.items()
                },
            },
            "rule": RULE,
            "theory_note": "theory: asyncjax.theory.time_complexity(sqrt(1..n), s, formula) in units "
            "of L*Delta/eps, times theory_constant, the geometric mean of measured/formula over "
            "the cells of the calibrated_on methods; the other methods' lines are predictions.",
            **divergence(*results.values()),
            "simulation_s": sim_s,
        }
    )
    return summary


def headline(summary: dict[str, Any]) -> str:
    """Time to ε per method against n, with the formulas; the ASGD-to-Ringmaster ratio per n."""
    parts = [
        headline_table(
            summary,
            "time to eps per method (tuned; - never), one entry per workers; theory: the formula "
            "times theory_constant:",
            ("methods", "time_to_eps", "theory"),
            scalars=("workers", "eps", "s", "theory_constant"),
        )
    ]
    if "asgd_to_ringmaster" in summary:
        parts.append(
            headline_table(
                summary,
                "per workers: ASGD's time to eps over Ringmaster's (paired 95% interval) and the "
                "formulas' ratio:",
                (
                    "workers",
                    "asgd_to_ringmaster",
                    "asgd_to_ringmaster_ci",
                    "asgd_to_ringmaster_theory",
                ),
            )
        )
    return "\n".join(parts)
