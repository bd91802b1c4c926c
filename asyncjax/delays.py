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

__all__ = ["DelayModel", "get_delay_model", "DELAY_MODELS"]


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
