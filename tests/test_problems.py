"""Problems and data streams: constructions, equivariance, moments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reference_msgd, sin2

import asyncjax as aj
from asyncjax import _rng
from asyncjax.problems import sample_block


def _rotation(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


def test_full_covariance_matches_reference_in_original_coordinates():
    """Simulating in the eigenbasis is exact: a reference loop in the original basis agrees."""
    lam = np.array([5.0, 2.0, 1.5, 1.0, 0.5])
    q = _rotation(5, 0)
    cov = q @ np.diag(lam) @ q.T
    problem = aj.StreamingPCA.from_covariance(cov)
    v0 = np.random.default_rng(1).standard_normal(5)
    with jax.enable_x64(True):
        trace = aj.simulate(
            problem, momentum=0.6, lr=4e-3, delay=3, seed=7, steps=300, record_every=1, init=v0
        )
        ys = aj.data_stream(problem, 7, 300)
    xs = ys @ problem.basis.T  # X_k = Q Y_k, in the original coordinates
    ref = reference_msgd(xs, 0.6, 4e-3, np.full(300, 3), v0)
    np.testing.assert_allclose(trace.error, sin2(ref, problem.top_eigenvector), atol=1e-9)
    np.testing.assert_allclose(problem.from_eigenbasis(trace.final), ref[-1], atol=1e-9)


def test_eigenbasis_of_covariance_sorted_and_signed():
    cov = np.diag([1.0, 3.0, 2.0])
    problem = aj.StreamingPCA.from_covariance(cov)
    np.testing.assert_allclose(problem.eigenvalues, [3.0, 2.0, 1.0])
    np.testing.assert_allclose(np.abs(problem.top_eigenvector), [0.0, 1.0, 0.0], atol=1e-12)


def test_finite_data_set_matches_reference():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((50, 3)) * np.array([3.0, 1.0, 0.5]) + 2.0
    problem = aj.StreamingPCA.from_data(data)
    centred = data - data.mean(axis=0)
    np.testing.assert_allclose(
        problem.eigenvalues, np.linalg.eigvalsh(centred.T @ centred / 50)[::-1]
    )
    v0 = np.ones(3)
    with jax.enable_x64(True):
        trace = aj.simulate(
            problem, momentum=0.5, lr=1e-2, delay=2, seed=1, steps=200, record_every=1, init=v0
        )
        ys = aj.data_stream(problem, 1, 200)
    xs = ys @ problem.basis.T
    # every observation is one of the (centred) rows
    dist = np.abs(xs[:, None, :] - centred[None]).max(axis=-1).min(axis=1)
    assert dist.max() < 1e-9
    assert len({tuple(np.round(x, 6)) for x in xs}) > 30  # many different rows drawn
    ref = reference_msgd(xs, 0.5, 1e-2, np.full(200, 2), v0)
    np.testing.assert_allclose(trace.error, sin2(ref, problem.top_eigenvector), atol=1e-9)


@pytest.mark.parametrize("dist", ["gaussian", "rademacher", "uniform"])
def test_sample_moments(dist):
    """Second and fourth moments of 200k draws against the model (5-sigma tolerances)."""
    lam = np.array([4.0, 1.0])
    problem = aj.StreamingPCA(lam, dist)
    key = _rng.stream_keys(jnp.asarray([0]), 0)[0]
    block = jax.jit(sample_block, static_argnums=0)  # one program, not op by op
    y = np.asarray(
        block(dist, problem.operands(), key, jnp.arange(200_000, dtype=jnp.int32)), np.float64
    )
    n = y.shape[0]
    cov = y.T @ y / n
    np.testing.assert_allclose(np.diag(cov), lam, rtol=5 * np.sqrt(2.0 / n) * 1.5)
    assert abs(cov[0, 1]) < 5 * np.sqrt(lam[0] * lam[1] / n)
    alpha = problem.fourth_moments()
    y2 = y**2
    est = y2.T @ y2 / n
    se = np.sqrt((y2[:, :, None] * y2[:, None, :]).var(axis=0) / n)
    assert np.all(np.abs(est - alpha) < 5 * se + 1e-12)
    if dist == "rademacher":
        np.testing.assert_allclose(np.abs(y), np.sqrt(lam) * np.ones_like(y))
    if dist == "uniform":
        assert np.all(np.abs(y) <= np.sqrt(3 * lam) + 1e-6)


def test_normals_are_standard_and_independent_across_steps_and_seeds():
    keys = _rng.stream_keys(jnp.arange(2), 0)
    steps = jnp.arange(100_000, dtype=jnp.int32)
    normals = jax.jit(_rng.normals, static_argnums=(2, 3))  # one program, not op by op
    z = np.stack([np.asarray(normals(k, steps, 4, jnp.float32), np.float64) for k in keys])
    # (2, n, 4)
    n = z.shape[1]
    flat = z.reshape(-1)
    assert abs(flat.mean()) < 5 / np.sqrt(flat.size)
    assert abs(flat.var() - 1) < 5 * np.sqrt(2 / flat.size)
    assert abs(np.mean(flat**4) - 3) < 5 * np.sqrt(96 / flat.size)
    assert np.isfinite(flat).all()
    corr = [
        np.corrcoef(z[0, :-1, 0], z[0, 1:, 0])[0, 1],  # consecutive steps
        np.corrcoef(z[0, :, 0], z[1, :, 0])[0, 1],  # two seeds
        np.corrcoef(z[0, :, 0], z[0, :, 1])[0, 1],
    ]  # two components
    assert np.all(np.abs(corr) < 5 / np.sqrt(n))


def test_float64_stream_has_52_bit_uniforms():
    with jax.enable_x64(True):
        key = _rng.stream_keys(jnp.asarray([3]), 0)[0]
        uniforms = jax.jit(_rng.uniforms, static_argnums=(2, 3))  # one program, not op by op
        u = np.asarray(uniforms(key, jnp.arange(1000, dtype=jnp.int32), 2, jnp.float64))
    assert u.dtype == np.float64 and 0 <= u.min() and u.max() < 1
    assert np.any((u * 2**23) % 1 != 0)  # finer than float32's grid


def test_problem_operands_reused_without_recompiling():
    a = aj.StreamingPCA([4.0, 3.0, 2.0, 1.0])
    b = aj.StreamingPCA([9.0, 1.0, 0.5, 0.1])
    kw = dict(momentum=0.5, lr=1e-3, seed=0, steps=20, record_every=10)
    ta = aj.simulate(a, **kw)
    n = aj.compile_count()
    tb = aj.simulate(b, **kw)
    assert aj.compile_count() == n
    assert not np.array_equal(ta.error, tb.error)
