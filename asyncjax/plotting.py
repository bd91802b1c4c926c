"""Matplotlib figures. Every function returns the Figure and can save it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np

from asyncjax.analysis import Band
from asyncjax.results import Results

__all__ = ["error_vs_delay", "error_vs_step", "save"]


def save(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def error_vs_delay(
    delays: np.ndarray,
    momenta: Sequence[float],
    bands: Band,
    *,
    measured: np.ndarray | None = None,
    measured_ci: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
    title: str = "",
    ylabel: str = r"optimisation error $\sin^2\angle(v, q_1)$",
) -> Any:
    """Figure-1 style: mean error against delay, one curve per momentum.

    Args:
      delays: (T,) delays.
      momenta: (M,) momentum of each curve.
      bands: :class:`~asyncjax.analysis.Band` of (M, T) arrays over seeds.
      measured: (M,) measured threshold delays (marked with a dot on the curve).
      measured_ci: (M, 2) their confidence intervals (horizontal bars).
      predicted: (M,) predicted thresholds (dashed vertical lines).
    """
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [2.2, 1]})
    colors = plt.cm.viridis(np.linspace(0.05, 0.85, len(momenta)))
    for i, (mu, col) in enumerate(zip(momenta, colors)):
        ax.plot(delays, bands.mean[i], "-o", ms=2.5, color=col, label=fr"$\mu={mu:g}$")
        ax.fill_between(delays, bands.lo[i], bands.hi[i], color=col, alpha=0.18, lw=0)
        if predicted is not None:
            ax.axvline(predicted[i], color=col, ls="--", lw=1)
        if measured is not None:
            y = np.interp(measured[i], delays, bands.mean[i])
            ax.plot([measured[i]], [y], "o", mfc="white", mec=col, ms=7, mew=1.5)
            if measured_ci is not None:
                ax.plot(measured_ci[i], [y, y], color=col, lw=2.5, alpha=0.7)
    ax.set_yscale("log")
    ax.set_xlabel(r"delay $\tau$")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "error against delay (band: 10–90% of seeds)")
    handles, labels = ax.get_legend_handles_labels()
    handles += [plt.Line2D([], [], color="gray", ls="--"), plt.Line2D([], [], marker="o", mfc="white", mec="gray", ls="")]
    labels += ["predicted threshold", "measured threshold"]
    ax.legend(handles, labels, fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax.grid(alpha=0.3, which="both")

    one_minus = 1.0 - np.asarray(momenta, float)
    if measured is not None:
        yerr = None
        if measured_ci is not None:
            yerr = np.abs(np.asarray(measured_ci).T - measured[None, :])
        ax2.errorbar(one_minus, measured, yerr=yerr, fmt="o", color="k", capsize=3, label="measured")
    if predicted is not None:
        ax2.plot(one_minus, predicted, "s--", color="tab:red", mfc="none", label="stability boundary")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(r"$1-\mu$")
    ax2.set_ylabel(r"threshold delay")
    ax2.set_title("threshold against $1-\\mu$")
    ax2.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def error_vs_step(results: Results, var: str = "error", max_curves: int = 12, title: str = "") -> Any:
    """Mean (over seeds) of ``var`` against the step, one curve per grid point.

    Works for any sweep; with more than ``max_curves`` points it shows an
    evenly spaced subset and says so in the title.
    """
    arr = results[var]
    dims = list(results.dims[var])
    if "seed" in dims:
        arr = arr.mean(axis=dims.index("seed"))
        dims.remove("seed")
    other = [d for d in dims if d != "step"]
    arr = np.moveaxis(arr, dims.index("step"), -1).reshape(-1, arr.shape[dims.index("step")])
    labels = []
    for idx in np.ndindex(*(results.coords[d].size for d in other)):
        labels.append(", ".join(f"{d}={results.coords[d][i]:g}" for d, i in zip(other, idx)))
    pick = np.unique(np.linspace(0, len(labels) - 1, min(max_curves, len(labels))).round().astype(int))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    steps = results.coords["step"]
    colors = plt.cm.viridis(np.linspace(0.05, 0.9, pick.size))
    for col, i in zip(colors, pick):
        ax.plot(steps, arr[i], color=col, label=labels[i] or var)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"mean {var}")
    shown = f" ({pick.size} of {len(labels)} grid points)" if pick.size < len(labels) else ""
    ax.set_title((title or f"mean {var} over seeds") + shown, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def stationary_vs_theory(momenta: np.ndarray, lrs: np.ndarray, simulated: np.ndarray, stderr: np.ndarray,
                         theory_err: np.ndarray) -> Any:
    """Stationary sin² error against μ, simulated (±2 SE) and from the SDE, per step size.

    Args:
      momenta: (M,) momenta; lrs: (L,) step sizes; simulated, stderr, theory_err: (M, L).
    """
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.cm.plasma(np.linspace(0.1, 0.7, len(lrs)))
    for j, (lr, col) in enumerate(zip(lrs, colors)):
        ax.errorbar(momenta, simulated[:, j], yerr=2 * stderr[:, j], fmt="o", color=col, capsize=3,
                    label=f"simulated, η={lr:g}")
        ax.plot(momenta, theory_err[:, j], "--", color=col, label=f"SDE theory, η={lr:g}")
        ax2.errorbar(momenta, simulated[:, j] / theory_err[:, j], yerr=2 * stderr[:, j] / theory_err[:, j],
                     fmt="o-", color=col, capsize=3, label=f"η={lr:g}")
    ax.set_yscale("log")
    ax.set_xlabel(r"momentum $\mu$")
    ax.set_ylabel(r"stationary $E[\sin^2\angle(v, q_1)]$")
    ax.set_title(r"near the optimum: $\eta\sum_i \alpha_{i1}^2 / (2(1-\mu)(\lambda_1-\lambda_i))$")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax2.axhspan(0.9, 1.1, color="gray", alpha=0.15, label="±10%")
    ax2.axhline(1.0, color="k", lw=0.8)
    ax2.set_xlabel(r"momentum $\mu$")
    ax2.set_ylabel("simulated / theory (±2 SE)")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def ode_overlay(curves: Sequence[tuple], level: float) -> Any:
    """Mean error from the saddle against the ODE, raw and aligned at the escape.

    Args:
      curves: per momentum ``(mu, aligned_t, aligned_mean, ode_on_aligned_t, t, raw_mean)``
        with times in ODE units t = kη.
      level: the sin² level at which trajectories were aligned.
    """
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.4))
    colors = plt.cm.viridis(np.linspace(0.05, 0.85, len(curves)))
    for (mu, lag_t, aligned, ode, t, raw), col in zip(curves, colors):
        ax.plot(t, raw, color=col, label=fr"$\mu={mu:g}$")
        ax2.plot(lag_t, aligned, color=col, lw=2.2, alpha=0.8, label=fr"simulated, $\mu={mu:g}$")
        ax2.plot(lag_t, ode, color="k", ls="--", lw=0.9)
    ax2.plot([], [], "k--", lw=0.9, label="ODE (Theorem 3)")
    for a in (ax, ax2):
        a.set_yscale("log")
        a.set_ylabel(r"mean $\sin^2\angle(v, q_1)$")
        a.grid(alpha=0.3, which="both")
    ax.set_xlabel(r"ODE time $t = k\eta$")
    ax.set_title("mean over seeds from the saddle (escape times vary)")
    ax.legend(fontsize=8)
    ax2.set_xlabel(fr"$t - t_{{\rm cross}}$ (each run aligned where $\sin^2 = {level:g}$)")
    ax2.set_title("aligned at the escape, against the ODE")
    ax2.legend(fontsize=8)
    floor = min(np.nanmin(c[2]) for c in curves)
    ax2.set_ylim(0.3 * floor, 1.5)  # the ODE itself decays to 0; the runs settle at their noise floor
    fig.tight_layout()
    return fig
