"""Delay (staleness) models: how many updates old the iterate is that a gradient reads.

========== ============ =====================================================
model      axis          staleness τ_k
========== ============ =====================================================
constant   ``delay``     τ (the paper's experiment)
uniform    ``max_delay`` uniform on {0, …, τ_max}
geometric  ``workers``   P(τ = l) = (1/M)(1 − 1/M)^l, the queuing model of
                         Mitliagkas et al. (2016) with M workers; mean M − 1
workers    ``workers``   emerges from M workers on a virtual clock (`workers`):
                         each step applies the earliest finisher's gradient
trace      (none)        a user-supplied sequence, e.g. measured on a cluster
                         (`trace`)
========== ============ =====================================================

Every model implements one protocol (`base`): its swept
values, and a `RingIO` that says how its trajectories read and write
the engine's ring. Modules: ``base`` (the protocol), ``laws`` (the three
stateless laws), ``traces``, ``worker_clock`` (the virtual clock),
``schedule`` (the clock alone: `clock_summary`), ``registry`` (by name),
``conditions`` (the worker's conditions that only the event clock of
`asyncjax.servers` follows: job assignment, communication, outages and
measured compute-time traces, options of `workers`).
The modules are not named ``trace`` and ``workers``: those are the factories.
"""

from asyncjax.delays.base import DelayModel, EventIO, RingContext, RingIO
from asyncjax.delays.conditions import ASSIGNMENTS, OUTAGE_MODES, Conditions
from asyncjax.delays.laws import BoundedLaw, Constant, Geometric, Law, RandomLaw, Uniform
from asyncjax.delays.registry import DELAY_MODELS, get_delay_model
from asyncjax.delays.schedule import clock_summary
from asyncjax.delays.traces import TraceDelay, trace
from asyncjax.delays.worker_clock import (
    COMPUTE_LAWS,
    ClockState,
    WorkerClock,
    worker_schedule,
    workers,
)

__all__ = [
    "DelayModel",
    "RingContext",
    "RingIO",
    "EventIO",
    "Law",
    "BoundedLaw",
    "RandomLaw",
    "Constant",
    "Uniform",
    "Geometric",
    "WorkerClock",
    "TraceDelay",
    "ClockState",
    "workers",
    "trace",
    "get_delay_model",
    "DELAY_MODELS",
    "COMPUTE_LAWS",
    "Conditions",
    "ASSIGNMENTS",
    "OUTAGE_MODES",
    "clock_summary",
    "worker_schedule",
]
