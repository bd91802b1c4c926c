"""The simulator against a NumPy loop of eq. 5, and its invariances."""

import jax
import numpy as np
import pytest
from conftest import reference_msgd, sin2

import asyncjax as aj

default_init = aj.StreamingPCA.default_init


def _compare(pca, momentum, lr, delay, seed, steps, model="constant", buffer=None, rtol=1e-9):
    trace = aj.simulate(
        pca,
        momentum=momentum,
        lr=lr,
        delay=delay,
        seed=seed,
        steps=steps,
        record_every=1,
        delay_model=model,
        buffer=buffer,
    )
    buffer = buffer or aj.get_delay_model(model).buffer_for(delay)
    xs = aj.data_stream(pca, seed, steps)
    taus = aj.delay_stream(model, delay, seed, steps, buffer)
    ref = reference_msgd(xs, momentum, lr, taus, default_init(pca))
    np.testing.assert_allclose(trace.error, sin2(ref), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(trace.norm, np.linalg.norm(ref, axis=1), rtol=rtol)
    np.testing.assert_allclose(trace.final, ref[-1], rtol=rtol, atol=rtol)
    return trace, taus


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# The constant-delay comparisons share one compiled engine: 300 steps and a ring of 41 (delay 40's).
CONSTANT = dict(steps=300, buffer=41)


def test_zero_delay_is_heavy_ball_msgd(pca, x64):
    trace, _ = _compare(pca, momentum=0.9, lr=5e-3, delay=0, seed=3, **CONSTANT)
    assert trace.error[-1] < trace.error[0]  # it does leave the saddle


# Stable settings (inside the delay-stability boundary), so the reference never blows up.
@pytest.mark.parametrize("delay,lr", [(1, 5e-3), (7, 5e-3), (40, 5e-4)])
def test_constant_delay_follows_reference_step_for_step(pca, x64, delay, lr):
    trace, _ = _compare(pca, momentum=0.8, lr=lr, delay=delay, seed=11, **CONSTANT)
    assert trace.diverged_at == -1


@pytest.mark.parametrize("model,param", [("uniform", 12), ("geometric", 5.0)])
def test_random_delays_follow_reference(pca, x64, model, param):
    _, taus = _compare(pca, momentum=0.5, lr=5e-3, delay=param, seed=2, steps=300, model=model)
    assert len(np.unique(taus)) > 3  # the delays really vary


def test_float32_close_to_float64_reference(pca):
    trace = aj.simulate(pca, momentum=0.7, lr=5e-3, delay=5, seed=0, steps=300, record_every=1)
    assert trace.error.dtype == np.float32
    xs = aj.data_stream(pca, 0, 300)  # the float32 stream, run in float64 below
    ref = reference_msgd(xs, 0.7, 5e-3, np.full(300, 5), default_init(pca))
    np.testing.assert_allclose(trace.error, sin2(ref), atol=2e-4)


# One trajectory's run for the tests below (one compiled engine): 120 steps, a ring of 21.
ONE = dict(steps=120, record_every=10, buffer=21)


def test_batch_equals_members_run_one_by_one(pca):
    grid = aj.Grid(momentum=[0.0, 0.9], delay=[0, 3, 9], lr=[1e-3, 4e-3], seed=[5, 6])
    res = aj.sweep(pca, grid, **ONE)
    for i, mu in enumerate([0.0, 0.9]):
        for j, tau in enumerate([0, 3, 9]):
            for li, lr in enumerate([1e-3, 4e-3]):
                for si, seed in enumerate([5, 6]):
                    one = aj.simulate(pca, momentum=mu, lr=lr, delay=tau, seed=seed, **ONE)
                    np.testing.assert_array_equal(res["error"][i, j, li, si], one.error)
                    np.testing.assert_array_equal(res["final"][i, j, li, si], one.final)


def test_second_sweep_with_new_values_compiles_nothing(pca):
    kw = dict(ONE, chunk_size=64)
    aj.sweep(pca, aj.Grid(momentum=[0.1, 0.5], delay=[0, 20], lr=1e-3, seed=range(3)), **kw)
    before = aj.compile_count()
    res = aj.sweep(
        pca, aj.Grid(momentum=[0.3, 0.95], delay=[4, 11], lr=7e-3, seed=range(3, 6)), **kw
    )
    assert aj.compile_count() == before
    # and the new values were really used
    one = aj.simulate(pca, momentum=0.95, lr=7e-3, delay=11, seed=5, **ONE)
    np.testing.assert_array_equal(res["error"][1, 1, 2], one.error)


# each chunk size is one more compile: 7 (which leaves a short last chunk) runs by default
@pytest.mark.parametrize(
    "chunk", [pytest.param(1, marks=pytest.mark.slow), 7, pytest.param(33, marks=pytest.mark.slow)]
)
def test_bit_identical_whatever_the_chunk_size(pca, chunk):
    grid = aj.Grid(momentum=[0.5, 0.9], delay=[0, 5, 17], lr=3e-3, seed=range(11))
    kw = dict(steps=200, record_every=20, devices=jax.devices()[:1])
    full = aj.sweep(pca, grid, **kw)
    part = aj.sweep(pca, grid, chunk_size=chunk, **kw)
    for name in full.data:
        np.testing.assert_array_equal(full[name], part[name])


# each device count is one more compile: 3 (11 seeds do not split evenly) runs by default; the
# one-device run is the chunk-size test's
@pytest.mark.parametrize(
    "n_devices",
    [pytest.param(2, marks=pytest.mark.slow), 3, pytest.param(4, marks=pytest.mark.slow)],
)
def test_bit_identical_whatever_the_device_count(pca, n_devices):
    grid = aj.Grid(momentum=[0.5, 0.9], delay=[0, 5, 17], lr=3e-3, seed=range(11))
    kw = dict(steps=200, record_every=20)
    one = aj.sweep(pca, grid, devices=jax.devices()[:1], **kw)
    many = aj.sweep(pca, grid, devices=jax.devices()[:n_devices], **kw)
    assert many.attrs["timing"]["devices"] == n_devices
    for name in one.data:
        np.testing.assert_array_equal(one[name], many[name])


def test_sharding_over_hyperparameters_when_seeds_are_few(pca):
    grid = aj.Grid(momentum=[0.1, 0.5, 0.9], delay=[0, 3, 8], lr=3e-3, seed=0)
    one = aj.sweep(pca, grid, steps=100, record_every=10, devices=jax.devices()[:1])
    many = aj.sweep(
        pca, grid, steps=100, record_every=10, devices=jax.devices()[:4], chunk_size=1000
    )
    assert many.attrs["timing"]["devices"] == 4
    np.testing.assert_array_equal(one["error"], many["error"])


def test_record_interval_does_not_change_the_trajectory(pca):
    # delay 5 over 300 steps, every step recorded: the float32 test's engine
    fine = aj.simulate(pca, momentum=0.8, lr=3e-3, delay=5, seed=9, steps=300, record_every=1)
    coarse = aj.simulate(pca, momentum=0.8, lr=3e-3, delay=5, seed=9, steps=300, record_every=30)
    np.testing.assert_array_equal(fine.error[::30], coarse.error)
    np.testing.assert_array_equal(fine.final, coarse.final)


def test_grid_points_sharing_a_seed_share_data(pca):
    """Common random numbers: grid points that share a seed see the same stream.

    Two grid points with equal settings differ only by position in the batch,
    so with shared data they must agree exactly; other seeds must differ.
    """
    res = aj.sweep(
        pca, aj.Grid(momentum=[0.5, 0.5], lr=3e-3, seed=[4, 5]), steps=60, record_every=10
    )
    err = res["error"]  # (momentum, seed, step)
    np.testing.assert_array_equal(err[0], err[1])
    assert not np.array_equal(err[0, 0], err[0, 1])
    # 300 steps: the float32 test's stream length, whose eager ops are compiled there
    assert not np.array_equal(aj.data_stream(pca, 4, 300), aj.data_stream(pca, 5, 300))


def test_diverging_trajectory_is_flagged_frozen_and_isolated(pca):
    grid = aj.Grid(momentum=[0.0, 0.9], delay=[0, 60], lr=2e-2, seed=range(4))
    res = aj.sweep(pca, grid, steps=400, record_every=20, norm_bound=10.0)
    div = res["diverged_at"]
    assert (div[1, 1] > 0).all()  # μ = 0.9, τ = 60 is far past the stability boundary
    assert (div[0, 0] == -1).all()
    assert np.isfinite(res["error"]).all() and np.isfinite(res["final"]).all()
    assert (np.linalg.norm(res["final"][1, 1], axis=-1) <= 10.0).all()
    # frozen: the records after the divergence step no longer change
    steps = res.coords["step"]
    for s in range(4):
        after = steps >= div[1, 1, s]
        assert np.ptp(res["error"][1, 1, s][after]) == 0.0
    # isolated: the healthy trajectories equal a sweep without the diverging ones (every point
    # healthy; the same batch shape, so the same compiled engine)
    alone = aj.sweep(
        pca,
        aj.Grid(momentum=[0.0, 0.0], delay=[0, 0], lr=2e-2, seed=range(4)),
        steps=400,
        record_every=20,
        buffer=61,
        norm_bound=10.0,
    )
    assert (alone["diverged_at"] == -1).all()
    np.testing.assert_array_equal(alone["error"][0, 0], res["error"][0, 0])


def test_non_finite_update_is_caught_even_with_infinite_bound(pca):
    t = aj.simulate(pca, momentum=0.0, lr=50.0, delay=0, norm_bound=np.inf, **ONE)
    assert t.diverged_at > 0
    assert np.all(np.isfinite(t.final))


def test_float64_run(pca, x64):
    res = aj.sweep(
        pca, aj.Grid(momentum=[0.5], delay=[2], lr=3e-3, seed=range(2)), steps=50, record_every=10
    )
    assert res["error"].dtype == np.float64
    assert res.attrs["dtype"] == "float64"


def test_a_trace_reads_its_metrics_by_key_like_results(pca):
    trace = aj.simulate(pca, momentum=0.5, lr=5e-4, delay=2, seed=0, **ONE)
    np.testing.assert_array_equal(trace["error"], trace.error)
    np.testing.assert_array_equal(trace["diverged_at"], trace.diverged_at)
    assert trace[1] is trace.diverged_at  # positions still index the tuple
    with pytest.raises(
        KeyError, match=r"no field or metric 'errror'; metrics: \['error', 'norm'\]"
    ):
        trace["errror"]
