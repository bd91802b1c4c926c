"""A minimal user-written problem shared by the engine and mitigation tests."""

import jax.numpy as jnp
import numpy as np

import asyncjax as aj
from asyncjax.problems.base import Problem


class Quad(Problem):
    """f(x) = ½ Σ λ_i x_i² with additive N(0, σ²) gradient noise: a minimal user-written problem.

    ``tag`` goes into the static key, so that two test modules compile separately.
    """

    kind = "test_quadratic"
    metric_docs = {"error": "f(x)"}

    def __init__(self, lam, noise, tag="test_quad"):
        self.lam, self.noise, self.tag = np.asarray(lam, float), float(noise), tag

    def static_key(self):
        return (self.tag, self.lam.size)

    def describe(self):
        return {"problem": self.kind}

    def default_init(self):
        return np.ones(self.lam.size)

    def to_internal(self, init):
        return np.asarray(init, float)

    def operands(self, dtype):
        return {"lam": jnp.asarray(self.lam, dtype), "noise": jnp.asarray(self.noise, dtype)}

    def sample(self, ops, key, ks):
        return aj._rng.normals(key, ks, ops["lam"].shape[0], ops["lam"].dtype)

    def grad(self, ops, params, batch, hp):
        return ops["lam"] * params + ops["noise"] * batch

    def metrics(self, ops, params):
        return {"error": 0.5 * jnp.sum(ops["lam"] * params * params)}
