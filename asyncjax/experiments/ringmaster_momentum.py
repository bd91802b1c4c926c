"""``asyncjax reproduce ringmaster-momentum``: heavy-ball Ringmaster over (momentum, delay threshold).

Ringmaster ASGD (Maranjyan, Tyurin & Richtárik 2025) discards every gradient
R or more updates old, so the gradients it applies are at most R − 1 old.
With heavy ball on the server, asyncjax's exact stability boundary for a
constant delay (`asyncjax.theory.stability_threshold`; the theory page) says
the recurrence stays stable while that delay is at most τ*(μ, ηL): a larger R
lets more workers contribute, a threshold past τ* + 1 risks instability, so
the prediction for the best threshold is R − 1 = τ*(μ, ηL). This preset
measures the time to ε over the whole (μ, R) plane at one step, the best R
per μ with its seed-bootstrap interval, the thresholds within 10% of the best,
and where trajectories start to diverge, and sets the prediction beside them.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from scipy.stats import spearmanr

from asyncjax import analysis, plotting, theory
from asyncjax.experiments._common import divergence, drawing, headline_table, run_sweep
from asyncjax.experiments._time_to_eps import RULE, interval, null_if_never, tuned_time

FIGURES = ("ringmaster_momentum_plane.png",)


def _log_edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges of increasing positive values on a log axis (geometric midpoints)."""
    c = np.log(centres)
    mid = 0.5 * (c[1:] + c[:-1])
    return np.exp(np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]]))


def _edges(centres: np.ndarray) -> np.ndarray:
    mid = 0.5 * (centres[1:] + centres[:-1])
    if centres.size == 1:
        return np.array([centres[0] - 0.05, centres[0] + 0.05])
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def best_thresholds(
    table: np.ndarray, boot: np.ndarray, R: np.ndarray, near: float
) -> dict[str, np.ndarray]:
    """The best R per momentum, its bootstrap interval, and the thresholds within ``near`` of it.

    Args:
      table: (M, K) time to ε per (μ, R); inf where never reached.
      boot: (B, M, K) its seed-bootstrap replicates.
      R: (K,) the thresholds.
      near: relative slack: R is near-best when its time is at most (1 + near) × the best.

    Returns:
      ``best_R`` (M,) (NaN where no R reaches ε), ``best_R_ci`` (M, 2) the 2.5 and 97.5
      percentiles of the best R over the resamples, ``near_best_R`` (M, 2) the smallest and
      largest near-best R.
    """
    R = np.asarray(R, np.float64)
    reached = np.isfinite(table).any(axis=1)
    best = np.where(reached, R[np.argmin(table, axis=1)], np.nan)
    b = R[np.argmin(boot, axis=2)]  # (B, M)
    b = np.where(np.isfinite(boot).any(axis=2), b, np.nan)
    with warnings.catch_warnings():  # a momentum that never reaches ε has no best R
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = np.stack(
            [
                np.nanquantile(b, 0.025, axis=0, method="lower"),
                np.nanquantile(b, 0.975, axis=0, method="higher"),
            ],
            axis=-1,
        )
    ci[~reached] = np.nan
    lo_hi = np.full((table.shape[0], 2), np.nan)
    for i in np.flatnonzero(reached):
        ok = table[i] <= (1.0 + near) * table[i].min()
        lo_hi[i] = [R[ok].min(), R[ok].max()]
    return {"best_R": best, "best_R_ci": ci, "near_best_R": lo_hi}


def divergence_edge(frac: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(M,) the smallest R at which at least half the seeds diverge (NaN: none)."""
    hit = frac >= 0.5
    return np.where(hit.any(axis=1), np.asarray(R, np.float64)[np.argmax(hit, axis=1)], np.nan)


def tracking(
    t: np.ndarray, R: np.ndarray, best: np.ndarray, predicted: np.ndarray
) -> dict[str, Any]:
    """How the measured best R follows the prediction, in numbers.

    Args:
      t: (M, K) time to ε per (μ, R) (inf: never).
      R: (K,) the thresholds swept.
      best: (M,) the measured best R (NaN: none).
      predicted: (M,) τ* + 1 (NaN: unstable at every delay).
    """
    R = np.asarray(R, np.float64)
    ok = np.isfinite(best) & np.isfinite(predicted) & (predicted >= R[0])
    rho = float(spearmanr(best[ok], predicted[ok]).statistic) if ok.sum() >= 3 else np.nan
    # the largest swept R the prediction calls stable, and how many grid steps the best is from it
    on_grid = np.searchsorted(R, np.where(ok, predicted, R[0]), side="right") - 1
    steps = np.searchsorted(R, np.where(ok, best, R[0])) - on_grid
    rows = np.arange(t.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = t[rows, on_grid] / np.min(t, axis=1)
    return {
        "rank_correlation": rho,
        "best_over_predicted": np.where(ok, best / np.where(ok, predicted, 1.0), np.nan),
        "predicted_grid_R": np.where(ok, R[on_grid], np.nan),
        "grid_steps_from_prediction": np.where(ok, steps, np.nan),
        "time_at_prediction_over_best": np.where(ok, cost, np.nan),
        "note": "rank_correlation: Spearman's between best_R and predicted_R over the momenta. "
        "predicted_grid_R: the largest swept R <= predicted_R; grid_steps_from_prediction: how "
        "many grid steps best_R lies above (+) or below (-) it; time_at_prediction_over_best: "
        "the time to eps at predicted_grid_R over the best time (what following the prediction "
        "costs; inf: the prediction's R never reaches eps).",
    }


def plane_figure(
    momenta: np.ndarray,
    R: np.ndarray,
    t: np.ndarray,
    frac: np.ndarray,
    best: dict[str, np.ndarray],
    predicted: np.ndarray,
    edge: np.ndarray,
    *,
    title: str,
) -> Any:
    """Time to ε over (R, μ) as a heatmap, the measured best R and the predicted τ* + 1 over it."""
    fig, ax = plt.subplots(figsize=(8.6, 5.4))
    finite = t[np.isfinite(t)]
    norm = LogNorm(vmin=float(finite.min()), vmax=float(finite.max())) if finite.size else None
    shown = np.ma.masked_invalid(np.where(np.isfinite(t), t, np.nan))
    im = ax.pcolormesh(
        _log_edges(R), _edges(momenta), shown, norm=norm, cmap="viridis_r", shading="flat"
    )
    never = ~np.isfinite(t)
    if never.any():  # hatch the cells that never reach ε, darker where most seeds diverged
        ax.pcolormesh(
            _log_edges(R),
            _edges(momenta),
            np.ma.masked_where(~never, frac),
            cmap="Greys",
            vmin=-0.5,
            vmax=1.5,
            shading="flat",
        )
    fig.colorbar(im, ax=ax, label="time to ε (virtual seconds)")
    ok = predicted > 0
    ax.plot(predicted[ok], momenta[ok], "--", color="white", lw=2.6, zorder=4)
    ax.plot(
        predicted[ok],
        momenta[ok],
        "--",
        color="crimson",
        lw=1.4,
        zorder=5,
        label="predicted: R − 1 = τ*(μ, ηL)",
    )
    b, ci = best["best_R"], best["best_R_ci"]
    got = np.isfinite(b)
    ax.errorbar(
        b[got],
        momenta[got],
        xerr=[b[got] - ci[got, 0], ci[got, 1] - b[got]],
        fmt="o",
        ms=6,
        mfc="white",
        mec="black",
        ecolor="black",
        capsize=3,
        zorder=6,
        label="measured best R (95% bootstrap interval)",
    )
    nb = best["near_best_R"]
    for mu, (lo, hi) in zip(momenta[got], nb[got]):
        ax.plot([lo, hi], [mu, mu], "-", color="black", lw=4, alpha=0.25, zorder=3)
    ax.plot([], [], "-", color="black", lw=4, alpha=0.25, label="within 10% of the best time")
    e = np.isfinite(edge)
    ax.plot(edge[e], momenta[e], "x", color="black", ms=8, zorder=6, label="half the seeds diverge")
    ax.fill_between([], [], color="0.6", label="never reaches ε (darker: more seeds diverged)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(R.astype(float))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _p: f"{x:g}"))
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("delay threshold R (updates)")
    ax.set_ylabel("momentum μ")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower left", framealpha=0.85)
    fig.tight_layout()
    return fig


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs the (μ, R) sweep and returns the summary (the documented keys, and more)."""
    a = cfg.get("analysis", {})
    eps, n_boot, near = float(a["eps"]), int(a.get("bootstrap", 1000)), float(a.get("near", 0.1))
    t0 = time.perf_counter()
    res, spec = run_sweep(cfg, out, progress, meta)
    drawing(FIGURES, progress)
    sim_s = time.perf_counter() - t0

    tuned = tuned_time(res, eps, ("momentum", "delay_threshold"), n_boot=n_boot)
    momenta = res.coords["momentum"].astype(float)
    R = res.coords["delay_threshold"].astype(float)
    lr = float(spec.grid.fixed["lr"])
    L = float(np.max(spec.problem.hessian_eigenvalues))
    tau_star = theory.stability_threshold(momenta, lr * L)
    predicted = np.where(tau_star >= 0, tau_star + 1.0, np.nan)
    frac = analysis.diverged_fraction(res)  # (μ, R)
    best = best_thresholds(tuned.time, tuned.boot, R, near)
    edge = divergence_edge(frac, R)
    workers = int(spec.grid.fixed["workers"])
    n_seeds = int(res["diverged_at"].shape[-1])
    plotting.save(
        plane_figure(
            momenta,
            R,
            tuned.time,
            frac,
            best,
            predicted,
            edge,
            title=f"heavy-ball Ringmaster (stops), n = {workers}, τ_i = √i, η = {lr:g}, "
            f"ε = {eps:g}, {n_seeds} seeds",
        ),
        out / FIGURES[0],
    )
    return {
        "momentum": momenta,
        "delay_threshold": R,
        "time_to_eps": null_if_never(tuned.time),
        "time_to_eps_ci": interval(tuned.time, tuned.ci),
        "best_R": best["best_R"],
        "best_R_ci": best["best_R_ci"],
        "near_best_R": best["near_best_R"],
        "predicted_R": predicted,
        "tau_star": tau_star,
        "divergence_edge_R": edge,
        "diverged_fraction": frac,
        "best_time": null_if_never(np.min(tuned.time, axis=1)),
        "tracking": tracking(tuned.time, R, best["best_R"], predicted),
        "eps": eps,
        "near": near,
        "settings": {
            "problem": "quadratic",
            "eigenvalues": np.asarray(spec.problem.eigenvalues),
            "noise": float(spec.problem.noise),
            "L": L,
            "lr": lr,
            "workers": workers,
            "compute_times": "tau_i = sqrt(i), i = 1 ... n (fixed)",
            "server": res.attrs["server"],
            "seeds": n_seeds,
            "events": int(res.attrs["steps"]),
            "record_every": int(res.attrs["record_every"]),
        },
        "rule": RULE + " Here nothing is tuned: every (momentum, R) is its own point.",
        "prediction_rule": "predicted_R = tau*(mu, lr * L) + 1, tau* from "
        "asyncjax.theory.stability_threshold (heavy ball, constant delay, the stiffest mode "
        "a = L); null where even tau = 0 is unstable.",
        "divergence_rule": analysis.DIVERGENCE_RULE,
        **divergence(res),
        "simulation_s": sim_s,
    }


def headline(summary: dict[str, Any]) -> str:
    """Per momentum: the measured best R (interval), the near-best range, the prediction."""
    return headline_table(
        summary,
        "per momentum: the best delay threshold R (95% bootstrap interval), the thresholds "
        "within `near` of its time, the predicted R = tau* + 1, the best time to eps, and the "
        "time at the largest swept R <= the prediction over it (the whole plane: summary.json):",
        (
            "momentum",
            "best_R",
            "best_R_ci",
            "near_best_R",
            "predicted_R",
            "best_time",
            "tracking.time_at_prediction_over_best",
        ),
        scalars=("tracking.rank_correlation", "eps"),
    )
