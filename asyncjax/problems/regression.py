"""Regression on a finite data set: least squares and multinomial logistic regression.

Each step draws a minibatch of ``batch`` rows uniformly with replacement from
the trajectory's data stream (`asyncjax._rng.indices`); `sample`
returns their row indices and the gradient gathers the rows itself, so the
data set is passed to the engine once, as an operand, and never copied per step.

With ``split=`` (`asyncjax.splits`) each worker holds its own rows: `sample`
returns uniforms instead and `worker_grad` maps them to rows of the arriving
worker's shard (`asyncjax.problems._data.shard_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax._validate import as_float_array
from asyncjax.datasets import Dataset
from asyncjax.datasets import split as held_out_split
from asyncjax.problems import _data
from asyncjax.problems.base import Problem
from asyncjax.splits import Split


# ======================================================================= least squares
class LeastSquaresOperands(NamedTuple):
    """The arrays the jitted engine receives for `LeastSquares`."""

    X: jax.Array  # (n, d) features
    y: jax.Array  # (n,) targets
    w_star: jax.Array  # (d,) a minimiser of f (the minimum-norm one when l2 = 0)
    f_star: jax.Array  # () f(w_star)
    l2: jax.Array  # () ridge coefficient
    table: Any = None  # (W, max size) int32 each worker's rows (with a split)
    sizes: Any = None  # (W,) int32 each worker's row count (with a split)


class LeastSquares(Problem):
    """Linear least squares, f(w) = (1/2n) ‖Xw − y‖² + (l2/2) ‖w‖², from minibatches.

    The stochastic gradient of a step is that of the same objective on
    ``batch`` rows drawn with replacement, X_Bᵀ(X_B w − y_B)/m + l2 w, an
    unbiased estimate of ∇f. The optimum w* is computed once on the host in
    float64 (``numpy.linalg.lstsq`` of the ridge-augmented system), so the
    error f(w) − f* is known exactly. Every trajectory starts at w = 0.

    With a ``split``, worker j's minibatches come from its own rows only (its
    local loss f_j is the same objective on its shard); the metrics stay those
    of the whole data set. With unequal shards the workers' mean loss
    (1/W) Σ f_j weights rows unequally, so its minimiser is not w*.

    Build one with `from_data` (arrays) or `from_dataset` (a labelled
    `asyncjax.datasets.Dataset`, regressing on the labels as numbers).

    Args:
      X: (n, d) finite features.
      y: (n,) finite targets.
      batch: rows per minibatch, 1 <= batch <= n (static: it fixes shapes).
      l2: ridge coefficient >= 0.
      split: an `asyncjax.splits` split of the rows over the workers (static),
        or None: every worker samples all rows.
      labels: (n,) class labels of the rows, used only by a label split
        (``by_label``, ``dirichlet``).
    """

    kind = "least_squares"
    metric_docs = {
        "error": "f(w) - f*, computed as 1/2 (w - w*)^T H (w - w*) with H the Hessian (no cancellation)",
        "loss": "full-data objective f(w) = ||Xw - y||^2 / (2n) + l2/2 ||w||^2",
        "grad_norm": "Euclidean norm of the full-data gradient",
    }

    def __init__(
        self,
        X: Any,
        y: Any,
        batch: int = 32,
        l2: float = 0.0,
        split: Split | None = None,
        labels: Any = None,
    ):
        X = _data.check_features("X", X)
        y = _data.check_targets("y", y, X.shape[0], "X")
        self.batch = _data.check_batch(batch, X.shape[0])
        self.l2 = _data.check_l2(l2)
        self.X, self.y = X, y
        self.split = split
        self.shards = _data.make_shards(split, X.shape[0], labels)
        n, d = X.shape
        # min ‖Xw − y‖²/n + l2‖w‖²  ==  min ‖A w − c‖² with A = [X/√n; √l2 I], c = [y/√n; 0].
        A = (
            np.concatenate([X / np.sqrt(n), np.sqrt(self.l2) * np.eye(d)])
            if self.l2 > 0
            else X / np.sqrt(n)
        )
        c = np.concatenate([y / np.sqrt(n), np.zeros(d)]) if self.l2 > 0 else y / np.sqrt(n)
        self.w_star = np.linalg.lstsq(A, c, rcond=None)[0]
        r = X @ self.w_star - y
        self.f_star = float(0.5 * np.mean(r * r) + 0.5 * self.l2 * self.w_star @ self.w_star)
        self._sha256 = _data.fingerprint(X, y)
        self.default_norm_bound = max(
            Problem.default_norm_bound, 100.0 * float(np.linalg.norm(self.w_star))
        )

    @classmethod
    def from_data(
        cls,
        X: Any,
        y: Any,
        batch: int = 32,
        l2: float = 0.0,
        split: Split | None = None,
        labels: Any = None,
    ) -> LeastSquares:
        """Least squares on rows X (n, d) and targets y (n,); see the class docstring."""
        return cls(X, y, batch=batch, l2=l2, split=split, labels=labels)

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, *, batch: int = 32, l2: float = 0.0, split: Split | None = None
    ) -> LeastSquares:
        """Least squares on a labelled `Dataset`'s training rows, targets its labels as numbers.

        The labels also feed a label split; the held-out rows are not used.
        """
        labels = np.asarray(dataset.y_train)
        y = _data.check_targets("y_train (the labels as targets)", labels, len(labels), "X_train")
        return cls(dataset.X_train, y, batch=batch, l2=l2, split=split, labels=labels)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        """(d,) eigenvalues of H = XᵀX/n + l2 I, ascending (the modes a of the stability analysis)."""
        return np.linalg.eigvalsh(self.X.T @ self.X / self.n) + self.l2

    # ----------------------------------------------------------------- static half
    def static_key(self) -> tuple:
        return (
            "least_squares",
            self.n,
            self.d,
            self.batch,
            *_data.split_key(self.split, self.shards),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "problem": self.kind,
            "data": {"shape": [self.n, self.d], "sha256": self._sha256},
            "batch": self.batch,
            "l2": self.l2,
            "f_star": self.f_star,
            **_data.describe_split(self.split, self.shards),
        }

    @property
    def per_worker(self) -> bool:
        """True with a split: a worker's gradient uses its own rows only."""
        return self.split is not None

    def check_workers(self, n: int) -> None:
        """Refuses a split made for another number of workers than ``n``."""
        _data.check_workers(self.split, n)

    def default_init(self) -> np.ndarray:
        """w = 0 (d,)."""
        return np.zeros(self.d)

    def to_internal(self, init: Any) -> np.ndarray:
        w = as_float_array("init", init, ndim=1)
        if w.shape != (self.d,):
            raise ValueError(f"init must have shape ({self.d},), got {w.shape}")
        return w

    # ------------------------------------------------------------- pure functions
    def operands(self, dtype: Any = None) -> LeastSquaresOperands:
        dtype = dtype or jnp.result_type(float)
        return LeastSquaresOperands(
            X=jnp.asarray(self.X, dtype),
            y=jnp.asarray(self.y, dtype),
            w_star=jnp.asarray(self.w_star, dtype),
            f_star=jnp.asarray(self.f_star, dtype),
            l2=jnp.asarray(self.l2, dtype),
            **_data.shard_operands(self.shards),
        )

    def sample(self, ops: LeastSquaresOperands, key: jax.Array, ks: jax.Array) -> jax.Array:
        """(b, batch) int32 row indices for steps ``ks`` (b,); with a split, (b, batch)
        float32 uniforms that `worker_grad` maps to the worker's rows."""
        return _data.draw_rows(key, ks, self.batch, ops.X.shape[0], self.per_worker)

    def grad(
        self, ops: LeastSquaresOperands, params: jax.Array, batch: jax.Array, hp: Mapping[str, Any]
    ) -> jax.Array:
        """Minibatch gradient at w = ``params`` (d,) for rows ``batch`` (m,) int32."""
        Xb = _data.gather(ops.X, batch)
        r = Xb @ params - _data.gather(ops.y, batch)
        return Xb.T @ r / batch.shape[0] + ops.l2 * params

    def worker_grad(
        self,
        ops: LeastSquaresOperands,
        params: jax.Array,
        batch: jax.Array,
        hp: Mapping[str, Any],
        worker: jax.Array,
    ) -> jax.Array:
        """Minibatch gradient of worker ``worker``'s loss for uniforms ``batch`` (m,)."""
        if not self.per_worker:
            return self.grad(ops, params, batch, hp)
        rows = _data.shard_rows(ops.table, ops.sizes, batch, worker)
        Xb = _data.gather(ops.X, rows)
        r = Xb @ params - _data.gather(ops.y, rows)
        # r @ Xb, not grad's Xb.T @ r: with rows that differ per point and seed, XLA (CPU) wrote
        # Xb transposed to memory at every step, 1.5x the cost of an arrival (measured)
        return (r @ Xb) / rows.shape[0] + ops.l2 * params

    def metrics(self, ops: LeastSquaresOperands, params: jax.Array) -> dict[str, jax.Array]:
        n = ops.X.shape[0]
        delta = params - ops.w_star
        Xd = ops.X @ delta
        error = 0.5 * jnp.mean(Xd * Xd) + (0.5 * ops.l2) * jnp.sum(delta * delta)
        g = ops.X.T @ Xd / n + ops.l2 * delta  # ∇f(w) = H (w − w*)
        return {"error": error, "loss": ops.f_star + error, "grad_norm": jnp.sqrt(jnp.sum(g * g))}

    def __repr__(self) -> str:
        shards = f", split={self.split!r}" if self.split is not None else ""
        return f"LeastSquares(n={self.n}, d={self.d}, batch={self.batch}, l2={self.l2!r}{shards})"


# ================================================================ logistic regression
class LogisticOperands(NamedTuple):
    """The arrays the jitted engine receives for `Logistic`."""

    X: jax.Array  # (n, d) training features
    y: jax.Array  # (n,) int32 training class indices in 0..C-1
    X_test: jax.Array  # (n_test, d) held-out features
    y_test: jax.Array  # (n_test,) int32 held-out class indices
    l2: jax.Array  # () ridge coefficient on W
    table: Any = None  # (W, max size) int32 each worker's training rows (with a split)
    sizes: Any = None  # (W,) int32 each worker's row count (with a split)


def _logits(params: Mapping[str, jax.Array], X: jax.Array) -> jax.Array:
    return X @ params["W"] + params["b"][None, :]


class Logistic(Problem):
    """Multinomial logistic regression, minimised by minibatch SGD.

    Objective: the mean softmax cross entropy of the logits XW + b over the
    training rows, plus (l2/2) ‖W‖² (the bias is not penalised). Parameters
    are ``{"W": (d, C), "b": (C,)}``, starting at zero. A step's gradient is
    the same objective's on ``batch`` training rows drawn with replacement
    (in closed form: X_Bᵀ(softmax − onehot)/m + l2 W).

    With a ``split``, worker j's minibatches come from its own training rows
    only; the metrics stay those of the whole data set.

    Build one with `from_data` (arrays; held-out rows split off or given)
    or `from_dataset` (a `asyncjax.datasets.Dataset`).

    Args:
      X, y: (n, d) training features and (n,) labels.
      X_test, y_test: (n_test, d) held-out features and labels.
      classes: (C,) the labels, C >= 2; class index c is ``classes[c]``.
        None: the sorted distinct labels of both parts.
      batch: rows per minibatch, 1 <= batch <= n (static).
      l2: ridge coefficient >= 0.
      split: an `asyncjax.splits` split of the training rows over the
        workers, by their labels (static), or None: every worker samples all rows.
    """

    kind = "logistic"
    metric_docs = {
        "error": "the full training objective itself (mean cross entropy + l2/2 ||W||^2; its optimum is not known in closed form)",
        "accuracy": "fraction of held-out rows classified correctly (largest logit)",
    }

    def __init__(
        self,
        X: Any,
        y: Any,
        X_test: Any,
        y_test: Any,
        *,
        classes: Any = None,
        batch: int = 32,
        l2: float = 0.0,
        source: Mapping[str, Any] | None = None,
        split: Split | None = None,
    ):
        X = _data.check_features("X", X)
        X_test = _data.check_features("X_test", X_test)
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(
                f"X_test has {X_test.shape[1]} columns but X has {X.shape[1]}; they must match"
            )
        if classes is None:
            classes = np.unique(np.concatenate([np.asarray(y).ravel(), np.asarray(y_test).ravel()]))
        self.classes = _data.check_classes(classes)
        self.y = _data.encode_labels("y", y, self.classes, X.shape[0], "X")
        self.y_test = _data.encode_labels("y_test", y_test, self.classes, X_test.shape[0], "X_test")
        self.X, self.X_test = X, X_test
        self.batch = _data.check_batch(batch, X.shape[0])
        self.l2 = _data.check_l2(l2)
        self._source = dict(source or {})
        self._sha256 = _data.fingerprint(X, self.y, X_test, self.y_test)
        self.split = split
        self.shards = _data.make_shards(split, X.shape[0], self.y)

    @classmethod
    def from_data(
        cls,
        X: Any,
        y: Any = None,
        *,
        classes: Any = None,
        batch: int = 32,
        l2: float = 0.0,
        test_fraction: float = 0.2,
        test: tuple[Any, Any] | None = None,
        split_seed: int = 0,
        split: Split | None = None,
    ) -> Logistic:
        """Logistic regression on labelled rows, with a held-out part for ``accuracy``.

        Args:
          X: (n, d) features (or a `Dataset`, then
            ``y`` and the split arguments are not used).
          y: (n,) labels.
          classes: (C,) labels, or None to infer them.
          batch: rows per minibatch (static).
          l2: ridge coefficient >= 0.
          test_fraction: when ``test`` is None, this fraction of the rows
            (stratified by class, drawn with ``split_seed``) is held out.
          test: an explicit held-out split (X_test, y_test); then every row of
            X is used for training.
          split_seed: seed of the held-out draw.
          split: the training rows' split over the workers (`asyncjax.splits`).
        """
        if isinstance(X, Dataset):
            return cls.from_dataset(X, batch=batch, l2=l2, split=split)
        if y is None:
            raise ValueError("from_data needs labels y (or pass a Dataset)")
        if test is not None:
            if len(test) != 2:
                raise ValueError("test must be a pair (X_test, y_test)")
            return cls(
                X,
                y,
                test[0],
                test[1],
                classes=classes,
                batch=batch,
                l2=l2,
                source={"split": "given"},
                split=split,
            )
        X = _data.check_features("X", X)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
        train, held = held_out_split(y, test_fraction, split_seed)
        source = {
            "split": "fraction",
            "test_fraction": float(test_fraction),
            "split_seed": int(split_seed),
            "sha256_before_split": _data.fingerprint(X, y),
        }
        return cls(
            X[train],
            y[train],
            X[held],
            y[held],
            classes=classes,
            batch=batch,
            l2=l2,
            source=source,
            split=split,
        )

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, *, batch: int = 32, l2: float = 0.0, split: Split | None = None
    ) -> Logistic:
        """Logistic regression on a `Dataset` (its held-out part and classes); ``split``
        divides its training rows over the workers."""
        return cls(
            dataset.X_train,
            dataset.y_train,
            dataset.X_test,
            dataset.y_test,
            classes=dataset.classes,
            batch=batch,
            l2=l2,
            source={"dataset": dataset.name},
            split=split,
        )

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.classes.size)

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.d, self.n_classes), "b": (self.n_classes,)}

    # ----------------------------------------------------------------- static half
    def static_key(self) -> tuple:
        return (
            "logistic",
            self.n,
            self.d,
            self.n_classes,
            int(self.X_test.shape[0]),
            self.batch,
            *_data.split_key(self.split, self.shards),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "problem": self.kind,
            "data": {
                "train_shape": [self.n, self.d],
                "test_shape": list(self.X_test.shape),
                "sha256": self._sha256,
                **self._source,
            },
            "classes": self.classes.tolist(),
            "batch": self.batch,
            "l2": self.l2,
            **_data.describe_split(self.split, self.shards),
        }

    @property
    def per_worker(self) -> bool:
        """True with a split: a worker's gradient uses its own rows only."""
        return self.split is not None

    def check_workers(self, n: int) -> None:
        """Refuses a split made for another number of workers than ``n``."""
        _data.check_workers(self.split, n)

    def default_init(self) -> dict[str, np.ndarray]:
        """W = 0 (d, C), b = 0 (C,)."""
        return {name: np.zeros(shape) for name, shape in self._shapes().items()}

    def to_internal(self, init: Any) -> dict[str, np.ndarray]:
        return _data.check_param_dict(init, self._shapes())

    # ------------------------------------------------------------- pure functions
    def operands(self, dtype: Any = None) -> LogisticOperands:
        dtype = dtype or jnp.result_type(float)
        return LogisticOperands(
            X=jnp.asarray(self.X, dtype),
            y=jnp.asarray(self.y, jnp.int32),
            X_test=jnp.asarray(self.X_test, dtype),
            y_test=jnp.asarray(self.y_test, jnp.int32),
            l2=jnp.asarray(self.l2, dtype),
            **_data.shard_operands(self.shards),
        )

    def sample(self, ops: LogisticOperands, key: jax.Array, ks: jax.Array) -> jax.Array:
        """(b, batch) int32 training-row indices for steps ``ks`` (b,); with a split,
        (b, batch) float32 uniforms that `worker_grad` maps to the worker's rows."""
        return _data.draw_rows(key, ks, self.batch, ops.X.shape[0], self.per_worker)

    def grad(
        self,
        ops: LogisticOperands,
        params: Mapping[str, jax.Array],
        batch: jax.Array,
        hp: Mapping[str, Any],
    ) -> dict[str, jax.Array]:
        """Minibatch gradient for rows ``batch`` (m,) int32: {"W": (d, C), "b": (C,)}."""
        Xb = _data.gather(ops.X, batch)
        logits = _logits(params, Xb)
        onehot = jax.nn.one_hot(_data.gather(ops.y, batch), logits.shape[-1], dtype=logits.dtype)
        G = (jax.nn.softmax(logits, axis=-1) - onehot) / batch.shape[0]  # (m, C)
        return {"W": Xb.T @ G + ops.l2 * params["W"], "b": jnp.sum(G, axis=0)}

    def worker_grad(
        self,
        ops: LogisticOperands,
        params: Mapping[str, jax.Array],
        batch: jax.Array,
        hp: Mapping[str, Any],
        worker: jax.Array,
    ) -> dict[str, jax.Array]:
        """Minibatch gradient of worker ``worker``'s loss for uniforms ``batch`` (m,)."""
        if not self.per_worker:
            return self.grad(ops, params, batch, hp)
        return self.grad(ops, params, _data.shard_rows(ops.table, ops.sizes, batch, worker), hp)

    def loss(
        self, ops: LogisticOperands, params: Mapping[str, jax.Array], rows: jax.Array | None = None
    ) -> jax.Array:
        """The objective on training rows ``rows`` (m,) int32, or on all of them."""
        X = ops.X if rows is None else _data.gather(ops.X, rows)
        y = ops.y if rows is None else _data.gather(ops.y, rows)
        W = params["W"]
        return _data.cross_entropy(_logits(params, X), y) + (0.5 * ops.l2) * jnp.sum(W * W)

    def metrics(
        self, ops: LogisticOperands, params: Mapping[str, jax.Array]
    ) -> dict[str, jax.Array]:
        return {
            "error": self.loss(ops, params),
            "accuracy": _data.accuracy(_logits(params, ops.X_test), ops.y_test),
        }

    def __repr__(self) -> str:
        return (
            f"Logistic(n={self.n}, d={self.d}, classes={self.n_classes}, n_test={self.X_test.shape[0]}, "
            f"batch={self.batch}, l2={self.l2!r}"
            + (f", split={self.split!r})" if self.split is not None else ")")
        )
