"""Numerics several modules share: sums whose rounding does not depend on the batch shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def seq_sum(terms: jax.Array) -> jax.Array:
    """Sum over the last axis in a fixed left-to-right order.

    XLA vectorises a short reduction differently depending on the batch shape
    around it, which changes the rounding. Adding the terms one by one keeps
    every trajectory's result bit-identical whatever the chunk or device count.
    """
    d = terms.shape[-1]
    if d > 64:  # compile-time cost of unrolling; large d is not bit-stable here
        return jnp.sum(terms, axis=-1)
    total = terms[..., 0]
    for i in range(1, d):
        total = total + terms[..., i]
    return total
