"""``asyncjax reproduce dirichlet-digits``: five server rules on digits split over workers by Dirichlet(α).

The MLP on scikit-learn's digits over 16 workers of speeds 1 … 16, each holding
its own training rows (`asyncjax.splits.dirichlet`, α ∈ {0.1, 1, 100}): ASGD,
Rennala SGD, Malenia SGD, IA²SGD and Ringleader ASGD, each with and without
server momentum. A split is static, so every (rule, α) is its own sweep (the
TOML's ``[sweep.RULE]`` tables with ``[split] alpha`` set per α by this
module). The held-out accuracy is read at a common wall-clock horizon, the
earliest time every trajectory of every sweep reached, with seed-bootstrap
intervals; the best (rule, momentum) per α is named with a paired bootstrap
interval of its lead over the runner-up (the sweeps share seeds, so they share
the seeds' data draws).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from asyncjax import plotting
from asyncjax.analysis import bootstrap_weights, laid_out
from asyncjax.experiments._common import divergence, drawing, headline_table, run_sweep

FIGURES = ("accuracy_vs_time.png", "accuracy_at_horizon.png")
NEEDS_DIGITS = True  # the runner checks scikit-learn before anything runs

LABELS = {
    "asgd": "ASGD",
    "rennala": "Rennala SGD",
    "malenia": "Malenia SGD",
    "ia2sgd": "IA²SGD",
    "ringleader": "Ringleader ASGD",
}


def sweep_name(method: str, alpha: float) -> str:
    """The folder of one (rule, α) sweep, e.g. ``asgd-alpha0.1``."""
    return f"{method}-alpha{alpha:g}"


def expanded(cfg: dict[str, Any], methods: list[str], alphas: list[float]) -> dict[str, Any]:
    """The configuration with one sweep per (rule, α): the rule's sweep with ``[split] alpha`` set."""
    sweeps = {}
    for alpha in alphas:
        for m in methods:
            sw = copy.deepcopy(cfg["sweep"][m])
            sw.setdefault("split", {})["alpha"] = float(alpha)
            sweeps[sweep_name(m, alpha)] = sw
    return {**cfg, "sweep": sweeps}


def at_horizon(wall: np.ndarray, values: np.ndarray, horizon: float) -> np.ndarray:
    """Each trajectory's value at its last record at or before ``horizon``.

    Args:
      wall: (..., R) recorded wall-clock times (increasing along the last axis).
      values: (..., R) the metric at those records.
      horizon: the wall-clock time to read at (every trajectory's first record is before it).
    """
    idx = np.sum(wall <= horizon, axis=-1) - 1
    return np.take_along_axis(values, np.maximum(idx, 0)[..., None], axis=-1)[..., 0]


def seed_bootstrap(values: np.ndarray, n_boot: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the last axis (seeds) and its seed-bootstrap interval (..., 2)."""
    w = bootstrap_weights(values.shape[-1], n_boot, seed=0)  # (B, S)
    boot = np.moveaxis(values @ w.T, -1, 0)  # (B, ...)
    tail = (1.0 - level) / 2
    ci = np.moveaxis(np.quantile(boot, [tail, 1.0 - tail], axis=0), 0, -1)
    return values.mean(axis=-1), ci


def best_per_alpha(
    acc: np.ndarray, methods: list[str], momenta: np.ndarray, n_boot: int, level: float
) -> dict[str, list]:
    """The best (rule, momentum) per α and its paired bootstrap lead over the runner-up.

    Args:
      acc: (A, K, M, S) accuracy at the horizon per α, rule, momentum and seed.

    Returns:
      ``best`` (A,) "rule, mu=…" labels, ``best_accuracy`` (A,), ``runner_up`` (A,) labels,
      ``lead`` (A,) best − runner-up mean accuracy and ``lead_ci`` (A, 2) its paired
      seed-bootstrap interval.
    """
    A, K, M, S = acc.shape
    flat = acc.reshape(A, K * M, S)
    mean = flat.mean(axis=-1)
    order = np.argsort(-mean, axis=1, kind="stable")
    w = bootstrap_weights(S, n_boot, seed=0)
    tail = (1.0 - level) / 2
    label = [f"{methods[i // M]}, mu={momenta[i % M]:g}" for i in range(K * M)]
    out: dict[str, list] = {
        "best": [],
        "best_accuracy": [],
        "runner_up": [],
        "lead": [],
        "lead_ci": [],
    }
    for a in range(A):
        b, r = order[a, 0], order[a, 1]
        diff = flat[a, b] - flat[a, r]
        boot = w @ diff
        out["best"].append(label[b])
        out["best_accuracy"].append(float(mean[a, b]))
        out["runner_up"].append(label[r])
        out["lead"].append(float(diff.mean()))
        out["lead_ci"].append(np.quantile(boot, [tail, 1.0 - tail]).tolist())
    return out


def curves_figure(
    curves: dict[tuple[float, str], tuple[np.ndarray, np.ndarray]],
    alphas: list[float],
    methods: list[str],
    momenta: np.ndarray,
    horizon: float,
    title: str,
) -> Any:
    """Held-out accuracy against wall-clock time, one panel per α, bands over seeds."""
    fig, axes = plt.subplots(
        1, len(alphas), figsize=(5 * len(alphas), 4.4), sharey=True, squeeze=False
    )
    colors = dict(zip(methods, plotting.distinct_colors(len(methods))))
    for ax, alpha in zip(axes[0], alphas):
        for m in methods:
            wall, acc = curves[(alpha, m)]  # (M, S, R)
            for k, mu in enumerate(momenta):
                t = wall[k].mean(axis=0)
                lo, hi = np.quantile(acc[k], [0.1, 0.9], axis=0)
                ls = "-" if mu > 0 else ":"
                ax.fill_between(t, lo, hi, color=colors[m], alpha=0.12, lw=0)
                ax.plot(
                    t,
                    acc[k].mean(axis=0),
                    ls,
                    color=colors[m],
                    label=f"{LABELS.get(m, m)}, μ={mu:g}",
                )
        ax.axvline(horizon, color="k", lw=0.8, ls="--")
        ax.set_title(f"Dirichlet α = {alpha:g}", fontsize=10)
        ax.set_xlabel("virtual wall-clock time (mean compute times of worker 0)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out accuracy (mean; band: 10–90% of seeds)")
    axes[0][-1].legend(fontsize=6.5, loc="lower right", ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def bars_figure(
    acc: np.ndarray,
    ci: np.ndarray,
    alphas: list[float],
    methods: list[str],
    momenta: np.ndarray,
    title: str,
) -> Any:
    """Accuracy at the horizon per α, rule and momentum, with bootstrap intervals."""
    A, K, M = acc.shape
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * K * A / 2), 5.2))
    width = 0.8 / (K * M)
    colors = plotting.distinct_colors(K)
    for k, m in enumerate(methods):
        for j, mu in enumerate(momenta):
            x = np.arange(A) + (k * M + j - (K * M - 1) / 2) * width
            ax.bar(
                x,
                acc[:, k, j],
                width,
                yerr=[acc[:, k, j] - ci[:, k, j, 0], ci[:, k, j, 1] - acc[:, k, j]],
                color=colors[k],
                alpha=1.0 if mu > 0 else 0.5,
                capsize=2,
                label=f"{LABELS.get(m, m)}, μ={mu:g}",
            )
    ax.set_xticks(np.arange(A), [f"α = {a:g}" for a in alphas])
    lo = float(np.nanmin(ci[..., 0]))
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.set_ylabel("held-out accuracy at the horizon")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=K, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs one sweep per (rule, α) and returns the summary (the documented keys, and more)."""
    a = cfg.get("analysis", {})
    alphas = [float(x) for x in a["alpha"]]
    methods = list(a.get("methods", cfg["sweep"]))
    unknown = [m for m in methods if m not in cfg["sweep"]]
    if unknown:
        raise ValueError(
            f"dirichlet-digits: [analysis] methods names {unknown}; sweeps: {list(cfg['sweep'])}"
        )
    n_boot, level = int(a.get("bootstrap", 2000)), float(a.get("level", 0.95))
    full = expanded(cfg, methods, alphas)
    t0 = time.perf_counter()
    runs = {
        (alpha, m): run_sweep(full, out, progress, meta, sweep_name(m, alpha))
        for alpha in alphas
        for m in methods
    }
    sim_s = time.perf_counter() - t0
    drawing(FIGURES, progress)

    curves, momenta = {}, None
    for key, (res, _) in runs.items():
        dims = ("momentum", "seed", "step")
        curves[key] = (laid_out(res, "wall_time", dims), laid_out(res, "accuracy", dims))
        mom = res.coords["momentum"].astype(float)
        if momenta is not None and not np.array_equal(mom, momenta):
            raise ValueError("dirichlet-digits: every sweep must sweep the same momenta")
        momenta = mom
    assert momenta is not None
    horizon = float(min(w[..., -1].min() for w, _ in curves.values()))
    acc = np.stack(
        [np.stack([at_horizon(*curves[(alpha, m)], horizon) for m in methods]) for alpha in alphas]
    )  # (A, K, M, S)
    mean, ci = seed_bootstrap(acc, n_boot, level)
    best = best_per_alpha(acc, methods, momenta, n_boot, level)
    first = runs[(alphas[0], methods[0])][1]
    n_seeds = acc.shape[-1]
    workers = int(first.grid.fixed["workers"])
    plotting.save(
        curves_figure(
            curves,
            alphas,
            methods,
            momenta,
            horizon,
            f"MLP on digits, {workers} workers of speeds 1 … {workers} (exponential times), "
            f"{n_seeds} seeds; dashed: the horizon; dotted: no momentum",
        ),
        out / FIGURES[0],
    )
    plotting.save(
        bars_figure(
            mean,
            ci,
            alphas,
            methods,
            momenta,
            f"held-out accuracy at wall-clock time {horizon:.3g} ({level:.0%} seed-bootstrap intervals)",
        ),
        out / FIGURES[1],
    )
    shards = {
        f"{alpha:g}": runs[(alpha, methods[0])][1].problem.shards.sizes.tolist() for alpha in alphas
    }
    return {
        "alpha": alphas,
        "methods": methods,
        "momentum": momenta,
        "accuracy": mean,
        "accuracy_ci": ci,
        "horizon": horizon,
        **best,
        "settings": {
            "problem": "mlp on digits, hidden [32], batch 16",
            "workers": workers,
            "clock": "exponential compute times, speeds 1 + i",
            "servers": {m: runs[(alphas[0], m)][0].attrs["server"] for m in methods},
            "lr": {m: float(runs[(alphas[0], m)][1].grid.fixed["lr"]) for m in methods},
            "shard_sizes": shards,
            "seeds": n_seeds,
            "events": {m: int(runs[(alphas[0], m)][0].attrs["steps"]) for m in methods},
            "bootstrap": n_boot,
            "level": level,
        },
        "rule": "accuracy: each trajectory's held-out accuracy at its last record at or before "
        "`horizon` (the earliest final wall-clock time over every trajectory of every sweep), "
        "averaged over seeds; accuracy_ci: its seed-bootstrap interval. best: the (rule, "
        "momentum) with the highest mean per alpha; lead: its mean lead over the runner-up, "
        "lead_ci: the paired seed-bootstrap interval of that lead (a lead whose interval "
        "holds 0 is not a clear win).",
        **divergence(*(r for r, _ in runs.values())),
        "simulation_s": sim_s,
    }


def headline(summary: dict[str, Any]) -> str:
    """Per α: the best rule and momentum, its accuracy, the runner-up and the lead's interval."""
    return headline_table(
        summary,
        "per alpha: the best (rule, momentum) by held-out accuracy at the horizon, the runner-up, "
        "and the lead with its paired bootstrap interval (every accuracy: summary.json):",
        ("alpha", "best", "best_accuracy", "runner_up", "lead", "lead_ci"),
        scalars=("horizon",),
    )
