"""Extending asyncjax in one file: a new delay law and a new problem, defined here and run
through ``sweep`` and ``simulate`` with nothing registered or edited in the package."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax.numpy as jnp
import numpy as np

import asyncjax as aj


# ---------------------------------------------------------------- a user's delay law
@dataclass(frozen=True)
class Bimodal(aj.delays.BoundedLaw, aj.delays.RandomLaw):
    """Half the gradients are fresh, half are ``slow_delay`` steps old (a fast and a slow worker)."""

    name: ClassVar[str] = "bimodal"
    hyperparameters: ClassVar[tuple] = (aj.Hyper("slow_delay", default=0),)

    def raw_staleness(self, param, u):
        return jnp.where(u < 0.5, 0.0, param)


# ---------------------------------------------------------------- a user's problem
class Target(NamedTuple):
    c: Any  # (d,) the minimiser


class ShiftedBowl(aj.Problem):
    """f(x) = ½‖x − c‖², gradient x − c + σz with z ~ N(0, I) per step; swept ``noise`` = σ."""

    kind = "shifted_bowl"
    metric_docs = {"error": "f(x) = 1/2 ||x - c||^2"}

    def __init__(self, c, noise=0.1):
        self.c = np.asarray(c, np.float64)
        self.hyperparameters = (aj.Hyper("noise", noise),)

    def static_key(self):
        return ("shifted_bowl", self.c.size)

    def describe(self):
        return {"problem": self.kind, "c": self.c.tolist()}

    def default_init(self):
        return np.zeros_like(self.c)

    def operands(self, dtype):
        return Target(jnp.asarray(self.c, dtype))

    def sample(self, ops, key, ks):
        return aj.rng.normals(key, ks, ops.c.shape[0], ops.c.dtype)

    def grad(self, ops, params, batch, hp):
        return params - ops.c + hp["noise"] * batch

    def metrics(self, ops, params):
        return {"error": 0.5 * jnp.sum((params - ops.c) ** 2)}


def _source_lines(obj) -> int:
    import inspect

    return len(inspect.getsource(obj).splitlines())


def test_each_extension_is_a_short_class():
    assert _source_lines(Bimodal) < 40
    assert _source_lines(ShiftedBowl) + _source_lines(Target) < 40


def test_a_user_delay_law_runs_through_simulate_and_sweep():
    law = Bimodal()
    taus = aj.delay_stream(law, 6, seed=1, steps=2000, buffer=7)
    assert set(np.unique(taus)) == {0, 6}
    assert 0.45 < np.mean(taus == 0) < 0.55  # 2000 fair coins: 5 standard deviations
    pca = aj.StreamingPCA([3.0, 1.0, 0.5])
    kw = dict(momentum=0.5, lr=1e-3, steps=400, record_every=100, seed=1)
    ours = aj.simulate(pca, delay_model=law, slow_delay=6, **kw)
    # the same delays replayed as a trace give the same trajectory, bit for bit
    ref = aj.simulate(pca, delay_model=aj.delays.trace(taus[:400]), **kw)
    np.testing.assert_array_equal(ours.error, ref.error)
    res = aj.sweep(
        pca,
        aj.Grid(slow_delay=[0, 6], momentum=0.5, lr=1e-3, seed=[1, 2]),
        delay_model=law,
        steps=400,
        record_every=100,
        progress=False,
    )
    np.testing.assert_array_equal(res.sel(slow_delay=6, seed=1)["error"], ours.error)
    assert res.attrs["delay_model"] == "bimodal"


def test_a_user_problem_runs_through_simulate_and_sweep():
    bowl = ShiftedBowl([1.0, -2.0, 0.5])
    # noise 0, no delay, no momentum: x_k - c = (1 - lr)^k (x_0 - c) exactly
    tr = aj.simulate(bowl, lr=0.1, noise=0.0, steps=30, record_every=10)
    want = 0.5 * np.sum(bowl.c**2) * (1 - 0.1) ** (2 * np.arange(0, 31, 10))
    np.testing.assert_allclose(tr.error, want, rtol=1e-5)
    res = aj.sweep(
        bowl,
        aj.Grid(noise=[0.0, 0.3], delay=[0, 3], lr=0.1, momentum=0.5, seed=range(8)),
        steps=200,
        record_every=50,
        progress=False,
    )
    late = res["error"][..., -1].mean(axis=res.dims["error"].index("seed"))
    assert late.shape == (2, 2)
    assert np.all(late[0] < 1e-8) and np.all(late[1] > 1e-3)  # noise sets the floor
