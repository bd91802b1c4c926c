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
moments see the gradient unchanged. ``target=`` overrides the choice.

DC-ASGD's x_{k−τ_k} is the point the gradient was evaluated at (the read
point: the parameters for heavy ball and optax, the look-ahead for Nesterov).

τ_k is the number of updates applied since that point was read. For the
delay laws and traces, whose history before step 0 is the start, a step k < τ
reads the start, which is k updates old: the mitigation sees min(τ_k, k), as
it does from the worker clock, which counts it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp

from asyncjax._validate import check_nonnegative, check_positive

__all__ = ["Mitigation", "delay_adaptive", "dc_asgd", "drop_stale", "get_mitigation", "MITIGATIONS"]

PyTree = Any
_GRADIENT_SCALED = ("heavy_ball", "nesterov", "optax.sgd")  # momentum methods: scale the gradient


@dataclass(frozen=True)
class Mitigation:
    """A staleness mitigation (see the module docstring). Build one with the factories.

    Attributes:
      name: ``"delay_adaptive"``, ``"dc_asgd"`` or ``"drop_stale"``.
      hp_names: its grid axes (all required).
      target: for the delay-adaptive step, ``"gradient"``, ``"update"`` or
        ``"auto"`` (decided by the optimizer when the run is built).
    """

    name: str
    hp_names: tuple[str, ...]
    target: str = "auto"

    @property
    def required(self) -> tuple[str, ...]:
        return self.hp_names

    def check(self, hp: Mapping[str, Any]) -> None:
        """Validates swept values (each an array) before anything is compiled."""
        for name, values in hp.items():
            if name == "adaptive_c":
                check_positive(values, name)
            else:
                check_nonnegative(values, name, allow_inf=name == "max_staleness")

    def bind(self, optimizer: Any) -> Mitigation:
        """Resolves ``target="auto"`` for an optimizer (a no-op for the other mitigations)."""
        if self.name != "delay_adaptive" or self.target != "auto":
            return self
        return replace(self, target="gradient" if optimizer.name in _GRADIENT_SCALED else "update")

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "axes": list(self.hp_names)}
        if self.name == "delay_adaptive":
            out["target"] = self.target
        return out

    # ------------------------------------------------------------ pure, one trajectory
    def _factor(self, tau: jax.Array, hp: Mapping[str, jax.Array]) -> jax.Array:
        c = hp["adaptive_c"]
        t = tau.astype(c.dtype)
        return jnp.where(t > c, c / jnp.maximum(t, jnp.ones((), c.dtype)), jnp.ones((), c.dtype))

    def gradient(
        self, g: PyTree, params: PyTree, stale: PyTree, tau: jax.Array, hp: Mapping[str, jax.Array]
    ) -> PyTree:
        """The gradient the optimizer sees.

        Args:
          g: the stochastic gradient at ``stale`` (a params pytree).
          params: x_k, the current parameters.
          stale: the read point the gradient was evaluated at.
          tau: () int32 staleness τ_k.
          hp: this mitigation's hyperparameters (scalars).
        """
        if self.name == "delay_adaptive" and self.target == "gradient":
            f = self._factor(tau, hp)
            return jax.tree.map(lambda a: f * a, g)
        if self.name == "dc_asgd":
            lam = hp["dc_lambda"]
            return jax.tree.map(lambda a, x, s: a + lam * a * a * (x - s), g, params, stale)
        return g

    def update(
        self,
        params: PyTree,
        state: PyTree,
        new_params: PyTree,
        new_state: PyTree,
        tau: jax.Array,
        hp: Mapping[str, jax.Array],
    ) -> tuple[PyTree, PyTree]:
        """The parameters and optimizer state after the step (given the optimizer's proposal)."""
        if self.name == "delay_adaptive" and self.target == "update":
            f = self._factor(tau, hp)
            return jax.tree.map(lambda x, y: x + f * (y - x), params, new_params), new_state
        if self.name == "drop_stale":
            keep = tau.astype(hp["max_staleness"].dtype) <= hp["max_staleness"]
            pick = lambda a, b: jnp.where(keep, a, b)  # noqa: E731
            return jax.tree.map(pick, new_params, params), jax.tree.map(pick, new_state, state)
        return new_params, new_state


def delay_adaptive(target: str = "auto") -> Mitigation:
    """Delay-adaptive step η_k = η·min(1, c/τ_k) (Mishchenko et al. 2022); grid axis ``adaptive_c`` (c > 0).

    Args:
      target: ``"gradient"`` (scale the gradient: the momentum methods'
        default), ``"update"`` (scale the whole update: the adaptive
        optimizers' default) or ``"auto"``.
    """
    if target not in ("auto", "gradient", "update"):
        raise ValueError(f"target must be 'auto', 'gradient' or 'update', got {target!r}")
    return Mitigation("delay_adaptive", ("adaptive_c",), target)


def dc_asgd() -> Mitigation:
    """DC-ASGD delay compensation g + λ g⊙g⊙(x_k − x_{k−τ}) (Zheng et al. 2017).

    Grid axis ``dc_lambda`` (λ ≥ 0).
    """
    return Mitigation("dc_asgd", ("dc_lambda",))


def drop_stale() -> Mitigation:
    """Drop gradients older than a bound: τ_k > ``max_staleness`` (grid axis, ≥ 0) leaves the step a no-op."""
    return Mitigation("drop_stale", ("max_staleness",))


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
