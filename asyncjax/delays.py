"""Delay (staleness) models: how many updates old the iterate is that a gradient reads.

A model has one swept parameter (a grid axis, traced) and maps a uniform random
number u ∈ [0, 1) to a staleness τ_k by inverse CDF. The uniform comes from the
trajectory's seed alone, so grid points that share a seed share their delay
sequence as well as their data (common random numbers).

========== ============ =====================================================
model      axis          staleness τ_k
========== ============ =====================================================
constant   ``delay``     τ (the paper's experiment)
uniform    ``max_delay`` uniform on {0, …, τ_max}
geometric  ``workers``   P(τ = l) = (1/M)(1 − 1/M)^l, the queuing model of
                         Mitliagkas et al. (2016) with M workers; mean M − 1
========== ============ =====================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax._validate import as_float_array, check_delay, py

__all__ = ["DelayModel", "get_delay_model", "DELAY_MODELS", "simulate_worker_staleness"]


@dataclass(frozen=True)
class DelayModel:
    """A staleness law with one swept parameter.

    Attributes:
      name: model name, e.g. ``"constant"``.
      axis: the grid axis that carries the parameter, e.g. ``"delay"``.
      random: whether τ_k is random (needs a uniform draw per step).
    """

    name: str
    axis: str
    random: bool

    def check(self, values: Any, buffer: int) -> np.ndarray:
        """Validates parameter values for a buffer of ``buffer`` iterates."""
        if self.name in ("constant", "uniform"):
            return check_delay(values, buffer=buffer, name=self.axis)
        workers = as_float_array(self.axis, values)
        bad = workers[workers < 1]
        if bad.size:
            raise ValueError(f"workers must be >= 1; got {py(bad.flat[0])!r}")
        bad = workers[workers != np.round(workers)]
        if bad.size:
            raise ValueError(f"workers must be a whole number of workers; got {py(bad.flat[0])!r}")
        return workers

    def buffer_for(self, values: Any, tail: float = 1e-6) -> int:
        """Smallest buffer that holds every delay (for random laws: all but a ``tail`` mass)."""
        top = float(np.max(self.check(values, buffer=2**31)))
        if self.name != "geometric":
            return int(top) + 1
        if top <= 1:
            return 1
        return int(math.ceil(math.log(tail) / math.log1p(-1.0 / top))) + 1

    def staleness(self, param: jax.Array, u: jax.Array | None, buffer: int) -> jax.Array:
        """τ_k as an int32, clipped to the buffer (pure; traced)."""
        if self.name == "constant":
            tau = param
        elif self.name == "uniform":
            tau = jnp.floor(u * (param + 1.0))
        else:  # geometric: inverse CDF of P(τ >= l) = (1 - 1/M)^l
            p_stay = 1.0 - 1.0 / param
            safe = jnp.where(p_stay > 0, p_stay, 0.5)
            tau = jnp.where(p_stay > 0, jnp.floor(jnp.log1p(-u) / jnp.log(safe)), 0.0)
        return jnp.clip(tau, 0, buffer - 1).astype(jnp.int32)


DELAY_MODELS = {
    "constant": DelayModel("constant", "delay", random=False),
    "uniform": DelayModel("uniform", "max_delay", random=True),
    "geometric": DelayModel("geometric", "workers", random=True),
}


def get_delay_model(name: str | DelayModel) -> DelayModel:
    if isinstance(name, DelayModel):
        return name
    try:
        return DELAY_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown delay model {name!r}; choose one of {sorted(DELAY_MODELS)}") from None


def simulate_worker_staleness(
    workers: int,
    updates: int,
    *,
    compute: str = "exponential",
    speeds: Any = None,
    seed: int = 0,
) -> np.ndarray:
    """Staleness that emerges from M asynchronous workers on a virtual clock.

    Each worker reads the current parameters, computes for a random time, then
    applies its update; the staleness of an applied update is the number of
    updates applied since its worker read. With exponential times every applied
    update comes from a uniformly random worker and the staleness is geometric,
    P(τ = l) = (1/M)(1 − 1/M)^l (Mitliagkas et al. 2016); with equal constant
    times it is M − 1 (round robin).

    Args:
      workers: M ≥ 1.
      updates: number of applied updates to record.
      compute: ``"exponential"``, ``"constant"`` or ``"lognormal"`` (σ = 1) compute times.
      speeds: (M,) relative speeds (default all 1): worker i's times are divided by speeds[i].
      seed: NumPy seed.

    Returns:
      (updates,) int array of staleness values, in order of application.
    """
    import heapq

    if workers < 1 or updates < 1:
        raise ValueError(f"need workers >= 1 and updates >= 1, got {workers}, {updates}")
    rng = np.random.default_rng(seed)
    speed = np.ones(workers) if speeds is None else as_float_array("speeds", speeds, ndim=1)
    if speed.shape != (workers,) or np.any(speed <= 0):
        raise ValueError(f"speeds must be {workers} positive numbers, got {speeds!r}")

    def duration(i: int) -> float:
        if compute == "exponential":
            t = rng.exponential()
        elif compute == "constant":
            t = 1.0
        elif compute == "lognormal":
            t = rng.lognormal(0.0, 1.0)
        else:
            raise ValueError(f"unknown compute-time law {compute!r}")
        return t / speed[i]

    # Break ties between equal finishing times by worker index (round robin).
    events = [(duration(i), i, 0) for i in range(workers)]  # (finish time, worker, version read)
    heapq.heapify(events)
    version = 0
    out = np.empty(updates, dtype=np.int64)
    for n in range(updates):
        t, i, read = heapq.heappop(events)
        out[n] = version - read
        version += 1
        heapq.heappush(events, (t + duration(i), i, version))
    return out
