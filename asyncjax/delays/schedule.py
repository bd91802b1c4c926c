"""The worker clock alone, without iterates: wall-clock time and staleness of M workers.

The clock's draws depend only on (seed, M), never on the iterates, so one
compiled scan of the clock (`clock_pass`) gives exactly the schedule
every trajectory of a sweep with that seed and M follows: its wall time and
staleness summary (`clock_summary`) and, update by update, the schedule
itself (`run_clock` with ``per_step``). The model is any clock model with
``batched``, ``shared``, ``n_bins`` and ``check`` (`WorkerClock`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._validate import MAX_WORKERS, check_int

CLOCK_BLOCK_BYTES = 1 << 24


@lru_cache(maxsize=32)
def clock_pass(
    model: Any,
    slots: int,
    steps: int,
    record_every: int,
    per_step: bool,
    devices: tuple = (),
):
    """Compiled clock-only scan over (U,) worker counts × (S,) seeds (see `clock_summary`).

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
        cap = max(1, CLOCK_BLOCK_BYTES // draw_bytes)
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
    model: Any,
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
    follows (the engine runs the same `WorkerClock.clock_next`).

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
    ws = model.check(np.atleast_1d(workers), buffer=MAX_WORKERS)
    slots = int(ws.max()) if slots is None else check_int(slots, "slots", minimum=int(ws.max()))
    seeds = np.atleast_1d(np.asarray(seeds))
    check_int(steps, "steps", minimum=1)
    check_int(record_every, "record_every", minimum=1)
    if steps % record_every:
        raise ValueError(f"steps={steps} must be a multiple of record_every={record_every}")
    out = run_clock(model, ws, seeds, steps, record_every, slots, per_step=False)
    return {k: v for k, v in out.items() if not k.startswith("_")}


CLOCK_CHUNK_BYTES = 1 << 26  # device memory one call of the clock pass may hold (64 MiB)


def run_clock(
    model: Any,
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
    fn = clock_pass(model, slots, steps, record_every, per_step, devices)
    if model.shared:  # one clock per worker count, whatever the seeds
        raw = jax.device_get(fn(jnp.asarray(ws, dtype), jnp.asarray(seeds[:1], jnp.int32)))
    else:  # seeds in chunks of equal size (the last padded): bounded memory, one compilation
        per_seed = (
            4
            * n_u
            * (model.n_bins(slots) + 3 * slots + 4 * (steps // record_every) + 3 * steps * per_step)
        )
        chunk = int(min(n_s, max(1, CLOCK_CHUNK_BYTES // per_seed)))
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
