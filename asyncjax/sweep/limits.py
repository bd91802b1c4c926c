"""What a sweep needs of the machine, checked before anything compiles, in one line each.

The plan (`asyncjax.sweep.plan`) says how many bytes a chunk takes on the
devices; this module sets that, the assembled results and the output files
against what the machine has free -- the devices' free memory
(``memory_stats()``; on a CPU the host's available memory), the host's
available memory, the output folder's free disk -- and refuses what does not
fit with a message that names the size and what to change. An allocation that
still fails mid-run becomes the same kind of message (`out_of_memory`).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from asyncjax.sweep.memory import (
    binary_size as size,
)
from asyncjax.sweep.memory import (
    describe_devices,
    device_free_bytes,
    host_available_bytes,
)
from asyncjax.sweep.plan import SweepPlan, TooLargeError
from asyncjax.sweep.prepare import Prepared, results_bytes

# A plan is printed before a run this large starts (it would otherwise sit silent a while).
ANNOUNCE_TRAJECTORY_STEPS = 10**11
ANNOUNCE_BYTES = 2 << 30
ANNOUNCE_CHUNKS = 500


def _chunk_hint(sp: SweepPlan, fraction: float) -> str:
    """``chunk_size=N`` a fraction of today's largest chunk, and where a config sets it."""
    largest = max(b.chunk_trajectories for b in sp.buckets)
    n = max(1, int(largest * fraction))
    return f"chunk_size={n:,} (chunk_size = {n} in a config's [run])"


def problems(sp: SweepPlan, prep: Prepared, out: str | Path | None = None) -> list[str]:
    """Why the sweep cannot run on this machine, one line per reason (empty: it fits)."""
    found = []
    bp = max(sp.buckets, key=lambda b: b.peak_bytes)
    per_device = bp.peak_bytes / bp.n_shards
    free = device_free_bytes(sp.devices[0])
    cpu = sp.devices[0].platform == "cpu"
    if free is not None and (bp.peak_bytes if cpu else per_device) > free:
        need = bp.peak_bytes if cpu else per_device
        fraction = 0.8 * free / need
        found.append(
            f"a chunk of {bp.chunk_trajectories:,} trajectories needs {size(need)} of "
            f"{'host' if cpu else 'device'} memory but {describe_devices(sp.devices)} has "
            f"{size(free)} free; pass {_chunk_hint(sp, fraction)} or free memory"
        )
    host = host_available_bytes()
    held = results_bytes(prep)
    chunk = sp.peak_bytes if cpu else 0  # on the CPU a chunk is computed in host memory too
    if host is not None and held + chunk > host:
        results = (
            f"the results ({prep.n_seeds:,} seeds x {sp.n_points:,} points x "
            f"{prep.spec.n_records:,} records) need {size(held)} of host memory"
        )
        fewer = (
            "sweep fewer seeds or points, or record less often "
            f"(a larger record_every than {prep.spec.record_every:,})"
        )
        if held > host:
            found.append(f"{results} but {size(host)} is available; {fewer}")
        elif not found:  # the results fit, but not beside the largest chunk (unless refused above)
            found.append(
                f"{results} and the largest chunk {size(chunk)} more, together more than the "
                f"{size(host)} available; pass {_chunk_hint(sp, 0.8 * (host - held) / chunk)}, "
                f"or {fewer}"
            )
    if out is not None:
        where = Path(out)
        while not where.exists() and where != where.parent:
            where = where.parent
        try:
            disk = shutil.disk_usage(where).free
        except OSError:
            disk = None
        need = (
            2 * held
        )  # the chunk files, then results.npz beside them (compressed: at most as much)
        if disk is not None and need > disk:
            found.append(
                f"the output needs up to {size(need)} on disk ({size(held)} of chunk files and "
                f"results.npz) but {where} has {size(disk)} free; free space there or choose "
                "another output folder (--out)"
            )
    return found


def check(sp: SweepPlan, prep: Prepared, out: str | Path | None = None) -> None:
    """Raises `TooLargeError` with every reason the sweep does not fit (one line each)."""
    found = problems(sp, prep, out)
    if found:
        raise TooLargeError("; and ".join(found))


def announce(sp: SweepPlan, prep: Prepared, todo: int, progress: bool | None) -> None:
    """Prints the plan to stderr before a run large enough to sit silent a while."""
    work = sp.n_seeds * sp.n_points * sp.steps
    held = results_bytes(prep)
    if progress is False or not (
        work >= ANNOUNCE_TRAJECTORY_STEPS or held >= ANNOUNCE_BYTES or todo >= ANNOUNCE_CHUNKS
    ):
        return
    print(
        f"asyncjax: plan: {sp.n_seeds * sp.n_points:,} trajectories x {sp.steps:,} steps "
        f"({work:.2e} trajectory-steps) in {todo:,} chunk(s) of at most {size(sp.peak_bytes)} "
        f"on {describe_devices(sp.devices)}; results {size(held)} (asyncjax plan CONFIG "
        "estimates the time)",
        file=sys.stderr,
        flush=True,
    )


_OOM_MARKERS = ("RESOURCE_EXHAUSTED", "Unable to allocate", "out of memory", "Out of memory")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation failure (XLA's RESOURCE_EXHAUSTED, NumPy's MemoryError)."""
    if isinstance(err, MemoryError):
        return True
    text = str(err)
    return type(err).__name__ in ("XlaRuntimeError", "JaxRuntimeError") and any(
        m in text for m in _OOM_MARKERS
    )


def out_of_memory(err: BaseException, sp: SweepPlan, out: str | Path | None) -> TooLargeError:
    """The one-line error an allocation failure mid-run becomes: the chunk's size, what to change."""
    first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
    bp = max(sp.buckets, key=lambda b: b.peak_bytes)
    budget = (
        "ASYNCJAX_CPU_BUDGET_MB below " + f"{sp.budget >> 20}"
        if sp.devices[0].platform == "cpu"
        else "a smaller chunk_size"
    )
    kept = f"; the finished chunks stay in {out}: rerun with --resume" if out is not None else ""
    return TooLargeError(
        f"ran out of memory with chunks of {bp.chunk_trajectories:,} trajectories (planned "
        f"{size(bp.peak_bytes)} on {describe_devices(sp.devices)}): {first[:200]}; pass "
        f"{_chunk_hint(sp, 0.25)} or set {budget}{kept}"
    )


def used_bytes(root: str | Path) -> int:
    """Bytes of every file under ``root``."""
    total = 0
    for base, _, files in os.walk(root):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(base, name))
            except OSError:
                pass
    return total
