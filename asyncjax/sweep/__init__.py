"""Sweeps: a grid over (momentum, lr, delay, …, seed) run as one batched computation.

A grid's axes are whatever the problem, the optimizer and the delay model
declare (e.g. ``momentum``, ``lr``, ``delay``, optax's ``b1``), plus ``seed``.
The grid is split into seeds (S) and hyperparameter points (H = every
combination of the other axes). Every seed meets every point, and points that
share a seed share its data stream (common random numbers), which makes paired
comparisons across μ and τ far less noisy and draws the stream once per seed.

The points are grouped by the delay ring they need (:mod:`asyncjax.sweep.memory`;
one ring unless memory binds), each group is cut into chunks of equal shape
(the last one padded, so one compilation serves all), each chunk is split over
the local devices with ``shard_map``, and, given ``out=DIR``, every finished
chunk is written to disk at once: a killed sweep restarted with
``resume=True`` redoes no finished chunk. Every chunk file records which seeds
and points it holds, so a sweep can be resumed with another chunk size, ring
grouping, device or process count (see :class:`_Checkpoint`). In a
``jax.distributed`` job each process computes its share of the chunks and the
processes meet in the output folder (:mod:`asyncjax.sweep.distributed`).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from asyncjax._io import atomic_write, ensure_dir, jsonable, write_json
from asyncjax._validate import check_int, check_positive
from asyncjax._version import __version__
from asyncjax.delays import DelayModel, get_delay_model
from asyncjax.engine import Spec, Trace, jitted, run_batch
from asyncjax.mitigations import Mitigation, get_mitigation
from asyncjax.optim import Optimizer, get_optimizer, heavy_ball
from asyncjax.problems.base import Problem
from asyncjax.results import Results
from asyncjax.simulate import check_seeds, resolve_hp, start_of
from asyncjax.sweep import distributed
from asyncjax.sweep.distributed import DistributedError
from asyncjax.sweep.memory import (
    DEFAULT_MAX_BUCKETS,
    Shapes,
    choose_buckets,
    chunk_for,
    chunk_shared_bytes,
    describe_devices,
    device_budget,
    one_bucket,
    ring_needs,
    shapes,
    trajectory_bytes,
)

__all__ = ["Grid", "sweep", "plan", "SweepPlan", "BucketPlan", "DistributedError"]


class Grid:
    """The points to simulate: axes given as lists, fixed settings as scalars.

    Axis order is kept and becomes the axis order of the results, e.g.
    ``Grid(momentum=[0.7, 0.9], delay=range(0, 151, 10), lr=5e-4, seed=range(100))``
    has axes (momentum, delay, seed) and a fixed lr. Names: ``seed``, the
    optimizer's (``momentum``, ``lr``; optax's own names such as ``b1``), the
    delay model's axis (``delay``, ``max_delay`` or ``workers``) and the
    problem's (e.g. ``noise``). Unset: the parts' defaults (momentum 0, delay 0),
    seed 0.
    """

    def __init__(self, **axes: Any):
        if not axes:
            raise ValueError("a Grid needs at least one axis or setting (lr is required)")
        self.axes: dict[str, np.ndarray] = {}
        self.fixed: dict[str, Any] = {}
        for name, values in axes.items():
            if isinstance(values, (range, list, tuple, np.ndarray)) or (
                hasattr(values, "shape") and np.ndim(values) == 1
            ):
                arr = np.asarray(list(values) if isinstance(values, range) else values)
                if arr.ndim != 1 or arr.size == 0:
                    raise ValueError(
                        f"grid axis {name!r} must be a non-empty 1-D list, got {values!r}"
                    )
                self.axes[name] = arr
            elif np.ndim(values) == 0:
                self.fixed[name] = values.item() if hasattr(values, "item") else values
            else:
                raise ValueError(
                    f"grid axis {name!r} must be a scalar or a 1-D list, got shape {np.shape(values)}"
                )

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes.values())

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def values(self, name: str, default: Any) -> np.ndarray:
        """All values a setting takes (axis values, or the fixed value, or the default)."""
        if name in self.axes:
            return self.axes[name]
        return np.asarray([self.fixed.get(name, default)])

    def describe(self) -> dict[str, Any]:
        return {"axes": {k: v.tolist() for k, v in self.axes.items()}, "fixed": dict(self.fixed)}

    def __repr__(self) -> str:
        parts = [f"{k}[{v.size}]" for k, v in self.axes.items()] + [
            f"{k}={v!r}" for k, v in self.fixed.items()
        ]
        return f"Grid({', '.join(parts)})"


@dataclass(frozen=True)
class _Plan:
    seeds: np.ndarray  # (S,)
    hyper: dict  # name -> (H,) NumPy array
    chunk_seeds: int  # S_c (padded for sharding)
    chunk_hyper: int  # H_c
    shard_axis: str | None  # "seed", "hyper" or None

    @property
    def n_seed_blocks(self) -> int:
        return math.ceil(self.seeds.size / self.chunk_seeds)

    @property
    def n_hyper_blocks(self) -> int:
        return math.ceil(self.n_hyper / self.chunk_hyper)

    @property
    def n_hyper(self) -> int:
        return next(iter(self.hyper.values())).size

    @property
    def n_chunks(self) -> int:
        return self.n_seed_blocks * self.n_hyper_blocks

    def chunk(self, i: int) -> tuple[slice, slice, np.ndarray, dict]:
        """Seed and hyper slices of chunk ``i`` and its padded inputs."""
        bs, bh = divmod(i, self.n_hyper_blocks)
        s = slice(bs * self.chunk_seeds, min((bs + 1) * self.chunk_seeds, self.seeds.size))
        h = slice(bh * self.chunk_hyper, min((bh + 1) * self.chunk_hyper, self.n_hyper))
        seeds = _pad(self.seeds[s], self.chunk_seeds)
        hyper = {k: _pad(a[h], self.chunk_hyper) for k, a in self.hyper.items()}
        return s, h, seeds, hyper


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    """Pads by repeating the last entry (results of the padding are discarded)."""
    return a if a.size == n else np.concatenate([a, np.repeat(a[-1:], n - a.size)])


def _make_plan(seeds: np.ndarray, hyper: dict, chunk: int, n_dev: int) -> _Plan:
    S, H = seeds.size, next(iter(hyper.values())).size
    if H <= chunk:
        h_c, s_c = H, min(S, max(1, chunk // H))
    else:
        h_c, s_c = chunk, 1
    axis = None
    if n_dev > 1:
        if s_c >= n_dev:
            axis, s_c = "seed", math.ceil(s_c / n_dev) * n_dev
        elif h_c >= n_dev:
            axis, h_c = "hyper", math.ceil(h_c / n_dev) * n_dev
    return _Plan(seeds, hyper, s_c, h_c, axis)


@lru_cache(maxsize=64)
def _sharded(spec: Spec, devices: tuple, axis: str | None):
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
        in_specs=(P(), on_h, on_s, P(), P(), P()),
        out_specs=out,
        check_vma=False,
    )
    return jax.jit(fn)


def _in_notebook() -> bool:
    """Whether stderr is a Jupyter kernel's stream (a notebook, Colab)."""
    return type(sys.stderr).__module__.split(".")[0] == "ipykernel"


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


class _Progress:
    """A one-line progress report on stderr.

    Redrawn in place in a terminal or a notebook; elsewhere (a log file, a
    pipe) one line at most every 10 s and one at the end. Shown by default in
    a terminal or a notebook; ``enabled=True`` shows it anywhere.
    """

    def __init__(self, total: int, work_per_chunk: float, enabled: bool | None):
        self.total, self.work = total, work_per_chunk
        self.tty = _is_tty() or _in_notebook()
        self.enabled = self.tty if enabled is None else bool(enabled)
        self.start = time.perf_counter()
        self.last_print = 0.0

    def update(self, done: int, computed: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self.last_print < (0.2 if self.tty else 10.0):
            return
        self.last_print = now
        elapsed = now - self.start
        if done >= self.total and not computed:
            msg = "asyncjax: nothing to compute: every chunk is on disk already"
        else:
            rate = computed * self.work / elapsed if elapsed > 0 and computed else 0.0
            eta = f"{(self.total - done) / computed * elapsed:.1f}s" if computed else "?"
            msg = (
                f"asyncjax: chunk {done}/{self.total}  {rate:.3g} trajectory-steps/s  "
                f"elapsed {elapsed:.1f}s  eta {eta}"
            )
        print(
            ("\r" + msg) if self.tty else msg,
            end="" if self.tty and done < self.total else "\n",
            file=sys.stderr,
            flush=True,
        )


@dataclass(frozen=True)
class BucketPlan:
    """Grid points that share one compiled delay ring, and their chunks.

    Attributes:
      spec: the compiled configuration (``spec.buffer`` is this bucket's ring).
      points: (H_b,) indices of the bucket's points among the sweep's points.
      chunks: how its seeds × points are cut into compiled calls.
      bytes_per_trajectory: the planner's accounting (:func:`asyncjax.sweep.memory.trajectory_bytes`).
      bytes_needed: what the ring, state and records strictly need.
      shared_bytes: bytes one chunk needs once per device (operands, pre-drawn data).
      n_devices: the devices a chunk may be split over.
    """

    spec: Spec
    points: np.ndarray
    chunks: _Plan
    bytes_per_trajectory: int
    bytes_needed: int
    shared_bytes: int
    n_devices: int = 1

    @property
    def n_shards(self) -> int:
        return 1 if self.chunks.shard_axis is None else self.n_devices

    @property
    def chunk_trajectories(self) -> int:
        return self.chunks.chunk_seeds * self.chunks.chunk_hyper

    @property
    def peak_bytes(self) -> int:
        """Planned device bytes of one chunk, all its devices together."""
        return (
            self.chunk_trajectories * self.bytes_per_trajectory + self.shared_bytes * self.n_shards
        )


class SweepPlan:
    """What a sweep runs: its buckets, their chunks and the memory they take.

    Attributes:
      buckets: one :class:`BucketPlan` per compiled ring, smallest ring first.
      devices: the local devices each chunk is split over.
      budget: bytes one chunk may use per device.
      steps: iterations per trajectory.
      n_seeds, n_points: the grid's seeds and hyperparameter points.
      one_ring_bytes: bytes per trajectory with that one ring (no buckets).
    """

    def __init__(
        self,
        buckets: list[BucketPlan],
        devices: tuple,
        budget: int,
        steps: int,
        n_seeds: int,
        n_points: int,
        one_ring_bytes: int,
        prepared: Any = None,
    ):
        self.buckets, self.devices, self.budget, self.steps = buckets, devices, budget, steps
        self.n_seeds, self.n_points, self.one_ring_bytes = n_seeds, n_points, one_ring_bytes
        self._prep = prepared

    @property
    def sizes(self) -> Shapes:
        """The sizes of one trajectory's parts (:func:`asyncjax.sweep.memory.shapes`)."""
        return self._prep.probe

    def calibrate(self, steps: int = 500) -> dict[str, float]:
        """Times a short run of the busiest bucket's first chunk and extrapolates.

        The chunk (full shape, about ``steps`` steps, a multiple of the record
        interval) runs twice: the first call compiles. The estimate adds one
        compile per bucket to the sweep's trajectory-steps at the measured rate.

        Returns:
          ``rate`` (trajectory-steps/s), ``compile_s``, ``estimate_s``.
        """
        bp = max(self.buckets, key=lambda x: x.points.size)
        r = bp.spec.record_every
        short = dc_replace(
            bp, spec=dc_replace(bp.spec, steps=r * max(1, min(steps, self.steps) // r))
        )
        runner = _Runner(
            self._prep,
            SweepPlan(
                [short],
                self.devices,
                self.budget,
                short.spec.steps,
                self.n_seeds,
                self.n_points,
                self.one_ring_bytes,
            ),
            None,
            {},
            None,
            False,
        )
        fn, args = runner.fn(0), runner.args(0, 0)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times.append(time.perf_counter() - t0)
        rate = bp.chunk_trajectories * short.spec.steps / times[1]
        compile_s = max(0.0, times[0] - times[1])
        total = sum(x.chunks.n_chunks * x.chunk_trajectories for x in self.buckets) * self.steps
        return {
            "rate": rate,
            "compile_s": compile_s,
            "estimate_s": total / rate + compile_s * len(self.buckets),
        }

    @property
    def work(self) -> list[tuple[int, int]]:
        """Every (bucket, chunk) pair, in the order a single process computes them."""
        return [(b, i) for b, bp in enumerate(self.buckets) for i in range(bp.chunks.n_chunks)]

    @property
    def peak_bytes(self) -> int:
        """The largest planned chunk (chunks run one after another)."""
        return max(b.peak_bytes for b in self.buckets)

    @property
    def resident_bytes(self) -> int:
        """Planned bytes if every trajectory of the sweep were on the devices at once."""
        return sum(self.n_seeds * b.points.size * b.bytes_per_trajectory for b in self.buckets)

    def digest(self) -> str:
        """A hash of the cut (buckets, chunk shapes): processes of one job must agree on it."""
        parts = [
            (b.spec.buffer, b.chunks.chunk_seeds, b.chunks.chunk_hyper, b.points.tolist())
            for b in self.buckets
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """The plan as JSON-serialisable numbers (what ``asyncjax plan`` prints)."""
        return {
            "devices": describe_devices(self.devices),
            "budget_bytes_per_device": self.budget,
            "trajectories": self.n_seeds * self.n_points,
            "steps": self.steps,
            "chunks": len(self.work),
            "peak_bytes": self.peak_bytes,
            "resident_bytes": self.resident_bytes,
            "resident_bytes_one_ring": self.n_seeds * self.n_points * self.one_ring_bytes,
            "buckets": [
                {
                    "buffer": b.spec.buffer,
                    "points": int(b.points.size),
                    "chunks": b.chunks.n_chunks,
                    "chunk_shape": [b.chunks.chunk_seeds, b.chunks.chunk_hyper],
                    "bytes_per_trajectory": b.bytes_per_trajectory,
                    "bytes_per_trajectory_needed": b.bytes_needed,
                    "peak_bytes": b.peak_bytes,
                }
                for b in self.buckets
            ],
        }


@dataclass(frozen=True)
class _Prepared:
    """A validated sweep before it runs: its static configuration, points and metadata."""

    problem: Problem
    grid: Grid
    spec: Spec  # with the ring of the grid's largest delay
    model: DelayModel
    seeds: np.ndarray  # (S,)
    hyper: dict  # name -> (H,) float64
    hyper_dims: tuple
    x0: Any
    bound: float
    probe: Shapes
    single: bool
    attrs: dict
    ring_fixed: bool  # the caller chose the buffer: one ring for every point


def _prepare(
    problem: Problem,
    grid: Grid,
    *,
    steps: int,
    record_every: int,
    optimizer: Any = None,
    delay_model: Any = "constant",
    mitigation: Any = None,
    init: Any = None,
    buffer: int | None = None,
    norm_bound: float | None = None,
    record_iterates: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> _Prepared:
    """Validates a sweep's settings and lays out its points (nothing compiles)."""
    optimizer = heavy_ball() if optimizer is None else get_optimizer(optimizer)
    model = get_delay_model(delay_model)
    mit = get_mitigation(mitigation)
    mit = mit.bind(optimizer) if mit is not None else None
    settings = {**{k: v for k, v in grid.fixed.items()}, **{k: v for k, v in grid.axes.items()}}
    settings.pop("seed", None)
    ring_fixed = buffer is not None
    if buffer is None:
        buffer = model.buffer_for(settings.get(model.axis, 0))
    buffer = check_int(buffer, "buffer", minimum=1)
    values = resolve_hp(
        problem, optimizer, model, settings, buffer, mit
    )  # validates, fills defaults
    bound = problem.default_norm_bound if norm_bound is None else norm_bound
    check_positive(bound, "norm_bound", allow_inf=True)
    seeds = check_seeds(grid.values("seed", 0))
    _check_unique(seeds)
    model.check_run(seeds, steps)
    fixed, x0 = start_of(problem, init)

    # Hyperparameter points: every combination of the non-seed axes, in grid order.
    hyper_dims = tuple(d for d in grid.dims if d != "seed")
    mesh = np.meshgrid(*(grid.axes[n] for n in hyper_dims), indexing="ij")
    n_hyper = int(np.prod([grid.axes[n].size for n in hyper_dims], dtype=np.int64))

    def column(name: str, vals: np.ndarray) -> np.ndarray:
        if name in hyper_dims:
            return mesh[hyper_dims.index(name)].reshape(-1).astype(np.float64)
        return np.full(n_hyper, float(vals[0]))

    hyper = {name: column(name, vals) for name, vals in values.items()}
    probe = shapes(problem, optimizer, hyper, x0, fixed)
    single = (
        len(jax.tree.leaves(probe.params)) == 1 and len(jax.tree.leaves(probe.params)[0].shape) == 1
    )
    if record_iterates and not single:
        raise ValueError(
            "record_iterates needs parameters that are one vector; "
            f"{type(problem).__name__}'s are a pytree"
        )
    spec = Spec(
        problem,
        optimizer,
        model,
        steps,
        record_every,
        buffer,
        fixed_init=fixed,
        record_params=bool(record_iterates),
        keep_final=single,
        mitigation=mit,
    )
    attrs = _settings(problem, optimizer, model, mit, grid, spec, bound, x0 if fixed else None)
    attrs["variables"] = _variables(problem)
    if metadata is not None:
        attrs["source"] = jsonable(dict(metadata))
    return _Prepared(
        problem,
        grid,
        spec,
        model,
        seeds,
        hyper,
        hyper_dims,
        x0,
        bound,
        probe,
        single,
        attrs,
        ring_fixed,
    )


def _settings(problem, optimizer, model, mit, grid, spec, bound, x0) -> dict[str, Any]:
    """The sweep's settings as saved (their hash is the sweep key)."""
    x0_list = (
        None
        if x0 is None
        else jax.tree.map(lambda a: np.asarray(a).tolist(), problem.from_internal(x0))
    )
    attrs = {
        "asyncjax_version": __version__,
        "jax_version": jax.__version__,
        "problem": problem.describe(),
        "optimizer": optimizer.describe(),
        "grid": grid.describe(),
        "steps": spec.steps,
        "record_every": spec.record_every,
        "buffer": spec.buffer,
        "delay_model": model.name,
        "norm_bound": bound,
        "record_iterates": spec.record_params,
        "init": x0_list if x0 is not None else "random per seed (init stream)",
        "dtype": str(jnp.dtype(jnp.result_type(float))),
        "data_stream": "word m of step k = Threefry-2x32[fold_in(key(seed), stream)](k, m // 2)[m % 2]; "
        "stream 0: data, stream 1: delays, stream 2: random starts (asyncjax._rng)",
    }
    if (
        model.describe() != {"name": model.name} or mit is not None
    ):  # settings of the newer parts only
        attrs.update(delay=model.describe(), mitigation=None if mit is None else mit.describe())
    return attrs


def _plan(
    prep: _Prepared, chunk_size: int | None, devices: Sequence[Any] | None, buckets: int | None
) -> SweepPlan:
    """Buckets the points by the ring they need and cuts each bucket into chunks."""
    devices = tuple(devices or jax.local_devices())
    spec, probe = prep.spec, prep.probe
    n_points = next(iter(prep.hyper.values())).size
    budget = device_budget(devices[0])

    def cost(ring: int) -> int:
        return trajectory_bytes(dc_replace(spec, buffer=ring), probe)

    if buckets is None:  # buckets save memory at the price of compiles: only where memory binds
        binding = chunk_size is None and prep.seeds.size * n_points > chunk_for(
            cost(spec.buffer), budget, len(devices)
        )
        buckets = DEFAULT_MAX_BUCKETS if binding else 1
    needs = None
    if not prep.ring_fixed and buckets > 1:
        axis = prep.model.axis
        needs = (
            ring_needs(prep.model, prep.hyper[axis], spec.buffer) if axis in prep.hyper else None
        )
    groups = (
        one_bucket(n_points, spec.buffer) if needs is None else choose_buckets(needs, cost, buckets)
    )
    out = []
    for g in groups:
        b_spec = dc_replace(spec, buffer=g.buffer)
        per = trajectory_bytes(b_spec, probe)
        chunk = chunk_size if chunk_size is not None else chunk_for(per, budget, len(devices))
        sub = {k: a[g.points] for k, a in prep.hyper.items()}
        cut = _make_plan(prep.seeds, sub, chunk, len(devices))
        n_shard_seeds = cut.chunk_seeds // (len(devices) if cut.shard_axis == "seed" else 1)
        out.append(
            BucketPlan(
                b_spec,
                g.points,
                cut,
                per,
                trajectory_bytes(b_spec, probe, strict=True),
                chunk_shared_bytes(b_spec, probe, n_shard_seeds),
                len(devices),
            )
        )
    return SweepPlan(
        out, devices, budget, spec.steps, prep.seeds.size, n_points, cost(spec.buffer), prep
    )


def plan(
    problem: Problem,
    grid: Grid,
    *,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    buckets: int | None = None,
    **settings: Any,
) -> SweepPlan:
    """The plan :func:`sweep` would follow with the same arguments, without running it.

    Args:
      problem, grid, chunk_size, devices, buckets: as for :func:`sweep`.
      **settings: ``steps``, ``record_every`` and the other settings of
        :func:`sweep` that shape a trajectory (``optimizer``, ``delay_model``,
        ``mitigation``, ``init``, ``buffer``, ``norm_bound``, ``record_iterates``).

    Returns:
      :class:`SweepPlan`: the buckets of points sharing a delay ring, their
      chunks, bytes per trajectory and the peak memory of a chunk.
    """
    _check_cut(chunk_size, buckets)
    return _plan(_prepare(problem, grid, **settings), chunk_size, devices, buckets)


def _check_cut(chunk_size: int | None, buckets: int | None) -> None:
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size", minimum=1)
    if buckets is not None:
        check_int(buckets, "buckets", minimum=1)


def sweep(
    problem: Problem,
    grid: Grid,
    *,
    steps: int,
    record_every: int,
    optimizer: Optimizer | str | None = None,
    delay_model: str | DelayModel = "constant",
    mitigation: str | Mitigation | None = None,
    init: Any = None,
    buffer: int | None = None,
    norm_bound: float | None = None,
    record_iterates: bool = False,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    buckets: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    metadata: Mapping[str, Any] | None = None,
    timeout: float = 600.0,
) -> Results:
    """Simulates every point of ``grid`` and returns the recorded metrics.

    Inside an initialised ``jax.distributed`` job (more than one process) each
    process computes its share of the chunks on its local devices and writes
    them to ``out``, which every process must reach; after all have finished,
    every process returns the whole results and process 0 writes
    ``results.npz``. A process that dies leaves its finished chunks for
    ``resume=True``; the others stop with :class:`DistributedError`.

    Args:
      problem: the problem (e.g. :class:`StreamingPCA`, :class:`Quadratic`, :class:`MLP`).
      grid: the :class:`Grid` of settings.
      steps: iterations per trajectory, a multiple of ``record_every``.
      record_every: metrics are recorded every this many steps (and at step 0).
      optimizer: default :func:`asyncjax.optim.heavy_ball` (eq. 5); or
        ``nesterov()``, ``from_optax(optax.adam)``, or a name such as ``"optax.adam"``.
      delay_model: ``"constant"``, ``"uniform"``, ``"geometric"``, ``"workers"``
        (or :func:`asyncjax.delays.workers` with options; ``buffer`` is then
        the largest worker count one compilation serves), or
        :func:`asyncjax.delays.trace`.
      mitigation: ``"delay_adaptive"``, ``"dc_asgd"``, ``"drop_stale"`` or a
        :class:`~asyncjax.mitigations.Mitigation`; its parameters are grid axes.
      init: start in the problem's coordinates; default the problem's own
        (the saddle e_2 for streaming PCA; a random start per seed for an MLP).
      buffer: delay-buffer length; default just enough for the grid's delays,
        and then (constant and uniform delays) each group of points gets just
        the ring its own delays need (see ``buckets``).
      norm_bound: trajectories whose parameter norm exceeds it are frozen and
        flagged; default the problem's.
      record_iterates: also keep the parameters at every record, as variable
        ``iterates`` (grid axes, step, component) — for single-array parameters.
      chunk_size: most trajectories per compiled call; default from memory
        (:mod:`asyncjax.sweep.memory`). Results do not depend on it.
      devices: devices to split each chunk over; default all local devices.
        Results do not depend on how many.
      buckets: most delay rings compiled (points grouped by the ring they
        need, constant and uniform delays); default 6 where the sweep needs
        more than one chunk of the memory budget, else 1 (every point gets
        the largest ring; one compile). Results do not depend on it.
      out: a folder to checkpoint chunks and the final ``results.npz`` into.
      resume: reuse the finished chunks already in ``out`` (same settings only;
        any chunk size, device and process count). Needs ``out``.
      overwrite: delete what ``out`` holds of another sweep (or of this one,
        without ``resume``) instead of failing.
      progress: show progress on stderr; default when stderr is a terminal
        or the code runs in a Jupyter kernel.
      metadata: JSON-serialisable notes stored in the results' attrs under
        ``"source"`` (e.g. the configuration file the sweep came from). They
        are not settings: they do not affect resuming.
      timeout: in a multi-process job, seconds a process waits for the others
        at a meeting point (after its share of the chunks, the others finishing
        theirs) before it stops with :class:`DistributedError`.

    Returns:
      :class:`Results` with one variable per metric of the problem (``error``
      always; grid axes, step), ``diverged_at`` (grid axes; -1 if never) and,
      for single-array parameters, ``final`` (grid axes, component) and, if
      asked for, ``iterates`` (grid axes, step, component). With the worker
      model also ``wall_time`` (workers, seed, step), ``staleness_mean``,
      ``staleness_max`` (workers, seed) and ``staleness_hist`` (workers, seed,
      staleness): the clock depends on nothing else.

    Raises:
      DistributedError: in a multi-process job, another process died, failed
        or disagreed on the plan; finished chunks stay in ``out``.
    """
    if resume and out is None:
        raise ValueError("resume=True needs out=DIR, the folder of the sweep to continue")
    _check_cut(chunk_size, buckets)
    check_positive(timeout, "timeout")
    prep = _prepare(
        problem,
        grid,
        steps=steps,
        record_every=record_every,
        optimizer=optimizer,
        delay_model=delay_model,
        mitigation=mitigation,
        init=init,
        buffer=buffer,
        norm_bound=norm_bound,
        record_iterates=record_iterates,
        metadata=metadata,
    )
    sp = _plan(prep, chunk_size, devices, buckets)
    group = distributed.current(sweep_key(prep.attrs), timeout)
    if group is not None and out is None:
        raise ValueError(
            f"a sweep in a {group.size}-process job needs out=DIR (--out), a folder every process "
            "can reach: the processes meet there"
        )
    ckpt = _open_checkpoint(out, prep.attrs, resume, overwrite, group, sp)
    store = _allocate(prep)
    S, H = store["diverged_at"].shape
    covered = (
        ckpt.restore(store, prep.seeds, prep.hyper)
        if ckpt is not None and resume
        else np.zeros((S, H), bool)
    )
    todo = [w for w in sp.work if not _cells_of(sp, w, covered).all()]
    if group is not None:
        group.barrier(
            "restored", "read the finished chunks"
        )  # nobody writes before everyone has read
        todo = todo[group.index :: group.size]
    run = _Runner(prep, sp, ckpt, store, covered, progress)
    run.all(todo)
    computed = run.computed
    if group is not None:
        computed = _gather(group, ckpt, store, prep, run.computed)
    results = _results(prep, sp, store, run, computed, 1 if group is None else group.size)
    if ckpt is not None and (group is None or group.leader):
        results.save(ckpt.root / "results.npz")
    return results


def _results(
    prep: _Prepared, sp: SweepPlan, store: dict, run: _Runner, computed: int, processes: int
) -> Results:
    """The assembled results, with the delay model's own variables and the run's timing and memory."""
    results = _assemble(prep.grid, prep.hyper_dims, prep.spec, store, prep.attrs)
    for name, (arr, dims) in prep.model.sweep_outputs(
        prep.grid,
        prep.seeds,
        steps=prep.spec.steps,
        record_every=prep.spec.record_every,
        slots=prep.spec.buffer,
    ).items():
        results.data[name], results.dims[name] = arr, dims
        if "staleness" in dims:
            results.coords["staleness"] = np.arange(arr.shape[-1])
    results.attrs["timing"] = {
        "wall_s": run.wall,
        "first_chunk_s": run.compile_s,
        "chunks": len(sp.work),
        "chunks_computed": computed,
        "chunks_reused": len(sp.work) - computed,
        "devices": max(b.n_shards for b in sp.buckets),
        "processes": processes,
        "buckets": [b.spec.buffer for b in sp.buckets],
        "peak_bytes_planned": sp.peak_bytes,
        "peak_bytes_measured": run.peak_measured,
    }
    return results


def _open_checkpoint(out, attrs: dict, resume: bool, overwrite: bool, group, sp: SweepPlan):
    """The chunk folder; in a multi-process job process 0 prepares it and the others wait for it."""
    if out is None:
        return None
    if group is None:
        return _Checkpoint(out, attrs, resume, overwrite)
    if group.leader:
        group.publish("plan", sp.digest())
        try:
            ckpt = _Checkpoint(out, attrs, resume, overwrite)
        except Exception as err:
            group.publish("setup", f"{type(err).__name__}: {err}")
            raise
        group.publish("setup", "ok")
        return ckpt
    if group.fetch("plan", "process 0's plan") != sp.digest():
        raise DistributedError(
            f"process {group.index} cut the sweep into other chunks than process 0 (the processes see different "
            "devices or memory); pass the same chunk_size (run.chunk_size) to every process"
        )
    status = group.fetch("setup", "process 0 to prepare the output folder")
    if status != "ok":
        raise DistributedError(f"process 0 could not prepare {out}: {status}")
    return _Checkpoint.attach(out, attrs, overwrite)


def _gather(group, ckpt, store: dict, prep: _Prepared, computed: int) -> int:
    """Waits for every process's chunks, reads them all into ``store``; the chunks computed by all."""
    group.publish(f"computed/{group.index}", str(computed))
    group.barrier(
        "computed",
        f"finish their share of the chunks (the finished ones are in {ckpt.root}; rerun with "
        "resume=True, --resume, to compute only the missing ones)",
    )
    covered = ckpt.restore(store, prep.seeds, prep.hyper)
    if not covered.all():
        raise DistributedError(
            f"after every process finished, {int((~covered).sum())} (seed, point) cells have no chunk file in "
            f"{ckpt.dir}; is the folder shared by every process? Rerun with --resume"
        )
    return sum(int(group.fetch(f"computed/{p}", f"process {p}'s count")) for p in range(group.size))


def _allocate(prep: _Prepared) -> dict[str, np.ndarray]:
    """Host arrays (S, H, ...) for every recorded variable."""
    S, H, n_rec = prep.seeds.size, next(iter(prep.hyper.values())).size, prep.spec.n_records
    fdt = np.dtype(jnp.result_type(float))
    store = {
        name: np.empty((S, H, n_rec), np.dtype(m.dtype)) for name, m in prep.probe.metrics.items()
    }
    store["diverged_at"] = np.empty((S, H), np.int32)
    if prep.single:
        d = jax.tree.leaves(prep.probe.params)[0].shape[0]
        store["final"] = np.empty((S, H, d), fdt)
        if prep.spec.record_params:
            store["iterates"] = np.empty((S, H, n_rec, d), fdt)
    return store


def _cells_of(sp: SweepPlan, w: tuple[int, int], covered: np.ndarray) -> np.ndarray:
    """The covered mask of work item ``w``'s (seed, point) cells."""
    b = sp.buckets[w[0]]
    s, h, _, _ = b.chunks.chunk(w[1])
    return covered[s][:, b.points[h]]


class _Runner:
    """Computes work items (bucket, chunk), storing and checkpointing each as it finishes."""

    def __init__(
        self,
        prep: _Prepared,
        sp: SweepPlan,
        ckpt,
        store: dict,
        covered: np.ndarray,
        progress: bool | None,
    ):
        self.prep, self.sp, self.ckpt, self.store, self.covered = prep, sp, ckpt, store, covered
        self.progress = progress
        dtype = jnp.result_type(float)
        self.dtype = dtype
        self.ops = prep.problem.operands(dtype)
        self.x0 = (
            None
            if not prep.spec.fixed_init
            else jax.tree.map(lambda a: jnp.asarray(a, dtype), prep.x0)
        )
        self.bound = jnp.asarray(prep.bound, dtype)
        self.dops = prep.model.operands(dtype)
        self.computed, self.compile_s, self.wall, self.peak_measured = 0, None, 0.0, 0
        self.measured: set[int] = set()

    def fn(self, b: int):
        """Bucket ``b``'s compiled batch function."""
        bp = self.sp.buckets[b]
        devs = self.sp.devices
        return _sharded(bp.spec, devs if bp.chunks.shard_axis else devs[:1], bp.chunks.shard_axis)

    def args(self, b: int, i: int) -> tuple:
        """The arguments of chunk ``i`` of bucket ``b`` (padded to the chunk's shape)."""
        _, _, c_seeds, c_hyper = self.sp.buckets[b].chunks.chunk(i)
        return (
            self.ops,
            {k: jnp.asarray(a, self.dtype) for k, a in c_hyper.items()},
            jnp.asarray(c_seeds),
            self.x0,
            self.bound,
            self.dops,
        )

    def _measure(self, b: int, fn, args: tuple) -> None:
        """Records XLA's memory analysis of bucket ``b``'s executable (compiled once, then called)."""
        if b in self.measured:
            return
        self.measured.add(b)
        try:
            m = fn.lower(*args).compile().memory_analysis()
            per_device = (
                m.temp_size_in_bytes
                + m.argument_size_in_bytes
                + m.output_size_in_bytes
                - m.alias_size_in_bytes
            )
        except Exception:  # memory_analysis is optional for a backend
            return
        self.peak_measured = max(self.peak_measured, int(per_device) * self.sp.buckets[b].n_shards)

    def all(self, todo: list[tuple[int, int]]) -> None:
        """Computes ``todo`` in order, keeping one chunk in flight while the previous one is stored."""
        sp = self.sp
        work = sum(sp.buckets[b].chunk_trajectories for b, _ in todo) * sp.steps / max(1, len(todo))
        bar = _Progress(len(todo), work, self.progress)
        t0 = time.perf_counter()
        pending: list[tuple[tuple[int, int], Any]] = []
        for n, (b, i) in enumerate(todo):
            args = self.args(b, i)
            fn = self.fn(b)
            tc = time.perf_counter()
            self._measure(b, fn, args)  # compiles (the call below reuses the executable)
            trace = fn(*args)
            if self.compile_s is None:
                jax.block_until_ready(trace)
                self.compile_s = time.perf_counter() - tc  # first call: compile + one chunk
            pending.append(((b, i), trace))
            if len(pending) > 1:
                self._finish(*pending.pop(0))
            self.computed += 1
            bar.update(n + 1, self.computed)
        for item in pending:
            self._finish(*item)
        if not todo:
            bar.update(0, 0)
        self.wall = time.perf_counter() - t0

    def _finish(self, w: tuple[int, int], trace: Any) -> None:
        bp = self.sp.buckets[w[0]]
        s, h, _, _ = bp.chunks.chunk(w[1])
        pts = bp.points[h]
        if isinstance(trace, Trace):
            trace = _flatten_trace(trace)
        parts = {k: np.array(v)[: s.stop - s.start, : pts.size] for k, v in trace.items()}
        cov = self.covered[s][:, pts]
        if (
            cov.any()
        ):  # a partly covered chunk: keep the cells already on disk, so files never disagree
            for k, v in parts.items():
                v[cov] = self.store[k][s][:, pts][cov]
        if self.ckpt is not None:
            self.ckpt.save(s, pts, parts, self.prep.seeds[s], self.prep.hyper)
        for k, v in parts.items():
            self.store[k][s, pts] = v


def _flatten_trace(trace: Trace) -> dict[str, Any]:
    """A chunk's outputs as flat named arrays (S, H, ...): metrics, diverged_at, final, iterates."""
    out = dict(trace.metrics)
    out["diverged_at"] = trace.diverged_at
    if trace.final is not None:
        (out["final"],) = jax.tree.leaves(trace.final)
    if trace.params is not None:
        (out["iterates"],) = jax.tree.leaves(trace.params)
    return out


def _assemble(grid, hyper_dims, spec, store, attrs) -> Results:
    S, H = store["diverged_at"].shape
    hyper_shape = tuple(grid.axes[n].size for n in hyper_dims)
    seed_pos = grid.dims.index("seed") if "seed" in grid.axes else None

    def arrange(a: np.ndarray) -> np.ndarray:
        a = a.reshape((S,) + hyper_shape + a.shape[2:])
        if seed_pos is None:
            return a[0]
        return np.moveaxis(a, 0, seed_pos)

    dims = grid.dims
    trailing = {"diverged_at": (), "final": ("component",), "iterates": ("step", "component")}
    coords = {k: v for k, v in grid.axes.items()}
    coords["step"] = spec.record_steps
    return Results(
        data={k: arrange(v) for k, v in store.items()},
        dims={k: dims + trailing.get(k, ("step",)) for k in store},
        coords=coords,
        attrs=attrs,
    )


def _columns(hyper: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The hyperparameter columns in a fixed (name) order, as chunk files record them."""
    return [hyper[k] for k in sorted(hyper)]


def _check_unique(seeds: np.ndarray) -> None:
    """Seeds name data streams: a repeated seed would be the same trajectory twice."""
    values, counts = np.unique(seeds, return_counts=True)
    if values.size != seeds.size:
        dup = values[counts > 1]
        raise ValueError(
            f"seed values must be unique; {dup[:5].tolist()} appear more than once "
            "(a repeated seed repeats the same data stream)"
        )


def _variables(problem: Any) -> dict[str, dict[str, Any]]:
    """What each saved variable is (stored in the results' metadata)."""
    worst = getattr(problem, "worst_error", None)
    docs = dict(getattr(problem, "metric_docs", {}) or {})
    out: dict[str, dict[str, Any]] = {}
    for name, doc in docs.items():
        out[name] = {
            "description": f"{doc}; recorded at steps 0, record_every, 2 record_every, ... "
            "(coordinate 'step')"
        }
    out.setdefault("error", {"description": "the problem's error metric (0 at the solution)"})
    out["error"]["description"] += (
        ". A diverged trajectory keeps the value it had when it was frozen; "
        "asyncjax.analysis counts it as failed (error = 'worst') from its "
        "divergence on."
    )
    out["error"]["worst"] = worst
    out["diverged_at"] = {
        "description": "first step at which the parameters became non-finite or their norm "
        "exceeded norm_bound; the trajectory is frozen from then on. "
        "-1: it never diverged"
    }
    out["final"] = {
        "description": "the last parameters (in the problem's simulated coordinates: the "
        "eigenbasis for streaming PCA); only for single-vector parameters"
    }
    out["iterates"] = {
        "description": "the parameters at every recorded step, same coordinates as 'final' "
        "(only with record_iterates=True)"
    }
    return out


# Entries of a sweep's attrs that describe it but do not change its results.
_NOT_SETTINGS = ("variables", "source", "timing")
_SWEEP_FORMAT = "asyncjax-sweep/2"


def sweep_key(attrs: Mapping[str, Any]) -> str:
    """A hash of every setting that changes a sweep's results.

    Chunk size and device count are not settings (results are bit-identical
    across them), and neither are descriptions (``variables``, ``source``).
    """
    settings = {k: v for k, v in attrs.items() if k not in _NOT_SETTINGS}
    text = json.dumps(jsonable(settings), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ChunkError(ValueError):
    """A chunk file that cannot be used; the message names it."""


class _Checkpoint:
    """Chunk files under ``root/chunks`` plus ``root/sweep.json`` naming the sweep.

    A chunk file is self-describing. Beside the data of its cells it holds
    ``chunk.key`` (the sweep key of :func:`sweep_key`), ``chunk.seeds`` (the seed
    value of each row), ``chunk.points`` (the index of each column among the
    sweep's hyperparameter points, in grid order) and ``chunk.hyper`` (those
    points' (momentum, lr, delay) values, as a check). Its name gives the range
    of seed positions and points it covers, so chunks of differently cut plans
    never collide.

    On resume every chunk file is read: its cells are copied into place by seed
    value and point index, and a mask records which (seed, point) cells are
    covered. The new plan -- whatever its chunk size or device count -- then
    computes only the chunks not fully covered; a chunk that is only partly
    covered is recomputed whole (its covered cells come out bit-identical, so
    nothing is mixed). A cell held by two files must agree in both, or resume
    stops. A file that cannot be read is renamed ``*.corrupt`` with a warning
    naming it, and its cells are recomputed.
    """

    def __init__(self, root: str | Path, attrs: dict, resume: bool, overwrite: bool):
        self.root = Path(root)
        self.dir = self.root / "chunks"
        self.key = sweep_key(attrs)
        self.overwrite = overwrite
        ensure_dir(self.root)
        meta_path = self.root / "sweep.json"
        results_path = self.root / "results.npz"
        chunks = self.files()
        has_data = bool(chunks) or results_path.exists()
        problem = None  # why the folder's contents cannot be kept, if they cannot
        if meta_path.exists():
            try:
                old = json.loads(meta_path.read_text())
                old_key, old_format = old["key"], old.get("format")
            except (OSError, ValueError, KeyError, TypeError) as err:
                problem = ValueError(f"{meta_path} cannot be read ({type(err).__name__}: {err})")
            else:
                if old_format != _SWEEP_FORMAT and chunks:
                    problem = ValueError(
                        f"{self.root} holds {len(chunks)} chunk(s) written by an older asyncjax, which do "
                        "not record which seeds and points they hold, so they cannot be resumed safely"
                    )
                elif old_key != self.key and has_data:
                    problem = ValueError(
                        f"{self.root} holds a different sweep (its settings differ from this one's)"
                    )
                elif has_data and not resume:
                    what = f"{len(chunks)} finished chunk(s)" if chunks else "the finished results"
                    problem = FileExistsError(
                        f"{self.root} already holds {what} of this sweep; pass resume=True (--resume) "
                        "to continue or reuse them"
                    )
        elif has_data:
            problem = ValueError(
                f"{self.root} holds {'chunks' if chunks else 'results.npz'} but no "
                "sweep.json saying which sweep they belong to"
            )
        if problem is not None:
            if not overwrite:
                raise type(problem)(
                    f"{problem}; pass overwrite=True (--overwrite) to replace what it "
                    "holds, or choose another output folder"
                )
            for path in chunks + sorted(self.dir.glob("*.corrupt")):
                path.unlink()
            if results_path.exists():
                results_path.unlink()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise type(err)(f"cannot create {self.dir}: {err.strerror or err}") from err
        write_json(meta_path, {"format": _SWEEP_FORMAT, "key": self.key, "settings": attrs})

    @classmethod
    def attach(cls, root: str | Path, attrs: dict, overwrite: bool) -> _Checkpoint:
        """The folder another process (process 0 of the job) has already prepared."""
        ck = cls.__new__(cls)
        ck.root, ck.key, ck.overwrite = Path(root), sweep_key(attrs), overwrite
        ck.dir = ck.root / "chunks"
        return ck

    def files(self) -> list[Path]:
        return sorted(self.dir.glob("chunk-*.npz")) if self.dir.is_dir() else []

    def path(self, s: slice, points: np.ndarray) -> Path:
        """A chunk's file: its seed positions and points; a digest if the points are not a range."""
        first, stop = int(points[0]), int(points[-1]) + 1
        name = f"chunk-s{s.start:07d}-{s.stop:07d}-p{first:07d}-{stop:07d}"
        if points.size != stop - first:  # a bucket's points: not contiguous
            name += "-" + hashlib.sha256(np.asarray(points, np.int64).tobytes()).hexdigest()[:8]
        return self.dir / f"{name}.npz"

    def save(
        self,
        s: slice,
        points: np.ndarray,
        parts: dict[str, np.ndarray],
        seeds: np.ndarray,
        hyper: dict,
    ) -> None:
        """Writes the cells of seed positions ``s`` × points ``points`` (ascending indices; atomically)."""
        book = {
            "chunk.key": np.array(self.key),
            "chunk.seeds": np.asarray(seeds, np.int64),
            "chunk.points": np.asarray(points, np.int64),
            "chunk.hyper": np.stack(
                [np.asarray(a[points], np.float64) for a in _columns(hyper)], axis=-1
            ),
        }
        atomic_write(self.path(s, points), lambda fh: np.savez(fh, **book, **parts))

    def _read(self, path: Path) -> dict[str, np.ndarray] | None:
        """A chunk file's arrays, or None (with a warning) if it cannot be read."""
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
            bad = path.with_name(path.name + ".corrupt")
            try:
                path.replace(bad)
                moved = f"moved to {bad.name}"
            except OSError:
                moved = "left in place"
            warnings.warn(
                f"chunk file {path} cannot be read ({type(err).__name__}: {err}); it is truncated or "
                f"damaged, so its cells will be recomputed ({moved})",
                ChunkWarning,
                stacklevel=4,
            )
            return None

    def restore(self, store: dict[str, np.ndarray], seeds: np.ndarray, hyper: dict) -> np.ndarray:
        """Copies every usable chunk on disk into ``store``; returns the (S, H) covered mask."""
        S, H = store["diverged_at"].shape
        covered = np.zeros((S, H), bool)
        position = {int(v): i for i, v in enumerate(seeds)}
        hyper_cols = np.stack(
            [np.asarray(a, np.float64) for a in _columns(hyper)], axis=-1
        )  # (H, names)
        for path in self.files():
            f = self._read(path)
            if f is None:
                continue
            try:
                covered |= self._place(path, f, store, covered, position, hyper_cols)
            except ChunkError as err:
                if not self.overwrite:
                    raise
                path.unlink()
                warnings.warn(f"{err}; deleted it (overwrite=True)", ChunkWarning, stacklevel=3)
        return covered

    def _place(
        self,
        path: Path,
        f: dict[str, np.ndarray],
        store: dict[str, np.ndarray],
        covered: np.ndarray,
        position: dict[int, int],
        hyper_cols: np.ndarray,
    ) -> np.ndarray:
        """Copies the cells of chunk file ``f`` into ``store``; returns the mask of cells it covers."""
        S, H = covered.shape
        mask = np.zeros((S, H), bool)
        if "chunk.key" not in f:
            raise ChunkError(
                f"chunk file {path} does not record which seeds and points it holds (written by "
                "an older asyncjax); delete it or pass overwrite=True (--overwrite)"
            )
        if str(f["chunk.key"]) != self.key:
            raise ChunkError(
                f"chunk file {path} belongs to a different sweep (key {f['chunk.key']}, this "
                f"sweep's {self.key}); delete it or pass overwrite=True (--overwrite)"
            )
        seed_vals, points = f["chunk.seeds"], f["chunk.points"]
        missing = [int(v) for v in seed_vals if int(v) not in position]
        if missing:
            raise ChunkError(
                f"chunk file {path} holds seed {missing[0]}, which this sweep does not have"
            )
        if points.size and (
            points.min() < 0
            or points.max() >= H
            or not np.array_equal(f["chunk.hyper"], hyper_cols[points])
        ):
            raise ChunkError(
                f"chunk file {path} holds hyperparameter points this sweep does not have"
            )
        rows = np.array([position[int(v)] for v in seed_vals], dtype=np.int64)
        cells = np.ix_(rows, points)
        for k, v in store.items():
            if (
                k not in f
                or f[k].shape != (rows.size, points.size) + v.shape[2:]
                or f[k].dtype != v.dtype
            ):
                got = f"shape {f[k].shape}, dtype {f[k].dtype}" if k in f else "nothing"
                raise ChunkError(
                    f"chunk file {path} holds {got} for variable {k!r}, not what this sweep "
                    "records; delete it or pass overwrite=True (--overwrite)"
                )
        seen = covered[cells]
        if seen.any():
            for k, v in store.items():
                if not np.array_equal(v[cells][seen], f[k][seen], equal_nan=v.dtype.kind == "f"):
                    raise ChunkError(
                        f"chunk file {path} disagrees with another chunk file over the same cells (variable "
                        f"{k!r}); the folder mixes runs: pass overwrite=True (--overwrite) to recompute"
                    )
        for k, v in store.items():
            v[cells] = f[k]
        mask[cells] = True
        return mask


class ChunkWarning(UserWarning):
    """A chunk file was unusable and its cells are recomputed."""
