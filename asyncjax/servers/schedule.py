"""The event log of one trajectory: the server's schedule, without any iterates.

Which worker arrives when, how stale its gradient is, and whether the server
used it depend only on the seed, the compute times and the rule, never on the
iterates; `schedule` runs the engine's own event clock alone.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._parts import resolve
from asyncjax._validate import check_int, did_you_mean
from asyncjax.delays.registry import get_delay_model
from asyncjax.delays.worker_clock import WorkerClock
from asyncjax.servers.asgd import asgd
from asyncjax.servers.base import Server
from asyncjax.servers.clock import ServerClock, attach, with_server
from asyncjax.servers.registry import get_server

_BLOCK = 1024


@lru_cache(maxsize=16)
def _log_pass(model: ServerClock, events: int):
    """Compiled scan of one trajectory's clock over ``events`` events."""

    def run(m, hp, seed):
        dtype = jnp.result_type(float)
        key = _rng.stream_keys(seed[None], _rng.DELAY_STREAM)[0]
        if model.shared:
            first = jnp.ones(model.slots, dtype)
        else:
            first = model.clock.first_draws(key, model.slots, dtype)
        state = model.init_state(m, first, hp, None if model.shared else key)

        def one(st, d):
            st = model.restock(st, lambda s: model.refill(s, key))
            st, ev = model.event(st, m, d, hp)
            return st, (
                st.total,
                ev.worker,
                ev.staleness,
                ev.weight > 0,
                ev.timed_out,
                ev.weight,
                ev.step,
                st.k,
                ev.worker if ev.assigned is None else ev.assigned,
            )

        def block(st, k0):
            ks = k0 + jnp.arange(_BLOCK, dtype=jnp.int32)
            d = model.draws(key, ks, dtype)
            return jax.lax.scan(one, st, d, length=_BLOCK)

        n_blocks = -(-events // _BLOCK)
        _, out = jax.lax.scan(block, state, _BLOCK * jnp.arange(n_blocks, dtype=jnp.int32))
        return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:events], out)

    return jax.jit(run)


def schedule(
    server: Server | str | None,
    delay_model: WorkerClock | str = "workers",
    *,
    workers: int,
    seed: int = 0,
    arrivals: int,
    **hp: float,
) -> dict[str, np.ndarray]:
    """The event log of one trajectory's first ``arrivals`` events, as the engine follows it.

    Args:
      server: the rule (`asgd`, `rennala`, ...), a name, or None (plain
        worker clock: `asgd`).
      delay_model: the worker clock (`asyncjax.delays.workers`) or ``"workers"``.
      workers: n, the number of workers.
      seed: the trajectory's seed (its delay stream).
      arrivals: events to log (an event is an arrival, or a time-out).
      **hp: the rule's values (``batch``, ``delay_threshold``) and ``timeout_scale``.

    Returns:
      (arrivals,) NumPy arrays: ``time`` (float64, the event's virtual time),
      ``worker``, ``staleness`` (applied updates since the worker read),
      ``applied`` (its gradient goes into a step; False when discarded or
      timed out), ``timed_out``, ``weight`` (in its step, before the 1/B of a
      round), ``step`` (the server stepped at this event), ``updates``
      (applied updates after the event) and ``assigned`` (the worker given
      the job handed out at this event: the event's worker unless the clock's
      ``assignment`` says otherwise).

    Example::

        log = aj.servers.schedule(aj.servers.ringmaster(), aj.delays.workers("exponential"),
                                  workers=8, seed=0, arrivals=100, delay_threshold=3)
        log["staleness"][log["applied"]].max()  # < 3
    """
    clock = get_delay_model(delay_model)
    arrivals = check_int(arrivals, "arrivals", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    rule = get_server(server) or asgd()
    takes = {h.name for h in with_server(clock, rule).hyperparameters} - {"workers"}
    for name in sorted(set(hp) - takes):
        raise ValueError(
            f"schedule: unknown value {name}={hp[name]!r}{did_you_mean(name, takes)}; "
            f"{rule.name} on this clock takes "
            + (", ".join(sorted(takes)) if takes else "none besides workers, seed and arrivals")
        )
    model = attach(clock, rule, {"workers": workers, **hp}, arrivals)
    values = resolve([model], {"workers": workers, **hp}, buffer=model.buffer_for())
    for name, v in values.items():
        if v.size != 1:
            raise ValueError(f"schedule runs one trajectory: {name} must be a scalar")
    dtype = jnp.result_type(float)
    m = jnp.asarray(values["workers"][0], dtype)
    own = {k: jnp.asarray(v[0], dtype) for k, v in values.items() if k != "workers"}
    out = _log_pass(model, arrivals)(m, own, jnp.asarray(seed, jnp.int32))
    total, worker, tau, applied, timed, weight, step, k, assigned = (np.asarray(a) for a in out)
    return {
        "time": total.astype(np.float64),
        "worker": worker.astype(np.int64),
        "staleness": tau.astype(np.int64),
        "applied": applied.astype(bool),
        "timed_out": timed.astype(bool),
        "weight": weight.astype(np.float64),
        "step": step.astype(bool),
        "updates": k.astype(np.int64),
        "assigned": assigned.astype(np.int64),
    }
