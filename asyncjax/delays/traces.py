"""Traces: a user-supplied staleness sequence, e.g. measured on a cluster.

τ_k is entry k of the trace (one row for every trajectory, or one row per
seed); the ring is read at ``k − τ_k`` as for the laws. The values are an
operand of the engine, not part of its static configuration, so two traces of
the same shape share compiled code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax._parts import Hyper
from asyncjax._validate import as_float_array, py
from asyncjax.delays.base import DelayModel, RingContext, RingIO, identity_init, write_newest


@dataclass(frozen=True)
class TraceDelay(DelayModel):
    """A user-supplied staleness sequence; build it with `trace`.

    Two traces of the same shape share compiled code (the values are an
    operand of the engine, not part of its static configuration).
    """

    rows: int = 1
    length: int = 1
    repeat: bool = False
    max_delay: int = field(default=0, compare=False)
    digest: str = field(default="", compare=False)
    values: Any = field(default=None, compare=False, repr=False)  # (rows, length) int64

    name: ClassVar[str] = "trace"
    hyperparameters: ClassVar[tuple[Hyper, ...]] = ()  # the grid has no delay axis

    def check_values(self, values: dict[str, np.ndarray], *, buffer: int) -> None:
        """Every entry of the trace fits the ring."""
        over = np.argwhere(self.values > buffer - 1)
        if over.size:
            r, c = (int(v) for v in over[0])
            raise ValueError(
                f"{self._where(r, c)} = {int(self.values[r, c])} does not fit the delay buffer of "
                f"{buffer} iterates (largest delay it holds: {buffer - 1}); raise `buffer`"
            )

    def _where(self, r: int, c: int) -> str:
        return f"trace[{c}]" if self.rows == 1 else f"trace[{r}, {c}] (row {r}: seed {r})"

    def buffer_for(self, values: Any = None) -> int:
        return self.max_delay + 1

    def check_run(self, seeds: np.ndarray, steps: int) -> None:
        if self.rows > 1 and seeds.size and seeds.max() >= self.rows:
            raise ValueError(
                f"seed {int(seeds.max())} has no row in the trace, which holds {self.rows} rows "
                f"(one per seed 0..{self.rows - 1})"
            )
        if not self.repeat and self.length < steps:
            raise ValueError(
                f"the trace holds {self.length} steps but the run takes {steps}; pass "
                "repeat=True to cycle it"
            )

    def operands(self, dtype: Any) -> jax.Array:
        return jnp.asarray(self.values, jnp.int32)

    def taus(self, dops: jax.Array, seeds: jax.Array, ks: jax.Array) -> jax.Array:
        """τ of steps ``ks`` ((b,)): (b,) if one row serves every seed, else (b, S) by seed."""
        idx = ks % self.length if self.repeat else ks
        if self.rows == 1:
            return dops[0, idx]
        return dops[seeds[None, :], idx[:, None]]

    def ring_io(self, ctx: RingContext) -> RingIO:
        L, dops, seeds = ctx.buffer, ctx.operands, ctx.seeds
        h_idx = jnp.arange(ctx.n_hyper)
        s_idx = jnp.arange(ctx.n_seeds)

        def draw(ks):  # (blk,) or (blk, S) staleness
            return self.taus(dops, seeds, ks)

        def read(ring, k, tau):
            if self.rows == 1:  # every trajectory reads the same step: one (H, S, ...) slab
                return (
                    jax.tree.map(
                        lambda r: jax.lax.dynamic_index_in_dim(r, (k - tau) % L, 1, False), ring
                    ),
                    tau,
                    None,
                )
            slots = (k - tau) % L  # (S,)
            return (
                jax.tree.map(lambda r: r[h_idx[:, None], slots[None, :], s_idx[None, :]], ring),
                tau[None, :],
                None,
            )

        return RingIO(identity_init, draw, read, write_newest(L))

    def delay_stream(self, param: Any, seed: int, steps: int, buffer: int) -> np.ndarray:
        """The trace's row for ``seed`` (``param`` and ``buffer`` are ignored)."""
        self.check_run(np.asarray([seed]), steps)
        row = self.values[0 if self.rows == 1 else seed]
        return row[np.arange(steps) % self.length].copy()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "length": self.length,
            "repeat": self.repeat,
            "max_delay": self.max_delay,
            "sha256": self.digest,
        }

    def sweep_outputs(
        self, grid: Any, seeds: np.ndarray, *, steps: int, record_every: int, slots: int
    ) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
        """The trace itself (``delay_trace``, (rows, length)), so the saved sweep can be redone."""
        small = np.min_scalar_type(self.max_delay)
        return {"delay_trace": (self.values.astype(small), ("trace_row", "trace_step"))}


def trace(values: Any, *, repeat: bool = False) -> TraceDelay:
    """A measured staleness sequence, e.g. from a real cluster.

    Args:
      values: (T,) one sequence for every trajectory; (R, T) one row per seed
        (seed s reads row s); or a path to a ``.npy`` file, or a ``.csv`` file
        with one row per line (a single row or a single column is one
        sequence). Entries are non-negative integers; step k of a run uses
        entry k.
      repeat: cycle the sequence when a run is longer than it (otherwise such a
        run is refused).

    The delay buffer defaults to the largest entry + 1; a trace that does not
    fit a given buffer, or holds a negative or fractional entry, is refused
    before anything is compiled, naming the entry.
    """
    source = None
    if isinstance(values, (str, Path)):
        source = Path(values)
        if not source.exists():
            raise ValueError(f"trace file {source} does not exist")
        if source.suffix == ".npy":
            values = np.load(source, allow_pickle=False)
        elif source.suffix == ".csv":
            try:
                values = np.loadtxt(source, delimiter=",", ndmin=2)
            except ValueError as err:
                raise ValueError(f"cannot read trace file {source}: {err}") from None
            if 1 in values.shape:
                values = values.reshape(-1)
        else:
            raise ValueError(f"trace file {source} must be .npy or .csv")
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.ndim not in (1, 2) or arr.size == 0:
        raise ValueError(
            f"a trace is a non-empty 1-D or 2-D array of integers, got "
            f"{'dtype ' + str(arr.dtype) if arr.dtype.kind not in 'iuf' else 'shape ' + str(arr.shape)}"
        )
    arr = as_float_array("trace", arr)
    arr2 = arr.reshape(1, -1) if arr.ndim == 1 else arr
    where = (lambda r, c: f"trace[{c}]") if arr.ndim == 1 else (lambda r, c: f"trace[{r}, {c}]")
    for bad, what in ((arr2 < 0, "is negative"), (arr2 != np.round(arr2), "is not an integer")):
        hit = np.argwhere(bad)
        if hit.size:
            r, c = (int(v) for v in hit[0])
            raise ValueError(
                f"{where(r, c)} = {py(arr2[r, c])!r} {what}; a trace holds staleness values "
                "(non-negative integers)"
            )
    ints = arr2.astype(np.int64)
    digest = hashlib.sha256(
        np.ascontiguousarray(ints).tobytes() + str(ints.shape).encode()
    ).hexdigest()[:16]
    return TraceDelay(
        rows=int(ints.shape[0]),
        length=int(ints.shape[1]),
        repeat=bool(repeat),
        max_delay=int(ints.max()),
        digest=digest,
        values=ints,
    )
