"""Wall-clock analysis of worker-model sweeps: time to a target, speedup against workers, staleness.

A sweep with ``delay_model="workers"`` records, beside every metric, the
virtual time of each record (``wall_time``, axes (workers, seed, step)) and a
staleness summary per (workers, seed). These functions turn them into the
numbers a user of a cluster asks for:

* `time_to_target`: the first record at which the seed-mean error is at
  or below a target, in steps and in wall-clock time, with percentile
  bootstrap intervals over seeds;
* `speedup`: T(M_ref)/T(M) in wall-clock time against the number of
  workers (linear speedup is M/M_ref), with paired bootstrap intervals (every
  worker count shares the resampled seeds, as it shares their streams);
* `staleness_pmf`: the staleness histogram per worker count.

Like `asyncjax.analysis` they take `Results`
and never simulate. Diverged trajectories are frozen and enter the seed mean
with the error they were frozen at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from asyncjax.analysis import bootstrap_weights, laid_out
from asyncjax.results import Results

__all__ = [
    "TimeToTarget",
    "time_to_target",
    "Speedup",
    "speedup",
    "speedup_summary",
    "staleness_pmf",
    "default_target",
]


def _interval(boot: np.ndarray, level: float) -> np.ndarray:
    """Percentile interval over the replicates (axis 0), as (..., 2) of actual replicate values,
    so that ∞ (never reached) stays ∞."""
    alpha = (1 - level) / 2
    lo = np.quantile(boot, alpha, axis=0, method="lower")
    hi = np.quantile(boot, 1 - alpha, axis=0, method="higher")
    return np.stack([lo, hi], axis=-1)


class TimeToTarget(NamedTuple):
    """First record at which the seed-mean error reaches a target, per grid point.

    Arrays have the axes ``dims`` (the grid's, without ``seed``); NaN where the
    target is never reached.
    """

    dims: tuple[str, ...]
    steps: np.ndarray  # (...) recorded step
    steps_ci: np.ndarray  # (..., 2)
    wall: np.ndarray  # (...) seed-mean virtual time at that record
    wall_ci: np.ndarray  # (..., 2)
    reached: np.ndarray  # (...) bool
    target: float
    boot_wall: np.ndarray  # (B, ...) bootstrap replicates of ``wall`` (inf: not reached)
    boot_steps: np.ndarray  # (B, ...)


def time_to_target(
    results: Results,
    target: float,
    *,
    var: str = "error",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> TimeToTarget:
    """Steps and wall-clock time until the seed-mean ``var`` first falls to ``target``.

    Args:
      results: a worker-model sweep (it has ``wall_time``).
      target: the level to reach from above.
      var: the metric (axes: grid axes and ``step``).
      n_boot: bootstrap resamples of the seeds (the same resamples for every point).
      level: confidence level of the percentile intervals.
      seed: seed of the resampling.

    Returns:
      `TimeToTarget`. The time at a record is the mean over seeds of
      their virtual times there (each seed's clock differs under random compute
      times); the steps are exact record steps (no interpolation).
    """
    if "wall_time" not in results:
        raise ValueError(
            "time_to_target needs a sweep with delay_model='workers' (it records wall_time)"
        )
    if not np.isfinite(target):
        raise ValueError(f"target must be a finite number, got {target!r}")
    dims = results.dims[var]
    if "seed" not in dims:
        raise ValueError(f"{var} has no seed axis; time_to_target averages over seeds")
    order = ("seed",) + tuple(d for d in dims if d not in ("seed", "step")) + ("step",)
    err = laid_out(results, var, order).astype(np.float64)  # (S, *P, R)
    wall = laid_out(
        results, "wall_time", order
    )  # (S, ..., R): size 1 along the points' non-worker axes
    steps = results.coords["step"].astype(np.float64)
    n_seeds = err.shape[0]
    grid = err.shape[1:]

    def first(curves: np.ndarray, walls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        below = curves <= target
        hit = below.any(axis=-1)
        r = np.argmax(below, axis=-1)
        w = np.take_along_axis(walls, r[..., None], -1)[..., 0]
        return np.where(hit, steps[r], np.inf), np.where(hit, w, np.inf)

    # wall times depend only on (workers, seed): average them before broadcasting to the grid
    s_hat, w_hat = first(err.mean(axis=0), np.broadcast_to(wall.mean(axis=0), grid))
    weights = bootstrap_weights(n_seeds, n_boot, seed)  # (B, S)
    boot_e = (weights @ err.reshape(n_seeds, -1)).reshape((n_boot,) + grid)
    boot_w = (weights @ wall.reshape(n_seeds, -1)).reshape((n_boot,) + wall.shape[1:])
    bs, bw = first(boot_e, np.broadcast_to(boot_w, (n_boot,) + grid))
    interval = lambda b: _interval(b, level)  # noqa: E731
    reached = np.isfinite(s_hat)
    nan_if = lambda a: np.where(np.isfinite(a), a, np.nan)  # noqa: E731
    return TimeToTarget(
        order[1:-1],
        nan_if(s_hat),
        nan_if(interval(bs)),
        nan_if(w_hat),
        nan_if(interval(bw)),
        reached,
        float(target),
        bw,
        bs,
    )


class Speedup(NamedTuple):
    """Wall-clock speedup T(M_ref)/T(M) against the worker count M (last axis of the arrays)."""

    workers: np.ndarray  # (W,)
    speedup: np.ndarray  # (..., W); NaN where M or M_ref never reaches the target
    ci: np.ndarray  # (..., W, 2)
    time: np.ndarray  # (..., W) wall-clock time to the target
    reference: float  # M_ref; linear speedup is M / M_ref
    dims: tuple[str, ...]  # the axes before the last
    target: float


def speedup(
    results: Results,
    target: float,
    *,
    reference: float | None = None,
    var: str = "error",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Speedup:
    """Speedup in wall-clock time to reach ``target`` against the number of workers.

    Args:
      results: a worker-model sweep with a ``workers`` axis.
      target: the error level (see `time_to_target`).
      reference: M_ref (default the smallest M in the grid, ideally 1).
      n_boot, level, seed: the paired bootstrap over seeds.

    Returns:
      `Speedup` with the workers axis moved last.
    """
    if "workers" not in results.coords:
        raise ValueError("speedup needs a sweep with a workers axis")
    tt = time_to_target(results, target, var=var, n_boot=n_boot, level=level, seed=seed)
    ax = tt.dims.index("workers")
    ws = results.coords["workers"].astype(np.float64)
    ref = float(ws.min()) if reference is None else float(reference)
    hits = np.flatnonzero(np.isclose(ws, ref))
    if hits.size == 0:
        raise ValueError(f"reference={reference!r} is not among the workers {ws.tolist()}")
    i = int(hits[0])
    wall = np.moveaxis(tt.wall, ax, -1)
    boot = np.moveaxis(tt.boot_wall, ax + 1, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = wall[..., i : i + 1] / wall
        boot_ratio = boot[..., i : i + 1] / boot  # inf/inf (neither reached) is NaN
    boot_ratio = np.where(np.isnan(boot_ratio), 0.0, boot_ratio)
    ci = np.where(np.isfinite(ratio)[..., None], _interval(boot_ratio, level), np.nan)
    dims = tuple(d for d in tt.dims if d != "workers")
    return Speedup(ws, ratio, ci, wall, ref, dims, tt.target)


def staleness_pmf(results: Results) -> tuple[np.ndarray, np.ndarray]:
    """The staleness distribution per worker count, pooled over seeds.

    Returns:
      ``(workers, pmf)``: (W,) worker counts (one entry if M was fixed) and
      (W, bins) probabilities of τ = 0, 1, …; the last bin holds τ ≥ bins − 1.
    """
    if "staleness_hist" not in results:
        raise ValueError(
            "staleness_pmf needs the staleness histogram of a sweep on the worker clock without "
            "a server; with a server, asyncjax.servers.schedule gives one trajectory's staleness"
        )
    dims = results.dims["staleness_hist"]
    hist = laid_out(results, "staleness_hist", ("workers", "seed", "staleness")).astype(np.float64)
    counts = hist.sum(axis=1)  # (W, bins)
    ws = (
        results.coords["workers"]
        if "workers" in dims
        else np.atleast_1d(results.attrs.get("grid", {}).get("fixed", {}).get("workers", np.nan))
    )
    return np.asarray(ws, np.float64), counts / counts.sum(axis=-1, keepdims=True)


def default_target(results: Results, var: str = "error") -> float:
    """Halfway, on a log scale, between where the smallest worker count starts and where it ends.

    The geometric mean of the largest seed-mean ``var`` at the first record and
    the largest at the last, over the points of the smallest M whose seed mean
    descends (ends finite and below where it started; a point whose step size
    diverges would put the level above every start): a level on the descent,
    where the time to reach it is sharply defined (near the final noise floor
    the first crossing is noisy), and one every descending point reaches. NaN
    when no point descends.
    """
    dims = results.dims[var]
    arr = results[var]
    if "workers" in dims:
        i = int(np.argmin(results.coords["workers"]))
        arr = np.take(arr, [i], axis=dims.index("workers"))
    if "seed" in dims:
        arr = arr.mean(axis=dims.index("seed"))
    start, end = np.take(arr, 0, axis=-1), np.take(arr, -1, axis=-1)  # ``step`` is the last axis
    falls = np.isfinite(start) & np.isfinite(end) & (end < start)
    if not falls.any():
        return float("nan")
    return float(np.sqrt(np.max(start[falls]) * np.max(end[falls])))


def speedup_summary(sp: Speedup, coords: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-friendly table of a speedup.

    The flat keys hold the first point of any other axes (named in ``at`` when
    ``coords``, the results' coordinates, are given); ``all`` holds every point,
    its arrays shaped (*dims, workers).
    """
    first = (0,) * len(sp.dims)
    at = {d: np.asarray(coords[d])[0].item() for d in sp.dims} if coords is not None else {}
    return {
        "workers": sp.workers.tolist(),
        "reference": sp.reference,
        "target": sp.target,
        "at": at,
        "wall_time_to_target": sp.time[first].tolist(),
        "speedup": sp.speedup[first].tolist(),
        "speedup_ci": sp.ci[first].tolist(),
        "all": {
            "dims": [*sp.dims, "workers"],
            "wall_time_to_target": sp.time.tolist(),
            "speedup": sp.speedup.tolist(),
            "speedup_ci": sp.ci.tolist(),
        },
    }
