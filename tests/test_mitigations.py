"""Staleness mitigations against NumPy loops on a quadratic, and their effect on Figure 1."""

import jax
import numpy as np
import optax
import pytest
from _quad import Quad

import asyncjax as aj
from asyncjax import analysis, delays, mitigations

LAM, NOISE = np.array([1.0, 0.5, 0.1]), 0.3


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _loop(
    zs, taus, lr, mu, mitigation, param, *, optimizer="heavy_ball", b1=0.9, b2=0.999, eps=1e-8
):
    """The optimizer with a mitigation in plain NumPy (float64), one trajectory, staleness taus.

    heavy_ball: x_{k+1} = x_k + μ(x_k − x_{k−1}) − η g_k; nesterov: g at the look-ahead; adam: optax's.
    """
    x0 = np.ones(3)
    x, xp = x0.copy(), x0.copy()
    m, v, t = np.zeros(3), np.zeros(3), 0
    reads, xs = [x0.copy()], [x0.copy()]
    for k, (z, tau) in enumerate(zip(zs, taus)):
        tau = min(tau, k)  # before step τ the read point is the start, k updates old
        stale = reads[k - tau]
        g = LAM * stale + NOISE * z
        factor = min(1.0, param / tau) if tau > 0 else 1.0
        if mitigation == "dc_asgd":
            g = g + param * g * g * (x - stale)
        dropped = mitigation == "drop_stale" and tau > param
        if optimizer == "adam":
            if not dropped:
                t += 1
                m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
                u = -lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
                x = x + (factor if mitigation == "delay_adaptive" else 1.0) * u
        elif not dropped:
            if mitigation == "delay_adaptive":
                g = factor * g
            x, xp = x + mu * (x - xp) - lr * g, x
        reads.append(x + mu * (x - xp) if optimizer == "nesterov" else x.copy())
        xs.append(x.copy())
    return np.array(xs)


AXIS = {"delay_adaptive": "adaptive_c", "dc_asgd": "dc_lambda", "drop_stale": "max_staleness"}
PARAM = {"delay_adaptive": 2.0, "dc_asgd": 0.8, "drop_stale": 4.0}


def _slow(*values):
    return pytest.param(*values, marks=pytest.mark.slow)


# Each case is its own compiled engine. Every mitigation keeps a default case with momentum, and
# every optimizer one with a mitigation; adam keeps delay_adaptive (it scales the update, not the
# gradient) and drop_stale (a dropped step does not advance its count). heavy_ball with drop_stale
# is also test_drop_stale_with_the_worker_clock_follows_numpy. The rest run in the slow set.
@pytest.mark.parametrize(
    "optimizer,mitigation",
    [
        ("heavy_ball", "delay_adaptive"),
        ("heavy_ball", "dc_asgd"),
        _slow("heavy_ball", "drop_stale"),
        _slow("nesterov", "delay_adaptive"),
        ("nesterov", "dc_asgd"),
        ("nesterov", "drop_stale"),
        ("adam", "delay_adaptive"),
        _slow("adam", "dc_asgd"),
        ("adam", "drop_stale"),
    ],
)
def test_mitigations_follow_numpy_loops(x64, mitigation, optimizer):
    """Uniform delays on {0, …, 8}: every mitigation acts on some steps and not on others."""
    prob = Quad(LAM, NOISE, tag="test_quad_mitigations")
    steps, seed, mu, lr = 300, 4, 0.6, 0.05
    opt = {
        "heavy_ball": aj.optim.heavy_ball(),
        "nesterov": aj.optim.nesterov(),
        "adam": aj.optim.from_optax(optax.adam),
    }[optimizer]
    hp = dict(lr=lr) if optimizer == "adam" else dict(lr=lr, momentum=mu)
    tr = aj.simulate(
        prob,
        optimizer=opt,
        delay_model="uniform",
        mitigation=mitigation,
        max_delay=8,
        seed=seed,
        steps=steps,
        record_every=1,
        record_params=True,
        **hp,
        **{AXIS[mitigation]: PARAM[mitigation]},
    )
    zs = aj.data_stream(prob, seed, steps)
    taus = aj.delay_stream("uniform", 8, seed, steps, 9)
    ref = _loop(zs, taus, lr, mu, mitigation, PARAM[mitigation], optimizer=optimizer)
    np.testing.assert_allclose(tr.params, ref, rtol=1e-9, atol=1e-12)
    plain = _loop(zs, taus, lr, mu, None, 0.0, optimizer=optimizer)
    assert np.abs(ref - plain).max() > 1e-3  # the mitigation changed the trajectory
    loss = lambda x: 0.5 * np.sum(LAM * x * x)  # noqa: E731
    assert loss(ref[-1]) < 0.5 * loss(ref[0])  # and it still optimises


def test_delay_adaptive_scales_the_gradient_for_momentum_and_the_update_for_adaptive_methods():
    assert (
        mitigations.delay_adaptive().bind(aj.optim.heavy_ball()).describe()["target"] == "gradient"
    )
    assert (
        mitigations.delay_adaptive().bind(aj.optim.from_optax(optax.sgd)).describe()["target"]
        == "gradient"
    )
    assert (
        mitigations.delay_adaptive().bind(aj.optim.from_optax(optax.adam)).describe()["target"]
        == "update"
    )
    assert (
        mitigations.delay_adaptive("update").bind(aj.optim.heavy_ball()).describe()["target"]
        == "update"
    )


def test_drop_stale_with_the_worker_clock_follows_numpy(x64):
    """The mitigation reads the clock's τ_k (the memoryless clock then tracks each worker's read step)."""
    prob = Quad(LAM, NOISE, tag="test_quad_mitigations")
    steps, seed, m = 300, 2, 6
    model = delays.workers("exponential", straggler=5.0)
    tr = aj.simulate(
        prob,
        delay_model=model,
        mitigation="drop_stale",
        workers=m,
        max_staleness=8,
        momentum=0.5,
        lr=0.05,
        seed=seed,
        steps=steps,
        record_every=1,
        record_params=True,
    )
    taus = aj.delay_stream(model, m, seed, steps, m)
    assert (taus > 8).sum() > 10  # some updates are dropped
    ref = _loop(aj.data_stream(prob, seed, steps), taus, 0.05, 0.5, "drop_stale", 8)
    np.testing.assert_allclose(tr.params, ref, rtol=1e-9, atol=1e-12)


ONE_DEVICE = jax.local_devices()[:1]
# One run for the module's sweeps on the PCA problem: each (mitigation, delay model) compiles once.
# Chunks of 18 trajectories (6 points x 3 seeds), so sweeps of 18 and of 36 run one batch shape
# (XLA on CPU may round a·b + c differently for other shapes, and these comparisons are bitwise).
RUN = dict(steps=300, record_every=50, buffer=8, chunk_size=18, devices=ONE_DEVICE)
INACTIVE = {"delay_adaptive": 1e9, "dc_asgd": 0.0, "drop_stale": np.inf}
ACTIVE = {"delay_adaptive": 2.0, "dc_asgd": 0.8, "drop_stale": 2}


def _grid(**axes):
    """Constant delays 1, 4 and 7 (round robin of 2, 5 and 8 workers), μ = 0 and 0.9, 3 seeds."""
    return aj.Grid(delay=[1, 4, 7], momentum=[0.0, 0.9], lr=5e-3, **axes, seed=range(3))


@pytest.fixture(scope="module")
def mitigated():
    """No mitigation, and each mitigation at an inactive and an active value (its last axis but
    the seed's): one compiled engine each, shared by the tests below."""
    pca = aj.StreamingPCA([4.0, 3.0, 2.0, 1.0])
    out = {None: aj.sweep(pca, _grid(), **RUN)}
    for name, axis in AXIS.items():
        values = {axis: [INACTIVE[name], ACTIVE[name]]}
        out[name] = aj.sweep(pca, _grid(**values), mitigation=name, **RUN)
    return out


@pytest.mark.parametrize(
    "model",
    [
        delays.workers("constant"),
        # the per-trajectory clock's round robin is pinned bit for bit in test_workers, and a
        # mitigation reading a random clock's τ_k in test_drop_stale_with_the_worker_clock…;
        # this combination (6 s of compile) runs in the slow set
        pytest.param(delays.workers("lognormal", shape=0.0), marks=pytest.mark.slow),
    ],
    ids=["shared-clock", "per-trajectory-clock"],
)
def test_a_mitigation_sees_the_same_staleness_from_round_robin_workers_as_from_constant_delay(
    pca, mitigated, model
):
    """τ_k = min(k, M − 1) either way, so drop-stale drops the same updates: bit for bit."""
    ref = mitigated["drop_stale"]
    values = dict(momentum=[0.0, 0.9], lr=5e-3, max_staleness=[np.inf, 2], seed=range(3))
    grid = aj.Grid(workers=[2, 5, 8], **values)
    res = aj.sweep(pca, grid, delay_model=model, mitigation="drop_stale", **RUN)
    np.testing.assert_array_equal(res["error"], ref["error"])
    kept, dropped = res["error"][2, 1, 0], res["error"][2, 1, 1]  # M = 8, μ = 0.9: τ = 7 > 2
    assert np.abs(dropped - kept).max() > 1e-3


def test_an_inactive_mitigation_is_bit_identical_to_none(mitigated):
    """c = 1e9 never scales, λ = 0 adds zero, an infinite bound drops nothing: the same trajectories."""
    base = mitigated[None]
    for mitigation in AXIS:
        res = mitigated[mitigation]
        assert res.dims["error"] == ("delay", "momentum", AXIS[mitigation], "seed", "step")
        np.testing.assert_array_equal(res["error"][:, :, 0], base["error"], err_msg=mitigation)
        # the active value changes them (so the comparison above could fail)
        assert np.abs(res["error"][:, :, 1] - base["error"]).max() > 1e-4, mitigation
        assert res.attrs["mitigation"]["name"] == mitigation


def test_mitigation_parameters_are_traced_grid_axes(pca, mitigated):
    """Other values of every axis compile nothing (the first sweep is the module's dc_asgd sweep,
    so it compiles nothing either unless the caches were emptied since)."""
    aj.sweep(
        pca, _grid(dc_lambda=[INACTIVE["dc_asgd"], ACTIVE["dc_asgd"]]), mitigation="dc_asgd", **RUN
    )
    before = aj.compile_count()
    res = aj.sweep(
        pca,
        aj.Grid(
            delay=[2, 3, 6], momentum=[0.5, 0.7], lr=1e-3, dc_lambda=[0.5, 2.0], seed=[3, 4, 5]
        ),
        mitigation="dc_asgd",
        **RUN,
    )
    assert aj.compile_count() == before
    assert res.dims["error"] == ("delay", "momentum", "dc_lambda", "seed", "step")
    assert not np.array_equal(res["error"], mitigated["dc_asgd"]["error"])  # new values were used


def test_delay_adaptive_step_raises_the_threshold_delay_on_figure_1(pca):
    """Fig. 1's problem at μ = 0.9 (η = 5e-4, 30 000 steps, delays 0…150, 16 seeds).

    Without the mitigation (c = 1e9 never scales) the threshold is ~36 (the preset measures 37.6). With
    η_k = η·min(1, c/τ_k) the linearised delay-stability condition τ·η_k·a < const holds for every τ
    once c·η·a does, so the error no longer rises where it did: c = 5 moves the threshold to ~100 and
    c = 10 past the largest delay swept (censored). The asserted margins are far outside the
    bootstrap intervals (±2 and ±20 delays at this size).
    """
    ds = np.arange(0, 151, 10)
    res = aj.sweep(
        pca,
        aj.Grid(adaptive_c=[1e9, 5.0, 10.0], delay=ds, momentum=0.9, lr=5e-4, seed=range(16)),
        steps=30_000,
        record_every=250,
        mitigation="delay_adaptive",
    )
    thr = analysis.threshold_delays(analysis.late_average(res), ds.astype(float), n_boot=200)
    base, c5, c10 = thr.threshold
    assert 25 < base < 50 and not thr.censored[0]
    assert c5 > 2 * base and thr.ci_lo[1] > thr.ci_hi[0]
    assert c10 >= 150 and thr.censored[2]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            dict(mitigation="delay_adaptive"),
            r"the grid must set adaptive_c .* 'delay_adaptive' mitigation",
        ),
        (
            dict(mitigation="delay_adaptive", adaptive_c=[1.0, 0.0]),
            r"adaptive_c must be > 0; got 0\.0",
        ),
        (dict(mitigation="dc_asgd", dc_lambda=-0.1), r"dc_lambda must be >= 0; got -0\.1"),
        (
            dict(mitigation="drop_stale", max_staleness=np.nan),
            r"max_staleness contains a non-finite value",
        ),
        (
            dict(mitigation="drop_stale", adaptive_c=2.0),
            r"unknown grid axis 'adaptive_c'.*'drop_stale' mitigation",
        ),
        (dict(mitigation="damping"), r"unknown mitigation 'damping'"),
    ],
)
def test_bad_mitigation_settings_fail_before_compiling(pca, kwargs, match):
    before = aj.compile_count()
    mitigation = kwargs.pop("mitigation")
    with pytest.raises(ValueError, match=match):
        aj.sweep(
            pca,
            aj.Grid(lr=1e-3, delay=[0, 2], **kwargs),
            steps=10,
            record_every=5,
            mitigation=mitigation,
        )
    assert aj.compile_count() == before
