"""The delay-model protocol: what every model declares, and how it reads and writes the ring.

The engine keeps a ring of past read points, one per parameter leaf with
leaves (H, buffer, S, *leaf), and asks the model, through `DelayModel.ring_io`,
for a `RingIO`: four pure functions that say what the model carries
beside the ring, what it draws per step, which stale points a step reads and
where the new read point goes. The engine's scan never asks which model it
holds (as diffrax's loop never asks which solver; the record is optax's
``GradientTransformation`` shape).

A model also declares its swept values the way every part does
(`asyncjax._parts`): ``hyperparameters`` (at most one, its grid
``axis``) and ``check_values`` for the checks that need the ring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax
import numpy as np

from asyncjax._parts import Hyper, Part, resolve

PyTree = Any


class RingContext(NamedTuple):
    """What the engine hands a model when it builds its ring I/O (one batch).

    Attributes:
      buffer: the ring length L (static): past read points kept, or a clock's slots.
      param: (H,) float the model's swept parameter per point; None without an axis.
      keys: (S, 2) uint32 the seeds' delay-stream keys.
      seeds: (S,) int32 the seeds.
      operands: the model's operands (`DelayModel.operands`), None for most.
      n_hyper: H, the number of hyperparameter points (static).
      n_seeds: S (static).
      dtype: the float dtype of the run.
      track: whether ``read`` must return τ_k (a mitigation needs it; static).
      values: name -> (H,) float every swept value the model declares (its
        axis included); a model with several (the event clock) reads them here.
      groups: for a model with ``per_setting``, ``(reps, member)``: (U,) int32
        a point of each distinct setting of its swept values among the H
        points (repeats allowed) and (H,) int32 each point's entry of
        ``reps``, so that it may keep one state per setting; None: one per point.
    """

    buffer: int
    param: Any  # (H,) float or None
    keys: Any  # (S, 2) uint32
    seeds: Any  # (S,) int32
    operands: Any  # the model's operands or None
    n_hyper: int
    n_seeds: int
    dtype: Any
    track: bool
    values: Any = None  # name -> (H,) the model's swept values
    groups: Any = None  # (reps (U,), member (H,)) int32, or None


class EventIO(NamedTuple):
    """How a model whose steps are events (a server's arrivals) gates the optimizer.

    Attributes:
      gate: ``gate(ctx) -> (weight, step, scale)``, each (H, S), from the
        ``ctx`` that ``read`` returned: the gradient's weight (0: discarded),
        whether the optimizer steps at this event, and the factor of the
        accumulated sum the step applies.
      record: ``record(carry) -> name -> (H, S)``: what the model records at
        every record (``wall_time``, ``updates``).
      accumulates: the engine keeps a sum of weighted gradients between steps
        (otherwise a step applies this event's gradient).
      table: None, or the engine keeps a gradient table of ``rows`` entries,
        one per worker (`RingIO.worker` says whose): ``"latest"``, each
        worker's last gradient of positive weight, kept across steps;
        ``"mean"``, the weighted mean of each worker's gradients since the last
        step, emptied by a step. A step applies ``scale`` times the sum of the
        entries (an empty entry is zero).
      rows: the table's entries (static): the run's worker slots.
    """

    gate: Callable[[Any], tuple[Any, Any, Any]]
    record: Callable[[Any], dict]
    accumulates: bool = False
    table: str | None = None
    rows: int = 0


class RingIO(NamedTuple):
    """How a delay model's trajectories read and write the engine's ring: pure, traced.

    ``carry`` is what the scan carries for the delay: the ring itself, or the
    ring and whatever the model keeps beside it (a clock).

    Attributes:
      init: ``init(ring) -> carry``; ``ring`` has leaves (H, L, S, *leaf),
        every slot holding the start's read point.
      draw: ``draw(ks) -> inputs``: the model's per-step inputs for steps ``ks``
        ((blk,) int32), leading axis blk (None: none).
      read: ``read(carry, k, inputs_k) -> (stale, tau, ctx)``: the stale read
        points (leaves (H, S, *leaf)), τ_k broadcastable to (H, S) (may be None
        unless ``RingContext.track``), and what ``write`` needs.
      write: ``write(carry, ctx, new, k) -> carry``: stores the newest read
        points (leaves (H, S, *leaf)), those of step k + 1.
      events: None: every step applies its gradient; else the `EventIO` of
        a model whose steps are events.
      worker: ``worker(ctx) -> (H, S) int32``: the index of the worker whose
        gradient step k is, from the ``ctx`` that ``read`` returned; None for
        a model without workers. A problem whose workers hold their own data
        (``problem.per_worker``) needs it.
    """

    init: Callable[[PyTree], Any]
    draw: Callable[[jax.Array], Any]
    read: Callable[[Any, jax.Array, Any], tuple[PyTree, Any, Any]]
    write: Callable[[Any, Any, PyTree, jax.Array], Any]
    events: EventIO | None = None
    worker: Callable[[Any], Any] | None = None


def setting_groups(values: dict[str, np.ndarray], size: int | None = None) -> tuple:
    """The distinct settings among H points (`RingContext.groups`), in NumPy.

    Args:
      values: name -> (H,) a model's swept values at each point.
      size: pad ``reps`` to this many entries (by repeating its last), so that
        every chunk of a sweep has the same shapes; at least the settings found.

    Returns:
      ``(reps, member)``: (U,) int32 the first point of each setting, in order
      of first appearance, and (H,) int32 each point's entry of ``reps``.
    """
    rows = np.stack([np.asarray(values[k], np.float64) for k in sorted(values)], axis=1)
    _, first, member = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # settings in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    reps, member = first[order], rank[np.ravel(member)]
    if size is not None:
        if size < reps.size:
            raise ValueError(f"size={size} is fewer than the {reps.size} settings")
        reps = np.concatenate([reps, np.repeat(reps[-1:], size - reps.size)])
    return reps.astype(np.int32), member.astype(np.int32)


def identity_init(ring: PyTree) -> PyTree:
    """``RingIO.init`` of a model that carries nothing beside the ring."""
    return ring


def write_newest(buffer: int) -> Callable[[PyTree, Any, PyTree, jax.Array], PyTree]:
    """``RingIO.write`` of a ring read by step: the new read points go to slot (k + 1) mod L.

    One (S, *leaf) slab per point, written in place.
    """

    def write(ring: PyTree, ctx: Any, new: PyTree, k: jax.Array) -> PyTree:
        return jax.tree.map(
            lambda r, n: jax.lax.dynamic_update_slice_in_dim(r, n[:, None], (k + 1) % buffer, 1),
            ring,
            new,
        )

    return write


@dataclass(frozen=True)
class DelayModel(Part):
    """The protocol every delay model implements (a frozen, hashable dataclass: a jit key).

    Subclasses set ``name`` and ``hyperparameters`` and implement
    `ring_io`, `buffer_for` and `delay_stream`; the rest has
    defaults.

    Attributes:
      name: the model's name, e.g. ``"constant"`` (results record it).
      hyperparameters: its swept values (at most one), as `asyncjax._parts` reads them.
      per_setting: what it carries beside the ring depends only on its own
        swept values and the seed (a clock), so points that share them may
        share it: the engine then passes their groups (`RingContext.groups`).
    """

    name: ClassVar[str] = ""
    hyperparameters: ClassVar[tuple[Hyper, ...]] = ()
    per_setting: ClassVar[bool] = False  # its state depends on its own values and the seed only

    # ------------------------------------------------------------ swept values
    @property
    def axis(self) -> str | None:
        """The grid axis of its one hyperparameter, or None."""
        return self.hyperparameters[0].name if self.hyperparameters else None

    @property
    def label(self) -> str:
        """How messages name it."""
        return f"the {self.name!r} delay model"

    def check_values(self, values: dict[str, np.ndarray], *, buffer: int) -> dict | None:
        """Checks that need the ring (``buffer``); returns the checked arrays, or None."""
        return None

    def check(self, values: Any, buffer: int) -> np.ndarray | None:
        """The values of its axis as a checked 1-D float64 array (None values: the default).

        Returns None for a model without an axis (its own settings are still checked).
        """
        given = {} if values is None or self.axis is None else {self.axis: values}
        return resolve([self], given, buffer=buffer).get(self.axis)

    def buffer_for(self, values: Any = None) -> int:
        """The smallest ring that serves these values of its axis (None: the default)."""
        raise NotImplementedError

    @property
    def has_workers(self) -> bool:
        """Whether its steps are gradients of numbered workers (`RingIO.worker` says whose).

        A model with the worker clock's ``workers`` axis has them; a problem whose
        workers hold their own data runs only on such a model.
        """
        return "workers" in self.hp_names

    def ring_need(self, values: Any, buffer: int) -> np.ndarray | None:
        """(H,) the ring each point needs (rings cut to size), or None: one ring serves all.

        Only a model whose results do not depend on the ring beyond its need
        may return sizes (the memory planner groups points by them).
        """
        return None

    def state_bytes(self, buffer: int, itemsize: int) -> int:
        """Bytes of one trajectory's state beside the ring (a clock's), for the memory plan.

        Args:
          buffer: the ring the run compiles (a worker clock's slots).
          itemsize: bytes of the run's float.
        """
        return 0

    def ring_limit(self, steps: int) -> int | None:
        """The longest ring a run of ``steps`` steps can fill, or None: the ring is not a history.

        A model that reads the ring at ``k − τ_k`` with τ_k clipped to the ring
        reads the start whenever τ_k > k, whatever the ring's length beyond
        ``steps + 1``, so a longer ring only costs memory. Without a mitigation
        (which would see the clipped τ_k) the planner cuts the ring to this.
        """
        return None

    def ring_for_run(self, buffer: int, steps: int, *, mitigated: bool) -> int:
        """The ring a run compiles: ``buffer``, cut to `ring_limit` unless a mitigation is on.

        A mitigation sees τ_k itself (clipped to the ring), so with one the ring stays whole.
        """
        limit = None if mitigated else self.ring_limit(steps)
        return buffer if limit is None else min(buffer, limit)

    # ------------------------------------------------------------ the run
    def operands(self, dtype: Any) -> Any:
        """Arrays the jitted engine receives for this model (``RingContext.operands``)."""
        return None

    def check_run(self, seeds: np.ndarray, steps: int) -> None:
        """Validates the seeds and the number of steps of a run (before any compile)."""

    def ring_io(self, ctx: RingContext) -> RingIO:
        """The model's `RingIO` for one batch (called while tracing)."""
        raise NotImplementedError

    def delay_stream(self, param: Any, seed: int, steps: int, buffer: int) -> np.ndarray:
        """(steps,) int τ_0 … τ_{steps−1} of one trajectory (to replay it outside JAX)."""
        raise NotImplementedError

    # ------------------------------------------------------------ records
    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings, enough to rebuild the model."""
        return {"name": self.name}

    def gradient_bytes(self, param_bytes: int) -> int:
        """Bytes per trajectory its events keep beside the ring and the clock (a server's
        sum of gradients or gradient table), given one gradient's ``param_bytes``; 0 for most."""
        return 0

    def recorded(self, dtype: Any) -> dict[str, Any]:
        """What the engine records for the model at every record (`EventIO.record`).

        Returns:
          name -> ``jax.ShapeDtypeStruct`` of one trajectory's value; none for most models.
        """
        return {}

    def trajectory_metrics(
        self, param: Any, seed: np.ndarray, *, steps: int, record_every: int, slots: int
    ) -> dict[str, np.ndarray]:
        """Metrics one trajectory records besides the engine's (the clock's ``wall_time``).

        Args:
          param: its value of the model's axis (None without one).
          seed: (1,) its seed.

        Returns:
          name -> (n_records,) array; none for most models.
        """
        return {}

    def sweep_outputs(
        self, grid: Any, seeds: np.ndarray, *, steps: int, record_every: int, slots: int
    ) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
        """Variables a sweep records besides the engine's: name -> (array, axis names)."""
        return {}
