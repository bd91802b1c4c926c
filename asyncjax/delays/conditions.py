"""The worker's conditions on the clock: job assignment, communication, outages, measured traces.

Options of the worker clock (`asyncjax.delays.workers`) that only the event
clock (`asyncjax.servers`) follows; with none of them the worker clock runs
as before. Each is static structure (part of the compiled configuration):

* **assignment** (AsGrad, Islamov et al. 2024): who computes the job the
  server hands out after each event. ``"pure"``: the worker that just
  delivered; ``"random"``: a uniformly random active worker; ``"shuffle"``:
  the workers of a fresh random permutation in turn, a new permutation every
  M jobs. A worker may then hold a queue of jobs and works them first in,
  first out; a job's gradient is computed at the point the server sent with
  it, i.e. read when the job was *assigned* (AsGrad's algorithms send
  x_{t+1} to the chosen worker).
* **communication**: each job is a download, the computation and an upload;
  worker j's download and upload take ``download_j · X`` and ``upload_j · X``,
  X of ``comm_law`` (1 for ``"constant"``). The point is read when the job is
  handed out, so a download makes the gradient older in time, not in versions.
* **outages**: each worker alternates up and down periods, of means
  ``uptime_j`` and ``downtime_j`` times X of ``outage_law`` (mean one); it
  starts up. A job in flight when its worker goes down is ``"paused"`` (it
  resumes when the worker comes back) or ``"lost"`` (the worker redoes it, a
  new job time drawn, when it comes back; it keeps the point it was sent).
* **trace**: measured compute times, (jobs, workers): worker j's c-th job
  computes for ``trace[c mod T, j]`` (the trace cycles when it runs out).

Draws: the c-th job of worker j (counting from 0, its first job) takes value
0 of counter c of the key of (stream, j), for the streams `STREAMS` derived
from the trajectory's delay stream; so does its r-th up or down period. The
assignment of event e takes value 0 of counter e of the ``assign`` stream
(``"random"``, the worker ⌊u M⌋), or (``"shuffle"``) picks the r-th of
the M − p workers its block has not used yet at the block's p-th job,
r = ⌊u (M − p)⌋: a uniformly random permutation drawn place by place. Every value depends only on (seed, stream, worker, count).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from asyncjax._validate import as_float_array, did_you_mean, py
from asyncjax.delays.compute import COMPUTE_LAWS, law_values, normalise, per_worker

ASSIGNMENTS = ("pure", "random", "shuffle")
OUTAGE_MODES = ("paused", "lost")
MEAN_ONE_LAWS = ("constant", "exponential", "lognormal", "gamma")
STREAMS = ("compute", "download", "upload", "up", "down", "assign")


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(
            f"unknown {name} {value!r}{did_you_mean(value, allowed)}; choose one of "
            f"{', '.join(allowed)}"
        )
    return value


def load_trace(value: Any) -> np.ndarray:
    """(T, n) float64 compute times from an array, a .npy file or a CSV file (rows = jobs).

    Raises:
      ValueError: not 2-D, empty, or a time that is NaN, infinite or not > 0
        (naming its row and column).
    """
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.exists():
            raise ValueError(f"trace file {str(path)!r} does not exist")
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.loadtxt(path, delimiter=",", ndmin=2)
    else:
        arr = value
    arr = np.asarray(arr, np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"a compute-time trace must be (jobs, workers), got shape {np.shape(arr)}")
    bad = np.argwhere(~(arr > 0) | np.isinf(arr))
    if bad.size:
        r, c = (int(v) for v in bad[0])
        raise ValueError(
            f"trace[{r}, {c}] = {py(arr[r, c])!r}: every measured compute time must be "
            "finite and > 0"
        )
    return arr


@dataclass(frozen=True, eq=False)
class Trace:
    """Measured compute times, (jobs, workers), hashed by content (a jit key)."""

    times: np.ndarray
    digest: int

    @classmethod
    def of(cls, value: Any) -> Trace:
        arr = load_trace(value)
        arr.setflags(write=False)
        return cls(arr, hash((arr.shape, arr.tobytes())))

    def __hash__(self) -> int:
        return self.digest

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, Trace)
            and self.digest == other.digest
            and np.array_equal(self.times, other.times)
        )

    @property
    def workers(self) -> int:
        return int(self.times.shape[1])


@dataclass(frozen=True)
class Conditions:
    """The worker's conditions on the clock (see the module docstring); build with `workers`.

    Attributes:
      assignment: ``"pure"``, ``"random"`` or ``"shuffle"``.
      download, upload: per-worker scales of communication times (a number, a
        tuple or a rule in i); None: none.
      comm_law: law of the communication noise (one of `COMPUTE_LAWS`).
      comm_shape: its shape parameter.
      uptime, downtime: per-worker mean up and down periods; None: always up.
      outage_law: law of the periods, of mean one (one of `MEAN_ONE_LAWS`).
      outage_shape: its shape parameter (σ of the lognormal, k of the gamma).
      outage_mode: ``"paused"`` or ``"lost"``.
      trace: measured compute times (`Trace`), or None.
    """

    assignment: str = "pure"
    download: Any = None
    upload: Any = None
    comm_law: str = "constant"
    comm_shape: float = 1.0
    uptime: Any = None
    downtime: Any = None
    outage_law: str = "exponential"
    outage_shape: float = 1.0
    outage_mode: str = "paused"
    trace: Trace | None = None

    def __post_init__(self):
        _choice(self.assignment, "assignment", ASSIGNMENTS)
        _choice(self.comm_law, "comm_law", COMPUTE_LAWS)
        _choice(self.outage_law, "outage_law", MEAN_ONE_LAWS)
        _choice(self.outage_mode, "outage_mode", OUTAGE_MODES)
        for name in ("comm_shape", "outage_shape"):
            v = float(as_float_array(name, getattr(self, name), ndim=0))
            if not v > 0:
                raise ValueError(f"{name} must be > 0; got {v!r}")
            object.__setattr__(self, name, v)
        for name in ("download", "upload"):
            object.__setattr__(self, name, normalise(getattr(self, name), name))
        if (self.uptime is None) != (self.downtime is None):
            raise ValueError("outages need both uptime and downtime (per-worker mean periods)")
        for name in ("uptime", "downtime"):
            object.__setattr__(self, name, normalise(getattr(self, name), name, positive=True))
        if self.trace is not None and not isinstance(self.trace, Trace):
            object.__setattr__(self, "trace", Trace.of(self.trace))
        unused = {} if self.communicates else {"comm_law": "constant", "comm_shape": 1.0}
        if not self.outages:  # a law or mode without outages changes nothing: the plain clock
            unused.update(outage_law="exponential", outage_shape=1.0, outage_mode="paused")
        for name, value in unused.items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------ static facts
    @property
    def communicates(self) -> bool:
        return self.download is not None or self.upload is not None

    @property
    def outages(self) -> bool:
        return self.uptime is not None

    @property
    def queues(self) -> bool:
        """Jobs go to a worker other than the finisher (queues of jobs are possible)."""
        return self.assignment != "pure"

    @property
    def active(self) -> bool:
        """Some option differs from the plain clock."""
        return self != Conditions()

    def random(self, compute_random: bool) -> bool:
        """Whether a trajectory's seed matters (``compute_random``: the compute law is random)."""
        comm = self.communicates and self.comm_law != "constant"
        out = self.outages and self.outage_law != "constant"
        compute = compute_random and self.trace is None
        return compute or comm or out or self.queues

    def scales(self, name: str, slots: int) -> np.ndarray:
        """(slots,) the per-worker scale ``name`` (0 when unset)."""
        value = getattr(self, name)
        return np.zeros(slots) if value is None else per_worker(value, slots, name)

    def check_workers(self, workers: int) -> None:
        """Refuses a run with more workers than a per-worker list or the trace gives."""
        if self.trace is not None and workers > self.trace.workers:
            raise ValueError(
                f"the compute-time trace has {self.trace.workers} workers (columns) but the "
                f"run has workers={workers}"
            )
        for name in ("download", "upload", "uptime", "downtime"):
            given = getattr(self, name)
            if isinstance(given, tuple) and workers > len(given):
                raise ValueError(f"workers={workers} but {name} gives only {len(given)} workers")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"assignment": self.assignment}
        if self.communicates:
            out.update(download=self.download, upload=self.upload, comm_law=self.comm_law)
            out["comm_shape"] = self.comm_shape
        if self.outages:
            out.update(uptime=self.uptime, downtime=self.downtime, outage_law=self.outage_law)
            out.update(outage_shape=self.outage_shape, outage_mode=self.outage_mode)
        if self.trace is not None:
            out["trace_shape"] = list(self.trace.times.shape)
        return out

    # ------------------------------------------------------------ draws (pure JAX)
    def keys(self, key: jax.Array, slots: int) -> jax.Array:
        """(len(STREAMS), slots, 2) uint32: the key of (stream, worker) under a delay-stream key."""
        s = jnp.repeat(jnp.arange(len(STREAMS), dtype=jnp.uint32), slots)
        j = jnp.tile(jnp.arange(slots, dtype=jnp.uint32), len(STREAMS))
        k = threefry_2x32(key, jnp.concatenate([s + jnp.uint32(0x5EED0000), j]))
        return jnp.stack([k[: s.size], k[s.size :]], -1).reshape(len(STREAMS), slots, 2)

    @staticmethod
    def values(law: str, shape: float, keys: jax.Array, counts: jax.Array, dtype: Any):
        """(n,) value 0 of counter ``counts[j]`` of ``keys[j]`` under ``law``."""
        if law == "constant":
            return jnp.ones(counts.shape, dtype)
        one = lambda kk, c: law_values(law, shape, kk, c[None], 1, dtype)[0, 0]
        return jax.vmap(one)(keys, counts.astype(jnp.int32))

    def compute_times(
        self,
        clock: Any,
        keys: Any,
        counts: jax.Array,
        dtype: Any,
        workers: Any = None,
        slots: int = 0,
    ) -> jax.Array:
        """(k,) compute time of job number ``counts[i]`` of worker ``workers[i]`` (before time-outs).

        Args:
          clock: the worker clock (law, speeds, base, noise scale).
          keys: `keys` of the trajectory (None when nothing is random).
          counts: (k,) int32 job numbers.
          workers: (k,) int32 the workers; None: 0 … k − 1 (every worker).
          slots: the run's workers (with ``workers``).
        """
        n = counts.shape[0]
        j = jnp.arange(n, dtype=jnp.int32) if workers is None else workers
        slots = n if workers is None else slots
        if self.trace is not None:
            t = jnp.asarray(self.trace.times[:, : min(slots, self.trace.workers)], dtype)
            return t[counts % t.shape[0], j]
        if clock.law == "constant":
            x = jnp.ones(n, dtype)
        else:
            x = self.values(clock.law, clock.shape, keys[0][j], counts, dtype)
        speed = jnp.asarray(clock.speed(slots), dtype)[j]
        if clock.base is None and clock.noise_scale is None:
            return x / speed
        base, scale = (jnp.asarray(v, dtype)[j] for v in clock.affine(slots))
        return (base + scale * x) / speed

    def comm_times(
        self, keys: Any, counts: jax.Array, dtype: Any, workers: Any = None, slots: int = 0
    ) -> tuple[Any, Any]:
        """(k,) download and upload times of job ``counts[i]`` of ``workers[i]`` (None when unset)."""
        n = counts.shape[0]
        j = jnp.arange(n, dtype=jnp.int32) if workers is None else workers
        slots = n if workers is None else slots
        out = []
        for s, name in ((1, "download"), (2, "upload")):
            if getattr(self, name) is None:
                out.append(None)
                continue
            scale = jnp.asarray(self.scales(name, slots), dtype)[j]
            k = None if keys is None else keys[s][j]
            out.append(scale * self.values(self.comm_law, self.comm_shape, k, counts, dtype))
        return out[0], out[1]

    def periods(
        self,
        keys: Any,
        counts: jax.Array,
        up: bool,
        dtype: Any,
        workers: Any = None,
        slots: int = 0,
    ) -> jax.Array:
        """(k,) length of up (``up``) or down period number ``counts[i]`` of worker ``workers[i]``."""
        name, s = ("uptime", 3) if up else ("downtime", 4)
        n = counts.shape[0]
        j = jnp.arange(n, dtype=jnp.int32) if workers is None else workers
        mean = jnp.asarray(self.scales(name, n if workers is None else slots), dtype)[j]
        k = None if keys is None else keys[s][j]
        return mean * self.values(self.outage_law, self.outage_shape, k, counts, dtype)
