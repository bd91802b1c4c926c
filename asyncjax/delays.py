"""Delay (staleness) models: how many updates old the iterate is that a gradient reads.

A model has one swept parameter (a grid axis, traced) and maps a uniform random
number u ∈ [0, 1) to a staleness τ_k by inverse CDF. The uniform comes from the
trajectory's seed alone, so grid points that share a seed share their delay
sequence as well as their data (common random numbers).

========== ============ =====================================================
model      axis          staleness τ_k
========== ============ =====================================================
constant   ``delay``     τ (the paper's experiment)
uniform    ``max_delay`` uniform on {0, …, τ_max}
geometric  ``workers``   P(τ = l) = (1/M)(1 − 1/M)^l, the queuing model of
                         Mitliagkas et al. (2016) with M workers; mean M − 1
workers    ``workers``   emerges from M workers on a virtual clock (:func:`workers`):
                         each step applies the earliest finisher's gradient
trace      (none)        a user-supplied sequence, e.g. measured on a cluster
                         (:func:`trace`)
========== ============ =====================================================

The first three are stateless laws: the engine keeps a ring of the last
``buffer`` read points and reads the one τ_k steps old. The worker model is
*stateful* (``DelayModel.stateful``): every trajectory carries each worker's
next finish time, the step at which it read, and one snapshot slot per worker
(the engine's ``buffer`` is then the number of slots, M_max), and its
``clock_init`` / ``clock_next`` say which slot a step reads and overwrites.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._validate import as_float_array, check_delay, check_int, py

__all__ = [
    "DelayModel",
    "WorkerClock",
    "TraceDelay",
    "ClockState",
    "workers",
    "trace",
    "get_delay_model",
    "DELAY_MODELS",
    "COMPUTE_LAWS",
    "simulate_worker_staleness",
    "clock_summary",
    "worker_schedule",
]


@dataclass(frozen=True)
class DelayModel:
    """A staleness law with one swept parameter.

    Attributes:
      name: model name, e.g. ``"constant"``.
      axis: the grid axis that carries the parameter, e.g. ``"delay"``.
      random: whether τ_k is random (needs a uniform draw per step).
    """

    name: str
    axis: str | None
    random: bool

    stateful: ClassVar[bool] = False  # carries a clock: see WorkerClock

    def operands(self, dtype: Any) -> Any:
        """Arrays the jitted engine receives for this model (None for the laws)."""
        return None

    def check_run(self, seeds: np.ndarray, steps: int) -> None:
        """Validates the seeds and the number of steps of a run (before any compile)."""

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings, enough to rebuild the model."""
        return {"name": self.name}

    def sweep_outputs(
        self, grid: Any, seeds: np.ndarray, *, steps: int, record_every: int, slots: int
    ) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
        """Variables a sweep records besides the engine's: name -> (array, axis names)."""
        return {}

    def check(self, values: Any, buffer: int) -> np.ndarray:
        """Validates parameter values for a buffer of ``buffer`` iterates."""
        if self.name in ("constant", "uniform"):
            return check_delay(values, buffer=buffer, name=self.axis)
        workers = as_float_array(self.axis, values)
        bad = workers[workers < 1]
        if bad.size:
            raise ValueError(f"workers must be >= 1; got {py(bad.flat[0])!r}")
        bad = workers[workers != np.round(workers)]
        if bad.size:
            raise ValueError(f"workers must be a whole number of workers; got {py(bad.flat[0])!r}")
        return workers

    def buffer_for(self, values: Any, tail: float = 1e-6) -> int:
        """Smallest buffer that holds every delay (for random laws: all but a ``tail`` mass)."""
        top = float(np.max(self.check(values, buffer=2**31)))
        if self.name != "geometric":
            return int(top) + 1
        if top <= 1:
            return 1
        return int(math.ceil(math.log(tail) / math.log1p(-1.0 / top))) + 1

    def staleness(self, param: jax.Array, u: jax.Array | None, buffer: int) -> jax.Array:
        """τ_k as an int32, clipped to the buffer (pure; traced)."""
        if self.name == "constant":
            tau = param
        elif self.name == "uniform":
            tau = jnp.floor(u * (param + 1.0))
        else:  # geometric: inverse CDF of P(τ >= l) = (1 - 1/M)^l
            p_stay = 1.0 - 1.0 / param
            safe = jnp.where(p_stay > 0, p_stay, 0.5)
            tau = jnp.where(p_stay > 0, jnp.floor(jnp.log1p(-u) / jnp.log(safe)), 0.0)
        return jnp.clip(tau, 0, buffer - 1).astype(jnp.int32)


COMPUTE_LAWS = ("constant", "exponential", "lognormal", "gamma")

# Worker i's first compute time is drawn at counter 2^32 − 1 − i of the delay stream, which no
# step k < 2^31 ever uses, so it is the same whatever the number of workers or steps.
_FIRST_DRAW_COUNTER = 0xFFFFFFFF


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
    """M asynchronous workers on a virtual clock; build it with :func:`workers`.

    Attributes:
      law: compute-time law, one of :data:`COMPUTE_LAWS`; every law has mean 1.
      shape: σ of the lognormal law, k of the gamma law (ignored otherwise).
      speeds: relative speed of each worker (worker i's times are divided by
        speeds[i]); None: all 1.
      straggler: worker 0 is this many times slower (1: no straggler).
      bins: staleness histogram bins (τ = 0 … bins − 2, and one bin for
        τ ≥ bins − 1); None: 8·M_max + 1.
    """

    law: str = "exponential"
    shape: float = 1.0
    speeds: tuple[float, ...] | None = None
    straggler: float = 1.0
    bins: int | None = None

    stateful: ClassVar[bool] = True

    def __post_init__(self):
        if self.law not in COMPUTE_LAWS:
            raise ValueError(
                f"unknown compute-time law {self.law!r}; choose one of {', '.join(COMPUTE_LAWS)}"
            )
        shape = float(as_float_array("shape", self.shape, ndim=0))
        if self.law == "lognormal" and shape < 0:
            raise ValueError(f"the lognormal law needs shape (σ) >= 0; got {shape!r}")
        if self.law == "gamma" and shape <= 0:
            raise ValueError(f"the gamma law needs shape (k) > 0; got {shape!r}")
        object.__setattr__(self, "shape", shape)
        if self.speeds is not None:
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

    # ------------------------------------------------------------ static facts
    @property
    def shared(self) -> bool:
        """No randomness (constant times): all seeds of a grid point share one clock."""
        return self.law == "constant"

    @property
    def memoryless(self) -> bool:
        """Exponential times: the next finisher and the time to it are drawn directly."""
        return self.law == "exponential"

    def speed(self, slots: int) -> np.ndarray:
        """(slots,) speed of each worker, the straggler included."""
        s = (
            np.ones(slots)
            if self.speeds is None
            else np.asarray(self.speeds[:slots], np.float64).copy()
        )
        if s.size < slots:
            raise ValueError(f"speeds gives {s.size} workers but the run has {slots} worker slots")
        s[0] /= self.straggler
        return s

    def n_bins(self, slots: int) -> int:
        return self.bins if self.bins is not None else 8 * slots + 1

    def check(self, values: Any, buffer: int) -> np.ndarray:
        """Worker counts are integers in [1, buffer] (buffer = the run's worker slots)."""
        arr = as_float_array("workers", values)
        bad = arr[(arr < 1) | (arr != np.round(arr))]
        if bad.size:
            raise ValueError(f"workers must be a positive integer; got {py(bad.flat[0])!r}")
        big = arr[arr > buffer]
        if big.size:
            raise ValueError(
                f"workers={int(big.flat[0])} exceeds the {buffer} worker slots of the run "
                f"(buffer={buffer}); raise `buffer` or leave it unset"
            )
        if self.speeds is not None and arr.size and arr.max() > len(self.speeds):
            raise ValueError(
                f"workers={int(arr.max())} but speeds gives only {len(self.speeds)} workers"
            )
        return arr.astype(np.int64)

    def buffer_for(self, values: Any, tail: float = 1e-6) -> int:
        """The worker slots a run needs: the largest M (one compilation serves every M up to it)."""
        return int(np.max(self.check(values, buffer=2**31)))

    def staleness(self, param: jax.Array, u: jax.Array | None, buffer: int) -> jax.Array:
        raise TypeError(
            "the worker model's staleness emerges from its clock; use clock_next or worker_schedule"
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "law": self.law,
            "shape": self.shape,
            "speeds": None if self.speeds is None else list(self.speeds),
            "straggler": self.straggler,
            "bins": self.bins,
        }

    def sweep_outputs(
        self, grid: Any, seeds: np.ndarray, *, steps: int, record_every: int, slots: int
    ) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
        """The clock's records: ``wall_time`` and the staleness summary (see :func:`clock_summary`).

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
        """(b,) compute times of mean 1 for counters ``ks`` of one delay stream."""
        if self.law == "constant":
            return jnp.ones(ks.shape, dtype)
        if self.law == "exponential":
            return -jnp.log1p(-_rng.uniforms(key, ks, 1, dtype)[:, 0])
        if self.law == "lognormal":
            z = _rng.normals(key, ks, 1, dtype)[:, 0]
            return jnp.exp(self.shape * z - 0.5 * self.shape**2)
        # gamma(k, 1/k): a Threefry key per counter, then JAX's exact gamma sampler
        keys = jax.random.wrap_key_data(_rng.words(key, ks, 2), impl="threefry2x32")
        return jax.vmap(lambda kk: jax.random.gamma(kk, self.shape, dtype=dtype))(keys) / self.shape

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
          first: (slots,) mean-one first compute times (:meth:`first_draws`).
          slots: M_max (static); workers i ≥ M never finish.
          track: keep ``read_at`` so that :meth:`clock_next` returns τ (the
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
            else jnp.where(active, first / speed, jnp.asarray(jnp.inf, dtype))
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
          draw: this step's entry of :meth:`step_draws` (None for constant times).
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
        speed = jnp.asarray(self.speed(slots), f.dtype)
        f = jnp.where(hit, t + e / speed, f) - t
        tau, read_at = None, state.read_at
        if read_at is not None:
            tau = k - jnp.sum(jnp.where(hit, read_at, 0), dtype=jnp.int32)
            read_at = jnp.where(hit, k + 1, read_at)
        return ClockState(f, read_at, state.rate), w, tau, t

    def batched(
        self, m: jax.Array, keys: jax.Array, slots: int, dtype: Any, *, track: bool
    ) -> tuple[ClockState, Callable, Callable]:
        """The clocks of (U,) worker counts × (S,) seeds, as the engine and :func:`clock_summary` run them.

        Args:
          m: (U,) worker counts.
          keys: (S,) the seeds' delay-stream keys.
          slots: M_max (static).
          dtype: float dtype of times and draws.
          track: also track each worker's read step (the staleness τ_k).

        Returns:
          ``(clock0, step, draws)``: the initial clocks, with leading axes (U,)
          when shared by the seeds (:attr:`shared`), else (U, S);
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


@dataclass(frozen=True)
class TraceDelay(DelayModel):
    """A user-supplied staleness sequence; build it with :func:`trace`.

    Two traces of the same shape share compiled code (the values are an
    operand of the engine, not part of its static configuration).
    """

    rows: int = 1
    length: int = 1
    repeat: bool = False
    max_delay: int = field(default=0, compare=False)
    digest: str = field(default="", compare=False)
    values: Any = field(default=None, compare=False, repr=False)  # (rows, length) int64

    def check(self, values: Any, buffer: int) -> np.ndarray:
        """Every entry of the trace fits the delay buffer (the grid has no delay axis)."""
        over = np.argwhere(self.values > buffer - 1)
        if over.size:
            r, c = (int(v) for v in over[0])
            raise ValueError(
                f"{self._where(r, c)} = {int(self.values[r, c])} does not fit the delay buffer of "
                f"{buffer} iterates (largest delay it holds: {buffer - 1}); raise `buffer`"
            )
        return np.zeros(1, np.int64)

    def _where(self, r: int, c: int) -> str:
        return f"trace[{c}]" if self.rows == 1 else f"trace[{r}, {c}] (row {r}: seed {r})"

    def buffer_for(self, values: Any = None, tail: float = 1e-6) -> int:
        return self.max_delay + 1

    def check_run(self, seeds: np.ndarray, steps: int) -> None:
        if self.rows > 1 and seeds.size and seeds.max() >= self.rows:
            raise ValueError(
                f"seed {int(seeds.max())} has no row in the trace, which holds {self.rows} rows "
                f"(one per seed 0..{self.rows - 1})"
            )
        if not self.repeat and self.length < steps:
            raise ValueError(
                f"the trace holds {self.length} steps but the run takes {steps}; pass "
                "repeat=True to cycle it"
            )

    def operands(self, dtype: Any) -> jax.Array:
        return jnp.asarray(self.values, jnp.int32)

    def staleness(self, param: Any, u: jax.Array | None, buffer: int) -> jax.Array:
        """τ_k is the trace entry itself (``u`` holds it)."""
        return jnp.asarray(u, jnp.int32)

    def taus(self, dops: jax.Array, seeds: jax.Array, ks: jax.Array) -> jax.Array:
        """τ of steps ``ks`` ((b,)): (b,) if one row serves every seed, else (b, S) by seed."""
        idx = ks % self.length if self.repeat else ks
        if self.rows == 1:
            return dops[0, idx]
        return dops[seeds[None, :], idx[:, None]]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "length": self.length,
            "repeat": self.repeat,
            "max_delay": self.max_delay,
            "sha256": self.digest,
        }

    def sweep_outputs(
        self, grid: Any, seeds: np.ndarray, *, steps: int, record_every: int, slots: int
    ) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
        """The trace itself (``delay_trace``, (rows, length)), so the saved sweep can be redone."""
        small = np.min_scalar_type(self.max_delay)
        return {"delay_trace": (self.values.astype(small), ("trace_row", "trace_step"))}


def workers(
    law: str = "exponential",
    *,
    shape: float = 1.0,
    speeds: Any = None,
    straggler: float = 1.0,
    bins: int | None = None,
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
    * Lognormal and gamma times: the clock keeps every worker's finish time.

    Whatever the law, speeds or stragglers, the mean staleness over K steps is
    M − 1 − A_K/K, where A_K ≥ 0 sums the ages of the M reads outstanding at
    the end: each step ages the M − 1 waiting reads by one and retires the
    finisher's, so Σ τ_k = (M − 1)K − A_K. A straggler fattens the tail (its own
    updates are about ``straggler``·(M − 1) old) but, by the same count, the
    fast workers' updates get fresher: the mean stays M − 1.

    Args:
      law: ``"constant"``, ``"exponential"``, ``"lognormal"`` or ``"gamma"``;
        every law has mean 1 (before speeds), so time is in mean compute times.
      shape: σ of the lognormal (times exp(σZ − σ²/2)), k of the gamma
        (Gamma(k, 1/k)); ignored by the other laws.
      speeds: (M_max,) relative speed of each worker; default all 1.
      straggler: worker 0 is this many times slower than its speed says.
      bins: staleness-histogram bins of a sweep (default 8·M_max + 1).

    Example::

        aj.sweep(pca, aj.Grid(workers=[1, 2, 4, 8, 16], lr=5e-4, momentum=0.5, seed=range(50)),
                 delay_model=aj.delays.workers("exponential"), steps=20_000, record_every=500)
    """
    return WorkerClock(
        "workers",
        "workers",
        True,
        law=law,
        shape=shape,
        speeds=speeds,
        straggler=straggler,
        bins=bins,
    )


def trace(values: Any, *, repeat: bool = False) -> TraceDelay:
    """A measured staleness sequence, e.g. from a real cluster.

    Args:
      values: (T,) one sequence for every trajectory; (R, T) one row per seed
        (seed s reads row s); or a path to a ``.npy`` file, or a ``.csv`` file
        with one row per line (a single row or a single column is one
        sequence). Entries are non-negative integers; step k of a run uses
        entry k.
      repeat: cycle the sequence when a run is longer than it (otherwise such a
        run is refused).

    The delay buffer defaults to the largest entry + 1; a trace that does not
    fit a given buffer, or holds a negative or fractional entry, is refused
    before anything is compiled, naming the entry.
    """
    source = None
    if isinstance(values, (str, Path)):
        source = Path(values)
        if not source.exists():
            raise ValueError(f"trace file {source} does not exist")
        if source.suffix == ".npy":
            values = np.load(source, allow_pickle=False)
        elif source.suffix == ".csv":
            try:
                values = np.loadtxt(source, delimiter=",", ndmin=2)
            except ValueError as err:
                raise ValueError(f"cannot read trace file {source}: {err}") from None
            if 1 in values.shape:
                values = values.reshape(-1)
        else:
            raise ValueError(f"trace file {source} must be .npy or .csv")
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.ndim not in (1, 2) or arr.size == 0:
        raise ValueError(
            f"a trace is a non-empty 1-D or 2-D array of integers, got "
            f"{'dtype ' + str(arr.dtype) if arr.dtype.kind not in 'iuf' else 'shape ' + str(arr.shape)}"
        )
    arr = as_float_array("trace", arr)
    arr2 = arr.reshape(1, -1) if arr.ndim == 1 else arr
    where = (lambda r, c: f"trace[{c}]") if arr.ndim == 1 else (lambda r, c: f"trace[{r}, {c}]")
    for bad, what in ((arr2 < 0, "is negative"), (arr2 != np.round(arr2), "is not an integer")):
        hit = np.argwhere(bad)
        if hit.size:
            r, c = (int(v) for v in hit[0])
            raise ValueError(
                f"{where(r, c)} = {py(arr2[r, c])!r} {what}; a trace holds staleness values "
                "(non-negative integers)"
            )
    ints = arr2.astype(np.int64)
    digest = hashlib.sha256(
        np.ascontiguousarray(ints).tobytes() + str(ints.shape).encode()
    ).hexdigest()[:16]
    return TraceDelay(
        "trace",
        None,
        False,
        rows=int(ints.shape[0]),
        length=int(ints.shape[1]),
        repeat=bool(repeat),
        max_delay=int(ints.max()),
        digest=digest,
        values=ints,
    )


DELAY_MODELS = {
    "constant": DelayModel("constant", "delay", random=False),
    "uniform": DelayModel("uniform", "max_delay", random=True),
    "geometric": DelayModel("geometric", "workers", random=True),
    "workers": workers(),
}


def get_delay_model(name: str | DelayModel) -> DelayModel:
    """A delay model by name (``"workers"``: exponential times; :func:`workers` for the options)."""
    if isinstance(name, DelayModel):
        return name
    if name == "trace":
        raise ValueError(
            "the trace delay model needs its values: pass asyncjax.delays.trace(values_or_file)"
        )
    try:
        return DELAY_MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown delay model {name!r}; choose one of {sorted(DELAY_MODELS)} "
            "or pass asyncjax.delays.trace(...)"
        ) from None


# ---------------------------------------------------------------- the clock alone
_CLOCK_BLOCK_BYTES = 1 << 24


@lru_cache(maxsize=32)
def _clock_pass(
    model: WorkerClock,
    slots: int,
    steps: int,
    record_every: int,
    per_step: bool,
    devices: tuple = (),
):
    """Compiled clock-only scan over (U,) worker counts × (S,) seeds (see :func:`clock_summary`).

    With several ``devices`` the seeds are split over them (S a multiple of their number).
    """
    bins = model.n_bins(slots)
    n_rec = steps // record_every

    def run(m: jax.Array, seeds: jax.Array):
        dtype = jnp.result_type(float)
        (n_u,), (n_s,) = m.shape, seeds.shape
        keys = _rng.stream_keys(seeds, _rng.DELAY_STREAM)
        st, nxt, draws = model.batched(m, keys, slots, dtype, track=True)  # the histogram needs τ
        units = (n_u,) if model.shared else (n_u, n_s)
        draw_bytes = n_s * 2 * jnp.dtype(dtype).itemsize
        cap = max(1, _CLOCK_BLOCK_BYTES // draw_bytes)
        block = max(b for b in range(1, min(record_every, cap) + 1) if record_every % b == 0)
        zeros_f = jnp.zeros(units, dtype)

        def one_step(c, inp):
            st_, total, comp, tmax = c
            k, d = inp
            st_, w, tau, dt = nxt(st_, m, k, d)
            y = dt - comp  # Kahan: the time since the last record, compensated
            t = total + y
            comp = (t - total) - y
            tmax = jnp.maximum(tmax, tau)
            out = (tau, w, dt) if per_step else (tau,)
            return (st_, t, comp, tmax), out

        def block_fn(c, k0):
            (st_, total, comp, tmax), hist = c
            ks = k0 + jnp.arange(block, dtype=jnp.int32)
            d = draws(ks)
            (st_, total, comp, tmax), out = jax.lax.scan(
                one_step, (st_, total, comp, tmax), (ks, d)
            )
            tau = jnp.clip(out[0], 0, bins - 1)  # (block, *units)
            idx = tuple(
                jnp.arange(n)[(None,) * (1 + a) + (slice(None),) + (None,) * (len(units) - a - 1)]
                for a, n in enumerate(units)
            )
            hist = hist.at[idx + (tau,)].add(1)
            return ((st_, total, comp, tmax), hist), out if per_step else None

        def record_fn(c, k0):
            (st_, _, _, tmax), hist = c
            starts = k0 + block * jnp.arange(record_every // block, dtype=jnp.int32)
            ((st_, total, comp, tmax), hist), out = jax.lax.scan(
                block_fn, ((st_, zeros_f, zeros_f, tmax), hist), starts
            )
            return ((st_, total, comp, tmax), hist), (total, comp, out)

        c0 = (
            (st, zeros_f, zeros_f, jnp.zeros(units, jnp.int32)),
            jnp.zeros(units + (bins,), jnp.int32),
        )
        starts = record_every * jnp.arange(n_rec, dtype=jnp.int32)
        ((st, _, _, tmax), hist), (total, comp, out) = jax.lax.scan(record_fn, c0, starts)
        res = {
            "elapsed": total,
            "elapsed_comp": comp,
            "tau_max": tmax,
            "hist": hist,
            "read_at": st.read_at,
        }
        if per_step:  # (records, blocks, block, *units) -> (steps, *units)
            for name, a in zip(("staleness", "worker", "dt"), out):
                res[name] = a.reshape((steps,) + units)
        return res

    if len(devices) < 2 or model.shared:
        return jax.jit(run)
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    on_s = {
        "elapsed": P(None, None, "dev"),
        "elapsed_comp": P(None, None, "dev"),
        "tau_max": P(None, "dev"),
        "hist": P(None, "dev"),
        "read_at": P(None, "dev"),
    }
    if per_step:
        on_s.update(
            staleness=P(None, None, "dev"), worker=P(None, None, "dev"), dt=P(None, None, "dev")
        )
    return jax.jit(
        jax.shard_map(
            run,
            mesh=Mesh(np.array(devices), ("dev",)),
            in_specs=(P(), P("dev")),
            out_specs=on_s,
            check_vma=False,
        )
    )


def clock_summary(
    model: WorkerClock,
    workers: Any,
    seeds: Any,
    *,
    steps: int,
    record_every: int,
    slots: int | None = None,
) -> dict[str, np.ndarray]:
    """Wall-clock time and staleness of M workers, from the clock alone (no iterates).

    The clock's draws depend only on (seed, M), never on the iterates, so this
    is exactly the schedule every trajectory of a sweep with that seed and M
    follows (the engine runs the same :meth:`WorkerClock.clock_next`).

    Args:
      model: the worker model.
      workers: (U,) worker counts.
      seeds: (S,) integer seeds.
      steps: updates, a multiple of ``record_every``.
      record_every: wall time is reported every this many updates.
      slots: M_max of the run (default max(workers)); the clock depends on it
        only through the histogram's default bins.

    Returns:
      ``wall_time`` (U, S, steps/record_every + 1) float64: virtual time at each
      record (0 at step 0), summed per record in compensated float32 and across
      records in float64; ``staleness_mean`` (U, S) float64, exact (from the
      identity Σ τ_k = (M − 1)K − A_K); ``staleness_max`` (U, S) int32;
      ``staleness_hist`` (U, S, bins) int32, counts of τ = 0 … bins − 2 and, in
      the last bin, τ ≥ bins − 1 (4·bins bytes per worker count and seed).
    """
    ws = model.check(np.atleast_1d(workers), buffer=2**31)
    slots = int(ws.max()) if slots is None else check_int(slots, "slots", minimum=int(ws.max()))
    seeds = np.atleast_1d(np.asarray(seeds))
    check_int(steps, "steps", minimum=1)
    check_int(record_every, "record_every", minimum=1)
    if steps % record_every:
        raise ValueError(f"steps={steps} must be a multiple of record_every={record_every}")
    out = _run_clock(model, ws, seeds, steps, record_every, slots, per_step=False)
    return {k: v for k, v in out.items() if not k.startswith("_")}


_CLOCK_CHUNK_BYTES = 1 << 26  # device memory one call of the clock pass may hold (64 MiB)


def _run_clock(
    model: WorkerClock,
    ws: np.ndarray,
    seeds: np.ndarray,
    steps: int,
    record_every: int,
    slots: int,
    per_step: bool,
) -> dict[str, np.ndarray]:
    dtype = jnp.result_type(float)
    n_u, n_s = ws.size, seeds.size
    devices = tuple(jax.local_devices()) if n_s > 1 else ()
    fn = _clock_pass(model, slots, steps, record_every, per_step, devices)
    if model.shared:  # one clock per worker count, whatever the seeds
        raw = jax.device_get(fn(jnp.asarray(ws, dtype), jnp.asarray(seeds[:1], jnp.int32)))
    else:  # seeds in chunks of equal size (the last padded): bounded memory, one compilation
        per_seed = (
            4
            * n_u
            * (model.n_bins(slots) + 3 * slots + 4 * (steps // record_every) + 3 * steps * per_step)
        )
        chunk = int(min(n_s, max(1, _CLOCK_CHUNK_BYTES // per_seed)))
        chunk = -(-chunk // max(1, len(devices))) * max(
            1, len(devices)
        )  # a multiple of the devices
        seed_axis = {
            "elapsed": 2,
            "elapsed_comp": 2,
            "staleness": 2,
            "worker": 2,
            "dt": 2,
        }  # the others: 1
        parts = []
        for start in range(0, n_s, chunk):
            part = seeds[start : start + chunk]
            padded = np.concatenate([part, np.repeat(part[-1:], chunk - part.size)])
            out = jax.device_get(fn(jnp.asarray(ws, dtype), jnp.asarray(padded, jnp.int32)))
            parts.append(
                {
                    k: np.take(v, np.arange(part.size), axis=seed_axis.get(k, 1))
                    for k, v in out.items()
                }
            )
        raw = {k: np.concatenate([p[k] for p in parts], axis=seed_axis.get(k, 1)) for k in parts[0]}

    def full(a: np.ndarray) -> np.ndarray:  # (U, ...) or (U, S, ...) -> (U, S, ...)
        a = np.asarray(a)
        return np.broadcast_to(a[:, None], (n_u, n_s) + a.shape[1:]) if model.shared else a

    elapsed = np.asarray(raw["elapsed"], np.float64) - np.asarray(
        raw["elapsed_comp"], np.float64
    )  # (R, *units)
    wall = np.concatenate([np.zeros((1,) + elapsed.shape[1:]), np.cumsum(elapsed, axis=0)], axis=0)
    wall = full(np.moveaxis(wall, 0, -1))
    ages = steps - np.asarray(
        raw["read_at"], np.int64
    )  # (*units, slots); inactive workers: age `steps`
    active = np.arange(slots) < ws.reshape((-1,) + (1,) * (ages.ndim - 1))
    a_k = np.where(active, ages, 0).sum(axis=-1)
    mean = (ws.reshape((-1,) + (1,) * (a_k.ndim - 1)) - 1) - a_k / steps
    out = {
        "wall_time": np.ascontiguousarray(wall),
        "staleness_mean": np.ascontiguousarray(full(mean)),
        "staleness_max": np.ascontiguousarray(full(np.asarray(raw["tau_max"], np.int32))),
        "staleness_hist": np.ascontiguousarray(full(np.asarray(raw["hist"], np.int32))),
    }
    if per_step:
        for name in ("staleness", "worker", "dt"):
            out["_" + name] = full(np.moveaxis(np.asarray(raw[name]), 0, -1))
    return out


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
    model = get_delay_model(model)
    if not isinstance(model, WorkerClock):
        raise ValueError(f"worker_schedule needs the worker model, got {model.name!r}")
    ws = model.check(np.atleast_1d(workers), buffer=2**31)
    if ws.size != 1:
        raise ValueError(f"worker_schedule runs one worker count, got {workers!r}")
    steps = check_int(steps, "steps", minimum=1)
    seeds = np.asarray(seed)
    if seeds.dtype.kind not in "iu" or seeds.ndim > 1:
        raise ValueError(f"seed must be an integer or a 1-D list of them, got {seed!r}")
    out = _run_clock(model, ws, np.atleast_1d(seeds), steps, steps, int(ws[0]), per_step=True)
    res = {
        "worker": out["_worker"][0].astype(np.int64),
        "staleness": out["_staleness"][0].astype(np.int64),
        "time": np.cumsum(out["_dt"][0].astype(np.float64), axis=-1),
    }
    return {k: v[0] for k, v in res.items()} if seeds.ndim == 0 else res


def simulate_worker_staleness(
    workers: int,
    updates: int,
    *,
    compute: str = "exponential",
    speeds: Any = None,
    seed: int = 0,
    shape: float = 1.0,
    straggler: float = 1.0,
    return_time: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Staleness that emerges from M asynchronous workers on a virtual clock (NumPy reference).

    A plain event simulation with a heap, independent of the engine's clock:
    each worker reads the current parameters, computes for a random time, then
    applies its update; the staleness of an applied update is the number of
    updates applied since its worker read. With exponential times every applied
    update comes from a uniformly random worker and the staleness is geometric,
    P(τ = l) = (1/M)(1 − 1/M)^l (Mitliagkas et al. 2016); with equal constant
    times it is M − 1 (round robin).

    Args:
      workers: M ≥ 1.
      updates: number of applied updates to record.
      compute: ``"exponential"``, ``"constant"``, ``"lognormal"`` (σ = ``shape``)
        or ``"gamma"`` (k = ``shape``) compute times, each of mean 1.
      speeds: (M,) relative speeds (default all 1): worker i's times are divided by speeds[i].
      seed: NumPy seed.
      shape: σ of the lognormal, k of the gamma law.
      straggler: worker 0 is this many times slower.
      return_time: also return the time of each applied update.

    Returns:
      (updates,) int array of staleness values, in order of application, and
      with ``return_time`` the (updates,) float64 times of those updates.
    """
    import heapq

    if workers < 1 or updates < 1:
        raise ValueError(f"need workers >= 1 and updates >= 1, got {workers}, {updates}")
    rng = np.random.default_rng(seed)
    speed = np.ones(workers) if speeds is None else as_float_array("speeds", speeds, ndim=1).copy()
    if speed.shape != (workers,) or np.any(speed <= 0):
        raise ValueError(f"speeds must be {workers} positive numbers, got {speeds!r}")
    if straggler <= 0:
        raise ValueError(f"straggler must be > 0, got {straggler!r}")
    speed[0] /= straggler

    def duration(i: int) -> float:
        if compute == "exponential":
            t = rng.exponential()
        elif compute == "constant":
            t = 1.0
        elif compute == "lognormal":
            t = rng.lognormal(-0.5 * shape**2, shape)
        elif compute == "gamma":
            t = rng.gamma(shape, 1.0 / shape)
        else:
            raise ValueError(f"unknown compute-time law {compute!r}")
        return t / speed[i]

    # Break ties between equal finishing times by worker index (round robin).
    events = [(duration(i), i, 0) for i in range(workers)]  # (finish time, worker, version read)
    heapq.heapify(events)
    version = 0
    out = np.empty(updates, dtype=np.int64)
    times = np.empty(updates, dtype=np.float64)
    for n in range(updates):
        t, i, read = heapq.heappop(events)
        out[n] = version - read
        times[n] = t
        version += 1
        heapq.heappush(events, (t + duration(i), i, version))
    return (out, times) if return_time else out
