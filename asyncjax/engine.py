"""The engine: one ``lax.scan`` that runs a batch of stale-gradient trajectories.

A static `Spec` (problem, optimizer, delay model, steps, record
interval, buffer) fixes the compiled code and is the jit cache key; everything
swept arrives as traced arrays: a dict of (H,) hyperparameter columns, one per
grid axis, and (S,) integer seeds. Every seed meets every hyperparameter
point. Points that share a seed share its data, delay and init streams (common
random numbers), drawn once per seed.

One trajectory's step, for a problem P and an optimizer O::

    stale  = buffer[k − τ_k]                 # a read point τ_k steps old
    g      = P.grad(ops, stale, batch_k, hp)  # the stochastic gradient there
                                              # (P.worker_grad(..., j_k): worker j_k's own,
                                              # when the workers hold their own data)
    x, s   = O.update(g, s, x, hp)
    buffer[k + 1] = O.read_point(x, s, hp)    # what a worker reading now sees

is written for one trajectory and vmapped over seeds (data differs) and points
(data shared). The delay buffer is kept at batch level, one ring per parameter
leaf with shape (H, buffer, S, *leaf): the newest read points are written as one
slab per point, and with a constant delay each point reads its stale points as
one contiguous (S, *leaf) slab (3x faster on CPU than the strided per-trajectory
ring vmap would give). Data is drawn a block of steps at a time; block, chunk
and batch sizes never change a result (the streams are counter-based).

A trajectory whose parameter norm turns non-finite or exceeds the bound is
frozen at its last finite parameters (its optimizer state is left to run, it is
never read again) and the step is recorded in ``diverged_at``.

The delay model says how a step finds its stale point, through one interface
(`RingIO`, built by ``delay.ring_io``): what it carries
beside the ring, what it draws per block, which stale points step k reads
(and τ_k), and where the new read point goes. The engine never asks which
model it holds: the laws read the ring at ``k − τ_k`` (a constant delay as
one slab per point), a trace likewise with τ_k from its operand, and the
worker model carries a clock whose ``buffer`` slots are one snapshot per worker.

A mitigation (`asyncjax.mitigations`) sees τ_k inside the step: it may
change the gradient before the optimizer and the update after it.

With a server rule (`asyncjax.servers`) a step is an event, and its `EventIO`
gates the optimizer: the engine keeps what the rule needs between events, a
round's weighted sum, or a table of one gradient per worker with its running
sum ((H, S, n, *leaf); an arrival updates one entry, written at the start of
the next event so that XLA updates the table in place instead of copying it).
A problem whose workers hold their own data (``problem.per_worker``) gets the
arriving worker's index (`RingIO.worker`) in ``worker_grad``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._numerics import seq_sum
from asyncjax._parts import select
from asyncjax._validate import MAX_RING, check_int
from asyncjax.delays import DelayModel, RingContext
from asyncjax.optim import Optimizer
from asyncjax.problems.base import Problem

PyTree = Any
_NOISE_BLOCK_BYTES = 1 << 24  # cap on one block of pre-drawn data (16 MiB)


MAX_STEPS = MAX_RING - 1  # step k + 1 is an int32 counter (and so is diverged_at)


def check_steps(steps: Any, record_every: Any) -> None:
    """``steps`` and ``record_every``: positive integers, a multiple, within the int32 counters."""
    check_int(steps, "steps", minimum=1)
    check_int(record_every, "record_every", minimum=1)
    if steps > MAX_STEPS:
        raise ValueError(
            f"steps={steps:,} overflows the engine's int32 step counter (at most {MAX_STEPS:,} "
            "steps); run at most that many steps"
        )
    if steps % record_every:
        raise ValueError(f"steps={steps} must be a multiple of record_every={record_every}")


@dataclass(frozen=True)
class Spec:
    """Static configuration: everything that fixes shapes and compiled code.

    Attributes:
      problem: the problem (hashed by its static key; its arrays are operands).
      optimizer: the optimizer fed the stale gradients.
      delay: the staleness law.
      steps: iterations, a multiple of ``record_every``.
      record_every: metrics are recorded every this many steps and at step 0.
      buffer: past read points kept; the largest delay is ``buffer − 1``. For
        the worker model, its snapshot slots (one per worker: the
        largest number of workers, M_max).
      fixed_init: every trajectory starts at the given ``x0``; otherwise each
        seed draws its start with ``problem.init`` from its init stream.
      record_params: also record the parameters at every record.
      keep_final: return the last parameters of every trajectory.
      mitigation: a staleness mitigation (`asyncjax.mitigations`), or None.
    """

    problem: Problem
    optimizer: Optimizer
    delay: DelayModel
    steps: int
    record_every: int
    buffer: int
    fixed_init: bool = True
    record_params: bool = False
    keep_final: bool = True
    mitigation: Any = None

    def __post_init__(self):
        check_steps(self.steps, self.record_every)
        check_int(self.buffer, "buffer", minimum=1)
        if self.buffer > MAX_RING:
            raise ValueError(
                f"buffer={self.buffer:,} is beyond the largest ring ({MAX_RING:,} read points: "
                "step counters are int32); a delay law needs at most steps + 1"
            )

    @property
    def n_records(self) -> int:
        return self.steps // self.record_every + 1

    @property
    def record_steps(self) -> np.ndarray:
        return np.arange(self.n_records) * self.record_every


class Trace(NamedTuple):
    """What the engine returns; leading axes (S, H) for a batch, none for one trajectory.

    Metrics are also attributes and keys: ``trace.error`` and ``trace["error"]`` are
    ``trace.metrics["error"]``, as ``results["error"]`` is for a sweep.
    """

    metrics: dict  # name -> (..., n_records)
    diverged_at: Any  # (...,) int32 step at which it was frozen; -1 if never
    final: Any = None  # params pytree (..., *leaf): the last parameters
    params: Any = None  # params pytree (..., n_records, *leaf), if Spec.record_params

    def __getattr__(self, name: str) -> Any:
        metrics = tuple.__getitem__(self, 0)
        if name in metrics:
            return metrics[name]
        if name == "iterates":
            return tuple.__getitem__(self, 3)
        raise AttributeError(f"Trace has no field or metric {name!r}; metrics: {sorted(metrics)}")

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, str):
            return tuple.__getitem__(self, key)
        if key in self._fields:
            return getattr(self, key)
        metrics = tuple.__getitem__(self, 0)
        if key not in metrics:
            raise KeyError(f"Trace has no field or metric {key!r}; metrics: {sorted(metrics)}")
        return metrics[key]


_TRACES = 0


def compile_count() -> int:
    """How many times a batched engine has been traced (each trace compiles).

    A second sweep with new swept values but the same shapes leaves it unchanged.
    """
    return _TRACES


def _sq_norm(tree: PyTree) -> jax.Array:
    """Squared norm of one trajectory's parameters (a fixed summation order for small vectors)."""
    total = None
    for leaf in jax.tree.leaves(tree):
        sq = leaf * leaf
        part = seq_sum(sq) if sq.ndim == 1 else jnp.sum(sq)
        total = part if total is None else total + part
    return total


def _noise_block(spec: Spec, step_bytes: int) -> int:
    """Largest divisor of record_every whose pre-drawn data fits the cap."""
    cap = max(1, _NOISE_BLOCK_BYTES // max(1, step_bytes))
    r = spec.record_every
    return max(b for b in range(1, min(r, cap) + 1) if r % b == 0)


def noise_block_bytes(spec: Spec, step_bytes: int) -> int:
    """Bytes of the data a batch pre-draws at once, given one step's data of every seed."""
    return _noise_block(spec, step_bytes) * int(step_bytes)


def run_batch(
    spec: Spec,
    ops: PyTree,
    hp: Mapping[str, jax.Array],
    seeds: jax.Array,
    x0: PyTree,
    norm_bound: jax.Array,
    delay_ops: PyTree = None,
    groups: Any = None,
) -> Trace:
    """Runs S × H trajectories: every seed against every hyperparameter point.

    Pure and jittable; shapes are fixed by ``spec`` and the arguments.

    Args:
      spec: static configuration.
      ops: the problem's operands (``problem.operands(dtype)``).
      hp: name -> (H,) float array for every swept name of the problem, the
        optimizer, the delay model (its axis always present, if it has one)
        and the mitigation.
      seeds: (S,) int32 seeds.
      x0: the start (a params pytree) if ``spec.fixed_init``, else ignored.
      norm_bound: () a trajectory whose parameter norm exceeds it is frozen.
      delay_ops: the delay model's operands (``spec.delay.operands(dtype)``;
        a trace's values), None for the others.
      groups: for a delay model with ``per_setting``, the points' distinct
        settings of its swept values (`RingContext.groups`; `setting_groups`
        makes them), or None.

    Returns:
      `Trace` with leading axes (S, H).
    """
    global _TRACES
    _TRACES += 1
    problem, opt, delay, mit = spec.problem, spec.optimizer, spec.delay, spec.mitigation
    dtype = jnp.result_type(float)
    L = spec.buffer
    hp = {k: v.astype(dtype) for k, v in hp.items()}
    (n_hyper,) = (hp[delay.axis] if delay.axis is not None else next(iter(hp.values()))).shape
    (n_seeds,) = seeds.shape
    opt_hp, prob_hp, mit_hp = select(hp, opt), select(hp, problem), select(hp, mit)
    delay_param = hp[delay.axis] if delay.axis is not None else None
    # Capped at the largest float so that an infinite norm fails the check even
    # with norm_bound = inf (NaN fails any comparison).
    bound2 = jnp.minimum(jnp.square(jnp.asarray(norm_bound, dtype)), jnp.finfo(dtype).max)

    data_keys = _rng.stream_keys(seeds, _rng.DATA_STREAM)  # (S, 2)
    delay_keys = _rng.stream_keys(seeds, _rng.DELAY_STREAM)

    # ---- the start: (H, S, ...) parameters, optimizer state and read points
    if spec.fixed_init:
        x_s = jax.tree.map(
            lambda a: jnp.broadcast_to(jnp.asarray(a, dtype), (n_seeds,) + jnp.shape(a)), x0
        )
    else:
        init_keys = _rng.stream_keys(seeds, _rng.INIT_STREAM)
        x_s = jax.vmap(problem.init, (None, 0))(ops, init_keys)
    params = jax.tree.map(lambda a: jnp.broadcast_to(a, (n_hyper,) + a.shape), x_s)
    opt_state = jax.vmap(jax.vmap(opt.init, (0, None)), (0, 0))(params, opt_hp)
    read0 = jax.vmap(jax.vmap(opt.read_point, (0, 0, None)), (0, 0, 0))(params, opt_state, opt_hp)
    buf = jax.tree.map(lambda a: jnp.broadcast_to(a[:, None], (n_hyper, L) + a.shape[1:]), read0)

    # the delay model's ring I/O: what it carries, draws, reads and writes (see delays.base)
    ring = delay.ring_io(
        RingContext(
            buffer=L,
            param=delay_param,
            keys=delay_keys,
            seeds=seeds,
            operands=delay_ops,
            n_hyper=n_hyper,
            n_seeds=n_seeds,
            dtype=dtype,
            track=mit is not None,
            values=select(hp, delay),
            groups=groups if delay.per_setting else None,
        )
    )
    events = ring.events  # None: every step applies its gradient
    accumulates = events is not None and events.accumulates
    table = None if events is None else events.table  # a gradient per worker
    per_worker = problem.per_worker  # the arriving worker's own gradient
    if per_worker and ring.worker is None:
        raise ValueError(
            f"{problem.label} gives each worker its own data, so it needs the worker clock: "
            f"delay_model=asyncjax.delays.workers(...); {delay.label} has no workers"
        )

    # ---- one step of one trajectory, then vmapped over seeds and points
    def traj_step(x, s, alive, div_at, stale, batch, o_hp, p_hp, k, tau, m_hp, gate, acc, worker):
        if per_worker:
            g = problem.worker_grad(ops, stale, batch, p_hp, worker)
        else:
            g = problem.grad(ops, stale, batch, p_hp)
        if mit is not None:
            g = mit.gradient(g, x, stale, tau, m_hp)
        if gate is not None:  # an event: a weighted gradient, and the server may not step
            weight, apply, scale = gate
            if accumulates:  # the step applies scale · Σ weight · g over the round
                acc = jax.tree.map(lambda a, b: a + weight * b, acc, g)
                g = jax.tree.map(lambda a: scale * a, acc)
                acc = jax.tree.map(lambda a: jnp.where(apply, jnp.zeros_like(a), a), acc)
            elif table is not None:  # the step applies scale · Σ_j entry_j
                acc, g = _table_entry(table, acc, g, weight, apply)
                g = jax.tree.map(lambda a: scale * a, g)
        x_new, s_new = opt.update(g, s, x, o_hp)
        if mit is not None:
            x_new, s_new = mit.update(x, s, x_new, s_new, tau, m_hp)
        if gate is not None:
            x_new = jax.tree.map(lambda a, b: jnp.where(apply, a, b), x_new, x)
            s_new = jax.tree.map(lambda a, b: jnp.where(apply, a, b), s_new, s)
        keep = alive & (_sq_norm(x_new) <= bound2)  # False for NaN and inf
        div_at = jnp.where(alive & ~keep, k + 1, div_at)
        x_new = jax.tree.map(lambda a, b: jnp.where(keep, a, b), x_new, x)
        return x_new, s_new, keep, div_at, opt.read_point(x_new, s_new, o_hp), acc

    # Vmapped over seeds, then points. τ (H, S) and the mitigation's hyperparameters (H,)
    # only with a mitigation; the gate (H, S) only for events; the sum only where one is
    # kept; the arriving worker (H, S) only for a problem whose workers hold their own data.
    per_hs = lambda on: 0 if on else None
    tau_ax, gate_ax = per_hs(mit is not None), per_hs(events)
    acc_ax, w_ax = per_hs(accumulates or table is not None), per_hs(per_worker)
    step_s = jax.vmap(
        traj_step, (0, 0, 0, 0, 0, 0, None, None, None, tau_ax, None, gate_ax, acc_ax, w_ax)
    )
    step_hs = jax.vmap(
        step_s, (0, 0, 0, 0, 0, None, 0, 0, None, tau_ax, tau_ax, gate_ax, acc_ax, w_ax)
    )

    def step(carry, inp):
        (x, s, alive, div_at, acc), b = carry
        k, batch, delay_in = inp
        stale, tau, ctx = ring.read(b, k, delay_in)
        if mit is not None:  # a gradient read before step 0 read the start: it is k updates old
            tau = jnp.minimum(jnp.broadcast_to(tau, (n_hyper, n_seeds)), k)
        gate = events.gate(ctx) if events is not None else None
        worker = ring.worker(ctx) if per_worker or table is not None else None
        if table is not None:  # the arriving worker's entry, at batch level
            rows, total, counts, (pw, pe, pc) = acc
            # The previous event's entry is written now, before anything reads the table: a
            # write after this event's reads would leave reads the in-place write does not
            # depend on, and XLA would copy the whole table at every event (6x at 256 workers).
            prev = (h_idx[:, None], s_idx[None, :], pw)
            rows = jax.tree.map(lambda r, e: r.at[prev].set(e), rows, pe)
            at = (h_idx[:, None], s_idx[None, :], worker)
            entry = jax.tree.map(lambda r: r[at], rows)
            if counts is not None:
                counts = counts.at[prev].set(pc)
            acc = (entry, total, None if counts is None else counts[at])
        own = worker if per_worker else None
        x, s, alive, div_at, read, acc = step_hs(
            x, s, alive, div_at, stale, batch, opt_hp, prob_hp, k, tau, mit_hp, gate, acc, own
        )
        if table is not None:
            entry, total, count = acc
            if counts is not None:  # a "mean" entry's weight; a step empties every entry
                weight, apply = gate[0], gate[1]
                count = jnp.where(apply, 0, count + weight)
                counts = jnp.where(apply[..., None], 0, counts)
            acc = (rows, total, counts, (worker, entry, count))
        b = ring.write(b, ctx, read, k)
        return ((x, s, alive, div_at, acc), b), None

    # (blk,) steps -> data with leaves (blk, S, ...), and the delay model's inputs.
    h_idx, s_idx = jnp.arange(n_hyper), jnp.arange(n_seeds)
    draw = jax.vmap(partial(problem.sample, ops), (0, None), out_axes=1)
    one_step = jax.eval_shape(draw, data_keys, jnp.zeros((1,), jnp.int32))
    step_bytes = sum(np.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(one_step))
    block = _noise_block(spec, int(step_bytes))

    def noise_block(carry, k0):
        ks = k0 + jnp.arange(block, dtype=jnp.int32)
        batch = draw(data_keys, ks)
        delay_ins = ring.draw(ks)
        return jax.lax.scan(step, carry, (ks, batch, delay_ins))[0], None

    metrics_hs = jax.vmap(jax.vmap(partial(problem.metrics, ops)))

    def record(x, b):
        m = metrics_hs(x)
        if events is not None:  # the clock's own records: wall time, applied updates
            m = {**m, **events.record(b)}
        return (m, x) if spec.record_params else (m,)

    def record_block(carry, k0):
        starts = k0 + block * jnp.arange(spec.record_every // block, dtype=jnp.int32)
        carry, _ = jax.lax.scan(noise_block, carry, starts)
        return carry, record(carry[0][0], carry[1])

    acc0 = jax.tree.map(jnp.zeros_like, params) if accumulates else None
    if table is not None:  # entries (H, S, n, *leaf), their sum, and the mean's weights (H, S, n)
        rows = jax.tree.map(
            lambda a: jnp.zeros(a.shape[:2] + (events.rows,) + a.shape[2:], a.dtype), params
        )
        counts = jnp.zeros((n_hyper, n_seeds, events.rows), dtype) if table == "mean" else None
        zeros = jax.tree.map(jnp.zeros_like, params)
        pending = (jnp.zeros((n_hyper, n_seeds), jnp.int32), zeros, None)  # worker 0's zeros
        if counts is not None:
            pending = pending[:2] + (jnp.zeros((n_hyper, n_seeds), dtype),)
        acc0 = (rows, zeros, counts, pending)
    state = (
        params,
        opt_state,
        jnp.ones((n_hyper, n_seeds), bool),
        jnp.full((n_hyper, n_seeds), -1, jnp.int32),
        acc0,
    )
    ring0 = ring.init(buf)
    starts = spec.record_every * jnp.arange(spec.n_records - 1, dtype=jnp.int32)
    (state, _), recs = jax.lax.scan(record_block, (state, ring0), starts)

    # prepend the records of step 0; (records, H, S, ...) -> (S, H, records, ...)
    def to_shr(first, rest):
        both = jnp.concatenate([first[None], rest], axis=0)
        return jnp.moveaxis(jnp.swapaxes(both, 1, 2), 0, 2)

    recs = jax.tree.map(to_shr, record(params, ring0), recs)
    x_final = state[0]
    return Trace(
        metrics=recs[0],
        diverged_at=state[3].T,
        final=jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), x_final) if spec.keep_final else None,
        params=recs[1] if spec.record_params else None,
    )


def _table_entry(
    kind: str, acc: tuple, g: PyTree, weight: jax.Array, apply: jax.Array
) -> tuple[tuple, PyTree]:
    """One arrival into one trajectory's gradient table, given the arriving worker's entry.

    Args:
      kind: ``"latest"`` (the entry becomes the gradient) or ``"mean"`` (the
        gradient joins the entry's weighted mean; an entry of weight 0 is empty).
      acc: ``(entry, total, count)``: the worker's entry (*leaf), the sum of every
        entry (kept as a running sum, so an arrival costs one entry, not n), and
        the entry's weight (``"mean"``; None for ``"latest"``).
      g: the arriving gradient; ``weight`` () its weight (0 changes nothing);
      apply: () whether the server steps (a ``"mean"`` table is then emptied).

    Returns:
      ``((entry, total, count), Σ_j entry_j)``: the new entry and running sum (the
      caller writes the entry back and updates the weights), and the sum the step uses.
    """
    old, total, count = acc
    take = weight > 0
    if kind == "latest":
        new = g
    else:  # "mean": fold g into the worker's weighted mean (an empty entry reads as zero)
        old = jax.tree.map(lambda o: jnp.where(count > 0, o, jnp.zeros_like(o)), old)
        share = jnp.where(take, weight / jnp.where(take, count + weight, 1), jnp.zeros_like(weight))
        new = jax.tree.map(lambda o, a: o + share * (a - o), old, g)
    delta = jax.tree.map(lambda a, o: jnp.where(take, a - o, jnp.zeros_like(a)), new, old)
    total = jax.tree.map(lambda t, dl: t + dl, total, delta)
    entry = jax.tree.map(lambda a, o: jnp.where(take, a, o), new, old)
    out = total
    if kind == "mean":  # a step empties the table: the next round starts from nothing
        total = jax.tree.map(lambda t: jnp.where(apply, jnp.zeros_like(t), t), total)
    return (entry, total, count), out


@lru_cache(maxsize=64)
def jitted(spec: Spec):
    """The compiled batched engine for a static configuration (cached)."""
    return jax.jit(partial(run_batch, spec))
