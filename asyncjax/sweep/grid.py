"""The grid of a sweep: which settings are swept (axes) and which are fixed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


class _Axes(Mapping):
    """Axis name -> values; an axis given as a ``range`` becomes an array only when read.

    A sweep refused for its size (10^8 seeds) then never builds the seeds.
    """

    def __init__(self) -> None:
        self._given: dict[str, np.ndarray | range] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        values = self._given[name]
        if isinstance(values, range):  # as NumPy makes it (a list of 10^8 seeds takes a minute)
            values = self._given[name] = np.arange(
                values.start, values.stop, values.step, dtype=np.int64
            )
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(self._given)

    def __len__(self) -> int:
        return len(self._given)

    def given(self, name: str) -> np.ndarray | range:
        """The axis as given: a ``range`` not yet read, or the array."""
        return self._given[name]


class Grid:
    """The points to simulate: axes given as lists, fixed settings as scalars.

    Axis order is kept and becomes the axis order of the results, e.g.
    ``Grid(momentum=[0.7, 0.9], delay=range(0, 151, 10), lr=5e-4, seed=range(100))``
    has axes (momentum, delay, seed) and a fixed lr. Names: ``seed``, the
    optimizer's (``momentum``, ``lr``; optax's own names such as ``b1``), the
    delay model's axis (``delay``, ``max_delay`` or ``workers``) and the
    problem's (e.g. ``noise``). Unset: the parts' defaults (momentum 0, delay 0),
    seed 0.
    """

    def __init__(self, **axes: Any):
        if not axes:
            raise ValueError("a Grid needs at least one axis or setting (lr is required)")
        self.axes = _Axes()
        self.fixed: dict[str, Any] = {}
        for name, values in axes.items():
            if isinstance(values, (range, list, tuple, np.ndarray)) or (
                hasattr(values, "shape") and np.ndim(values) == 1
            ):
                arr = values if isinstance(values, range) else np.asarray(values)
                if len(arr) == 0 if isinstance(arr, range) else (arr.ndim != 1 or arr.size == 0):
                    raise ValueError(
                        f"grid axis {name!r} must be a non-empty 1-D list, got {values!r}"
                    )
                self.axes._given[name] = arr
            elif np.ndim(values) == 0:
                self.fixed[name] = values.item() if hasattr(values, "item") else values
            else:
                raise ValueError(
                    f"grid axis {name!r} must be a scalar or a 1-D list, got shape {np.shape(values)}"
                )

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.given(k)) for k in self.axes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def values(self, name: str, default: Any) -> np.ndarray:
        """All values a setting takes (axis values, or the fixed value, or the default)."""
        if name in self.axes:
            return self.axes[name]
        return np.asarray([self.fixed.get(name, default)])

    def given(self, name: str) -> np.ndarray | range:
        """Axis ``name`` as given: a ``range`` stays one (its values are not built)."""
        return self.axes.given(name)

    def describe(self) -> dict[str, Any]:
        """The axes' values as lists and the fixed settings (saved with the results)."""
        return {"axes": {k: v.tolist() for k, v in self.axes.items()}, "fixed": dict(self.fixed)}

    def __repr__(self) -> str:
        parts = [f"{k}[{n}]" for k, n in zip(self.axes, self.shape)] + [
            f"{k}={v!r}" for k, v in self.fixed.items()
        ]
        return f"Grid({', '.join(parts)})"
