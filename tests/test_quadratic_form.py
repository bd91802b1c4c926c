"""QuadraticForm and the Ringmaster paper's quadratic: against NumPy, closed forms and Quadratic.

Exactness is checked in float64 (``jax.enable_x64``); the engine runs through the public
``simulate`` and ``sweep``.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import asyncjax as aj
from asyncjax import _rng
from asyncjax.config import ConfigError, parse_config
from asyncjax.problems import QuadraticForm, banded_matvec, ringmaster_quadratic


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _random_bands(rng, d, k):
    """K = k diagonals of a symmetric, diagonally dominant (so positive-definite) banded matrix."""
    off = [rng.uniform(-1.0, 1.0, d - j) for j in range(1, k)]
    main = 2.0 * k + rng.uniform(0.0, 1.0, d)
    return [main] + off


def _dense(bands):
    d = len(bands[0])
    A = np.diag(np.asarray(bands[0], float))
    for j, band in enumerate(bands[1:], start=1):
        band = np.broadcast_to(np.asarray(band, float), (d - j,))
        A += np.diag(band, j) + np.diag(band, -j)
    return A


def _key(seed):
    return _rng.stream_keys(jnp.asarray([seed], jnp.int32), _rng.DATA_STREAM)[0]


def _pair(seed=0, d=7, k=3, noise=0.0, noise_kind="independent"):
    """The same random problem, banded and dense."""
    rng = np.random.default_rng(seed)
    bands = _random_bands(rng, d, k)
    b = rng.standard_normal(d)
    x0 = rng.standard_normal(d)
    kw = dict(b=b, noise=noise, noise_kind=noise_kind, init=x0)
    return QuadraticForm(diagonals=bands, **kw), QuadraticForm(matrix=_dense(bands), **kw)


# ------------------------------------------------------------------ linear algebra
@pytest.mark.parametrize("d,k", [(1, 1), (5, 1), (6, 2), (9, 4), (4, 4), (40, 7)])
def test_banded_matvec_equals_the_dense_product(x64, d, k):
    rng = np.random.default_rng(d * 10 + k)
    bands = _random_bands(rng, d, k)
    padded = np.zeros((k, d))
    for j, band in enumerate(bands):
        padded[j, : d - j] = band
    x = rng.standard_normal(d)
    got = jax.jit(banded_matvec)(jnp.asarray(padded), jnp.asarray(x))  # one program, not op by op
    np.testing.assert_allclose(got, _dense(bands) @ x, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("storage", ["banded", "dense"])
def test_optimum_and_smoothness_against_numpy(storage):
    banded, dense = _pair(seed=1, d=9, k=3)
    q = banded if storage == "banded" else dense
    A = _dense(_random_bands(np.random.default_rng(1), 9, 3))  # what _pair built
    np.testing.assert_array_equal(q.to_dense(), A)
    x_star = np.linalg.solve(A, q.b)
    np.testing.assert_allclose(q.x_star, x_star, rtol=1e-12)
    assert q.f_star == pytest.approx(-0.5 * q.b @ x_star, rel=1e-12)
    lam = np.linalg.eigvalsh(A)
    assert q.L == pytest.approx(lam[-1], rel=1e-12)
    np.testing.assert_allclose(q.hessian_eigenvalues, lam, rtol=1e-10)
    with jax.enable_x64(True):
        ops = q.operands(jnp.float64)
        metrics = jax.jit(q.metrics)  # one program, not op by op
        for x in [q.x_star, np.zeros(q.d), np.random.default_rng(2).standard_normal(q.d)]:
            m = metrics(ops, jnp.asarray(x))
            f = 0.5 * x @ A @ x - q.b @ x
            assert float(m["error"]) == pytest.approx(f - q.f_star, rel=1e-10, abs=1e-13)
            g = A @ x - q.b
            assert float(m["grad_sq"]) == pytest.approx(g @ g, rel=1e-12, abs=1e-24)
            assert float(m["grad_norm"]) == pytest.approx(np.linalg.norm(g), rel=1e-12, abs=1e-12)


def test_singular_a_is_accepted_when_b_lies_in_its_range():
    """A = [[1, 1], [1, 1]] (rank 1): b ∝ (1, 1) is fine, b = (1, 0) makes f unbounded below."""
    for q in [
        QuadraticForm(matrix=[[1.0, 1.0], [1.0, 1.0]], b=[2.0, 2.0]),
        QuadraticForm(diagonals=[[1.0, 1.0], 1.0], b=[2.0, 2.0]),
    ]:
        np.testing.assert_allclose(q.x_star, [1.0, 1.0], rtol=1e-12)  # least norm: A⁺b
        assert q.f_star == pytest.approx(-2.0)
        assert q.L == pytest.approx(2.0)
        np.testing.assert_allclose(q.hessian_eigenvalues, [0.0, 2.0], atol=1e-12)
    with pytest.raises(
        ValueError, match=r"b must lie in the range of A .* null space has norm 0\.707"
    ):
        QuadraticForm(matrix=[[1.0, 1.0], [1.0, 1.0]], b=[1.0, 0.0])
    zero = QuadraticForm(diagonals=[0.0], d=3)  # f ≡ 0: allowed, L = 0
    assert zero.L == 0.0 and zero.f_star == 0.0


# ------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("storage", ["banded", "dense"])
@pytest.mark.parametrize("noise_kind", ["independent", "shared"])
def test_grad_against_numpy_and_the_noise_model(x64, storage, noise_kind):
    banded, dense = _pair(seed=3, d=8, k=3, noise=0.7, noise_kind=noise_kind)
    q = banded if storage == "banded" else dense
    A = q.to_dense()
    ops = q.operands(jnp.float64)

    @jax.jit  # one program: the five steps' draws and the gradients without and with noise
    def probe(ops, key, x):
        batches = q.sample(ops, key, jnp.arange(5, dtype=jnp.int32))
        grads = lambda sigma: jax.vmap(lambda z: q.grad(ops, x, z, {"noise": sigma}))(batches)
        return batches, grads(jnp.asarray(0.0)), grads(jnp.asarray(0.7))

    x = np.random.default_rng(5).standard_normal(8)
    batches, exact, noisy = map(np.asarray, probe(ops, _key(4), jnp.asarray(x)))
    assert batches.shape == ((5, 8) if noise_kind == "independent" else (5, 1))
    for i in range(5):
        np.testing.assert_allclose(exact[i], A @ x - q.b, rtol=1e-13, atol=1e-13)
        diff = noisy[i] - exact[i]
        np.testing.assert_allclose(diff, 0.7 * np.broadcast_to(batches[i], (8,)), atol=1e-13)
        if noise_kind == "shared":  # one scalar on every coordinate
            assert np.ptp(diff) < 1e-13 and abs(diff[0]) > 0


def test_shared_draws_are_standard_normal_scalars():
    q = ringmaster_quadratic(d=16)
    ops = q.operands(jnp.float32)
    z = np.asarray(jax.jit(q.sample)(ops, _key(0), jnp.arange(20_000, dtype=jnp.int32)))
    assert z.shape == (20_000, 1)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03  # 4 standard errors


def test_pure_functions_run_in_float32_under_vmap():
    for q in [_pair(seed=6, noise=0.3)[0], _pair(seed=6, noise=0.3, noise_kind="shared")[1]]:
        ops = q.operands(jnp.float32)
        assert all(a.dtype == jnp.float32 for a in ops)

        @jax.jit  # one program: the draws, the gradients and the metrics
        def run(ops, seeds, params, hp):
            keys = _rng.stream_keys(seeds, _rng.DATA_STREAM)
            batch = jax.vmap(lambda k: q.sample(ops, k, jnp.arange(1, dtype=jnp.int32))[0])(keys)
            g = jax.vmap(q.grad, in_axes=(None, 0, 0, 0))(ops, params, batch, hp)
            return g, jax.vmap(q.metrics, in_axes=(None, 0))(ops, params)

        params = jnp.tile(jnp.asarray(q.default_init(), jnp.float32), (3, 1))
        hp = {"noise": jnp.full((3,), 0.3, jnp.float32)}
        g, m = run(ops, jnp.arange(3, dtype=jnp.int32), params, hp)
        assert g.shape == (3, q.d) and g.dtype == jnp.float32
        assert set(m) == set(q.metric_docs) and all(v.shape == (3,) for v in m.values())


# ------------------------------------------------------------------- through the engine
# The next three tests run one static configuration (d = 10, two diagonals, shared noise, float64,
# every step recorded, a 4-deep ring), banded and dense: between them only values differ, so the
# engine compiles twice for the three instead of five times.
D, K = 10, 2
ENGINE = dict(steps=300, record_every=1, buffer=4, record_params=True)


def test_gradient_descent_matches_the_closed_form(x64):
    """No noise, μ = 0, no delay: x_k − x* = (I − ηA)^k (x_0 − x*), for banded and dense A.

    (η = 0.01 and λ_min(A) ≥ 2: the distance to x* shrinks at least 400-fold over the 300
    steps, as 60 steps at η = 0.05 did for the 6 x 6 matrix this test used before.)"""
    for q in _pair(seed=7, d=D, k=K, noise_kind="shared"):
        lr = 0.01
        trace = aj.simulate(q, momentum=0.0, lr=lr, delay=0, **ENGINE)
        A = q.to_dense()
        step = np.eye(q.d) - lr * A
        want = [q.default_init() - q.x_star]
        for _ in range(ENGINE["steps"]):  # the powers of (I − ηA) applied one by one
            want.append(step @ want[-1])
        dx = np.array(want)
        np.testing.assert_allclose(trace.params, q.x_star + dx, rtol=1e-12, atol=1e-12)
        assert trace.error[-1] < 1e-2 * trace.error[0]
        np.testing.assert_allclose(
            trace.error,
            0.5 * np.einsum("ki,ij,kj->k", dx, A, dx),
            rtol=1e-10,
            atol=1e-12 * trace.error[0],
        )


def test_banded_and_dense_give_the_same_trajectory(x64):
    """With noise, momentum and delay (independent noise runs banded against Quadratic below)."""
    banded, dense = _pair(seed=8, d=D, k=K, noise=0.2, noise_kind="shared")
    kw = dict(momentum=0.5, lr=0.01, delay=3, seed=5, **ENGINE)
    a = aj.simulate(banded, **kw)
    b = aj.simulate(dense, **kw)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-11, atol=1e-11)
    for name in banded.metric_docs:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-10, atol=1e-14)
    assert a.error[-1] < 1e-2 * a.error[0]


def test_shared_noise_moves_every_coordinate_by_the_same_amount(x64):
    """With μ = 0 and no delay, (x_k − η∇f(x_k) − x_{k+1})/η = σ ξ_k·1, ξ_k the step's one draw."""
    q = ringmaster_quadratic(d=D, noise=0.3)
    lr, steps = 0.5, ENGINE["steps"]
    trace = aj.simulate(q, momentum=0.0, lr=lr, delay=0, seed=2, **ENGINE)
    x = trace.params
    A = q.to_dense()
    noise = (x[:-1] - lr * (x[:-1] @ A - q.b) - x[1:]) / lr  # (steps, d)
    assert np.max(np.ptp(noise, axis=1)) < 1e-10
    xi = aj.data_stream(q, 2, steps)  # (steps, 1): the draws the trajectory used
    assert xi.shape == (steps, 1)
    np.testing.assert_allclose(noise[:, 0], 0.3 * xi[:, 0], rtol=1e-9, atol=1e-12)


def test_one_diagonal_with_independent_noise_is_quadratic_step_for_step(x64):
    """The same draws and the same gradient (XLA may fuse Ax − b + σz differently: not bit for bit)."""
    lam = np.array([2.0, 0.5, 0.1, 1.0])
    kw = dict(momentum=0.7, lr=0.1, delay=2, seed=9, steps=200, record_every=20, record_params=True)
    a = aj.simulate(aj.QuadraticForm(diagonals=[lam], noise=0.3), **kw)
    b = aj.simulate(aj.Quadratic(lam, noise=0.3), **kw)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a.error, b.error, rtol=1e-11)
    np.testing.assert_allclose(a.grad_norm, b.grad_norm, rtol=1e-11)


def test_sweep_over_noise_lr_and_delay_compiles_once_per_shape():
    """Inside the stability boundary (τ* = 6 at η = 0.05, μ = 0 for L = 4.29)."""
    q = QuadraticForm(diagonals=[[2.0, 3.0, 4.0, 1.0], 0.5], b=[1.0, 0.0, -1.0, 0.0], noise=0.1)
    grid = aj.Grid(noise=[0.0, 0.1], lr=[0.02, 0.05], delay=[0, 3], seed=range(3))
    res = aj.sweep(q, grid, steps=1000, record_every=250)
    assert res["error"].shape == (2, 2, 2, 3, 5)
    assert all(name in res for name in ("error", "grad_sq", "grad_norm"))
    assert (res["diverged_at"] == -1).all()
    assert np.all(res["error"][0, ..., -1] < 1e-8)  # no noise: converged
    assert np.all(res["error"][1, ..., -1] > 1e-6)  # noise: a stationary error
    np.testing.assert_allclose(res["grad_norm"] ** 2, res["grad_sq"], rtol=1e-5)
    before = aj.compile_count()
    other = QuadraticForm(diagonals=[[1.0, 1.0, 3.0, 2.0], -0.2], b=[0.0, 1.0, 0.0, 1.0])
    assert other == q and hash(other) == hash(q)
    grid = aj.Grid(noise=[0.3, 0.2], lr=[0.01, 0.04], delay=[3, 1], seed=range(3))  # same ring
    aj.sweep(other, grid, steps=1000, record_every=250)
    assert aj.compile_count() == before


# The full-size sweep and the TOML test's sweep have one static configuration (compiled once).
FULL_SIZE = dict(grid={"lr": 0.25, "delay": [0, 5], "noise": [0.0, 0.01], "seeds": 2})
FULL_SIZE["run"] = {"steps": 200, "record_every": 100}


def test_ringmaster_quadratic_runs_at_full_size():
    """d = 1729 banded: a few hundred steps of a few seeds take well under a second to run."""
    q = ringmaster_quadratic()
    grid = dict(FULL_SIZE["grid"])
    grid["seed"] = range(grid.pop("seeds"))
    res = aj.sweep(q, aj.Grid(**grid), **FULL_SIZE["run"])
    err = res["error"]
    assert err.shape == (2, 2, 2, 3) and np.all(err[..., -1] < err[..., 0])
    assert (res["diverged_at"] == -1).all()


# ------------------------------------------------------------------ the paper's setup
def test_ringmaster_quadratic_is_the_papers():
    d = 1729
    q = ringmaster_quadratic()
    assert q.d == d and q.noise == 0.01 and q.noise_kind == "shared" and q.storage == "banded"
    assert q.bands.shape == (2, d)
    A = 0.25 * (2 * np.eye(6) - np.eye(6, k=1) - np.eye(6, k=-1))
    np.testing.assert_array_equal(ringmaster_quadratic(d=6).to_dense(), A)
    np.testing.assert_array_equal(q.b[:2], [-0.25, 0.0])
    assert np.count_nonzero(q.b) == 1
    x0 = q.default_init()
    assert x0[0] == pytest.approx(np.sqrt(d)) and np.count_nonzero(x0) == 1
    i = np.arange(1, d + 1)
    np.testing.assert_allclose(q.x_star, -(d + 1 - i) / (d + 1), rtol=1e-9, atol=1e-12)
    assert q.f_star == pytest.approx(-d / (8 * (d + 1)), rel=1e-12)
    # tridiag(−1, 2, −1)/4 has eigenvalues (1 − cos(jπ/(d+1)))/2: L just below 1
    assert q.L == pytest.approx(0.5 * (1 + np.cos(np.pi / (d + 1))), rel=1e-12) and q.L < 1
    assert ringmaster_quadratic(d=1).to_dense().tolist() == [[0.5]]
    assert ringmaster_quadratic(noise=0.5).hyperparameters[0].default == 0.5
    text = json.dumps(q.describe())
    assert '"diagonals": [0.5, -0.25]' in text and len(text) < 40_000


# -------------------------------------------------------------------------- static half
def test_static_keys_and_describe():
    banded, dense = _pair(seed=10)
    assert banded.static_key() != dense.static_key() and banded != dense
    shared = _pair(seed=10, noise_kind="shared")[0]
    assert shared.static_key() != banded.static_key()  # the draws' shape differs
    assert _pair(seed=11)[0] == banded  # other numbers, same shapes
    assert QuadraticForm(diagonals=[1.0, 0.1], d=5) != QuadraticForm(diagonals=[1.0], d=5)
    for q in (banded, dense):
        desc = json.loads(json.dumps(q.describe()))
        assert desc["problem"] == "quadratic_form" and desc["d"] == q.d
        kwargs = {k: desc[k] for k in ("d", "b", "noise", "noise_kind", "init")}
        key = "diagonals" if "diagonals" in desc else "matrix"
        rebuilt = QuadraticForm(**kwargs, **{key: desc[key]})
        np.testing.assert_array_equal(rebuilt.to_dense(), q.to_dense())
        assert rebuilt.describe() == q.describe()
    big = QuadraticForm(matrix=np.eye(100))
    assert "matrix" not in big.describe() and len(big.describe()["matrix_sha256"]) == 64
    assert "2 diagonals" in repr(ringmaster_quadratic()) and "dense" in repr(dense)


def test_noise_is_a_swept_hyperparameter():
    q = ringmaster_quadratic(d=4, noise=0.01)
    assert q.hp_names == ("noise",)
    with pytest.raises(ValueError, match=r"noise must be >= 0; got -1\.0"):
        aj.sweep(q, aj.Grid(noise=[-1.0], lr=0.1, delay=0), steps=10, record_every=5)


# -------------------------------------------------------------------------------- TOML
def _toml(problem, grid=None):
    return {"problem": problem, "grid": grid or FULL_SIZE["grid"], "run": FULL_SIZE["run"]}


def test_toml_builds_each_form():
    spec = parse_config(
        _toml({"kind": "quadratic_form", "d": 5, "diagonals": [0.5, -0.25], "noise_kind": "shared"})
    )
    assert isinstance(spec.problem, QuadraticForm) and spec.problem.d == 5
    np.testing.assert_array_equal(spec.problem.to_dense(), ringmaster_quadratic(d=5).to_dense())
    spec = parse_config(
        _toml(
            {
                "kind": "quadratic_form",
                "matrix": [[2.0, 1.0], [1.0, 2.0]],
                "b": [1.0, 1.0],
                "noise": 0.1,
                "init": [0.0, 3.0],
            }
        )  # fmt: skip
    )
    assert spec.problem.storage == "dense" and spec.init == [0.0, 3.0]
    assert spec.problem.x_star.tolist() == pytest.approx([1 / 3, 1 / 3])
    spec = parse_config(
        _toml({"kind": "quadratic_form", "diagonals": [[1.0, 2.0, 3.0], [0.1, 0.2]]})
    )
    assert spec.problem.d == 3 and spec.problem.bands.shape == (2, 3)
    spec = parse_config(_toml({"kind": "ringmaster_quadratic", "d": 1729, "noise": 0.02}))
    assert spec.problem.d == 1729 and spec.problem.noise == 0.02
    res = aj.sweep(spec.problem, spec.grid, **spec.sweep_kwargs())
    assert res["error"].shape == (2, 2, 2, 3)


@pytest.mark.parametrize(
    "problem,message",
    [
        ({"kind": "quadratic_form", "d": 3, "diagonal": [1.0]}, r"unknown key\(s\) \['diagonal'\]"),
        ({"kind": "quadratic_form", "d": 3}, r"give A once"),
        ({"kind": "ringmaster_quadratic", "d": 3, "b": [1.0]}, r"unknown key\(s\) \['b'\]"),
        ({"kind": "quadratic_from"}, r"'quadratic_from' is not known \(did you mean 'quadratic_form'\?\)"),
        ({"kind": "quadratic_form", "diagonals": [1.0], "d": 2, "noise_kind": "shard"},
         r"noise_kind must be .*got 'shard' \(did you mean 'shared'\?\)"),
    ],
)  # fmt: skip
def test_toml_mistakes_are_named(problem, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(_toml(problem, {"lr": 0.1, "delay": 0}))


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: QuadraticForm(), r"give A once: either diagonals"),
        (lambda: QuadraticForm(diagonals=[1.0], matrix=np.eye(2)), r"give A once"),
        (lambda: QuadraticForm(diagonals=[1.0, 0.5]), r"give d when every diagonal is a single"),
        (lambda: QuadraticForm(diagonals=[]), r"diagonals must not be empty"),
        (lambda: QuadraticForm(diagonals=1.0), r"diagonals must be a list"),
        (lambda: QuadraticForm(diagonals=[[1.0, 2.0], [0.1, 0.2]]), r"diagonals\[1\] must have d - 1 = 1 entries for d = 2, got 2"),
        (lambda: QuadraticForm(d=3, diagonals=[[1.0, 2.0]]), r"diagonals\[0\] must have d - 0 = 3 entries"),
        (lambda: QuadraticForm(d=2, diagonals=[1.0, 0.1, 0.1]), r"diagonals has 3 entries, but a 2 x 2 matrix"),
        (lambda: QuadraticForm(d=2, diagonals=[1.0, np.nan]), r"diagonals\[1\] contains a non-finite"),
        (lambda: QuadraticForm(d=2, diagonals=[[[1.0]]]), r"diagonals\[0\] must be a number or a 1-D array"),
        (lambda: QuadraticForm(d=3, diagonals=[1.0, 1.0]), r"A must be positive semi-definite; its smallest eigenvalue is -0\.41"),
        (lambda: QuadraticForm(matrix=[[1.0, 2.0], [0.0, 1.0]]), r"matrix must be symmetric; entry \(0, 1\) = 2\.0 but \(1, 0\) = 0\.0"),
        (lambda: QuadraticForm(matrix=[[1.0, 0.0]]), r"matrix must be square"),
        (lambda: QuadraticForm(matrix=[[1.0, 0.0], [0.0, -1.0]]), r"positive semi-definite; its smallest eigenvalue is -1\.0"),
        (lambda: QuadraticForm(3, matrix=np.eye(2)), r"d=3 but matrix has shape \(2, 2\)"),
        (lambda: QuadraticForm(0, diagonals=[1.0]), r"d must be >= 1, got 0"),
        (lambda: QuadraticForm(diagonals=[[1.0, 2.0]], b=[1.0]), r"b must have shape \(2,\), got \(1,\)"),
        (lambda: QuadraticForm(diagonals=[[1.0, 2.0]], noise=-0.1), r"noise must be >= 0; got -0\.1"),
        (lambda: QuadraticForm(diagonals=[[1.0, 2.0]], noise_kind="both"), r"noise_kind must be one of 'independent', 'shared'; got 'both'"),
        (lambda: QuadraticForm(diagonals=[[1.0, 2.0]], init=[1.0]), r"init must have shape \(2,\), got \(1,\)"),
        (lambda: ringmaster_quadratic(d=0), r"d must be >= 1, got 0"),
        (lambda: ringmaster_quadratic(noise=-1.0), r"noise must be >= 0"),
    ],
)  # fmt: skip
def test_bad_input_is_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
