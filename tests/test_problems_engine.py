"""The new problems through the engine: theory's stability boundary, Adam on logistic, an MLP that learns."""

import numpy as np
import optax
import pytest

import asyncjax as aj
from asyncjax import theory

LAM = np.array([1.0, 0.4, 0.1])
BOUNDARY_CASES = [(0.0, 0.05), (0.5, 0.02), (0.9, 0.01)]


def _boundary(momentum, lr):
    """τ*, the spectral radii at τ* and τ* + 1, and the steps the case needs (see the test)."""
    tau_star = int(theory.stability_threshold(momentum, lr * LAM[0]))
    radii = [theory.spectral_radius(momentum, lr * LAM[0], t) for t in (tau_star, tau_star + 1)]
    steps = int(np.ceil(np.log(1e4) / min(1 - radii[0], radii[1] - 1) / 100)) * 100 + 2000
    return tau_star, radii, steps


@pytest.fixture(scope="module")
def boundary_sweep():
    """Every case in one sweep (one compiled program instead of one per case): the cases' μ,
    η and delays are values of the grid's axes, run as long as the longest case needs and
    recorded every 100 steps (every case's step count is a multiple of 100), so that each
    case reads its own trajectories at its own step count. (A trajectory that overflows later
    is frozen by the engine; the records a case reads come before.)"""
    cases = [_boundary(*case) for case in BOUNDARY_CASES]
    delays = sorted({t for tau_star, _, _ in cases for t in (tau_star, tau_star + 1)})
    momenta, lrs = zip(*BOUNDARY_CASES)
    return aj.sweep(
        aj.Quadratic(LAM, noise=0.0),
        aj.Grid(momentum=list(momenta), lr=list(lrs), delay=delays),
        steps=max(steps for *_, steps in cases),
        record_every=100,
        norm_bound=np.inf,
    )


@pytest.mark.parametrize("momentum,lr", BOUNDARY_CASES)
def test_quadratic_diverges_exactly_past_the_stability_boundary(boundary_sweep, momentum, lr):
    """Noise-free quadratic: each mode is x_{k+1} = (1+μ)x_k − μx_{k−1} − ηλ x_{k−τ}, theory's recurrence.

    τ* is the largest stable delay; the top eigenvalue binds. At τ* the iterate must shrink and at
    τ* + 1 grow: the run is long enough that the spectral radius on either side (checked below)
    moves the binding mode's amplitude by a factor 10⁴, which leaves room for the start's small
    projection on the slowest root (the error is asserted to move by only 10²).
    """
    tau_star, radii, steps = _boundary(momentum, lr)
    assert radii[0] < 1 < radii[1]
    case = boundary_sweep.sel(momentum=momentum, lr=lr, delay=[tau_star, tau_star + 1])
    assert case.coords["step"][steps // 100] == steps
    err = case["error"]  # (delay, step): f − f* = ½ Σ λ x²
    assert err[0, steps // 100] < 1e-2 * err[0, 0], f"τ*={tau_star} should be stable"
    assert err[1, steps // 100] > 1e2 * err[1, 0], f"τ*+1={tau_star + 1} should diverge"


def test_adam_on_logistic_digits_learns_and_recompiles_nothing():
    pytest.importorskip("sklearn")
    prob = aj.Logistic.from_dataset(aj.datasets.digits())
    opt = aj.optim.from_optax(optax.adam)
    kw = dict(optimizer=opt, steps=200, record_every=50, buffer=9)
    res = aj.sweep(prob, aj.Grid(lr=1e-2, b1=[0.5, 0.9], delay=[0, 8], seed=range(2)), **kw)
    err = res["error"]  # (b1, delay, seed, step)
    assert np.all(err[:, 0, :, -1] < 0.5 * err[:, 0, :, 0])  # loss more than halved at τ = 0
    assert np.all(res["accuracy"][:, 0, :, -1] > 0.85)
    before = aj.compile_count()
    aj.sweep(prob, aj.Grid(lr=3e-2, b1=[0.0, 0.8], delay=[3, 5], seed=range(2)), **kw)
    assert aj.compile_count() == before


def test_mlp_on_digits_reaches_93_percent_with_heavy_ball():
    pytest.importorskip("sklearn")
    prob = aj.MLP(aj.datasets.digits())
    res = aj.sweep(
        prob, aj.Grid(momentum=0.9, lr=0.05, delay=0, seed=range(4)), steps=400, record_every=100
    )
    acc = res["accuracy"][..., -1]  # (seed,)
    assert acc.min() >= 0.93, acc
    assert np.all(res["error"][..., -1] < 0.3 * res["error"][..., 0])
    assert (res["diverged_at"] == -1).all()


def test_mlp_memory_plan_counts_every_parameter_leaf():
    """A 151-deep ring of a 2,410-parameter MLP for 8,000 trajectories is ~11.6 GB: it must be chunked."""
    pytest.importorskip("sklearn")
    from asyncjax.sweep.memory import chunk_for, device_budget, shapes, trajectory_bytes

    prob = aj.MLP(aj.datasets.digits())
    opt = aj.optim.heavy_ball()
    hp = {"momentum": np.zeros(1), "lr": np.ones(1), "delay": np.zeros(1)}
    sizes = shapes(prob, opt, hp, None, fixed=False)
    assert sizes.param_bytes == 2410 * 4
    spec = aj.Spec(prob, opt, aj.get_delay_model("constant"), 1000, 100, 151, fixed_init=False)
    per = trajectory_bytes(spec, sizes)
    assert per * 8000 > 11.6e9  # the ring alone: 151 × 2410 × 4 B × 8000

    import jax

    chunk = chunk_for(per, device_budget(jax.local_devices()[0]), 1)
    assert chunk * per <= 256 << 20  # a chunk fits the CPU budget
    assert chunk < 8000
