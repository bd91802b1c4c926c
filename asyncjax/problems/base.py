"""The Problem protocol: what the engine needs to know about an optimisation problem.

A problem has two halves, kept strictly apart:

* a *static* half — shapes, the data model, minibatch size, any option that
  changes the compiled code — summarised by `Problem.static_key`. Two
  problems with equal keys compare equal and share compiled code.
* `Problem.operands`: every array the pure functions need (a spectrum, a
  data set, a start), passed to the jitted engine as an argument. A second
  problem of the same shapes with other numbers compiles nothing.

The pure functions (`init`, `sample`, `grad`,
`metrics`) are written for ONE trajectory and must read arrays only from
``ops`` (never from ``self``), since compiled code is shared by every problem
with the same static key. The engine vmaps them over seeds and grid points.

Conventions:

* Parameters are a pytree of arrays (a (d,) vector, or an MLP's dict of
  weights); the delay buffer keeps one ring per leaf.
* `grad` is the stochastic gradient of the loss to *minimise*, evaluated
  at (stale) parameters for one step's batch. Maximisation problems (streaming
  PCA) return the negated ascent direction.
* `sample` draws the data of a block of steps from the trajectory's data
  stream; row i depends only on (key, ks[i]) (counter-based, see
  `asyncjax._rng`), so results never depend on blocking or batching.
* `metrics` returns scalars and always includes ``"error"``, the metric
  that curves and thresholds use by default; `Problem.metric_docs` says
  what each one is.
* A problem whose workers hold their own data (`Problem.per_worker`)
  minimises f = (1/n) Σ_j f_j over n workers: the engine then calls
  `Problem.worker_grad` with the index of the worker whose gradient
  arrives (the worker clock says which), and `Problem.check_workers` refuses
  worker counts the problem cannot serve. The data of a step is still drawn
  by `sample`, shared by every worker; `worker_grad` turns it into worker
  j's sample (a uniform per row mapped into j's shard, say), so results
  never depend on blocking or batching.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import jax

from asyncjax._parts import Hyper, Part

PyTree = Any


class Problem(Part):
    """Base class of every problem (see the module docstring for the contract).

    Class attributes:
      kind: the name used in TOML (``[problem] kind = ...``) and metadata.
      hyperparameters: the problem's own swept values (grid axes), if any, as
        `Hyper` (name, default, check); a problem
        whose defaults come from its constructor sets them per instance.
      metric_docs: metric name -> one-line definition (stored in results).
      default_norm_bound: a trajectory whose parameter norm exceeds this is
        frozen and flagged as diverged.
      worst_error: what a diverged trajectory's ``error`` counts as in the
        analysis (``inf`` where the error is unbounded; 1 for sin²).
    """

    kind: ClassVar[str] = ""
    hyperparameters: tuple[Hyper, ...] = ()
    metric_docs: ClassVar[Mapping[str, str]] = {}
    default_norm_bound: ClassVar[float] = 1e3
    worst_error: ClassVar[float] = float("inf")

    # ------------------------------------------------------------ static half
    def static_key(self) -> tuple:
        """Hashable summary of everything that fixes shapes and compiled code."""
        raise NotImplementedError

    @property
    def per_worker(self) -> bool:
        """Whether the gradient depends on which worker computes it (static; default False).

        True for a problem whose workers hold their own data (a split, per-worker
        optima); it then needs the worker clock (``delay_model=asyncjax.delays.workers(...)``).
        Part of the compiled configuration: problems that differ in it never share code.
        """
        return False

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and self.static_key() == other.static_key()  # type: ignore[attr-defined]
            and self.per_worker == other.per_worker  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.static_key(), self.per_worker))

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings, enough to rebuild the problem."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        return f"problem {self.kind!r}"

    # -------------------------------------------------------------- the start
    def default_init(self) -> PyTree | None:
        """The fixed start of every trajectory (NumPy pytree), or None for a random one.

        None means `init` draws each seed's start from its init stream.
        """
        return None

    def to_internal(self, init: Any) -> PyTree:
        """Validates a user-given start and returns it in the simulated coordinates."""
        raise ValueError(f"{type(self).__name__} does not take a user-given init")

    def from_internal(self, params: Any) -> Any:
        """Inverse of `to_internal` for (batched) parameters; identity by default."""
        return params

    # --------------------------------------------------- pure (traced) functions
    def operands(self, dtype: Any) -> PyTree:
        """The arrays the jitted engine receives (see the module docstring)."""
        raise NotImplementedError

    def init(self, ops: PyTree, key: jax.Array) -> PyTree:
        """A random start for one trajectory; ``key`` is its (2,) uint32 init-stream key."""
        raise NotImplementedError(f"{type(self).__name__} has a fixed start (default_init)")

    def sample(self, ops: PyTree, key: jax.Array, ks: jax.Array) -> PyTree:
        """The data of steps ``ks`` ((b,) int32) of one stream: a pytree with leading axis b."""
        raise NotImplementedError

    def grad(
        self, ops: PyTree, params: PyTree, batch: PyTree, hp: Mapping[str, jax.Array]
    ) -> PyTree:
        """Stochastic gradient of the loss at ``params`` for one step's ``batch``."""
        raise NotImplementedError

    def worker_grad(
        self,
        ops: PyTree,
        params: PyTree,
        batch: PyTree,
        hp: Mapping[str, jax.Array],
        worker: jax.Array,
    ) -> PyTree:
        """Stochastic gradient of worker ``worker``'s own loss f_j at ``params``.

        Called by the engine instead of `grad` when `per_worker` is True.

        Args:
          ops: the operands.
          params: one trajectory's (stale) parameters.
          batch: one step's data, as `sample` drew it (shared by every worker).
          hp: the problem's hyperparameters (scalars).
          worker: () int32 the index j of the worker whose gradient this is (traced).

        Returns:
          The gradient, shaped like ``params``. The default ignores ``worker``.
        """
        return self.grad(ops, params, batch, hp)

    def check_workers(self, n: int) -> None:
        """Refuses (``ValueError``, naming the value) a run with ``n`` workers it cannot serve.

        Called before anything compiles, once per worker count of a run. The
        default accepts any ``n``.
        """

    def metrics(self, ops: PyTree, params: PyTree) -> dict[str, jax.Array]:
        """Scalar metrics of one trajectory's parameters; includes ``"error"``."""
        raise NotImplementedError
