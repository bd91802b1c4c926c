"""``asyncjax reproduce liu2018-phase``: the error over the whole (momentum, delay) plane.

Liu et al.'s Figure 1 shows five slices, one per momentum, of one surface: the
error of Async-MSGD on streaming PCA after a fixed budget, over the (μ, τ)
plane. This preset measures the whole surface (μ from 0 to 0.95, τ from 0 to
200, Fig. 1's problem, step, budget and seeds), draws it as a heatmap, and sets
two curves on it: the exact linear delay-stability boundary τ*(μ)
(`asyncjax.theory.pca_threshold`) and the measured boundary, where the
seed-mean error first doubles its τ = 0 value (Fig. 1's rule,
`asyncjax.analysis.THRESHOLD_RULE`). A second panel shows the fraction of
diverged trajectories, counted under `asyncjax.analysis.DIVERGENCE_RULE`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from asyncjax import analysis, plotting
from asyncjax.experiments._common import (
    divergence,
    drawing,
    headline_table,
    momentum_delay_sweep,
)

FIGURES = ("phase_error_heatmap.png",)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges halfway between (T,) increasing grid values, the outer ones mirrored."""
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def _boundaries(
    ax: Any,
    momenta: np.ndarray,
    delays: np.ndarray,
    predicted: np.ndarray,
    measured: np.ndarray,
    measured_ci: np.ndarray,
    censored: np.ndarray,
) -> None:
    """Draws the predicted boundary (a line) and the measured one (dots with CI bars) on ``ax``."""
    ax.plot(
        np.where(predicted >= 0, predicted, np.nan), momenta, "--", color="white", lw=2.2, zorder=4
    )
    ax.plot(
        np.where(predicted >= 0, predicted, np.nan),
        momenta,
        "--",
        color="black",
        lw=1.1,
        zorder=5,
        label=r"predicted $\tau^*(\mu)$ (linear stability)",
    )
    shown = ~censored
    ax.errorbar(
        measured[shown],
        momenta[shown],
        xerr=[measured[shown] - measured_ci[shown, 0], measured_ci[shown, 1] - measured[shown]],
        fmt="o",
        ms=5,
        mfc="white",
        mec="black",
        ecolor="black",
        capsize=2,
        zorder=6,
        label="measured (error doubles), 95% CI",
    )
    if censored.any():
        ax.plot(
            measured[censored],
            momenta[censored],
            ">",
            ms=6,
            mfc="white",
            mec="black",
            zorder=6,
            label=f"measured: no doubling up to τ = {delays[-1]:g}",
        )
    ax.set_xlim(delays[0] - 2.5, delays[-1] + 2.5)
    ax.set_xlabel("delay τ (updates)")
    ax.set_ylabel("momentum μ")


def phase_figure(
    momenta: np.ndarray,
    delays: np.ndarray,
    error: np.ndarray,
    diverged: np.ndarray,
    predicted: np.ndarray,
    measured: np.ndarray,
    measured_ci: np.ndarray,
    censored: np.ndarray,
    title: str = "",
) -> Any:
    """Heatmaps of the error and of the diverged fraction over (τ, μ), both boundaries drawn on each.

    Args:
      momenta: (M,) momenta (rows).
      delays: (T,) delays (columns).
      error: (M, T) seed-mean late error, diverged trajectories counted as failed.
      diverged: (M, T) fraction of diverged trajectories.
      predicted: (M,) the stability boundary τ*(μ) (-1: unstable even at τ = 0).
      measured: (M,) measured boundary; ``measured_ci`` (M, 2) its interval;
        ``censored`` (M,) True where the error never doubled.
      title: the figure's title.
    """
    fig, axes = plt.subplots(1, 2, figsize=(13.5, 5.2), sharey=True)
    xe, ye = _edges(delays), _edges(momenta)
    positive = error[error > 0]
    norm = LogNorm(vmin=float(positive.min()) if positive.size else 1e-3, vmax=1.0)
    im = axes[0].pcolormesh(
        xe, ye, np.maximum(error, norm.vmin), norm=norm, cmap="magma", shading="flat"
    )
    fig.colorbar(im, ax=axes[0], label=r"mean error $\sin^2\angle(v, q_1)$ (late average)")
    axes[0].set_title("error after the budget")
    im2 = axes[1].pcolormesh(xe, ye, diverged, vmin=0.0, vmax=1.0, cmap="Greys", shading="flat")
    fig.colorbar(im2, ax=axes[1], label="fraction of seeds diverged")
    axes[1].set_title("diverged trajectories")
    for ax in axes:
        _boundaries(ax, momenta, delays, predicted, measured, measured_ci, censored)
        ax.set_ylim(ye[0], ye[-1])
    axes[1].set_ylabel("")
    axes[1].legend(loc="lower left", fontsize=8, framealpha=0.9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs the preset: the sweep, the boundaries, the heatmap, and the summary (see the module doc)."""
    d = momentum_delay_sweep(cfg, out, progress, meta)
    drawing(FIGURES, progress)
    momenta, delays, thr, bands, predicted = d.momenta, d.delays, d.thr, d.bands, d.predicted
    ci = np.stack([thr.ci_lo, thr.ci_hi], axis=-1)
    fig = phase_figure(
        momenta,
        delays,
        bands.mean,
        bands.diverged,
        predicted,
        thr.threshold,
        ci,
        thr.censored,
        title=f"streaming PCA, η={d.lr:g}, {d.per_seed.shape[-1]} seeds, "
        f"{d.results.attrs['steps']} steps",
    )
    plotting.save(fig, out / FIGURES[0])
    inside = (predicted >= delays[0]) & (predicted <= delays[-1]) & ~thr.censored
    return {
        "momentum": momenta,
        "delay": delays,
        "error": bands.mean,
        "diverged_fraction": bands.diverged,
        "predicted_boundary": predicted,
        "measured_boundary": thr.threshold,
        "measured_boundary_ci": ci,
        "measured_censored": thr.censored,
        "measured_over_predicted": np.where(
            inside, thr.threshold / np.maximum(predicted, 1), np.nan
        ),
        "rule": thr.rule
        + " Predicted: the exact linear delay-stability boundary τ*(μ), minimised over "
        "the modes of the optimum (theory.pca_threshold); it may lie beyond the delays "
        "swept.",
        "error_stderr": bands.stderr,
        "divergence_dominated": bands.diverged_share >= 0.5,
        "diverged_fraction_below_threshold": thr.diverged_below,
        "divergence_rule": analysis.DIVERGENCE_RULE,
        **divergence(d.results),
        "lr": d.lr,
        "seeds": int(d.per_seed.shape[-1]),
        "steps": int(d.results.attrs["steps"]),
        "simulation_s": d.simulation_s,
    }


def headline(summary: dict[str, Any]) -> str:
    """The stability boundary per momentum: predicted, and measured with its interval."""
    return headline_table(
        summary,
        "delay boundary per momentum (predicted; measured, 95% seed-bootstrap interval; "
        "censored: the error never doubled, the boundary is the largest delay swept; "
        "error and diverged_fraction over the whole plane: summary.json):",
        (
            "momentum",
            "predicted_boundary",
            "measured_boundary",
            "measured_boundary_ci",
            "measured_censored",
        ),
    )
