"""Optimizers fed stale gradients: heavy ball (eq. 5), Nesterov, and any optax transformation.

An `Optimizer` is three pure functions of ONE trajectory plus the names
of its swept hyperparameters (grid axes, traced, so new values compile nothing):

* ``init(params, hp) -> state``;
* ``update(grad, state, params, hp) -> (params, state)`` applies a gradient
  that was evaluated at a stale point;
* ``read_point(params, state, hp) -> point``: where a worker that reads now
  evaluates its gradient. The engine's delay buffer stores these points, so a
  gradient τ steps old is taken at the read point of step k − τ. Heavy ball and
  optax read the parameters; Nesterov reads its look-ahead.

With g_k the gradient at the stale read point (η = ``lr``, μ = ``momentum``):

=============== ==============================================================
heavy_ball()    x_{k+1} = x_k + μ (x_k − x_{k−1}) − η g_k      (eq. 5 of Liu et al.)
nesterov()      the same update, with g_k taken at the look-ahead
                y = x + μ (x − x_prev) of step k − τ_k
from_optax(f)   optax's ``f(learning_rate=lr, …)`` applied to g_k
=============== ==============================================================

``from_optax(optax.sgd)`` with ``momentum`` is heavy ball in velocity form
(t ← g + μ t, x ← x − η t); ``from_optax(optax.sgd, nesterov=True)`` is
Nesterov written in its look-ahead variable, so its parameters follow
``nesterov()``'s read points. Momentum may be negative: μ ∈ (−1, 1).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax

from asyncjax._parts import OMITTED, REQUIRED, Hyper, Part
from asyncjax._validate import (
    check_momentum,
    check_nonnegative,
    check_positive,
    check_unit_interval,
)

__all__ = ["Optimizer", "HeavyBallState", "heavy_ball", "nesterov", "from_optax", "get_optimizer"]

PyTree = Any


@dataclass(frozen=True)
class Optimizer(Part):
    """A stale-gradient optimizer (see the module docstring).

    Attributes:
      name: e.g. ``"heavy_ball"`` or ``"optax.adam"``.
      hyperparameters: what a grid may sweep (`Hyper`:
        name, default, check); a name with default ``OMITTED`` is passed only
        when the grid sets it.
      static: static options (hashable pairs), part of the compiled code.
      scale_free: its step does not change when the gradient is scaled (Adam,
        RMSProp, …), so a delay-adaptive step must scale the update instead.
    """

    name: str
    hyperparameters: tuple[Hyper, ...]
    static: tuple[tuple[str, Any], ...] = ()
    scale_free: bool = False
    key: Any = None  # identity of the underlying factory (for optax), part of equality
    init: Callable[..., PyTree] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    update: Callable[..., tuple[PyTree, PyTree]] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    read_point: Callable[..., PyTree] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    @property
    def label(self) -> str:
        return f"optimizer {self.name!r}"

    def describe(self) -> dict[str, Any]:
        defaults = {
            h.name: h.default for h in self.hyperparameters if isinstance(h.default, (int, float))
        }
        return {
            "name": self.name,
            "static": {k: _plain(v) for k, v in self.static},
            "defaults": defaults,
        }


def _plain(v: Any) -> Any:
    return v if isinstance(v, (bool, int, float, str, type(None))) else repr(v)


_MOMENTUM_HP = (
    Hyper("momentum", 0.0, check_momentum, doc="mu in (-1, 1); negative momentum is allowed"),
    Hyper("lr", REQUIRED, check_positive, doc="eta > 0, the step size"),
)


class HeavyBallState(NamedTuple):
    """State of heavy ball and Nesterov for one trajectory."""

    prev: PyTree  # like params: the previous iterate x_{k−1}


def _hb_init(params: PyTree, hp: Mapping[str, jax.Array]) -> HeavyBallState:
    return HeavyBallState(prev=params)


def _hb_update(grad: PyTree, state: HeavyBallState, params: PyTree, hp: Mapping[str, jax.Array]):
    mu, lr = hp["momentum"], hp["lr"]
    # The order of operations is eq. 5's (pinned by a bit-identity test).
    new = jax.tree.map(lambda x, xp, g: x + mu * (x - xp) - lr * g, params, state.prev, grad)
    return new, HeavyBallState(prev=params)


def _read_params(params: PyTree, state: Any, hp: Mapping[str, jax.Array]) -> PyTree:
    return params


def _nesterov_read(params: PyTree, state: HeavyBallState, hp: Mapping[str, jax.Array]) -> PyTree:
    mu = hp["momentum"]
    return jax.tree.map(lambda x, xp: x + mu * (x - xp), params, state.prev)


def heavy_ball() -> Optimizer:
    """Polyak's heavy ball fed stale gradients: eq. 5 of Liu et al. (2018), the default.

    Grid axes: ``lr`` (η > 0, required) and ``momentum`` (μ ∈ (−1, 1), default 0).
    """
    return Optimizer(
        "heavy_ball",
        _MOMENTUM_HP,
        init=_hb_init,
        update=_hb_update,
        read_point=_read_params,
    )


def nesterov() -> Optimizer:
    """Nesterov momentum: the stale gradient is taken at the look-ahead y = x + μ(x − x_prev).

    Its linear delay-stability boundary is ``theory.stability_threshold(...,
    method="nesterov")``. Grid axes as for `heavy_ball`.
    """
    return Optimizer(
        "nesterov",
        _MOMENTUM_HP,
        init=_hb_init,
        update=_hb_update,
        read_point=_nesterov_read,
    )


def from_optax(factory: Callable[..., Any], **static: Any) -> Optimizer:
    """Any optax transformation factory, fed the stale gradient.

    Its numeric arguments become grid axes and are traced: grid axis ``lr``
    feeds ``learning_rate``, the others keep optax's names (``b1``, ``b2``,
    ``momentum``, ``eps``, …). Arguments the grid does not set keep optax's
    defaults. ``static`` fixes non-swept options (e.g. ``nesterov=True``).

    Args:
      factory: e.g. ``optax.adam``, ``optax.sgd``, ``optax.rmsprop``.
      **static: fixed keyword arguments of the factory.

    Example::

        opt = asyncjax.optim.from_optax(optax.adam)
        aj.sweep(problem, aj.Grid(lr=[1e-3, 3e-3], b1=[0.0, 0.9], delay=[0, 8], seed=range(8)),
                 optimizer=opt, steps=500, record_every=50)
    """
    import optax  # noqa: F401  (a dependency; imported here to keep import time low)

    if not callable(factory):
        raise ValueError(f"from_optax needs an optax factory such as optax.adam, got {factory!r}")
    fname = getattr(factory, "__name__", repr(factory))
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot read the arguments of {fname}: {err}") from None
    params = sig.parameters
    if "learning_rate" not in params:
        raise ValueError(
            f"optax.{fname} takes no learning_rate; from_optax needs a gradient "
            "transformation factory such as optax.adam or optax.sgd"
        )
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    known = [
        n
        for n, p in params.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    for name in static:
        if name not in params and not takes_kwargs:
            raise ValueError(
                f"optax.{fname} has no argument {name!r}; its arguments: {', '.join(known)}"
            )
        if name == "learning_rate":
            raise ValueError(
                "learning_rate is swept: set grid axis 'lr' instead of a static learning_rate"
            )
    swept = tuple(
        ["lr"]
        + [
            n
            for n in known
            if n != "learning_rate" and n not in static and _numeric_default(params[n])
        ]
    )
    hp_map = {"lr": "learning_rate"}
    static_items = tuple(sorted(static.items()))

    def build(hp: Mapping[str, jax.Array]):
        kwargs = {hp_map.get(k, k): v for k, v in hp.items()}
        return factory(**kwargs, **static)

    def init(params_: PyTree, hp: Mapping[str, jax.Array]) -> PyTree:
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts with traced floats
            return build(hp).init(params_)

    def update(grad: PyTree, state: PyTree, params_: PyTree, hp: Mapping[str, jax.Array]):
        with jax.numpy_dtype_promotion("standard"):
            updates, state = build(hp).update(grad, state, params_)
            new = jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params_, updates)
        return new, state

    try:
        hash(static_items)
    except TypeError:
        raise ValueError(f"static options of from_optax must be hashable, got {static!r}") from None
    hyper = (Hyper("lr", REQUIRED, check_positive, doc="learning_rate of the optax factory"),)
    hyper += tuple(Hyper(n, OMITTED, _OPTAX_CHECKS.get(n)) for n in swept[1:])
    return Optimizer(
        f"optax.{fname}",
        hyper,
        static_items,
        scale_free=fname not in _LINEAR_IN_GRADIENT,
        key=(
            getattr(factory, "__module__", ""),
            getattr(factory, "__qualname__", fname),
            id(factory),
        ),
        init=init,
        update=update,
        read_point=_read_params,
    )


# What optax's numeric arguments may take (the others: any number).
_OPTAX_CHECKS = {
    "momentum": check_momentum,
    **dict.fromkeys(("b1", "b2", "decay", "b1_decay"), check_unit_interval),
    **dict.fromkeys(
        ("eps", "eps_root", "weight_decay", "initial_accumulator_value"), check_nonnegative
    ),
}
# optax factories whose step is linear in the gradient: scaling the gradient scales the step
# (the others normalise it away, so a delay-adaptive step scales their update).
_LINEAR_IN_GRADIENT = ("sgd",)


# Factory arguments that are never hyperparameters, whatever their default: random keys and
# seeds (the grid's own `seed` axis names trajectories), dtypes and parameter masks.
_NOT_SWEPT = ("key", "seed", "mask")


def _numeric_default(p: inspect.Parameter) -> bool:
    """A factory argument that can be swept: a number, or optional (None) with a numeric annotation.

    ``optax.sgd(momentum=None)`` is sweepable; ``mu_dtype=None``, ``mask=None``
    and the random ``key``/``seed`` of ``optax.noisy_sgd`` are not (they are
    static options of ``[optimizer]`` or not options at all).
    """
    d = p.default
    if p.name in _NOT_SWEPT or p.name.endswith("_dtype"):
        return False
    if d is inspect.Parameter.empty or isinstance(d, bool):
        return False
    if d is None:
        note = str(p.annotation)
        return "float" in note and "Callable" not in note
    return isinstance(d, (int, float))


def get_optimizer(spec: str | Optimizer, **static: Any) -> Optimizer:
    """An optimizer by name: ``"heavy_ball"``, ``"nesterov"`` or ``"optax.<name>"`` (with static options)."""
    if isinstance(spec, Optimizer):
        return spec
    if spec == "heavy_ball" or spec == "nesterov":
        if static:
            raise ValueError(f"{spec} takes no static options, got {sorted(static)}")
        return heavy_ball() if spec == "heavy_ball" else nesterov()
    if isinstance(spec, str) and spec.startswith("optax."):
        import optax

        name = spec[len("optax.") :]
        factory = getattr(optax, name, None)
        if factory is None or not callable(factory) or name.startswith("_"):
            import difflib

            names = [n for n in dir(optax) if not n.startswith("_") and callable(getattr(optax, n))]
            near = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {', '.join('optax.' + n for n in near)}?" if near else ""
            raise ValueError(f"unknown optax optimizer {spec!r}{hint}")
        return from_optax(factory, **static)
    raise ValueError(
        f"unknown optimizer {spec!r}; choose 'heavy_ball', 'nesterov' or 'optax.<name>'"
    )
