"""FedBuff (Nguyen et al., AISTATS 2022): a buffer of B arrivals, weighted by their staleness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax._parts import Hyper
from asyncjax.servers.base import Server, batch_hyper

WEIGHTS = ("sqrt", "constant")


@dataclass(frozen=True)
class FedBuff(Server):
    """Buffer B arrivals of any delay, step with Σ s(τ)·g / B (build it with `fedbuff`).

    Attributes:
      weight: ``"sqrt"`` (s(τ) = 1/√(1 + τ)), ``"constant"`` (s = 1) or a
        function of τ (a traced float array) returning the weight.
    """

    weight: str | Callable[[Any], Any] = "sqrt"

    name: ClassVar[str] = "fedbuff"
    accumulates: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        batch_hyper("K >= 1, arrivals buffered per step"),
    )

    def __post_init__(self):
        if isinstance(self.weight, str):
            if self.weight not in WEIGHTS:
                raise ValueError(
                    f"unknown FedBuff weight {self.weight!r}; choose one of "
                    f"{', '.join(WEIGHTS)} or pass a function of the staleness"
                )
        elif not callable(self.weight):
            raise ValueError(
                f"the FedBuff weight must be 'sqrt', 'constant' or a function of the "
                f"staleness τ; got {self.weight!r}"
            )
        else:
            _check_weight(self.weight)

    def decide(self, tau, count, hp):
        b = hp["batch"]
        t = tau.astype(b.dtype)
        if self.weight == "sqrt":
            w = 1 / jnp.sqrt(1 + t)
        elif self.weight == "constant":
            w = jnp.ones((), b.dtype)
        else:
            w = jnp.asarray(self.weight(t), b.dtype)
        return w, (count + 1).astype(b.dtype) >= b

    def describe(self):
        w = self.weight if isinstance(self.weight, str) else getattr(self.weight, "__name__", "fn")
        return {"kind": self.name, "weight": w}


def _check_weight(fn: Callable[[Any], Any], probe: int = 64) -> None:
    """Refuses a weight function the engine could not use, before anything compiles.

    The engine calls it on one trajectory's staleness τ, a traced float scalar
    (under `jax.vmap`); it is tried here on τ = 0 … ``probe`` − 1 the same way.
    """
    tau = jnp.arange(probe, dtype=jnp.float32)
    try:
        w = jax.vmap(fn)(tau)
    except Exception as err:  # a user's function: say which and how it failed, in one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(
            f"the FedBuff weight function failed on a staleness τ (a traced scalar): "
            f"{type(err).__name__}: {first} (use jnp operations, e.g. jnp.where instead of if)"
        ) from None
    w = np.asarray(w)
    if w.shape != tau.shape:
        raise ValueError(
            f"the FedBuff weight must return one number per staleness τ; got shape "
            f"{w.shape[1:]} for a scalar τ"
        )
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"the FedBuff weight must be finite and >= 0; weight({i}) = {w[i]}")


def fedbuff(weight: str | Callable[[Any], Any] = "sqrt") -> FedBuff:
    """FedBuff: buffer K arrivals of any delay, step with their staleness-weighted average.

    A step applies Σ s(τ_j)·g_j / K over the K buffered gradients, then clears
    the buffer. Grid axis ``batch`` (K, traced).

    Args:
      weight: s(τ): ``"sqrt"`` (1/√(1 + τ), the paper's), ``"constant"`` (1)
        or a function of τ (a float array; written with ``jax.numpy``).

    Example::

        aj.sweep(problem, aj.Grid(lr=0.1, batch=[4, 10], workers=32, seed=range(8)),
                 delay_model=aj.delays.workers("exponential"),
                 server=aj.servers.fedbuff(weight=lambda tau: 1 / (1 + tau)),
                 steps=5_000, record_every=100)
    """
    return FedBuff(weight=weight)
