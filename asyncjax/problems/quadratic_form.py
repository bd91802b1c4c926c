"""A general convex quadratic with additive Gaussian gradient noise.

    f(x) = ½ xᵀAx − bᵀx,        g(x) = Ax − b + σ z

with A symmetric positive semi-definite, dense or banded, and the noise z either
independent per coordinate (z ~ N(0, I_d)) or one scalar shared by every coordinate
(z = ξ·1, ξ ~ N(0, 1)), drawn per step from the trajectory's data stream. A banded A
is stored as its diagonals, so a gradient costs O(d · bands) instead of O(d²): the
Ringmaster paper's quadratic (`ringmaster_quadratic`, d = 1729, tridiagonal) is
cheap to run for many trajectories.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from asyncjax import _rng
from asyncjax._numerics import seq_sum
from asyncjax._parts import Hyper
from asyncjax._validate import as_float_array, check_int, check_nonnegative, did_you_mean, py
from asyncjax.problems import _data
from asyncjax.problems.base import Problem

NOISE_KINDS = ("independent", "shared")
_NOISE_DOC = "sigma >= 0, the scale of the additive Gaussian gradient noise"
_DENSE_DESCRIBED_UP_TO = 64  # a dense A this size or smaller is written out in describe()


class QuadraticFormOperands(NamedTuple):
    """The arrays the jitted engine receives for a `QuadraticForm`."""

    A: jax.Array  # (K, d) the diagonals, row k zero-padded at its end, or (d, d) the matrix
    b: jax.Array  # (d,) the linear term
    x_star: jax.Array  # (d,) the minimiser A⁺b (the one of least norm when A is singular)


def banded_matvec(bands: jax.Array, x: jax.Array) -> jax.Array:
    """A x for a symmetric banded A given by its diagonals, in O(d · K).

    Args:
      bands: (K, d) row k holds the k-th diagonal, bands[k, i] = A[i, i + k] for
        i < d − k, and zeros after it; row 0 is the main diagonal.
      x: (d,) the vector.

    Returns:
      (d,) A x.
    """
    n_bands, d = bands.shape
    y = bands[0] * x
    for k in range(1, n_bands):
        a = bands[k, : d - k]
        upper = jnp.pad(a * x[k:], (0, k))  # A[i, i+k] x[i+k] for row i
        lower = jnp.pad(a * x[: d - k], (k, 0))  # A[i+k, i] x[i] for row i+k
        y = y + upper + lower
    return y


def _diagonals(diagonals: Any, d: int | None) -> tuple[np.ndarray, list[Any]]:
    """(K, d) padded bands from the user's diagonals, and their compact form for describe()."""
    if isinstance(diagonals, (str, bytes)) or not hasattr(diagonals, "__len__"):
        raise ValueError(
            f"diagonals must be a list (main diagonal first), got {type(diagonals).__name__}"
        )
    if len(diagonals) < 1:
        raise ValueError("diagonals must not be empty: give at least the main diagonal")
    entries = [as_float_array(f"diagonals[{k}]", v) for k, v in enumerate(diagonals)]
    for k, v in enumerate(entries):
        if v.ndim > 1:
            raise ValueError(f"diagonals[{k}] must be a number or a 1-D array, got shape {v.shape}")
    if d is None:
        arrays = [(k, v) for k, v in enumerate(entries) if v.ndim == 1]
        if not arrays:
            raise ValueError("give d when every diagonal is a single number (a constant band)")
        k, v = arrays[0]
        d = v.size + k
    for k, v in enumerate(entries):
        if v.ndim == 1 and v.size != d - k:
            raise ValueError(
                f"diagonals[{k}] must have d - {k} = {d - k} entries for d = {d}, got {v.size}"
            )
    if len(entries) > d:
        raise ValueError(
            f"diagonals has {len(entries)} entries, but a {d} x {d} matrix has only {d} diagonals"
        )
    bands = np.zeros((len(entries), d))
    compact: list[Any] = []
    for k, v in enumerate(entries):
        bands[k, : d - k] = v
        row = bands[k, : d - k]
        compact.append(float(row[0]) if np.all(row == row[0]) else row.tolist())
    return bands, compact


def _dense_from_bands(bands: np.ndarray) -> np.ndarray:
    d = bands.shape[1]
    A = np.diag(bands[0])
    for k in range(1, bands.shape[0]):
        A += np.diag(bands[k, : d - k], k) + np.diag(bands[k, : d - k], -k)
    return A


class QuadraticForm(Problem):
    """Minimise f(x) = ½ xᵀAx − bᵀx, A symmetric positive semi-definite, from noisy gradients.

    The stochastic gradient is Ax − b + σ z, with z drawn per step from the trajectory's
    data stream: with ``noise_kind="independent"`` a standard normal vector, z ~ N(0, I_d);
    with ``"shared"`` one standard normal scalar ξ added to every coordinate, z = ξ·1 (the
    Ringmaster paper's model). σ = ``noise`` is a swept hyperparameter (grid axis
    ``"noise"``), the constructor's value its default.

    Give A either as ``matrix`` (dense, (d, d); a gradient costs O(d²)) or as
    ``diagonals`` (banded and symmetric: entry 0 is the main diagonal, entry k ≥ 1 both the
    k-th super- and sub-diagonal, each a (d − k,) array or one number for a constant band;
    a gradient costs O(d · K) for K diagonals). ``QuadraticForm(diagonals=[λ])`` with
    independent noise follows `Quadratic` (λ) step for step (the same draws, equal up to
    rounding).

    On construction (in float64, on the host) the eigenvalues of A are computed, A is
    checked to be positive semi-definite, L = λ_max(A) (``L``), the minimiser of least norm
    x* = A⁺b (``x_star``) and f* = −½ bᵀA⁺b (``f_star``). A singular A is accepted when b
    lies in its range (otherwise f is unbounded below and the problem is refused).

    Example::

        quad = aj.QuadraticForm(diagonals=[[2.0, 3.0, 4.0], 0.5], b=[1.0, 0.0, -1.0], noise=0.1)
        quad.L, quad.f_star  # 4.2247, -0.3778
        grid = aj.Grid(lr=0.05, momentum=[0.0, 0.5], delay=[0, 2], seed=range(4))
        res = aj.sweep(quad, grid, steps=200, record_every=50)
        res["grad_sq"][..., -1]  # (momentum, delay, seed): ‖∇f‖² at the end

    Args:
      d: the dimension; needed only when every diagonal is a single number.
      diagonals: the bands of a symmetric banded A (main diagonal first); give this or
        ``matrix``.
      matrix: (d, d) a dense symmetric positive semi-definite A.
      b: (d,) the linear term; default zeros (then x* = 0 and f* = 0).
      noise: σ >= 0, the default of the ``noise`` axis.
      noise_kind: ``"independent"`` or ``"shared"`` (static: it fixes the draws' shape).
      init: (d,) start of every trajectory; default all ones (as for `Quadratic`).
    """

    kind = "quadratic_form"
    metric_docs = {
        "error": "f(x) - f*, computed as 1/2 (x - x*)^T A (x - x*) (no cancellation)",
        "grad_sq": "squared Euclidean norm of the exact gradient, ||Ax - b||^2",
        "grad_norm": "Euclidean norm of the exact gradient, ||Ax - b||",
    }

    def __init__(
        self,
        d: int | None = None,
        *,
        diagonals: Any = None,
        matrix: Any = None,
        b: Any = None,
        noise: float = 0.0,
        noise_kind: str = "independent",
        init: Any = None,
    ):
        if d is not None:
            d = check_int(d, "d", minimum=1)
        if (diagonals is None) == (matrix is None):
            raise ValueError("give A once: either diagonals=[...] (banded) or matrix=... (dense)")
        if noise_kind not in NOISE_KINDS:
            raise ValueError(
                f"noise_kind must be one of {', '.join(map(repr, NOISE_KINDS))}; got "
                f"{noise_kind!r}{did_you_mean(noise_kind, NOISE_KINDS)}"
            )
        if matrix is not None:
            A = as_float_array("matrix", matrix, ndim=2)
            if A.shape[0] != A.shape[1] or A.shape[0] < 1:
                raise ValueError(f"matrix must be square and non-empty, got shape {A.shape}")
            if d is not None and d != A.shape[0]:
                raise ValueError(f"d={d} but matrix has shape {A.shape}")
            asym = np.abs(A - A.T)
            if asym.max() > 1e-10 * max(1.0, float(np.abs(A).max())):
                i, j = np.unravel_index(np.argmax(asym), A.shape)
                raise ValueError(
                    f"matrix must be symmetric; entry ({i}, {j}) = {py(A[i, j])!r} but "
                    f"({j}, {i}) = {py(A[j, i])!r}"
                )
            self.storage = "dense"
            self.matrix = 0.5 * (A + A.T)
            self.bands = None
            self._compact = None
        else:
            self.storage = "banded"
            self.bands, self._compact = _diagonals(diagonals, d)
            self.matrix = None
        n = self.d
        self.b = np.zeros(n) if b is None else as_float_array("b", b, ndim=1)
        if self.b.shape != (n,):
            raise ValueError(f"b must have shape ({n},), got {self.b.shape}")
        self.noise = float(check_nonnegative(noise, "noise"))
        self.noise_kind = noise_kind
        self.hyperparameters = (Hyper("noise", self.noise, check_nonnegative, doc=_NOISE_DOC),)
        self._solve()
        self.init_point = np.ones(n) if init is None else self.to_internal(init)
        self.default_norm_bound = max(
            Problem.default_norm_bound,
            100.0 * float(np.linalg.norm(self.init_point) + np.linalg.norm(self.x_star)),
        )

    def _solve(self) -> None:
        """Eigenvalues, the PSD check, L, x* = A⁺b and f*, in float64."""
        n = self.d
        lower = None
        if self.storage == "banded":
            lower = self.bands  # LAPACK's lower band storage is exactly our padded rows
            lam = scipy.linalg.eig_banded(lower, lower=True, eigvals_only=True)
        else:
            lam, vecs = np.linalg.eigh(self.matrix)
        tol = n * np.finfo(float).eps * max(float(np.abs(lam).max()), np.finfo(float).tiny)
        if lam[0] < -tol:
            raise ValueError(
                f"A must be positive semi-definite; its smallest eigenvalue is {py(lam[0])!r}"
            )
        self.eigenvalues = np.maximum(lam, 0.0)
        if lam[0] > tol:  # positive definite: a direct solve
            if self.storage == "banded":
                self.x_star = scipy.linalg.solveh_banded(lower, self.b, lower=True)
            else:
                self.x_star = scipy.linalg.solve(self.matrix, self.b, assume_a="pos")
        else:  # singular: the pseudo-inverse, and b must lie in A's range
            if self.storage == "banded":
                lam, vecs = scipy.linalg.eig_banded(lower, lower=True)
            keep = lam > tol
            coef = vecs.T @ self.b
            outside = float(np.linalg.norm(coef[~keep]))
            if outside > 1e-8 * max(float(np.linalg.norm(self.b)), np.finfo(float).tiny):
                raise ValueError(
                    f"b must lie in the range of A (A is singular): its component in A's null "
                    f"space has norm {outside:.3g}, so f is unbounded below"
                )
            self.x_star = vecs[:, keep] @ (coef[keep] / lam[keep])
        self.f_star = float(-0.5 * self.b @ self.x_star)

    @property
    def d(self) -> int:
        return int((self.bands if self.matrix is None else self.matrix).shape[1])

    @property
    def L(self) -> float:
        """The smoothness constant, λ_max(A)."""
        return float(self.eigenvalues[-1])

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        """(d,) the eigenvalues of A, ascending (the modes a of the delay-stability analysis)."""
        return self.eigenvalues.copy()

    def to_dense(self) -> np.ndarray:
        """A as a (d, d) NumPy array."""
        return self.matrix.copy() if self.matrix is not None else _dense_from_bands(self.bands)

    # ----------------------------------------------------------------- static half
    def static_key(self) -> tuple:
        bands = 0 if self.bands is None else self.bands.shape[0]
        return ("quadratic_form", self.storage, self.d, bands, self.noise_kind)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"problem": self.kind, "d": self.d}
        if self.matrix is None:
            out["diagonals"] = self._compact
        elif self.d <= _DENSE_DESCRIBED_UP_TO:
            out["matrix"] = self.matrix.tolist()
        else:
            out["matrix_sha256"] = _data.fingerprint(self.matrix)
        out.update(
            b=self.b.tolist(),
            noise=self.noise,
            noise_kind=self.noise_kind,
            init=self.init_point.tolist(),
            L=self.L,
            f_star=self.f_star,
        )
        return out

    def default_init(self) -> np.ndarray:
        """The constructor's ``init``, by default all ones (d,)."""
        return self.init_point.copy()

    def to_internal(self, init: Any) -> np.ndarray:
        x = as_float_array("init", init, ndim=1)
        if x.shape != (self.d,):
            raise ValueError(f"init must have shape ({self.d},), got {x.shape}")
        return x

    # ------------------------------------------------------------- pure functions
    def operands(self, dtype: Any = None) -> QuadraticFormOperands:
        dtype = dtype or jnp.result_type(float)
        A = self.bands if self.matrix is None else self.matrix
        return QuadraticFormOperands(
            A=jnp.asarray(A, dtype),
            b=jnp.asarray(self.b, dtype),
            x_star=jnp.asarray(self.x_star, dtype),
        )

    def _matvec(self, A: jax.Array, x: jax.Array) -> jax.Array:
        return banded_matvec(A, x) if self.storage == "banded" else A @ x

    def sample(self, ops: QuadraticFormOperands, key: jax.Array, ks: jax.Array) -> jax.Array:
        """(b, d) standard normals z_k for steps ``ks`` (b,); (b, 1) with shared noise."""
        width = ops.b.shape[0] if self.noise_kind == "independent" else 1
        return _rng.normals(key, ks, width, ops.b.dtype)

    def grad(
        self,
        ops: QuadraticFormOperands,
        params: jax.Array,
        batch: jax.Array,
        hp: Mapping[str, Any],
    ) -> jax.Array:
        """Ax − b + σ z for x = ``params`` (d,) and z = ``batch`` ((d,), or (1,) when shared)."""
        sigma = jnp.asarray(hp["noise"]).astype(params.dtype)
        return self._matvec(ops.A, params) - ops.b + sigma * batch

    def metrics(self, ops: QuadraticFormOperands, params: jax.Array) -> dict[str, jax.Array]:
        g = self._matvec(ops.A, params) - ops.b
        dx = params - ops.x_star
        grad_sq = seq_sum(g * g)
        return {
            "error": 0.5 * seq_sum(dx * self._matvec(ops.A, dx)),
            "grad_sq": grad_sq,
            "grad_norm": jnp.sqrt(grad_sq),
        }

    def __repr__(self) -> str:
        form = f"{self.bands.shape[0]} diagonals" if self.matrix is None else "dense"
        return (
            f"QuadraticForm(d={self.d}, {form}, L={self.L:.4g}, noise={self.noise!r}, "
            f"noise_kind={self.noise_kind!r})"
        )


def ringmaster_quadratic(d: int = 1729, noise: float = 0.01) -> QuadraticForm:
    """The quadratic of the Ringmaster ASGD paper's experiments (Maranjyan, Tyurin & Richtárik 2025).

    A = ¼·tridiag(−1, 2, −1) (L < 1), b = −¼ e_1, start x_0 = √d e_1, and one scalar
    ξ ~ N(0, 1) per gradient added to every coordinate with scale σ = ``noise``, as in the
    public experiment script (vectozavr/ringmaster-lmo, code/experiments/ringmaster.py).
    The minimiser is x*_i = −(d + 1 − i)/(d + 1), i = 1 … d, and f* = −d/(8(d + 1)).

    Example::

        quad = aj.problems.ringmaster_quadratic()  # d = 1729, shared noise 0.01
        quad.L, quad.f_star  # 0.99999918, -0.12493

    Args:
      d: the dimension, >= 1 (the paper's 1729 by default).
      noise: σ >= 0, the default of the ``noise`` axis (the paper's 0.01).

    Returns:
      A banded `QuadraticForm` with shared noise.
    """
    d = check_int(d, "d", minimum=1)
    b = np.zeros(d)
    b[0] = -0.25
    x0 = np.zeros(d)
    x0[0] = np.sqrt(d)
    return QuadraticForm(
        d, diagonals=[0.5, -0.25][: min(2, d)], b=b, noise=noise, noise_kind="shared", init=x0
    )
