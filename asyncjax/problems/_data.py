"""Shared pieces of the finite-data problems: input checks, fingerprints, losses, shards.

Host-side helpers validate and fingerprint data sets before anything is traced;
the traced helpers (`cross_entropy`, `accuracy`, `gather`, `draw_rows`,
`shard_rows`) are written for one trajectory, like every pure function of a problem.

Per-worker data (a `asyncjax.splits.Split`): without a split a step's data is
``batch`` row indices drawn uniformly from all rows; with one it is ``batch``
uniforms u on [0, 1) from the same random words, and worker j's rows are
``table[j, floor(u · size_j)]`` (`shard_rows`). The floor and clamp are those of
`asyncjax.rng.indices`, so one worker holding every row draws today's rows exactly.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._validate import as_float_array, check_int, py
from asyncjax.splits import Shards, Split


def check_features(name: str, X: Any) -> np.ndarray:
    """A finite (n, d) float64 matrix with n, d >= 1; a NaN is reported with its (row, column)."""
    X = as_float_array(name, X, ndim=2)
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} needs at least one row and one column, got shape {X.shape}")
    return X


def check_targets(name: str, y: Any, n: int, x_name: str) -> np.ndarray:
    """Finite real targets, one per row of the matching feature matrix."""
    y = as_float_array(name, y, ndim=1)
    _check_length(name, y, n, x_name)
    return y


def _check_length(name: str, y: np.ndarray, n: int, x_name: str) -> None:
    if y.shape[0] != n:
        raise ValueError(
            f"{name} has {y.shape[0]} entries but {x_name} has {n} rows; they must match"
        )


def check_batch(batch: Any, n: int) -> int:
    """A minibatch size in 1..n (rows are drawn with replacement, but a batch larger
    than the data set is almost certainly a mistake)."""
    batch = check_int(batch, "batch", minimum=1)
    if batch > n:
        raise ValueError(f"batch={batch} is larger than the data set ({n} rows)")
    return batch


def check_l2(l2: Any) -> float:
    """A finite, non-negative ridge coefficient."""
    value = float(as_float_array("l2", l2, ndim=0))
    if value < 0:
        raise ValueError(f"l2 must be >= 0, got {py(l2)!r}")
    return value


def encode_labels(name: str, y: Any, classes: np.ndarray, n: int, x_name: str) -> np.ndarray:
    """Class indices (int32) of labels ``y``; labels outside ``classes`` are named."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
    _check_length(name, y, n, x_name)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"{name} contains a non-finite label ({py(y[i])!r} at index {i})")
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    pos = np.clip(np.searchsorted(sorted_classes, y), 0, classes.size - 1)
    bad = sorted_classes[pos] != y
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {py(y[i])!r} is not one of the classes {classes.tolist()}")
    return order[pos].astype(np.int32)


def check_classes(classes: Any) -> np.ndarray:
    """At least two distinct class labels, in the order given."""
    classes = np.asarray(classes)
    if classes.ndim != 1:
        raise ValueError(f"classes must be 1-D, got shape {classes.shape}")
    if classes.size < 2:
        raise ValueError(f"need at least 2 classes, got {classes.tolist()}")
    uniq, counts = np.unique(classes, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"classes must be distinct; {py(uniq[counts > 1][0])!r} appears more than once"
        )
    return classes


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 of the arrays' shapes, dtypes and bytes (identifies a data set without its values)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# A split's row table is padded to every row of the data set while it stays this small, so
# that every split of the same data over the same workers has one shape and shares compiled
# code (the table is an operand); a larger table keeps the largest shard's width.
SHARED_TABLE_BYTES = 1 << 26


def make_shards(split: Any, n: int, labels: Any = None) -> Shards | None:
    """The per-worker row tables of ``split`` over ``n`` rows, or None without a split.

    The table has ``n`` columns (padded with each worker's own first row, which
    no draw reaches) while that takes at most `SHARED_TABLE_BYTES`.
    """
    if split is None:
        return None
    if not isinstance(split, Split):
        raise ValueError(
            f"split must be made by asyncjax.splits (iid, by_label, dirichlet) or None, "
            f"got {split!r}"
        )
    shards = split.shards(n, labels)
    table = shards.table
    if table.shape[1] < n and table.shape[0] * n * table.itemsize <= SHARED_TABLE_BYTES:
        pad = np.repeat(table[:, :1], n - table.shape[1], axis=1)
        shards = shards._replace(table=np.concatenate([table, pad], axis=1))
    return shards


def split_key(split: Split | None, shards: Shards | None) -> tuple:
    """The split's part of a static key: () without one, so keys are today's.

    Only the table's shape: the rows are operands, so two splits of the same
    shape (any two of the same data over as many workers) share compiled code.
    """
    return () if split is None else ("split",) + tuple(int(v) for v in shards.table.shape)


def describe_split(split: Split | None, shards: Shards | None) -> dict[str, Any]:
    """The split's settings and shard sizes for a problem's `describe` ({} without one)."""
    if split is None:
        return {}
    return {"split": {**split.describe(), "sizes": shards.sizes.tolist()}}


def shard_operands(shards: Shards | None) -> dict[str, Any]:
    """The table (W, max size) and sizes (W,) as int32 device arrays (None without a split)."""
    if shards is None:
        return {"table": None, "sizes": None}
    return {"table": jnp.asarray(shards.table), "sizes": jnp.asarray(shards.sizes)}


def check_workers(split: Split | None, n: Any) -> None:
    """Refuses a run with another number of workers than the split was made for."""
    if split is not None:
        split.check_workers(n)


# ------------------------------------------------------------------ traced helpers
def draw_rows(key: jax.Array, ks: jax.Array, batch: int, n: int, per_worker: bool) -> jax.Array:
    """A block of steps' data: (b, batch) int32 rows of n, or (b, batch) float32 uniforms
    that `shard_rows` maps to a worker's rows (``per_worker``)."""
    if per_worker:
        return _rng.uniforms(key, ks, batch, jnp.float32)
    return _rng.indices(key, ks, batch, n)


def shard_rows(table: jax.Array, sizes: jax.Array, u: jax.Array, worker: jax.Array) -> jax.Array:
    """Rows (m,) int32 of worker ``worker``'s shard for uniforms ``u`` (m,) float32.

    Row i is ``table[worker, floor(u_i · size)]``, uniform over the shard's
    ``size`` rows; the clamp guards u · size rounding up to size in float32.
    """
    size = sizes[worker]
    i = jnp.minimum(jnp.floor(u * size.astype(u.dtype)).astype(jnp.int32), size - 1)
    return table.at[worker, i].get(mode="promise_in_bounds")  # m entries, not the whole row


def gather(X: jax.Array, rows: jax.Array) -> jax.Array:
    """Rows ``rows`` (m,) int32 of X (n, ...) as an (m, ...) array (indices are in range)."""
    return X.at[rows].get(mode="promise_in_bounds")


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross entropy of (m, C) logits against (m,) int32 class indices."""
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, labels[:, None], axis=-1, mode="promise_in_bounds")[:, 0]
    return jnp.mean(lse - picked)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of rows whose largest logit is the true class (ties go to the lower index)."""
    hit = jnp.argmax(logits, axis=-1).astype(jnp.int32) == labels
    return jnp.mean(hit.astype(logits.dtype))


def check_param_dict(init: Any, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Validates a user-given parameter dict: exactly the expected keys, shapes, finite values."""
    if not isinstance(init, dict):
        raise ValueError(
            f"init must be a dict with keys {sorted(shapes)}, got {type(init).__name__}"
        )
    if set(init) != set(shapes):
        raise ValueError(
            f"init must have exactly the keys {sorted(shapes)}, got {sorted(map(str, init))}"
        )
    out = {}
    for name, shape in shapes.items():
        arr = as_float_array(f"init[{name!r}]", init[name], ndim=len(shape))
        if arr.shape != shape:
            raise ValueError(f"init[{name!r}] must have shape {shape}, got {arr.shape}")
        out[name] = arr
    return out
