"""The experiments behind ``asyncjax reproduce NAME``.

Each preset is a TOML file in :mod:`asyncjax.experiments` (the sweep) plus a
function here (the analysis it reports). A run writes into its output folder:
the saved sweep (``results.npz`` and its chunk checkpoints), the figures as PNG,
``summary.json`` with the preset's headline numbers, and ``reproduce.json``
naming the preset and the exact settings the folder holds.

A folder is only ever continued by the same preset with the same settings (a
killed run resumes from its chunks). One that holds anything else asyncjax
wrote -- another preset, the ``--quick`` or full version of this one, another
seed count, a sweep of ``asyncjax run`` -- is refused unless ``overwrite=True``
(``--overwrite``), which first deletes what asyncjax wrote there (sweeps,
figures, summaries) so that no stale figure is left beside the new ones.
"""

from __future__ import annotations

import copy
import importlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from asyncjax import analysis, plotting, theory
from asyncjax._io import ensure_dir, jsonable, write_json
from asyncjax._version import __version__
from asyncjax.config import parse_config
from asyncjax.experiments import available, load_preset, preset_text
from asyncjax.sweep import sweep

__all__ = ["reproduce", "PRESETS"]

# What each preset writes: its figures, and the folders (relative to the output) of its sweeps.
FIGURES = {
    "liu2018-fig1": ("fig1_error_vs_delay.png", "fig1_error_vs_step.png"),
    "liu2018-stationary": ("stationary_vs_theory.png", "ode_overlay.png"),
    "liu2018-phase": ("phase_error_heatmap.png",),
    "wang2020-speedup": ("wang_speedup.png",),
    "mitliagkas2016": ("implicit_momentum.png", "best_momentum.png"),
    "liu2018-dnn": ("accuracy_vs_momentum.png",),
}
_MARK = "reproduce.json"
_MARK_FORMAT = "asyncjax-reproduce/1"
_SWEEP_FILES = (
    "results.npz",
    "sweep.json",
    "chunks",
    "error_vs_step.png",  # and `asyncjax plot` of a worker sweep:
    "error_vs_wallclock.png",
    "staleness.png",
    "speedup.png",
    "speedup.json",
)


def _divergence(*results: Any) -> dict[str, int]:
    flags = [np.asarray(r["diverged_at"]) >= 0 for r in results]
    return {
        "trajectories": int(sum(f.size for f in flags)),
        "diverged_trajectories": int(sum(f.sum() for f in flags)),
    }


def _apply_overrides(cfg: dict[str, Any], *, quick: bool, seeds: int | None) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
    quick_cfg = cfg.pop("quick", {})
    sweeps = [cfg] if "grid" in cfg else list(cfg["sweep"].values())
    if seeds is not None and seeds < 2:
        raise ValueError(f"--seeds must be at least 2 (bands and intervals need them), got {seeds}")
    if quick and "analysis" in quick_cfg:  # [quick.analysis]: the quick run's own analysis settings
        cfg["analysis"] = {**cfg.get("analysis", {}), **quick_cfg["analysis"]}
    for sw in sweeps:
        own = {
            **quick_cfg,
            **sw.pop("quick", {}),
        }  # a sweep's own [quick] table wins over the preset's
        if quick:
            if "seeds" in own:
                sw["grid"]["seeds"] = min(own["seeds"], sw["grid"]["seeds"])
            if "steps" in own:
                sw["run"]["steps"] = own["steps"]
        if seeds is not None:
            sw["grid"]["seeds"] = seeds
    return cfg


def _momentum_delay_sweep(
    cfg: dict[str, Any], name: str, out: Path, progress: bool | None, meta: dict[str, Any]
) -> tuple[Any, Any, dict[str, Any]]:
    """Runs a (momentum, delay) sweep of streaming PCA and measures its thresholds, as Fig. 1 does.

    Returns:
      ``(spec, results, parts)``; ``parts`` holds ``momenta``, ``delays``, ``lr``,
      ``per_seed`` (momentum, delay, seed), ``thr`` (measured thresholds),
      ``predicted`` (the stability boundary per μ), ``bands`` (over seeds, with
      diverged fractions) and ``simulation_s``.
    """
    spec = parse_config(cfg, name)
    t0 = time.perf_counter()
    res = sweep(
        spec.problem,
        spec.grid,
        out=out,
        resume=True,
        progress=progress,
        metadata=meta,
        **spec.sweep_kwargs(),
    )
    sim_s = time.perf_counter() - t0
    a = spec.analysis
    window, factor, n_boot = a.get("window", 0.25), a.get("factor", 2.0), a.get("bootstrap", 1000)
    per_seed = analysis.late_average(
        res, "error", window
    )  # (momentum, delay, seed); diverged = failed
    flags = analysis.diverged_mask(res)  # (momentum, delay, seed)
    delays = res.coords["delay"].astype(float)
    momenta = res.coords["momentum"].astype(float)
    lr = float(spec.grid.fixed["lr"])
    thr = analysis.threshold_delays(
        per_seed, delays, factor=factor, n_boot=n_boot, window=window, diverged=flags
    )
    predicted = theory.pca_threshold(spec.problem.eigenvalues, momenta, lr)
    bands = analysis.band(per_seed, axis=-1, diverged=flags)
    return (
        spec,
        res,
        {
            "momenta": momenta,
            "delays": delays,
            "lr": lr,
            "per_seed": per_seed,
            "thr": thr,
            "predicted": predicted,
            "bands": bands,
            "simulation_s": sim_s,
        },
    )


def _liu2018_fig1(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    spec, res, p = _momentum_delay_sweep(cfg, "liu2018-fig1", out, progress, meta)
    momenta, delays, lr, per_seed, thr = p["momenta"], p["delays"], p["lr"], p["per_seed"], p["thr"]
    predicted, bands, sim_s = p["predicted"], p["bands"], p["simulation_s"]

    fig = plotting.error_vs_delay(
        delays,
        momenta,
        bands,
        measured=thr.threshold,
        measured_ci=np.stack([thr.ci_lo, thr.ci_hi], axis=-1),
        predicted=predicted,
        title=f"streaming PCA, η={lr:g}, {per_seed.shape[-1]} seeds, {res.attrs['steps']} steps",
    )
    plotting.save(fig, out / "fig1_error_vs_delay.png")
    plotting.save(
        plotting.error_vs_step(res.isel(delay=0), title="τ = 0: mean error from the saddle"),
        out / "fig1_error_vs_step.png",
    )
    div = bands.diverged  # (momentum, delay)
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
        "diverged_fraction": div,
        "diverged_fraction_at_largest_delay": div[:, -1],
        "diverged_fraction_below_threshold": thr.diverged_below,
        "divergence_dominated": bands.diverged_share >= 0.5,
        "divergence_rule": analysis.DIVERGENCE_RULE,
        **_divergence(res),
        "simulation_s": sim_s,
    }


def _liu2018_stationary(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    a = cfg.get("analysis", {})
    t0 = time.perf_counter()

    # --- stationary error near the optimum, against Theorem 5
    spec = parse_config(cfg["sweep"]["stationary"], "liu2018-stationary [stationary]")
    res = sweep(
        spec.problem,
        spec.grid,
        out=out / "stationary",
        resume=True,
        progress=progress,
        metadata={**meta, "sweep": "stationary"},
        **spec.sweep_kwargs(),
    )
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
    plotting.save(fig, out / "stationary_vs_theory.png")

    # --- mean trajectories from the saddle, against the ODE of Theorem 3
    ode_spec = parse_config(cfg["sweep"]["ode"], "liu2018-stationary [ode]")
    ode_res = sweep(
        ode_spec.problem,
        ode_spec.grid,
        out=out / "ode",
        resume=True,
        progress=progress,
        metadata={**meta, "sweep": "ode"},
        **ode_spec.sweep_kwargs(),
    )
    ode_error = analysis.with_failures(ode_res, "error")  # (momentum, seed, step)
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
        for k in phases:
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
        "diverged_fraction": b.diverged.ravel(),
        "ode_diverged_fraction": analysis.diverged_fraction(ode_res),
        "divergence_rule": analysis.DIVERGENCE_RULE,
        **_divergence(res, ode_res),
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


Runner = Callable[[dict[str, Any], Path, "bool | None", dict[str, Any]], dict[str, Any]]


def _module(name: str) -> Runner:
    """The ``run`` function of preset module ``asyncjax.experiments.NAME``, imported when first used.

    Presets other than Liu et al.'s first two keep their analysis in a module of
    their own beside their TOML; importing it lazily keeps ``import asyncjax``
    light and lets those modules use the helpers here without an import cycle.
    """

    def run(
        cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
    ) -> dict[str, Any]:
        return importlib.import_module(f"asyncjax.experiments.{name}").run(cfg, out, progress, meta)

    return run


PRESETS: dict[str, Runner] = {
    "liu2018-fig1": _liu2018_fig1,
    "liu2018-stationary": _liu2018_stationary,
    "liu2018-phase": _module("liu2018_phase"),
    "wang2020-speedup": _module("wang2020_speedup"),
    "mitliagkas2016": _module("mitliagkas2016"),
    "liu2018-dnn": _module("liu2018_dnn"),
}


def _identity(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return {"preset": name, "config": jsonable(cfg)}


def _ours(path: Path) -> list[str]:
    """What asyncjax wrote in folder ``path`` (names relative to it)."""
    if not path.is_dir():
        return []
    figures = {f for names in FIGURES.values() for f in names}
    found = [
        p.name
        for p in path.iterdir()
        if p.name in figures or p.name in _SWEEP_FILES or p.name in ("summary.json", _MARK)
    ]
    for sub in path.iterdir():
        if sub.is_dir() and ((sub / "sweep.json").exists() or (sub / "chunks").is_dir()):
            found += [f"{sub.name}/{p.name}" for p in sub.iterdir() if p.name in _SWEEP_FILES]
    return sorted(found)


def _differences(old: Any, new: Any, prefix: str = "", limit: int = 3) -> str:
    """The first settings that differ between two preset configurations, as 'grid.seeds: 100 -> 16'."""
    found: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if len(found) >= limit or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        else:
            found.append(f"{path}: {a!r} -> {b!r}")

    walk(old, new, prefix)
    return "; ".join(found) or "settings recorded differently"


def _claim(out: Path, name: str, cfg: dict[str, Any], overwrite: bool, quick: bool) -> None:
    """Makes ``out`` this run's folder: refuses (or, with ``overwrite``, clears) other results in it."""
    ensure_dir(out)
    mark = out / _MARK
    found = _ours(out)
    old = None
    if mark.exists():
        try:
            old = json.loads(mark.read_text())
        except (OSError, ValueError):
            old = None
    same = (
        isinstance(old, dict)
        and old.get("format") == _MARK_FORMAT
        and {"preset": old.get("preset"), "config": old.get("config")} == _identity(name, cfg)
    )
    if found and not (same and not overwrite):
        if not overwrite:
            if isinstance(old, dict) and old.get("preset"):
                run = (
                    f"`asyncjax reproduce {old['preset']}{' --quick' if old.get('quick') else ''}`"
                )
                what = f"the results of {run}" + (
                    f" with other settings ({_differences(old.get('config'), _identity(name, cfg)['config'])})"
                    if old["preset"] == name
                    else ""
                )
            else:
                what = (
                    f"asyncjax results ({', '.join(found[:6])}) not recorded as a run of "
                    f"`asyncjax reproduce {name}` with these settings"
                )
            raise FileExistsError(
                f"{out} already holds {what}; pass --overwrite (overwrite=True) to replace them, "
                "or choose another --out"
            )
        for rel in found:
            target = out / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for sub in {(out / rel).parent for rel in found if "/" in rel}:
            if not any(sub.iterdir()):  # a sweep's folder that held nothing else
                sub.rmdir()
    write_json(
        mark,
        {
            "format": _MARK_FORMAT,
            "asyncjax_version": __version__,
            "quick": quick,
            **_identity(name, cfg),
        },
    )


def reproduce(
    name: str,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    seeds: int | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Runs preset ``name`` and writes its figures and ``summary.json`` into ``out``.

    Args:
      name: a preset (see :func:`asyncjax.experiments.available`).
      out: output folder; default ``runs/NAME``. A folder holding this preset's
        run with the same settings is continued (finished chunks are reused);
        one holding other asyncjax results is refused unless ``overwrite``.
      quick: the preset's small smoke-run size.
      seeds: number of seeds (overrides the preset).
      progress: progress bar on stderr; default when stderr is a terminal.
      overwrite: delete the results asyncjax wrote in ``out`` first (sweeps,
        figures, summaries; nothing else), and run afresh.

    Returns:
      The summary that was written.
    """
    if name not in PRESETS or name not in available():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    cfg = _apply_overrides(load_preset(name), quick=quick, seeds=seeds)
    out = Path(out or Path("runs") / name)
    _claim(out, name, cfg, overwrite, quick)
    meta = {"preset": name, "quick": quick, "seeds_override": seeds, "toml": preset_text(name)}
    t0 = time.perf_counter()
    summary = PRESETS[name](cfg, out, progress, meta)
    summary = {
        "preset": name,
        "quick": quick,
        **summary,
        "figures": list(FIGURES[name]),
        "wall_s": time.perf_counter() - t0,
        "device": f"{jax.devices()[0].device_kind} x{len(jax.devices())}",
    }
    write_json(out / "summary.json", summary)
    return summary
