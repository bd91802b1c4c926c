"""Servers: what the server does with each gradient that arrives from the worker clock.

With ``server=`` (Python) or ``[server] kind = "…"`` (TOML) on the worker clock
(``delay_model=asyncjax.delays.workers(...)``), one step of the engine is one
event: a worker's gradient arrives (or its job times out), and the rule
decides whether to apply it, accumulate it or discard it, and which workers
to stop and restart at the current point. The results then hold
``wall_time`` and ``updates`` (applied updates) at every record.

============== ================== ==================================================
rule            grid axes          what the server does
============== ================== ==================================================
`asgd`          (none)             apply every arrival (the default)
`rennala`       ``batch``          collect B gradients computed at x_k, step with
                                   their average (Tyurin & Richtárik 2023)
`msync`         ``batch``          all workers compute at x_k; step with the fastest
                                   m, cancel the rest (Begunov & Tyurin 2026)
`ringmaster`    ``delay_threshold`` discard arrivals R or more updates old
                                   (Maranjyan, Tyurin & Richtárik 2025)
`fedbuff`       ``batch``          buffer K arrivals, step with their staleness-
                                   weighted average (Nguyen et al. 2022)
`ia2sgd`        (none)             keep every worker's latest gradient, step with
                                   their average at every arrival (IA²SGD)
`malenia`       (none)             collect gradients at x_k until every worker has
                                   one; average per worker, then over workers
                                   (Tyurin & Richtárik 2023)
`ringleader`    ``delay_threshold`` IA²SGD's table with Ringmaster's threshold R
============== ================== ==================================================

The last three remove the bias of asynchronous SGD towards the fast workers when
the workers hold their own data (``problem.per_worker``, e.g.
``Quadratic(..., worker_optima=B)``); they keep a table of n gradients per
trajectory.

Per-worker time-outs (MindFlayer SGD) are an option of the clock
(``workers(..., timeouts=...)``, grid axis ``timeout_scale``) and work with every
rule. Staleness is counted in applied updates. Every optimizer runs on the
server (momentum Ringmaster is ``optimizer=heavy_ball()`` with a ``momentum``
axis) and the mitigations compose with every rule. `schedule` gives one
trajectory's event log. Modules: ``base`` (the protocol), one per rule,
``clock`` (the event clock), ``schedule``, ``registry``.
"""

from asyncjax.servers.asgd import ASGD, asgd
from asyncjax.servers.base import Server
from asyncjax.servers.clock import EventState, RestartPool, ServerClock
from asyncjax.servers.fedbuff import FedBuff, fedbuff
from asyncjax.servers.ia2sgd import IA2SGD, ia2sgd
from asyncjax.servers.malenia import Malenia, malenia
from asyncjax.servers.msync import MSync, msync
from asyncjax.servers.registry import SERVERS, get_server
from asyncjax.servers.rennala import Rennala, rennala
from asyncjax.servers.ringleader import Ringleader, ringleader
from asyncjax.servers.ringmaster import Ringmaster, ringmaster
from asyncjax.servers.schedule import schedule

__all__ = [
    "Server",
    "ServerClock",
    "EventState",
    "RestartPool",
    "ASGD",
    "Rennala",
    "MSync",
    "Ringmaster",
    "FedBuff",
    "IA2SGD",
    "Malenia",
    "Ringleader",
    "asgd",
    "rennala",
    "msync",
    "ringmaster",
    "fedbuff",
    "ia2sgd",
    "malenia",
    "ringleader",
    "schedule",
    "get_server",
    "SERVERS",
]
