"""The event clock: the worker clock with a server rule, one engine step per event.

An event is the earliest end of a job: a gradient arrives, or (with
time-outs) a job is abandoned. The clock of one trajectory (`EventState`)
holds each worker's remaining time and the version it read, the server's
applied-update count k and the round's count; `ServerClock.event` advances
it by one event and says which stored point the gradient is computed at, its
weight, whether the server steps, and where the newest read point goes. The
schedule never depends on the iterates, so `asyncjax.servers.schedule` runs
the same function alone.

Draws: the job the event's own worker starts after event e (its arrival or
time-out) takes value 0 of counter e of the delay stream, as the worker
clock's; first jobs take value 0 of counter 2³² − 1 − i. A worker j that the
rule stops and restarts (a stop, a new round) takes, at its r-th restart,
value 2 + 2j + (r mod 2) of counter ⌊r/2⌋: r is the worker's own restart
count, so the draws an event costs are the jobs it restarts, not one per
worker (and in float32 two restarts of a worker share one Threefry hash).
Each clock keeps its workers' next restart values (`RestartPool`, `POOL` per
worker); when a worker of any clock of the batch has used its pool, every
worker of the batch that has used a pair gets the next pair, in one batched
draw under a `jax.lax.cond` outside the map over trajectories. A value
depends only on (seed, j, r), never on when the pools were drawn, so results
do not depend on batching or blocking. The clock depends only on the seed and
its own values (workers, the rule's, the time-outs' scale), so the points of
a sweep that differ only in others (the step) share one (`RingContext.groups`).
With exponential times and no rule that idles a worker, nothing but the
finisher is drawn: by memorylessness it is worker i with probability
speed_i / Σ speed, as for the worker clock, which this clock then follows
draw for draw.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._parts import Hyper, hyperparameters, resolve
from asyncjax._validate import MAX_WORKERS, check_positive
from asyncjax.delays.base import DelayModel, EventIO, RingContext, RingIO
from asyncjax.delays.compute import law_pairs_at, law_values
from asyncjax.delays.worker_clock import WorkerClock
from asyncjax.servers.asgd import asgd
from asyncjax.servers.base import Server

_TIMEOUT_SCALE = Hyper(
    "timeout_scale",
    default=1.0,
    check=lambda v, n: check_positive(v, n, allow_inf=True),
    allow_inf=True,
    doc="multiplies every worker's time-out (inf: none)",
)

# Restart values kept per worker: two pairs, so that a worker that has used one pair still has
# the other while the batch's next refill gives it a new one (refills then come every 2B or 2R
# events for Rennala and Ringmaster, 2n values each: n/B or n/R per event, as the restarts).
POOL = 4


class RestartPool(NamedTuple):
    """The law's values of each worker's next restarts (rules that stop workers, drawn times).

    Worker j's restart count is r = base + used; ``values[t, q, j]`` is the value
    of its restart base + 2q + t (two restarts per hash: q counts pairs).
    """

    values: Any  # (2, POOL // 2, n) float
    base: Any  # (n,) int32 the restart of pair 0's first value (even)
    used: Any  # (n,) int32 values used: its next restart is base + used (POOL: none left)
    empty: Any  # () bool some worker has used its whole pool


class EventState(NamedTuple):
    """The event clock of one trajectory (or of one grid point, when its seeds share it).

    Times are relative to the last event, so float32 keeps its precision; the
    elapsed time is a compensated sum.
    """

    finish: Any  # (n,) float remaining time of each worker's job; inf: idle or inactive. None: memoryless
    version: Any  # (n,) int32 the version (applied-update count) each worker read
    timed: Any  # (n,) bool the job will time out; None without time-outs
    k: Any  # () int32 applied updates
    count: Any  # () int32 gradients accepted in this round
    total: Any  # () float elapsed time
    comp: Any  # () float its Kahan compensation
    rate: Any  # () float Σ speed of the active workers (memoryless draws)
    pool: Any = None  # RestartPool, or None (no rule that stops, or no drawn times)
    seen: Any = None  # (n,) bool has a gradient in this round; None unless the rule waits for all
    jobs: Any = None  # JobState with the worker's conditions, else None


class JobState(NamedTuple):
    """The event clock's part for the worker's conditions (`asyncjax.delays.conditions`).

    With queues (``assignment`` other than ``"pure"``) the clock's ``version``
    is per job slot: the n jobs in the system, each handed out with a point.
    """

    keys: Any  # (streams, n, 2) uint32 key of (stream, worker); None: nothing random
    jobs: Any  # (n,) int32 jobs each worker has started
    cur: Any  # (n,) int32 the job slot each worker works on, -1: none; None: pure
    owner: Any  # (n,) int32 the worker each job slot belongs to; None: pure
    seq: Any  # (n,) int32 when each job slot was handed out (first in, first out); None: pure
    up: Any  # (n,) bool the worker is up; None: no outages
    toggle: Any  # (n,) float time to its next switch up/down; None: no outages
    periods: Any  # (n,) int32 switches so far; None: no outages
    lost: Any  # (n,) bool its job was lost going down: redone when back up; None: paused
    events: Any  # () int32 events so far
    left: Any = None  # (n,) bool workers not yet given a job in this block; None: not shuffling


class Event(NamedTuple):
    """What one event tells the engine (and the event log)."""

    worker: Any  # () int32
    staleness: Any  # () int32 in applied updates, before this event's step
    weight: Any  # () float the gradient's weight (0: discarded)
    step: Any  # () bool the server steps
    timed_out: Any  # () bool
    read_slot: Any  # () int32 where the gradient's point is stored
    write_slot: Any  # () int32 where the newest read point goes
    assigned: Any = None  # () int32 the worker given the next job (None: the event's worker)


@dataclass(frozen=True)
class ServerClock(DelayModel):
    """A worker clock driven by a server rule (built by `attach`; a jit key).

    Attributes:
      clock: the worker clock (its compute times, speeds, time-outs).
      server: the rule.
      slots: n_max, the largest number of workers of the run (static).
      storage: None: one snapshot per worker; else L, a ring of the last L versions.
    """

    clock: WorkerClock = WorkerClock()
    server: Server = None
    slots: int = 1
    storage: int | None = None

    name: ClassVar[str] = "workers"
    # axes an option adds, with what adds them (named when a grid sweeps one without it)
    optional_axes: ClassVar[dict[str, str]] = WorkerClock.optional_axes  # the time-outs' axis
    per_setting: ClassVar[bool] = True  # points that differ only in other values share a clock

    @property
    def hyperparameters(self) -> tuple[Hyper, ...]:  # the clock's axis first: the model's axis
        extra = (_TIMEOUT_SCALE,) if self.clock.timeouts is not None else ()
        return hyperparameters(self.clock) + hyperparameters(self.server) + extra

    @property
    def label(self) -> str:
        return f"the worker clock with {self.server.label}"

    # ------------------------------------------------------------ static facts
    @property
    def memoryless(self) -> bool:
        """Finishers drawn directly (exponential times, no time-outs, no idle workers)."""
        return self.clock.memoryless and self.clock.timeouts is None and not self.server.idles

    @property
    def shared(self) -> bool:
        """No randomness: the seeds of a grid point share one clock."""
        return self.clock.shared

    @property
    def pooled(self) -> bool:
        """The clock keeps a pool of restart values (a rule that stops workers, drawn times)."""
        return (
            self.server.stops
            and not self.memoryless
            and not self.shared
            and self.clock.conditions is None  # conditions draw per (worker, job) from the state
        )

    def check_values(self, values: dict[str, np.ndarray], *, buffer: int) -> dict:
        ws = values["workers"]
        if ws.size and ws.max() > self.slots:
            raise ValueError(
                f"workers={int(ws.max())} exceeds the {self.slots} worker slots of the run"
            )
        self.clock.check_values({"workers": ws}, buffer=self.slots)
        if self.server.idles and "batch" in values and ws.size:
            big = values["batch"][values["batch"] > ws.min()]
            if big.size:
                raise ValueError(
                    f"batch={int(big[0])} exceeds workers={int(ws.min())}: {self.server.name} "
                    "waits for that many distinct workers per step, so it would never step"
                )
        return {}

    def buffer_for(self, values: Any = None) -> int:
        return self.slots if self.storage is None else self.storage

    def state_bytes(self, buffer: int, itemsize: int) -> int:
        """`EventState`'s bytes: per worker its end time, version, flags, restart pool and the
        conditions' queues and outages, whatever the options make of it (traced, not run)."""
        dtype = jnp.float64 if itemsize == 8 else jnp.float32
        scalar = jax.ShapeDtypeStruct((), dtype)
        hp = {h.name: scalar for h in self.hyperparameters if h.name != "workers"}
        first = jax.ShapeDtypeStruct((self.slots,), dtype)
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        st = jax.eval_shape(self.init_state, scalar, first, hp, key)
        return sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(st))

    def describe(self) -> dict[str, Any]:
        return {**self.clock.describe(), "server": self.server.describe()}

    def gradient_bytes(self, param_bytes: int) -> int:
        """The rule's gradients per trajectory: a round's sum, or a table of one per worker.

        A table keeps ``slots`` entries and their sum (and, for ``"mean"``, a
        weight per entry).
        """
        if self.server.table is not None:
            itemsize = jnp.dtype(jnp.result_type(float)).itemsize
            counts = itemsize * self.slots if self.server.table == "mean" else 0
            return (self.slots + 1) * param_bytes + counts
        return param_bytes if self.server.accumulates else 0

    def recorded(self, dtype: Any) -> dict[str, Any]:
        """``wall_time`` (virtual time of the event) and ``updates`` (applied updates)."""
        return {
            "wall_time": jax.ShapeDtypeStruct((), dtype),
            "updates": jax.ShapeDtypeStruct((), jnp.int32),
        }

    def delay_stream(self, param: Any, seed: int, steps: int, buffer: int) -> np.ndarray:
        raise ValueError(
            "with a server, use asyncjax.servers.schedule for the event log of a trajectory"
        )

    # ------------------------------------------------------------ one trajectory's clock
    def init_state(
        self, m: jax.Array, first: jax.Array, hp: dict[str, jax.Array], key: Any = None
    ) -> EventState:
        """The clock at time 0: every active worker has started a job at version 0.

        Args:
          m: () float the number of active workers (traced).
          first: (slots,) the law's values for the first jobs (ignored if memoryless
            or with conditions).
          hp: this clock's hyperparameters (scalars).
          key: (2,) the trajectory's delay-stream key (used with conditions only;
            None when nothing is random).
        """
        if self.clock.conditions is not None:
            return self._init_conditioned(m, key, hp, first.dtype)
        n, dtype = self.slots, first.dtype
        i = jnp.arange(n, dtype=jnp.int32)
        active = i < m.astype(jnp.int32)
        speed = jnp.asarray(self.clock.speed(n), dtype)
        rate = jnp.sum(jnp.where(active, speed, jnp.zeros((), dtype)))
        finish = timed = None
        if not self.memoryless:
            c = self.clock.job_times(first, n)
            c, timed = self._time_out(c, hp)
            finish = jnp.where(active, c, jnp.asarray(jnp.inf, dtype))
        zero_i, zero_f = jnp.zeros((), jnp.int32), jnp.zeros((), dtype)
        count = zero_i if self.server.accumulates else None
        pool = None
        if self.pooled:  # empty: the first event's refill draws restarts 0 and 1 (`restock`)
            full = jnp.full(n, POOL, jnp.int32)
            values = jnp.zeros((2, POOL // 2, n), dtype)
            pool = RestartPool(values, -full, full, jnp.ones((), bool))
        seen = jnp.zeros(n, bool) if self.server.every_worker else None
        return EventState(
            finish,
            jnp.zeros(n, jnp.int32),
            timed,
            zero_i,
            count,
            zero_f,
            zero_f,
            rate,
            pool=pool,
            seen=seen,
        )

    def refill(self, pool: RestartPool, key: jax.Array) -> RestartPool:
        """One trajectory's pool, each worker that has used its first pair given the next one.

        Such a worker's pairs move down one place and its last place gets the
        pair after them: restarts r' = base + POOL − 2 and base + POOL − 1 (base
        after the move), restart r' being value 2 + 2j + (r' mod 2) of counter
        ⌊r'/2⌋ of the delay stream. One pair per worker is drawn, so a refill
        costs 2n values; a worker that had used its whole pool has a pair again.
        """
        n = self.slots
        move = pool.used >= 2
        base = pool.base + 2 * move.astype(jnp.int32)
        counters = base // 2 + (POOL // 2 - 1)
        pairs = 1 + jnp.arange(n, dtype=jnp.int32)
        law, shape = self.clock.law, self.clock.shape
        new = law_pairs_at(law, shape, key, counters, pairs, pool.values.dtype)  # (2, n)
        moved = jnp.concatenate([pool.values[:, 1:], new[:, None]], axis=1)
        values = jnp.where(move, moved, pool.values)
        used = pool.used - 2 * move.astype(jnp.int32)
        return RestartPool(values, base, used, jnp.zeros_like(pool.empty))

    def restock(self, st: EventState, refill: Any) -> EventState:
        """``st`` with ``refill(st.pool)`` if a worker of any clock in ``st`` has used its pool.

        Called before each event, outside any map over trajectories, so that
        the branch is taken once for the batch: an event uses at most one value
        per worker.
        """
        if st.pool is None:
            return st
        pool = jax.lax.cond(jnp.any(st.pool.empty), refill, lambda p: p, st.pool)
        return st._replace(pool=pool)

    def _time_out(self, c: jax.Array, hp: dict[str, jax.Array]) -> tuple[jax.Array, Any]:
        """Job times cut at the time-outs, and which jobs time out (None without time-outs)."""
        if self.clock.timeouts is None:
            return c, None
        limit = jnp.asarray(self.clock.timeout(self.slots), c.dtype) * hp["timeout_scale"]
        out = c > limit
        return jnp.where(out, limit, c), out

    def _decide(self, st: EventState, v_w, hit, timed, active, hp: dict[str, jax.Array]):
        """The rule's decision on the arrival of the worker ``hit`` that read version ``v_w``.

        Returns ``(tau, weight, step, seen, k, count)``: its staleness, weight and
        whether the server steps (a timed-out job and an unfinished round of
        every worker never step), and the clock's next round state, applied
        updates and round count.
        """
        tau = st.k - v_w
        count = jnp.zeros((), jnp.int32) if st.count is None else st.count
        weight, step = self.server.decide(tau, count, hp)
        if st.timed is not None:
            weight = jnp.where(timed, jnp.zeros_like(weight), weight)
            step = step & ~timed
        seen = st.seen
        if seen is not None:  # the round ends when every active worker has a gradient in it
            seen = seen | (hit & (weight > 0))
            step = step & jnp.all(seen | ~active)
            seen = seen & ~step
        k = st.k + step.astype(jnp.int32)
        new_count = None
        if st.count is not None:
            new_count = jnp.where(step, 0, count + (weight > 0).astype(jnp.int32))
        return tau, weight, step, seen, k, new_count

    def event(
        self, st: EventState, m: jax.Array, draw: Any, hp: dict[str, jax.Array]
    ) -> tuple[EventState, Event]:
        """Advances one trajectory's clock by one event (pure; vmapped by the engine).

        Args:
          st: the clock.
          m: () float the number of active workers.
          draw: this event's draws: (2,) uniforms when memoryless, else
            (1,) the law's value for the event's own worker, or None (constant
            times). Restarted workers take theirs from ``st.pool`` (`restock`
            first).
          hp: this clock's hyperparameters (scalars).
        """
        if self.clock.conditions is not None:
            return self._event_conditioned(st, m, hp)
        n, srv = self.slots, self.server
        i = jnp.arange(n, dtype=jnp.int32)
        active = i < m.astype(jnp.int32)
        if self.memoryless:
            w = self.clock._pick(draw[0], m, st.rate, n)
            dt = -jnp.log1p(-draw[1]) / st.rate
            hit = i == w
            v_w = st.version[w]
            timed = jnp.zeros((), bool)
        else:
            f = st.finish
            dt = jnp.min(f)
            w = jnp.min(jnp.where(f == dt, i, n))  # ties go to the lowest index
            hit = i == w
            v_w = jnp.sum(jnp.where(hit, st.version, 0), dtype=jnp.int32)
            timed = jnp.zeros((), bool) if st.timed is None else jnp.any(hit & st.timed)
        tau, weight, step, seen, k, new_count = self._decide(st, v_w, hit, timed, active, hp)
        restart = hit
        if srv.idles:  # a worker that arrived waits for the round's end
            restart = hit & (step | timed)
        if srv.stops:
            restart = restart | (active & srv.stopped(k, st.version, step, hp))
        version = jnp.where(restart, k, st.version)

        finish, timed_next, pool = None, st.timed, st.pool
        if not self.memoryless:
            x = jnp.ones((), dt.dtype) if draw is None else draw[0]
            if pool is not None:  # a restarted worker takes its pool's next value
                nxt = pool.values[0, 0]
                for u in range(1, POOL):  # each worker's next restart, select by select
                    nxt = jnp.where(pool.used == u, pool.values[u % 2, u // 2], nxt)
                x = jnp.where(hit, x, nxt)
                used = pool.used + (restart & ~hit).astype(jnp.int32)
                pool = pool._replace(used=used, empty=jnp.any(used >= POOL))
            c, out = self._time_out(self.clock.job_times(x, n), hp)
            finish = jnp.where(restart, dt + c, st.finish)
            if srv.idles:
                finish = jnp.where(hit & ~restart, jnp.asarray(jnp.inf, dt.dtype), finish)
            finish = finish - dt
            if out is not None:
                timed_next = jnp.where(restart, out, st.timed)
        y = dt - st.comp  # Kahan
        total = st.total + y
        comp = (total - st.total) - y
        state = EventState(
            finish, version, timed_next, k, new_count, total, comp, st.rate, pool=pool, seen=seen
        )
        if self.storage is None:
            read_slot = write_slot = w
        else:
            read_slot, write_slot = v_w % self.storage, k % self.storage
        return state, Event(w, tau, weight, step, timed, read_slot, write_slot)

    # ------------------------------------------------------------ the worker's conditions
    def _job_times(self, keys: Any, counts: jax.Array, hp: dict, dtype: Any, workers: Any = None):
        """Job number ``counts[i]`` of worker ``workers[i]`` (default: every worker, in order).

        Returns its time, download + compute + upload, and whether it times out
        (None without time-outs); a job that times out is abandoned at its
        time-out and uploads nothing.
        """
        cd, n = self.clock.conditions, self.slots
        c = cd.compute_times(self.clock, keys, counts, dtype, workers, n)
        if self.clock.timeouts is None:
            out = None
        else:
            limit = jnp.asarray(self.clock.timeout(n), c.dtype) * hp["timeout_scale"]
            limit = limit if workers is None else limit[workers]
            out = c > limit
            c = jnp.where(out, limit, c)
        down, up = cd.comm_times(keys, counts, dtype, workers, n)
        t = c if down is None else down + c
        if up is not None:
            t = t + (up if out is None else jnp.where(out, jnp.zeros_like(up), up))
        return t, out

    def _init_conditioned(self, m: jax.Array, key: Any, hp: dict, dtype: Any) -> EventState:
        """`init_state` with conditions: job 0 of every active worker, every worker up."""
        cd, n = self.clock.conditions, self.slots
        i = jnp.arange(n, dtype=jnp.int32)
        active = i < m.astype(jnp.int32)
        keys = None if self.shared else cd.keys(key, n)
        zeros = jnp.zeros(n, jnp.int32)
        t, timed = self._job_times(keys, zeros, hp, dtype)
        finish = jnp.where(active, t, jnp.asarray(jnp.inf, dtype))
        cur = owner = seq = up = toggle = periods = lost = None
        if cd.queues:
            cur, owner, seq = jnp.where(active, i, -1), i, i
        if cd.outages:
            up = jnp.ones(n, bool)
            toggle = jnp.where(
                active, cd.periods(keys, zeros, True, dtype), jnp.asarray(jnp.inf, dtype)
            )
            periods = zeros
            lost = jnp.zeros(n, bool) if cd.outage_mode == "lost" else None
        jobs = JobState(
            keys,
            active.astype(jnp.int32),
            cur,
            owner,
            seq,
            up,
            toggle,
            periods,
            lost,
            jnp.zeros((), jnp.int32),
            jnp.zeros(n, bool) if cd.assignment == "shuffle" else None,
        )
        zero_i, zero_f = jnp.zeros((), jnp.int32), jnp.zeros((), dtype)
        rate = jnp.sum(jnp.where(active, jnp.ones((), dtype), zero_f))
        count = zero_i if self.server.accumulates else None
        seen = jnp.zeros(n, bool) if self.server.every_worker else None
        return EventState(
            finish, zeros, timed, zero_i, count, zero_f, zero_f, rate, seen=seen, jobs=jobs
        )

    def _outages(self, st: EventState, hp: dict) -> tuple[EventState, jax.Array]:
        """Every up/down switch before the next arrival; returns the clock and the time they took.

        A switch strictly before the earliest running job's end happens first
        (at a tie the job ends first); one worker switches per pass, so only its
        next period is drawn. Paused jobs keep their remaining time;
        lost ones are redone, with their worker's next job time, when it comes back.
        """
        cd, n = self.clock.conditions, self.slots
        dtype = st.total.dtype
        inf = jnp.asarray(jnp.inf, dtype)
        keys = st.jobs.keys
        i = jnp.arange(n, dtype=jnp.int32)

        def pending(c):
            f, _, js, _ = c
            return jnp.min(js.toggle) < jnp.min(jnp.where(js.up, f, inf))

        def switch(
            c,
        ):  # the earliest switch (the lowest worker at a tie; the others follow at once)
            f, timed, js, elapsed = c
            a = jnp.min(js.toggle)
            v = jnp.argmin(js.toggle).astype(jnp.int32)
            flip = i == v
            f = jnp.where(js.up, f - a, f)
            toggle = js.toggle - a
            going = jnp.any(flip & js.up)
            jobs, lost = js.jobs, js.lost
            if lost is not None:
                lost = lost | (flip & js.up & jnp.isfinite(f))
                redo = flip & ~js.up & lost
                t, out = self._job_times(keys, jobs[v][None], hp, dtype, v[None])
                f = jnp.where(redo, t[0], f)
                if timed is not None:
                    timed = jnp.where(redo, out[0], timed)
                jobs = jobs + redo.astype(jnp.int32)
                lost = lost & ~redo
            r = js.periods[v]
            nxt = jnp.where(
                going,
                cd.periods(keys, (r // 2)[None], False, dtype, v[None], n)[0],
                cd.periods(keys, ((r + 1) // 2)[None], True, dtype, v[None], n)[0],
            )
            js = js._replace(
                jobs=jobs,
                up=js.up ^ flip,
                toggle=jnp.where(flip, nxt, toggle),
                periods=js.periods + flip.astype(jnp.int32),
                lost=lost,
            )
            return f, timed, js, elapsed + a

        init = (st.finish, st.timed, st.jobs, jnp.zeros((), dtype))
        f, timed, js, elapsed = jax.lax.while_loop(pending, switch, init)
        return st._replace(finish=f, timed=timed, jobs=js), elapsed

    def _assignee(self, js: JobState, m: jax.Array, w: jax.Array, dtype: Any):
        """The worker given the job handed out at this event, and the block's workers left.

        Shuffling draws the block's permutation one place at a time (without
        replacement): at its p-th job a block picks the r-th of the m − p
        workers it has not used yet, r = ⌊u (m − p)⌋, u value 0 of counter e.
        """
        cd = self.clock.conditions
        if cd.assignment == "pure":
            return w, js.left
        mi = m.astype(jnp.int32)
        u = _rng.uniforms(js.keys[-1, 0], js.events[None], 1, dtype)[0, 0]  # assignment stream
        if cd.assignment == "random":
            return jnp.minimum(jnp.floor(u * m).astype(jnp.int32), mi - 1), js.left
        pos = js.events % mi
        active = jnp.arange(self.slots, dtype=jnp.int32) < mi
        left = jnp.where(pos == 0, active, js.left)
        room = mi - pos
        r = jnp.minimum(jnp.floor(u * room.astype(dtype)).astype(jnp.int32), room - 1)
        rank = jnp.cumsum(left.astype(jnp.int32)) - 1  # each remaining worker's place
        a = jnp.argmax(left & (rank == r)).astype(jnp.int32)
        return a, left & (jnp.arange(self.slots, dtype=jnp.int32) != a)

    def _event_conditioned(
        self, st: EventState, m: jax.Array, hp: dict[str, jax.Array]
    ) -> tuple[EventState, Event]:
        """`event` with the worker's conditions (jobs drawn from the state's keys)."""
        cd, n, srv = self.clock.conditions, self.slots, self.server
        dtype = st.total.dtype
        inf = jnp.asarray(jnp.inf, dtype)
        i = jnp.arange(n, dtype=jnp.int32)
        active = i < m.astype(jnp.int32)
        elapsed = jnp.zeros((), dtype)
        if cd.outages:
            st, elapsed = self._outages(st, hp)
        js = st.jobs
        run = st.finish if js.up is None else jnp.where(js.up, st.finish, inf)
        dt = jnp.min(run)
        w = jnp.min(jnp.where(run == dt, i, n))  # ties go to the lowest index
        hit = i == w
        f = st.finish - dt if js.up is None else jnp.where(js.up, st.finish - dt, st.finish)
        if js.toggle is not None:
            js = js._replace(toggle=js.toggle - dt)
        slot = w if js.cur is None else jnp.sum(jnp.where(hit, js.cur, 0), dtype=jnp.int32)
        at = i == slot
        v_w = jnp.sum(jnp.where(at, st.version, 0), dtype=jnp.int32)
        timed = jnp.zeros((), bool) if st.timed is None else jnp.any(hit & st.timed)
        tau, weight, step, seen, k, new_count = self._decide(st, v_w, hit, timed, active, hp)
        a, left = self._assignee(js, m, w, dtype)
        js = js._replace(left=left)
        if js.cur is None:  # pure: the finisher (and any stopped worker) restarts
            start = hit
            if srv.idles:
                start = hit & (step | timed)
            if srv.stops:
                start = start | (active & srv.stopped(k, st.version, step, hp))
            version = jnp.where(start, k, st.version)
            done = hit & ~start  # an idle finisher
        else:  # the slot goes to the assignee; the finisher takes its oldest queued job
            owner = jnp.where(at, a, js.owner)
            version = jnp.where(at, k, st.version)
            seq = jnp.where(at, n + js.events, js.seq)
            mine = owner == w
            has = jnp.any(mine)
            nxt = jnp.argmin(jnp.where(mine, seq, jnp.iinfo(jnp.int32).max)).astype(jnp.int32)
            idle_a = (js.cur == -1) & (i == a) & (a != w)
            cur = jnp.where(hit, jnp.where(has, nxt, -1), js.cur)
            cur = jnp.where(idle_a, slot, cur)
            start = (hit & has) | idle_a
            done = hit & ~has
            js = js._replace(cur=cur, owner=owner, seq=seq)
        if srv.stops or srv.idles:  # any worker may start a job: draw every worker's next
            t, out = self._job_times(js.keys, js.jobs, hp, dtype)
            f = jnp.where(start, t, f)
            timed_next = st.timed if out is None else jnp.where(start, out, st.timed)
        else:  # at most the finisher and the assignee start one: draw only theirs
            who = jnp.stack([w, a]) if js.cur is not None else w[None]
            t, out = self._job_times(js.keys, js.jobs[who], hp, dtype, who)
            timed_next = st.timed
            for q in range(who.shape[0]):
                at_q = start & (i == who[q])
                f = jnp.where(at_q, t[q], f)
                if out is not None:
                    timed_next = jnp.where(at_q, out[q], timed_next)
        f = jnp.where(done, inf, f)
        lost = None if js.lost is None else js.lost & ~start
        js = js._replace(jobs=js.jobs + start.astype(jnp.int32), lost=lost, events=js.events + 1)
        y = elapsed + dt - st.comp  # Kahan
        total = st.total + y
        comp = (total - st.total) - y
        state = EventState(
            f, version, timed_next, k, new_count, total, comp, st.rate, seen=seen, jobs=js
        )
        if self.storage is None:
            read_slot = write_slot = slot
        else:
            read_slot, write_slot = v_w % self.storage, k % self.storage
        return state, Event(w, tau, weight, step, timed, read_slot, write_slot, a)

    # ------------------------------------------------------------ batched, for the engine
    def draws(self, key: jax.Array, ks: jax.Array, dtype: Any) -> Any:
        """(b, ...) one seed's draws for events ``ks`` (None: constant times)."""
        if self.memoryless:
            return _rng.uniforms(key, ks, 2, dtype)
        if self.shared or self.clock.conditions is not None:  # conditions draw from the state
            return None
        return law_values(self.clock.law, self.clock.shape, key, ks, 1, dtype)

    def batched(self, m: jax.Array, hp: dict, keys: jax.Array, dtype: Any):
        """The clocks of (H,) points × (S,) seeds (or (H,) when shared) and their event step.

        Returns:
          ``(state0, step, draws)``: ``step(state, d) -> (state, Event)`` with
          leading axes (H,) or (H, S); ``draws(ks)`` -> (blk, S, ...) or None.
        """
        n = self.slots
        init = lambda mm, first, h: self.init_state(mm, first, h)
        event = lambda st, mm, d, h: self.event(st, mm, d, h)
        if self.shared:
            ones = jnp.ones(n, dtype)
            state0 = jax.vmap(init, (0, None, 0))(m, ones, hp)
            step = jax.vmap(lambda st, d, mm, h: event(st, mm, None, h), (0, None, 0, 0))
            return state0, lambda st, d: step(st, d, m, hp), lambda ks: None
        first = jax.vmap(lambda kk: self.clock.first_draws(kk, n, dtype))(keys)  # (S, n)
        if self.clock.conditions is not None:  # draws come from each trajectory's own keys
            init_k = lambda mm, h, kk: self.init_state(mm, jnp.zeros(n, dtype), h, kk)
            state0 = jax.vmap(jax.vmap(init_k, (None, None, 0)), (0, 0, None))(m, hp, keys)
            step = jax.vmap(jax.vmap(event, (0, None, None, None)), (0, 0, None, 0))
            return state0, lambda st, d: step(st, m, None, hp), lambda ks: None
        state0 = jax.vmap(jax.vmap(init, (None, 0, None)), (0, None, 0))(m, first, hp)
        step = jax.vmap(jax.vmap(event, (0, None, 0, None)), (0, 0, None, 0))
        refill = jax.vmap(jax.vmap(self.refill, (0, 0)), (0, None))
        draws = lambda ks: jax.vmap(lambda kk: self.draws(kk, ks, dtype), out_axes=1)(keys)

        def step_all(st, d):
            st = self.restock(st, lambda s: refill(s, keys))  # once for the batch
            return step(st, m, d, hp)

        return state0, step_all, draws

    def ring_io(self, ctx: RingContext) -> RingIO:
        """Reads and writes of the stored points, driven by the event clock, with its gate.

        The carry is ``(ring, clock)``: ``ring`` has leaves (H, L, S, *leaf)
        (L: one snapshot per worker, or the last versions); the clock has
        leading axes (U,) when its seeds share it, else (U, S): one clock per
        distinct setting of the clock's values (`RingContext.groups`; U = H
        without them), since the clock depends on nothing else.
        """
        m = ctx.param
        hp = {k: v for k, v in ctx.values.items() if k != "workers"}
        h_idx, s_idx = jnp.arange(ctx.n_hyper), jnp.arange(ctx.n_seeds)
        if ctx.groups is None:
            state0, step_clock, draws = self.batched(m, hp, ctx.keys, ctx.dtype)
            points = lambda ev: ev
        else:
            reps, member = ctx.groups
            own = {k: v[reps] for k, v in hp.items()}
            state0, step_clock, draws = self.batched(m[reps], own, ctx.keys, ctx.dtype)
            points = lambda tree: jax.tree.map(lambda a: a[member], tree)  # (U, …) -> (H, …)
        units = (ctx.n_hyper, ctx.n_seeds)

        def gather(ring, slot):
            if self.shared:
                return jax.tree.map(lambda r: r[h_idx, slot], ring)
            return jax.tree.map(lambda r: r[h_idx[:, None], slot, s_idx[None, :]], ring)

        def read(carry, k, d):
            ring, state = carry
            state, ev = step_clock(state, d)
            ev = points(ev)
            tau = ev.staleness[:, None] if self.shared else ev.staleness
            return gather(ring, ev.read_slot), tau, (state, ev)

        def write(carry, c, new, k):
            ring, _ = carry
            state, ev = c
            if self.shared:
                ring = jax.tree.map(lambda r, x: r.at[h_idx, ev.write_slot].set(x), ring, new)
            else:
                at = (h_idx[:, None], ev.write_slot, s_idx[None, :])
                ring = jax.tree.map(lambda r, x: r.at[at].set(x), ring, new)
            return ring, state

        def wide(a):
            return jnp.broadcast_to(a[:, None] if self.shared else a, units)

        def gate(c):
            _, ev = c
            scale = jnp.ones((ctx.n_hyper,), ctx.dtype)
            if self.server.accumulates:
                scale = 1 / hp["batch"]
            if self.server.table is not None:  # the entries' average over the n workers
                scale = 1 / m
            return wide(ev.weight), wide(ev.step), wide(scale if self.shared else scale[:, None])

        def record(carry):
            _, state = carry
            return {"wall_time": wide(points(state.total)), "updates": wide(points(state.k))}

        srv = self.server
        events = EventIO(gate, record, srv.accumulates, srv.table, self.slots)
        return RingIO(
            lambda ring: (ring, state0), draws, read, write, events, lambda c: wide(c[1].worker)
        )


def with_server(model: DelayModel, server: Server | None) -> DelayModel:
    """``model`` with ``server`` (not yet sized for a run): what its grid axes are.

    Returns ``model`` itself when there is no server and it needs none (the
    worker clock with time-outs or conditions gets `asgd`).

    Raises:
      ValueError: a server with a model that is not the worker clock.
    """
    if server is None:
        if not (isinstance(model, WorkerClock) and model.needs_events):
            return model
        server = asgd()
    if not isinstance(server, Server):
        raise ValueError(f"server must be a rule from asyncjax.servers, got {server!r}")
    if not isinstance(model, WorkerClock):
        raise ValueError(
            f"a server needs the worker clock (delay_model=asyncjax.delays.workers(...)); "
            f"{model.label} has no workers whose arrivals a server could order"
        )
    cd = model.conditions
    if cd is not None and cd.queues and (server.stops or server.idles):
        what = "stops workers" if server.stops else "keeps finished workers idle for a round"
        raise ValueError(
            f"assignment={cd.assignment!r} queues jobs, but {server.label} {what}, which "
            'needs one job per worker: use assignment="pure" with this rule'
        )
    return ServerClock(model, server)


def attach(
    model: DelayModel, server: Server | None, settings: dict[str, Any], steps: int
) -> DelayModel:
    """The delay model a run uses: ``model`` itself, or the event clock sized for the run.

    Args:
      model: the run's delay model.
      server: the rule, or None.
      settings: the run's swept values by name (the grid's or the call's).
      steps: the run's events.

    Raises:
      ValueError: as `with_server`, and a worker count or rule value refused.
    """
    out = with_server(model, server)
    if not isinstance(out, ServerClock):
        return out
    given = {"workers": settings["workers"]} if "workers" in settings else {}
    slots = int(np.max(resolve([out.clock], given, buffer=MAX_WORKERS)["workers"]))
    own = {h.name for h in hyperparameters(out.server)}
    srv_hp = resolve([out.server], {k: v for k, v in settings.items() if k in own}, buffer=slots)
    return replace(out, slots=slots, storage=out.server.storage(slots, srv_hp, steps))


def check_server_axes(problem: Any, server: Server | None) -> None:
    """Refuses a problem axis that a server axis would share (e.g. the saddle's ``batch``)."""
    if server is None:
        return
    clash = set(getattr(problem, "hp_names", ())) & {h.name for h in hyperparameters(server)}
    if clash:
        name = sorted(clash)[0]
        raise ValueError(
            f"the problem's grid axis {name!r} and {server.label}'s would share one value; "
            f"they mean different things, so this problem cannot run with this server"
        )
