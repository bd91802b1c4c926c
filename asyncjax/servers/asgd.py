"""ASGD: the server applies every arrival at once, whatever its staleness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp

from asyncjax.servers.base import Server


@dataclass(frozen=True)
class ASGD(Server):
    """Apply every arrival (build it with `asgd`)."""

    name: ClassVar[str] = "asgd"

    def decide(self, tau, count, hp):
        return jnp.ones((), jnp.result_type(float)), jnp.ones((), bool)


def asgd() -> ASGD:
    """Asynchronous SGD: every arriving gradient is applied at once, however stale.

    The worker clock's behaviour without a server, as an event rule: with it,
    a step of the engine is an arrival and the clock records ``updates``.
    Delay-adaptive ASGD is this rule with the ``delay_adaptive`` mitigation.

    Example::

        aj.sweep(problem, grid, delay_model=aj.delays.workers("exponential"),
                 server=aj.servers.asgd(), steps=10_000, record_every=100)
    """
    return ASGD()
