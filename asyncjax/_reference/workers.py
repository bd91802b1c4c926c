"""The worker heap: a NumPy event simulation of M asynchronous workers (a test oracle).

Independent of the engine's clock (`asyncjax.delays.workers`), which the
tests compare against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asyncjax._validate import as_float_array


def simulate_worker_staleness(
    workers: int,
    updates: int,
    *,
    compute: str = "exponential",
    speeds: Any = None,
    seed: int = 0,
    shape: float = 1.0,
    straggler: float = 1.0,
    return_time: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Staleness that emerges from M asynchronous workers on a virtual clock (NumPy reference).

    A plain event simulation with a heap, independent of the engine's clock:
    each worker reads the current parameters, computes for a random time, then
    applies its update; the staleness of an applied update is the number of
    updates applied since its worker read. With exponential times every applied
    update comes from a uniformly random worker and the staleness is geometric,
    P(τ = l) = (1/M)(1 − 1/M)^l (Mitliagkas et al. 2016); with equal constant
    times it is M − 1 (round robin).

    Args:
      workers: M ≥ 1.
      updates: number of applied updates to record.
      compute: ``"exponential"``, ``"constant"``, ``"lognormal"`` (σ = ``shape``)
        or ``"gamma"`` (k = ``shape``) compute times, each of mean 1.
      speeds: (M,) relative speeds (default all 1): worker i's times are divided by speeds[i].
      seed: NumPy seed.
      shape: σ of the lognormal, k of the gamma law.
      straggler: worker 0 is this many times slower.
      return_time: also return the time of each applied update.

    Returns:
      (updates,) int array of staleness values, in order of application, and
      with ``return_time`` the (updates,) float64 times of those updates.
    """
    import heapq

    if workers < 1 or updates < 1:
        raise ValueError(f"need workers >= 1 and updates >= 1, got {workers}, {updates}")
    rng = np.random.default_rng(seed)
    speed = np.ones(workers) if speeds is None else as_float_array("speeds", speeds, ndim=1).copy()
    if speed.shape != (workers,) or np.any(speed <= 0):
        raise ValueError(f"speeds must be {workers} positive numbers, got {speeds!r}")
    if straggler <= 0:
        raise ValueError(f"straggler must be > 0, got {straggler!r}")
    speed[0] /= straggler

    def duration(i: int) -> float:
        if compute == "exponential":
            t = rng.exponential()
        elif compute == "constant":
            t = 1.0
        elif compute == "lognormal":
            t = rng.lognormal(-0.5 * shape**2, shape)
        elif compute == "gamma":
            t = rng.gamma(shape, 1.0 / shape)
        else:
            raise ValueError(f"unknown compute-time law {compute!r}")
        return t / speed[i]

    # Break ties between equal finishing times by worker index (round robin).
    events = [(duration(i), i, 0) for i in range(workers)]  # (finish time, worker, version read)
    heapq.heapify(events)
    version = 0
    out = np.empty(updates, dtype=np.int64)
    times = np.empty(updates, dtype=np.float64)
    for n in range(updates):
        t, i, read = heapq.heappop(events)
        out[n] = version - read
        times[n] = t
        version += 1
        heapq.heappush(events, (t + duration(i), i, version))
    return (out, times) if return_time else out
