"""The plan of a sweep: its points grouped into buckets by delay ring, each cut into chunks.

A `BucketPlan` is the points that share one compiled ring and their
`ChunkCut`; a `SweepPlan` is every bucket
with the devices and memory budget they were sized for (the accounting is in
`asyncjax.sweep.memory`). `plan` is what ``asyncjax plan`` prints.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from typing import Any

import jax
import numpy as np

from asyncjax._validate import check_int
from asyncjax.engine import Spec
from asyncjax.problems.base import Problem
from asyncjax.sweep.chunks import ChunkCut, cut_chunks
from asyncjax.sweep.devices import batch_function, chunk_args, shared_inputs
from asyncjax.sweep.grid import Grid
from asyncjax.sweep.memory import (
    DEFAULT_MAX_BUCKETS,
    Shapes,
    choose_buckets,
    chunk_for,
    chunk_for_work,
    chunk_shared_bytes,
    describe_devices,
    device_budget,
    mib,
    one_bucket,
    ring_needs,
    trajectory_bytes,
)
from asyncjax.sweep.prepare import Prepared, prepare, results_bytes


class TooLargeError(ValueError):
    """A sweep that does not fit the machine; the message names the size and the remedy."""


@dataclass(frozen=True)
class BucketPlan:
    """Grid points that share one compiled delay ring, and their chunks.

    Attributes:
      spec: the compiled configuration (``spec.buffer`` is this bucket's ring).
      points: (H_b,) indices of the bucket's points among the sweep's points.
      chunks: how its seeds × points are cut into compiled calls.
      bytes_per_trajectory: the memory accounting (`asyncjax.sweep.memory.trajectory_bytes`).
      bytes_needed: what the ring, state and records strictly need.
      shared_bytes: bytes one chunk needs once per device (operands, pre-drawn data).
      n_devices: the devices a chunk may be split over.
    """

    spec: Spec
    points: np.ndarray
    chunks: ChunkCut
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
      buckets: one `BucketPlan` per compiled ring, smallest ring first.
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
        prepared: Prepared | None = None,
    ):
        self.buckets, self.devices, self.budget, self.steps = buckets, devices, budget, steps
        self.n_seeds, self.n_points, self.one_ring_bytes = n_seeds, n_points, one_ring_bytes
        self._prep = prepared

    @property
    def prepared(self) -> Prepared:
        """The validated sweep the plan was made for."""
        return self._prep

    @property
    def sizes(self) -> Shapes:
        """The sizes of one trajectory's parts (`asyncjax.sweep.memory.shapes`)."""
        return self._prep.probe

    def calibrate(self, steps: int = 500) -> dict[str, float]:
        """Times a short run of the busiest bucket's first chunk and extrapolates.

        The chunk (full shape, at most ``steps`` steps: whole record intervals,
        or one interval of that length where the sweep records more rarely) runs
        twice: the first call compiles. The estimate adds one compile per bucket
        to the sweep's trajectory-steps at the measured rate.

        Returns:
          ``rate`` (trajectory-steps/s), ``compile_s``, ``estimate_s`` and
          ``steps`` (the calibration run's).
        """
        bp = max(self.buckets, key=lambda x: x.points.size)
        n = min(steps, self.steps)
        r = min(bp.spec.record_every, n)  # a rarer record would run a whole interval, twice
        short = dc_replace(bp, spec=dc_replace(bp.spec, steps=r * (n // r), record_every=r))
        fn = batch_function(short.spec, short.chunks, self.devices)
        args = chunk_args(shared_inputs(self._prep), short.chunks, 0)
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
            "steps": short.spec.steps,
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
            "results_bytes": results_bytes(self._prep),
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


def plan_prepared(
    prep: Prepared, chunk_size: int | None, devices: Sequence[Any] | None, buckets: int | None
) -> SweepPlan:
    """Buckets the points by the ring they need and cuts each bucket into chunks."""
    devices = tuple(devices or jax.local_devices())
    spec, probe = prep.spec, prep.probe
    n_points = next(iter(prep.hyper.values())).size
    budget = device_budget(devices[0])
    ring = longest_ring(prep)

    def cost(ring: int) -> int:
        return trajectory_bytes(dc_replace(spec, buffer=ring), probe)

    if buckets is None:  # buckets save memory at the price of compiles: only where memory binds
        binding = chunk_size is None and prep.n_seeds * n_points > chunk_for(
            cost(ring), budget, len(devices)
        )
        buckets = DEFAULT_MAX_BUCKETS if binding else 1
    needs = None
    if not prep.ring_fixed and buckets > 1:
        axis = prep.model.axis
        needs = ring_needs(prep.model, prep.hyper[axis], ring) if axis in prep.hyper else None
    groups = one_bucket(n_points, ring) if needs is None else choose_buckets(needs, cost, buckets)
    out = []
    for g in groups:
        b_spec = dc_replace(spec, buffer=g.buffer)
        per = trajectory_bytes(b_spec, probe)

        def bucket(chunk: int, b_spec=b_spec, points=g.points, per=per) -> BucketPlan:
            return _bucket_plan(prep, devices, b_spec, points, per, chunk)

        if chunk_size is not None:  # the caller's choice (checked against free memory by sweep)
            out.append(bucket(chunk_size))
            continue
        chunk = min(
            chunk_for(per, budget, len(devices)),
            chunk_for_work(spec.steps, devices[0].platform, len(devices)),
        )
        bp = bucket(chunk)
        # the budget is honoured: what every trajectory shares (data, operands) may tip a chunk over
        while bp.peak_bytes > budget * bp.n_shards and chunk > 1:
            chunk = max(1, min(chunk - 1, int(chunk * budget * bp.n_shards / bp.peak_bytes)))
            bp = bucket(chunk)
        if bp.peak_bytes > budget * bp.n_shards:
            clock = spec.delay.name == "workers"  # its ring: a snapshot per worker
            ring, fewer = (
                (f"{g.buffer:,} worker slots", "fewer workers")
                if clock
                else (f"a delay ring of {g.buffer:,} read points", "smaller delays or buffer")
            )
            raise TooLargeError(
                f"one trajectory needs {mib(bp.peak_bytes)} of device memory ({ring}, "
                f"{spec.n_records:,} records), more than the memory budget of {mib(budget)} per "
                f"device; shorten the ring ({fewer}), record less often (larger record_every), "
                "or raise the budget"
                + (" (ASYNCJAX_CPU_BUDGET_MB)" if devices[0].platform == "cpu" else "")
            )
        out.append(bp)
    return SweepPlan(out, devices, budget, spec.steps, prep.n_seeds, n_points, cost(ring), prep)


def _bucket_plan(
    prep: Prepared, devices: tuple, b_spec: Spec, points: np.ndarray, per: int, chunk: int
) -> BucketPlan:
    """The points of one ring cut into chunks of about ``chunk`` trajectories."""
    cut = cut_chunks(
        prep.seed_axis, {k: a[points] for k, a in prep.hyper.items()}, chunk, len(devices)
    )
    n_shard_seeds = cut.chunk_seeds // (len(devices) if cut.shard_axis == "seed" else 1)
    return BucketPlan(
        b_spec,
        points,
        cut,
        per,
        trajectory_bytes(b_spec, prep.probe, strict=True),
        chunk_shared_bytes(b_spec, prep.probe, n_shard_seeds),
        len(devices),
    )


def longest_ring(prep: Prepared) -> int:
    """The ring the sweep compiles at most: its buffer, cut to what its steps can fill.

    A delay law reads the start whenever τ_k > k, so a ring longer than
    ``steps + 1`` holds nothing a step reads (a delay of 10⁸ in a 1 000-step run
    needs a ring of 1 001, and gives the same trajectories). A mitigation sees
    τ_k itself, so with one the ring stays whole.
    """
    spec = prep.spec
    return prep.model.ring_for_run(spec.buffer, spec.steps, mitigated=spec.mitigation is not None)


def plan(
    problem: Problem,
    grid: Grid,
    *,
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    buckets: int | None = None,
    **settings: Any,
) -> SweepPlan:
    """The plan `sweep` would follow with the same arguments, without running it.

    Args:
      problem, grid, chunk_size, devices, buckets: as for `sweep`.
      **settings: ``steps``, ``record_every`` and the other settings of
        `sweep` that shape a trajectory (``optimizer``, ``delay_model``,
        ``mitigation``, ``init``, ``buffer``, ``norm_bound``, ``record_iterates``).

    Returns:
      `SweepPlan`: the buckets of points sharing a delay ring, their
      chunks, bytes per trajectory and the peak memory of a chunk.
    """
    check_cut(chunk_size, buckets)
    return plan_prepared(prepare(problem, grid, **settings), chunk_size, devices, buckets)


def check_cut(chunk_size: int | None, buckets: int | None) -> None:
    """Checks the caller's ``chunk_size`` and ``buckets`` (positive integers, or None)."""
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size", minimum=1)
    if buckets is not None:
        check_int(buckets, "buckets", minimum=1)
