"""A separable quadratic with additive Gaussian gradient noise.

    f(x) = ½ xᵀ diag(λ) x,        g(x) = λ ⊙ x + σ z,   z ~ N(0, I_d) per step

The simplest problem on which the delayed heavy-ball recurrence is exactly the
linear one of the stability analysis: mode i obeys x_{k+1} = (1+μ)x_k − μx_{k−1} − ηλ_i x_{k−τ}
(plus noise), so the theory layer's stability boundary applies with a = λ_i and
no linearisation.
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


class Quadratic(Problem):
    """Minimise f(x) = ½ xᵀ diag(λ) x (f* = 0 at x = 0) from noisy gradients.

    The stochastic gradient is λ ⊙ x + σ z with z a standard normal vector drawn
    per step from the trajectory's data stream; σ = ``noise`` is a swept
    hyperparameter (grid axis ``"noise"``), the constructor's value its default.

    Args:
      eigenvalues: (d,) λ, finite and > 0 (the Hessian's eigenvalues: the
        modes a = λ_i of the delay-stability analysis).
      noise: σ >= 0, the default of the ``noise`` axis.
      init: (d,) start of every trajectory; default all ones (every mode
        starts at distance 1 from the optimum).
    """

    kind = "quadratic"
    metric_docs = {
        "error": "f(x) - f* = 1/2 sum_i lambda_i x_i^2 (f* = 0)",
        "grad_norm": "Euclidean norm of the exact gradient, ||lambda * x||",
    }

    def __init__(self, eigenvalues: Any, noise: float = 0.0, init: Any = None):
        lam = as_float_array("eigenvalues", eigenvalues, ndim=1)
        if lam.size < 1:
            raise ValueError("eigenvalues must not be empty")
        low = lam[lam <= 0]
        if low.size:
            raise ValueError(
                f"eigenvalues must be > 0 (a positive-definite quadratic); got {py(low[0])!r}"
            )
        self.eigenvalues = lam
        self.noise = float(check_nonnegative(noise, "noise"))
        self.hyperparameters = (Hyper("noise", self.noise, check_nonnegative, doc=_NOISE_DOC),)
        self.init_point = np.ones(lam.size) if init is None else self.to_internal(init)
        self.default_norm_bound = max(
            Problem.default_norm_bound, 100.0 * float(np.linalg.norm(self.init_point))
        )

    @property
    def d(self) -> int:
        return int(self.eigenvalues.size)

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        """(d,) eigenvalues of the Hessian at the optimum (here everywhere): λ."""
        return self.eigenvalues.copy()

    # ----------------------------------------------------------------- static half
    def static_key(self) -> tuple:
        return ("quadratic", self.d)

    def describe(self) -> dict[str, Any]:
        return {
            "problem": self.kind,
            "eigenvalues": self.eigenvalues.tolist(),
            "noise": self.noise,
            "init": self.init_point.tolist(),
        }

    def default_init(self) -> np.ndarray:
        """The constructor's ``init``, by default all ones (d,)."""
        return self.init_point.copy()

    def to_internal(self, init: Any) -> np.ndarray:
        x = as_float_array("init", init, ndim=1)
        if x.shape != (self.eigenvalues.size,):
            raise ValueError(f"init must have shape ({self.eigenvalues.size},), got {x.shape}")
        return x

    # ------------------------------------------------------------- pure functions
    def operands(self, dtype: Any = None) -> QuadraticOperands:
        dtype = dtype or jnp.result_type(float)
        return QuadraticOperands(eigenvalues=jnp.asarray(self.eigenvalues, dtype))

    def sample(self, ops: QuadraticOperands, key: jax.Array, ks: jax.Array) -> jax.Array:
        """(b, d) standard normals z_k for steps ``ks`` (b,)."""
        lam = ops.eigenvalues
        return _rng.normals(key, ks, lam.shape[0], lam.dtype)

    def grad(
        self, ops: QuadraticOperands, params: jax.Array, batch: jax.Array, hp: Mapping[str, Any]
    ) -> jax.Array:
        """λ ⊙ x + σ z for x = ``params`` (d,) and z = ``batch`` (d,)."""
        sigma = jnp.asarray(hp["noise"]).astype(params.dtype)
        return ops.eigenvalues * params + sigma * batch

    def metrics(self, ops: QuadraticOperands, params: jax.Array) -> dict[str, jax.Array]:
        g = ops.eigenvalues * params
        return {"error": 0.5 * seq_sum(g * params), "grad_norm": jnp.sqrt(seq_sum(g * g))}

    def __repr__(self) -> str:
        lam = np.array2string(self.eigenvalues, precision=4, threshold=8)
        return f"Quadratic(d={self.d}, eigenvalues={lam}, noise={self.noise!r})"
