"""Shared pieces of the presets that tune momentum against the number of workers.

``mitliagkas2016`` and ``liu2018-dnn`` both run a (workers × momentum × seed)
sweep on the worker clock, read one number per trajectory (training loss or
held-out accuracy after the budget), pick the best momentum for every worker
count, and draw the same two panels: the metric against momentum (one curve
per worker count) and the best momentum against the worker count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from scipy import stats

from asyncjax import analysis
from asyncjax.plotting import distinct_colors, tidy_log_axis


class SeedStats(NamedTuple):
    """Mean over seeds with a Student-t interval, for every grid point."""

    mean: np.ndarray  # (...,) mean over seeds
    stderr: np.ndarray  # (...,) standard error of the mean
    ci: np.ndarray  # (..., 2) [lo, hi]
    diverged: np.ndarray  # (...,) fraction of diverged seeds


def seed_stats(values: np.ndarray, diverged: np.ndarray, level: float = 0.95) -> SeedStats:
    """Mean, standard error and a t interval along the last axis (the seeds).

    Args:
      values: (..., S) one number per trajectory, diverged ones already counted
        as failed (an infinite loss gives an infinite mean and interval).
      diverged: (..., S) bool flags of the diverged trajectories.
      level: coverage of the interval.
    """
    b = analysis.band(values, axis=-1, diverged=diverged)
    n = values.shape[-1]
    half = stats.t.ppf(0.5 + level / 2, n - 1) * b.stderr
    with np.errstate(invalid="ignore"):
        ci = np.stack([b.mean - half, b.mean + half], axis=-1)
    ci = np.where(np.isfinite(b.mean)[..., None], ci, b.mean[..., None])
    return SeedStats(b.mean, b.stderr, ci, b.diverged)


def best_index(mean: np.ndarray, *, maximize: bool) -> np.ndarray:
    """Index of the best momentum in every row of ``mean`` (rows: worker counts, columns: momenta).

    A row with no finite value (every momentum diverged everywhere) gets -1.
    """
    mean = np.asarray(mean, float)
    score = np.where(np.isfinite(mean), -mean if maximize else mean, np.inf)
    idx = np.argmin(score, axis=-1)
    return np.where(np.isfinite(score).any(axis=-1), idx, -1)


def best_of(momenta: np.ndarray, best: np.ndarray) -> np.ndarray:
    """The momenta at indices ``best`` (W,), NaN where there is none (-1)."""
    return np.where(best >= 0, momenta[np.maximum(best, 0)], np.nan)


def best_falls(best: np.ndarray) -> bool:
    """Whether the best momentum never rises from one worker count to the next and ends lower than it
    starts, over the worker counts where it is defined (a count where every momentum diverged has none)."""
    finite = np.asarray(best, float)[np.isfinite(best)]
    return bool(finite.size > 1 and np.all(np.diff(finite) <= 0) and finite[-1] < finite[0])


def paired_margin(
    values: np.ndarray, best: np.ndarray, *, maximize: bool, level: float = 0.95
) -> np.ndarray:
    """How far the best momentum beats the runner-up, paired over seeds.

    Grid points that share a seed share its data and clock streams (common
    random numbers), so the per-seed difference is much less noisy than two
    separate means.

    Args:
      values: (W, K, S) one number per trajectory.
      best: (W,) index of the best momentum per row (-1: none).
      maximize: whether larger is better.
      level: coverage of the interval.

    Returns:
      (W, 3): [margin, lo, hi] of best − runner-up (maximize) or runner-up − best
      (minimize), so a positive margin always favours the best; NaN where a row
      has no runner-up with a finite mean.
    """
    out = np.full((values.shape[0], 3), np.nan)
    means = values.mean(axis=-1)
    for w, b in enumerate(best):
        others = [k for k in range(values.shape[1]) if k != b and np.isfinite(means[w, k])]
        if b < 0 or not others:
            continue
        runner = (
            max(others, key=lambda k: means[w, k])
            if maximize
            else min(others, key=lambda k: means[w, k])
        )
        diff = values[w, b] - values[w, runner] if maximize else values[w, runner] - values[w, b]
        half = stats.t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size)
        out[w] = [diff.mean(), diff.mean() - half, diff.mean() + half]
    return out


def workers_axis(ax: Any, workers: Sequence[float]) -> None:
    """A log2 x axis labelled "workers M" with a tick at every worker count of the run."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator([float(w) for w in workers]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("workers M")


def draw_tuning(
    workers: np.ndarray,
    momenta: np.ndarray,
    st: SeedStats,
    best: np.ndarray,
    *,
    ylabel: str,
    log: bool,
    title: str,
    reference: dict[float, float] | None = None,
    reference_label: str = "",
    extra_lines: Sequence[tuple[np.ndarray, str]] = (),
) -> Any:
    """Two panels: the metric against momentum (one curve per M), and the best momentum against M.

    Args:
      workers: (W,) worker counts.
      momenta: (K,) momentum grid.
      st: `SeedStats` of (W, K) points.
      best: (W,) index of the best momentum (-1: none).
      ylabel: what the metric is.
      log: log-scaled metric axis.
      title: the left panel's title.
      reference: {M: momentum} points to set beside the measured ones (e.g. a paper's).
      reference_label: their legend entry.
      extra_lines: (values (W,), label) curves for the right panel (e.g. a rule of thumb).
    """
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.6), gridspec_kw={"width_ratios": [1.6, 1]})
    for i, (m, col) in enumerate(zip(workers, distinct_colors(len(workers)))):
        finite = np.isfinite(st.mean[i])
        with np.errstate(invalid="ignore"):  # inf − inf where every seed diverged (not drawn)
            err = np.abs(st.ci[i] - st.mean[i][:, None]).T
        ax.errorbar(
            momenta[finite],
            st.mean[i][finite],
            yerr=err[:, finite],
            fmt="-o",
            ms=3,
            color=col,
            capsize=2,
            lw=1.2,
            label=f"M = {m:g}",
        )
        if best[i] >= 0:
            ax.plot(
                [momenta[best[i]]],
                [st.mean[i][best[i]]],
                "*",
                ms=13,
                color=col,
                mec="k",
                mew=0.8,
                zorder=5,
            )
    ax.set_xlabel(r"algorithmic momentum $\mu$")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
        tidy_log_axis(ax.yaxis)
    ax.grid(alpha=0.3, which="both")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], marker="*", ms=11, color="gray", mec="k", ls=""))
    labels.append("best μ (bars: 95% CI over seeds)")
    ax.legend(handles, labels, fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    _mark_diverged(ax, workers, momenta, st)

    ok = best >= 0
    ax2.plot(workers[ok], momenta[best[ok]], "o-", color="k", ms=7, label="measured best μ")
    for values, label in extra_lines:
        ax2.plot(workers, values, "--", lw=1.2, label=label)
    if reference:
        ax2.plot(
            list(reference),
            list(reference.values()),
            "s",
            ms=10,
            mfc="none",
            mec="tab:red",
            mew=2,
            label=reference_label,
        )
    ax2.axhline(0.0, color="gray", lw=0.8)
    workers_axis(ax2, workers)
    ax2.set_ylabel(r"best algorithmic momentum $\mu$")
    ax2.set_ylim(
        min([momenta.min(), *(np.nanmin(v) for v, _ in extra_lines)]) - 0.1, momenta.max() + 0.1
    )
    ax2.set_title("best momentum against the number of workers", fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def _mark_diverged(ax: Any, workers: np.ndarray, momenta: np.ndarray, st: SeedStats) -> None:
    """Names, inside the left panel, the points where seeds diverged (counted as failed, so off the curve)."""
    rows, cols = np.nonzero(st.diverged > 0)
    if rows.size:
        shown = "; ".join(
            f"M={workers[r]:g}, μ={momenta[c]:g}: {st.diverged[r, c]:.0%}"
            for r, c in zip(rows, cols)
        )
        ax.text(
            0.01,
            0.99,
            "seeds diverged (counted as failed): " + shown,
            transform=ax.transAxes,
            fontsize=6.5,
            va="top",
            ha="left",
            wrap=True,
        )
