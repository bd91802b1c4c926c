"""The experiments behind ``asyncjax reproduce NAME``.

Each preset is a TOML file in :mod:`asyncjax.experiments` (the sweep) plus a
function here (the analysis it reports). A run writes into its output folder:
the saved sweep (``results.npz`` and its chunk checkpoints), the figures as PNG
and ``summary.json`` with the preset's headline numbers.
"""

from __future__ import annotations

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
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
    quick_cfg = cfg.pop("quick", {})
    if quick:
        if "seeds" in quick_cfg:
            cfg["grid"]["seeds"] = quick_cfg["seeds"]
        if "steps" in quick_cfg:
            cfg["run"]["steps"] = quick_cfg["steps"]
    if seeds is not None:
        if seeds < 2:
            raise ValueError(f"--seeds must be at least 2 (bands and intervals need them), got {seeds}")
        cfg["grid"]["seeds"] = seeds
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
        "error_at_zero_delay": bands.mean[:, 0],
        "diverged_fraction_at_largest_delay": div[:, -1],
        "simulation_s": sim_s,
    }


PRESETS: dict[str, Callable[[dict[str, Any], Path, bool | None], dict[str, Any]]] = {
    "liu2018-fig1": _liu2018_fig1,
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
