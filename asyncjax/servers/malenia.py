"""Malenia SGD (Tyurin & Richtárik, NeurIPS 2023): rounds in which every worker contributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp

from asyncjax.servers.base import Server, check_flag, restart_all


@dataclass(frozen=True)
class Malenia(Server):
    """Collect gradients at x_k until every worker has one, average per worker then over workers.

    Build it with `malenia`.

    Attributes:
      with_stops: restart every worker at the new point when a round begins.
    """

    with_stops: bool = True

    name: ClassVar[str] = "malenia"
    table: ClassVar[str | None] = "mean"
    every_worker: ClassVar[bool] = True

    @property
    def stops(self) -> bool:
        return self.with_stops

    def decide(self, tau, count, hp):
        fresh = tau == 0  # a step also needs every worker in the round: the clock checks that
        return fresh.astype(jnp.result_type(float)), fresh

    def stopped(self, k, versions, step, hp):
        return restart_all(step, versions)

    def storage(self, slots, values, steps):
        return 1  # an accepted gradient is always computed at the current point

    def describe(self):
        return {"kind": self.name, "stops": self.with_stops}


def malenia(stops: bool = True) -> Malenia:
    """Malenia SGD: rounds at x_k that end when every worker has contributed a gradient.

    The server keeps x_k and collects gradients computed at x_k; a round ends
    when every one of the n workers has delivered at least one (a fast worker
    may deliver several). The step is g = (1/n) Σ_j (1/b_j) Σ_{i≤b_j} g_{j,i}:
    the mean of each worker's b_j gradients, then the mean over workers, so
    every worker's data weighs 1/n whatever its speed (Tyurin & Richtárik 2023,
    for workers with their own data). A gradient computed at an older point is
    discarded, as in Rennala SGD. With ``stops`` (the default) every worker
    restarts at the new point when a round begins, since its work at the old
    point would be discarded anyway; without them it finishes that job first.
    The per-worker means cost n gradients per trajectory. No grid axis.

    Example::

        B = [[1.0, 0.0], [-1.0, 2.0], [0.0, -2.0], [2.0, 1.0]]  # worker j's optimum b_j
        q = aj.Quadratic([1.0, 1.0], noise=0.1, worker_optima=B)
        aj.sweep(q, aj.Grid(lr=0.5, workers=4, seed=range(64)),
                 delay_model=aj.delays.workers("exponential", speeds="1 + i"),
                 server=aj.servers.malenia(), steps=4_000, record_every=100)
    """
    return Malenia(with_stops=check_flag(stops, "stops"))
