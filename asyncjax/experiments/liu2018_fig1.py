"""``asyncjax reproduce liu2018-fig1``: the threshold delay against momentum (Liu et al. 2018, Fig. 1).

One (momentum, delay, seed) sweep of streaming PCA from the saddle; per
momentum, the delay at which the seed-mean late error first doubles its τ = 0
value (`asyncjax.analysis.THRESHOLD_RULE`), with a seed-bootstrap
interval, beside the exact linear delay-stability boundary
(`asyncjax.theory.pca_threshold`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from asyncjax import analysis, plotting
from asyncjax.experiments._common import (
    divergence,
    drawing,
    headline_table,
    momentum_delay_sweep,
)

FIGURES = ("fig1_error_vs_delay.png", "fig1_error_vs_step.png")


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs the sweep, draws both figures and returns the summary (the documented keys, and more)."""
    d = momentum_delay_sweep(cfg, out, progress, meta)
    drawing(FIGURES, progress)
    res, momenta, thr, predicted, bands = d.results, d.momenta, d.thr, d.predicted, d.bands
    ci = np.stack([thr.ci_lo, thr.ci_hi], axis=-1)
    fig = plotting.error_vs_delay(
        d.delays,
        momenta,
        bands,
        measured=thr.threshold,
        measured_ci=ci,
        predicted=predicted,
        title=f"streaming PCA, η={d.lr:g}, {d.per_seed.shape[-1]} seeds, {res.attrs['steps']} steps",
    )
    plotting.save(fig, out / FIGURES[0])
    plotting.save(
        plotting.error_vs_step(res.isel(delay=0), title="τ = 0: mean error from the saddle"),
        out / FIGURES[1],
    )
    div = bands.diverged  # (momentum, delay)
    one_minus = 1.0 - momenta
    measured_fit = analysis.fit_power_law(one_minus, thr.threshold, thr.boot)
    predicted_fit = analysis.fit_power_law(one_minus, predicted)
    return {
        "momentum": momenta,
        "threshold": thr.threshold,
        "threshold_ci": ci,
        "predicted": predicted,
        "rule": thr.rule + " Predicted: the exact linear delay-stability boundary τ*, minimised "
        "over the modes of the optimum (theory.pca_threshold).",
        "censored": thr.censored,
        "lr": d.lr,
        "delays": d.delays,
        "seeds": int(d.per_seed.shape[-1]),
        "steps": int(res.attrs["steps"]),
        "exponent_vs_one_minus_momentum": {
            "measured": measured_fit.exponent,
            "measured_ci": measured_fit.exponent_ci,
            "stability_boundary": predicted_fit.exponent,
            "paper_sufficient_condition": 2.0,
            "note": "least-squares fit of log threshold on log(1 − μ); CI from the seed bootstrap",
        },
        "error_at_zero_delay": bands.mean[:, 0],
        "diverged_fraction": div,
        "diverged_fraction_at_largest_delay": div[:, -1],
        "diverged_fraction_below_threshold": thr.diverged_below,
        "divergence_dominated": bands.diverged_share >= 0.5,
        "divergence_rule": analysis.DIVERGENCE_RULE,
        **divergence(res),
        "simulation_s": d.simulation_s,
    }


def headline(summary: dict[str, Any]) -> str:
    """The measured threshold delay per momentum, its interval and the predicted boundary."""
    return headline_table(
        summary,
        "threshold delay per momentum (measured, 95% seed-bootstrap interval; predicted boundary):",
        ("momentum", "threshold", "threshold_ci", "predicted", "censored"),
    )
