"""The server protocol: what the server does with each gradient that arrives.

With a server, one step of the engine is one *event* of the worker clock: the
earliest-finishing worker delivers a gradient computed at the point it read (or
its job times out). A rule is a pure function of that arrival and of the
server's state (the applied-update count k and the round's count), written for
one trajectory:

* `Server.decide` gives the gradient's weight (0 discards it) and whether
  the server steps now;
* `Server.stopped` says which other workers are stopped and restarted at the
  current point after the event (only for rules with ``stops``);
* class flags say what the engine must keep: ``accumulates`` (a step is the
  weighted sum of a round's gradients divided by ``batch``), ``table`` (a
  gradient table with one entry per worker: each worker's latest gradient, or
  the mean of its gradients in the round; a step is the entries' average over
  the workers), ``every_worker`` (a round ends only when every worker has a
  gradient in it), ``idles`` (a worker that arrived waits for the round to
  end), and `Server.storage` (which past points a gradient may still be
  computed at).

Staleness τ is counted in applied updates (k minus the version a worker read),
which is what Ringmaster and the time-complexity theory mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax._parts import Hyper, Part
from asyncjax._validate import check_whole


def check_batch(values: np.ndarray, name: str) -> np.ndarray:
    """A round's gradient count: a whole number >= 1."""
    return check_whole(values, name, minimum=1)


def check_flag(value: Any, name: str) -> bool:
    """A rule's on/off option: True or False, not a string or a number that reads as one."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def batch_hyper(doc: str) -> Hyper:
    """The ``batch`` axis of the rules that collect a round of gradients (B, required)."""
    return Hyper("batch", check=check_batch, doc=doc)


def fresh_round(tau: jax.Array, count: jax.Array, batch: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A round of gradients computed at the current point: weight 1 if τ = 0, step at the B-th.

    The `Server.decide` of Rennala and m-Synchronous SGD.
    """
    fresh = tau == 0
    return fresh.astype(batch.dtype), fresh & ((count + 1).astype(batch.dtype) >= batch)


def restart_all(step: jax.Array, versions: jax.Array) -> jax.Array:
    """Every worker restarts when the server steps (a new round begins)."""
    return jnp.broadcast_to(step, versions.shape)


@dataclass(frozen=True)
class Server(Part):
    """A server rule (a frozen, hashable dataclass: part of the compiled configuration).

    Subclasses set ``name`` and ``hyperparameters`` and implement `decide`;
    rules that stop workers set ``stops`` and implement `stopped`.

    Attributes:
      name: the rule's name, e.g. ``"ringmaster"`` (results record it).
      hyperparameters: its grid axes (`Hyper`), traced by the engine.
      accumulates: a step applies Σ weight·g / batch over the round's arrivals.
      table: None, or the engine keeps one gradient per worker and a step applies
        their average over the n workers (an entry with no gradient counts as
        zero): ``"latest"`` holds each worker's last accepted gradient and is
        kept across steps (IA²SGD); ``"mean"`` holds the weighted mean of each
        worker's accepted gradients in the round and is emptied by a step
        (Malenia). Costs n gradients per trajectory.
      every_worker: a step waits until every active worker has an accepted
        gradient in the round (`decide`'s step is then only a candidate).
      idles: a worker whose gradient arrived waits for the next step (m-Synchronous).
    """

    name: ClassVar[str] = ""
    hyperparameters: ClassVar[tuple[Hyper, ...]] = ()
    accumulates: ClassVar[bool] = False
    table: ClassVar[str | None] = None
    every_worker: ClassVar[bool] = False
    idles: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return f"the {self.name!r} server"

    @property
    def stops(self) -> bool:
        """Whether a step may stop and restart workers other than the one that arrived."""
        return False

    def decide(
        self, tau: jax.Array, count: jax.Array, hp: dict[str, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        """The arrival's weight (0: discarded) and whether the server steps now.

        Args:
          tau: () int32 the arrival's staleness in applied updates.
          count: () int32 gradients accepted so far in this round (rules that
            accumulate; 0 for the others).
          hp: this rule's hyperparameters (scalars).

        Returns:
          ``(weight, step)``: () float weight and () bool.
        """
        raise NotImplementedError

    def stopped(
        self, k: jax.Array, versions: jax.Array, step: jax.Array, hp: dict[str, jax.Array]
    ) -> jax.Array:
        """(n,) bool: the workers to stop and restart at the current point after this event.

        Args:
          k: () int32 applied updates after this event's step.
          versions: (n,) int32 the version each worker read.
          step: () bool whether the server stepped at this event.
        """
        return jnp.zeros(versions.shape, bool)

    def storage(self, slots: int, values: dict[str, np.ndarray], steps: int) -> int | None:
        """The past points a run must keep: None for one snapshot per worker, or L.

        With L, the engine keeps the read points of the last L versions in a
        ring (slot v mod L); a gradient read at an older version must be one the
        rule discards, since its point is gone. Rules whose accepted gradients
        are all computed at the current point return 1.
        """
        return None

    def check_values(self, values: dict[str, np.ndarray], *, buffer: int) -> dict | None:
        return None

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings, enough to rebuild the rule."""
        return {"kind": self.name}
