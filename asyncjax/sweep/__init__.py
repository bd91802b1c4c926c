"""Sweeps: a grid over (momentum, lr, delay, …, seed) run as one batched computation.

A grid's axes are whatever the problem, the optimizer and the delay model
declare (e.g. ``momentum``, ``lr``, ``delay``, optax's ``b1``), plus ``seed``.
The grid is split into seeds (S) and hyperparameter points (H = every
combination of the other axes). Every seed meets every point, and points that
share a seed share its data stream (common random numbers), which makes paired
comparisons across μ and τ far less noisy and draws the stream once per seed.

The points are grouped by the delay ring they need (`asyncjax.sweep.memory`;
one ring unless memory binds), each group is cut into chunks of equal shape
(the last one padded, so one compilation serves all), each chunk is split over
the local devices with ``shard_map``, and, given ``out=DIR``, every finished
chunk is written to disk at once: a killed sweep restarted with
``resume=True`` redoes no finished chunk. Every chunk file records which seeds
and points it holds, so a sweep can be resumed with another chunk size, ring
grouping, device or process count (see `Checkpoint`). In a
``jax.distributed`` job each process computes its share of the chunks and the
processes meet in the output folder (`asyncjax.sweep.distributed`).

The modules, in the order data flows through them: ``grid`` (the `Grid`),
``prepare`` (validation, points, metadata), ``memory`` (bytes, budgets, ring
buckets), ``chunks`` (the chunk cut), ``devices`` (a chunk's compiled function
and arguments), ``plan`` (`BucketPlan`, `SweepPlan`,
`plan`), ``limits`` (what the machine has free: memory, disk; a sweep that does not
fit is refused with `TooLargeError` before anything compiles), ``run``
(`sweep`), ``progress``, ``assemble`` (the `Results`),
``checkpoint`` (the chunk files) and
``distributed`` (the processes of a ``jax.distributed`` job).
"""

from asyncjax.sweep.checkpoint import ChunkError, ChunkWarning, sweep_key
from asyncjax.sweep.distributed import DistributedError
from asyncjax.sweep.grid import Grid
from asyncjax.sweep.plan import BucketPlan, SweepPlan, TooLargeError, plan
from asyncjax.sweep.run import sweep

__all__ = [
    "Grid",
    "sweep",
    "plan",
    "SweepPlan",
    "BucketPlan",
    "DistributedError",
    "TooLargeError",
    "ChunkError",
    "ChunkWarning",
    "sweep_key",
]
