"""The generic engine: eq. 5 bit for bit, optimizers against NumPy loops with a delay, optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _quad import Quad

import asyncjax as aj
from asyncjax._reference import eq5 as reference
from asyncjax.delays import get_delay_model


def test_eq5_through_engine_is_bit_identical_to_the_reference_on_fig1_workload(pca):
    """Fig. 1's grid (5 μ × delays 0…150, η = 5e-4) from the saddle, against the pre-engine kernel."""
    momenta, delays = [0.7, 0.8, 0.85, 0.9, 0.95], list(range(0, 151, 10))
    grid = aj.Grid(momentum=momenta, delay=delays, lr=5e-4, seed=range(6))
    # One device, so both run the same batch shape: XLA on CPU may contract a·b + c into
    # one rounding differently for other shapes (see test_results_across_devices_and_chunks).
    res = aj.sweep(
        pca, grid, steps=3000, record_every=250, buffer=151, devices=jax.local_devices()[:1]
    )
    mu, tau = np.meshgrid(momenta, delays, indexing="ij")
    ops = pca.operands()
    cfg = reference.SimConfig("gaussian", 3000, 250, 151, get_delay_model("constant"))
    ref = reference.jitted_batch(cfg)(
        ops,
        reference.Params(
            *(jnp.asarray(a.ravel(), ops.scale.dtype) for a in (mu, np.full(mu.shape, 5e-4), tau))
        ),
        jnp.arange(6, dtype=jnp.int32),
        jnp.asarray(pca.default_init(), ops.scale.dtype),
        1e3,
    )
    ref_err = np.moveaxis(np.asarray(ref.error).reshape(6, 5, 16, -1), 0, 2)  # (μ, τ, seed, step)
    np.testing.assert_array_equal(res["error"], ref_err)
    np.testing.assert_array_equal(
        res["norm"], np.moveaxis(np.asarray(ref.norm).reshape(6, 5, 16, -1), 0, 2)
    )
    np.testing.assert_array_equal(
        res["diverged_at"], np.moveaxis(np.asarray(ref.diverged_at).reshape(6, 5, 16), 0, 2)
    )
    assert (res["diverged_at"] >= 0).any() and (
        res["diverged_at"] == -1
    ).any()  # both kinds are compared


# ----------------------------------------------------------- NumPy references
def _loop(lam, noise, zs, taus, x0, lr, mu, kind):
    """Heavy ball / Nesterov / optax-style velocity SGD in plain NumPy, float64, with staleness taus."""
    x, x_prev, t = x0.copy(), x0.copy(), np.zeros_like(x0)
    reads = [x0.copy()]  # read point of step j (history filled with x0)
    xs = [x0.copy()]
    for k, (z, tau) in enumerate(zip(zs, taus)):
        stale = reads[max(k - tau, 0)]
        g = lam * stale + noise * z
        if kind == "velocity":  # optax.sgd(momentum): t = g + μ t; x -= η t
            t = g + mu * t
            x_new = x - lr * t
        elif kind == "velocity_nesterov":  # optax.sgd(nesterov=True): x -= η (g + μ t_new)
            t = g + mu * t
            x_new = x - lr * (g + mu * t)
        else:
            x_new = x + mu * (x - x_prev) - lr * g
        x_prev, x = x, x_new
        reads.append(x + mu * (x - x_prev) if kind == "nesterov" else x.copy())
        xs.append(x.copy())
    return np.array(xs), np.array(reads)


LAM, NOISE = np.array([1.0, 0.5, 0.1]), 0.3


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


OPTIMIZERS = {
    "heavy_ball": aj.optim.heavy_ball(),
    "nesterov": aj.optim.nesterov(),
    "velocity": aj.optim.from_optax(optax.sgd),
    "velocity_nesterov": aj.optim.from_optax(optax.sgd, nesterov=True),
}
# the runs of both tests below: a constant delay of 4 (a ring of 5), 200 steps, every step recorded
STEPS, DELAY = 200, 4


# With a constant delay each optimizer's engine is the one test_optax_sgd_is_heavy_ball… compiles;
# random delays are another law for the same optimizers, one compile each: heavy ball's runs by
# default, the others in the slow set.
@pytest.mark.parametrize(
    "kind,model,param",
    [(kind, "constant", DELAY) for kind in OPTIMIZERS]
    + [("heavy_ball", "uniform", 6)]
    + [
        pytest.param(kind, "uniform", 6, marks=pytest.mark.slow)
        for kind in OPTIMIZERS
        if kind != "heavy_ball"
    ],
)
def test_optimizers_follow_numpy_loops_with_delay(x64, kind, model, param):
    prob = Quad(LAM, NOISE)
    optimizer = OPTIMIZERS[kind]
    steps, mu, lr = STEPS, 0.6, 0.05
    tr = aj.simulate(
        prob,
        optimizer=optimizer,
        delay_model=model,
        momentum=mu,
        lr=lr,
        delay=param,
        seed=7,
        steps=steps,
        record_every=1,
        record_params=True,
    )
    zs = aj.data_stream(prob, 7, steps)
    taus = aj.delay_stream(model, param, 7, steps, get_delay_model(model).buffer_for(param))
    xs, _ = _loop(LAM, NOISE, zs, taus, np.ones(3), lr, mu, kind)
    np.testing.assert_allclose(tr.params, xs, rtol=1e-10, atol=1e-12)
    assert np.abs(xs[-1]).max() < 0.5 * np.abs(xs[0]).max()  # it optimised


def test_optax_sgd_is_heavy_ball_and_optax_nesterov_follows_the_look_ahead(x64):
    """Same gradients, two parametrisations: optax's iterate is heavy ball's, and Nesterov's read point."""
    prob = Quad(LAM, NOISE)
    kw = dict(
        momentum=0.8, lr=0.03, delay=DELAY, seed=1, steps=STEPS, record_every=1, record_params=True
    )
    hb = aj.simulate(prob, optimizer=OPTIMIZERS["heavy_ball"], **kw)
    sgd = aj.simulate(prob, optimizer=OPTIMIZERS["velocity"], **kw)
    np.testing.assert_allclose(sgd.params, hb.params, rtol=1e-9, atol=1e-12)
    nes = aj.simulate(prob, optimizer=OPTIMIZERS["nesterov"], **kw)
    onest = aj.simulate(prob, optimizer=OPTIMIZERS["velocity_nesterov"], **kw)
    x = nes.params
    look_ahead = np.concatenate([x[:1], x[1:] + 0.8 * (x[1:] - x[:-1])])
    np.testing.assert_allclose(onest.params, look_ahead, rtol=1e-9, atol=1e-12)


def test_negative_momentum_is_accepted_and_used(x64):
    prob = Quad(LAM, 0.0)
    a = aj.simulate(prob, momentum=-0.5, lr=0.1, steps=20, record_every=1, record_params=True)
    xs, _ = _loop(
        LAM, 0.0, np.zeros((20, 3)), np.zeros(20, int), np.ones(3), 0.1, -0.5, "heavy_ball"
    )
    np.testing.assert_allclose(a.params, xs, rtol=1e-12)


def test_adam_sweeps_traced_hyperparameters_without_recompiling():
    prob = Quad(LAM, NOISE)
    opt = aj.optim.from_optax(optax.adam)
    kw = dict(optimizer=opt, steps=60, record_every=20, chunk_size=64, buffer=9)
    aj.sweep(prob, aj.Grid(lr=[1e-2, 3e-2], b1=[0.0, 0.9], delay=[0, 8], seed=range(3)), **kw)
    before = aj.compile_count()
    res = aj.sweep(
        prob,
        aj.Grid(lr=[2e-2, 5e-2], b1=[0.5, 0.8], delay=[2, 5], seed=range(3)),
        **{**kw, "optimizer": aj.optim.from_optax(optax.adam)},
    )
    assert aj.compile_count() == before
    one = aj.simulate(
        prob, optimizer=opt, lr=5e-2, b1=0.8, delay=5, seed=2, steps=60, record_every=20, buffer=9
    )
    np.testing.assert_allclose(res["error"][1, 1, 1, 2], one.error, rtol=1e-6)


def test_unknown_axes_and_optax_names_fail_before_compiling():
    prob = Quad(LAM, NOISE)
    before = aj.compile_count()
    with pytest.raises(ValueError, match=r"unknown grid axis 'b3'.*allowed: lr, b1, b2, eps"):
        aj.sweep(
            prob,
            aj.Grid(lr=1e-3, b3=[0.1, 0.2]),
            optimizer=aj.optim.from_optax(optax.adam),
            steps=10,
            record_every=5,
        )
    with pytest.raises(
        ValueError, match=r"unknown optax optimizer 'optax.adamm'; did you mean optax.adam"
    ):
        aj.optim.get_optimizer("optax.adamm")
    with pytest.raises(ValueError, match=r"optax.adam has no argument 'nesterov_typo'"):
        aj.optim.from_optax(optax.adam, nesterov_typo=True)
    with pytest.raises(ValueError, match=r"eps must be >= 0; got -1.0"):
        aj.sweep(
            prob,
            aj.Grid(lr=1e-3, eps=[1e-8, -1.0]),
            optimizer="optax.adam",
            steps=10,
            record_every=5,
        )
    with pytest.raises(ValueError, match=r"b1 must lie in \[0, 1\); got 1.5"):
        aj.sweep(
            prob, aj.Grid(lr=1e-3, b1=[0.5, 1.5]), optimizer="optax.adam", steps=10, record_every=5
        )
    with pytest.raises(ValueError, match=r"the grid must set lr"):
        aj.sweep(prob, aj.Grid(momentum=[0.5]), steps=10, record_every=5)
    with pytest.raises(ValueError, match=r"lr must be numeric, got the string"):
        aj.sweep(prob, aj.Grid(lr="1e-3"), steps=10, record_every=5)
    assert aj.compile_count() == before


def test_only_numeric_optax_arguments_become_axes():
    """Dtypes, masks and random keys are options, never traced axes (they would crash inside jit)."""
    assert set(aj.optim.from_optax(optax.sgd).hp_names) == {"lr", "momentum"}
    assert "mu_dtype" not in aj.optim.from_optax(optax.adam).hp_names
    assert {"mask", "mu_dtype"}.isdisjoint(aj.optim.from_optax(optax.adamw).hp_names)
    assert "weight_decay" in aj.optim.from_optax(optax.adamw).hp_names
    assert {"key", "seed"}.isdisjoint(aj.optim.from_optax(optax.noisy_sgd).hp_names)
    with pytest.raises(ValueError, match=r"unknown grid axis 'mu_dtype'"):
        aj.sweep(
            Quad(LAM, NOISE),
            aj.Grid(lr=1e-3, mu_dtype=[1.0, 2.0]),
            optimizer=aj.optim.from_optax(optax.adam),
            steps=10,
            record_every=5,
        )


def test_sweep_axes_come_from_the_parts():
    """An optax hyperparameter is a grid axis of the results, in grid order."""
    prob = Quad(LAM, NOISE)
    res = aj.sweep(  # the adam test's sweep settings, axes in another order: no compile of its own
        prob,
        aj.Grid(b1=[0.5, 0.8], lr=[1e-2, 3e-2], delay=[0, 8], seed=range(3)),
        optimizer=aj.optim.from_optax(optax.adam),
        steps=60,
        record_every=20,
        chunk_size=64,
        buffer=9,
    )
    assert res["error"].shape == (2, 2, 2, 3, 4)
    assert res.dims["error"] == ("b1", "lr", "delay", "seed", "step")
    assert res.attrs["optimizer"]["name"] == "optax.adam"
