"""``asyncjax reproduce liu2018-stationary``: Liu et al.'s theorems set against the simulation.

Two sweeps of streaming PCA:

* ``stationary``: started near the optimum, over (momentum, step size); the
  time-averaged error after a burn-in against the SDE's stationary error
  (Theorem 5, `asyncjax.theory.sde_stationary_error`).
* ``ode``: started from the saddle, per momentum; the mean trajectory, each
  trajectory shifted to cross a level at t = 0, against the ODE of Theorem 3
  (`asyncjax.theory.ode_error`), and the durations of its three phases
  against `asyncjax.theory.phase_durations`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from asyncjax import analysis, plotting, theory
from asyncjax.experiments._common import divergence, drawing, headline_table, run_sweep
from asyncjax.results import Results

FIGURES = ("stationary_vs_theory.png", "ode_overlay.png")

_PHASES = ("escape", "traverse", "converge")


def _ode_overlay(
    ode_res: Results, lam: np.ndarray, lr: float, level: float, eps0: float, delta: float
) -> tuple[list[tuple], list[dict[str, Any]], dict[str, list], dict[str, list]]:
    """Per momentum: the aligned mean trajectory against the ODE, and the three phase durations.

    Returns:
      ``(curves, overlay, phases, phases_theory)``: the curves
      `asyncjax.plotting.ode_overlay` draws, the deviation summary per
      momentum, and the measured and predicted phase durations in steps.
    """
    ode_error = analysis.with_failures(ode_res, "error")  # (momentum, seed, step)
    h0 = np.zeros(lam.size)
    h0[0], h0[1] = eps0, np.sqrt(1 - eps0**2)
    ode_steps = ode_res.coords["step"]
    curves, overlay = [], []
    phases: dict[str, list] = {k: [] for k in _PHASES}
    phases_theory: dict[str, list] = {k: [] for k in _PHASES}
    for i, mu in enumerate(ode_res.coords["momentum"].astype(float)):
        err = ode_error[i]  # (seed, step)
        lags, aligned = analysis.aligned_mean(err, ode_steps, level)
        t_grid = np.linspace(0.0, ode_steps[-1] * lr * 4, 40001)
        ode = theory.ode_error(lam, h0, t_grid, mu)
        t_cross = np.interp(-level, -ode, t_grid)  # ODE time at which it crosses `level`
        ode_on_lags = theory.ode_error(lam, h0, np.maximum(t_cross + lags * lr, 0.0), mu)
        s_inf = float(theory.sde_stationary_error(lam, mu, lr))
        window = (ode_on_lags < 1.0 - delta) & (ode_on_lags > 5 * s_inf)
        dev = np.abs(aligned - ode_on_lags)[window]
        crossing = analysis.hitting_times(err, ode_steps, level)
        overlay.append(
            {
                "momentum": mu,
                "max_abs_deviation": float(dev.max()),
                "rms_deviation": float(np.sqrt(np.mean(dev**2))),
                "window_ode_error": [5 * s_inf, 1.0 - delta],
                "crossing_step_mean": float(np.nanmean(crossing)),
                "crossing_step_sd": float(np.nanstd(crossing)),
            }
        )
        curves.append((mu, lags * lr, aligned, ode_on_lags, ode_steps * lr, err.mean(axis=0)))
        measured = analysis.phase_times(err, ode_steps, delta=delta, eps=2 * s_inf)
        pred = theory.phase_durations(lam, mu, lr, delta=delta)
        for k in _PHASES:
            # escape/traverse: median over trajectories; converge: from the aligned mean,
            # since single trajectories fluctuate around the floor they converge to
            phases[k].append(
                float(np.nanmedian(measured[k]))
                if k != "converge"
                else float(
                    analysis.hitting_times(aligned, lags, 2 * s_inf)
                    - analysis.hitting_times(aligned, lags, delta)
                )
            )
            phases_theory[k].append(float(pred[k] / lr))
    return curves, overlay, phases, phases_theory


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs both sweeps, draws both figures and returns the summary (the documented keys, and more)."""
    a = cfg.get("analysis", {})
    t0 = time.perf_counter()

    # --- stationary error near the optimum, against Theorem 5
    res, spec = run_sweep(cfg, out, progress, meta, "stationary")
    drawing(FIGURES[:1], progress)
    steps = res.coords["step"]
    keep = steps >= a.get("burn_in", 20000)
    # (momentum, lr, seed): time average per seed, diverged trajectories counted as failed
    per_seed = analysis.with_failures(res, "error")[..., keep].mean(axis=-1)
    b = analysis.band(per_seed, axis=-1, diverged=analysis.diverged_mask(res))
    momenta = res.coords["momentum"].astype(float)
    lrs = res.coords["lr"].astype(float)
    theory_err = theory.sde_stationary_error(
        spec.problem.eigenvalues, momenta[:, None], lrs[None, :], spec.problem.fourth_moments()
    )
    fig = plotting.stationary_vs_theory(momenta, lrs, b.mean, b.stderr, theory_err)
    plotting.save(fig, out / FIGURES[0])

    # --- mean trajectories from the saddle, against the ODE of Theorem 3
    ode_res, ode_spec = run_sweep(cfg, out, progress, meta, "ode")
    drawing(FIGURES[1:], progress)
    level, eps0, delta = a.get("align_level", 0.5), a.get("ode_start", 1e-3), a.get("delta", 0.1)
    curves, overlay, phases, phases_theory = _ode_overlay(
        ode_res, ode_spec.problem.eigenvalues, float(ode_spec.grid.fixed["lr"]), level, eps0, delta
    )
    plotting.save(plotting.ode_overlay(curves, level), out / FIGURES[1])

    mu_flat, lr_flat = np.meshgrid(momenta, lrs, indexing="ij")
    return {
        "momentum": mu_flat.ravel(),
        "lr": lr_flat.ravel(),
        "simulated": b.mean.ravel(),
        "theory": theory_err.ravel(),
        "stderr": b.stderr.ravel(),
        "ratio": (b.mean / theory_err).ravel(),
        "relative_stderr": (b.stderr / b.mean).ravel(),
        "seeds": int(per_seed.shape[-1]),
        "diverged_fraction": b.diverged.ravel(),
        "ode_diverged_fraction": analysis.diverged_fraction(ode_res),
        "divergence_rule": analysis.DIVERGENCE_RULE,
        **divergence(res, ode_res),
        "stationary_window_steps": [int(steps[keep][0]), int(steps[-1])],
        "ode_overlay": overlay,
        "ode_alignment": (
            f"Each trajectory is shifted in time so that it crosses sin² = {level} at t = 0, and so is "
            f"the ODE, started at h1(0) = {eps0:g} beside the saddle (from the saddle itself it "
            "never leaves: h1 = 0 is invariant). The escape is driven by noise and happens at a "
            "random time, so without alignment the mean over seeds blurs the ODE's sigmoid; the "
            "shift is each trajectory's own crossing step (mean and sd in ode_overlay). Deviation "
            f"is measured while the ODE error lies between 5x the stationary error and {1 - delta:g}."
        ),
        "phases_steps": {
            "momentum": ode_res.coords["momentum"].astype(float),
            "measured": phases,
            "theory": phases_theory,
            "delta": delta,
            "note": "escape and traverse: median over trajectories; converge: from the aligned "
            "mean down to twice the stationary error",
        },
        "simulation_s": time.perf_counter() - t0,
    }


def headline(summary: dict[str, Any]) -> str:
    """The stationary error per (momentum, step size): simulated against Theorem 5."""
    return headline_table(
        summary,
        "stationary sin² error per (momentum, lr): simulated (seed mean) against theory (Theorem 5):",
        ("momentum", "lr", "simulated", "theory", "ratio", "relative_stderr"),
    )
