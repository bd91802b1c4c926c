"""Workers with their own data: the arriving worker reaches the problem's gradient."""

import jax.numpy as jnp
import numpy as np
import pytest

import asyncjax as aj


class WorkerTagged(aj.Quadratic):
    """A per-worker problem whose gradient is the arriving worker's index (a probe).

    With plain SGD at lr = 1 from x0 = 0 the iterate after k steps is minus the sum of
    the first k arrivals' worker indices, whatever the staleness.
    """

    @property
    def per_worker(self):
        return True

    def worker_grad(self, ops, params, batch, hp, worker):
        return jnp.zeros_like(params) + worker.astype(params.dtype)

    def check_workers(self, n):
        if n > 5:
            raise ValueError(f"workers={n} is more than the probe's 5 workers")


PROBE = WorkerTagged([1.0], init=[0.0])
PROBE_RUN = dict(lr=1.0, momentum=0.0, steps=60, record_every=1, record_params=True)


@pytest.mark.parametrize(
    "clock", [aj.delays.workers("lognormal", shape=0.7, speeds="1 + i"), "workers"]
)
def test_the_engine_hands_the_arriving_worker_to_the_problem(clock):
    n, seed = 4, 3
    tr = aj.simulate(PROBE, delay_model=clock, workers=n, seed=seed, **PROBE_RUN)
    log = aj.delays.worker_schedule(
        aj.delays.workers() if clock == "workers" else clock, n, seed, 60
    )
    assert len(set(log["worker"].tolist())) == n  # every worker arrives: the probe can fail
    expected = -np.cumsum(log["worker"]).astype(float)
    np.testing.assert_array_equal(tr.params[1:, 0], expected)


def test_a_server_hands_the_arriving_worker_to_the_problem():
    n, seed = 4, 1
    clock = aj.delays.workers("halfnormal", base="1 + i")
    server = aj.servers.ringmaster(stops=False)
    tr = aj.simulate(
        PROBE,
        delay_model=clock,
        server=server,
        workers=n,
        seed=seed,
        delay_threshold=2,
        **PROBE_RUN,
    )
    log = aj.servers.schedule(server, clock, workers=n, seed=seed, arrivals=60, delay_threshold=2)
    assert 0 < log["applied"].sum() < 60  # some arrivals are discarded: they must not count
    expected = -np.cumsum(np.where(log["applied"], log["worker"], 0)).astype(float)
    np.testing.assert_array_equal(tr.params[1:, 0], expected)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(delay_model="constant", delay=2), "needs the worker clock: delay_model=asyncjax"),
        (dict(delay_model="workers", workers=6), "workers=6 is more than the probe's 5 workers"),
    ],
)
def test_a_run_the_problem_cannot_serve_is_refused_before_compiling(kwargs, match):
    before = aj.compile_count()
    with pytest.raises(ValueError, match=match):
        aj.simulate(PROBE, lr=0.1, steps=10, **kwargs)
    grid = aj.Grid(lr=0.1, seed=range(2), **{k: v for k, v in kwargs.items() if k != "delay_model"})
    with pytest.raises(ValueError, match=match):
        aj.sweep(
            PROBE, grid, delay_model=kwargs["delay_model"], steps=10, record_every=5, progress=False
        )
    assert aj.compile_count() == before
