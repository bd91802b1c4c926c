"""A separable quadratic with additive Gaussian gradient noise, shared or per worker.

    f(x) = ½ xᵀ diag(λ) x,        g(x) = λ ⊙ x + σ z,   z ~ N(0, I_d) per step

The simplest problem on which the delayed heavy-ball recurrence is exactly the
linear one of the stability analysis: mode i obeys x_{k+1} = (1+μ)x_k − μx_{k−1} − ηλ_i x_{k−τ}
(plus noise), so the theory layer's stability boundary applies with a = λ_i and
no linearisation.

With ``worker_optima`` the n workers hold their own data:

    f(x) = (1/n) Σ_j f_j(x),   f_j(x) = ½ (x − b_j)ᵀ diag(λ_j) (x − b_j),
    g_j(x) = λ_j ⊙ (x − b_j) + σ z

so the optimum x* = (Σ_j λ_j)⁻¹ Σ_j λ_j b_j (elementwise) is known exactly, and so is
the biased point asynchronous SGD settles at instead (`asyncjax.theory.asgd_fixed_point`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._numerics import seq_sum
from asyncjax._parts import Hyper
from asyncjax._validate import as_float_array, check_nonnegative, py
from asyncjax.problems.base import Problem

_NOISE_DOC = "sigma >= 0, the scale of the additive Gaussian gradient noise"


class QuadraticOperands(NamedTuple):
    """The arrays the jitted engine receives for a `Quadratic`."""

    eigenvalues: jax.Array  # (d,) λ, the Hessian's diagonal


class WorkerQuadraticOperands(NamedTuple):
    """The arrays the jitted engine receives for a `Quadratic` with worker optima."""

    eigenvalues: jax.Array  # (d,) λ, the Hessian of f: the workers' mean curvature
    optima: jax.Array  # (n, d) b_j, each worker's optimum
    curvatures: jax.Array  # (n, d) λ_j, each worker's Hessian diagonal
    optimum: jax.Array  # (d,) x*, the optimum of f


class Quadratic(Problem):
    """Minimise f(x) = ½ xᵀ diag(λ) x (f* = 0 at x = 0) from noisy gradients.

    The stochastic gradient is λ ⊙ x + σ z with z a standard normal vector drawn
    per step from the trajectory's data stream; σ = ``noise`` is a swept
    hyperparameter (grid axis ``"noise"``), the constructor's value its default.

    With ``worker_optima`` (B, shape (n, d)) each of n workers holds its own
    quadratic f_j(x) = ½ (x − b_j)ᵀ diag(λ_j) (x − b_j) and the problem is
    f = (1/n) Σ_j f_j: worker j's gradient is λ_j ⊙ (x − b_j) + σ z (the same
    z a shared run draws at that step). Its curvature λ_j is
    ``worker_curvatures[j]``, or λ for every worker. The optimum
    x* = (Σ_j λ_j)⁻¹ Σ_j λ_j b_j is `optimum`; the error is f(x) − f(x*). Such a
    problem runs on the worker clock with exactly n workers.

    Args:
      eigenvalues: (d,) λ, finite and > 0 (the Hessian's eigenvalues: the
        modes a = λ_i of the delay-stability analysis). With
        ``worker_curvatures`` it may be omitted: it is then their mean, the
        Hessian of f (if given, it must equal that mean).
      noise: σ >= 0, the default of the ``noise`` axis.
      init: (d,) start of every trajectory; default all ones (every mode
        starts at distance 1 from the optimum, when the optimum is 0).
      worker_optima: (n, d) b_j, worker j's optimum (finite); None: one
        quadratic shared by every worker.
      worker_curvatures: (n, d) λ_j, worker j's Hessian diagonal (finite,
        > 0); only with ``worker_optima``.

    Example::

        B = [[1.0, 0.0], [-1.0, 2.0], [0.0, -2.0]]
        q = aj.Quadratic([1.0, 0.5], noise=0.1, worker_optima=B)
        q.optimum  # the mean of B's rows (equal curvatures)
    """

    kind = "quadratic"
    metric_docs = {
        "error": "f(x) - f* = 1/2 sum_i lambda_i (x_i - x*_i)^2, lambda the Hessian of f "
        "(the workers' mean) and x* its optimum (0 without worker optima)",
        "grad_norm": "Euclidean norm of the exact gradient of f, ||lambda * (x - x*)||",
    }

    def __init__(
        self,
        eigenvalues: Any = None,
        noise: float = 0.0,
        init: Any = None,
        worker_optima: Any = None,
        worker_curvatures: Any = None,
    ):
        curv = None
        if worker_curvatures is not None:
            if worker_optima is None:
                raise ValueError(
                    "worker_curvatures needs worker_optima (each worker's optimum b_j, (n, d))"
                )
            curv = as_float_array("worker_curvatures", worker_curvatures, ndim=2)
            low = curv[curv <= 0]
            if low.size:
                raise ValueError(
                    f"worker_curvatures must be > 0 (each f_j positive definite); "
                    f"got {py(low[0])!r}"
                )
        if eigenvalues is None:
            if curv is None:
                raise ValueError("give eigenvalues (d,), or worker_curvatures (n, d)")
            lam = curv.mean(axis=0)
        else:
            lam = as_float_array("eigenvalues", eigenvalues, ndim=1)
        if lam.size < 1:
            raise ValueError("eigenvalues must not be empty")
        low = lam[lam <= 0]
        if low.size:
            raise ValueError(
                f"eigenvalues must be > 0 (a positive-definite quadratic); got {py(low[0])!r}"
            )
        self.worker_optima = self.worker_curvatures = None
        self.optimum = np.zeros(lam.size)
        if worker_optima is not None:
            b = as_float_array("worker_optima", worker_optima, ndim=2)
            if b.shape[0] < 1 or b.shape[1] != lam.size:
                raise ValueError(
                    f"worker_optima must have shape (n, {lam.size}) (one optimum per worker, "
                    f"d = {lam.size}), got {b.shape}"
                )
            if curv is None:
                curv = np.broadcast_to(lam, b.shape).copy()
            elif curv.shape != b.shape:
                raise ValueError(
                    f"worker_curvatures must have worker_optima's shape {b.shape} (each "
                    f"worker's Hessian diagonal), got {curv.shape}"
                )
            elif not np.allclose(lam, curv.mean(axis=0), rtol=1e-12, atol=0):
                raise ValueError(
                    "eigenvalues must be the mean of worker_curvatures (the Hessian of f); "
                    "omit eigenvalues to take it"
                )
            lam = curv.mean(axis=0)
            self.worker_optima, self.worker_curvatures = b, curv
            self.optimum = (curv * b).sum(axis=0) / curv.sum(axis=0)
        self.eigenvalues = lam
        self.noise = float(check_nonnegative(noise, "noise"))
        self.hyperparameters = (Hyper("noise", self.noise, check_nonnegative, doc=_NOISE_DOC),)
        self.init_point = np.ones(lam.size) if init is None else self.to_internal(init)
        reach = float(np.linalg.norm(self.init_point))
        if self.worker_optima is not None:
            reach = max(reach, float(np.linalg.norm(self.worker_optima, axis=1).max()))
        self.default_norm_bound = max(Problem.default_norm_bound, 100.0 * reach)

    @property
    def d(self) -> int:
        return int(self.eigenvalues.size)

    @property
    def workers(self) -> int | None:
        """n, the number of workers with their own optimum; None without worker optima."""
        return None if self.worker_optima is None else int(self.worker_optima.shape[0])

    @property
    def per_worker(self) -> bool:
        """True with ``worker_optima``: worker j's gradient is that of its own f_j."""
        return self.worker_optima is not None

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        """(d,) eigenvalues of the Hessian of f (everywhere): λ, the workers' mean curvature."""
        return self.eigenvalues.copy()

    def check_workers(self, n: int) -> None:
        """A run with worker optima needs exactly their n workers (f averages over all n)."""
        if self.workers is not None and n != self.workers:
            raise ValueError(
                f"workers={n} but worker_optima gives {self.workers} workers: f averages over "
                f"all {self.workers}, so a run needs exactly workers={self.workers}"
            )

    # ----------------------------------------------------------------- static half
    def static_key(self) -> tuple:
        return (
            ("quadratic", self.d) if self.workers is None else ("quadratic", self.d, self.workers)
        )

    def describe(self) -> dict[str, Any]:
        out = {
            "problem": self.kind,
            "eigenvalues": self.eigenvalues.tolist(),
            "noise": self.noise,
            "init": self.init_point.tolist(),
        }
        if self.worker_optima is not None:
            out["worker_optima"] = self.worker_optima.tolist()
            out["worker_curvatures"] = self.worker_curvatures.tolist()
        return out

    def default_init(self) -> np.ndarray:
        """The constructor's ``init``, by default all ones (d,)."""
        return self.init_point.copy()

    def to_internal(self, init: Any) -> np.ndarray:
        x = as_float_array("init", init, ndim=1)
        if x.shape != (self.eigenvalues.size,):
            raise ValueError(f"init must have shape ({self.eigenvalues.size},), got {x.shape}")
        return x

    # ------------------------------------------------------------- pure functions
    def operands(self, dtype: Any = None) -> QuadraticOperands | WorkerQuadraticOperands:
        dtype = dtype or jnp.result_type(float)
        lam = jnp.asarray(self.eigenvalues, dtype)
        if self.worker_optima is None:
            return QuadraticOperands(eigenvalues=lam)
        return WorkerQuadraticOperands(
            lam,
            jnp.asarray(self.worker_optima, dtype),
            jnp.asarray(self.worker_curvatures, dtype),
            jnp.asarray(self.optimum, dtype),
        )

    def sample(self, ops: QuadraticOperands, key: jax.Array, ks: jax.Array) -> jax.Array:
        """(b, d) standard normals z_k for steps ``ks`` (b,)."""
        lam = ops.eigenvalues
        return _rng.normals(key, ks, lam.shape[0], lam.dtype)

    def grad(
        self, ops: QuadraticOperands, params: jax.Array, batch: jax.Array, hp: Mapping[str, Any]
    ) -> jax.Array:
        """λ ⊙ (x − x*) + σ z for x = ``params`` (d,) and z = ``batch`` (d,): f's own gradient."""
        sigma = jnp.asarray(hp["noise"]).astype(params.dtype)
        return ops.eigenvalues * _offset(ops, params) + sigma * batch

    def worker_grad(
        self,
        ops: WorkerQuadraticOperands,
        params: jax.Array,
        batch: jax.Array,
        hp: Mapping[str, Any],
        worker: jax.Array,
    ) -> jax.Array:
        """λ_j ⊙ (x − b_j) + σ z: worker j's own gradient (j = ``worker``, () int32)."""
        sigma = jnp.asarray(hp["noise"]).astype(params.dtype)
        return ops.curvatures[worker] * (params - ops.optima[worker]) + sigma * batch

    def metrics(self, ops: QuadraticOperands, params: jax.Array) -> dict[str, jax.Array]:
        e = _offset(ops, params)
        g = ops.eigenvalues * e
        return {"error": 0.5 * seq_sum(g * e), "grad_norm": jnp.sqrt(seq_sum(g * g))}

    def __repr__(self) -> str:
        lam = np.array2string(self.eigenvalues, precision=4, threshold=8)
        own = "" if self.workers is None else f", workers={self.workers}"
        return f"Quadratic(d={self.d}, eigenvalues={lam}, noise={self.noise!r}{own})"


def _offset(ops: Any, params: jax.Array) -> jax.Array:
    """x − x* (x itself when the optimum is 0: the shared quadratic's results stay bit for bit)."""
    return params - ops.optimum if isinstance(ops, WorkerQuadraticOperands) else params
