"""Problems: the streaming PCA of Liu et al. (2018), eq. 5.

A problem has two halves:

* a *static* half (dimension, data distribution, the spectrum as NumPy) that is
  hashed into the compilation cache and read by the theory layer, and
* ``operands()``: the JAX arrays the jitted simulator takes as arguments, so a
  second problem of the same shapes (another spectrum, another data set of the
  same size) reuses the compiled code.

Every problem is simulated in the eigenbasis of its covariance. Eq. 5 is
equivariant under rotations (v -> Q^T v, X -> Q^T X), and sin∠(v, q1) is
invariant, so this is exact in distribution for the Gaussian and bounded
models of Liu et al.'s analysis and exact sample-by-sample for a finite data set
(whose rows are rotated once, up front). One step then costs O(d), not O(d^2).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._numerics import seq_sum
from asyncjax._validate import as_float_array, py
from asyncjax.problems.base import Problem

Distribution = Literal["gaussian", "rademacher", "uniform", "dataset"]
_SYNTHETIC = ("gaussian", "rademacher", "uniform")
_SQRT3 = math.sqrt(3.0)


class PCAOperands(NamedTuple):
    """The arrays a jitted simulator receives for a streaming-PCA problem."""

    scale: jax.Array  # (d,) sqrt of the eigenvalues (synthetic data)
    gauss_scale: jax.Array  # (d,) sqrt(2 λ): Gaussian data is gauss_scale * erfinv(v)
    data: jax.Array  # (n, d) centred rows in the eigenbasis; (1, d) zeros if unused


def _check_spectrum(eigenvalues: np.ndarray, *, allow_zero: bool) -> None:
    if eigenvalues.ndim != 1 or eigenvalues.size < 2:
        raise ValueError(f"need at least 2 eigenvalues, got shape {eigenvalues.shape}")
    low = eigenvalues < 0 if allow_zero else eigenvalues <= 0
    if low.any():
        kind = (
            "non-negative" if allow_zero else "positive (the covariance must be positive definite)"
        )
        raise ValueError(f"eigenvalues must be {kind}; got {py(eigenvalues[low][0])!r}")
    if np.any(np.diff(eigenvalues) > 0):
        raise ValueError(
            f"eigenvalues must be sorted in decreasing order, got {eigenvalues.tolist()}"
        )
    if not eigenvalues[0] > eigenvalues[1] * (1 + 1e-9):
        raise ValueError(
            "the top eigenvalue must exceed the second (PCA needs an eigengap); got "
            f"lambda_1={py(eigenvalues[0])!r}, lambda_2={py(eigenvalues[1])!r}"
        )


class StreamingPCA(Problem):
    """Streaming PCA: maximise v^T Σ v on the sphere from samples X with E[X X^T] = Σ.

    The stochastic gradient is eq. 5's: the update direction is
    (I − v vᵀ) X Xᵀ v (an ascent direction; `grad` returns its negative,
    the gradient of the loss the engine minimises). Simulated in the
    eigenbasis of Σ; metrics ``error`` = sin²∠(v, q1) and ``norm`` = ‖v‖.

    Build one with the constructor (spectrum given, simulated in its eigenbasis),
    `from_covariance` (any symmetric positive-definite Σ) or
    `from_data` (a finite data set, rows sampled with replacement).

    Args:
      eigenvalues: (d,) eigenvalues of Σ, decreasing, positive, with λ1 > λ2.
      distribution: ``"gaussian"`` (X ~ N(0, Σ)), or a bounded model
        X = Q Λ^{1/2} r with i.i.d. unit-variance entries r: ``"rademacher"``
        (±1) or ``"uniform"`` (on [-√3, √3]).
    """

    kind = "streaming_pca"
    worst_error = 1.0  # sin² of a vector orthogonal to q1
    metric_docs = {
        "error": "sin^2 of the angle between the iterate v_k and the top eigenvector q1",
        "norm": "Euclidean norm of the iterate v_k",
    }

    def __init__(self, eigenvalues: Any, distribution: Distribution = "gaussian"):
        lam = as_float_array("eigenvalues", eigenvalues, ndim=1)
        _check_spectrum(lam, allow_zero=False)
        if distribution not in _SYNTHETIC:
            raise ValueError(
                f"distribution must be one of {_SYNTHETIC}, got {distribution!r} "
                "(use StreamingPCA.from_data for a finite data set)"
            )
        self.eigenvalues = lam
        self.distribution: Distribution = distribution
        self.basis: np.ndarray | None = None  # Q, columns = eigenvectors; None = identity
        self._data: np.ndarray | None = None  # (n, d) rows in the eigenbasis
        self._source: dict[str, Any] = {"kind": "eigenvalues"}

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_covariance(
        cls, covariance: Any, distribution: Distribution = "gaussian"
    ) -> StreamingPCA:
        """A problem with a full covariance matrix Σ (symmetric positive definite).

        Args:
          covariance: (d, d) symmetric positive-definite matrix.
          distribution: as for the constructor.
        """
        cov = as_float_array("covariance", covariance, ndim=2)
        if cov.shape[0] != cov.shape[1]:
            raise ValueError(f"covariance must be square, got shape {cov.shape}")
        asym = np.max(np.abs(cov - cov.T))
        if asym > 1e-10 * max(1.0, np.max(np.abs(cov))):
            i, j = np.unravel_index(np.argmax(np.abs(cov - cov.T)), cov.shape)
            raise ValueError(
                f"covariance must be symmetric; entry ({i}, {j}) = {py(cov[i, j])!r} but "
                f"({j}, {i}) = {py(cov[j, i])!r}"
            )
        lam, q = np.linalg.eigh(0.5 * (cov + cov.T))
        order = np.argsort(lam)[::-1]
        lam, q = lam[order], q[:, order]
        if lam[-1] <= 0:
            raise ValueError(
                f"covariance must be positive definite; its smallest eigenvalue is {py(lam[-1])!r}"
            )
        self = cls(lam, distribution)
        self.basis = q
        self._source = {"kind": "covariance", "covariance": cov.tolist()}
        return self

    @classmethod
    def from_data(cls, data: Any, *, center: bool = True) -> StreamingPCA:
        """A finite data set; each step draws one row uniformly with replacement.

        Σ is the data's second-moment matrix (after centring, by default), and
        the target q1 its top eigenvector.

        Args:
          data: (n, d) array of rows, n >= 2.
          center: subtract the column means first.
        """
        x = as_float_array("data", data, ndim=2)
        n, d = x.shape
        if n < 2 or d < 2:
            raise ValueError(f"data needs at least 2 rows and 2 columns, got shape {x.shape}")
        if center:
            x = x - x.mean(axis=0, keepdims=True)
        cov = x.T @ x / n
        lam, q = np.linalg.eigh(cov)
        order = np.argsort(lam)[::-1]
        lam, q = np.clip(lam[order], 0.0, None), q[:, order]
        _check_spectrum(lam, allow_zero=True)
        self = cls.__new__(cls)
        self.eigenvalues = lam
        self.distribution = "dataset"
        self.basis = q
        self._data = x @ q
        digest = hashlib.sha256(
            np.ascontiguousarray(np.asarray(data, np.float64)).tobytes()
        ).hexdigest()
        self._source = {"kind": "data", "shape": [n, d], "sha256": digest, "center": center}
        return self

    # ----------------------------------------------------------------- properties
    @property
    def d(self) -> int:
        return int(self.eigenvalues.size)

    def static_key(self) -> tuple:
        """Hashable description of what the compiled code depends on."""
        n = 1 if self._data is None else self._data.shape[0]
        return ("pca", self.d, self.distribution, n)

    def default_init(self) -> np.ndarray:
        """The paper's start: the saddle q2 (e_2 in eigen-coordinates)."""
        e2 = np.zeros(self.d)
        e2[1] = 1.0
        return e2

    def to_internal(self, init: Any) -> np.ndarray:
        return self.to_eigenbasis(init)

    def from_internal(self, params: Any) -> np.ndarray:
        return self.from_eigenbasis(params)

    def sample(self, ops: PCAOperands, key: jax.Array, ks: jax.Array) -> jax.Array:
        return sample_block(self.distribution, ops, key, ks)

    def grad(self, ops: PCAOperands, params: jax.Array, batch: jax.Array, hp: Any) -> jax.Array:
        """−(I − v vᵀ) X Xᵀ v for one observation X = ``batch`` (d,) at v = ``params``.

        Written as the negation of eq. 5's direction computed in eq. 5's order
        (a compiler may fuse a·b − c·d into one rounding step, so the order
        decides the last bit), so that heavy ball reproduces eq. 5 bit for bit.
        """
        s = seq_sum(batch * params)  # Xᵀ v
        return -(s * batch - (s * s) * params)

    def metrics(self, ops: PCAOperands, params: jax.Array) -> dict[str, jax.Array]:
        err, nrm = sin2_and_norm(params)
        return {"error": err, "norm": nrm}

    def operands(self, dtype: Any = None) -> PCAOperands:
        """The arrays passed to the jitted simulator (see `PCAOperands`)."""
        dtype = dtype or jnp.result_type(float)
        data = np.zeros((1, self.d)) if self._data is None else self._data
        return PCAOperands(
            scale=jnp.asarray(np.sqrt(self.eigenvalues), dtype),
            gauss_scale=jnp.asarray(np.sqrt(2.0 * self.eigenvalues), dtype),
            data=jnp.asarray(data, dtype),
        )

    def to_eigenbasis(self, v: Any) -> np.ndarray:
        """Coordinates Q^T v of a vector given in the problem's original basis."""
        v = as_float_array("init", v, ndim=1)
        if v.shape != (self.d,):
            raise ValueError(f"init must have shape ({self.d},), got {v.shape}")
        if not np.any(v):
            raise ValueError("init must be non-zero (sin∠(v, q1) is undefined at v = 0)")
        return v if self.basis is None else self.basis.T @ v

    def from_eigenbasis(self, h: Any) -> np.ndarray:
        """Inverse of `to_eigenbasis`, for iterates of shape (..., d)."""
        h = np.asarray(h)
        return h if self.basis is None else h @ self.basis.T

    @property
    def top_eigenvector(self) -> np.ndarray:
        """q1 in the original basis."""
        return np.eye(self.d)[0] if self.basis is None else self.basis[:, 0]

    def fourth_moments(self) -> np.ndarray:
        """α²_ij = E[Y_i² Y_j²] with Y = Q^T X (Liu et al. 2018), as a (d, d) matrix.

        Exact for the synthetic models; the plug-in estimate for a data set.
        """
        lam = self.eigenvalues
        if self._data is not None:
            y2 = self._data**2
            return y2.T @ y2 / y2.shape[0]
        # i != j: E[r_i^2] E[r_j^2] λ_i λ_j = λ_i λ_j for every unit-variance model.
        alpha = np.outer(lam, lam)
        kurt = {"gaussian": 3.0, "rademacher": 1.0, "uniform": 1.8}[self.distribution]
        np.fill_diagonal(alpha, kurt * lam**2)
        return alpha

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings, enough to rebuild the problem."""
        out = {
            "problem": "streaming_pca",
            "distribution": self.distribution,
            "eigenvalues": self.eigenvalues.tolist(),
        }
        out.update(self._source)
        return out

    def __repr__(self) -> str:
        lam = np.array2string(self.eigenvalues, precision=4, threshold=8)
        return f"StreamingPCA(d={self.d}, eigenvalues={lam}, distribution={self.distribution!r})"


# --------------------------------------------------------------------- pure parts
def sample_block(
    distribution: str, ops: PCAOperands, key: jax.Array, steps: jax.Array
) -> jax.Array:
    """Observations Y_k = Q^T X_k in the eigenbasis for a block of steps of one stream.

    Args:
      distribution: the data model.
      ops: the problem's operands.
      key: (2,) uint32 data-stream key (see `asyncjax._rng`).
      steps: (b,) int32 step indices.

    Returns:
      (b, d) observations; row i depends only on (key, steps[i]).
    """
    d = ops.scale.shape[0]
    dtype = ops.scale.dtype
    scale = ops.scale[None, :]
    if distribution == "gaussian":
        # One multiply after erfinv, with √2 folded in on the host: a product of
        # constants left in the graph is fused differently for different block
        # sizes, which changed the last bit of the stream.
        return ops.gauss_scale[None, :] * _rng.erfinv_uniform(key, steps, d, dtype)
    if distribution == "rademacher":
        return scale * _rng.signs(key, steps, d, dtype)
    if distribution == "uniform":
        u = _rng.uniforms(key, steps, d, dtype)
        return scale * ((2.0 * u - 1.0) * _SQRT3)
    if distribution == "dataset":
        n = ops.data.shape[0]
        u = _rng.uniforms(key, steps, 1, dtype)[:, 0]
        return ops.data[jnp.minimum(jnp.floor(u * n).astype(jnp.int32), n - 1)]
    raise ValueError(distribution)  # pragma: no cover - guarded by the constructor


def sin2_and_norm(v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """sin²∠(v, q1) and ‖v‖ for an iterate v (d,) in the eigenbasis (q1 = e1)."""
    n2 = seq_sum(v * v)
    return 1.0 - v[0] * v[0] / n2, jnp.sqrt(n2)
