"""IA²SGD (incremental aggregated gradient): step with the average of every worker's latest gradient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp

from asyncjax.servers.base import Server


@dataclass(frozen=True)
class IA2SGD(Server):
    """Keep each worker's latest gradient, step with their average (build it with `ia2sgd`)."""

    name: ClassVar[str] = "ia2sgd"
    table: ClassVar[str | None] = "latest"

    def decide(self, tau, count, hp):
        return jnp.ones((), jnp.result_type(float)), jnp.ones((), bool)


def ia2sgd() -> IA2SGD:
    """IA²SGD: the server keeps each worker's latest gradient and steps with their average.

    At every arrival worker j's entry of the table becomes its new gradient and
    the server steps with (1/n) Σ_i g_i over the n workers, whatever the
    gradients' staleness. Every worker's data then weighs 1/n in every step,
    however fast it is, so on workers with their own data the bias of
    asynchronous SGD towards the fast workers (`asyncjax.theory.asgd_fixed_point`)
    is gone. A worker that has not arrived yet counts as a zero gradient: the
    first steps are 1/n of the first arrivals' gradients until every worker has
    arrived once. The table costs n gradients per trajectory. No grid axis.

    Example::

        B = [[1.0, 0.0], [-1.0, 2.0], [0.0, -2.0], [2.0, 1.0]]  # worker j's optimum b_j
        q = aj.Quadratic([1.0, 1.0], noise=0.1, worker_optima=B)
        aj.sweep(q, aj.Grid(lr=0.05, workers=4, seed=range(64)),
                 delay_model=aj.delays.workers("constant", base="1 + i", noise_scale=0),
                 server=aj.servers.ia2sgd(), steps=4_000, record_every=100)
    """
    return IA2SGD()
