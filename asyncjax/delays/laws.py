"""The stateless staleness laws: constant, uniform and geometric, one small class each.

Each maps its swept parameter (and, if random, a uniform u ∈ [0, 1) from the
trajectory's delay stream) to τ_k by inverse CDF, and reads the ring at
``k − τ_k``. The uniform comes from the seed alone, so grid points that share a
seed share their delay sequence as well as their data (common random numbers).

========== ============ =====================================================
model      axis          staleness τ_k
========== ============ =====================================================
constant   ``delay``     τ (the paper's experiment)
uniform    ``max_delay`` uniform on {0, …, τ_max}
geometric  ``workers``   P(τ = l) = (1/M)(1 − 1/M)^l, the queuing model of
                         Mitliagkas et al. (2016) with M workers; mean M − 1
========== ============ =====================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._parts import REQUIRED, Hyper
from asyncjax._validate import MAX_RING, as_written, check_delay, py
from asyncjax.delays.base import DelayModel, RingContext, RingIO, identity_init, write_newest


@dataclass(frozen=True)
class Law(DelayModel):
    """A stateless law: τ_k from the parameter and (if ``random``) one uniform per step.

    A new law subclasses `BoundedLaw` (delays never exceed the
    parameter) and/or `RandomLaw` (one uniform u per step) and writes
    `raw_staleness`; the ring, the draws and `delay_stream` come
    with them.
    """

    random: ClassVar[bool] = False  # needs a uniform draw per step

    def staleness(self, param: jax.Array, u: jax.Array | None, buffer: int) -> jax.Array:
        """τ_k as an int32, clipped to the ring (pure; traced)."""
        return jnp.clip(self.raw_staleness(param, u), 0, buffer - 1).astype(jnp.int32)

    def ring_limit(self, steps: int) -> int:
        """Step k < steps reads slot k − τ_k; any τ_k > k (clipped or not) reads the start."""
        return steps + 1

    def raw_staleness(self, param: jax.Array, u: jax.Array | None) -> jax.Array:
        """τ_k as a float, before clipping to the ring."""
        raise NotImplementedError

    def delay_stream(self, param: Any, seed: int, steps: int, buffer: int) -> np.ndarray:
        ks = jnp.arange(steps, dtype=jnp.int32)
        dtype = jnp.result_type(float)
        u = None
        if self.random:
            key = _rng.stream_keys(jnp.asarray([seed]), _rng.DELAY_STREAM)[0]
            u = _rng.uniforms(key, ks, 1, dtype)[:, 0]
        tau = self.staleness(jnp.asarray(param, dtype), u, buffer)
        return np.broadcast_to(np.asarray(tau), (steps,)).copy()


@dataclass(frozen=True)
class BoundedLaw(Law):
    """A law whose delays never exceed its parameter: it must fit the ring, and fixes its need."""

    def check_values(self, values: dict[str, np.ndarray], *, buffer: int) -> dict:
        arr = check_delay(values[self.axis], buffer=buffer, name=self.axis)
        return {self.axis: arr.astype(np.float64)}

    def buffer_for(self, values: Any = None) -> int:
        return int(np.max(self.check(values, buffer=MAX_RING))) + 1

    def ring_need(self, values: Any, buffer: int) -> np.ndarray:
        """A point reads at most ``value`` steps back: a ring of value + 1 serves it exactly."""
        return np.minimum(np.asarray(values, np.int64) + 1, buffer)


@dataclass(frozen=True)
class Constant(BoundedLaw):
    """τ_k = τ for every step; each point reads one contiguous (S, *leaf) slab."""

    name: ClassVar[str] = "constant"
    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        Hyper("delay", default=0, doc="the staleness τ of every step"),
    )

    def raw_staleness(self, param: jax.Array, u: jax.Array | None) -> jax.Array:
        return param

    def ring_io(self, ctx: RingContext) -> RingIO:
        L = ctx.buffer
        h_idx = jnp.arange(ctx.n_hyper)
        tau_h = self.staleness(ctx.param, None, L)  # (H,)

        def read(ring, k, inputs):  # one delay per point: one (S, ...) slab per point
            return jax.tree.map(lambda r: r[h_idx, (k - tau_h) % L], ring), tau_h[:, None], None

        return RingIO(identity_init, lambda ks: None, read, write_newest(L))


@dataclass(frozen=True)
class RandomLaw(Law):
    """A law drawn afresh each step from one uniform of the delay stream: a gather per point."""

    random: ClassVar[bool] = True

    def ring_io(self, ctx: RingContext) -> RingIO:
        L, param, keys, dtype = ctx.buffer, ctx.param, ctx.keys, ctx.dtype
        h_idx = jnp.arange(ctx.n_hyper)
        s_idx = jnp.arange(ctx.n_seeds)
        # (H,) parameters and (S,) uniforms -> (H, S) staleness
        staleness = jax.vmap(jax.vmap(lambda p, u: self.staleness(p, u, L), (None, 0)), (0, None))

        def draw(ks):  # (blk,) steps -> (blk, S) uniforms
            return jax.vmap(_rng.uniforms, (0, None, None, None), out_axes=1)(keys, ks, 1, dtype)[
                ..., 0
            ]

        def read(ring, k, u):
            tau = staleness(param, u)
            slots = (k - tau) % L
            stale = jax.tree.map(lambda r: r[h_idx[:, None], slots, s_idx[None, :]], ring)
            return stale, tau, None

        return RingIO(identity_init, draw, read, write_newest(L))


@dataclass(frozen=True)
class Uniform(BoundedLaw, RandomLaw):
    """τ_k uniform on {0, …, τ_max}."""

    name: ClassVar[str] = "uniform"
    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        Hyper("max_delay", default=0, doc="the largest staleness τ_max"),
    )

    def raw_staleness(self, param: jax.Array, u: jax.Array | None) -> jax.Array:
        return jnp.floor(u * (param + 1.0))


def check_geometric_workers(values: np.ndarray, name: str) -> None:
    """The geometric law's M: a whole number >= 1."""
    bad = values[values < 1]
    if bad.size:
        raise ValueError(f"{name} must be >= 1; got {as_written(bad.flat[0])!r}")
    bad = values[values != np.round(values)]
    if bad.size:
        raise ValueError(f"{name} must be a whole number of workers; got {py(bad.flat[0])!r}")


@dataclass(frozen=True)
class Geometric(RandomLaw):
    """P(τ = l) = (1/M)(1 − 1/M)^l, truncated at the ring (Mitliagkas et al. 2016)."""

    name: ClassVar[str] = "geometric"
    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        Hyper("workers", default=REQUIRED, check=check_geometric_workers, doc="M; mean τ is M − 1"),
    )

    def raw_staleness(self, param: jax.Array, u: jax.Array | None) -> jax.Array:
        # inverse CDF of P(τ >= l) = (1 - 1/M)^l
        p_stay = 1.0 - 1.0 / param
        safe = jnp.where(p_stay > 0, p_stay, 0.5)
        return jnp.where(p_stay > 0, jnp.floor(jnp.log1p(-u) / jnp.log(safe)), 0.0)

    def buffer_for(self, values: Any = None, tail: float = 1e-6) -> int:
        """The ring that holds all but a ``tail`` mass of the law."""
        top = float(np.max(self.check(values, buffer=MAX_RING)))
        if top <= 1:
            return 1
        return min(MAX_RING, int(math.ceil(math.log(tail) / math.log1p(-1.0 / top))) + 1)
