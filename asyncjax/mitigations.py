"""What practitioners do about staleness: delay-adaptive steps, delay compensation, dropping.

A mitigation sees the staleness τ_k of the gradient a step applies (the
engine passes it in) and may change the gradient before the optimizer sees it
and the update after. Its parameters are grid axes, traced like every other
hyperparameter, so one compilation serves all their values::

    aj.sweep(pca, aj.Grid(momentum=0.9, lr=5e-4, delay=range(0, 151, 10), adaptive_c=[1e9, 10], seed=range(50)),
             mitigation="delay_adaptive", steps=30_000, record_every=250)

With g_k the stale gradient, evaluated at the read point x_{k−τ_k}, and x_k the
current parameters:

================== ================ =========================================================
mitigation          grid axis        what it does
================== ================ =========================================================
``delay_adaptive``  ``adaptive_c``   step η_k = η·min(1, c/τ_k) (Mishchenko et al. 2022)
``dc_asgd``         ``dc_lambda``    g ← g + λ g⊙g⊙(x_k − x_{k−τ_k}) (Zheng et al. 2017)
``drop_stale``      ``max_staleness`` a gradient with τ_k > bound changes nothing: the
                                     parameters and the optimizer state stay as they were
================== ================ =========================================================

Where the delay-adaptive step acts: for the momentum methods (``heavy_ball``,
``nesterov``, ``optax.sgd``) it scales the *gradient*, g ← min(1, c/τ_k)·g, which
is η_k in x_{k+1} = x_k + μ(x_k − x_{k−1}) − η_k g_k: the momentum carried from
earlier steps is left alone. Adaptive optimizers (Adam, RMSProp, … any other
optax transformation) normalise the gradient's scale away, so there it scales
the *update*, x_{k+1} = x_k + min(1, c/τ_k)·(x̂_{k+1} − x_k), and the optimizer's
moments see the gradient unchanged: an optimizer says which it is with its
``scale_free`` flag. ``target=`` overrides the choice.

DC-ASGD's x_{k−τ_k} is the point the gradient was evaluated at (the read
point: the parameters for heavy ball and optax, the look-ahead for Nesterov).

τ_k is the number of updates applied since that point was read. For the
delay laws and traces, whose history before step 0 is the start, a step k < τ
reads the start, which is k updates old: the mitigation sees min(τ_k, k), as
it does from the worker clock, which counts it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from asyncjax._parts import REQUIRED, Hyper, Part
from asyncjax._validate import check_nonnegative, check_positive

__all__ = ["Mitigation", "delay_adaptive", "dc_asgd", "drop_stale", "get_mitigation", "MITIGATIONS"]

PyTree = Any


def _same_gradient(g: PyTree, params: PyTree, stale: PyTree, tau: jax.Array, hp: Mapping) -> PyTree:
    return g


def _same_update(params, state, new_params, new_state, tau, hp) -> tuple[PyTree, PyTree]:
    return new_params, new_state


@dataclass(frozen=True)
class Mitigation(Part):
    """A staleness mitigation: a record of pure functions of ONE trajectory (build one with the factories).

    Attributes:
      name: e.g. ``"delay_adaptive"``.
      hyperparameters: its grid axes (`Hyper`).
      options: static settings (hashable pairs), part of the compiled code.
      gradient: ``gradient(g, params, stale, tau, hp) -> g``, the gradient the
        optimizer sees: ``g`` the stochastic gradient at the read point
        ``stale``, ``params`` x_k, ``tau`` () int32 staleness, ``hp`` this
        mitigation's hyperparameters (scalars).
      update: ``update(params, state, new_params, new_state, tau, hp) ->
        (params, state)``, what the step leaves, given the optimizer's proposal.
      bind: ``bind(optimizer) -> Mitigation``: settles choices that depend on
        the optimizer (None: nothing to settle).
    """

    name: str
    hyperparameters: tuple[Hyper, ...]
    options: tuple[tuple[str, Any], ...] = ()
    gradient: Callable[..., PyTree] = field(default=_same_gradient, compare=False, repr=False)
    update: Callable[..., tuple[PyTree, PyTree]] = field(
        default=_same_update, compare=False, repr=False
    )
    binder: Callable[[Any], Mitigation] | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"the {self.name!r} mitigation"

    def bind(self, optimizer: Any) -> Mitigation:
        """This mitigation for ``optimizer`` (choices that depend on it settled)."""
        return self if self.binder is None else self.binder(optimizer)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "axes": list(self.hp_names), **dict(self.options)}


# ---------------------------------------------------------------- delay-adaptive step
def _adaptive_factor(tau: jax.Array, hp: Mapping[str, jax.Array]) -> jax.Array:
    c = hp["adaptive_c"]
    t = tau.astype(c.dtype)
    return jnp.where(t > c, c / jnp.maximum(t, jnp.ones((), c.dtype)), jnp.ones((), c.dtype))


def _scale_gradient(g, params, stale, tau, hp):
    f = _adaptive_factor(tau, hp)
    return jax.tree.map(lambda a: f * a, g)


def _scale_update(params, state, new_params, new_state, tau, hp):
    f = _adaptive_factor(tau, hp)
    return jax.tree.map(lambda x, y: x + f * (y - x), params, new_params), new_state


def delay_adaptive(target: str = "auto") -> Mitigation:
    """Delay-adaptive step η_k = η·min(1, c/τ_k) (Mishchenko et al. 2022); grid axis ``adaptive_c`` (c > 0).

    Args:
      target: ``"gradient"`` (scale the gradient: the momentum methods'
        default), ``"update"`` (scale the whole update: the default of
        optimizers whose step ignores the gradient's scale, ``scale_free``)
        or ``"auto"`` (chosen by the optimizer when the run is built).
    """
    if target not in ("auto", "gradient", "update"):
        raise ValueError(f"target must be 'auto', 'gradient' or 'update', got {target!r}")
    hyper = (Hyper("adaptive_c", REQUIRED, check_positive, doc="c > 0: eta_k = eta min(1, c/tau)"),)
    if target == "auto":
        return Mitigation(
            "delay_adaptive",
            hyper,
            (("target", "auto"),),
            binder=lambda opt: delay_adaptive("update" if opt.scale_free else "gradient"),
        )
    if target == "gradient":
        return Mitigation("delay_adaptive", hyper, (("target", target),), gradient=_scale_gradient)
    return Mitigation("delay_adaptive", hyper, (("target", target),), update=_scale_update)


# ---------------------------------------------------------------- delay compensation
def _compensate(g, params, stale, tau, hp):
    lam = hp["dc_lambda"]
    return jax.tree.map(lambda a, x, s: a + lam * a * a * (x - s), g, params, stale)


def dc_asgd() -> Mitigation:
    """DC-ASGD delay compensation g + λ g⊙g⊙(x_k − x_{k−τ}) (Zheng et al. 2017).

    Grid axis ``dc_lambda`` (λ ≥ 0).
    """
    hyper = (Hyper("dc_lambda", REQUIRED, check_nonnegative, doc="lambda >= 0"),)
    return Mitigation("dc_asgd", hyper, gradient=_compensate)


# ---------------------------------------------------------------- dropping stale gradients
def _keep_fresh(params, state, new_params, new_state, tau, hp):
    keep = tau.astype(hp["max_staleness"].dtype) <= hp["max_staleness"]
    pick = lambda a, b: jnp.where(keep, a, b)
    return jax.tree.map(pick, new_params, params), jax.tree.map(pick, new_state, state)


_check_bound = partial(check_nonnegative, allow_inf=True)  # one object: equal across calls


def drop_stale() -> Mitigation:
    """Drop gradients older than a bound: τ_k > ``max_staleness`` (grid axis, ≥ 0) leaves the step a no-op."""
    hyper = (
        Hyper(
            "max_staleness",
            REQUIRED,
            _check_bound,
            allow_inf=True,
            doc="a gradient older than this is dropped (inf: none is)",
        ),
    )
    return Mitigation("drop_stale", hyper, update=_keep_fresh)


MITIGATIONS = {"delay_adaptive": delay_adaptive, "dc_asgd": dc_asgd, "drop_stale": drop_stale}


def get_mitigation(spec: str | Mitigation | None) -> Mitigation | None:
    """A mitigation by name (``"delay_adaptive"``, ``"dc_asgd"``, ``"drop_stale"``), or None."""
    if spec is None or isinstance(spec, Mitigation):
        return spec
    try:
        return MITIGATIONS[spec]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown mitigation {spec!r}; choose one of {sorted(MITIGATIONS)}"
        ) from None
