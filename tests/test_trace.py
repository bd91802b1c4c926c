"""A user-supplied staleness trace: equal to the constant model when constant, to NumPy otherwise."""

import jax
import numpy as np
import pytest
from conftest import reference_msgd, sin2

import asyncjax as aj
from asyncjax import delays


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _one_device():
    return jax.local_devices()[:1]


# The sweeps of the constant-trace and the shared-compilation tests: one compiled engine per
# trace shape.
GRID = dict(momentum=[0.5, 0.9], lr=[5e-3, 3e-2], seed=range(4))
STEPS = 600
RUN = dict(steps=STEPS, record_every=100, devices=_one_device())


@pytest.mark.parametrize("per_seed", [False, True], ids=["one-for-all", "one-per-seed"])
def test_a_constant_trace_is_the_constant_model_bit_for_bit(pca, per_seed):
    steps, tau = STEPS, 7
    values = np.full((4, steps), tau) if per_seed else np.full(steps, tau)
    grid, kw = GRID, RUN
    ref = aj.sweep(pca, aj.Grid(delay=tau, **grid), **kw)
    res = aj.sweep(pca, aj.Grid(**grid), delay_model=delays.trace(values), **kw)
    for name in ("error", "norm", "final", "diverged_at"):
        np.testing.assert_array_equal(res[name], ref[name], err_msg=name)
    assert (res["diverged_at"] >= 0).any()  # lr = 3e-2 at μ = 0.9 diverges, so that is compared too
    np.testing.assert_array_equal(res["delay_trace"], np.atleast_2d(values))


def test_a_varying_trace_per_seed_follows_the_numpy_loop(pca, x64):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 12, size=(3, 250))
    model = delays.trace(values)
    for seed in range(3):
        tr = aj.simulate(
            pca, delay_model=model, momentum=0.7, lr=5e-3, seed=seed, steps=250, record_every=1
        )
        taus = aj.delay_stream(model, 0, seed, 250, 12)
        np.testing.assert_array_equal(taus, values[seed])
        ref = reference_msgd(aj.data_stream(pca, seed, 250), 0.7, 5e-3, taus, pca.default_init())
        np.testing.assert_allclose(tr.error, sin2(ref), rtol=1e-9, atol=1e-12)


def test_repeat_cycles_a_short_trace(pca, x64):
    # 250 steps, as the test above: its data stream's eager ops are compiled for that length
    model = delays.trace([0, 5, 2], repeat=True)
    tr = aj.simulate(
        pca, delay_model=model, momentum=0.5, lr=5e-3, seed=1, steps=250, record_every=1
    )
    ref = reference_msgd(
        aj.data_stream(pca, 1, 250), 0.5, 5e-3, np.resize([0, 5, 2], 250), pca.default_init()
    )
    np.testing.assert_allclose(tr.error, sin2(ref), rtol=1e-9, atol=1e-12)


def test_same_shaped_traces_share_compiled_code(pca):
    """The first sweep is the one-for-all constant trace's (compiled there unless the caches
    were emptied since); another trace of the same shape and largest delay compiles nothing."""
    aj.sweep(pca, aj.Grid(**GRID), delay_model=delays.trace(np.full(STEPS, 7)), **RUN)
    before = aj.compile_count()
    aj.sweep(pca, aj.Grid(**GRID), delay_model=delays.trace(np.arange(STEPS) % 8), **RUN)
    assert aj.compile_count() == before


def test_trace_files(tmp_path, pca):
    values = np.array([[1, 2, 3, 0], [4, 0, 0, 1]])
    np.save(tmp_path / "t.npy", values)
    np.savetxt(tmp_path / "t.csv", values, delimiter=",", fmt="%d")
    np.savetxt(tmp_path / "col.csv", values[0], fmt="%d")  # one value per line: one sequence
    for path, shape in (("t.npy", (2, 4)), ("t.csv", (2, 4)), ("col.csv", (1, 4))):
        model = delays.trace(tmp_path / path)
        assert model.values.shape == shape
        np.testing.assert_array_equal(model.values, values[: shape[0]])
    assert delays.trace(tmp_path / "t.npy") == delays.trace(values)  # equal settings, equal key


@pytest.mark.parametrize(
    "values,buffer,match",
    [
        ([0, 3, 9, 2], 5, r"trace\[2\] = 9 does not fit the delay buffer of 5 iterates"),
        (
            [[0, 1], [2, 40]],
            8,
            r"trace\[1, 1\] \(row 1: seed 1\) = 40 does not fit the delay buffer of 8",
        ),
        ([0, 1, -2, 3], None, r"trace\[2\] = -2(\.0)? is negative"),
        ([[0, 1, 2], [1, 1.5, 0]], None, r"trace\[1, 1\] = 1\.5 is not an integer"),
        ([0, np.nan], None, r"trace contains a non-finite value"),
    ],
)
def test_bad_traces_fail_before_compiling_naming_the_entry(pca, values, buffer, match):
    before = aj.compile_count()
    with pytest.raises(ValueError, match=match):
        aj.sweep(
            pca,
            aj.Grid(lr=1e-3, seed=range(2)),
            steps=2,
            record_every=1,
            delay_model=delays.trace(values),
            buffer=buffer,
        )
    assert aj.compile_count() == before


def test_runs_the_trace_cannot_serve_are_refused(pca):
    with pytest.raises(ValueError, match=r"seed 2 has no row in the trace, which holds 2 rows"):
        aj.sweep(
            pca,
            aj.Grid(lr=1e-3, seed=range(3)),
            steps=4,
            record_every=2,
            delay_model=delays.trace(np.zeros((2, 4))),
        )
    with pytest.raises(
        ValueError, match=r"the trace holds 4 steps but the run takes 6; pass repeat=True"
    ):
        aj.sweep(
            pca, aj.Grid(lr=1e-3), steps=6, record_every=2, delay_model=delays.trace(np.zeros(4))
        )
    with pytest.raises(ValueError, match=r"needs its values"):
        aj.sweep(pca, aj.Grid(lr=1e-3), steps=6, record_every=2, delay_model="trace")
    with pytest.raises(ValueError, match=r"unknown grid axis 'delay'"):
        aj.sweep(
            pca,
            aj.Grid(lr=1e-3, delay=[1, 2]),
            steps=4,
            record_every=2,
            delay_model=delays.trace(np.ones(4)),
        )
