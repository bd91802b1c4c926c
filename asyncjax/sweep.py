"""Sweeps: a grid over (momentum, lr, delay, seed) run as one batched computation.

The grid is split into seeds (S) and hyperparameter points (H = every
combination of the other axes). Every seed meets every point, and points that
share a seed share its data stream (common random numbers), which makes paired
comparisons across μ and τ far less noisy and draws the stream once per seed.

The S × H batch is cut into chunks of equal shape (the last one padded, so one
compilation serves all), each chunk is split over the local devices with
``shard_map``, and, given ``out=DIR``, every finished chunk is written to disk
at once: a killed sweep restarted with ``resume=True`` redoes no finished chunk.
Every chunk file records which seeds and points it holds, so a sweep can be
resumed with another chunk size or device count (see :class:`_Checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from asyncjax._version import __version__
from asyncjax._validate import check_int, check_positive
from asyncjax.delays import DelayModel, get_delay_model
from asyncjax.problems import StreamingPCA
from asyncjax.results import Results, _jsonable, atomic_write, ensure_dir, write_json
from asyncjax.simulate import (
    Params,
    SimConfig,
    Trace,
    check_params,
    check_seeds,
    default_init,
    jitted_batch,
    simulate_batch,
)

__all__ = ["Grid", "sweep"]

_CPU_CHUNK_BYTES = 256 << 20


class Grid:
    """The points to simulate: axes given as lists, fixed settings as scalars.

    Axis order is kept and becomes the axis order of the results, e.g.
    ``Grid(momentum=[0.7, 0.9], delay=range(0, 151, 10), lr=5e-4, seed=range(100))``
    has axes (momentum, delay, seed) and a fixed lr. Names: ``momentum``, ``lr``,
    ``seed`` and the delay model's axis (``delay``, ``max_delay`` or ``workers``).
    Unset: momentum 0, delay 0, seed 0.
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
                    raise ValueError(f"grid axis {name!r} must be a non-empty 1-D list, got {values!r}")
                self.axes[name] = arr
            elif np.ndim(values) == 0:
                self.fixed[name] = values.item() if hasattr(values, "item") else values
            else:
                raise ValueError(f"grid axis {name!r} must be a scalar or a 1-D list, got shape {np.shape(values)}")

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
        parts = [f"{k}[{v.size}]" for k, v in self.axes.items()] + [f"{k}={v!r}" for k, v in self.fixed.items()]
        return f"Grid({', '.join(parts)})"


@dataclass(frozen=True)
class _Plan:
    seeds: np.ndarray  # (S,)
    hyper: Params  # of (H,) NumPy arrays
    chunk_seeds: int  # S_c (padded for sharding)
    chunk_hyper: int  # H_c
    shard_axis: str | None  # "seed", "hyper" or None

    @property
    def n_seed_blocks(self) -> int:
        return math.ceil(self.seeds.size / self.chunk_seeds)

    @property
    def n_hyper_blocks(self) -> int:
        return math.ceil(self.hyper.momentum.size / self.chunk_hyper)

    @property
    def n_chunks(self) -> int:
        return self.n_seed_blocks * self.n_hyper_blocks

    def chunk(self, i: int) -> tuple[slice, slice, np.ndarray, Params]:
        """Seed and hyper slices of chunk ``i`` and its padded inputs."""
        bs, bh = divmod(i, self.n_hyper_blocks)
        s = slice(bs * self.chunk_seeds, min((bs + 1) * self.chunk_seeds, self.seeds.size))
        h = slice(bh * self.chunk_hyper, min((bh + 1) * self.chunk_hyper, self.hyper.momentum.size))
        seeds = _pad(self.seeds[s], self.chunk_seeds)
        hyper = Params(*(_pad(a[h], self.chunk_hyper) for a in self.hyper))
        return s, h, seeds, hyper


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    """Pads by repeating the last entry (results of the padding are discarded)."""
    return a if a.size == n else np.concatenate([a, np.repeat(a[-1:], n - a.size)])


def _bytes_per_trajectory(cfg: SimConfig, d: int, itemsize: int) -> int:
    state = (cfg.buffer + 3) * d * itemsize + 8
    per_record = (2 + (d if cfg.record_iterates else 0)) * itemsize
    outputs = cfg.n_records * per_record + d * itemsize + 4
    return 2 * (state + outputs)  # x2: the scan carries a copy while it updates; outputs are stacked


def _default_chunk(cfg: SimConfig, d: int, itemsize: int, devices: Sequence[Any]) -> int:
    dev = devices[0]
    budget = _CPU_CHUNK_BYTES
    if dev.platform != "cpu":
        try:
            budget = int(0.5 * dev.memory_stats()["bytes_limit"])
        except Exception:  # memory_stats is optional for a backend
            budget = 4 << 30
    return max(1, budget * len(devices) // _bytes_per_trajectory(cfg, d, itemsize))


def _make_plan(seeds: np.ndarray, hyper: Params, chunk: int, n_dev: int) -> _Plan:
    S, H = seeds.size, hyper.momentum.size
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
def _sharded(cfg: SimConfig, devices: tuple, axis: str | None):
    """The compiled batch function, split over ``devices`` along ``axis``."""
    if axis is None:
        return jitted_batch(cfg)
    mesh = Mesh(np.array(devices), ("dev",))
    on_s = P("dev") if axis == "seed" else P()
    on_h = P("dev") if axis == "hyper" else P()
    out_2d = P("dev", None) if axis == "seed" else P(None, "dev")
    out = Trace(error=out_2d, norm=out_2d, diverged_at=out_2d, final=out_2d,
                iterates=out_2d if cfg.record_iterates else None)
    fn = jax.shard_map(
        partial(simulate_batch, cfg),
        mesh=mesh,
        in_specs=(P(), Params(on_h, on_h, on_h), on_s, P(), P()),
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
        rate = computed * self.work / elapsed if elapsed > 0 and computed else 0.0
        eta = (self.total - done) / max(computed, 1) * elapsed if computed else float("nan")
        msg = (f"asyncjax: chunk {done}/{self.total}  {rate:.3g} trajectory-steps/s  "
               f"elapsed {elapsed:.1f}s  eta {eta:.1f}s")
        print(("\r" + msg) if self.tty else msg, end="" if self.tty and done < self.total else "\n",
              file=sys.stderr, flush=True)


def sweep(
    problem: StreamingPCA,
    grid: Grid,
    *,
    steps: int,
    record_every: int,
    init: Any = None,
    delay_model: str | DelayModel = "constant",
    buffer: int | None = None,
    norm_bound: float = 1e3,
    record_iterates: bool = False,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Results:
    """Simulates every point of ``grid`` and returns the recorded metrics.

    Args:
      problem: the problem (e.g. :class:`StreamingPCA`).
      grid: the :class:`Grid` of settings.
      steps: iterations per trajectory, a multiple of ``record_every``.
      record_every: metrics are recorded every this many steps (and at step 0).
      init: (d,) start in the problem's basis; default the saddle e_2.
      delay_model: ``"constant"``, ``"uniform"`` or ``"geometric"``.
      buffer: delay-buffer length; default just enough for the grid's delays.
      norm_bound: trajectories with ‖v‖ above it are frozen and flagged.
      record_iterates: also keep the iterate (eigenbasis) at every record, as
        variable ``iterates`` (grid axes, step, component).
      chunk_size: most trajectories per compiled call; default from memory.
        Results do not depend on it.
      devices: devices to split each chunk over; default all local devices.
        Results do not depend on how many.
      out: a folder to checkpoint chunks and the final ``results.npz`` into.
      resume: reuse the finished chunks already in ``out`` (same settings only;
        any chunk size and device count). Needs ``out``.
      overwrite: delete what ``out`` holds of another sweep (or of this one,
        without ``resume``) instead of failing.
      progress: show progress on stderr; default when stderr is a terminal
        or the code runs in a Jupyter kernel.
      metadata: JSON-serialisable notes stored in the results' attrs under
        ``"source"`` (e.g. the configuration file the sweep came from). They
        are not settings: they do not affect resuming.

    Returns:
      :class:`Results` with variables ``error`` and ``norm`` (grid axes, step),
      ``diverged_at`` (grid axes; -1 if never), ``final`` (grid axes, component)
      and, if asked for, ``iterates`` (grid axes, step, component).
    """
    if resume and out is None:
        raise ValueError("resume=True needs out=DIR, the folder of the sweep to continue")
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size", minimum=1)
    model = get_delay_model(delay_model)
    allowed = {"momentum", "lr", "seed", model.axis}
    unknown = set(grid.axes) | set(grid.fixed)
    unknown -= allowed
    if unknown:
        raise ValueError(
            f"unknown grid setting(s) {sorted(unknown)} for the {model.name!r} delay model; "
            f"allowed: {sorted(allowed)}"
        )
    if "lr" not in grid.axes and "lr" not in grid.fixed:
        raise ValueError("the grid must set lr (a step size or a list of them)")
    delay_values = grid.values(model.axis, 0)
    if buffer is None:
        buffer = model.buffer_for(delay_values)
    buffer = check_int(buffer, "buffer", minimum=1)
    mu, eta, tau = (grid.values(n, 0.0) for n in ("momentum", "lr", model.axis))
    check_params(mu, eta, tau, model=model, buffer=buffer)
    check_positive(norm_bound, "norm_bound", allow_inf=True)
    seeds = check_seeds(grid.values("seed", 0))
    _check_unique(seeds)
    cfg = SimConfig(problem.distribution, steps, record_every, buffer, model, bool(record_iterates))
    v0 = default_init(problem) if init is None else problem.to_eigenbasis(init)
    init_orig = problem.from_eigenbasis(v0)

    # Hyperparameter points: every combination of the non-seed axes, in grid order.
    hyper_dims = tuple(d for d in grid.dims if d != "seed")
    mesh = np.meshgrid(*(grid.axes[n] for n in hyper_dims), indexing="ij")
    n_hyper = int(np.prod([grid.axes[n].size for n in hyper_dims], dtype=np.int64))

    def column(name: str, fixed: np.ndarray) -> np.ndarray:
        if name in hyper_dims:
            return mesh[hyper_dims.index(name)].reshape(-1).astype(np.float64)
        return np.full(n_hyper, float(fixed[0]))

    hyper = Params(column("momentum", mu), column("lr", eta), column(model.axis, tau))

    devices = tuple(devices or jax.local_devices())
    itemsize = jnp.dtype(jnp.result_type(float)).itemsize
    chunk = chunk_size if chunk_size is not None else _default_chunk(cfg, problem.d, itemsize, devices)
    chunk = check_int(chunk, "chunk_size", minimum=1)
    plan = _make_plan(seeds, hyper, chunk, len(devices))
    fn = _sharded(cfg, devices if plan.shard_axis else devices[:1], plan.shard_axis)

    attrs = {
        "asyncjax_version": __version__,
        "jax_version": jax.__version__,
        "problem": problem.describe(),
        "grid": grid.describe(),
        "steps": steps,
        "record_every": record_every,
        "buffer": buffer,
        "delay_model": model.name,
        "norm_bound": norm_bound,
        "record_iterates": bool(record_iterates),
        "init": init_orig.tolist(),
        "dtype": str(jnp.dtype(jnp.result_type(float))),
        "data_stream": "word m of step k = Threefry-2x32[fold_in(key(seed), stream)](k, m // 2)[m % 2]; "
                       "stream 0: observations, stream 1: delays (asyncjax._rng)",
    }
    attrs["variables"] = _variables(problem)
    if metadata is not None:
        attrs["source"] = _jsonable(dict(metadata))
    ckpt = _Checkpoint(out, attrs, resume, overwrite) if out is not None else None

    S, H, d, n_rec = seeds.size, hyper.momentum.size, problem.d, cfg.n_records
    fdt = np.float32 if itemsize == 4 else np.float64
    store = {"error": np.empty((S, H, n_rec), fdt), "norm": np.empty((S, H, n_rec), fdt),
             "diverged_at": np.empty((S, H), np.int32), "final": np.empty((S, H, d), fdt)}
    if cfg.record_iterates:
        store["iterates"] = np.empty((S, H, n_rec, d), fdt)

    ops = problem.operands()
    v0_j = jnp.asarray(v0, ops.scale.dtype)
    bound = jnp.asarray(norm_bound, ops.scale.dtype)
    bar = _Progress(plan.n_chunks, plan.chunk_seeds * plan.chunk_hyper * steps, progress)
    t0 = time.perf_counter()
    compile_s = None
    pending: list[tuple[int, Any]] = []
    computed = 0
    # Cells (seed, point) already on disk, copied into `store` by seed value and point index.
    covered = ckpt.restore(store, seeds, hyper) if ckpt is not None and resume else np.zeros((S, H), bool)

    def finish(i: int, trace: Any) -> None:
        s, h, _, _ = plan.chunk(i)
        trace = {k: v for k, v in trace._asdict().items() if v is not None}
        parts = {k: np.asarray(v)[: s.stop - s.start, : h.stop - h.start] for k, v in trace.items()}
        if ckpt is not None:
            ckpt.save(s, h, parts, seeds[s], hyper)
        for k, v in parts.items():
            store[k][s, h] = v

    for i in range(plan.n_chunks):
        s, h, _, _ = plan.chunk(i)
        if covered[s, h].all():  # a chunk only partly on disk is recomputed whole
            bar.update(i + 1, computed)
            continue
        _, _, c_seeds, c_hyper = plan.chunk(i)
        tc = time.perf_counter()
        trace = fn(ops, Params(*(jnp.asarray(a, ops.scale.dtype) for a in c_hyper)), jnp.asarray(c_seeds), v0_j, bound)
        if compile_s is None:
            jax.block_until_ready(trace)
            compile_s = time.perf_counter() - tc  # first call: compile + one chunk
        pending.append((i, trace))
        if len(pending) > 1:  # keep one chunk in flight while the previous is stored
            finish(*pending.pop(0))
        computed += 1
        bar.update(i + 1, computed)
    for item in pending:
        finish(*item)
    wall = time.perf_counter() - t0

    results = _assemble(grid, hyper_dims, cfg, store, attrs)
    results.attrs["timing"] = {
        "wall_s": wall,
        "first_chunk_s": compile_s,
        "chunks": plan.n_chunks,
        "chunks_computed": computed,
        "chunks_reused": plan.n_chunks - computed,
        "devices": len(devices) if plan.shard_axis else 1,
    }
    if ckpt is not None:
        results.save(ckpt.root / "results.npz")
    return results


def _assemble(grid, hyper_dims, cfg, store, attrs) -> Results:
    S, H = store["diverged_at"].shape
    hyper_shape = tuple(grid.axes[n].size for n in hyper_dims)
    seed_pos = grid.dims.index("seed") if "seed" in grid.axes else None

    def arrange(a: np.ndarray) -> np.ndarray:
        a = a.reshape((S,) + hyper_shape + a.shape[2:])
        if seed_pos is None:
            return a[0]
        return np.moveaxis(a, 0, seed_pos)

    dims = grid.dims
    trailing = {"error": ("step",), "norm": ("step",), "diverged_at": (), "final": ("component",),
                "iterates": ("step", "component")}
    coords = {k: v for k, v in grid.axes.items()}
    coords["step"] = cfg.record_steps
    return Results(
        data={k: arrange(v) for k, v in store.items()},
        dims={k: dims + trailing[k] for k in store},
        coords=coords,
        attrs=attrs,
    )


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
    worst = getattr(problem, "worst_error", 1.0 if isinstance(problem, StreamingPCA) else None)
    error = (
        "sin^2 of the angle between the iterate v_k and the top eigenvector q1, "
        "1 - <v_k, q1>^2 / |v_k|^2: 0 at the solution, 1 orthogonal to it"
        if isinstance(problem, StreamingPCA) else "the problem's error metric (0 at the solution)"
    )
    out = {
        "error": {"description": f"{error}; recorded at steps 0, record_every, 2 record_every, ... "
                                 "(coordinate 'step'). A diverged trajectory keeps the value it had "
                                 "when it was frozen; asyncjax.analysis counts it as failed "
                                 "(error = 'worst') from its divergence on.",
                  "worst": worst},
        "norm": {"description": "|v_k|, the Euclidean norm of the iterate, at the recorded steps"},
        "diverged_at": {"description": "first step at which the iterate became non-finite or its norm "
                                       "exceeded norm_bound; the trajectory is frozen from then on. "
                                       "-1: it never diverged"},
        "final": {"description": "the last iterate v_steps, in the problem's eigenbasis "
                                 "(component i is the coordinate along the (i+1)-th eigenvector)"},
        "iterates": {"description": "the iterate v_k in the problem's eigenbasis at every recorded step "
                                    "(only with record_iterates=True)"},
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
    text = json.dumps(_jsonable(settings), sort_keys=True)
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
                        "not record which seeds and points they hold, so they cannot be resumed safely")
                elif old_key != self.key and has_data:
                    problem = ValueError(f"{self.root} holds a different sweep (its settings differ from "
                                         "this one's)")
                elif has_data and not resume:
                    what = f"{len(chunks)} finished chunk(s)" if chunks else "the finished results"
                    problem = FileExistsError(
                        f"{self.root} already holds {what} of this sweep; pass resume=True (--resume) "
                        "to continue or reuse them")
        elif has_data:
            problem = ValueError(f"{self.root} holds {'chunks' if chunks else 'results.npz'} but no "
                                 "sweep.json saying which sweep they belong to")
        if problem is not None:
            if not overwrite:
                raise type(problem)(f"{problem}; pass overwrite=True (--overwrite) to replace what it "
                                    "holds, or choose another output folder")
            for path in chunks + sorted(self.dir.glob("*.corrupt")):
                path.unlink()
            if results_path.exists():
                results_path.unlink()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise type(err)(f"cannot create {self.dir}: {err.strerror or err}") from err
        write_json(meta_path, {"format": _SWEEP_FORMAT, "key": self.key, "settings": attrs})

    def files(self) -> list[Path]:
        return sorted(self.dir.glob("chunk-*.npz")) if self.dir.is_dir() else []

    def path(self, s: slice, h: slice) -> Path:
        return self.dir / f"chunk-s{s.start:07d}-{s.stop:07d}-p{h.start:07d}-{h.stop:07d}.npz"

    def save(self, s: slice, h: slice, parts: dict[str, np.ndarray], seeds: np.ndarray, hyper: Params) -> None:
        """Writes the cells of seed positions ``s`` × points ``h`` (atomically)."""
        book = {
            "chunk.key": np.array(self.key),
            "chunk.seeds": np.asarray(seeds, np.int64),
            "chunk.points": np.arange(h.start, h.stop, dtype=np.int64),
            "chunk.hyper": np.stack([np.asarray(a[h], np.float64) for a in hyper], axis=-1),
        }
        atomic_write(self.path(s, h), lambda fh: np.savez(fh, **book, **parts))

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

    def restore(self, store: dict[str, np.ndarray], seeds: np.ndarray, hyper: Params) -> np.ndarray:
        """Copies every usable chunk on disk into ``store``; returns the (S, H) covered mask."""
        S, H = store["diverged_at"].shape
        covered = np.zeros((S, H), bool)
        position = {int(v): i for i, v in enumerate(seeds)}
        hyper_cols = np.stack([np.asarray(a, np.float64) for a in hyper], axis=-1)  # (H, 3)
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

    def _place(self, path: Path, f: dict[str, np.ndarray], store: dict[str, np.ndarray], covered: np.ndarray,
               position: dict[int, int], hyper_cols: np.ndarray) -> np.ndarray:
        """Copies the cells of chunk file ``f`` into ``store``; returns the mask of cells it covers."""
        S, H = covered.shape
        mask = np.zeros((S, H), bool)
        if "chunk.key" not in f:
            raise ChunkError(f"chunk file {path} does not record which seeds and points it holds (written by "
                             "an older asyncjax); delete it or pass overwrite=True (--overwrite)")
        if str(f["chunk.key"]) != self.key:
            raise ChunkError(f"chunk file {path} belongs to a different sweep (key {f['chunk.key']}, this "
                             f"sweep's {self.key}); delete it or pass overwrite=True (--overwrite)")
        seed_vals, points = f["chunk.seeds"], f["chunk.points"]
        missing = [int(v) for v in seed_vals if int(v) not in position]
        if missing:
            raise ChunkError(f"chunk file {path} holds seed {missing[0]}, which this sweep does not have")
        if points.size and (points.min() < 0 or points.max() >= H
                            or not np.array_equal(f["chunk.hyper"], hyper_cols[points])):
            raise ChunkError(f"chunk file {path} holds hyperparameter points this sweep does not have")
        rows = np.array([position[int(v)] for v in seed_vals], dtype=np.int64)
        cells = np.ix_(rows, points)
        for k, v in store.items():
            if k not in f or f[k].shape != (rows.size, points.size) + v.shape[2:] or f[k].dtype != v.dtype:
                got = f"shape {f[k].shape}, dtype {f[k].dtype}" if k in f else "nothing"
                raise ChunkError(f"chunk file {path} holds {got} for variable {k!r}, not what this sweep "
                                 "records; delete it or pass overwrite=True (--overwrite)")
        seen = covered[cells]
        if seen.any():
            for k, v in store.items():
                if not np.array_equal(v[cells][seen], f[k][seen], equal_nan=v.dtype.kind == "f"):
                    raise ChunkError(
                        f"chunk file {path} disagrees with another chunk file over the same cells (variable "
                        f"{k!r}); the folder mixes runs: pass overwrite=True (--overwrite) to recompute")
        for k, v in store.items():
            v[cells] = f[k]
        mask[cells] = True
        return mask


class ChunkWarning(UserWarning):
    """A chunk file was unusable and its cells are recomputed."""
