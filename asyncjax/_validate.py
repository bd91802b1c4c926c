"""Input checks that run in Python, before anything is traced or compiled.

Every public entry point validates its arguments here so that a bad value fails
fast with a message that names it, instead of surfacing later as a shape error
deep inside XLA or as silently diverging trajectories.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import numpy as np


def py(value: Any) -> Any:
    """A NumPy scalar as the plain Python number (for readable messages)."""
    return value.item() if isinstance(value, np.generic) else value


def as_written(value: Any) -> Any:
    """`py`, with a whole float as the integer a user wrote for a count (-5, not -5.0)."""
    value = py(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def as_float_array(
    name: str, value: Any, *, ndim: int | None = None, allow_inf: bool = False
) -> np.ndarray:
    """Converts ``value`` to a finite float64 array, naming ``name`` on failure."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as err:  # e.g. ragged nested lists
        raise ValueError(f"{name} must be numeric, got {value!r}") from err
    if raw.dtype.kind in "USbO":  # np.asarray("1e-3", float) would parse the text: refuse it
        for item in raw.flat:
            if isinstance(item, (str, bytes, bool, np.bool_)):
                kind = "the string" if isinstance(item, (str, bytes)) else "the boolean"
                raise ValueError(f"{name} must be numeric, got {kind} {py(item)!r}")
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric, got {value!r}") from err
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        want = "a number (inf allowed), not NaN" if allow_inf else "finite"
        if arr.ndim == 0:
            raise ValueError(
                f"{name} contains a non-finite value ({py(arr[()])!r}); it must be {want}"
            )
        where = np.argwhere(bad)[0]
        raise ValueError(
            f"{name} contains a non-finite value ({py(arr[tuple(where)])!r} at index "
            f"{tuple(int(i) for i in where)}); each must be {want}"
        )
    return arr


def check_momentum(values: Any, name: str = "momentum") -> np.ndarray:
    """Momentum must satisfy -1 < mu < 1 (negative momentum is allowed)."""
    arr = as_float_array(name, values)
    bad = arr[(arr >= 1.0) | (arr <= -1.0)]
    if bad.size:
        raise ValueError(f"{name} must lie in (-1, 1); got {py(bad.flat[0])!r}")
    return arr


def check_positive(values: Any, name: str, *, allow_inf: bool = False) -> np.ndarray:
    arr = as_float_array(name, values, allow_inf=allow_inf)
    bad = arr[arr <= 0.0]
    if bad.size:
        raise ValueError(f"{name} must be > 0; got {py(bad.flat[0])!r}")
    return arr


def check_nonnegative(values: Any, name: str, *, allow_inf: bool = False) -> np.ndarray:
    arr = as_float_array(name, values, allow_inf=allow_inf)
    bad = arr[arr < 0.0]
    if bad.size:
        raise ValueError(f"{name} must be >= 0; got {py(bad.flat[0])!r}")
    return arr


def check_unit_interval(values: Any, name: str) -> np.ndarray:
    """Values in [0, 1) (a decay rate such as Adam's b1)."""
    arr = as_float_array(name, values)
    bad = arr[(arr < 0) | (arr >= 1)]
    if bad.size:
        raise ValueError(f"{name} must lie in [0, 1); got {py(bad.flat[0])!r}")
    return arr


def check_whole(values: Any, name: str, *, minimum: int = 0) -> np.ndarray:
    """Whole numbers >= ``minimum`` (a delay, a count of workers)."""
    arr = as_float_array(name, values)
    bad = arr[(arr < minimum) | (arr != np.round(arr))]
    if bad.size:
        raise ValueError(f"{name} must be a whole number >= {minimum}; got {py(bad.flat[0])!r}")
    return arr


MAX_RING = 2**31 - 1  # read points a delay ring holds at most: step counters are int32
MAX_WORKERS = 2**31 - 1  # workers a clock simulates at most: worker indices are int32


def check_delay(values: Any, *, buffer: int, name: str = "delay") -> np.ndarray:
    """Delays are non-negative integers that fit in a delay buffer of ``buffer`` slots."""
    arr = as_float_array(name, values)
    bad = arr[(arr < 0) | (arr != np.round(arr))]
    if bad.size:
        raise ValueError(f"{name} must be a non-negative integer; got {as_written(bad.flat[0])!r}")
    too_big = arr[arr > buffer - 1]
    if too_big.size:
        value = int(too_big.flat[0])
        if value > MAX_RING - 1:  # no buffer reaches it: say what does the same
            raise ValueError(
                f"{name}={value:,} is beyond the largest delay a ring holds ({MAX_RING - 1:,}: "
                f"step counters are int32); a {name} of at least `steps` reads the start at "
                f"every step, so set {name} to `steps` for the same run"
            )
        raise ValueError(
            f"{name}={value} does not fit the delay buffer of {buffer} "
            f"iterates (largest delay it holds: {buffer - 1}); raise `buffer` to at least "
            f"{value + 1}, or leave it unset (it then fits the grid's largest {name})"
        )
    return arr.astype(np.int64)


def check_int(value: Any, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def did_you_mean(name: Any, names: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` naming the closest of ``names`` to ``name``, or ``""`` if none is close."""
    near = difflib.get_close_matches(str(name), [str(n) for n in names], n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""
