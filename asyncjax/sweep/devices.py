"""A chunk on the devices: the compiled batch function split with ``shard_map``, and its arguments."""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from asyncjax.delays.base import setting_groups
from asyncjax.engine import Spec, Trace, jitted, run_batch
from asyncjax.sweep.chunks import ChunkCut
from asyncjax.sweep.prepare import Prepared


@lru_cache(maxsize=64)
def sharded(spec: Spec, devices: tuple, axis: str | None):
    """The compiled batch function, split over ``devices`` along ``axis``."""
    if axis is None:
        return jitted(spec)
    mesh = Mesh(np.array(devices), ("dev",))
    on_s = P("dev") if axis == "seed" else P()
    on_h = P("dev") if axis == "hyper" else P()
    out_2d = P("dev", None) if axis == "seed" else P(None, "dev")
    out = Trace(
        metrics=out_2d,
        diverged_at=out_2d,
        final=out_2d if spec.keep_final else None,
        params=out_2d if spec.record_params else None,
    )
    fn = jax.shard_map(
        partial(run_batch, spec),
        mesh=mesh,
        in_specs=(P(), on_h, on_s, P(), P(), P(), on_h),
        out_specs=out,
        check_vma=False,
    )
    return jax.jit(fn)


def batch_function(spec: Spec, cut: ChunkCut, devices: tuple):
    """The compiled function of a bucket's chunks: on every device if the cut splits them, else the first."""
    return sharded(spec, devices if cut.shard_axis else devices[:1], cut.shard_axis)


class SharedInputs(NamedTuple):
    """What every chunk of a sweep passes beside its seeds and points, in the sweep's float dtype."""

    dtype: Any
    operands: Any  # the problem's
    x0: Any  # the fixed start, or None (a random start per seed)
    bound: Any  # the norm bound, a scalar
    delay_operands: Any  # the delay model's
    setting_names: tuple | None = None  # a per-setting delay model's swept values


def shared_inputs(prep: Prepared) -> SharedInputs:
    """The shared arguments of a sweep's chunks (computed once per run)."""
    dtype = jnp.result_type(float)
    return SharedInputs(
        dtype,
        prep.problem.operands(dtype),
        None
        if not prep.spec.fixed_init
        else jax.tree.map(lambda a: jnp.asarray(a, dtype), prep.x0),
        jnp.asarray(prep.bound, dtype),
        prep.model.operands(dtype),
        tuple(h.name for h in prep.model.hyperparameters) if prep.model.per_setting else None,
    )


def chunk_groups(shared: SharedInputs, cut: ChunkCut, hyper: dict) -> tuple | None:
    """A per-setting delay model's groups of a chunk's points (`RingContext.groups`), or None.

    Counted per block of points a device holds when the points are split over the devices
    (indices within the block, blocks one after another). The settings are padded to the
    bucket's count, at most a block's points, so every chunk has the same shapes.
    """
    if shared.setting_names is None:
        return None
    names = shared.setting_names
    blocks = cut.n_dev if cut.shard_axis == "hyper" else 1
    size = cut.chunk_hyper // blocks
    total = setting_groups({k: cut.hyper[k] for k in names})[0].size
    parts = [
        setting_groups({k: hyper[k][b * size : (b + 1) * size] for k in names}, min(total, size))
        for b in range(blocks)
    ]
    return tuple(jnp.asarray(np.concatenate(a)) for a in zip(*parts))


def chunk_args(shared: SharedInputs, cut: ChunkCut, i: int) -> tuple:
    """The arguments of chunk ``i`` of ``cut`` (padded to the chunk's shape)."""
    _, _, c_seeds, c_hyper = cut.chunk(i)
    return (
        shared.operands,
        {k: jnp.asarray(a, shared.dtype) for k, a in c_hyper.items()},
        jnp.asarray(c_seeds),
        shared.x0,
        shared.bound,
        shared.delay_operands,
        chunk_groups(shared, cut, c_hyper),
    )
