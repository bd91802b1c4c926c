"""Turning trajectories into curves, bands and threshold delays.

Functions take NumPy arrays (or :class:`~asyncjax.results.Results`) and never
run a simulation. Diverged trajectories are frozen, finite states, so they
enter every statistic with the error they had when they were frozen; use
:func:`diverged_fraction` to report how many there were.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from asyncjax.results import Results

__all__ = [
    "Band",
    "band",
    "late_average",
    "at_step",
    "diverged_fraction",
    "threshold_from_curve",
    "Thresholds",
    "threshold_delays",
    "THRESHOLD_RULE",
]


class Band(NamedTuple):
    """Mean over seeds with its standard error and a quantile band."""

    mean: np.ndarray
    stderr: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def band(values: np.ndarray, axis: int = -1, quantiles: tuple[float, float] = (0.1, 0.9)) -> Band:
    """Mean, standard error and a (lo, hi) quantile band along ``axis`` (the seeds)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    stderr = values.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    lo, hi = np.quantile(values, quantiles, axis=axis)
    return Band(mean, stderr, lo, hi)


def late_average(results: Results, var: str = "error", window: float = 0.25) -> np.ndarray:
    """Per-trajectory average of ``var`` over the last ``window`` fraction of the run.

    Averaging a stretch of late records instead of reading the last one lowers
    the noise of each trajectory's error without changing what it measures
    once the run has settled. Returns the array without its ``step`` axis.
    """
    if not 0 < window <= 1:
        raise ValueError(f"window must be in (0, 1], got {window!r}")
    axis = results.axis(var, "step")
    steps = results.coords["step"]
    start = steps[-1] - window * steps[-1]
    keep = steps >= start
    return np.take(results[var], np.flatnonzero(keep), axis=axis).mean(axis=axis)


def at_step(results: Results, step: int, var: str = "error") -> np.ndarray:
    """``var`` at the recorded step nearest to ``step`` (the ``step`` axis dropped)."""
    steps = results.coords["step"]
    i = int(np.argmin(np.abs(steps - step)))
    return np.take(results[var], i, axis=results.axis(var, "step"))


def diverged_fraction(results: Results, over: str = "seed") -> np.ndarray:
    """Fraction of trajectories flagged as diverged, along axis ``over``."""
    flags = results["diverged_at"] >= 0
    return flags.mean(axis=results.axis("diverged_at", over))


THRESHOLD_RULE = (
    "Each trajectory's sin² error is averaged over the last {window:.0%} of its recorded steps; "
    "the curve is the mean of that over seeds, against the delay. The threshold delay is where "
    "the curve first exceeds {factor:g}× its value at the smallest delay, interpolated linearly in "
    "log(error) between the two grid delays that bracket the crossing. If it never does, the "
    "threshold is censored at the largest delay. CI: percentile bootstrap over seeds "
    "({n_boot} resamples; a seed's whole curve is resampled together)."
)


def threshold_from_curve(delays: Any, curve: Any, factor: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Threshold delay of error curves, under the rule of :data:`THRESHOLD_RULE`.

    Args:
      delays: (T,) increasing delays.
      curve: (..., T) positive mean errors against the delays.
      factor: the rise over the smallest-delay error that marks the threshold.

    Returns:
      ``(threshold, censored)``, each of shape (...): the interpolated delay,
      and True where the curve never crossed (threshold = the largest delay).
    """
    delays = np.asarray(delays, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    if delays.ndim != 1 or delays.size < 2 or np.any(np.diff(delays) <= 0):
        raise ValueError(f"delays must be an increasing 1-D list of at least 2, got {delays}")
    if curve.shape[-1] != delays.size:
        raise ValueError(f"curve has {curve.shape[-1]} points along its last axis, delays {delays.size}")
    if factor <= 1:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    log_c = np.log(np.maximum(curve, 1e-300))
    level = log_c[..., :1] + np.log(factor)
    above = log_c > level
    crossed = above.any(axis=-1)
    j = np.where(crossed, np.argmax(above, axis=-1), delays.size - 1)  # first point above
    j = np.maximum(j, 1)
    y0 = np.take_along_axis(log_c, (j - 1)[..., None], -1)[..., 0]
    y1 = np.take_along_axis(log_c, j[..., None], -1)[..., 0]
    lv = level[..., 0]
    frac = np.clip((lv - y0) / np.where(y1 > y0, y1 - y0, 1.0), 0.0, 1.0)
    thr = delays[j - 1] + frac * (delays[j] - delays[j - 1])
    return np.where(crossed, thr, delays[-1]), ~crossed


class Thresholds(NamedTuple):
    """Threshold delays per curve, with percentile-bootstrap intervals."""

    threshold: np.ndarray  # (...,)
    ci_lo: np.ndarray  # (...,)
    ci_hi: np.ndarray  # (...,)
    censored: np.ndarray  # (...,) bool
    rule: str


def threshold_delays(
    per_seed: np.ndarray,
    delays: Any,
    *,
    factor: float = 2.0,
    n_boot: int = 1000,
    level: float = 0.95,
    window: float = 0.25,
    seed: int = 0,
) -> Thresholds:
    """Measured threshold delays with bootstrap confidence intervals over seeds.

    Args:
      per_seed: (..., T, S) per-trajectory error (e.g. from :func:`late_average`),
        delays on the second-to-last axis and seeds on the last.
      delays: (T,) the delays.
      factor: see :func:`threshold_from_curve`.
      n_boot: bootstrap resamples.
      level: confidence level of the interval.
      window: the late-average window used to make ``per_seed`` (for the rule text).
      seed: seed of the resampling.

    Returns:
      :class:`Thresholds` with shape (...).
    """
    per_seed = np.asarray(per_seed, dtype=np.float64)
    n_seeds = per_seed.shape[-1]
    thr, censored = threshold_from_curve(delays, per_seed.mean(axis=-1), factor)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    weights = np.stack([np.bincount(row, minlength=n_seeds) for row in draws]) / n_seeds  # (B, S)
    boot_curves = per_seed @ weights.T  # (..., T, B)
    boot, _ = threshold_from_curve(delays, np.moveaxis(boot_curves, -1, 0), factor)  # (B, ...)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    rule = THRESHOLD_RULE.format(window=window, factor=factor, n_boot=n_boot)
    return Thresholds(thr, lo, hi, censored, rule)
