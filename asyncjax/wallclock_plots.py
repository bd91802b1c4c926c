"""Figures of worker-model sweeps: error against wall-clock time, speedup, staleness histograms.

Every function returns a Matplotlib Figure; `save_figures` writes the
set ``asyncjax run`` produces for a sweep with ``[delay] model = "workers"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from asyncjax import theory
from asyncjax._io import write_json
from asyncjax.analysis import laid_out
from asyncjax.plotting import evenly_spaced, save
from asyncjax.results import Results
from asyncjax.wallclock import (
    Speedup,
    default_target,
    speedup,
    speedup_summary,
    staleness_pmf,
)

__all__ = ["error_vs_wallclock", "speedup_figure", "staleness_figure", "save_figures"]


def _points(results: Results, var: str) -> tuple[tuple[str, ...], list[tuple[int, ...]]]:
    dims = tuple(d for d in results.dims[var] if d not in ("seed", "step"))
    return dims, list(np.ndindex(*(results.coords[d].size for d in dims)))


def error_vs_wallclock(
    results: Results, var: str = "error", max_curves: int = 12, title: str = ""
) -> Any:
    """Seed-mean ``var`` against seed-mean virtual time, one curve per grid point (one colour per M).

    With more than ``max_curves`` points an evenly spaced subset is drawn (the
    title says so).
    """
    dims, points = _points(results, var)
    order = ("seed",) + dims + ("step",)
    err = laid_out(results, var, order).mean(axis=0)
    wall = np.broadcast_to(laid_out(results, "wall_time", order).mean(axis=0), err.shape)
    pick = evenly_spaced(len(points), max_curves)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.cm.viridis(np.linspace(0.05, 0.9, pick.size))
    for col, i in zip(colors, pick):
        idx = points[i]
        label = ", ".join(
            f"{'M' if d == 'workers' else d}={results.coords[d][j]:g}" for d, j in zip(dims, idx)
        )
        ax.plot(wall[idx], err[idx], color=col, label=label or var)
    ax.set_yscale("log")
    ax.set_xlabel("virtual wall-clock time (units of the compute times)")
    ax.set_ylabel(f"mean {var}")
    shown = f" ({pick.size} of {len(points)} grid points)" if pick.size < len(points) else ""
    ax.set_title((title or f"mean {var} against wall-clock time") + shown, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def speedup_figure(
    sp: Speedup, title: str = "", coords: Mapping[str, Any] | None = None, max_curves: int = 6
) -> Any:
    """Speedup T(M_ref)/T(M) against M, with the linear line.

    One curve per point of the other axes when ``coords`` (the results'
    coordinates) are given and there are at most ``max_curves`` of them;
    otherwise the first point only, named in the legend.
    """
    points = list(np.ndindex(*sp.speedup.shape[:-1]))
    if coords is None or len(points) > max_curves:
        points = points[:1]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    grid = np.linspace(sp.workers.min(), sp.workers.max(), 100)
    ax.plot(grid, grid / sp.reference, "k--", lw=1, label="linear")
    colors = (
        plt.cm.viridis(np.linspace(0.0, 0.85, len(points))) if len(points) > 1 else ["tab:blue"]
    )
    for idx, col in zip(points, colors):
        y, ci = sp.speedup[idx], sp.ci[idx]
        ok = np.isfinite(y)
        name = (
            ", ".join(f"{d}={np.asarray(coords[d])[i]:g}" for d, i in zip(sp.dims, idx))
            if coords
            else ""
        )
        yerr = np.abs(ci[ok].T - y[ok][None, :])
        ax.errorbar(
            sp.workers[ok],
            y[ok],
            yerr=np.where(np.isfinite(yerr), yerr, 0),
            fmt="o-",
            color=col,
            capsize=3,
            label=(name + " " if name else "") + "(95% bootstrap CI)",
        )
        if (~ok).any():
            ax.plot(sp.workers[~ok], np.zeros((~ok).sum()), "x", color="tab:red")
    if any((~np.isfinite(sp.speedup[idx])).any() for idx in points):
        ax.plot([], [], "x", color="tab:red", label="target not reached")
    ax.set_xlabel("workers M")
    ax.set_ylabel(f"speedup T({sp.reference:g}) / T(M), wall-clock")
    more = (
        ""
        if len(points) == int(np.prod(sp.speedup.shape[:-1]))
        else f"; first of {int(np.prod(sp.speedup.shape[:-1]))} points (all in speedup.json)"
    )
    ax.set_title(title or f"time to error ≤ {sp.target:.3g}{more}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def staleness_figure(results: Results, title: str = "") -> Any:
    """Staleness histograms per worker count (log scale), with the geometric law for exponential times."""
    ws, pmf = staleness_pmf(results)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.cm.plasma(np.linspace(0.05, 0.85, ws.size))
    lags = np.arange(pmf.shape[1] - 1)  # the last bin is the overflow
    law = results.attrs.get("delay", {}).get("law")
    for m, p, col in zip(ws, pmf, colors):
        keep = p[:-1] > 0
        ax.plot(lags[keep], p[:-1][keep], "o-", ms=2.5, color=col, label=f"M={m:g}")
        if (
            law == "exponential"
            and not results.attrs["delay"].get("speeds")
            and results.attrs["delay"].get("straggler", 1.0) == 1.0
        ):
            ax.plot(lags, theory.staleness_pmf(lags, m), "--", color=col, lw=0.8)
    if law == "exponential":
        ax.plot([], [], "k--", lw=0.8, label="(1/M)(1-1/M)^l")
    ax.set_yscale("log")
    ax.set_ylim(0.3 * pmf[pmf > 0].min(), 1.5)  # the law's far tail would stretch the axis
    ax.set_xlabel(r"staleness $\tau$")
    ax.set_ylabel("fraction of updates")
    ax.set_title(title or f"staleness of the applied updates ({law} compute times)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def save_figures(
    results: Results, out: str | Path, *, target: float | None = None
) -> dict[str, Any]:
    """Writes ``error_vs_wallclock.png``, ``staleness.png`` and, with several worker counts,
    ``speedup.png`` (and ``speedup.json``) into ``out``.

    A sweep with a server (`asyncjax.servers`) records no staleness histogram: its
    ``staleness.png`` is not drawn (`asyncjax.servers.schedule` gives the staleness
    of one trajectory's arrivals).

    Args:
      target: the error level of the speedup (default `default_target`).

    Returns:
      The speedup table (empty without a workers axis; only ``skipped``, saying
      why, when no default target exists).
    """
    out = Path(out)
    save(error_vs_wallclock(results), out / "error_vs_wallclock.png")
    if "staleness_hist" in results:
        save(staleness_figure(results), out / "staleness.png")
    if (
        "workers" not in results.coords
        or results.coords["workers"].size < 2
        or "seed" not in results.coords
    ):
        return {}
    target = default_target(results) if target is None else float(target)
    if not np.isfinite(target):  # no point of the smallest worker count descends
        return {
            "skipped": "no grid point of the smallest worker count descends, so no error level "
            "to time; set one ([analysis] target, or target=)"
        }
    sp = speedup(results, target)
    save(speedup_figure(sp, coords=results.coords), out / "speedup.png")
    table = speedup_summary(sp, results.coords)
    write_json(out / "speedup.json", table)
    return table
