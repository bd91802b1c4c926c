"""The memory plan of a sweep: delay-ring buckets, bytes per trajectory, chunk sizes.

A trajectory's device memory is dominated by its delay ring (``buffer`` past
read points, every parameter leaf) and its records. A grid point with delay
τ = 10 only needs a ring of 11 read points, so instead of giving every point
the ring of the grid's largest delay, the points are grouped into a few
*buckets* by the ring they need; each bucket is compiled with its own ring
(its own `Spec`) and cut into chunks sized from the
memory budget. A ring larger than a point needs reads the same iterates, so
results do not depend on the bucketing (pinned by a test).

Accounting, per trajectory (`trajectory_bytes`):

* *needed* -- what the state strictly needs: the ring (``buffer`` read
  points), the parameters, the optimizer state, the read point in flight,
  the delay model's own state (a worker clock's per-worker times, a server
  clock's restart pools: `DelayModel.state_bytes`; counted per trajectory,
  an upper bound where points share a clock), what a server keeps of the
  gradients between events (a round's sum, or a table of one gradient per
  worker: `DelayModel.gradient_bytes`), the alive flag and divergence step,
  the records (every metric, and the parameters if recorded) and the final
  parameters;
* *planned* -- needed, plus the scan's working copy of the carried
  parameters, state, read point and delay state, plus the working set of one gradient and
  one metrics evaluation (XLA's own analysis of those functions compiled for
  one trajectory; an MLP evaluating its test set needs far more for that than
  for its ring).

Per chunk the plan adds what every trajectory shares: the problem's operands
and the block of pre-drawn data. Budgets (`device_budget`): on an
accelerator 60% of the free memory it reports, on a CPU
``ASYNCJAX_CPU_BUDGET_MB`` (default 256 MiB) per device.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax._parts import select
from asyncjax.delays import DelayModel
from asyncjax.engine import Spec, noise_block_bytes
from asyncjax.optim import Optimizer
from asyncjax.problems.base import Problem

_CPU_BUDGET_BYTES = 256 << 20
_ACCEL_FALLBACK_BYTES = 4 << 30
_ACCEL_SHARE = 0.6
DEFAULT_MAX_BUCKETS = 6
_BUCKET_TOLERANCE = (
    1.03  # fewer buckets when they cost at most 3% more memory (each bucket compiles)
)


class Shapes(NamedTuple):
    """Sizes of one trajectory's parts, from abstract evaluation (nothing runs)."""

    param_bytes: int
    opt_bytes: int
    read_bytes: int  # the read point the ring stores (the parameters, or Nesterov's look-ahead)
    n_metrics: int
    itemsize: int
    work_bytes: int  # temporaries of one gradient plus one metrics evaluation (XLA's analysis)
    shared_bytes: int  # the problem's operands, shared by every trajectory
    sample_bytes: int  # one step's data for one seed
    params: Any  # ShapeDtypeStruct pytree of one trajectory's parameters
    metrics: dict  # name -> ShapeDtypeStruct


def mib(n: float) -> str:
    """Bytes in MiB, e.g. ``"52.1 MiB"`` (the plan's tables keep one unit)."""
    return f"{n / 2**20:,.1f} MiB"


def binary_size(n: float) -> str:
    """Bytes in the binary unit that suits them, e.g. ``"1.5 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PiB"


def _nbytes(tree: Any) -> int:
    return int(sum(np.prod(a.shape) * jnp.dtype(a.dtype).itemsize for a in jax.tree.leaves(tree)))


def _temp_bytes(fn: Any, *args: Any) -> int:
    """Temporary bytes XLA assigns to ``fn`` compiled for ``args`` (0 if the backend does not say)."""
    try:
        stats = jax.jit(fn).lower(*args).compile().memory_analysis()
        return int(stats.temp_size_in_bytes) if stats is not None else 0
    except Exception:  # memory_analysis is optional for a backend
        return 0


@lru_cache(maxsize=64)
def _work_bytes(problem: Problem, prob_hp: tuple, treedef: Any, leaves: tuple) -> int:
    """Temporaries of one metrics evaluation plus one gradient of one trajectory (cached per problem)."""
    dtype = jnp.result_type(float)
    ops = jax.eval_shape(lambda: problem.operands(dtype))
    params = jax.tree.unflatten(treedef, leaves)
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    batch = jax.eval_shape(
        lambda o, k: jax.tree.map(lambda a: a[0], problem.sample(o, k, jnp.zeros((1,), jnp.int32))),
        ops,
        key,
    )
    hp = {k: jax.ShapeDtypeStruct((), dtype) for k in prob_hp}
    return _temp_bytes(problem.metrics, ops, params) + _temp_bytes(
        problem.grad, ops, params, batch, hp
    )


def shapes(
    problem: Problem,
    optimizer: Optimizer,
    hp: dict,
    x0: Any,
    fixed: bool,
    *,
    working_set: bool = True,
) -> Shapes:
    """Sizes of one trajectory of ``problem`` under ``optimizer`` (compiles, never runs).

    Args:
      problem: the problem.
      optimizer: the optimizer.
      hp: the swept names (only the names are used).
      x0: the start, if ``fixed``.
      fixed: every trajectory starts at ``x0`` (else the problem draws one).
      working_set: also measure the temporaries of one gradient and one
        metrics evaluation (a small compile each).

    Raises:
      ValueError: the problem's metrics lack an ``error`` entry.
    """
    dtype = jnp.result_type(float)
    ops = jax.eval_shape(lambda: problem.operands(dtype))
    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    if fixed:
        params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), dtype), x0)
    else:
        params = jax.eval_shape(problem.init, ops, key)
    scalar = jax.ShapeDtypeStruct((), dtype)
    scalars = dict.fromkeys(hp, scalar)
    one_hp, prob_hp = select(scalars, optimizer), select(scalars, problem)
    state = jax.eval_shape(optimizer.init, params, one_hp)
    read = jax.eval_shape(optimizer.read_point, params, state, one_hp)
    metrics = jax.eval_shape(problem.metrics, ops, params)
    if "error" not in metrics:
        raise ValueError(
            f"{type(problem).__name__}.metrics must return an 'error' entry, got {sorted(metrics)}"
        )
    batch = jax.eval_shape(
        lambda o, k: jax.tree.map(lambda a: a[0], problem.sample(o, k, jnp.zeros((1,), jnp.int32))),
        ops,
        key,
    )
    work = 0
    if working_set:
        leaves, treedef = jax.tree.flatten(params)
        work = _work_bytes(problem, tuple(sorted(prob_hp)), treedef, tuple(leaves))
    return Shapes(
        _nbytes(params),
        _nbytes(state),
        _nbytes(read),
        len(metrics),
        jnp.dtype(dtype).itemsize,
        work,
        _nbytes(ops),
        _nbytes(batch),
        params,
        metrics,
    )


def trajectory_bytes(spec: Spec, sh: Shapes, *, strict: bool = False) -> int:
    """Device bytes one trajectory of ``spec`` needs.

    Args:
      spec: the compiled configuration (its ``buffer`` is the ring).
      sh: the trajectory's sizes (`shapes`).
      strict: only what the state and records strictly need; otherwise add the
        scan's working copy of the carry and the gradient/metrics working set.
    """
    delay_state = spec.delay.state_bytes(spec.buffer, sh.itemsize)
    carry = sh.param_bytes + sh.opt_bytes + sh.read_bytes + delay_state + 1 + 4  # + alive, diverged
    carry += spec.delay.gradient_bytes(sh.param_bytes)  # a server's sum or gradient table
    per_record = sh.n_metrics * sh.itemsize + (sh.param_bytes if spec.record_params else 0)
    outputs = spec.n_records * per_record + (sh.param_bytes if spec.keep_final else 0)
    needed = spec.buffer * sh.read_bytes + carry + outputs
    if strict:
        return int(needed)
    # A server's table is updated in place and has no working copy (measured: IA²SGD against
    # ASGD, 32 to 256 workers, d = 40 to 200: 1.00 to 1.03 tables more per trajectory).
    copies = sh.param_bytes + sh.opt_bytes + sh.read_bytes + delay_state
    return int(needed + copies + sh.work_bytes)


def chunk_shared_bytes(spec: Spec, sh: Shapes, n_seeds: int) -> int:
    """Bytes a chunk of ``n_seeds`` seeds needs once, whatever its points: operands and pre-drawn data."""
    return int(sh.shared_bytes + noise_block_bytes(spec, sh.sample_bytes * n_seeds))


def device_budget(device: Any) -> int:
    """Bytes one chunk may use on ``device``.

    On an accelerator 60% of its free memory (``bytes_limit − bytes_in_use``
    of ``memory_stats()``; the rest covers XLA's workspace and what the
    accounting misses), 4 GiB when it reports none; on a CPU
    ``ASYNCJAX_CPU_BUDGET_MB`` MiB (default 256) per device.
    """
    if device.platform == "cpu":
        mb = os.environ.get("ASYNCJAX_CPU_BUDGET_MB")
        return int(float(mb) * (1 << 20)) if mb else _CPU_BUDGET_BYTES
    try:
        stats = device.memory_stats()
        return int(_ACCEL_SHARE * (stats["bytes_limit"] - stats.get("bytes_in_use", 0)))
    except Exception:  # memory_stats is optional for a backend
        return _ACCEL_FALLBACK_BYTES


def _proc_kib(path: str, key: str) -> int | None:
    """``key:`` of a /proc file in bytes (given there in kB), or None."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_left() -> int | None:
    """What the process's address-space limit (``ulimit -v``) leaves, or None without one."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    used = _proc_kib("/proc/self/status", "VmSize")
    return None if used is None else max(0, soft - used)


def _cgroup_left(root: str = "/sys/fs/cgroup") -> int | None:
    """What a cgroup v2 memory limit (a container's) leaves, or None without one."""
    try:
        limit = (Path(root) / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((Path(root) / "memory.current").read_text()))
    except (OSError, ValueError):
        return None


def host_available_bytes() -> int | None:
    """Host memory available to a new allocation, or None if unknown: ``MemAvailable``, or less
    where the process's address space (``ulimit -v``) or its container (cgroup) is limited."""
    found = _proc_kib("/proc/meminfo", "MemAvailable")
    if found is None:
        try:
            found = int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            found = None
    limits = [x for x in (found, _address_space_left(), _cgroup_left()) if x is not None]
    return min(limits) if limits else None


def device_free_bytes(device: Any) -> int | None:
    """Free memory of ``device`` (``memory_stats()``; a CPU's is the host's), or None if unknown."""
    if device.platform == "cpu":
        return host_available_bytes()
    try:
        stats = device.memory_stats()
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    except Exception:  # memory_stats is optional for a backend
        return None


def chunk_for(per_trajectory: int, budget: int, n_devices: int) -> int:
    """Most trajectories per compiled call: the devices' budgets over the bytes per trajectory."""
    return max(1, budget * n_devices // max(1, per_trajectory))


# A chunk is also the unit of progress and of resuming, so it holds at most this much work
# (trajectory-steps): about 25 s on the 2-core CPU (1.6-2.5e8 trajectory-steps/s measured) and,
# on an accelerator, a few seconds to half a minute at the 10^10-10^11 rates it is built for.
CHUNK_WORK_CPU = 2**32
CHUNK_WORK_ACCELERATOR = 2**38


def chunk_for_work(steps: int, platform: str, n_devices: int) -> int:
    """Most trajectories per chunk of ``steps`` steps: `CHUNK_WORK_CPU` in all (CPU devices share
    the host's cores), or `CHUNK_WORK_ACCELERATOR` per accelerator."""
    if platform == "cpu":
        return max(n_devices, CHUNK_WORK_CPU // max(1, steps))
    return max(1, CHUNK_WORK_ACCELERATOR // max(1, steps)) * n_devices


@dataclass(frozen=True)
class Bucket:
    """Grid points that share one compiled ring.

    Attributes:
      buffer: ring length of this bucket (the largest the points need).
      points: (H_b,) indices of its points among the sweep's points, ascending.
    """

    buffer: int
    points: np.ndarray


def ring_needs(model: DelayModel, values: np.ndarray, buffer: int) -> np.ndarray | None:
    """The ring each point needs, or None where the model's results depend on the ring.

    Constant and uniform delays read at most ``value`` steps back, so a ring of
    ``value + 1`` read points serves them exactly. The geometric law is
    truncated at the ring, a trace fixes one ring, and the worker model's
    slots are its largest worker count: those keep one ring.
    """
    return model.ring_need(values, buffer)


def choose_buckets(
    needs: np.ndarray, cost: Any, max_buckets: int = DEFAULT_MAX_BUCKETS
) -> list[Bucket]:
    """Groups points into at most ``max_buckets`` rings minimising the total memory.

    The distinct ring sizes, sorted, are cut into contiguous groups by dynamic
    programming (each group's ring is its largest size; cost(L) is the bytes
    of one trajectory with ring L); the fewest groups within 3% of the best
    are kept, since each group compiles once.

    Args:
      needs: (H,) the ring each point needs.
      cost: ring length -> bytes per trajectory.
      max_buckets: most groups.
    """
    sizes, counts = np.unique(needs, return_counts=True)
    n = sizes.size
    k_max = max(1, min(max_buckets, n))
    pre = np.concatenate([[0], np.cumsum(counts)])
    inf = float("inf")
    # best[k][j]: cost of the first j sizes in k groups; cut[k][j]: where the last group starts
    best = [[inf] * (n + 1) for _ in range(k_max + 1)]
    cut = [[0] * (n + 1) for _ in range(k_max + 1)]
    best[0][0] = 0.0
    per_size = [cost(int(s)) for s in sizes]  # once per ring size, not once per candidate cut
    for k in range(1, k_max + 1):
        for j in range(1, n + 1):
            for i in range(k - 1, j):
                c = best[k - 1][i] + (pre[j] - pre[i]) * per_size[j - 1]
                if c < best[k][j]:
                    best[k][j], cut[k][j] = c, i
    top = min(best[k][n] for k in range(1, k_max + 1))
    k = next(k for k in range(1, k_max + 1) if best[k][n] <= _BUCKET_TOLERANCE * top)
    bounds, j = [], n
    while k > 0:
        i = cut[k][j]
        bounds.append((i, j))
        j, k = i, k - 1
    buckets = []
    for i, j in reversed(bounds):
        members = np.flatnonzero((needs >= sizes[i]) & (needs <= sizes[j - 1]))
        buckets.append(Bucket(int(sizes[j - 1]), members))
    return buckets


def one_bucket(n_points: int, buffer: int) -> list[Bucket]:
    """Every point in one ring of ``buffer`` read points."""
    return [Bucket(int(buffer), np.arange(n_points))]


def describe_devices(devices: Sequence[Any]) -> str:
    """E.g. ``"2 x cpu (TFRT_CPU_0)"``: how many devices of which kind."""
    d = devices[0]
    kind = getattr(d, "device_kind", d.platform)
    return f"{len(devices)} x {d.platform} ({kind})"


def fit_count(per_trajectory: float, memory: float, shared: float = 0.0) -> int:
    """How many trajectories of ``per_trajectory`` bytes fit in ``memory`` bytes beside ``shared``."""
    return max(0, int(math.floor((memory - shared) / per_trajectory)))
