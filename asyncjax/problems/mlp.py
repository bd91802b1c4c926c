"""A small multilayer perceptron classifier on a finite data set (Liu et al. 2018, §4.2).

The laptop-scale stand-in for the deep-network experiment of Liu et al. (2018):
a fully connected network with softmax cross entropy, trained from minibatches
of rows drawn with replacement, every (momentum, delay, seed) trajectory with
its own random start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._validate import check_int
from asyncjax.datasets import Dataset
from asyncjax.problems import _data
from asyncjax.problems.base import Problem
from asyncjax.splits import Split

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,  # the tanh approximation (jax's default)
}


class MLPOperands(NamedTuple):
    """The arrays the jitted engine receives for an `MLP`."""

    X: jax.Array  # (n, d) training features
    y: jax.Array  # (n,) int32 training class indices in 0..C-1
    X_test: jax.Array  # (n_test, d) held-out features
    y_test: jax.Array  # (n_test,) int32 held-out class indices
    l2: jax.Array  # () weight-decay coefficient (weights only, not biases)
    table: Any = None  # (W, max size) int32 each worker's training rows (with a split)
    sizes: Any = None  # (W,) int32 each worker's row count (with a split)


class MLP(Problem):
    """A fully connected classifier: d → hidden[0] → … → hidden[-1] → C, softmax cross entropy.

    Parameters are a flat dict ``{"W0": (d, h0), "b0": (h0,), "W1": (h0, h1), …}``,
    layer i computing act(h W_i + b_i) (the last layer has no activation).
    Objective: mean cross entropy over the training rows plus (l2/2) Σ ‖W_i‖².
    A step's gradient is ``jax.grad`` of the same objective on ``batch`` rows
    drawn with replacement.

    Random start, drawn per seed from its init stream (`init`): biases
    0; weights N(0, s²) with Glorot scaling s² = 2/(fan_in + fan_out) for
    tanh, He scaling s² = 2/fan_in for relu and gelu; the output layer always
    uses Glorot scaling (it feeds a softmax, not a rectifier).

    With a ``split``, worker j's minibatches come from its own training rows
    only; the metrics stay those of the whole data set.

    Args:
      dataset: a `asyncjax.datasets.Dataset` (training rows, held-out
        rows for ``accuracy``, classes).
      hidden: widths of the hidden layers (may be empty: logistic regression
        with a random start).
      activation: ``"tanh"``, ``"relu"`` or ``"gelu"`` (static).
      batch: rows per minibatch, 1 <= batch <= n (static).
      l2: weight decay >= 0.
      split: an `asyncjax.splits` split of the training rows over the
        workers, by their labels (static), or None: every worker samples all rows.
    """

    kind = "mlp"
    metric_docs = {
        "error": "the full training objective itself (mean cross entropy + l2/2 sum ||W||^2; optimum unknown)",
        "accuracy": "fraction of held-out rows classified correctly (largest logit)",
    }

    def __init__(
        self,
        dataset: Dataset,
        hidden: tuple[int, ...] | list[int] = (32,),
        activation: str = "tanh",
        batch: int = 32,
        l2: float = 0.0,
        split: Split | None = None,
    ):
        if not isinstance(dataset, Dataset):
            raise ValueError(
                f"dataset must be an asyncjax.datasets.Dataset, got {type(dataset).__name__} "
                "(e.g. asyncjax.datasets.digits())"
            )
        if isinstance(hidden, (int, np.integer)):
            hidden = (int(hidden),)
        self.hidden = tuple(check_int(h, f"hidden[{i}]", minimum=1) for i, h in enumerate(hidden))
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        X = _data.check_features("X_train", dataset.X_train)
        X_test = _data.check_features("X_test", dataset.X_test)
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(
                f"X_test has {X_test.shape[1]} columns but X_train has {X.shape[1]}; they must match"
            )
        self.classes = _data.check_classes(dataset.classes)
        self.y = _data.encode_labels(
            "y_train", dataset.y_train, self.classes, X.shape[0], "X_train"
        )
        self.y_test = _data.encode_labels(
            "y_test", dataset.y_test, self.classes, X_test.shape[0], "X_test"
        )
        self.X, self.X_test = X, X_test
        self.batch = _data.check_batch(batch, X.shape[0])
        self.l2 = _data.check_l2(l2)
        self.dataset_name = str(dataset.name)
        self._sha256 = _data.fingerprint(X, self.y, X_test, self.y_test)
        self.split = split
        self.shards = _data.make_shards(split, X.shape[0], self.y)

    # ----------------------------------------------------------------- structure
    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.classes.size)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """(d, *hidden, C)."""
        return (self.d, *self.hidden, self.n_classes)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every parameter array."""
        sizes = self.layer_sizes
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            shapes[f"W{i}"] = (a, b)
            shapes[f"b{i}"] = (b,)
        return shapes

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes().values())

    def init_scales(self) -> list[float]:
        """Standard deviation of each layer's initial weights (see the class docstring)."""
        sizes = self.layer_sizes
        last = len(sizes) - 2
        scales = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            he = self.activation in ("relu", "gelu") and i < last
            scales.append(math.sqrt(2.0 / a) if he else math.sqrt(2.0 / (a + b)))
        return scales

    # ----------------------------------------------------------------- static half
    def static_key(self) -> tuple:
        return (
            "mlp",
            self.n,
            self.d,
            self.n_classes,
            int(self.X_test.shape[0]),
            self.hidden,
            self.activation,
            self.batch,
            *_data.split_key(self.split, self.shards),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "problem": self.kind,
            "data": {
                "name": self.dataset_name,
                "train_shape": [self.n, self.d],
                "test_shape": list(self.X_test.shape),
                "sha256": self._sha256,
            },
            "classes": self.classes.tolist(),
            "hidden": list(self.hidden),
            "activation": self.activation,
            "batch": self.batch,
            "l2": self.l2,
            "n_params": self.n_params,
            **_data.describe_split(self.split, self.shards),
        }

    @property
    def per_worker(self) -> bool:
        """True with a split: a worker's gradient uses its own rows only."""
        return self.split is not None

    def check_workers(self, n: int) -> None:
        """Refuses a split made for another number of workers than ``n``."""
        _data.check_workers(self.split, n)

    def default_init(self) -> None:
        """None: every seed draws its own start (`init`)."""
        return None

    def to_internal(self, init: Any) -> dict[str, np.ndarray]:
        return _data.check_param_dict(init, self.param_shapes())

    # ------------------------------------------------------------- pure functions
    def operands(self, dtype: Any = None) -> MLPOperands:
        dtype = dtype or jnp.result_type(float)
        return MLPOperands(
            X=jnp.asarray(self.X, dtype),
            y=jnp.asarray(self.y, jnp.int32),
            X_test=jnp.asarray(self.X_test, dtype),
            y_test=jnp.asarray(self.y_test, jnp.int32),
            l2=jnp.asarray(self.l2, dtype),
            **_data.shard_operands(self.shards),
        )

    def init(self, ops: MLPOperands, key: jax.Array) -> dict[str, jax.Array]:
        """A random start from the (2,) uint32 init-stream ``key``; layer i's weights
        are the normals of counter i, so each layer's draw is independent of the others'."""
        dtype = ops.X.dtype
        params: dict[str, jax.Array] = {}
        for i, ((a, b), s) in enumerate(
            zip(zip(self.layer_sizes[:-1], self.layer_sizes[1:]), self.init_scales())
        ):
            z = _rng.normals(key, jnp.full((1,), i, jnp.int32), a * b, dtype)
            params[f"W{i}"] = s * z.reshape(a, b)
            params[f"b{i}"] = jnp.zeros((b,), dtype)
        return params

    def logits(self, params: Mapping[str, jax.Array], X: jax.Array) -> jax.Array:
        """(m, C) logits of rows X (m, d)."""
        act = ACTIVATIONS[self.activation]
        h = X
        last = len(self.hidden)
        for i in range(last + 1):
            h = h @ params[f"W{i}"] + params[f"b{i}"][None, :]
            if i < last:
                h = act(h)
        return h

    def loss(
        self, ops: MLPOperands, params: Mapping[str, jax.Array], rows: jax.Array | None = None
    ) -> jax.Array:
        """The objective on training rows ``rows`` (m,) int32, or on all of them."""
        X = ops.X if rows is None else _data.gather(ops.X, rows)
        y = ops.y if rows is None else _data.gather(ops.y, rows)
        ce = _data.cross_entropy(self.logits(params, X), y)
        decay = sum(jnp.sum(params[f"W{i}"] ** 2) for i in range(len(self.hidden) + 1))
        return ce + (0.5 * ops.l2) * decay

    def sample(self, ops: MLPOperands, key: jax.Array, ks: jax.Array) -> jax.Array:
        """(b, batch) int32 training-row indices for steps ``ks`` (b,); with a split,
        (b, batch) float32 uniforms that `worker_grad` maps to the worker's rows."""
        return _data.draw_rows(key, ks, self.batch, ops.X.shape[0], self.per_worker)

    def grad(
        self,
        ops: MLPOperands,
        params: Mapping[str, jax.Array],
        batch: jax.Array,
        hp: Mapping[str, Any],
    ) -> dict[str, jax.Array]:
        """Gradient of the objective on rows ``batch`` (m,) int32 (a dict shaped like ``params``)."""
        return jax.grad(lambda p: self.loss(ops, p, batch))(params)

    def worker_grad(
        self,
        ops: MLPOperands,
        params: Mapping[str, jax.Array],
        batch: jax.Array,
        hp: Mapping[str, Any],
        worker: jax.Array,
    ) -> dict[str, jax.Array]:
        """Gradient of worker ``worker``'s loss for uniforms ``batch`` (m,) float32."""
        if not self.per_worker:
            return self.grad(ops, params, batch, hp)
        return self.grad(ops, params, _data.shard_rows(ops.table, ops.sizes, batch, worker), hp)

    def metrics(self, ops: MLPOperands, params: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return {
            "error": self.loss(ops, params),
            "accuracy": _data.accuracy(self.logits(params, ops.X_test), ops.y_test),
        }

    def __repr__(self) -> str:
        return (
            f"MLP({self.dataset_name}: {' -> '.join(map(str, self.layer_sizes))}, "
            f"activation={self.activation!r}, batch={self.batch}, l2={self.l2!r}, params={self.n_params}"
            + (f", split={self.split!r})" if self.split is not None else ")")
        )
