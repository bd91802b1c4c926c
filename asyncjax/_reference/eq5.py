"""Reference: the single-purpose eq. 5 simulator that preceded the generic engine.

Kept, unchanged in its arithmetic, for two jobs: a test pins that eq. 5 through
`asyncjax.engine` (StreamingPCA + heavy_ball) is bit-identical to it, and
the throughput benchmark measures the engine against it in the same run.
Not public API.

Async-MSGD on streaming PCA (Liu et al. 2018, eq. 5) in one ``lax.scan``:

    v_{k+1} = v_k + μ (v_k − v_{k−1}) + η (I − v_s v_sᵀ) X_k X_kᵀ v_s,   v_s = v_{k−τ_k}

The update of one trajectory (`heavy_ball_step`) is written for a single
iterate and vmapped twice: over seeds (S, each its own data stream) and over
hyperparameter points (H, the data shared). The delay buffer is a ring of the
last ``buffer`` iterates kept at batch level with shape (H, buffer, S, d): the
newest iterates are written as one slab per point, and with a constant delay
each point reads its stale iterates as one contiguous (S, d) slab. On the CI
CPU that is 3x faster than the strided reads and writes a per-trajectory ring
gets from vmap.

Randomness is counter-based (`asyncjax._rng`): the observation X_k and the
delay draw u_k of a trajectory with integer seed s are pure functions of (s, k).
The noise is generated a block of steps at a time for speed, but the block
size, chunk size, batch composition and device count never change a result:
the same seed gives bit-identical trajectories (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax import problems as _problems
from asyncjax._numerics import seq_sum
from asyncjax._validate import check_int
from asyncjax.delays import DelayModel
from asyncjax.problems import PCAOperands

_NOISE_BLOCK_BYTES = 1 << 24  # cap on one block of pre-drawn observations (16 MiB)


class Params(NamedTuple):
    """Swept hyperparameters of one trajectory (scalars; traced, never baked in)."""

    momentum: Any  # () μ
    lr: Any  # () η
    delay: Any  # () the delay model's parameter (τ for constant delays)


class State(NamedTuple):
    """Per-trajectory optimiser state."""

    v: jax.Array  # (d,) current iterate v_k (eigenbasis)
    v_prev: jax.Array  # (d,) previous iterate v_{k-1}
    alive: jax.Array  # () bool, False once the trajectory has been frozen
    diverged_at: jax.Array  # () int32, step it went non-finite / past the bound; -1 if never


class Trace(NamedTuple):
    """What a simulation returns. Leading batch axes (S, H) for a batch.

    Records are taken at steps 0, r, 2r, …, steps (r = record_every).
    """

    error: Any  # (..., n_records) sin²∠(v_k, q1)
    norm: Any  # (..., n_records) ‖v_k‖
    diverged_at: Any  # (...,) int32, -1 if the trajectory never diverged
    final: Any  # (..., d) last iterate, in the eigenbasis
    iterates: Any = None  # (..., n_records, d) v_k (eigenbasis), if SimConfig.record_iterates


@dataclass(frozen=True)
class SimConfig:
    """Static configuration: everything that fixes shapes and compiled code.

    Attributes:
      distribution: the problem's data model (see `StreamingPCA`).
      steps: number of iterations, a multiple of ``record_every``.
      record_every: metrics are recorded every this many steps (and at step 0).
      buffer: number of past iterates kept; the largest delay is ``buffer - 1``.
      delay: the staleness law.
      record_iterates: also record the iterate v_k itself at every record
        (memory grows by d numbers per record; for analyses such as the
        implicit-momentum fit that need trajectories, not just errors).
    """

    distribution: str
    steps: int
    record_every: int
    buffer: int
    delay: DelayModel
    record_iterates: bool = False

    def __post_init__(self):
        check_int(self.steps, "steps", minimum=1)
        check_int(self.record_every, "record_every", minimum=1)
        check_int(self.buffer, "buffer", minimum=1)
        if self.steps % self.record_every:
            raise ValueError(
                f"steps={self.steps} must be a multiple of record_every={self.record_every}"
            )

    @property
    def n_records(self) -> int:
        return self.steps // self.record_every + 1

    @property
    def record_steps(self) -> np.ndarray:
        return np.arange(self.n_records) * self.record_every


def heavy_ball_step(state: State, v_stale, x, momentum, lr, step, bound2) -> State:
    """One step of eq. 5 for one trajectory, with divergence detection.

    Args:
      state: the trajectory's `State`.
      v_stale: (d,) the stale iterate v_{k-τ_k} the gradient is evaluated at.
      x: (d,) the observation X_k (eigenbasis).
      momentum, lr: () μ and η.
      step: () int32, k.
      bound2: () squared norm bound; past it (or non-finite) the state freezes.

    Returns:
      The state at step k + 1 (unchanged if frozen).
    """
    v, v_prev, alive, diverged_at = state
    s = seq_sum(x * v_stale)  # X_kᵀ v_s
    grad = s * x - (s * s) * v_stale  # (I − v_s v_sᵀ) X_k X_kᵀ v_s
    v_new = v + momentum * (v - v_prev) + lr * grad
    n2 = seq_sum(v_new * v_new)
    keep = alive & (n2 <= bound2)  # False for NaN, and for inf (bound2 is finite)
    diverged_at = jnp.where(alive & ~keep, step + 1, diverged_at)
    # A frozen trajectory keeps v; its v_prev is never read again.
    return State(v=jnp.where(keep, v_new, v), v_prev=v, alive=keep, diverged_at=diverged_at)


# Over seeds (each its own data), then over hyperparameter points (data shared):
# state and buffer are laid out (H, S, ...).
_step_s = jax.vmap(heavy_ball_step, in_axes=(0, 0, 0, None, None, None, None))
_step_hs = jax.vmap(_step_s, in_axes=(0, 0, None, 0, 0, None, None))
_metrics_hs = jax.vmap(jax.vmap(_problems.sin2_and_norm))


def _noise_block(cfg: SimConfig, n_seeds: int, d: int, itemsize: int) -> int:
    """Largest divisor of record_every whose pre-drawn observations fit the cap."""
    cap = max(1, _NOISE_BLOCK_BYTES // max(1, n_seeds * d * itemsize))
    r = cfg.record_every
    return max(b for b in range(1, min(r, cap) + 1) if r % b == 0)


def simulate_batch(
    cfg: SimConfig, ops: PCAOperands, params: Params, seeds, v0, norm_bound
) -> Trace:
    """Runs S × H trajectories: every seed against every hyperparameter point.

    Pure and jittable; shapes are fixed by ``cfg`` and the arguments.

    Args:
      cfg: static configuration.
      ops: the problem's operands.
      params: `Params` of (H,) arrays.
      seeds: (S,) int32 seeds.
      v0: (d,) start, eigenbasis (the history is filled with it).
      norm_bound: () a trajectory whose ‖v‖ exceeds it is frozen.

    Returns:
      `Trace` with leading axes (S, H).
    """
    dtype = ops.scale.dtype
    (n_hyper,) = params.momentum.shape
    (n_seeds,) = seeds.shape
    d = v0.shape[0]
    L = cfg.buffer
    mu, lr = params.momentum.astype(dtype), params.lr.astype(dtype)
    delay_param = params.delay.astype(dtype)
    # Capped at the largest float so that an infinite norm fails the check even
    # with norm_bound = inf (NaN fails any comparison).
    bound2 = jnp.minimum(jnp.square(jnp.asarray(norm_bound, dtype)), jnp.finfo(dtype).max)

    data_keys = _rng.stream_keys(seeds, _rng.DATA_STREAM)  # (S, 2)
    delay_keys = _rng.stream_keys(seeds, _rng.DELAY_STREAM)

    # (b,) steps -> (b, S, d) observations and (b, S) delay uniforms. Writing
    # the seed axis second from inside vmap saves a separate transpose.
    draw_x = jax.vmap(partial(_problems.sample_block, cfg.distribution, ops), (0, None), out_axes=1)

    def draw_u(keys, ks):
        return jax.vmap(_rng.uniforms, (0, None, None, None), out_axes=1)(keys, ks, 1, dtype)[
            ..., 0
        ]

    h_idx = jnp.arange(n_hyper)
    s_idx = jnp.arange(n_seeds)
    if cfg.delay.random:  # (H,) parameters and (S,) uniforms -> (H, S) staleness
        staleness = jax.vmap(jax.vmap(partial(cfg.delay.staleness, buffer=L), (None, 0)), (0, None))
    else:
        tau_h = cfg.delay.staleness(delay_param, None, L)  # (H,)

    def step(carry, inp):
        state, buf = carry
        k, x, u = inp
        if cfg.delay.random:
            v_stale = buf[h_idx[:, None], (k - staleness(delay_param, u)) % L, s_idx[None, :]]
        else:  # one delay per point: each point reads one contiguous (S, d) slab
            v_stale = buf[h_idx, (k - tau_h) % L]
        state = _step_hs(state, v_stale, x, mu, lr, k, bound2)  # (H, S, ...)
        buf = jax.lax.dynamic_update_slice_in_dim(buf, state.v[:, None], (k + 1) % L, 1)
        return (state, buf), None

    block = _noise_block(cfg, n_seeds, d, jnp.dtype(dtype).itemsize)

    def noise_block(carry, k0):
        ks = k0 + jnp.arange(block, dtype=jnp.int32)
        xs = draw_x(data_keys, ks)
        us = draw_u(delay_keys, ks) if cfg.delay.random else jnp.zeros((block, n_seeds), dtype)
        return jax.lax.scan(step, carry, (ks, xs, us))[0], None

    def record(v):
        err, nrm = _metrics_hs(v)
        return (err, nrm, v) if cfg.record_iterates else (err, nrm)

    def record_block(carry, k0):
        starts = k0 + block * jnp.arange(cfg.record_every // block, dtype=jnp.int32)
        carry, _ = jax.lax.scan(noise_block, carry, starts)
        return carry, record(carry[0].v)

    v0 = v0.astype(dtype)
    v_init = jnp.broadcast_to(v0, (n_hyper, n_seeds, d))
    state = State(
        v=v_init,
        v_prev=v_init,
        alive=jnp.ones((n_hyper, n_seeds), bool),
        diverged_at=jnp.full((n_hyper, n_seeds), -1, jnp.int32),
    )
    buf = jnp.broadcast_to(v0, (n_hyper, L, n_seeds, d))
    starts = cfg.record_every * jnp.arange(cfg.n_records - 1, dtype=jnp.int32)
    (state, _), recs = jax.lax.scan(record_block, (state, buf), starts)
    # prepend the records of step 0; (records, H, S, ...) -> (S, H, records, ...)
    recs = [
        jnp.moveaxis(jnp.swapaxes(jnp.concatenate([r0[None], r], axis=0), 1, 2), 0, 2)
        for r0, r in zip(record(v_init), recs)
    ]
    return Trace(
        error=recs[0],
        norm=recs[1],
        diverged_at=state.diverged_at.T,
        final=jnp.swapaxes(state.v, 0, 1),
        iterates=recs[2] if cfg.record_iterates else None,
    )


@lru_cache(maxsize=64)
def jitted_batch(cfg: SimConfig):
    """The compiled batched simulator for a static configuration (cached)."""
    return jax.jit(partial(simulate_batch, cfg))
