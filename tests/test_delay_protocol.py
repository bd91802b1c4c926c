"""The delay-model protocol: a model plugs in without touching the engine; swept values via _parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import asyncjax as aj
from asyncjax import _parts, delays
from asyncjax.delays import RingContext, RingIO
from asyncjax.delays.base import identity_init, write_newest


@dataclass(frozen=True)
class Alternating(delays.DelayModel):
    """τ_k = k mod 2: a new model written against the protocol only (one file, no engine edit)."""

    name: ClassVar[str] = "alternating"

    def buffer_for(self, values: Any = None) -> int:
        return 2

    def ring_io(self, ctx: RingContext) -> RingIO:
        L = ctx.buffer

        def read(ring, k, inputs):
            tau = k % 2
            stale = jax.tree.map(
                lambda r: jax.lax.dynamic_index_in_dim(r, (k - tau) % L, 1, False), ring
            )
            return stale, tau, None

        return RingIO(identity_init, lambda ks: None, read, write_newest(L))


def test_a_new_model_runs_through_the_engine_unchanged(pca):
    kw = dict(momentum=0.5, lr=1e-3, steps=40, record_every=10, seed=3)
    ours = aj.simulate(pca, delay_model=Alternating(), **kw)
    ref = aj.simulate(pca, delay_model=delays.trace(np.arange(40) % 2), **kw)
    np.testing.assert_array_equal(ours.error, ref.error)


def test_engine_never_asks_which_model_it_holds():
    import inspect

    from asyncjax import engine

    src = inspect.getsource(engine.run_batch)
    for word in ("isinstance", ".stateful", ".random", ".name", "TraceDelay", "WorkerClock"):
        assert word not in src


@pytest.mark.parametrize(
    "name, axis, default",
    [
        ("constant", "delay", 0),
        ("uniform", "max_delay", 0),
        ("geometric", "workers", _parts.REQUIRED),
    ],
)
def test_each_law_declares_its_one_hyperparameter(name, axis, default):
    model = delays.get_delay_model(name)
    (h,) = model.hyperparameters
    assert (model.axis, h.name, h.default) == (axis, axis, default)
    assert model.label == f"the {name!r} delay model"


def test_a_trace_has_no_axis():
    model = delays.trace([0, 1, 2])
    assert model.hyperparameters == () and model.axis is None
    assert _parts.resolve([model], {}, buffer=3) == {}
    with pytest.raises(ValueError, match=r"trace\[2\] = 2 does not fit the delay buffer of 2"):
        _parts.resolve([model], {}, buffer=2)


def test_geometric_without_workers_says_the_grid_must_set_them(pca):
    with pytest.raises(ValueError, match=r"the grid must set workers .*'geometric' delay model"):
        aj.sweep(
            pca, aj.Grid(lr=1e-3, momentum=0.0), delay_model="geometric", steps=4, record_every=2
        )


def test_checked_values_are_float64_and_fit_the_ring():
    out = _parts.resolve([delays.get_delay_model("constant")], {"delay": [0, 3]}, buffer=4)
    assert out["delay"].dtype == np.float64 and out["delay"].tolist() == [0.0, 3.0]
    assert _parts.resolve([delays.get_delay_model("constant")], {}, buffer=1)["delay"].tolist() == [
        0.0
    ]
    with pytest.raises(ValueError, match=r"delay=4 does not fit the delay buffer of 4"):
        _parts.resolve([delays.get_delay_model("constant")], {"delay": 4}, buffer=4)
    with pytest.raises(ValueError, match=r"workers=5 exceeds the 4 worker slots"):
        _parts.resolve([delays.workers()], {"workers": [2, 5]}, buffer=4)


def test_ring_need_cuts_rings_only_for_the_bounded_laws():
    vals = np.array([0.0, 3.0, 9.0])
    for name in ("constant", "uniform"):
        assert delays.get_delay_model(name).ring_need(vals, 8).tolist() == [1, 4, 8]
    assert delays.get_delay_model("geometric").ring_need(vals, 8) is None
    assert delays.workers().ring_need(vals, 8) is None
    assert delays.trace([1, 2]).ring_need(None, 8) is None


def test_delay_stream_goes_through_the_model():
    tau = aj.delay_stream("uniform", 5.0, 7, 50, 6)
    assert tau.shape == (50,) and tau.min() >= 0 and tau.max() <= 5
    assert aj.delay_stream(delays.trace([3, 1], repeat=True), 0, 0, 5, 4).tolist() == [
        3,
        1,
        3,
        1,
        3,
    ]
    assert aj.delay_stream("constant", 4.0, 0, 3, 5).tolist() == [4, 4, 4]
    assert jnp.asarray(aj.delay_stream("workers", 3, 1, 10, 3)).shape == (10,)
