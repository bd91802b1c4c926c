"""How every part of a run declares the values a grid may sweep.

A *part* is anything the engine calls: a problem, an optimizer, a delay model,
a mitigation (and the server rules to come). Each declares its swept
hyperparameters the same way, as a tuple of `Hyper` in its
``hyperparameters`` attribute (gymnax's ``default_params``, spelled per name)::

    class MyDelay:
        hyperparameters = (Hyper("delay", default=0, check=check_whole),)

so that filling in defaults and validating a grid is one loop over the parts
(`resolve`), not code per kind of part. A part that must check values
against each other or against the run (a delay that must fit the ring) also
defines ``check_values(values, *, buffer)``; a part may say how it is named in
messages with a ``label`` attribute.

Every checked value is a 1-D float64 array; the engine receives them traced, so
a second sweep with other values compiles nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from asyncjax._validate import as_float_array, did_you_mean


class _Marker:
    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return self._name


REQUIRED = _Marker("REQUIRED")
"""Default of a hyperparameter the grid must set."""

OMITTED = _Marker("OMITTED")
"""Default of a hyperparameter that is passed to the part only when the grid sets it
(an optax argument then keeps optax's own default)."""


@dataclass(frozen=True)
class Hyper:
    """One swept value of a part: a grid axis, traced by the engine.

    Attributes:
      name: the grid axis, e.g. ``"lr"``.
      default: its value when the grid does not set it; `REQUIRED` (the
        grid must set it) or `OMITTED` (not passed at all).
      check: ``check(values, name)`` raises ``ValueError`` for values the part
        cannot take (``values`` is a float64 array); None accepts any number.
      allow_inf: whether ±inf passes (a bound that never binds); NaN never does.
      doc: one line on what it is.

    The checks of `asyncjax._validate` fit ``check`` as they are
    (``check_positive``, ``check_nonnegative``, ``check_momentum``,
    ``check_unit_interval``, ``check_whole``).
    """

    name: str
    default: Any = REQUIRED
    check: Callable[[np.ndarray, str], Any] | None = None
    allow_inf: bool = False
    doc: str = ""

    def validate(self, values: Any) -> np.ndarray:
        """The values as a 1-D float64 array, checked (a string such as "1e-3" is refused)."""
        arr = as_float_array(self.name, values, allow_inf=self.allow_inf)
        arr = np.atleast_1d(arr).astype(np.float64)
        if self.check is not None:
            self.check(arr, self.name)
        return arr


# ------------------------------------------------------------------ the one loop
class Part:
    """What every kind of part shares: its axis names and how messages name it.

    A subclass declares ``hyperparameters`` (a tuple of `Hyper`) and may
    override ``label`` and ``check_values(values, *, buffer)``.
    """

    @property
    def hp_names(self) -> tuple[str, ...]:
        """The grid axes it accepts, in declaration order (from ``hyperparameters``)."""
        return hp_names(self)

    @property
    def label(self) -> str:
        """How messages name it."""
        return type(self).__name__


def hyperparameters(part: Any) -> tuple[Hyper, ...]:
    """The part's declared hyperparameters (none for None or a part without any)."""
    return tuple(getattr(part, "hyperparameters", ()) or ()) if part is not None else ()


def hp_names(part: Any) -> tuple[str, ...]:
    """The names of the part's hyperparameters, in declaration order."""
    return tuple(h.name for h in hyperparameters(part))


def label(part: Any) -> str:
    """How messages name a part: its ``label``, else its class name."""
    return str(getattr(part, "label", None) or type(part).__name__)


def allowed_axes(parts: Iterable[Any]) -> list[str]:
    """Every grid axis the parts accept (besides ``seed``), without repeats, in order."""
    return list(dict.fromkeys(n for p in parts for n in hp_names(p)))


def select(hp: Mapping[str, Any], part: Any) -> dict[str, Any]:
    """The entries of ``hp`` that belong to ``part`` (what the engine passes it)."""
    return {n: hp[n] for n in hp_names(part) if n in hp}


def resolve(
    parts: Sequence[Any], values: Mapping[str, Any], *, buffer: int
) -> dict[str, np.ndarray]:
    """Validates swept values and fills in defaults for every part of a run.

    Args:
      parts: the run's parts (None entries are skipped).
      values: name -> scalar or 1-D array of values, as the grid gives them.
      buffer: the ring the run keeps (delay models check that delays fit it).

    Returns:
      name -> 1-D float64 array for every name the engine will receive.

    Raises:
      ValueError: an unknown name (with the nearest known one, or what adds it
        where a part names it in its ``optional_axes``: name -> how to get the
        axis), a required name missing, or a value a part refuses.
    """
    parts = [p for p in parts if p is not None]
    allowed = allowed_axes(parts)
    unknown = [n for n in values if n not in allowed]
    if unknown:
        option = {n: h for p in parts for n, h in getattr(p, "optional_axes", {}).items()}
        hints = ", ".join(
            f"{n!r} ({option[n]})" if n in option else f"{n!r}{did_you_mean(n, allowed)}"
            for n in unknown
        )
        which = ", ".join(label(p) for p in parts)
        raise ValueError(
            f"unknown grid axis {hints} for {which}; allowed: {', '.join(allowed + ['seed'])}"
        )
    out: dict[str, np.ndarray] = {}
    for part in parts:
        own: dict[str, np.ndarray] = {}
        for h in hyperparameters(part):
            if h.name in out:  # declared by an earlier part too: one value serves both
                own[h.name] = out[h.name]
                continue
            if h.name in values:
                raw = values[h.name]
            elif h.default is REQUIRED:
                raise ValueError(
                    f"the grid must set {h.name} (a value or a list of them) for {label(part)}"
                )
            elif h.default is OMITTED:
                continue
            else:
                raw = h.default
            own[h.name] = h.validate(raw)
        check = getattr(part, "check_values", None)
        if check is not None:
            own.update(check(own, buffer=buffer) or {})
        out.update(own)
    return out
