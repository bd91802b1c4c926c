"""Matplotlib figures. Every function returns the Figure and can save it.

Figures follow the divergence rule of `asyncjax.analysis`: a diverged
trajectory counts as failed (sin² = 1) from its divergence on, and points where
diverged trajectories make up most of the mean are marked.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from asyncjax._io import atomic_write
from asyncjax.analysis import Band, diverged_mask, with_failures
from asyncjax.results import Results

__all__ = [
    "error_vs_delay",
    "error_vs_step",
    "stationary_vs_theory",
    "ode_overlay",
    "save",
    "distinct_colors",
    "evenly_spaced",
    "plain_tick",
    "tidy_log_axis",
]

# Colours for up to 10 curves that can be told apart (matplotlib's qualitative tab10).
_QUALITATIVE = plt.get_cmap("tab10").colors
_STYLES = ("-", "--", "-.", ":")


def save(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """Writes ``fig`` to ``path`` (format from the suffix, atomically) and closes it."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight"))
    plt.close(fig)
    return path


def distinct_colors(n: int) -> list:
    """``n`` colours that can be told apart: qualitative up to 10, else evenly spaced viridis."""
    if n <= len(_QUALITATIVE):
        return list(_QUALITATIVE[:n])
    return list(plt.cm.viridis(np.linspace(0.0, 0.92, n)))


def plain_tick(x: float, _pos: Any = None) -> str:
    """A tick label without scientific notation where ``%g`` avoids it (``FuncFormatter(plain_tick)``)."""
    return f"{x:g}"


def tidy_log_axis(axis: Any) -> None:
    """Ticks of a log axis that do not overlap: labels at 1, 2, 5 × 10^k (or decades), none on minors.

    Matplotlib labels minor ticks of a log axis that spans less than a decade,
    and on a short axis those labels run into each other.
    """
    lo, hi = sorted(axis.get_view_interval())
    decades = math.log10(hi / lo) if lo > 0 and hi > 0 else 10.0
    if decades <= 0.5:
        subs = tuple(float(k) for k in range(1, 10))
    else:
        subs = (1.0, 2.0, 5.0) if decades <= 1.6 else (1.0, 3.0) if decades <= 2.6 else (1.0,)
    axis.set_major_locator(LogLocator(base=10.0, subs=subs))
    axis.set_major_formatter(FuncFormatter(plain_tick))
    axis.set_minor_formatter(NullFormatter())


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
    band_label: str = "10–90% of seeds",
) -> Any:
    """Figure-1 style: mean error against delay, one curve per momentum.

    Args:
      delays: (T,) delays.
      momenta: (M,) momentum of each curve.
      bands: `Band` of (M, T) arrays over seeds. If it
        carries divergence information (``band(..., diverged=...)``), points
        where some seeds diverged get a hollow marker and divergence-dominated
        points (diverged seeds make up at least half the mean) a cross.
      measured: (M,) measured threshold delays (marked with a dot on the curve).
      measured_ci: (M, 2) their confidence intervals (bars with caps, and the
        numbers in the right panel).
      predicted: (M,) predicted thresholds (dashed vertical lines).
      title: the figure's title; the band's meaning stays in the legend.
      band_label: what the shaded band is.
    """
    delays = np.asarray(delays, dtype=float)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.8), gridspec_kw={"width_ratios": [2.2, 1]})
    colors = distinct_colors(len(momenta))
    frac = getattr(bands, "diverged", None)
    share = getattr(bands, "diverged_share", None)
    any_partial = any_dominated = False
    for i, (mu, col) in enumerate(zip(momenta, colors)):
        ax.plot(delays, bands.mean[i], "-o", ms=2.5, color=col, label=rf"$\mu={mu:g}$")
        ax.fill_between(delays, bands.lo[i], bands.hi[i], color=col, alpha=0.16, lw=0)
        if frac is not None:
            dominated = np.asarray(share[i]) >= 0.5
            partial = (np.asarray(frac[i]) > 0) & ~dominated
            any_partial |= bool(partial.any())
            any_dominated |= bool(dominated.any())
            ax.plot(
                delays[partial], bands.mean[i][partial], "D", ms=5, mfc="white", mec=col, mew=1.2
            )
            ax.plot(delays[dominated], bands.mean[i][dominated], "x", ms=7, color=col, mew=1.8)
        if predicted is not None:
            ax.axvline(predicted[i], color=col, ls="--", lw=1)
        if measured is not None:
            y = float(
                np.exp(np.interp(measured[i], delays, np.log(np.maximum(bands.mean[i], 1e-300))))
            )
            if measured_ci is not None:
                lo, hi = measured_ci[i]
                ax.errorbar(
                    [measured[i]],
                    [y],
                    xerr=[[measured[i] - lo], [hi - measured[i]]],
                    fmt="none",
                    ecolor="k",
                    elinewidth=1.6,
                    capsize=5,
                    capthick=1.6,
                    zorder=5,
                )
            ax.plot([measured[i]], [y], "o", mfc="white", mec=col, ms=8, mew=2, zorder=6)
    ax.set_yscale("log")
    ax.set_xlabel(r"delay $\tau$")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "error against delay", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    extra = [(Patch(color="gray", alpha=0.3, lw=0), f"band: {band_label}")]
    if predicted is not None:
        extra.append((plt.Line2D([], [], color="gray", ls="--"), "predicted threshold"))
    if measured is not None:
        extra.append(
            (
                plt.Line2D([], [], marker="o", mfc="white", mec="gray", mew=2, ls=""),
                "measured threshold" + (" (bar: 95% CI)" if measured_ci is not None else ""),
            )
        )
    if any_partial:
        extra.append(
            (
                plt.Line2D([], [], marker="D", ms=5, mfc="white", mec="gray", ls=""),
                "some seeds diverged",
            )
        )
    if any_dominated:
        extra.append(
            (
                plt.Line2D([], [], marker="x", color="gray", mew=1.8, ls=""),
                "divergence-dominated (diverged seeds count as sin² = 1)",
            )
        )
    handles += [h for h, _ in extra]
    labels += [t for _, t in extra]
    ax.legend(handles, labels, fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax.grid(alpha=0.3, which="both")
    tidy_log_axis(ax.yaxis)

    one_minus = 1.0 - np.asarray(momenta, float)
    if measured is not None:
        yerr = None
        if measured_ci is not None:
            yerr = np.abs(np.asarray(measured_ci).T - np.asarray(measured)[None, :])
        ax2.errorbar(
            one_minus, measured, yerr=yerr, fmt="o", color="k", capsize=3, label="measured (95% CI)"
        )
        for i, (x, m) in enumerate(zip(one_minus, measured)):
            text = (
                f"{m:.1f}"
                if measured_ci is None
                else f"{m:.1f} [{measured_ci[i][0]:.1f}, {measured_ci[i][1]:.1f}]"
            )
            ax2.annotate(
                text,
                (x, m),
                xytext=(6, -3),
                textcoords="offset points",
                fontsize=7,
                ha="left",
                va="top",
            )
    if predicted is not None:
        ax2.plot(
            one_minus, predicted, "s--", color="tab:red", mfc="none", label="stability boundary"
        )
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(r"$1-\mu$")
    ax2.set_ylabel(r"threshold delay")
    ax2.set_title("threshold against $1-\\mu$", fontsize=10)
    ax2.grid(alpha=0.3, which="both")
    if measured is None and predicted is None:
        ax2.set_visible(False)  # nothing to set against 1 - μ
    else:
        ax2.legend(fontsize=8, loc="upper left")
    lo, hi = one_minus.min(), one_minus.max()
    ax2.set_xlim(lo / 1.25, hi * 2.0)  # room on the right for the numbers
    tidy_log_axis(ax2.xaxis)
    tidy_log_axis(ax2.yaxis)
    fig.tight_layout()
    return fig


def _label(
    dims: Sequence[str], coords: Sequence[np.ndarray], idx: Sequence[int], short: bool = False
) -> str:
    if short and len(dims) == 1:
        return f"{coords[0][idx[0]]:g}"
    return ", ".join(f"{d}={c[i]:g}" for d, c, i in zip(dims, coords, idx))


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """``k`` evenly spaced indices of ``n`` (all of them if ``n <= k``), first and last included."""
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(int))


def error_vs_step(
    results: Results,
    var: str = "error",
    max_curves: int = 12,
    title: str = "",
    *,
    facet: str | None = None,
    max_panels: int = 6,
) -> Any:
    """Mean (over seeds) of ``var`` against the step, one curve per grid point.

    Works for any sweep. With two or more grid axes besides the seeds, one
    panel per value of ``facet`` (default: the first axis) holds a curve per
    combination of the others. Up to 10 curves per panel get qualitative
    colours, more get a colour ramp with alternating line styles, and the
    legend sits outside the panels. Beyond ``max_curves`` curves per panel or
    ``max_panels`` panels an evenly spaced subset is drawn, and a note under
    the figure names every value left out. Diverged trajectories count as
    failed (`asyncjax.analysis.with_failures`); curves that contain any
    end in a cross, and the note gives their diverged fraction.
    """
    arr = with_failures(results, var)
    dims = list(results.dims[var])
    frac = None
    if "diverged_at" in results:
        frac_dims = [d for d in results.dims["diverged_at"]]
        frac = diverged_mask(results).astype(float)
    if "seed" in dims:
        with np.errstate(invalid="ignore"):
            arr = arr.mean(axis=dims.index("seed"))
        dims.remove("seed")
        if frac is not None and "seed" in frac_dims:
            frac = frac.mean(axis=frac_dims.index("seed"))
            frac_dims.remove("seed")
    arr = np.moveaxis(arr, dims.index("step"), -1)
    dims.remove("step")
    other = [d for d in dims if d != "component"]
    if "component" in dims:
        raise ValueError(
            f"{var!r} has a component axis; pick a component first (isel(component=i))"
        )
    if frac is not None:
        frac = np.transpose(frac, [frac_dims.index(d) for d in other])
    steps = results.coords["step"]
    coords = [np.asarray(results.coords[d]) for d in other]

    if facet is not None and facet not in other:
        raise ValueError(f"facet {facet!r} is not a grid axis of {var!r}; axes: {other}")
    if facet is None and len(other) >= 2:
        facet = other[0]
    curve_dims = [d for d in other if d != facet]
    notes = []
    if facet is not None:
        fpos = other.index(facet)
        arr = np.moveaxis(arr, fpos, 0)
        frac = None if frac is None else np.moveaxis(frac, fpos, 0)
        fvals = coords[fpos]
        panels = evenly_spaced(fvals.size, max_panels)
        if panels.size < fvals.size:
            left = [f"{v:g}" for j, v in enumerate(fvals) if j not in set(panels)]
            notes.append(
                f"Panels shown for {panels.size} of {fvals.size} values of {facet}; "
                f"not shown: {facet} = {', '.join(left)} (raise max_panels to see them)."
            )
    else:
        arr, frac = arr[None], None if frac is None else np.asarray(frac)[None]
        fvals, panels = np.array([np.nan]), np.array([0])
    ccoords = [np.asarray(results.coords[d]) for d in curve_dims]
    combos = list(np.ndindex(*(c.size for c in ccoords)))
    arr = arr.reshape(arr.shape[0], len(combos), steps.size)
    if frac is not None:
        frac = np.asarray(frac).reshape(frac.shape[0], len(combos))
    pick = evenly_spaced(len(combos), max_curves)
    if pick.size < len(combos):
        left = [
            _label(curve_dims, ccoords, combos[j]) for j in range(len(combos)) if j not in set(pick)
        ]
        notes.append(
            f"Curves shown for {pick.size} of {len(combos)} grid points per panel; not shown: "
            f"{'; '.join(left)} (raise max_curves to see them)."
        )

    n = len(panels)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.3 * ncols + 0.5, 3.4 * nrows + 0.4), sharey=True, squeeze=False
    )
    colors = distinct_colors(pick.size)
    styles = [
        _STYLES[k % len(_STYLES)] if pick.size > len(_QUALITATIVE) else "-"
        for k in range(pick.size)
    ]
    diverged_notes = []
    handles = []
    for p, (pi, ax) in enumerate(zip(panels, axes.flat)):
        for k, j in enumerate(pick):
            label = _label(curve_dims, ccoords, combos[j])
            short = _label(curve_dims, ccoords, combos[j], short=True) or var
            (line,) = ax.plot(steps, arr[pi, j], color=colors[k], ls=styles[k], lw=1.4, label=short)
            if p == 0:
                handles.append(line)
            if frac is not None and frac[pi, j] > 0:
                ax.plot(steps[-1:], arr[pi, j, -1:], "x", color=colors[k], ms=7, mew=1.8)
                where = [f"{facet}={fvals[pi]:g}"] if facet is not None else []
                where += [label] if curve_dims else []
                diverged_notes.append(f"{', '.join(where) or 'all'}: {frac[pi, j]:.0%}")
        if facet is not None:
            ax.set_title(f"{facet} = {fvals[pi]:g}", fontsize=9)
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.set_xlabel("step")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"mean {var} over seeds")
    if diverged_notes:
        shown = diverged_notes[:8] + (
            [f"and {len(diverged_notes) - 8} more"] if len(diverged_notes) > 8 else []
        )
        notes.append(
            "Diverged trajectories (x; counted as failed, error = worst value): "
            + "; ".join(shown)
            + "."
        )
    fig.suptitle(title or f"mean {var} over seeds", fontsize=10)
    if curve_dims or facet is None:
        fig.legend(
            handles,
            [h.get_label() for h in handles],
            loc="upper left",
            bbox_to_anchor=(1.0, 0.93),
            fontsize=8,
            frameon=False,
            title=", ".join(curve_dims) or None,
            title_fontsize=8,
        )
    fig.tight_layout()
    for ax in axes.flat[:n]:
        tidy_log_axis(ax.yaxis)
    if notes:
        text = "\n".join(textwrap.fill(t, 40 + 60 * ncols) for t in notes)
        fig.text(0.01, 0.0, text, ha="left", va="top", fontsize=7)
    return fig


def stationary_vs_theory(
    momenta: np.ndarray,
    lrs: np.ndarray,
    simulated: np.ndarray,
    stderr: np.ndarray,
    theory_err: np.ndarray,
    tolerance: float = 0.10,
    shared_streams: bool = True,
) -> Any:
    """Stationary sin² error against μ, simulated (±2 SE) and from the SDE, per step size.

    Args:
      momenta: (M,) momenta; lrs: (L,) step sizes; simulated, stderr, theory_err: (M, L).
      tolerance: the relative acceptance band, drawn in the ratio panel only
        where it fits the data's range (the panel is scaled to the data).
      shared_streams: say on the figure that the points share their seeds'
        data streams, so their deviations are correlated (error bars are per point).
    """
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = distinct_colors(len(lrs))
    ratio = simulated / theory_err
    err = 2 * stderr / theory_err
    for j, (lr, col) in enumerate(zip(lrs, colors)):
        ax.errorbar(
            momenta,
            simulated[:, j],
            yerr=2 * stderr[:, j],
            fmt="o",
            color=col,
            capsize=3,
            label=f"simulated, η={lr:g}",
        )
        ax.plot(momenta, theory_err[:, j], "--", color=col, label=f"SDE theory, η={lr:g}")
        ax2.errorbar(
            momenta + (j - (len(lrs) - 1) / 2) * 0.006,
            ratio[:, j],
            yerr=err[:, j],
            fmt="o-",
            color=col,
            capsize=3,
            label=f"η={lr:g}",
        )
    ax.set_yscale("log")
    ax.set_xlabel(r"momentum $\mu$")
    ax.set_ylabel(r"stationary $E[\sin^2\angle(v, q_1)]$")
    ax.set_title(
        r"near the optimum: $\eta\sum_i \alpha_{i1}^2 / (2(1-\mu)(\lambda_1-\lambda_i))$",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    tidy_log_axis(ax.yaxis)
    top = float(np.nanmax(ratio + err))
    bottom = float(np.nanmin(ratio - err))
    pad = 0.25 * max(top - bottom, 0.01)
    lo, hi = min(bottom, 1.0) - pad, max(top, 1.0) + pad
    ax2.axhline(1.0, color="k", lw=0.8, label="theory")
    for sign in (-1, 1):
        level = 1 + sign * tolerance
        if lo < level < hi:
            ax2.axhline(level, color="gray", ls=":", lw=1)
    ax2.set_ylim(lo, hi)
    ax2.set_xlabel(r"momentum $\mu$")
    ax2.set_ylabel("simulated / theory (±2 SE)")
    shown = (
        ""
        if lo < 1 - tolerance or hi > 1 + tolerance
        else f"; the ±{tolerance:.0%} acceptance band lies outside"
    )
    ax2.set_title(f"ratio to the SDE (view scaled to the data{shown})", fontsize=9)
    if shared_streams:
        ax2.text(
            0.01,
            0.01,
            "all points share their data streams (common random numbers),\n"
            "so their deviations from 1 are correlated",
            transform=ax2.transAxes,
            fontsize=7,
            ha="left",
            va="bottom",
            color="0.3",
        )
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

    Each μ has its own colour; its ODE is the dashed line of the same colour.
    """
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.4))
    colors = distinct_colors(len(curves))
    for (mu, lag_t, aligned, ode, t, raw), col in zip(curves, colors):
        ax.plot(t, raw, color=col, label=rf"$\mu={mu:g}$")
        ax2.plot(lag_t, aligned, color=col, lw=2.4, alpha=0.55, label=rf"simulated, $\mu={mu:g}$")
        ax2.plot(lag_t, ode, color=col, ls="--", lw=1.3, label=rf"ODE, $\mu={mu:g}$")
    for a in (ax, ax2):
        a.set_yscale("log")
        a.set_ylabel(r"mean $\sin^2\angle(v, q_1)$")
        a.grid(alpha=0.3, which="both")
    ax.set_xlabel(r"ODE time $t = k\eta$")
    ax.set_title("mean over seeds from the saddle (escape times vary)", fontsize=10)
    ax.legend(fontsize=8)
    ax2.set_xlabel(rf"$t - t_{{\rm cross}}$ (each run aligned where $\sin^2 = {level:g}$)")
    ax2.set_title(
        "aligned at the escape (solid) against the ODE of Theorem 3 (dashed)", fontsize=10
    )
    ax2.legend(fontsize=7, ncol=2, loc="upper right")
    floor = min(np.nanmin(c[2]) for c in curves)
    ax2.set_ylim(
        0.3 * floor, 1.5
    )  # the ODE itself decays to 0; the runs settle at their noise floor
    fig.tight_layout()
    tidy_log_axis(ax.yaxis)
    tidy_log_axis(ax2.yaxis)
    return fig
