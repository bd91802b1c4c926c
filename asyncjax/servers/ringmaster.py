"""Ringmaster ASGD (Maranjyan, Tyurin & Richtárik, ICML 2025): ASGD with a delay threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from asyncjax._parts import Hyper
from asyncjax._validate import check_whole
from asyncjax.servers.base import Server, check_flag


def _check_threshold(values: np.ndarray, name: str) -> np.ndarray:
    return check_whole(values, name, minimum=1)


@dataclass(frozen=True)
class Ringmaster(Server):
    """Discard arrivals R or more updates old (build it with `ringmaster`).

    Attributes:
      with_stops: stop and restart a worker as soon as its delay reaches R.
    """

    with_stops: bool = True

    name: ClassVar[str] = "ringmaster"
    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        Hyper(
            "delay_threshold",
            check=_check_threshold,
            doc="R >= 1: an arrival with delay >= R (in applied updates) is discarded",
        ),
    )

    @property
    def stops(self) -> bool:
        return self.with_stops

    def decide(self, tau, count, hp):
        ok = tau.astype(hp["delay_threshold"].dtype) < hp["delay_threshold"]
        return ok.astype(hp["delay_threshold"].dtype), ok

    def stopped(self, k, versions, step, hp):
        age = (k - versions).astype(hp["delay_threshold"].dtype)
        return step & (age >= hp["delay_threshold"])

    def storage(self, slots, values, steps):
        """The last R_max + 1 versions (never more than the run has), or one snapshot per worker.

        Without stops, one snapshot per worker when that is fewer slots.
        """
        ring = int(min(np.max(values["delay_threshold"]), steps) + 1)
        return ring if self.with_stops or ring < slots else None

    def describe(self):
        return {"kind": self.name, "stops": self.with_stops}


def ringmaster(stops: bool = True) -> Ringmaster:
    """Ringmaster ASGD: ASGD that discards every gradient whose delay is R or more.

    The delay is counted in applied updates. With ``stops`` (calculation
    stops, the paper's Algorithm 2) a worker whose delay reaches R is stopped
    when the step that makes it R happens, and restarts at the current point
    (its partial work is lost), so no discarded gradient is ever computed to the
    end. The run keeps only the last R + 1 points: no in-flight
    worker is older. Grid axis ``delay_threshold`` (R, traced). The paper's
    choice is R = max(1, ⌈σ²/ε⌉). ``ringmaster(stops=False)`` with R above
    every delay is `asgd`.

    Example::

        aj.sweep(problem, aj.Grid(lr=0.25, delay_threshold=[2, 6, 20], workers=64, seed=range(8)),
                 delay_model=aj.delays.workers("halfnormal", base="1 + sqrt(i)"),
                 server=aj.servers.ringmaster(stops=True), steps=2_000, record_every=100)
    """
    return Ringmaster(with_stops=check_flag(stops, "stops"))
