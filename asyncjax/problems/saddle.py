"""A strict saddle with a quartic wall: the test bed of second-order convergence.

    f(x) = ½ xᵀ D x + ¼ ‖x‖⁴,     D = diag(D_1, …, D_d), exactly one D_j < 0

0 is a strict saddle (∇²f(0) = D has one negative eigenvalue), the minima are
±√(−D_j) e_j with f* = −D_j²/4, and there are no other local minima
(f ≥ ½ D_j ‖x‖² + ¼ ‖x‖⁴ ≥ −D_j²/4). Started at the saddle, a trajectory only
leaves it through gradient noise, which plays the role of the perturbation in
Wang, Shen & Zhao's analysis of asynchronous SGD near saddles (arXiv 1910.06000).
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
from asyncjax._validate import as_float_array, check_int, check_nonnegative, py
from asyncjax.problems.base import Problem


class SaddleOperands(NamedTuple):
    """The arrays the jitted engine receives for a `QuarticSaddle`."""

    D: jax.Array  # (d,) the quadratic part's diagonal
    d_neg: jax.Array  # () its negative entry D_j, the smallest
    d_next: jax.Array  # () the second-smallest entry (+inf when d = 1)


def check_batch_hp(values: Any, name: str = "batch") -> np.ndarray:
    """Minibatch sizes are integers >= 1 (they may be swept, as floats)."""
    arr = as_float_array(name, values)
    bad = arr[(arr < 1) | (arr != np.round(arr))]
    if bad.size:
        raise ValueError(f"{name} must be an integer >= 1; got {py(bad.flat[0])!r}")
    return arr


class QuarticSaddle(Problem):
    """Minimise f(x) = ½ xᵀ D x + ¼ ‖x‖⁴ from noisy gradients, starting at the saddle 0.

    The stochastic gradient is ∇f(x) + (σ/√m) z, z ~ N(0, I_d) drawn per step
    from the data stream: the additive-noise model of a minibatch of m samples
    whose single-sample gradient noise is σ z. Both σ (``noise``) and m
    (``batch``) are swept hyperparameters; m only scales the noise, so it is a
    traced value and sweeping it compiles nothing.

    Give either the dimension with the two diagonal values (D = diag(negative,
    positive, …, positive)), or the whole diagonal as ``eigenvalues``.

    Args:
      d: dimension >= 1 (may be omitted when ``eigenvalues`` is given).
      negative: D_1 < 0 (default -1).
      positive: D_2 = … = D_d > 0 (default 1).
      eigenvalues: (d,) the diagonal of D: exactly one negative entry (in
        any position), every other entry > 0.
      noise: σ >= 0, the default of the ``noise`` axis.
      batch: m >= 1 (an integer), the default of the ``batch`` axis.
    """

    kind = "quartic_saddle"
    metric_docs = {
        "error": "f(x) - f*, f* = -D_neg^2/4, computed as (||x||^2 + D_neg)^2/4 + 1/2 sum_i (D_i - D_neg) x_i^2",
        "grad_norm": "Euclidean norm of the exact gradient D x + ||x||^2 x",
        "min_hess_eig": "smallest eigenvalue of the Hessian D + ||x||^2 I + 2 x x^T",
    }

    def __init__(
        self,
        d: int | None = None,
        negative: float | None = None,
        positive: float | None = None,
        *,
        eigenvalues: Any = None,
        noise: float = 1.0,
        batch: float = 1,
    ):
        if eigenvalues is None:
            if d is None:
                raise ValueError("give the dimension d (or the diagonal as eigenvalues=...)")
            d = check_int(d, "d", minimum=1)
            neg = -1.0 if negative is None else float(as_float_array("negative", negative, ndim=0))
            pos = 1.0 if positive is None else float(as_float_array("positive", positive, ndim=0))
            if not neg < 0:
                raise ValueError(
                    f"negative must be < 0 (the saddle's descent direction), got {py(negative)!r}"
                )
            if not pos > 0:
                raise ValueError(f"positive must be > 0, got {py(positive)!r}")
            D = np.full(d, pos)
            D[0] = neg
        else:
            if negative is not None or positive is not None:
                raise ValueError("give either eigenvalues=... or negative/positive, not both")
            D = as_float_array("eigenvalues", eigenvalues, ndim=1)
            if d is not None and check_int(d, "d", minimum=1) != D.size:
                raise ValueError(f"d={d} but eigenvalues has {D.size} entries")
            if D.size < 1:
                raise ValueError("eigenvalues must not be empty")
            n_neg = int(np.sum(D < 0))
            if n_neg != 1:
                raise ValueError(
                    f"eigenvalues must have exactly one negative entry (a strict saddle with two minima); "
                    f"got {n_neg} in {D.tolist()}"
                )
            zero = np.flatnonzero(D == 0)
            if zero.size:
                raise ValueError(f"eigenvalues must be non-zero; entry {int(zero[0])} is 0.0")
        self.D = D
        self.neg_index = int(np.argmin(D))
        self.noise = float(check_nonnegative(noise, "noise"))
        self.batch = float(check_batch_hp(batch, "batch"))
        self.hyperparameters = (
            Hyper("noise", self.noise, check_nonnegative, doc="sigma >= 0, the gradient noise"),
            Hyper("batch", self.batch, check_batch_hp, doc="m >= 1, gradients averaged per step"),
        )

    @property
    def d(self) -> int:
        return int(self.D.size)

    @property
    def f_star(self) -> float:
        """The minimum value −D_neg²/4."""
        return -0.25 * float(self.D[self.neg_index]) ** 2

    @property
    def minimizers(self) -> np.ndarray:
        """(2, d) the two minima ±√(−D_neg) e_neg."""
        x = np.zeros((2, self.d))
        r = np.sqrt(-self.D[self.neg_index])
        x[0, self.neg_index], x[1, self.neg_index] = r, -r
        return x

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        """(d,) the Hessian's eigenvalues at a minimum: −2 D_neg along e_neg, D_i − D_neg elsewhere."""
        dn = self.D[self.neg_index]
        lam = self.D - dn
        lam[self.neg_index] = -2.0 * dn
        return lam

    # ----------------------------------------------------------------- static half
    def static_key(self) -> tuple:
        return ("quartic_saddle", self.d)

    def describe(self) -> dict[str, Any]:
        return {
            "problem": self.kind,
            "eigenvalues": self.D.tolist(),
            "noise": self.noise,
            "batch": self.batch,
        }

    def default_init(self) -> np.ndarray:
        """The saddle, x = 0 (d,). With noise 0 a trajectory never leaves it."""
        return np.zeros(self.d)

    def to_internal(self, init: Any) -> np.ndarray:
        x = as_float_array("init", init, ndim=1)
        if x.shape != (self.d,):
            raise ValueError(f"init must have shape ({self.d},), got {x.shape}")
        return x

    # ------------------------------------------------------------- pure functions
    def operands(self, dtype: Any = None) -> SaddleOperands:
        dtype = dtype or jnp.result_type(float)
        rest = np.delete(self.D, self.neg_index)
        return SaddleOperands(
            D=jnp.asarray(self.D, dtype),
            d_neg=jnp.asarray(self.D[self.neg_index], dtype),
            d_next=jnp.asarray(rest.min() if rest.size else np.inf, dtype),
        )

    def sample(self, ops: SaddleOperands, key: jax.Array, ks: jax.Array) -> jax.Array:
        """(b, d) standard normals z_k for steps ``ks`` (b,)."""
        return _rng.normals(key, ks, ops.D.shape[0], ops.D.dtype)

    def grad(
        self, ops: SaddleOperands, params: jax.Array, batch: jax.Array, hp: Mapping[str, Any]
    ) -> jax.Array:
        """D x + ‖x‖² x + (σ/√m) z for x = ``params`` (d,), z = ``batch`` (d,)."""
        dtype = params.dtype
        scale = jnp.asarray(hp["noise"]).astype(dtype) * jax.lax.rsqrt(
            jnp.asarray(hp["batch"]).astype(dtype)
        )
        s = seq_sum(params * params)
        return ops.D * params + s * params + scale * batch

    def metrics(self, ops: SaddleOperands, params: jax.Array) -> dict[str, jax.Array]:
        x = params
        x2 = x * x
        s = seq_sum(x2)
        g = ops.D * x + s * x
        gap = s + ops.d_neg
        error = 0.25 * gap * gap + 0.5 * seq_sum((ops.D - ops.d_neg) * x2)
        lam = s + min_eig_diag_plus_rank_one(
            ops.D, 2.0 * x2, ops.d_neg, jnp.minimum(ops.d_next, ops.d_neg + 2.0 * s)
        )
        return {"error": error, "grad_norm": jnp.sqrt(seq_sum(g * g)), "min_hess_eig": lam}

    def __repr__(self) -> str:
        D = np.array2string(self.D, precision=4, threshold=8)
        return f"QuarticSaddle(d={self.d}, eigenvalues={D}, noise={self.noise!r}, batch={self.batch!r})"


def min_eig_diag_plus_rank_one(
    D: jax.Array, w2: jax.Array, lo: jax.Array, hi: jax.Array
) -> jax.Array:
    """Smallest eigenvalue of diag(D) + u uᵀ by bisection on the secular equation.

    With u_i² = ``w2[i]``, the smallest eigenvalue λ of diag(D) + uuᵀ is the root of
    w(λ) = 1 + Σ_i u_i² / (D_i − λ) in [D_min, min(D_second, D_min + ‖u‖²)]
    (eigenvalue interlacing), where w increases; it is D_min itself when
    u_min = 0. Bisection keeps the bracket, so the result is accurate to a few
    units in the last place of the bracket's scale whatever the u, with no
    O(d³) eigendecomposition: O(d) per iteration, a fixed number of iterations
    (64 in float64, 40 in float32), fine under vmap.

    Args:
      D: (d,) the diagonal, whose smallest entry is ``lo`` and unique.
      w2: (d,) u², non-negative.
      lo: () D_min.
      hi: () an upper end of the bracket, min(second-smallest D_i, D_min + Σ u²).

    Returns:
      () the smallest eigenvalue.
    """
    iters = 64 if D.dtype == jnp.float64 else 40

    def body(_, bracket):
        a, b = bracket
        mid = 0.5 * (a + b)
        den = D - mid
        safe = den != 0  # only when the bracket has shrunk to one ulp
        w = 1.0 + seq_sum(jnp.where(safe, w2 / jnp.where(safe, den, 1.0), 0.0))
        right = w > 0  # the root lies left of mid
        return jnp.where(right, a, mid), jnp.where(right, mid, b)

    a, b = jax.lax.fori_loop(0, iters, body, (lo, jnp.maximum(hi, lo)))
    return 0.5 * (a + b)
