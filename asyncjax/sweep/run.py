"""Running a sweep: `sweep` validates, plans, computes the chunks not on disk, assembles.

Chunks run one after another on the local devices, one in flight while the
previous one is stored and checkpointed. In a ``jax.distributed`` job each
process computes its share of the chunks and the processes meet in the output
folder (`asyncjax.sweep.distributed`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from asyncjax._validate import check_positive
from asyncjax.delays import DelayModel
from asyncjax.engine import Trace
from asyncjax.mitigations import Mitigation
from asyncjax.optim import Optimizer
from asyncjax.problems.base import Problem
from asyncjax.results import Results
from asyncjax.sweep import distributed, limits
from asyncjax.sweep.assemble import allocate, assemble, flatten_trace, restore_results
from asyncjax.sweep.checkpoint import Checkpoint, open_checkpoint, sweep_key
from asyncjax.sweep.devices import batch_function, chunk_args, shared_inputs
from asyncjax.sweep.distributed import DistributedError, Group
from asyncjax.sweep.grid import Grid
from asyncjax.sweep.plan import SweepPlan, check_cut, plan_prepared
from asyncjax.sweep.prepare import Prepared, prepare
from asyncjax.sweep.progress import Progress, stage


def sweep(
    problem: Problem,
    grid: Grid,
    *,
    steps: int,
    record_every: int,
    optimizer: Optimizer | str | None = None,
    delay_model: str | DelayModel = "constant",
    mitigation: str | Mitigation | None = None,
    server: Any = None,
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
    keep_chunks: bool = False,
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
    ``resume=True``; the others stop with `DistributedError`.

    Args:
      problem: the problem (e.g. `StreamingPCA`, `Quadratic`, `MLP`).
      grid: the `Grid` of settings.
      steps: iterations per trajectory, a multiple of ``record_every``.
      record_every: metrics are recorded every this many steps (and at step 0).
      optimizer: default `asyncjax.optim.heavy_ball` (eq. 5); or
        ``nesterov()``, ``from_optax(optax.adam)``, or a name such as ``"optax.adam"``.
      delay_model: ``"constant"``, ``"uniform"``, ``"geometric"``, ``"workers"``
        (or `asyncjax.delays.workers` with options; ``buffer`` is then
        the largest worker count one compilation serves), or
        `asyncjax.delays.trace`.
      mitigation: ``"delay_adaptive"``, ``"dc_asgd"``, ``"drop_stale"`` or a
        `Mitigation`; its parameters are grid axes.
      server: a server rule (`asyncjax.servers`: ``asgd()``, ``rennala()``,
        ``msync()``, ``ringmaster()``, ``fedbuff()``, or a name) on the worker
        clock: a step is then an event (an arrival, or a time-out), and the
        results hold ``wall_time`` and ``updates`` (applied updates) at every
        record. Its parameters are grid axes.
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
        (`asyncjax.sweep.memory`). Results do not depend on it.
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
      keep_chunks: keep the chunk files in ``out/chunks`` once ``results.npz``
        is written (by default they are deleted then; a run stopped before
        that keeps them for ``resume``, and ``resume`` also reuses a finished
        ``results.npz``).
      progress: show progress on stderr; default when stderr is a terminal
        or the code runs in a Jupyter kernel.
      metadata: JSON-serialisable notes stored in the results' attrs under
        ``"source"`` (e.g. the configuration file the sweep came from). They
        are not settings: they do not affect resuming.
      timeout: in a multi-process job, seconds a process waits for the others
        at a meeting point (after its share of the chunks, the others finishing
        theirs) before it stops with `DistributedError`.

    Returns:
      `Results` with one variable per metric of the problem (``error``
      always; grid axes, step), ``diverged_at`` (grid axes; -1 if never) and,
      for single-array parameters, ``final`` (grid axes, component) and, if
      asked for, ``iterates`` (grid axes, step, component). With the worker
      model also ``wall_time`` (workers, seed, step), ``staleness_mean``,
      ``staleness_max`` (workers, seed) and ``staleness_hist`` (workers, seed,
      staleness): the clock depends on nothing else.

    Raises:
      TooLargeError: (a ``ValueError``) the sweep does not fit: a trajectory
        beyond the memory budget, a chunk beyond the devices' free memory, the
        results beyond the host's, the output beyond the free disk, or an
        allocation that failed mid-run; the message names the size and what
        to change.
      DistributedError: in a multi-process job, another process died, failed
        or disagreed on the plan; finished chunks stay in ``out``.
    """
    if resume and out is None:
        raise ValueError("resume=True needs out=DIR, the folder of the sweep to continue")
    check_cut(chunk_size, buckets)
    check_positive(timeout, "timeout")
    prep = prepare(
        problem,
        grid,
        steps=steps,
        record_every=record_every,
        optimizer=optimizer,
        delay_model=delay_model,
        mitigation=mitigation,
        server=server,
        init=init,
        buffer=buffer,
        norm_bound=norm_bound,
        record_iterates=record_iterates,
        metadata=metadata,
    )
    n_points = max((v.size for v in prep.hyper.values()), default=1)
    stage(
        f"planning {prep.n_seeds * n_points:,} trajectories x {prep.spec.steps:,} steps",
        progress,
    )
    sp = plan_prepared(prep, chunk_size, devices, buckets)
    limits.check(sp, prep, out)  # memory and disk, before anything compiles or is written
    group = distributed.current(sweep_key(prep.attrs), timeout)
    if group is not None and out is None:
        raise ValueError(
            f"a sweep in a {group.size}-process job needs out=DIR (--out), a folder every process "
            "can reach: the processes meet there"
        )
    ckpt = open_checkpoint(out, prep.attrs, resume, overwrite, group, sp.digest)
    try:
        store = allocate(prep)
    except MemoryError as err:
        raise limits.out_of_memory(err, sp, None) from err
    S, H = store["diverged_at"].shape
    covered = (
        ckpt.restore(store, prep.seeds, prep.hyper)
        if ckpt is not None and resume
        else np.zeros((S, H), bool)
    )
    if ckpt is not None and resume and not covered.all():  # a finished run whose chunks are gone
        covered |= restore_results(ckpt.root / "results.npz", store, prep, ~covered)
    todo = [w for w in sp.work if not _cells_of(sp, w, covered).all()]
    if group is not None:
        group.barrier(
            "restored", "read the finished chunks"
        )  # nobody writes before everyone has read
        todo = todo[group.index :: group.size]
    limits.announce(sp, prep, len(todo), progress)
    run = _Runner(prep, sp, ckpt, store, covered, progress)
    try:
        run.all(todo)
    except Exception as err:
        if limits.is_out_of_memory(err):  # one line naming the chunk and what to change
            raise limits.out_of_memory(err, sp, out) from err
        raise
    computed = run.computed
    if group is not None:
        computed = _gather(group, ckpt, store, prep, run.computed)
    stage("assembling the results", progress)
    results = _results(prep, sp, store, run, computed, 1 if group is None else group.size)
    if ckpt is not None and (group is None or group.leader):
        stage(f"compressing the results into {ckpt.root / 'results.npz'}", progress)
        results.save(ckpt.root / "results.npz")
    if ckpt is not None and not keep_chunks:
        if group is not None:  # every process has read the chunks before they go
            group.barrier("saved", "read every chunk and process 0 to write results.npz")
        if group is None or group.leader:
            ckpt.remove_chunks()
    return results


def _results(
    prep: Prepared, sp: SweepPlan, store: dict, run: _Runner, computed: int, processes: int
) -> Results:
    """The assembled results, with the delay model's own variables and the run's timing and memory."""
    results = assemble(prep.grid, prep.hyper_dims, prep.spec, store, prep.attrs)
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


def _gather(group: Group, ckpt: Checkpoint, store: dict, prep: Prepared, computed: int) -> int:
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


def _cells_of(sp: SweepPlan, w: tuple[int, int], covered: np.ndarray) -> np.ndarray:
    """The covered mask of work item ``w``'s (seed, point) cells."""
    b = sp.buckets[w[0]]
    s, h, _, _ = b.chunks.chunk(w[1])
    return covered[s][:, b.points[h]]


class _Runner:
    """Computes work items (bucket, chunk), storing and checkpointing each as it finishes."""

    def __init__(
        self,
        prep: Prepared,
        sp: SweepPlan,
        ckpt: Checkpoint | None,
        store: dict,
        covered: np.ndarray,
        progress: bool | None,
    ):
        self.prep, self.sp, self.ckpt, self.store, self.covered = prep, sp, ckpt, store, covered
        self.progress = progress
        self.shared = shared_inputs(prep)
        self.computed, self.compile_s, self.wall, self.peak_measured = 0, None, 0.0, 0
        self.measured: set[int] = set()

    def fn(self, b: int):
        """Bucket ``b``'s compiled batch function."""
        bp = self.sp.buckets[b]
        return batch_function(bp.spec, bp.chunks, self.sp.devices)

    def args(self, b: int, i: int) -> tuple:
        """The arguments of chunk ``i`` of bucket ``b`` (padded to the chunk's shape)."""
        return chunk_args(self.shared, self.sp.buckets[b].chunks, i)

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
        bar = Progress(len(todo), work, self.progress)
        t0 = time.perf_counter()
        pending: list[tuple[tuple[int, int], Any]] = []
        for n, (b, i) in enumerate(todo):
            args = self.args(b, i)
            fn = self.fn(b)
            tc = time.perf_counter()
            if b not in self.measured:
                bar.stage(f"compiling for a ring of {sp.buckets[b].spec.buffer} slots")
            self._measure(b, fn, args)  # compiles (the call below reuses the executable)
            trace = fn(*args)
            if self.compile_s is None:
                jax.block_until_ready(trace)
                self.compile_s = time.perf_counter() - tc  # first call: compile + one chunk
            pending.append(((b, i), trace))
            if len(pending) > 1:
                self._finish(*pending.pop(0))
            self.computed += 1
            bar.update(n + 1 - len(pending), n + 1 - len(pending))  # the chunks stored
        for item in pending:
            self._finish(*item)
        bar.update(len(todo), len(todo))  # closes the bar (or says there was nothing to do)
        self.wall = time.perf_counter() - t0

    def _finish(self, w: tuple[int, int], trace: Any) -> None:
        bp = self.sp.buckets[w[0]]
        s, h, _, _ = bp.chunks.chunk(w[1])
        pts = bp.points[h]
        if isinstance(trace, Trace):
            trace = flatten_trace(trace)
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
