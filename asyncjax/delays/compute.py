"""Compute times of the worker clock: the law of the noise, and per-worker rules.

A job of worker i takes ``(base_i + scale_i · X) / speed_i`` units of virtual
time, X drawn from the clock's law (`law_values`); ``base``, ``scale``,
``speed`` and the time-outs are per-worker values given as a number, a list,
or a rule in the worker index ``i = 0, 1, …`` (`per_worker`): the Ringmaster
paper's ``1 + √i + √(i+1)·|z|`` is ``base="1 + sqrt(i)"``,
``noise_scale="sqrt(i + 1)"`` and the ``"halfnormal"`` law.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._validate import as_float_array, py

COMPUTE_LAWS = ("constant", "exponential", "lognormal", "gamma", "halfnormal", "pareto")

LAW_DOCS = {
    "constant": "X = 1",
    "exponential": "X ~ Exp(1), mean 1",
    "lognormal": "X = exp(σZ − σ²/2), mean 1 (σ = shape)",
    "gamma": "X ~ Gamma(k, 1/k), mean 1 (k = shape)",
    "halfnormal": "X = |Z|, Z ~ N(0, 1) (mean √(2/π))",
    "pareto": "X = U^(−1/α) − 1, P(X > x) = (1 + x)^(−α): a heavy (Lomax) tail (α = shape)",
}

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_FUNCS = {"sqrt": np.sqrt, "log": np.log, "exp": np.exp, "abs": np.abs}


def _evaluate(node: ast.AST, i: np.ndarray, text: str) -> np.ndarray:
    """One node of a worker rule: numbers, ``i``, + − * / **, and sqrt, log, exp, abs."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, i, text)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return np.full(i.shape, float(node.value))
    if isinstance(node, ast.Name) and node.id == "i":
        return i
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left, i, text), _evaluate(node.right, i, text))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _evaluate(node.operand, i, text)
        return -v if isinstance(node.op, ast.USub) else v
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and len(node.args) == 1
        and not node.keywords
    ):
        return _FUNCS[node.func.id](_evaluate(node.args[0], i, text))
    raise ValueError(
        f"cannot read the worker rule {text!r}: use numbers, the worker index i, + - * / ** "
        f"and {', '.join(_FUNCS)} (e.g. '1 + sqrt(i)')"
    )


def per_worker(value: Any, slots: int, name: str) -> np.ndarray:
    """(slots,) float64 values of a per-worker setting for workers i = 0 … slots − 1.

    Args:
      value: a number (every worker), a list (worker i takes entry i; at least
        ``slots`` entries) or a rule in the worker index, e.g. ``"sqrt(i + 1)"``.
      slots: the number of workers.
      name: the setting's name, for messages.
    """
    if isinstance(value, str):
        try:
            tree = ast.parse(value.strip(), mode="eval")
        except SyntaxError:
            raise ValueError(f"{name}: cannot read the worker rule {value!r}") from None
        with np.errstate(all="ignore"):
            out = _evaluate(tree, np.arange(slots, dtype=np.float64), value)
    else:
        arr = as_float_array(name, value)
        if arr.ndim == 0:
            out = np.full(slots, float(arr))
        elif arr.ndim == 1:
            if arr.size < slots:
                raise ValueError(f"{name} gives {arr.size} workers but the run has {slots}")
            out = arr[:slots].copy()
        else:
            raise ValueError(f"{name} must be a number, a list or a rule in i; got {value!r}")
    return np.asarray(out, np.float64)


def normalise(value: Any, name: str, *, allow_inf: bool = False, positive: bool = False) -> Any:
    """A per-worker setting in hashable form (a str rule, a float or a tuple), checked >= 0.

    A rule is checked on its first `PROBE` workers.

    Args:
      allow_inf: inf passes (a time-out that never binds).
      positive: 0 is refused too.
    """
    if value is None:
        return None
    probe = per_worker(value, probe_size(value), name)
    low = probe <= 0 if positive else probe < 0
    bad = np.flatnonzero(low | np.isnan(probe) | (np.isinf(probe) & (not allow_inf)))
    if bad.size:
        j = int(bad[0])
        raise ValueError(
            f"{name} must be {'> 0' if positive else '>= 0'}{'' if allow_inf else ' and finite'} "
            f"for every worker; worker {j} gets {py(probe[j])!r}"
        )
    if isinstance(value, str):
        return value.strip()
    arr = np.asarray(value, np.float64)
    return float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr)


PROBE = 4096  # workers a rule in i is checked on when it is given


def probe_size(value: Any) -> int:
    """The workers a per-worker setting can be checked on: its length, or `PROBE` for a rule."""
    if value is None or isinstance(value, str):
        return PROBE
    arr = np.asarray(value)
    return PROBE if arr.ndim == 0 else int(arr.shape[0])


def law_words(law: str, dtype: Any) -> int:
    """Random words one value of the law takes (gamma: a Threefry key, 2; else one float's)."""
    return 2 if law == "gamma" else _rng.words_per_value(dtype)


def law_of_words(law: str, shape: float, w: jax.Array, dtype: Any) -> jax.Array:
    """(..., n) values X of the law from (..., n · `law_words`) random words."""
    if law == "constant":
        return jnp.ones(w.shape[:-1] + (w.shape[-1] // law_words(law, dtype),), dtype)
    if law == "exponential":
        return -jnp.log1p(-_rng.uniforms_of(w, dtype))
    if law == "lognormal":
        return jnp.exp(shape * _rng.normals_of(w, dtype) - 0.5 * shape**2)
    if law == "halfnormal":
        return jnp.abs(_rng.normals_of(w, dtype))
    if law == "pareto":
        return jnp.exp(-jnp.log1p(-_rng.uniforms_of(w, dtype)) / shape) - 1
    if law == "gamma":  # gamma(k, 1/k): a Threefry key per value, then JAX's exact gamma sampler
        pairs = w.reshape(w.shape[:-1] + (w.shape[-1] // 2, 2))
        keys = jax.random.wrap_key_data(pairs, impl="threefry2x32")
        draw = lambda kk: jax.random.gamma(kk, shape, dtype=dtype)
        flat = jax.vmap(draw)(keys.reshape(-1))
        return flat.reshape(keys.shape) / shape
    raise ValueError(f"unknown compute-time law {law!r}; choose one of {', '.join(COMPUTE_LAWS)}")


def law_values(law: str, shape: float, key: jax.Array, ks: jax.Array, n: int, dtype: Any):
    """(b, n) values X of the law: value j of counter k is a pure function of (key, k, j).

    Value 0 of a counter is the same whatever ``n`` (the streams are counter-based).
    """
    if law == "constant":
        return jnp.ones(ks.shape + (n,), dtype)
    return law_of_words(law, shape, _rng.words(key, ks, n * law_words(law, dtype)), dtype)


def law_pairs_at(
    law: str, shape: float, key: jax.Array, counters: jax.Array, pairs: jax.Array, dtype: Any
) -> jax.Array:
    """(2, ...) values 2p and 2p + 1 of counter k of the law, at explicit (k, p) places.

    Entry for entry the values `law_values` gives there, for draws whose
    counters differ from entry to entry. In float32 both come from one
    Threefry hash (a value is one word), so drawing values two by two costs
    half as much as one by one.

    Args:
      counters: (...) int counters k.
      pairs: (...) int pair indices p, the shape of ``counters``.

    Returns:
      (2, ...): values 2p, then values 2p + 1.
    """
    if law == "constant":
        return jnp.ones((2,) + jnp.shape(counters), dtype)
    if law_words(law, dtype) == 1:  # word m is value m: both halves of one hash
        w = _rng.pairs_at(key, counters, pairs)[..., None]
    else:  # value v takes words 2v, 2v + 1: a whole hash each
        w = jnp.stack(
            [jnp.moveaxis(_rng.pairs_at(key, counters, 2 * pairs + t), 0, -1) for t in range(2)]
        )
    return law_of_words(law, shape, w, dtype)[..., 0]
