"""Rennala SGD (Tyurin & Richtárik, NeurIPS 2023): rounds of B gradients at the current point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from asyncjax._parts import Hyper
from asyncjax.servers.base import Server, batch_hyper, check_flag, fresh_round, restart_all


@dataclass(frozen=True)
class Rennala(Server):
    """Collect B gradients computed at x_k, step with their average (build it with `rennala`).

    Attributes:
      with_stops: restart every worker at the new point when a round begins.
    """

    with_stops: bool = True

    name: ClassVar[str] = "rennala"
    accumulates: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        batch_hyper("B >= 1, gradients at the current point averaged per step"),
    )

    @property
    def stops(self) -> bool:
        return self.with_stops

    def decide(self, tau, count, hp):
        return fresh_round(tau, count, hp["batch"])

    def stopped(self, k, versions, step, hp):
        return restart_all(step, versions)

    def storage(self, slots, values, steps):
        return 1  # an accepted gradient is always computed at the current point

    def describe(self):
        return {"kind": self.name, "stops": self.with_stops}


def rennala(stops: bool = True) -> Rennala:
    """Rennala SGD: the server collects B gradients computed at the current point, then steps.

    A fast worker may contribute several gradients to one round. With ``stops``
    every worker restarts at the new point when a round begins (what the
    public reference code does); without them a worker keeps computing, and a
    gradient computed at an older point is discarded on arrival. A step is the
    average of the round's B gradients. Grid axis ``batch`` (B, traced).
    ``rennala(stops=s)`` with B = 1 is ``ringmaster(stops=s)`` with R = 1.

    Example::

        aj.sweep(problem, aj.Grid(lr=1.0, batch=[2, 6, 16], workers=64, seed=range(8)),
                 delay_model=aj.delays.workers("constant", base="sqrt(i + 1)", noise_scale=0),
                 server=aj.servers.rennala(), steps=4_000, record_every=100)
    """
    return Rennala(with_stops=check_flag(stops, "stops"))
