"""m-Synchronous SGD (Begunov & Tyurin 2026): wait for the fastest m workers, cancel the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from asyncjax._parts import Hyper
from asyncjax.servers.base import Server, batch_hyper, fresh_round, restart_all


@dataclass(frozen=True)
class MSync(Server):
    """Every worker computes at x_k; the first B arrivals make the step (build it with `msync`)."""

    name: ClassVar[str] = "msync"
    accumulates: ClassVar[bool] = True
    idles: ClassVar[bool] = True
    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        batch_hyper("m >= 1 (at most the workers), the fastest arrivals averaged per step"),
    )

    @property
    def stops(self) -> bool:
        return True

    def decide(self, tau, count, hp):
        return fresh_round(tau, count, hp["batch"])

    def stopped(self, k, versions, step, hp):
        return restart_all(step, versions)

    def storage(self, slots, values, steps):
        return 1


def msync() -> MSync:
    """m-Synchronous SGD: all workers compute at x_k; the fastest m make the step.

    A worker whose gradient arrived waits; when m have arrived the server steps
    with their average, cancels the others' jobs and restarts every worker at
    the new point. ``batch`` = ``workers`` is synchronous minibatch SGD. Grid
    axis ``batch`` (m, traced; at most the number of workers).

    Example::

        aj.sweep(problem, aj.Grid(lr=0.5, batch=[4, 16], workers=16, seed=range(8)),
                 delay_model=aj.delays.workers("exponential"), server=aj.servers.msync(),
                 steps=2_000, record_every=100)
    """
    return MSync()
