"""Ringleader ASGD, as asyncjax reads it: IA²SGD's gradient table with Ringmaster's delay threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from asyncjax.servers.base import check_flag
from asyncjax.servers.ringmaster import Ringmaster


@dataclass(frozen=True)
class Ringleader(Ringmaster):
    """Ringmaster's rule on IA²SGD's table (build it with `ringleader`).

    Attributes:
      with_stops: stop and restart a worker as soon as its delay reaches R.
    """

    name: ClassVar[str] = "ringleader"
    table: ClassVar[str | None] = "latest"


def ringleader(stops: bool = True) -> Ringleader:
    """Ringleader: each worker's latest gradient in a table, arrivals R or more updates old discarded.

    An arrival whose delay (in applied updates) is below R replaces its worker's
    entry of the table and the server steps with the entries' average over the
    n workers, as `ia2sgd`; an arrival with delay ≥ R is discarded and changes
    nothing, as in `ringmaster`. With ``stops`` a worker whose delay reaches R
    is stopped and restarts at the current point, and the run keeps only the
    last R + 1 points. A worker that has not delivered yet counts as a zero
    gradient. Grid axis ``delay_threshold`` (R, traced).

    Choose R above the number of updates the server applies while the slowest
    worker computes one gradient: otherwise that worker never gets a gradient
    through, its entry stays zero and its data never count, a worse bias than
    asynchronous SGD's (measured: fixed times 1, 2, 3, 4 and R = 4 settle
    at the optimum of the two fastest workers' data alone).

    This is the combination of IA²SGD's table and Ringmaster's delay control
    (Maranjyan, Tyurin & Richtárik 2025). The Ringleader ASGD paper (Maranjyan &
    Richtárik 2025, arXiv 2509.22860) describes, in the summaries we could read,
    a round-based table that averages each worker's gradients within a round,
    buffers early arrivals instead of discarding them and bounds every delay by
    2n − 2; we have not checked this rule step by step against its algorithm,
    so compare with the paper before quoting its numbers as Ringleader ASGD's.

    Example::

        B = [[1.0, 0.0], [-1.0, 2.0], [0.0, -2.0], [2.0, 1.0]]  # worker j's optimum b_j
        q = aj.Quadratic([1.0, 1.0], noise=0.1, worker_optima=B)
        aj.sweep(q, aj.Grid(lr=0.05, delay_threshold=[4, 16], workers=4, seed=range(64)),
                 delay_model=aj.delays.workers("exponential", speeds="1 + i"),
                 server=aj.servers.ringleader(), steps=4_000, record_every=100)
    """
    return Ringleader(with_stops=check_flag(stops, "stops"))
