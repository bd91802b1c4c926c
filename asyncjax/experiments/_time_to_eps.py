"""What the server presets share: time to an ε-stationary point, tuned over a grid, with intervals.

``tyurin2023-time`` and ``ringmaster-momentum`` both ask when the seed-mean
‖∇f‖² of a server sweep on a quadratic first falls to ε, in wall-clock time,
with the step (and B, R or c) picked as the best of a grid inside the sweep.
`tuned_time` answers that from the saved results; `null_if_never` writes
"never" as JSON null.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from asyncjax.analysis import bootstrap_weights, laid_out
from asyncjax.results import Results

RULE = (
    "time to eps: the virtual wall-clock time of the first record at which the seed mean of "
    "||grad f||^2 (the exact gradient, squared) is <= eps; null where no record reaches it. "
    "Tuned: the smallest such time over the grid's step (and B, R or c) values; its 95% "
    "interval re-tunes in every seed-bootstrap resample (the same resamples for every "
    "point and every sweep of the preset, so ratios are paired)."
)


def with_grad_sq(res: Results) -> Results:
    """``res`` with ``grad_sq`` = ``grad_norm``² (float64) when it records only the norm."""
    if "grad_sq" in res:
        return res
    if "grad_norm" not in res:
        raise ValueError("time to eps needs a problem that records grad_norm or grad_sq")
    sq = np.asarray(res["grad_norm"], np.float64) ** 2
    return Results(
        {**res.data, "grad_sq": sq},
        {**res.dims, "grad_sq": res.dims["grad_norm"]},
        res.coords,
        res.attrs,
    )


class Tuned(NamedTuple):
    """Time to ε per kept grid point, tuned over the other axes (inf: never reached)."""

    dims: tuple[str, ...]  # the kept axes, e.g. ("workers",)
    time: np.ndarray  # (*kept) the best seed-mean time to ε over the tuned axes
    ci: np.ndarray  # (*kept, 2) 95% percentile interval, re-tuned per bootstrap resample
    boot: np.ndarray  # (B, *kept) bootstrap replicates of ``time``
    best: dict[str, np.ndarray]  # tuned axis -> (*kept) its value at the best point
    tuned_axes: tuple[str, ...]  # the axes minimised over
    table: np.ndarray  # (*kept, *tuned) time to ε of every grid point
    updates: np.ndarray  # (*kept) applied updates at the best point's first record <= ε (-1: never)
    events: np.ndarray  # (*kept) events (engine steps) at that record (-1: never)


def first_crossings(
    sq: np.ndarray, wall: np.ndarray, eps: float, weights: np.ndarray, *, budget: float = 2e8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time of the first record at which the seed-mean ``sq`` is <= ``eps``, and its resamples.

    The rule of `asyncjax.wallclock.time_to_target`, computed a block of points at a
    time so that the resampled curves never take more than ``budget`` bytes.

    Args:
      sq: (S, P, R) the metric per seed, point and record.
      wall: (S, P, R) or (1, P, R) wall time at each record (seed-independent clocks: 1).
      eps: the target.
      weights: (B, S) bootstrap weights (`asyncjax.analysis.bootstrap_weights`).

    Returns:
      ``(time, boot, index)``: (P,) the seed-mean time (inf: never), (B, P) its
      resamples, (P,) the record index of the crossing (-1: never).
    """
    n_s, n_p, n_r = sq.shape
    n_b = weights.shape[0]
    block = max(1, int(budget // (8 * n_b * n_r)))

    def first(curves: np.ndarray, walls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        below = curves <= eps
        r = np.argmax(below, axis=-1)
        w = np.take_along_axis(walls, r[..., None], -1)[..., 0]
        hit = below.any(axis=-1)
        return np.where(hit, w, np.inf), np.where(hit, r, -1)

    time, index = np.empty(n_p), np.empty(n_p, np.int64)
    boot = np.empty((n_b, n_p))
    for p0 in range(0, n_p, block):
        p1 = min(n_p, p0 + block)
        e, w = sq[:, p0:p1], wall[:, p0:p1]
        time[p0:p1], index[p0:p1] = first(
            e.mean(axis=0), np.broadcast_to(w.mean(axis=0), e.shape[1:])
        )
        be = np.tensordot(weights, e, axes=(1, 0))  # (B, block, R)
        bw = w.mean(axis=0)[None] if w.shape[0] == 1 else np.tensordot(weights, w, axes=(1, 0))
        boot[:, p0:p1] = first(be, np.broadcast_to(bw, be.shape))[0]
    return time, boot, index


def tuned_time(
    res: Results, eps: float, keep: Sequence[str], *, n_boot: int = 1000, seed: int = 0
) -> Tuned:
    """The time to ε of every point of a server sweep, and its best over the axes not in ``keep``.

    Args:
      res: a sweep with a server (it records ``wall_time`` and ``updates``) on a
        problem recording ``grad_norm`` or ``grad_sq``.
      eps: the target of the seed-mean ‖∇f‖².
      keep: the grid axes kept (e.g. ``("workers",)``); the others (but ``seed``)
        are tuned over.
      n_boot: seed-bootstrap resamples (`asyncjax.analysis.bootstrap_weights`
        with ``seed``: every call with the same seed count resamples alike).
      seed: the resampling's seed.
    """
    res = with_grad_sq(res)
    grid_axes = [d for d in res.dims["grad_sq"] if d not in ("seed", "step")]
    missing = [d for d in keep if d not in grid_axes]
    if missing:
        raise ValueError(f"the sweep has no axis {missing[0]!r}; its axes: {grid_axes}")
    tuned_axes = tuple(d for d in grid_axes if d not in keep)
    dims = ("seed", *keep, *tuned_axes, "step")
    sq = laid_out(res, "grad_sq", dims)
    shape = sq.shape[1:-1]
    wall = laid_out(res, "wall_time", dims).astype(np.float64)
    if np.all(wall == wall[:1]):  # a shared clock: every seed has the same times
        wall = wall[:1]
    wall = np.broadcast_to(wall, (wall.shape[0],) + sq.shape[1:])
    n_s, n_r = sq.shape[0], sq.shape[-1]
    weights = bootstrap_weights(n_s, n_boot, seed)
    flat_t, flat_b, flat_i = first_crossings(
        sq.reshape(n_s, -1, n_r), wall.reshape(wall.shape[0], -1, n_r), eps, weights
    )
    table = flat_t.reshape(shape)
    boot = flat_b.reshape((n_boot,) + shape)
    kept_shape = shape[: len(keep)]
    flat = table.reshape(kept_shape + (-1,))
    idx = np.argmin(flat, axis=-1)
    boot_best = boot.reshape((n_boot,) + kept_shape + (-1,)).min(axis=-1)
    lo = np.quantile(boot_best, 0.025, axis=0, method="lower")
    hi = np.quantile(boot_best, 0.975, axis=0, method="higher")
    tuned_shape = shape[len(keep) :]
    where = np.unravel_index(idx, tuned_shape) if tuned_shape else ()
    best = {d: res.coords[d][w] for d, w in zip(tuned_axes, where)}
    upd = np.broadcast_to(laid_out(res, "updates", dims).mean(axis=0), shape + (n_r,))
    upd = upd.reshape(kept_shape + (-1, n_r))
    rec = flat_i.reshape(kept_shape + (-1,))
    pick = lambda a: np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]  # noqa: E731
    r_best = pick(rec)
    at = np.take_along_axis(upd, idx[..., None, None], axis=-2)[..., 0, :]
    updates = np.where(
        r_best >= 0, np.take_along_axis(at, np.maximum(r_best, 0)[..., None], -1)[..., 0], -1.0
    )
    return Tuned(
        tuple(keep),
        np.min(flat, axis=-1),
        np.stack([lo, hi], axis=-1),
        boot_best,
        best,
        tuned_axes,
        table,
        updates,
        np.where(r_best >= 0, res.coords["step"][np.maximum(r_best, 0)], -1),
    )


def null_if_never(a: Any) -> Any:
    """Times with inf (never reached) as NaN, which the summary writes as null."""
    a = np.asarray(a, np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def interval(time: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """``ci`` with both ends NaN (null) where ``time`` is never reached; an open upper end stays inf."""
    ci = np.asarray(ci, np.float64).copy()
    ci[~np.isfinite(np.asarray(time))] = np.nan
    return ci
