"""Every problem against the Problem protocol: gradients, streams, metrics, checks, data sets.

No engine here: the pure functions are called directly (and scanned by hand
for the short training runs), in float64 where exactness is checked.
"""

import functools
import json
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asyncjax import _rng, datasets
from asyncjax._parts import resolve
from asyncjax.datasets import Dataset
from asyncjax.problems import MLP, LeastSquares, Logistic, Quadratic, QuarticSaddle

NAMES = ["quadratic", "least_squares", "logistic", "quartic_saddle", "mlp"]


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


def _blobs(n=60, d=4, classes=3, seed=0, n_test=20):
    """A small labelled data set with some class structure."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((classes, d))
    y = rng.integers(0, classes, n + n_test)
    X = centres[y] + rng.standard_normal((n + n_test, d))
    return Dataset(X[:n], y[:n], X[n:], y[n:], np.arange(classes), "blobs")


def make(name, seed=0):
    """A small instance of each problem; ``seed`` changes the numbers, never the shapes."""
    rng = np.random.default_rng(seed)
    if name == "quadratic":
        return Quadratic(rng.uniform(0.5, 4.0, 4), noise=0.3)
    if name == "least_squares":
        return LeastSquares.from_data(
            rng.standard_normal((40, 5)), rng.standard_normal(40), batch=8, l2=0.1
        )
    if name == "logistic":
        ds = _blobs(seed=seed)
        return Logistic.from_data(
            ds.X_train, ds.y_train, batch=8, l2=0.01, test=(ds.X_test, ds.y_test)
        )
    if name == "quartic_saddle":
        return QuarticSaddle(
            5, negative=-rng.uniform(0.5, 1.0), positive=rng.uniform(1.0, 2.0), noise=0.5, batch=4
        )
    if name == "mlp":
        return MLP(_blobs(seed=seed), hidden=(5, 3), activation="tanh", batch=8, l2=0.01)
    raise KeyError(name)


def _key(seed, stream=_rng.DATA_STREAM):
    return _rng.stream_keys(jnp.asarray([seed], jnp.int32), stream)[0]


def _start(problem, ops, seed=0):
    """A random point (not the start, where gradients can vanish) shaped like the parameters."""
    x0 = problem.default_init()
    if x0 is None:  # only the shapes are used: traced, not run (run eagerly, it compiled op by op)
        x0 = jax.eval_shape(problem.init, ops, _key(seed, _rng.INIT_STREAM))
    leaves, tree = jax.tree.flatten(x0)
    rng = np.random.default_rng(seed + 100)
    dtype = ops[0].dtype
    return jax.tree.unflatten(
        tree, [jnp.asarray(0.7 * rng.standard_normal(np.shape(a)), dtype) for a in leaves]
    )


def _defaults(problem):
    return {h.name: h.default for h in problem.hyperparameters}


def _hp(problem, **kw):
    vals = _defaults(problem)
    vals.update(kw)
    return {k: jnp.asarray(vals[k]) for k in problem.hp_names}


# ------------------------------------------------------------------------ references
def _ref_loss(problem, ops, params, rows):
    """The minibatch objective, written independently of the problems' code."""
    if isinstance(problem, Quadratic):
        return 0.5 * jnp.sum(ops.eigenvalues * params**2)
    if isinstance(problem, QuarticSaddle):
        s = jnp.sum(params**2)
        return 0.5 * jnp.sum(ops.D * params**2) + 0.25 * s * s
    if isinstance(problem, LeastSquares):
        r = ops.X[rows] @ params - ops.y[rows]
        return 0.5 * jnp.mean(r**2) + 0.5 * ops.l2 * jnp.sum(params**2)
    if isinstance(problem, Logistic):
        logp = jax.nn.log_softmax(ops.X[rows] @ params["W"] + params["b"][None, :])
        nll = -jnp.mean(jnp.take_along_axis(logp, ops.y[rows][:, None], axis=1))
        return nll + 0.5 * ops.l2 * jnp.sum(params["W"] ** 2)
    if isinstance(problem, MLP):
        h = ops.X[rows]
        n_layers = len(problem.hidden) + 1
        for i in range(n_layers):
            h = h @ params[f"W{i}"] + params[f"b{i}"][None, :]
            if i < n_layers - 1:
                h = jnp.tanh(h)
        logp = jax.nn.log_softmax(h)
        nll = -jnp.mean(jnp.take_along_axis(logp, ops.y[rows][:, None], axis=1))
        return nll + 0.5 * ops.l2 * sum(jnp.sum(params[f"W{i}"] ** 2) for i in range(n_layers))
    raise TypeError(problem)


def _noise_scale(problem, hp):
    if isinstance(problem, Quadratic):
        return float(hp["noise"])
    if isinstance(problem, QuarticSaddle):
        return float(hp["noise"]) / math.sqrt(float(hp["batch"]))
    return 0.0


# ------------------------------------------------------------------------ gradients
FD_STEP = 1e-5  # central differences: truncation O(h²) and rounding O(ε/h) both below 1e-9


def _batches(problem, ops, seed, steps=4):
    """Four steps' data shaped like the sampler's, drawn in NumPy (the sampler is checked on its
    own below; compiled in, it took half of each gradient program's compile time): row indices
    for the data sets, standard normals for the noise draws."""
    like = jax.eval_shape(problem.sample, ops, _key(0), jnp.arange(steps, dtype=jnp.int32))
    rng = np.random.default_rng(seed)
    if like.dtype == jnp.int32:
        return jnp.asarray(rng.integers(0, problem.n, like.shape), jnp.int32)
    return jnp.asarray(rng.standard_normal(like.shape), like.dtype)


@functools.cache
def _grad_probe(name):
    """One compiled program (float64) per problem for both gradient tests: for each of a few
    steps' data, the problem's gradient without and with noise, the gradient of the reference
    loss, and the directional derivative of the reference loss along ``v`` by central
    differences against ⟨grad, v⟩. Its operands are arguments, so another instance of the same
    shapes (another seed) runs the same program. (Op by op, these checks compiled hundreds of
    small programs: 8 s for the MLP alone.)"""
    problem = make(name)

    def one(ops, params, batch, v, hp):
        rows = batch if batch.dtype == jnp.int32 else None
        ref = lambda q: _ref_loss(problem, ops, q, rows)
        quiet = {k: jnp.zeros_like(x) if k == "noise" else x for k, x in hp.items()}
        got = problem.grad(ops, params, batch, quiet)
        plus = jax.tree.map(lambda p, u: p + FD_STEP * u, params, v)
        minus = jax.tree.map(lambda p, u: p - FD_STEP * u, params, v)
        return {
            "quiet": got,
            "noisy": problem.grad(ops, params, batch, hp),
            "want": jax.grad(ref)(params),
            "fd": (ref(plus) - ref(minus)) / (2 * FD_STEP),
            "dot": sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(v))),
        }

    return jax.jit(jax.vmap(one, in_axes=(None, None, 0, None, None)))


@pytest.mark.parametrize("name", NAMES)
def test_grad_is_gradient_of_minibatch_loss(name):
    problem = make(name)
    with jax.enable_x64(True):
        ops = problem.operands(jnp.float64)
        params, v = _start(problem, ops), _start(problem, ops, seed=9)
        hp, batches = _hp(problem), _batches(problem, ops, seed=3)
        out = _grad_probe(name)(ops, params, batches, v, hp)
    scale = _noise_scale(problem, hp)
    for i in range(4):
        pick = lambda tree: jax.tree.map(lambda a: np.asarray(a[i]), tree)
        got, noisy, want = pick(out["quiet"]), pick(out["noisy"]), pick(out["want"])
        jax.tree.map(
            lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12), got, want
        )
        # additive noise: exactly (σ/√m) z, z the step's draw
        batch = np.asarray(batches[i])
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(
                a - b, scale * batch if scale else 0.0, atol=1e-12
            ),
            noisy,
            got,
        )


@pytest.mark.parametrize("name", NAMES)
def test_grad_matches_finite_differences(name):
    """Directional derivative of the reference loss against ⟨grad, v⟩ (central differences),
    at another instance (seed 1) and point, on each of four steps' data."""
    problem = make(name, seed=1)
    with jax.enable_x64(True):
        ops = problem.operands(jnp.float64)
        params, v = _start(problem, ops, seed=1), _start(problem, ops, seed=9)
        batches = _batches(problem, ops, seed=5)
        out = _grad_probe(name)(ops, params, batches, v, _hp(problem, noise=0.0))
    np.testing.assert_allclose(np.asarray(out["dot"]), np.asarray(out["fd"]), rtol=1e-7, atol=1e-9)


@functools.cache
def _draws(name):
    """One compiled program (float32) per problem for the stream and vmap tests: 12 steps of
    three streams (the sampler under vmap), the first stream again step by step (a loop over
    the steps, each drawn alone), and three picked steps of it. (Each sampler in a program
    costs about a second of compile: the two tests share theirs.)"""
    problem = make(name)

    @jax.jit
    def draws(ops, keys):
        ks = jnp.arange(12, dtype=jnp.int32)
        blocks = jax.vmap(lambda key: problem.sample(ops, key, ks))(keys)
        steps = jax.lax.map(lambda k: problem.sample(ops, keys[0], k[None]), ks)
        picked = problem.sample(ops, keys[0], jnp.asarray([7, 2, 7], jnp.int32))
        return blocks, steps.reshape(blocks.shape[1:]), picked

    return draws


@pytest.mark.parametrize("name", NAMES)
def test_pure_functions_run_in_float32_under_vmap(name):
    """vmap over trajectories, strict promotion, float32 operands with float32 hyperparameters
    (the draws of three streams under vmap, then one program for the gradients and metrics)."""
    problem = make(name)
    ops = problem.operands(jnp.float32)
    assert all(a.dtype in (jnp.float32, jnp.int32) for a in jax.tree.leaves(ops))
    seeds = jnp.arange(3, dtype=jnp.int32)
    blocks, _, _ = _draws(name)(ops, _rng.stream_keys(seeds, _rng.DATA_STREAM))
    step0 = jax.tree.map(lambda a: a[:, 0], blocks)

    @jax.jit
    def run(ops, seeds, step0, hp):
        params = jax.vmap(lambda s: _start(problem, ops))(seeds)
        g = jax.vmap(problem.grad, in_axes=(None, 0, 0, 0))(ops, params, step0, hp)
        return params, g, jax.vmap(problem.metrics, in_axes=(None, 0))(ops, params)

    hp = {k: jnp.full((3,), v, jnp.float32) for k, v in _defaults(problem).items()}
    params, g, m = run(ops, seeds, step0, hp)
    assert jax.tree.structure(g) == jax.tree.structure(params)
    for leaf in jax.tree.leaves(g):
        assert leaf.dtype == jnp.float32 and np.isfinite(np.asarray(leaf)).all()
    assert "error" in m and set(m) == set(problem.metric_docs)
    for value in m.values():
        assert value.shape == (3,) and value.dtype == jnp.float32


# ------------------------------------------------------------------------ streams
@pytest.mark.parametrize("name", NAMES)
def test_sample_rows_depend_only_on_the_step(name):
    problem = make(name)
    ops = problem.operands(jnp.float32)
    keys = _rng.stream_keys(jnp.asarray([11, 12, 13], jnp.int32), _rng.DATA_STREAM)
    blocks, one_by_one, picked = map(np.asarray, _draws(name)(ops, keys))
    block, other = blocks[0], blocks[1]
    np.testing.assert_array_equal(block, one_by_one)
    np.testing.assert_array_equal(picked, block[[7, 2, 7]])
    assert not np.array_equal(block, other)
    if block.dtype == np.int32:  # finite data: row indices
        assert block.shape == (12, problem.batch)
        assert block.min() >= 0 and block.max() < problem.n
        assert len(np.unique(block)) > problem.batch  # different rows at different steps


# ------------------------------------------------------------------------ static half
@pytest.mark.parametrize("name", NAMES)
def test_equal_keys_share_code_and_read_only_operands(name):
    """Same shapes, other numbers: equal keys, and one compiled function serves both."""
    a, b = make(name, seed=0), make(name, seed=1)
    assert a.static_key() == b.static_key() and a == b and hash(a) == hash(b)
    ops_a, ops_b = a.operands(jnp.float32), b.operands(jnp.float32)
    params = _start(a, ops_a)
    traces = []

    def metrics(ops, p):
        traces.append(1)
        return a.metrics(ops, p)

    f = jax.jit(metrics)
    ma, mb = f(ops_a, params), f(ops_b, params)
    assert len(traces) == 1
    ref = jax.jit(b.metrics)(ops_b, params)
    for k in ref:  # a's functions on b's operands give b's numbers: nothing is read from self
        np.testing.assert_array_equal(mb[k], ref[k])
    assert any(not np.array_equal(ma[k], mb[k]) for k in ma)


def test_different_shapes_have_different_keys(digits):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 5)), rng.standard_normal(40)
    pairs = [
        (Quadratic([1.0, 2.0]), Quadratic([1.0, 2.0, 3.0])),
        (LeastSquares.from_data(X, y, batch=8), LeastSquares.from_data(X, y, batch=4)),
        (LeastSquares.from_data(X, y, batch=8), LeastSquares.from_data(X[:30], y[:30], batch=8)),
        (QuarticSaddle(3), QuarticSaddle(4)),
        (Logistic.from_dataset(digits), Logistic.from_dataset(digits, batch=16)),
        (MLP(digits), MLP(digits, hidden=(16,))),
        (MLP(digits), MLP(digits, activation="relu")),
        (MLP(digits), Logistic.from_dataset(digits)),
    ]
    for p, q in pairs:
        assert p.static_key() != q.static_key() and p != q
    assert QuarticSaddle(3, noise=0.1) == QuarticSaddle(
        3, negative=-2.0, noise=5.0
    )  # values are operands / hp


@pytest.mark.parametrize("name", NAMES)
def test_describe_is_json_without_the_data(name):
    problem = make(name)
    text = json.dumps(problem.describe())
    assert problem.describe()["problem"] == problem.kind
    assert len(text) < 2000
    if hasattr(problem, "X"):
        assert "sha256" in text


def test_kinds_and_hyperparameters():
    assert [type(make(n)).kind for n in NAMES] == NAMES
    q = Quadratic([1.0], noise=0.25)
    assert q.hp_names == ("noise",) and _defaults(q) == {"noise": 0.25}
    s = QuarticSaddle(2, noise=0.5, batch=8)
    assert s.hp_names == ("noise", "batch") and _defaults(s) == {"noise": 0.5, "batch": 8.0}
    for name in ["least_squares", "logistic", "mlp"]:
        assert make(name).hp_names == ()

    def check(problem, **values):  # the one loop every run's values go through
        return resolve([problem], values, buffer=1)

    out = check(s, noise=[0.0, 2.0], batch=[1.0, 64.0])
    assert out["noise"].tolist() == [0.0, 2.0] and out["batch"].tolist() == [1.0, 64.0]
    assert check(s) == {"noise": [0.5], "batch": [8.0]}  # the constructor's values are the defaults
    with pytest.raises(ValueError, match=r"noise must be >= 0; got -0\.5"):
        check(s, noise=[1.0, -0.5])
    with pytest.raises(ValueError, match=r"batch must be an integer >= 1; got 0\.5"):
        check(s, batch=[0.5])
    with pytest.raises(ValueError, match=r"batch must be an integer >= 1; got 2\.5"):
        check(s, batch=[2.5])
    with pytest.raises(ValueError, match=r"noise must be >= 0; got -1\.0"):
        check(q, noise=[-1.0])
    with pytest.raises(ValueError, match=r"noise contains a non-finite value \(nan"):
        check(q, noise=[np.nan])
    with pytest.raises(ValueError, match=r"unknown grid axis 'noize' \(did you mean 'noise'\?\)"):
        check(q, noize=1.0)


# ------------------------------------------------------------------------ metrics
def test_quadratic_metrics_and_start():
    q = Quadratic([1.0, 2.0, 4.0])
    np.testing.assert_array_equal(q.default_init(), np.ones(3))
    np.testing.assert_array_equal(q.hessian_eigenvalues, [1.0, 2.0, 4.0])
    with jax.enable_x64(True):
        ops = q.operands(jnp.float64)
        x = np.array([0.5, -1.0, 2.0])
        m = q.metrics(ops, jnp.asarray(x))
        assert float(m["error"]) == pytest.approx(0.5 * (0.25 + 2.0 + 16.0))
        assert float(m["grad_norm"]) == pytest.approx(np.linalg.norm([0.5, -2.0, 8.0]))
        assert float(q.metrics(ops, jnp.zeros(3))["error"]) == 0.0
    q2 = Quadratic([1.0, 2.0], init=[3.0, -1.0])
    np.testing.assert_array_equal(q2.default_init(), [3.0, -1.0])
    np.testing.assert_array_equal(q2.to_internal([0.0, 1.0]), [0.0, 1.0])


def test_least_squares_optimum_and_error():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((50, 6)), rng.standard_normal(50)
    # the problem is a static argument: instances of equal shapes (all three here) share a program
    metrics = jax.jit(LeastSquares.metrics, static_argnums=0)
    for l2 in [0.0, 0.3]:
        p = LeastSquares.from_data(X, y, batch=10, l2=l2)
        w_ref = np.linalg.solve(X.T @ X / 50 + l2 * np.eye(6), X.T @ y / 50)
        np.testing.assert_allclose(p.w_star, w_ref, rtol=1e-10, atol=1e-12)

        def f(w):
            return 0.5 * np.mean((X @ w - y) ** 2) + 0.5 * l2 * w @ w

        assert p.f_star == pytest.approx(f(w_ref), rel=1e-12)
        np.testing.assert_array_equal(p.default_init(), np.zeros(6))
        with jax.enable_x64(True):
            ops = p.operands(jnp.float64)
            for w in [np.zeros(6), rng.standard_normal(6), w_ref + 1e-4 * rng.standard_normal(6)]:
                m = metrics(p, ops, jnp.asarray(w))
                assert float(m["error"]) == pytest.approx(f(w) - f(w_ref), rel=1e-6, abs=1e-15)
                assert float(m["loss"]) == pytest.approx(f(w), rel=1e-12)
                grad = X.T @ (X @ w - y) / 50 + l2 * w
                assert float(m["grad_norm"]) == pytest.approx(
                    np.linalg.norm(grad), rel=1e-8, abs=1e-12
                )
            at_opt = metrics(p, ops, jnp.asarray(w_ref))
            assert abs(float(at_opt["error"])) < 1e-20 and float(at_opt["grad_norm"]) < 1e-12
        np.testing.assert_allclose(p.hessian_eigenvalues, np.linalg.eigvalsh(X.T @ X / 50) + l2)
    # rank-deficient data: the minimum-norm solution, error still exact and >= 0
    Xr = np.concatenate([X[:, :3], X[:, :3]], axis=1)
    p = LeastSquares.from_data(Xr, y)
    with jax.enable_x64(True):
        m = metrics(p, p.operands(jnp.float64), jnp.asarray(rng.standard_normal(6)))
        assert (
            float(m["error"]) >= 0
            and float(metrics(p, p.operands(jnp.float64), jnp.asarray(p.w_star))["grad_norm"])
            < 1e-12
        )


def test_logistic_metrics_against_numpy():
    p = make("logistic")
    rng = np.random.default_rng(2)
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(3)
    z = p.X @ W + b
    logp = (
        z
        - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
        - z.max(1, keepdims=True)
    )
    loss = -np.mean(logp[np.arange(p.n), p.y]) + 0.5 * 0.01 * np.sum(W**2)
    acc = np.mean(np.argmax(p.X_test @ W + b, axis=1) == p.y_test)
    with jax.enable_x64(True):
        m = jax.jit(p.metrics)(p.operands(jnp.float64), {"W": jnp.asarray(W), "b": jnp.asarray(b)})
    assert float(m["error"]) == pytest.approx(loss, rel=1e-12)
    assert float(m["accuracy"]) == pytest.approx(acc)
    start = p.default_init()
    assert set(start) == {"W", "b"} and start["W"].shape == (4, 3) and not np.any(start["W"])
    m0 = jax.jit(p.metrics)(p.operands(jnp.float32), jax.tree.map(jnp.asarray, start))
    assert float(m0["error"]) == pytest.approx(np.log(3), rel=1e-6)


def _saddle_points(problem, rng):
    d, j = problem.d, problem.neg_index
    e = np.eye(d)[j]
    pts = [
        np.zeros(d),
        *problem.minimizers,
        0.3 * e,
        3.0 * rng.standard_normal(d),
        40.0 * rng.standard_normal(d),
    ]
    off = rng.standard_normal(d)
    off[j] = 0.0  # no component along the negative direction: the bracket's lower end
    pts += [off, off + 1e-9 * e, 1e-3 * rng.standard_normal(d)]
    pts += list(rng.standard_normal((20, d)))
    return pts


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(d=5),
        dict(d=1, negative=-2.0),
        dict(eigenvalues=[0.5, 3.0, -0.25, 0.5, 8.0]),
        dict(d=40, positive=0.1),
    ],
)
def test_quartic_saddle_metrics_against_numpy(kwargs):
    p = QuarticSaddle(**kwargs)
    D = p.D
    dn = D.min()
    assert p.f_star == -(dn**2) / 4
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        ops = p.operands(jnp.float64)
        f = jax.jit(p.metrics)
        for x in _saddle_points(p, rng):
            m = f(ops, jnp.asarray(x))
            s = x @ x
            fx = 0.5 * x @ (D * x) + 0.25 * s * s
            H = np.diag(D) + s * np.eye(p.d) + 2.0 * np.outer(x, x)
            scale = 1.0 + s + np.abs(D).max()
            assert float(m["error"]) == pytest.approx(
                fx - p.f_star, rel=1e-10, abs=1e-12 * scale**2
            )
            assert float(m["grad_norm"]) == pytest.approx(
                np.linalg.norm(D * x + s * x), rel=1e-10, abs=1e-12
            )
            assert abs(float(m["min_hess_eig"]) - np.linalg.eigvalsh(H)[0]) < 1e-12 * scale
        for x in p.minimizers:  # the minima: zero error and gradient, the Hessian of the docs
            m = f(ops, jnp.asarray(x))
            assert abs(float(m["error"])) < 1e-14 and float(m["grad_norm"]) < 1e-14
            assert float(m["min_hess_eig"]) == pytest.approx(p.hessian_eigenvalues.min())
        assert float(f(ops, jnp.zeros(p.d))["min_hess_eig"]) == dn  # the saddle
    # float32: the same to float32 accuracy
    ops32 = p.operands(jnp.float32)
    f32 = jax.jit(p.metrics)  # one program, not op by op
    for x in _saddle_points(p, rng)[:8]:
        m = f32(ops32, jnp.asarray(x, jnp.float32))
        s = x @ x
        H = np.diag(D) + s * np.eye(p.d) + 2.0 * np.outer(x, x)
        assert abs(float(m["min_hess_eig"]) - np.linalg.eigvalsh(H)[0]) < 1e-5 * (
            1.0 + s + np.abs(D).max()
        )


def test_quartic_saddle_start_and_diagonal():
    p = QuarticSaddle(3, negative=-0.5, positive=2.0)
    np.testing.assert_array_equal(p.D, [-0.5, 2.0, 2.0])
    np.testing.assert_array_equal(p.default_init(), np.zeros(3))
    np.testing.assert_allclose(p.hessian_eigenvalues, [1.0, 2.5, 2.5])
    q = QuarticSaddle(eigenvalues=[1.0, -3.0])
    assert q.neg_index == 1 and q.f_star == -2.25
    np.testing.assert_allclose(q.minimizers, [[0.0, np.sqrt(3.0)], [0.0, -np.sqrt(3.0)]])


def test_mlp_structure_init_and_metrics(digits):
    p = MLP(digits, hidden=(32,))
    assert p.n_params == 64 * 32 + 32 + 32 * 10 + 10 == 2410
    assert p.default_init() is None
    ops = p.operands(jnp.float32)
    keys = _rng.stream_keys(jnp.arange(2, dtype=jnp.int32), _rng.INIT_STREAM)
    init = jax.jit(p.init)  # one program, not op by op
    a, a2, b = init(ops, keys[0]), init(ops, keys[0]), init(ops, keys[1])
    assert {k: v.shape for k, v in a.items()} == p.param_shapes()
    jax.tree.map(np.testing.assert_array_equal, a, a2)  # a pure function of the key
    assert not np.array_equal(a["W0"], b["W0"])
    assert not np.any(a["b0"]) and not np.any(a["b1"])
    assert np.std(np.asarray(a["W0"])) == pytest.approx(math.sqrt(2 / (64 + 32)), rel=0.05)
    assert np.std(np.asarray(a["W1"])) == pytest.approx(math.sqrt(2 / (32 + 10)), rel=0.15)
    relu = MLP(digits, hidden=(32,), activation="relu")
    np.testing.assert_allclose(relu.init_scales(), [math.sqrt(2 / 64), math.sqrt(2 / 42)])
    # metrics against a NumPy forward pass
    P = {k: np.asarray(v, np.float64) for k, v in a.items()}
    with jax.enable_x64(True):
        for act, fn in [("tanh", np.tanh), ("relu", lambda h: np.maximum(h, 0.0))]:
            q = MLP(digits, hidden=(32,), activation=act)
            m = jax.jit(q.metrics)(q.operands(jnp.float64), jax.tree.map(jnp.asarray, P))
            z = fn(q.X @ P["W0"] + P["b0"]) @ P["W1"] + P["b1"]
            zt = fn(q.X_test @ P["W0"] + P["b0"]) @ P["W1"] + P["b1"]
            zmax = z.max(1, keepdims=True)
            lse = np.log(np.exp(z - zmax).sum(1)) + zmax[:, 0]
            assert float(m["error"]) == pytest.approx(
                np.mean(lse - z[np.arange(q.n), q.y]), rel=1e-12
            )
            assert float(m["accuracy"]) == pytest.approx(np.mean(zt.argmax(1) == q.y_test))
    assert p.to_internal(P)["W1"].shape == (32, 10)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_mlp_other_activations_grad(activation):
    ds = _blobs()
    p = MLP(ds, hidden=(6,), activation=activation, batch=8)
    h = 1e-6

    @jax.jit  # one program, not op by op
    def check(ops, params, rows, v):
        g = p.grad(ops, params, rows, {})
        lp = p.loss(ops, jax.tree.map(lambda a, u: a + h * u, params, v), rows)
        lm = p.loss(ops, jax.tree.map(lambda a, u: a - h * u, params, v), rows)
        return sum(jnp.vdot(g[k], v[k]) for k in g), (lp - lm) / (2 * h)

    with jax.enable_x64(True):
        ops = p.operands(jnp.float64)
        # a random point and eight random rows (the sampler and init are checked on their own)
        rows = jnp.asarray(np.random.default_rng(1).choice(p.n, 8, replace=False), jnp.int32)
        dot, fd = check(ops, _start(p, ops, seed=0), rows, _start(p, ops, seed=4))
    np.testing.assert_allclose(float(dot), float(fd), rtol=1e-6)


# ------------------------------------------------------------------------ bad input
def _bad_cases():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    Xnan = X.copy()
    Xnan[4, 2] = np.nan
    labels = np.arange(10) % 3
    ds = _blobs(n=12, n_test=6)
    ds_nan = ds._replace(
        X_train=np.where(
            np.arange(ds.X_train.size).reshape(ds.X_train.shape) == 9, np.nan, ds.X_train
        )
    )
    return [
        (lambda: Quadratic([1.0, -2.0]), r"eigenvalues must be > 0.*got -2\.0"),
        (lambda: Quadratic([1.0, 0.0]), r"eigenvalues must be > 0.*got 0\.0"),
        (
            lambda: Quadratic([1.0, np.inf]),
            r"eigenvalues contains a non-finite value \(inf at index \(1,\)\)",
        ),
        (
            lambda: Quadratic([[1.0, 2.0]]),
            r"eigenvalues must have 1 dimension\(s\), got shape \(1, 2\)",
        ),
        (lambda: Quadratic([1.0], noise=-0.1), r"noise must be >= 0; got -0\.1"),
        (lambda: Quadratic([1.0, 2.0], init=[1.0]), r"init must have shape \(2,\), got \(1,\)"),
        (
            lambda: Quadratic([1.0, 2.0], init=[1.0, np.nan]),
            r"init contains a non-finite value \(nan",
        ),
        (
            lambda: LeastSquares.from_data(Xnan, y),
            r"X contains a non-finite value \(nan at index \(4, 2\)\)",
        ),
        (lambda: LeastSquares.from_data(X, y[:9]), r"y has 9 entries but X has 10 rows"),
        (
            lambda: LeastSquares.from_data(X, y, batch=11),
            r"batch=11 is larger than the data set \(10 rows\)",
        ),
        (lambda: LeastSquares.from_data(X, y, batch=0), r"batch must be >= 1, got 0"),
        (lambda: LeastSquares.from_data(X, y, batch=4, l2=-1.0), r"l2 must be >= 0, got -1\.0"),
        (
            lambda: LeastSquares.from_data(X[:, 0], y),
            r"X must have 2 dimension\(s\), got shape \(10,\)",
        ),
        (
            lambda: LeastSquares.from_data(X, y, batch=4).to_internal(np.ones(4)),
            r"init must have shape \(3,\), got \(4,\)",
        ),
        (
            lambda: Logistic.from_data(X, labels, classes=[0, 1]),
            r"y\[2\] = 2 is not one of the classes \[0, 1\]",
        ),
        (
            lambda: Logistic.from_data(X, labels[:8]),
            r"y must have shape \(10,\) to match X, got \(8,\)",
        ),
        (
            lambda: Logistic.from_data(Xnan, labels),
            r"X contains a non-finite value \(nan at index \(4, 2\)\)",
        ),
        (
            lambda: Logistic.from_data(X, labels, batch=9),
            r"batch=9 is larger than the data set \(8 rows\)",
        ),
        (
            lambda: Logistic.from_data(X, labels, test_fraction=1.0),
            r"test_fraction must lie in \(0, 1\), got 1\.0",
        ),
        (
            lambda: Logistic.from_data(X, labels, test=(X[:, :2], labels)),
            r"X_test has 2 columns but X has 3",
        ),
        (
            lambda: Logistic.from_data(X, labels, test=(X, labels[:5])),
            r"y_test has 5 entries but X_test has 10 rows",
        ),
        (lambda: Logistic.from_data(X, np.zeros(10)), r"need at least 2 classes, got \[0\.0\]"),
        (
            lambda: Logistic.from_data(X, labels, classes=[0, 1, 1, 2]),
            r"classes must be distinct; 1 appears",
        ),
        (
            lambda: Logistic.from_dataset(ds, batch=4).to_internal({"W": np.zeros((4, 3))}),
            r"init must have exactly the keys \['W', 'b'\]",
        ),
        (
            lambda: Logistic.from_dataset(ds, batch=4).to_internal(
                {"W": np.zeros((3, 3)), "b": np.zeros(3)}
            ),
            r"init\['W'\] must have shape \(4, 3\), got \(3, 3\)",
        ),
        (
            lambda: QuarticSaddle(eigenvalues=[1.0, 2.0]),
            r"exactly one negative entry.*got 0 in \[1\.0, 2\.0\]",
        ),
        (
            lambda: QuarticSaddle(eigenvalues=[-1.0, -2.0, 1.0]),
            r"exactly one negative entry.*got 2",
        ),
        (lambda: QuarticSaddle(eigenvalues=[-1.0, 0.0]), r"entry 1 is 0\.0"),
        (lambda: QuarticSaddle(3, negative=0.5), r"negative must be < 0.*got 0\.5"),
        (lambda: QuarticSaddle(3, positive=-1.0), r"positive must be > 0, got -1\.0"),
        (lambda: QuarticSaddle(0), r"d must be >= 1, got 0"),
        (lambda: QuarticSaddle(), r"give the dimension d"),
        (lambda: QuarticSaddle(3, eigenvalues=[-1.0, 1.0]), r"d=3 but eigenvalues has 2 entries"),
        (lambda: QuarticSaddle(2, negative=-1.0, eigenvalues=[-1.0, 1.0]), r"not both"),
        (lambda: QuarticSaddle(2, noise=-1.0), r"noise must be >= 0; got -1\.0"),
        (lambda: QuarticSaddle(2, batch=0), r"batch must be an integer >= 1; got 0\.0"),
        (
            lambda: QuarticSaddle(2).to_internal([1.0, 2.0, 3.0]),
            r"init must have shape \(2,\), got \(3,\)",
        ),
        (
            lambda: MLP(ds_nan, batch=4),
            r"X_train contains a non-finite value \(nan at index \(2, 1\)\)",
        ),
        (lambda: MLP(ds, batch=13), r"batch=13 is larger than the data set \(12 rows\)"),
        (
            lambda: MLP(ds, batch=4, activation="sigmoid"),
            r"activation must be one of \('tanh', 'relu', 'gelu'\), got 'sigmoid'",
        ),
        (lambda: MLP(ds, batch=4, hidden=(8, 0)), r"hidden\[1\] must be >= 1, got 0"),
        (
            lambda: MLP(ds._replace(classes=np.arange(2)), batch=4),
            r"y_train\[\d+\] = 2 is not one of the classes \[0, 1\]",
        ),
        (lambda: MLP((X, y)), r"dataset must be an asyncjax.datasets.Dataset, got tuple"),
        (lambda: MLP(ds, batch=4).to_internal({"W0": 1}), r"init must have exactly the keys"),
    ]


@pytest.mark.parametrize("build,match", _bad_cases())
def test_bad_input_is_named(build, match):
    with pytest.raises(ValueError, match=match):
        build()


# ------------------------------------------------------------------------ data sets
def test_digits_split_and_standardisation(digits):
    ds = digits
    assert ds.name == "digits"
    assert ds.X_train.shape == (1437, 64) and ds.X_test.shape == (360, 64)
    assert ds.y_train.shape == (1437,) and ds.y_test.shape == (360,)
    np.testing.assert_array_equal(ds.classes, np.arange(10))
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.X_test).all()
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    std = ds.X_train.std(axis=0)
    constant = std < 0.5
    assert 0 < constant.sum() < 64  # the always-blank pixels
    np.testing.assert_allclose(std[~constant], 1.0)
    assert not ds.X_train[:, constant].any() and not ds.X_test[:, constant].any()
    # stratified: each class within one image of its share of the held-out part
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_test]))
    assert np.all(np.abs(np.bincount(ds.y_test) - counts * 360 / 1797) < 1)
    again = datasets.digits()
    np.testing.assert_array_equal(again.X_test, ds.X_test)
    other = datasets.digits(test_fraction=0.25, seed=1)
    assert other.X_test.shape == (450, 64)
    assert not np.array_equal(datasets.digits(seed=1).y_test, ds.y_test)
    assert "digits" in repr(ds) and "1437" in repr(ds)


def test_split_partitions_rows():
    y = np.repeat(np.arange(3), [5, 10, 20])
    train, test = datasets.split(y, 0.2, seed=3)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(35))
    assert test.size == 7
    np.testing.assert_array_equal(np.bincount(y[test]), [1, 2, 4])


def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'pip install "asyncjax\[data\]"'):
        datasets.digits()


def test_logistic_from_data_split_and_string_labels():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    y = np.where(X[:, 0] > 0, "dog", "cat")
    p = Logistic.from_data(X, y, batch=5, test_fraction=0.2)
    assert p.n == 40 and p.X_test.shape == (10, 3)
    assert p.classes.tolist() == ["cat", "dog"]
    np.testing.assert_array_equal(p.y, (p.X[:, 0] > 0).astype(np.int32))
    q = Logistic.from_data(X, y, classes=["dog", "cat"], test=(X[:5], y[:5]))
    assert q.n == 50 and q.y[0] == (0 if y[0] == "dog" else 1)
    assert (
        Logistic.from_data(
            datasets.Dataset(X[:40], y[:40], X[40:], y[40:], np.array(["cat", "dog"]))
        ).n
        == 40
    )
    with pytest.raises(
        ValueError, match=r"y\[\d+\] = 'cow' is not one of the classes \['cat', 'dog'\]"
    ):
        Logistic.from_data(X, np.where(X[:, 1] > 1.5, "cow", y), classes=["cat", "dog"])


# ------------------------------------------------------------------------ training runs
def _heavy_ball(problem, ops, seeds, *, lr, momentum, steps, hp=None):
    """Synchronous heavy ball (τ = 0) by hand, velocity form: t ← g + μ t, x ← x − η t."""
    hp = hp or {}

    def one(seed):
        dkey = _rng.stream_keys(seed[None], _rng.DATA_STREAM)[0]
        start = problem.default_init()
        if start is None:
            x = problem.init(ops, _rng.stream_keys(seed[None], _rng.INIT_STREAM)[0])
        else:
            x = jax.tree.map(lambda a: jnp.asarray(a, ops.X.dtype), start)
        batches = problem.sample(ops, dkey, jnp.arange(steps, dtype=jnp.int32))

        def step(carry, batch):
            x, t = carry
            g = problem.grad(ops, x, batch, hp)
            t = jax.tree.map(lambda t, g: g + momentum * t, t, g)
            return (jax.tree.map(lambda x, t: x - lr * t, x, t), t), None

        (x, _), _ = jax.lax.scan(step, (x, jax.tree.map(jnp.zeros_like, x)), batches)
        return problem.metrics(ops, x)

    return jax.jit(jax.vmap(one))(jnp.asarray(seeds, jnp.int32))


@pytest.mark.slow  # the same claim for the same MLP runs by default through the engine
# (test_problems_engine: ≥ 0.93 after heavy ball); this hand-scanned copy compiles for 4 s
def test_mlp_learns_digits_with_heavy_ball(digits):
    """hidden (32,), tanh, batch 32, η = 0.1, μ = 0.9, 300 steps: ≥ 0.93 held-out accuracy per seed."""
    p = MLP(digits, hidden=(32,), batch=32)
    m = _heavy_ball(p, p.operands(jnp.float32), range(4), lr=0.1, momentum=0.9, steps=300)
    acc = np.asarray(m["accuracy"])
    assert acc.min() >= 0.93, acc
    assert np.asarray(m["error"]).max() < 0.1


def test_logistic_loss_halves_with_sgd(digits):
    p = Logistic.from_dataset(digits, batch=32)
    ops = p.operands(jnp.float32)
    start = float(jax.jit(p.metrics)(ops, jax.tree.map(jnp.asarray, p.default_init()))["error"])
    m = _heavy_ball(p, ops, range(2), lr=0.1, momentum=0.0, steps=300)
    assert np.all(np.asarray(m["error"]) < 0.5 * start)
    assert np.all(np.asarray(m["accuracy"]) > 0.9)


def test_least_squares_and_quadratic_converge():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(200)
    ls = LeastSquares.from_data(X, y, batch=16)
    m = _heavy_ball(ls, ls.operands(jnp.float32), range(2), lr=0.05, momentum=0.5, steps=400)
    assert np.all(np.asarray(m["error"]) < 1e-3)
    q = Quadratic([0.5, 1.0, 2.0], noise=0.0)
    ops = q.operands(jnp.float32)
    m = jax.jit(lambda: _heavy_ball_q(q, ops))()
    assert float(m["error"]) < 1e-6


def _heavy_ball_q(q, ops):
    x = jnp.ones(3, jnp.float32)
    z = q.sample(ops, _key(0), jnp.arange(200, dtype=jnp.int32))

    def step(x, zk):
        return x - 0.3 * q.grad(ops, x, zk, {"noise": jnp.float32(0.0)}), None

    x, _ = jax.lax.scan(step, x, z)
    return q.metrics(ops, x)


def test_saddle_noise_escapes_and_batch_scales_noise():
    """From the saddle, noise pushes trajectories to a minimum; a larger batch m lowers the noise floor."""
    p = QuarticSaddle(4, noise=1.0)
    ops = p.operands(jnp.float32)
    key = _key(0)

    @jax.jit  # one program for the three runs (the values are arguments)
    def run(noise, batch):
        hp = {"noise": noise, "batch": batch}
        z = p.sample(ops, key, jnp.arange(3000, dtype=jnp.int32))

        def step(x, zk):
            return x - 0.02 * p.grad(ops, x, zk, hp), None

        x, _ = jax.lax.scan(step, jnp.zeros(4, jnp.float32), z)
        return p.metrics(ops, x)

    still = run(jnp.float32(0.0), jnp.float32(1.0))
    assert float(still["error"]) == pytest.approx(0.25) and float(still["min_hess_eig"]) == -1.0
    m1, m64 = run(jnp.float32(0.3), jnp.float32(1.0)), run(jnp.float32(0.3), jnp.float32(64.0))
    assert float(m1["min_hess_eig"]) > 0 and float(m64["min_hess_eig"]) > 0
    assert float(m64["error"]) < float(m1["error"])
