"""The experiments behind ``asyncjax reproduce NAME``.

Each preset is a TOML file in :mod:`asyncjax.experiments` (the sweep) plus a
function here (the analysis it reports). A run writes into its output folder:
the saved sweep (``results.npz`` and its chunk checkpoints), the figures as PNG
and ``summary.json`` with the preset's headline numbers.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from asyncjax import analysis, plotting, theory
from asyncjax.config import parse_config
from asyncjax.experiments import available, load_preset
from asyncjax.results import write_json
from asyncjax.sweep import sweep

__all__ = ["reproduce", "PRESETS"]


def _apply_overrides(cfg: dict[str, Any], *, quick: bool, seeds: int | None) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
    quick_cfg = cfg.pop("quick", {})
    sweeps = [cfg] if "grid" in cfg else list(cfg["sweep"].values())
    if seeds is not None and seeds < 2:
        raise ValueError(f"--seeds must be at least 2 (bands and intervals need them), got {seeds}")
    for sw in sweeps:
        if quick:
            if "seeds" in quick_cfg:
                sw["grid"]["seeds"] = min(quick_cfg["seeds"], sw["grid"]["seeds"])
            if "steps" in quick_cfg:
                sw["run"]["steps"] = quick_cfg["steps"]
        if seeds is not None:
            sw["grid"]["seeds"] = seeds
    return cfg


def _liu2018_fig1(cfg: dict[str, Any], out: Path, progress: bool | None) -> dict[str, Any]:
    spec = parse_config(cfg, "liu2018-fig1")
    t0 = time.perf_counter()
    res = sweep(spec.problem, spec.grid, out=out, resume=True, overwrite=True, progress=progress,
                **spec.sweep_kwargs())
    sim_s = time.perf_counter() - t0

    a = spec.analysis
    window, factor, n_boot = a.get("window", 0.25), a.get("factor", 2.0), a.get("bootstrap", 1000)
    per_seed = analysis.late_average(res, "error", window)  # (momentum, delay, seed)
    delays = res.coords["delay"].astype(float)
    momenta = res.coords["momentum"].astype(float)
    lr = float(spec.grid.fixed["lr"])
    thr = analysis.threshold_delays(per_seed, delays, factor=factor, n_boot=n_boot, window=window)
    predicted = theory.pca_threshold(spec.problem.eigenvalues, momenta, lr)
    bands = analysis.band(per_seed, axis=-1)

    fig = plotting.error_vs_delay(
        delays, momenta, bands, measured=thr.threshold,
        measured_ci=np.stack([thr.ci_lo, thr.ci_hi], axis=-1), predicted=predicted,
        title=f"streaming PCA, η={lr:g}, {per_seed.shape[-1]} seeds, {res.attrs['steps']} steps",
    )
    plotting.save(fig, out / "fig1_error_vs_delay.png")
    plotting.save(plotting.error_vs_step(res.isel(delay=0), title="τ = 0: mean error from the saddle"),
                  out / "fig1_error_vs_step.png")
    div = analysis.diverged_fraction(res)  # (momentum, delay)
    one_minus = 1.0 - momenta
    measured_fit = analysis.fit_power_law(one_minus, thr.threshold, thr.boot)
    predicted_fit = analysis.fit_power_law(one_minus, predicted)
    return {
        "momentum": momenta,
        "threshold": thr.threshold,
        "threshold_ci": np.stack([thr.ci_lo, thr.ci_hi], axis=-1),
        "predicted": predicted,
        "rule": thr.rule + " Predicted: the exact linear delay-stability boundary τ*, minimised "
                           "over the modes of the optimum (theory.pca_threshold).",
        "censored": thr.censored,
        "lr": lr,
        "delays": delays,
        "seeds": int(per_seed.shape[-1]),
        "steps": int(res.attrs["steps"]),
        "exponent_vs_one_minus_momentum": {
            "measured": measured_fit.exponent,
            "measured_ci": measured_fit.exponent_ci,
            "stability_boundary": predicted_fit.exponent,
            "paper_sufficient_condition": 2.0,
            "note": "least-squares fit of log threshold on log(1 − μ); CI from the seed bootstrap",
        },
        "error_at_zero_delay": bands.mean[:, 0],
        "diverged_fraction_at_largest_delay": div[:, -1],
        "simulation_s": sim_s,
    }


def _liu2018_stationary(cfg: dict[str, Any], out: Path, progress: bool | None) -> dict[str, Any]:
    a = cfg.get("analysis", {})
    t0 = time.perf_counter()

    # --- stationary error near the optimum, against Theorem 5
    spec = parse_config(cfg["sweep"]["stationary"], "liu2018-stationary [stationary]")
    res = sweep(spec.problem, spec.grid, out=out / "stationary", resume=True, overwrite=True,
                progress=progress, **spec.sweep_kwargs())
    steps = res.coords["step"]
    keep = steps >= a.get("burn_in", 20000)
    per_seed = res["error"][..., keep].mean(axis=-1)  # (momentum, lr, seed): time average per seed
    b = analysis.band(per_seed, axis=-1)
    momenta = res.coords["momentum"].astype(float)
    lrs = res.coords["lr"].astype(float)
    theory_err = theory.sde_stationary_error(spec.problem.eigenvalues, momenta[:, None], lrs[None, :],
                                             spec.problem.fourth_moments())
    fig = plotting.stationary_vs_theory(momenta, lrs, b.mean, b.stderr, theory_err)
    plotting.save(fig, out / "stationary_vs_theory.png")

    # --- mean trajectories from the saddle, against the ODE of Theorem 3
    ode_spec = parse_config(cfg["sweep"]["ode"], "liu2018-stationary [ode]")
    ode_res = sweep(ode_spec.problem, ode_spec.grid, out=out / "ode", resume=True, overwrite=True,
                    progress=progress, **ode_spec.sweep_kwargs())
    lr = float(ode_spec.grid.fixed["lr"])
    lam = ode_spec.problem.eigenvalues
    level, eps0, delta = a.get("align_level", 0.5), a.get("ode_start", 1e-3), a.get("delta", 0.1)
    h0 = np.zeros(lam.size)
    h0[0], h0[1] = eps0, np.sqrt(1 - eps0**2)
    ode_steps = ode_res.coords["step"]
    curves, overlay = [], []
    phases = {"escape": [], "traverse": [], "converge": []}
    phases_theory = {"escape": [], "traverse": [], "converge": []}
    for i, mu in enumerate(ode_res.coords["momentum"].astype(float)):
        err = ode_res["error"][i]  # (seed, step)
        lags, aligned = analysis.aligned_mean(err, ode_steps, level)
        t_grid = np.linspace(0.0, ode_steps[-1] * lr * 4, 40001)
        ode = theory.ode_error(lam, h0, t_grid, mu)
        t_cross = np.interp(-level, -ode, t_grid)  # ODE time at which it crosses `level`
        ode_on_lags = theory.ode_error(lam, h0, np.maximum(t_cross + lags * lr, 0.0), mu)
        s_inf = float(theory.sde_stationary_error(lam, mu, lr))
        window = (ode_on_lags < 1.0 - delta) & (ode_on_lags > 5 * s_inf)
        dev = np.abs(aligned - ode_on_lags)[window]
        crossing = analysis.hitting_times(err, ode_steps, level)
        overlay.append({"momentum": mu, "max_abs_deviation": float(dev.max()),
                        "rms_deviation": float(np.sqrt(np.mean(dev**2))),
                        "window_ode_error": [5 * s_inf, 1.0 - delta],
                        "crossing_step_mean": float(np.nanmean(crossing)),
                        "crossing_step_sd": float(np.nanstd(crossing))})
        curves.append((mu, lags * lr, aligned, ode_on_lags, ode_steps * lr, err.mean(axis=0)))
        measured = analysis.phase_times(err, ode_steps, delta=delta, eps=2 * s_inf)
        pred = theory.phase_durations(lam, mu, lr, delta=delta)
        for k in phases:
            # escape/traverse: median over trajectories; converge: from the aligned mean,
            # since single trajectories fluctuate around the floor they converge to
            phases[k].append(float(np.nanmedian(measured[k])) if k != "converge" else
                             float(analysis.hitting_times(aligned, lags, 2 * s_inf) -
                                   analysis.hitting_times(aligned, lags, delta)))
            phases_theory[k].append(float(pred[k] / lr))
    plotting.save(plotting.ode_overlay(curves, level), out / "ode_overlay.png")

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
        "phases_steps": {"momentum": ode_res.coords["momentum"].astype(float), "measured": phases,
                         "theory": phases_theory, "delta": delta,
                         "note": "escape and traverse: median over trajectories; converge: from the aligned "
                                 "mean down to twice the stationary error"},
        "simulation_s": time.perf_counter() - t0,
    }


PRESETS: dict[str, Callable[[dict[str, Any], Path, bool | None], dict[str, Any]]] = {
    "liu2018-fig1": _liu2018_fig1,
    "liu2018-stationary": _liu2018_stationary,
}


def reproduce(name: str, out: str | Path | None = None, *, quick: bool = False, seeds: int | None = None,
              progress: bool | None = None) -> dict[str, Any]:
    """Runs preset ``name`` and writes its figures and ``summary.json`` into ``out``.

    Args:
      name: a preset (see :func:`asyncjax.experiments.available`).
      out: output folder; default ``runs/NAME``.
      quick: the preset's small smoke-run size.
      seeds: number of seeds (overrides the preset).
      progress: progress bar on stderr; default when stderr is a terminal.

    Returns:
      The summary that was written.
    """
    if name not in PRESETS or name not in available():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    cfg = _apply_overrides(load_preset(name), quick=quick, seeds=seeds)
    out = Path(out or Path("runs") / name)
    t0 = time.perf_counter()
    summary = PRESETS[name](cfg, out, progress)
    summary = {"preset": name, "quick": quick, **summary,
               "wall_s": time.perf_counter() - t0,
               "device": f"{jax.devices()[0].device_kind} x{len(jax.devices())}"}
    write_json(out / "summary.json", summary)
    return summary
