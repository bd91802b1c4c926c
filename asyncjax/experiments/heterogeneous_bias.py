"""``asyncjax reproduce heterogeneous-bias``: where each server rule settles when workers hold their own data.

On per-worker quadratics f_j(x) = ½‖x − b_j‖² asynchronous SGD applies worker
j's gradient a share p_j of the time (`asyncjax.theory.update_shares`), so it
settles near Σ_j p_j b_j (`asyncjax.theory.asgd_fixed_point`) instead of the
optimum of f = (1/n) Σ_j f_j; IA²SGD, Malenia SGD and Ringleader ASGD are built
to remove that bias. This preset runs one sweep per rule (ASGD on fixed and on
exponential compute times, the three unbiased rules on exponential times),
records the iterates, and reports each rule's late mean (the time average of
the iterate over the last ``window`` of every trajectory, averaged over seeds)
with a seed-bootstrap interval, against the predicted biased point and the
optimum; and the distance to the optimum against wall-clock time with bands.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from asyncjax import plotting, theory
from asyncjax.analysis import bootstrap_weights, laid_out
from asyncjax.experiments._common import divergence, drawing, headline_table, run_sweep

FIGURES = ("late_means.png", "distance_vs_time.png")

LABELS = {
    "asgd_fixed": "ASGD, fixed times",
    "asgd_exponential": "ASGD, exponential times",
    "ia2sgd": "IA²SGD",
    "malenia": "Malenia SGD",
    "ringleader": "Ringleader ASGD",
}
_BIASED = ("asgd",)  # sweeps whose server is one of these are expected at the biased point


def mean_times(spec: Any, workers: int) -> np.ndarray:
    """(n,) each worker's mean compute time (base + noise_scale · E X) / speed on a sweep's clock.

    Every law of the worker clock but the half-normal and the Pareto has E X = 1 (mean compute
    times); this preset uses the constant and the exponential.
    """
    clock = spec.sweep_kwargs()["delay_model"]
    if clock.law not in ("constant", "exponential", "lognormal", "gamma"):
        raise ValueError(
            f"heterogeneous-bias: the clock law {clock.law!r} has no unit mean; "
            "use constant, exponential, lognormal or gamma"
        )
    base, scale = clock.affine(workers)
    return (base + scale) / clock.speed(workers)


def late_means(
    x: np.ndarray, window: float, level: float, n_boot: int
) -> tuple[np.ndarray, np.ndarray]:
    """A late mean over seeds with its seed-bootstrap interval, joint over the coordinates.

    Args:
      x: (S, R, d) the recorded iterates of S seeds.
      window: the last fraction of the records each seed's time average covers.
      level: joint coverage of the d intervals (Bonferroni: each covers 1 − (1 − level)/d).
      n_boot: bootstrap resamples of the seeds.

    Returns:
      The late mean (d,) and its interval (d, 2).
    """
    S, R, d = x.shape
    per_seed = x[:, R - max(1, int(round(window * R))) :].mean(axis=1)  # (S, d)
    w = bootstrap_weights(S, n_boot, seed=0)  # (B, S) resample weights
    boot = w @ per_seed  # (B, d) bootstrap means
    tail = (1.0 - level) / d / 2
    ci = np.quantile(boot, [tail, 1.0 - tail], axis=0).T
    return per_seed.mean(axis=0), ci


def agrees(mean: np.ndarray, ci: np.ndarray, point: np.ndarray, slack: float) -> bool:
    """Whether ``point`` lies in every coordinate's interval, or within ``slack`` of ``mean``."""
    inside = bool(np.all((ci[:, 0] <= point) & (point <= ci[:, 1])))
    return inside or float(np.linalg.norm(mean - point)) <= slack


def late_mean_figure(
    names: list[str],
    means: np.ndarray,
    cis: np.ndarray,
    optima: np.ndarray,
    optimum: np.ndarray,
    predicted: np.ndarray,
    title: str,
) -> Any:
    """The plane: worker optima (sized by their share), optimum, predicted point, late means."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1, 1.2]})
    ax.scatter(*optima.T, s=25 + 12 * np.arange(len(optima)), c="0.7", label="worker optima b_j")
    for j, b in enumerate(optima):
        ax.annotate(f"{j}", b, fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.plot(*optimum, "k*", ms=15, label="optimum x* = mean b_j")
    ax.plot(
        *predicted, "P", color="black", mfc="white", ms=11, label="predicted ASGD point Σ p_j b_j"
    )
    colors = plotting.distinct_colors(len(names))
    for name, m, col in zip(names, means, colors):
        ax.plot(*m, "o", mfc="none", mec=col, ms=9, mew=2, label=LABELS.get(name, name))
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title("late means in the plane", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    # zoom: the late means with their intervals around the two reference points
    ax2.plot(*optimum, "k*", ms=15)
    ax2.plot(*predicted, "P", color="black", mfc="white", ms=11)
    for name, m, c, col in zip(names, means, cis, colors):
        ax2.errorbar(
            m[0],
            m[1],
            xerr=[[m[0] - c[0, 0]], [c[0, 1] - m[0]]],
            yerr=[[m[1] - c[1, 0]], [c[1, 1] - m[1]]],
            fmt="o",
            color=col,
            capsize=3,
            label=LABELS.get(name, name),
        )
    ax2.set_xlabel("x₁")
    ax2.set_ylabel("x₂")
    ax2.set_title("zoom: late means with their bootstrap intervals", fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def distance_figure(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], gap: float, title: str
) -> Any:
    """‖x − x*‖ against wall-clock time: seed mean and a 10–90% band per rule."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for (name, (wall, dist)), col in zip(curves.items(), plotting.distinct_colors(len(curves))):
        t = wall.mean(axis=0)
        lo, hi = np.quantile(dist, [0.1, 0.9], axis=0)
        ax.fill_between(t, lo, hi, color=col, alpha=0.2, lw=0)
        ax.plot(t, dist.mean(axis=0), color=col, label=LABELS.get(name, name))
    ax.axhline(gap, color="black", ls="--", lw=1, label="‖predicted − x*‖")
    ax.set_yscale("log")
    ax.set_xlabel("virtual wall-clock time (the slowest worker's mean compute time)")
    ax.set_ylabel("‖x − x*‖ (seed mean, band: 10–90% of seeds)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs one sweep per rule and returns the summary (the documented keys, and more)."""
    a = cfg.get("analysis", {})
    window, level = float(a.get("window", 0.5)), float(a.get("level", 0.99))
    n_boot, tol = int(a.get("bootstrap", 2000)), float(a.get("tolerance", 0.02))
    names = list(cfg["sweep"])
    t0 = time.perf_counter()
    runs = {name: run_sweep(cfg, out, progress, meta, name, record_iterates=True) for name in names}
    sim_s = time.perf_counter() - t0
    drawing(FIGURES, progress)

    first = runs[names[0]][1].problem
    for name, (_, spec) in runs.items():
        if spec.problem != first:
            raise ValueError(
                f"heterogeneous-bias: every sweep must run the same problem; {name!r} differs"
            )
    optima, optimum = np.asarray(first.worker_optima), np.asarray(first.optimum)
    curv = np.asarray(first.worker_curvatures)
    n, d = optima.shape
    shares = {
        name: theory.update_shares(times=mean_times(spec, n)) for name, (_, spec) in runs.items()
    }
    predicted = {name: theory.asgd_fixed_point(optima, curv, p) for name, p in shares.items()}

    means, cis, dist, agree, target, curves, servers = [], [], [], [], [], {}, []
    for name, (res, spec) in runs.items():
        x = laid_out(res, "iterates", ("seed", "step", "component"))
        x = x.reshape(x.shape[0], x.shape[1], d)
        m, ci = late_means(x, window, level, n_boot)
        server = spec.sweep_kwargs()["server"]
        biased = type(server).__name__.lower() in _BIASED
        point = predicted[name] if biased else optimum
        gap = float(np.linalg.norm(predicted[name] - optimum))
        means.append(m)
        cis.append(ci)
        dist.append(float(np.linalg.norm(m - optimum)))
        agree.append(agrees(m, ci, point, tol * gap if biased else 0.0))
        target.append("predicted" if biased else "optimum")
        servers.append(res.attrs["server"])
        wall = laid_out(res, "wall_time", ("seed", "step"))
        curves[name] = (wall, np.linalg.norm(x - optimum, axis=-1))
    gaps = {k: float(np.linalg.norm(v - optimum)) for k, v in predicted.items()}
    pred = predicted[names[0]]
    if any(not np.allclose(v, pred) for v in predicted.values()):
        raise ValueError("heterogeneous-bias: the sweeps' clocks must give the same shares")
    n_seeds = int(res["diverged_at"].shape[-1])
    plotting.save(
        late_mean_figure(
            names,
            np.array(means),
            np.array(cis),
            optima,
            optimum,
            pred,
            f"{n} workers of speeds 1 … {n}, d = {d}, σ = {float(first.noise):g}, "
            f"{n_seeds} seeds; intervals: {level:.0%} seed bootstrap, joint over coordinates",
        ),
        out / FIGURES[0],
    )
    plotting.save(
        distance_figure(curves, gaps[names[0]], "distance to the optimum against wall-clock time"),
        out / FIGURES[1],
    )
    return {
        "methods": names,
        "predicted_point": pred,
        "optimum": optimum,
        "late_mean": np.array(means),
        "late_mean_ci": np.array(cis),
        "distance_to_optimum": dist,
        "distance_predicted_to_optimum": gaps[names[0]],
        "expected_at": target,
        "agrees": agree,
        "shares": shares[names[0]],
        "settings": {
            "problem": first.describe() if hasattr(first, "describe") else str(first),
            "workers": n,
            "servers": servers,
            "lr": [float(spec.grid.fixed["lr"]) for _, spec in runs.values()],
            "seeds": n_seeds,
            "window": window,
            "level": level,
            "bootstrap": n_boot,
            "tolerance": tol,
        },
        "rule": f"late_mean: each seed's time average of the iterate over the last {window:g} of "
        "its records, averaged over seeds; late_mean_ci: per coordinate, the seed-bootstrap "
        f"interval of that mean, {level:.0%} jointly over the coordinates (Bonferroni). agrees: "
        "the point the rule is expected at (ASGD: theory.asgd_fixed_point with "
        "theory.update_shares of the clock's mean compute times; the others: the optimum) lies "
        f"in every coordinate's interval, or (ASGD only) within {tol:g} x "
        "||predicted - optimum|| of the late mean.",
        **divergence(*(r for r, _ in runs.values())),
        "simulation_s": sim_s,
    }


def headline(summary: dict[str, Any]) -> str:
    """Per rule: the late mean, its interval, its distance to the optimum, and whether it agrees."""
    return headline_table(
        summary,
        "per rule: the late mean of the iterate (intervals per coordinate: summary.json), its "
        "distance to the optimum, the point it is expected at, and whether it agrees:",
        ("methods", "late_mean", "distance_to_optimum", "expected_at", "agrees"),
        scalars=("predicted_point", "optimum", "distance_predicted_to_optimum"),
    )
