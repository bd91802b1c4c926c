"""The worker model: staleness and wall-clock time from M workers on a virtual clock.

Every trajectory (or, without randomness, every grid point) carries each
worker's next finish time, the step at which it read, and one snapshot slot
per worker: the engine's ring is then M_max slots, one per worker, and
`WorkerClock.ring_io` says which slot a step reads and overwrites (the
finisher's: it re-reads at once). Grid axis ``workers`` (M, traced: one
compilation serves every M up to the run's slots).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._parts import REQUIRED, Hyper
from asyncjax._validate import (
    MAX_WORKERS,
    as_float_array,
    as_written,
    check_int,
    did_you_mean,
    py,
)
from asyncjax.delays.base import DelayModel, RingContext, RingIO
from asyncjax.delays.compute import COMPUTE_LAWS, law_values, normalise, per_worker, probe_size
from asyncjax.delays.conditions import Conditions
from asyncjax.delays.schedule import clock_summary, run_clock

# Worker i's first compute time is drawn at counter 2^32 − 1 − i of the delay stream, which no
# step k < 2^31 ever uses, so it is the same whatever the number of workers or steps.
_FIRST_DRAW_COUNTER = 0xFFFFFFFF


def check_worker_count(values: np.ndarray, name: str) -> None:
    """A number of workers: a positive integer."""
    bad = values[(values < 1) | (values != np.round(values))]
    if bad.size:
        raise ValueError(f"{name} must be a positive integer; got {as_written(bad.flat[0])!r}")


class ClockState(NamedTuple):
    """The virtual clock of one trajectory (or of one grid point, when its seeds share it).

    Times are kept relative to the current time (the finish time of the update
    just applied), so they never grow with the run and float32 keeps its
    precision on long runs; elapsed time is summed elsewhere.
    """

    finish: Any  # (M_max,) float: next finish time of each worker, minus now; inf if inactive. None: memoryless
    read_at: Any  # (M_max,) int32: the step whose read point the worker holds. None: not tracked
    rate: Any  # () float: summed speed of the active workers (their update rate)


@dataclass(frozen=True)
class WorkerClock(DelayModel):
    """M asynchronous workers on a virtual clock; build it with `workers`.

    Attributes:
      law: the law of the noise X, one of `COMPUTE_LAWS` (see `workers`).
      shape: σ of the lognormal law, k of the gamma law, α of the Pareto law.
      speeds: relative speed of each worker (a tuple, or a rule in the worker
        index i); None: all 1.
      straggler: worker 0 is this many times slower (1: no straggler).
      bins: staleness histogram bins (τ = 0 … bins − 2, and one bin for
        τ ≥ bins − 1); None: 8·M_max + 1.
      base: per-worker constant part of a job's time (a float, tuple or rule); None: 0.
      noise_scale: per-worker factor of the noise X; None: 1.
      timeouts: per-worker time-outs (MindFlayer); None: none. Used by a server
        (`asyncjax.servers`): a job longer than its time-out is abandoned.
      conditions: job assignment, communication, outages and measured traces
        (`asyncjax.delays.conditions.Conditions`); None: none. Only the event
        clock follows them (a run with any of them gets a server, `asgd` by default).
    """

    law: str = "exponential"
    shape: float = 1.0
    speeds: tuple[float, ...] | str | None = None
    straggler: float = 1.0
    bins: int | None = None
    base: tuple[float, ...] | float | str | None = None
    noise_scale: tuple[float, ...] | float | str | None = None
    timeouts: tuple[float, ...] | float | str | None = None
    conditions: Conditions | None = None

    name: ClassVar[str] = "workers"
    # axes an option adds, with what adds them (named when a grid sweeps one without it)
    optional_axes: ClassVar[dict[str, str]] = {
        "timeout_scale": "an axis of a clock with time-outs: set timeouts= in "
        "asyncjax.delays.workers, or timeouts in [delay]"
    }
    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        Hyper("workers", default=REQUIRED, check=check_worker_count, doc="M, the active workers"),
    )

    def __post_init__(self):
        if self.law not in COMPUTE_LAWS:
            raise ValueError(
                f"unknown compute-time law {self.law!r}{did_you_mean(self.law, COMPUTE_LAWS)}; "
                f"choose one of {', '.join(COMPUTE_LAWS)}"
            )
        shape = float(as_float_array("shape", self.shape, ndim=0))
        if self.law == "lognormal" and shape < 0:
            raise ValueError(f"the lognormal law needs shape (σ) >= 0; got {shape!r}")
        if self.law in ("gamma", "pareto") and shape <= 0:
            what = "k" if self.law == "gamma" else "α"
            raise ValueError(f"the {self.law} law needs shape ({what}) > 0; got {shape!r}")
        object.__setattr__(self, "shape", shape)
        for name in ("base", "noise_scale"):
            object.__setattr__(self, name, normalise(getattr(self, name), name))
        object.__setattr__(
            self, "timeouts", normalise(self.timeouts, "timeouts", allow_inf=True, positive=True)
        )
        if isinstance(self.speeds, str):
            probe = per_worker(self.speeds, 4096, "speeds")
            bad = np.flatnonzero(~((probe > 0) & np.isfinite(probe)))
            if bad.size:
                raise ValueError(
                    f"speeds must be positive; worker {int(bad[0])} gets {py(probe[bad[0]])!r}"
                )
        elif self.speeds is not None:
            sp = as_float_array("speeds", self.speeds, ndim=1)
            bad = np.flatnonzero(sp <= 0)
            if sp.size == 0 or bad.size:
                raise ValueError(
                    f"speeds must be positive; got speeds[{int(bad[0]) if bad.size else 0}] = "
                    f"{py(sp[bad[0]]) if bad.size else 'nothing'!r}"
                )
            object.__setattr__(self, "speeds", tuple(float(v) for v in sp))
        straggler = float(as_float_array("straggler", self.straggler, ndim=0))
        if straggler <= 0:
            raise ValueError(
                f"straggler (how many times slower worker 0 is) must be > 0; got {straggler!r}"
            )
        object.__setattr__(self, "straggler", straggler)
        if self.bins is not None:
            object.__setattr__(self, "bins", check_int(self.bins, "bins", minimum=2))
        if self.conditions is not None and not self.conditions.active:
            object.__setattr__(self, "conditions", None)  # the plain clock, compiled as before
        if self.conditions is not None and self.conditions.trace is not None:
            given = [
                n for n in ("speeds", "base", "noise_scale") if getattr(self, n) is not None
            ] + (["straggler"] if straggler != 1 else [])
            if given:
                raise ValueError(
                    f"a compute-time trace gives the times itself; drop {given[0]} (or scale "
                    "the trace)"
                )
        if self.base is not None or self.noise_scale is not None:
            base, scale = self.affine(min(probe_size(self.base), probe_size(self.noise_scale)))
            low = np.flatnonzero((base <= 0) & ((scale <= 0) | (self.law == "constant")))
            low = np.flatnonzero(base + scale <= 0) if self.law == "constant" else low
            if low.size:
                raise ValueError(
                    f"worker {int(low[0])}'s jobs would take no time (base "
                    f"{py(base[low[0]])!r}, noise_scale {py(scale[low[0]])!r}): every job must "
                    "take some time"
                )

    # ------------------------------------------------------------ static facts
    @property
    def shared(self) -> bool:
        """No randomness (constant times): all seeds of a grid point share one clock."""
        if self.conditions is None:
            return self.law == "constant"
        return not self.conditions.random(self.law != "constant")

    @property
    def memoryless(self) -> bool:
        """Exponential times alone: the next finisher and the time to it are drawn directly."""
        return (
            self.law == "exponential"
            and self.base is None
            and self.noise_scale is None
            and self.conditions is None
        )

    @property
    def needs_events(self) -> bool:
        """Time-outs or conditions: only the event clock follows them (a server, `asgd` by default)."""
        return self.timeouts is not None or self.conditions is not None

    def speed(self, slots: int) -> np.ndarray:
        """(slots,) speed of each worker, the straggler included."""
        s = np.ones(slots) if self.speeds is None else per_worker(self.speeds, slots, "speeds")
        s[0] /= self.straggler
        return s

    def affine(self, slots: int) -> tuple[np.ndarray, np.ndarray]:
        """(slots,) base and noise scale of each worker (0 and 1 when unset)."""
        base = np.zeros(slots) if self.base is None else per_worker(self.base, slots, "base")
        scale = (
            np.ones(slots)
            if self.noise_scale is None
            else per_worker(self.noise_scale, slots, "noise_scale")
        )
        return base, scale

    def timeout(self, slots: int) -> np.ndarray:
        """(slots,) each worker's time-out (inf: none)."""
        if self.timeouts is None:
            return np.full(slots, np.inf)
        return per_worker(self.timeouts, slots, "timeouts")

    def job_times(self, x: jax.Array, slots: int) -> jax.Array:
        """Compute times (base + scale · X) / speed of every worker for noise X ((slots,) or ())."""
        dtype = jnp.result_type(x)
        speed = jnp.asarray(self.speed(slots), dtype)
        if self.base is None and self.noise_scale is None:
            return x / speed
        base, scale = (jnp.asarray(a, dtype) for a in self.affine(slots))
        return (base + scale * x) / speed

    def n_bins(self, slots: int) -> int:
        return self.bins if self.bins is not None else 8 * slots + 1

    def check_values(self, values: dict[str, np.ndarray], *, buffer: int) -> dict:
        """Worker counts fit the run's worker slots (``buffer``) and the given speeds."""
        arr = values["workers"]
        big = arr[arr > buffer]
        if big.size and buffer >= MAX_WORKERS:
            raise ValueError(
                f"workers={int(big.flat[0]):,} is more than a run can simulate ({MAX_WORKERS:,}: "
                "the clock's worker indices are int32)"
            )
        if big.size:
            raise ValueError(
                f"workers={int(big.flat[0])} exceeds the {buffer} worker slots of the run "
                f"(buffer={buffer}); raise `buffer` or leave it unset"
            )
        for name in ("speeds", "base", "noise_scale", "timeouts"):
            given = getattr(self, name)
            if isinstance(given, tuple) and arr.size and arr.max() > len(given):
                raise ValueError(
                    f"workers={int(arr.max())} but {name} gives only {len(given)} workers"
                )
        if self.conditions is not None and arr.size:
            self.conditions.check_workers(int(arr.max()))
        return {"workers": arr}

    def buffer_for(self, values: Any = None) -> int:
        """The worker slots a run needs: the largest M (one compilation serves every M up to it)."""
        return int(np.max(self.check(values, buffer=MAX_WORKERS)))

    def state_bytes(self, buffer: int, itemsize: int) -> int:
        """The clock: each worker's end time (drawn times) and the step it read, and Σ speed."""
        finish = 0 if self.memoryless else buffer * itemsize
        return finish + 4 * buffer + itemsize

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "law": self.law,
            "shape": self.shape,
            "speeds": (
                self.speeds
                if self.speeds is None or isinstance(self.speeds, str)
                else list(self.speeds)
            ),
            "straggler": self.straggler,
            "bins": self.bins,
            **{
                k: getattr(self, k)
                for k in ("base", "noise_scale", "timeouts")
                if getattr(self, k) is not None
            },
            **({} if self.conditions is None else {"conditions": self.conditions.describe()}),
        }

    def trajectory_metrics(
        self, param: Any, seed: np.ndarray, *, steps: int, record_every: int, slots: int
    ) -> dict[str, np.ndarray]:
        """``wall_time`` at each record: the virtual time of the clock the trajectory followed."""
        clock = clock_summary(
            self, param, seed, steps=steps, record_every=record_every, slots=slots
        )
        return {"wall_time": clock["wall_time"][0, 0]}

    def sweep_outputs(
        self, grid: Any, seeds: np.ndarray, *, steps: int, record_every: int, slots: int
    ) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
        """The clock's records: ``wall_time`` and the staleness summary (see `clock_summary`).

        They depend on the worker count and the seed only, so their axes are
        those two of the grid's (in its order), plus ``step`` or ``staleness``.
        """
        ws = np.asarray(grid.values("workers", None), np.float64)
        out = clock_summary(self, ws, seeds, steps=steps, record_every=record_every, slots=slots)
        keep = tuple(d for d in grid.dims if d in ("workers", "seed"))

        def arrange(
            a: np.ndarray,
        ) -> np.ndarray:  # (U, S, ...) -> the grid's order of the kept axes
            if "seed" not in keep:
                a = a[:, 0]
            if "workers" not in keep:
                a = a[0]
            return np.swapaxes(a, 0, 1) if keep == ("seed", "workers") else a

        trail = {"wall_time": ("step",), "staleness_hist": ("staleness",)}
        return {k: (arrange(v), keep + trail.get(k, ())) for k, v in out.items()}

    # ------------------------------------------------------------ draws
    def _mean_one(self, key: jax.Array, ks: jax.Array, dtype: Any) -> jax.Array:
        """(b,) values X of the law for counters ``ks`` of one delay stream."""
        return law_values(self.law, self.shape, key, ks, 1, dtype)[:, 0]

    def step_draws(self, key: jax.Array, ks: jax.Array, dtype: Any) -> jax.Array:
        """Per-step draws of one seed's delay stream for steps ``ks`` ((b,) int32).

        Returns:
          (b, 2) uniforms (exponential: one picks the finisher, one the time
          to it) or (b,) mean-one compute times (the other laws).
        """
        if self.memoryless:
            return _rng.uniforms(key, ks, 2, dtype)
        return self._mean_one(key, ks, dtype)

    def first_draws(self, key: jax.Array, slots: int, dtype: Any) -> jax.Array:
        """(slots,) mean-one first compute times, worker i's at counter 2^32 − 1 − i."""
        ks = jnp.uint32(_FIRST_DRAW_COUNTER) - jnp.arange(slots, dtype=jnp.uint32)
        return self._mean_one(key, ks, dtype)

    # ------------------------------------------------------------ the clock (one unit, pure)
    def clock_init(
        self, m: jax.Array, first: jax.Array, *, slots: int, track: bool = True
    ) -> ClockState:
        """The clock before step 0: every active worker has read the start (read point 0).

        Args:
          m: () float, the number of active workers M ≤ slots (traced).
          first: (slots,) mean-one first compute times (`first_draws`).
          slots: M_max (static); workers i ≥ M never finish.
          track: keep ``read_at`` so that `clock_next` returns τ (the
            engine needs τ only for a mitigation; the clock needs it for nothing else).
        """
        dtype = first.dtype
        i = jnp.arange(slots, dtype=jnp.int32)
        active = i < m.astype(jnp.int32)
        speed = jnp.asarray(self.speed(slots), dtype)
        rate = jnp.sum(jnp.where(active, speed, jnp.zeros((), dtype)))
        finish = (
            None
            if self.memoryless
            else jnp.where(active, self.job_times(first, slots), jnp.asarray(jnp.inf, dtype))
        )
        read_at = jnp.zeros(slots, jnp.int32) if track else None
        return ClockState(finish, read_at, rate)

    def _pick(self, u: jax.Array, m: jax.Array, rate: jax.Array, slots: int) -> jax.Array:
        """The next finisher under exponential times: worker i with probability speed_i / Σ speed."""
        s = self.speed(slots)
        mi = m.astype(jnp.int32)
        if np.all(s == s[0]):
            return jnp.minimum(jnp.floor(u * m).astype(jnp.int32), mi - 1)
        if slots > 2 and np.all(s[1:] == s[1]) or slots == 2:  # one odd worker: worker 0
            p0 = jnp.asarray(s[0], u.dtype) / rate
            rest = jnp.floor(
                (u - p0) / jnp.maximum(1 - p0, jnp.finfo(u.dtype).tiny) * (m - 1)
            ).astype(jnp.int32)
            return jnp.where(u < p0, 0, 1 + jnp.clip(rest, 0, jnp.maximum(mi - 2, 0)))
        cum = jnp.asarray(np.cumsum(s), u.dtype)
        below = (cum <= u * rate) & (jnp.arange(slots, dtype=jnp.int32) < mi - 1)
        return jnp.sum(below, dtype=jnp.int32)

    def clock_next(
        self, state: ClockState, m: jax.Array, k: jax.Array, draw: Any, *, slots: int
    ) -> tuple[ClockState, jax.Array, Any, jax.Array]:
        """Applies step k: the earliest finisher's gradient, and that worker's next read.

        Ties go to the lowest worker index (round robin with equal constant
        times). The finisher re-reads at once: it will hold read point k + 1.

        Args:
          state: the clock.
          m: () float number of active workers.
          k: () int32 step.
          draw: this step's entry of `step_draws` (None for constant times).
          slots: M_max (static).

        Returns:
          ``(state, worker, tau, dt)``: the finisher (its snapshot slot), its
          staleness τ_k = k − (step it read) (None if not tracked), and the time
          since the previous update.
        """
        if self.memoryless:
            u_pick, u_time = draw[0], draw[1]
            w = self._pick(u_pick, m, state.rate, slots)
            dt = -jnp.log1p(-u_time) / state.rate
            tau, read_at = None, state.read_at
            if read_at is not None:
                tau = k - read_at[w]
                read_at = read_at.at[w].set(k + 1)
            return ClockState(None, read_at, state.rate), w, tau, dt
        f = state.finish
        i = jnp.arange(slots, dtype=jnp.int32)
        t = jnp.min(f)
        w = jnp.min(jnp.where(f == t, i, slots))  # lowest index among the earliest
        hit = i == w
        e = jnp.ones((), f.dtype) if draw is None else draw
        f = jnp.where(hit, t + self.job_times(e, slots), f) - t
        tau, read_at = None, state.read_at
        if read_at is not None:
            tau = k - jnp.sum(jnp.where(hit, read_at, 0), dtype=jnp.int32)
            read_at = jnp.where(hit, k + 1, read_at)
        return ClockState(f, read_at, state.rate), w, tau, t

    def batched(
        self, m: jax.Array, keys: jax.Array, slots: int, dtype: Any, *, track: bool
    ) -> tuple[ClockState, Callable, Callable]:
        """The clocks of (U,) worker counts × (S,) seeds, as the engine and `clock_summary` run them.

        Args:
          m: (U,) worker counts.
          keys: (S,) the seeds' delay-stream keys.
          slots: M_max (static).
          dtype: float dtype of times and draws.
          track: also track each worker's read step (the staleness τ_k).

        Returns:
          ``(clock0, step, draws)``: the initial clocks, with leading axes (U,)
          when shared by the seeds (`shared`), else (U, S);
          ``step(clock, m, k, d) -> (clock, worker, tau, dt)`` vmapped alike;
          ``draws(ks)``: (blk, S, ...) per-step draws for steps ``ks`` (None when shared).
        """
        if self.shared:  # no randomness: one clock per worker count
            clock0 = jax.vmap(
                lambda mm: self.clock_init(mm, jnp.ones(slots, dtype), slots=slots, track=track)
            )(m)
            step = jax.vmap(
                lambda c, mm, k, d: self.clock_next(c, mm, k, None, slots=slots), (0, 0, None, None)
            )
            return clock0, step, lambda ks: None
        first = jax.vmap(lambda kk: self.first_draws(kk, slots, dtype))(keys)  # (S, slots)
        init1 = partial(self.clock_init, slots=slots, track=track)
        clock0 = jax.vmap(jax.vmap(init1, (None, 0)), (0, None))(m, first)
        step = jax.vmap(
            jax.vmap(partial(self.clock_next, slots=slots), (0, None, None, 0)), (0, 0, None, None)
        )
        return (
            clock0,
            step,
            lambda ks: jax.vmap(lambda kk: self.step_draws(kk, ks, dtype), out_axes=1)(keys),
        )

    # ------------------------------------------------------------ the protocol
    def ring_io(self, ctx: RingContext) -> RingIO:
        """Snapshot slots driven by the clock.

        The carry is ``(slots, clock)``: ``slots`` has leaves (H, L, S, *leaf),
        one snapshot per worker (L = M_max); the clock has leading axes (H,)
        when it is shared by the seeds of a point (no randomness), else (H, S).
        """
        L, m = ctx.buffer, ctx.param
        h_idx = jnp.arange(ctx.n_hyper)
        s_idx = jnp.arange(ctx.n_seeds)
        # the same batched clocks as clock_summary runs, so the recorded schedule is this one
        clock0, step_clock, draws = self.batched(m, ctx.keys, L, ctx.dtype, track=ctx.track)

        def read(carry, k, d):
            slots, clock = carry
            clock, w, tau, _ = step_clock(clock, m, k, d)
            if self.shared:  # w (H,): one slab per point
                stale = jax.tree.map(lambda r: r[h_idx, w], slots)
                tau = None if tau is None else tau[:, None]
            else:  # w (H, S)
                stale = jax.tree.map(lambda r: r[h_idx[:, None], w, s_idx[None, :]], slots)
            return stale, tau, (clock, w)

        def write(carry, ctx_, new, k):  # the finisher re-reads: its slot gets the new read point
            slots, _ = carry
            clock, w = ctx_
            if self.shared:
                slots = jax.tree.map(lambda r, n: r.at[h_idx, w].set(n), slots, new)
            else:
                slots = jax.tree.map(
                    lambda r, n: r.at[h_idx[:, None], w, s_idx[None, :]].set(n), slots, new
                )
            return slots, clock

        def worker(ctx_):  # the finisher: (H,) when its point's seeds share the clock
            _, w = ctx_
            w = w[:, None] if self.shared else w
            return jnp.broadcast_to(w, (ctx.n_hyper, ctx.n_seeds))

        return RingIO(lambda ring: (ring, clock0), draws, read, write, worker=worker)

    def delay_stream(self, param: Any, seed: int, steps: int, buffer: int) -> np.ndarray:
        """τ_k of M = ``param`` workers (``buffer`` is ignored: the clock does not depend on it)."""
        return worker_schedule(self, int(param), seed, steps)["staleness"]


def workers(
    law: str = "exponential",
    *,
    shape: float = 1.0,
    speeds: Any = None,
    straggler: float = 1.0,
    bins: int | None = None,
    base: Any = None,
    noise_scale: Any = None,
    timeouts: Any = None,
    assignment: str = "pure",
    download: Any = None,
    upload: Any = None,
    comm_law: str = "constant",
    comm_shape: float = 1.0,
    uptime: Any = None,
    downtime: Any = None,
    outage_law: str = "exponential",
    outage_shape: float = 1.0,
    outage_mode: str = "paused",
    trace: Any = None,
) -> WorkerClock:
    """The worker model: staleness and wall-clock time from M workers on a virtual clock.

    Each of M workers reads the parameters, computes for a random time, and
    pushes a gradient evaluated at what it read. Every step of the engine
    applies the gradient of the earliest finisher; that worker then reads the
    new parameters and draws its next compute time from the trajectory's delay
    stream. The staleness of step k is the number of updates applied since its
    worker read. Grid axis ``workers`` (M, traced: one compilation serves every
    M up to the run's ``buffer``, its worker slots).

    * Constant times, equal speeds: round robin (ties go to the lowest index),
      τ = M − 1 from step M − 1 on, bit-identical to ``delay_model="constant"``
      with τ = M − 1. Constant times have no randomness, so the seeds of a grid
      point share one clock and the engine reads their stale points as one slab.
    * Exponential times: by memorylessness the next finisher is worker i with
      probability speed_i / Σ speed and the time to it is Exp(Σ speed),
      independent of the past; the clock draws both directly (exact in law).
      With equal speeds, P(τ = l) = (1/M)(1 − 1/M)^l (Mitliagkas et al. 2016).
    * Other laws, and any ``base`` or ``noise_scale``: the clock keeps every
      worker's finish time.

    Compute times as the papers model them: worker i's job takes
    (base_i + noise_scale_i · X) / speed_i, X drawn fresh per job from ``law``.
    ``base``, ``noise_scale``, ``speeds`` and ``timeouts`` are each a number,
    a list (entry i for worker i) or a rule in the worker index i = 0, 1, …
    built from numbers, + − * / ** and sqrt, log, exp, abs. The Ringmaster
    paper's 1 + √i + √(i+1)·|z| is
    ``workers("halfnormal", base="1 + sqrt(i)", noise_scale="sqrt(i + 1)")``;
    Tyurin & Richtárik's fixed times τ_i = √i (i = 1 … n) are
    ``workers("constant", base="sqrt(i + 1)", noise_scale=0)``.

    Whatever the law, speeds or stragglers, the mean staleness over K steps is
    M − 1 − A_K/K, where A_K ≥ 0 sums the ages of the M reads outstanding at
    the end: each step ages the M − 1 waiting reads by one and retires the
    finisher's, so Σ τ_k = (M − 1)K − A_K. A straggler fattens the tail (its own
    updates are about ``straggler``·(M − 1) old) but, by the same count, the
    fast workers' updates get fresher: the mean stays M − 1.

    Args:
      law: the law of X: ``"constant"`` (1), ``"exponential"``, ``"lognormal"``,
        ``"gamma"`` (these three of mean 1, so that time is in mean compute
        times), ``"halfnormal"`` (|Z|) or ``"pareto"`` (P(X > x) = (1 + x)^−α).
      shape: σ of the lognormal (X = exp(σZ − σ²/2)), k of the gamma
        (Gamma(k, 1/k)), α of the Pareto; ignored by the other laws.
      speeds: relative speed of each worker; default all 1.
      straggler: worker 0 is this many times slower than its speed says.
      bins: staleness-histogram bins of a sweep (default 8·M_max + 1).
      base: per-worker constant part of a job's time (default 0).
      noise_scale: per-worker factor of X (default 1).
      timeouts: per-worker time-outs (MindFlayer SGD; default none): with a
        server (`asyncjax.servers`), a job that would run longer is abandoned
        at its time-out and the worker restarts at the current point. Grid
        axis ``timeout_scale`` multiplies them (default 1).
      assignment: who computes the job handed out after each event (AsGrad):
        ``"pure"`` (default: the worker that delivered), ``"random"`` (a
        uniformly random worker; workers queue their jobs and work them in
        order) or ``"shuffle"`` (a fresh random permutation of the workers
        every M jobs). A job's gradient is computed at the point read when it
        was assigned.
      download, upload: per-worker communication times before and after each
        job: ``scale_j · X``, X of ``comm_law`` (default ``"constant"``: X = 1)
        with shape ``comm_shape``. Default none.
      uptime, downtime: per-worker mean up and down periods (outages): each
        worker alternates them, lengths mean · X with X of ``outage_law``
        (``"exponential"`` by default; ``"constant"``, ``"lognormal"`` or
        ``"gamma"``, all of mean one, shape ``outage_shape``). A job in
        flight when its worker goes down is ``outage_mode="paused"`` (resumes)
        or ``"lost"`` (redone, with a new time, when the worker comes back).
      trace: measured compute times, (jobs, workers): an array, or the path of
        a .npy or CSV file (one row per job, one column per worker); worker
        j's c-th job computes for ``trace[c mod T, j]`` (it cycles). It
        replaces ``law``, ``speeds``, ``base`` and ``noise_scale``. Any of
        ``assignment`` (other than ``"pure"``) through ``trace`` makes the run
        follow the event clock with a server (`asyncjax.servers.asgd` unless
        one is given); see `asyncjax.delays.conditions` for the details.

    Example::

        aj.sweep(pca, aj.Grid(workers=[1, 2, 4, 8, 16], lr=5e-4, momentum=0.5, seed=range(50)),
                 delay_model=aj.delays.workers("exponential"), steps=20_000, record_every=500)
    """
    return WorkerClock(
        law=law,
        shape=shape,
        speeds=speeds,
        straggler=straggler,
        bins=bins,
        base=base,
        noise_scale=noise_scale,
        timeouts=timeouts,
        conditions=Conditions(
            assignment=assignment,
            download=download,
            upload=upload,
            comm_law=comm_law,
            comm_shape=comm_shape,
            uptime=uptime,
            downtime=downtime,
            outage_law=outage_law,
            outage_shape=outage_shape,
            outage_mode=outage_mode,
            trace=trace,
        ),
    )


def worker_schedule(
    model: WorkerClock | str, workers: int, seed: Any, steps: int
) -> dict[str, np.ndarray]:
    """The clock of one trajectory, update by update (to replay it outside JAX).

    Args:
      model: the worker model (or ``"workers"``).
      workers: M.
      seed: one integer seed, or a 1-D list of them.
      steps: updates.

    Returns:
      ``worker``: whose gradient step k applies; ``staleness``: τ_k;
      ``time``: the virtual time of update k (float64). Each (steps,), or
      (S, steps) for a list of seeds.
    """
    if model == "workers":
        model = WorkerClock()  # exponential times, as get_delay_model("workers")
    if not isinstance(model, WorkerClock):
        got = model if isinstance(model, str) else getattr(model, "name", model)
        raise ValueError(f"worker_schedule needs the worker model, got {got!r}")
    if model.conditions is not None:
        raise ValueError(
            "the worker's conditions (assignment, communication, outages, a trace) run on the "
            "event clock: use asyncjax.servers.schedule for their event log"
        )
    ws = model.check(np.atleast_1d(workers), buffer=MAX_WORKERS)
    if ws.size != 1:
        raise ValueError(f"worker_schedule runs one worker count, got {workers!r}")
    steps = check_int(steps, "steps", minimum=1)
    seeds = np.asarray(seed)
    if seeds.dtype.kind not in "iu" or seeds.ndim > 1:
        raise ValueError(f"seed must be an integer or a 1-D list of them, got {seed!r}")
    out = run_clock(model, ws, np.atleast_1d(seeds), steps, steps, int(ws[0]), per_step=True)
    res = {
        "worker": out["_worker"][0].astype(np.int64),
        "staleness": out["_staleness"][0].astype(np.int64),
        "time": np.cumsum(out["_dt"][0].astype(np.float64), axis=-1),
    }
    return {k: v[0] for k, v in res.items()} if seeds.ndim == 0 else res
