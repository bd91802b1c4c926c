"""The worker model: a virtual clock of M workers inside the scan, against constant delays and NumPy."""

import heapq

import jax
import numpy as np
import pytest
from conftest import reference_msgd, sin2
from scipy import stats

import asyncjax as aj
from asyncjax import delays
from asyncjax._reference.workers import simulate_worker_staleness
from asyncjax.delays import schedule, worker_schedule


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def one_device():
    return jax.local_devices()[:1]


# ------------------------------------------------------------ bit for bit against constant delay
@pytest.mark.parametrize(
    "model",
    [delays.workers("constant"), delays.workers("lognormal", shape=0.0)],
    ids=["shared-clock", "per-trajectory-clock"],
)
def test_constant_compute_times_are_constant_delay_m_minus_one_bit_for_bit(pca, model):
    """Round robin with ties to the lowest index: τ_k = min(k, M − 1), the constant-delay model's.

    Lognormal times with σ = 0 are exactly 1, but go through the per-trajectory
    clock (finish times, argmin, gathered snapshot slots) instead of the
    shared one, so both code paths are pinned.
    """
    workers = [1, 2, 5, 11]
    kw = dict(steps=800, record_every=100, devices=one_device())
    # lr = 0.02 with μ = 0.9 makes the larger delays diverge, so diverged_at is compared too
    grid = dict(momentum=[0.5, 0.9], lr=[5e-3, 2e-2], seed=range(6))
    ref = aj.sweep(pca, aj.Grid(delay=[w - 1 for w in workers], **grid), buffer=11, **kw)
    res = aj.sweep(pca, aj.Grid(workers=workers, **grid), delay_model=model, **kw)
    for name in ("error", "norm", "final", "diverged_at"):
        np.testing.assert_array_equal(res[name], ref[name], err_msg=name)
    assert (res["diverged_at"] >= 0).any() and (res["diverged_at"] == -1).any()
    # the clock's records: τ = M − 1 after the first M − 1 updates, one update per 1/M time
    np.testing.assert_array_equal(
        res["staleness_max"], np.broadcast_to(np.array(workers)[:, None] - 1, (4, 6))
    )
    expected_time = np.ceil(res.coords["step"][None, :] / np.array(workers)[:, None])
    np.testing.assert_array_equal(
        res["wall_time"], np.broadcast_to(expected_time[:, None], (4, 6, 9))
    )
    assert res.dims["wall_time"] == ("workers", "seed", "step")


# the run of test_sweep_results_with_the_worker_model_save_and_load too (one compiled engine)
SMALL_WORKER_RUN = dict(steps=40, record_every=20, buffer=8, delay_model="workers", chunk_size=64)


def test_one_compilation_serves_every_worker_count_up_to_the_slots(pca):
    kw = SMALL_WORKER_RUN
    aj.sweep(pca, aj.Grid(workers=[1, 3], lr=1e-2, seed=range(2)), **kw)
    before = aj.compile_count()
    aj.sweep(pca, aj.Grid(workers=[8, 5], lr=2e-2, seed=range(2)), **kw)
    assert aj.compile_count() == before


# ------------------------------------------------------------ the engine follows its clock
@pytest.mark.parametrize(
    "model",
    [
        delays.workers("exponential"),
        # a straggler is one more speed (exp-speeds); the engine reading this clock's τ_k is
        # also checked against NumPy in test_mitigations (drop-stale on the straggler's clock)
        pytest.param(delays.workers("exponential", straggler=10.0), marks=pytest.mark.slow),
        delays.workers("exponential", speeds=[1.0, 2.0, 0.5, 3.0, 1.0]),
        delays.workers("lognormal", shape=1.0),
        # the gamma law's sampler costs 13 s to compile; it takes the per-trajectory clock's path,
        # which lognormal pins above (and its law is tested in the staleness histograms)
        pytest.param(delays.workers("gamma", shape=2.0), marks=pytest.mark.slow),
        delays.workers("constant", straggler=3.0),
    ],
    ids=["exp", "exp-straggler", "exp-speeds", "lognormal", "gamma", "constant-straggler"],
)
def test_trajectory_is_eq5_with_the_clocks_staleness(pca, x64, model):
    """The engine's iterates equal a NumPy loop of eq. 5 fed the schedule's τ_k (the stale point is the
    read point of step k − τ_k, which is what the finisher's snapshot slot holds)."""
    steps, seed, m = 400, 3, 5
    tr = aj.simulate(
        pca,
        delay_model=model,
        momentum=0.6,
        lr=5e-3,
        workers=m,
        seed=seed,
        steps=steps,
        record_every=1,
    )
    sched = worker_schedule(model, m, seed, steps)
    xs = aj.data_stream(pca, seed, steps)
    ref = reference_msgd(xs, 0.6, 5e-3, sched["staleness"], pca.default_init())
    np.testing.assert_allclose(tr.error, sin2(ref), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tr.final, ref[-1], rtol=1e-9)
    assert len(np.unique(sched["staleness"])) > 2  # the staleness really varies
    np.testing.assert_allclose(tr.wall_time[-1], sched["time"][-1], rtol=1e-12)
    np.testing.assert_array_equal(
        aj.delay_stream(model, m, seed, steps, buffer=m), sched["staleness"]
    )


def _heap_replay(first, draws, speed, m):
    """A float64 heap simulation of the clock fed given compute times (mean-one draws / speed)."""
    events = [(first[i] / speed[i], i, 0) for i in range(m)]
    heapq.heapify(events)
    out = np.empty((len(draws), 2), np.int64)
    for k, e in enumerate(draws):
        t, i, read = heapq.heappop(events)
        out[k] = i, k - read
        heapq.heappush(events, (t + e / speed[i], i, k + 1))
    return out


@pytest.mark.parametrize(
    "model",
    [
        delays.workers("lognormal", shape=0.8, speeds=[1, 1, 2, 0.5, 1, 1]),
        # the same clock logic with other draws (11 s, the gamma sampler's compile)
        pytest.param(delays.workers("gamma", shape=0.5, straggler=4.0), marks=pytest.mark.slow),
    ],
)
def test_per_trajectory_clock_equals_a_heap_fed_the_same_draws(x64, model):
    """The clock's logic (earliest finisher, ties, relative times, re-reads) against an independent heap."""
    m, steps, seed = 6, 3000, 11

    @jax.jit  # one program for the draws, not one small compile per eager op
    def first_and_step_draws(seeds):
        key = aj._rng.stream_keys(seeds, aj._rng.DELAY_STREAM)[0]
        ks = jax.numpy.arange(steps, dtype=np.int32)
        return model.first_draws(key, m, np.float64), model.step_draws(key, ks, np.float64)

    first, draws = map(np.asarray, first_and_step_draws(np.array([seed], np.int32)))
    ref = _heap_replay(first, draws, model.speed(m), m)
    sched = worker_schedule(model, m, seed, steps)
    np.testing.assert_array_equal(sched["worker"], ref[:, 0])
    np.testing.assert_array_equal(sched["staleness"], ref[:, 1])


# ------------------------------------------------------------ the queuing law
def _thinned(tau, burn, lag):
    """Every lag-th staleness after a burn-in: successive values are dependent (the ages of the M
    reads are a Markov chain); values many mean-staleness apart are nearly independent."""
    return tau[..., burn::lag].reshape(-1)


def _chi2_vs_pmf(samples, pmf_fn, min_expected=5.0):
    """χ² goodness of fit on l = 0, 1, … with the tail merged into the last bin that keeps ≥ 5 expected."""
    n = samples.size
    top = 0
    while n * pmf_fn(top + 1) >= min_expected:
        top += 1
    probs = np.array([pmf_fn(l) for l in range(top)] + [1.0 - sum(pmf_fn(l) for l in range(top))])
    counts = np.bincount(np.minimum(samples, top), minlength=top + 1)
    return stats.chisquare(counts, n * probs)


@pytest.mark.parametrize(
    "model,m",
    [
        # other worker counts are other values of the same check
        pytest.param(delays.workers("exponential"), 2, marks=pytest.mark.slow),
        (delays.workers("exponential"), 4),
        pytest.param(delays.workers("exponential"), 16, marks=pytest.mark.slow),
        # base = 0 and noise scale 1 are exponential times too, through the full clock (the
        # gamma sampler's compile, 7 s, is left to the slow set; the histograms test that law)
        (delays.workers("exponential", base=0.0, noise_scale=1.0), 4),
        pytest.param(delays.workers("gamma", shape=1.0), 4, marks=pytest.mark.slow),
    ],
    ids=["memoryless-2", "memoryless-4", "memoryless-16", "full-clock-4", "gamma-full-clock-4"],
)
def test_exponential_times_give_the_geometric_law(model, m):
    """P(τ = l) = (1/M)(1 − 1/M)^l. Exponential times with a base (0) or gamma times with k = 1 are
    exponential too, but run the full clock, so this also checks the memoryless shortcut against
    the clock it replaces.

    About 12 000 nearly independent samples (400 seeds, every 30·M-th update after a 30·M burn-in): a
    χ² test at p > 0.001 (fixed seeds, so the outcome is deterministic; 0.001 leaves room for the
    slight dependence left after thinning). The test has power: the law of 3M/4 workers (a mean
    25–35% lower) fails it by far (the second assertion).
    """
    lag = 30 * m
    tau = worker_schedule(model, m, np.arange(400), 31 * lag)["staleness"]
    sample = _thinned(tau, lag, lag)
    result = _chi2_vs_pmf(sample, lambda l: aj.theory.staleness_pmf(l, m).item())
    assert result.pvalue > 1e-3, result
    if m > 2:
        wrong = _chi2_vs_pmf(sample, lambda l: aj.theory.staleness_pmf(l, 3 * m // 4).item())
        assert wrong.pvalue < 1e-10


@pytest.mark.parametrize(
    "law,shape,straggler",
    [
        # exponential times are checked by default against the exact geometric law above, and
        # with a 10x straggler against this reference in test_straggler_wall_clock_tail_and_…
        pytest.param("exponential", 1.0, 1.0, marks=pytest.mark.slow),
        pytest.param("exponential", 1.0, 10.0, marks=pytest.mark.slow),
        # every law keeps a case in the fast set (with a straggler); each case is its own
        # compiled clock, and the gamma sampler's costs 10 s
        pytest.param("lognormal", 1.0, 1.0, marks=pytest.mark.slow),
        ("lognormal", 0.5, 10.0),
        pytest.param("gamma", 3.0, 1.0, marks=pytest.mark.slow),
        ("gamma", 0.5, 10.0),
    ],
)
def test_staleness_histogram_matches_the_numpy_reference(law, shape, straggler):
    """Two-sample χ² between the clock and the NumPy heap (independent RNGs), M = 6, thinned as above.

    ~4 000 samples a side, 20 quantile bins; p > 0.001 as above. With a 10× straggler its own updates
    are ~10·(M − 1) old, and the bins reach that tail (bins with fewer than 5 counts are dropped).
    """
    m, lag = 6, 30 * 6
    model = delays.workers(law, shape=shape, straggler=straggler)
    ours = _thinned(worker_schedule(model, m, np.arange(200), 22 * lag)["staleness"], lag, lag)
    theirs = np.concatenate(
        [
            _thinned(
                simulate_worker_staleness(
                    m, 421 * lag, compute=law, shape=shape, straggler=straggler, seed=s
                ),
                lag,
                lag,
            )
            for s in range(10)
        ]
    )
    edges = np.unique(
        np.quantile(np.concatenate([ours, theirs]), np.linspace(0, 1, 21)).astype(int)
    )
    table = np.stack([np.histogram(x, bins=np.append(edges, np.inf))[0] for x in (ours, theirs)])
    table = table[:, table.min(axis=0) >= 5]
    result = stats.chi2_contingency(table)
    assert result.pvalue > 1e-3, (result.pvalue, table)
    if straggler > 1:  # the tail is really there: the straggler's updates are about 10·(M − 1) old
        assert np.mean(ours >= 3 * m) > 0.01


def test_constant_times_with_a_straggler_match_the_reference_exactly():
    """Deterministic times (1 and 10): the clock and the NumPy heap give the same schedule and time."""
    m, steps = 8, 5000
    model = delays.workers("constant", straggler=10.0)
    sched = worker_schedule(model, m, 0, steps)
    tau, times = simulate_worker_staleness(
        m, steps, compute="constant", straggler=10.0, return_time=True
    )
    np.testing.assert_array_equal(sched["staleness"], tau)
    np.testing.assert_allclose(sched["time"], times, rtol=1e-6)
    # wall-clock per update is 1 / (7 + 1/10); the straggler's updates are (7·10 + 0)·… old
    assert sched["time"][-1] / steps == pytest.approx(1 / 7.1, rel=2e-3)
    # the straggler reads just before the 7 fast workers finish at the same time, and finishes first
    # 10 time units later (ties go to worker 0): 7 × 10 updates in between
    assert tau.max() == 70


def test_straggler_wall_clock_tail_and_mean_staleness():
    """One worker 10× slower, exponential times, M = 8, against the NumPy reference.

    Wall-clock per update: the clock's 1/Σspeed = 1/7.1 and the reference's mean (200 000 updates,
    SE ≈ 0.2%) agree within 1%. Tail: P(τ ≥ 6M) from 64 seeds × 25 000 updates against 200 000
    reference updates, within 5 reference standard errors (its updates are correlated, so the SE is
    taken over 20 independent runs). Mean staleness: M − 1 up to the end term A_K/K.
    """
    m, steps = 8, 25_000
    model = delays.workers("exponential", straggler=10.0, bins=1500)
    summary = delays.clock_summary(model, [m], np.arange(64), steps=steps, record_every=5000)
    per_update = summary["wall_time"][0, :, -1].mean() / steps
    runs = [
        simulate_worker_staleness(m, 10_000, straggler=10.0, seed=s, return_time=True)
        for s in range(20)
    ]
    ref_per_update = np.mean([t[-1] / t.size for _, t in runs])
    assert per_update == pytest.approx(1 / 7.1, rel=0.01)
    assert per_update == pytest.approx(ref_per_update, rel=0.01)
    hist = summary["staleness_hist"][0].sum(axis=0)
    ours_tail = hist[6 * m :].sum() / hist.sum()
    ref_tails = np.array([np.mean(tau >= 6 * m) for tau, _ in runs])
    se = ref_tails.std(ddof=1) / np.sqrt(ref_tails.size)
    assert abs(ours_tail - ref_tails.mean()) < 5 * se, (ours_tail, ref_tails.mean(), se)
    assert ours_tail > 3 * (7 / 8) ** 48  # without the straggler it would be (7/8)^48 ≈ 0.0016
    mean = summary["staleness_mean"][
        0
    ]  # = M − 1 − A_K/K with A_K the ages outstanding at the end (~120 here)
    assert np.all((mean <= m - 1) & (mean > m - 1 - 0.03)), mean
    assert mean.mean() == pytest.approx(m - 1, abs=0.01)
    # the mean from the identity equals the mean of the histogram where nothing overflowed
    assert hist[-1] == 0
    assert np.average(np.arange(hist.size), weights=hist) == pytest.approx(mean.mean(), rel=1e-9)


def test_clock_summary_in_seed_chunks_equals_one_call(monkeypatch):
    """The clock, counts and steps of test_sweep_records_share_the_clock…: its sweep's records run
    the same compiled one-call clock."""
    model = delays.workers("lognormal", shape=0.7, bins=16)
    whole = delays.clock_summary(model, [2, 6], np.arange(5), steps=300, record_every=100)
    monkeypatch.setattr(schedule, "CLOCK_CHUNK_BYTES", 1)  # one seed per call (and device)
    parts = delays.clock_summary(model, [2, 6], np.arange(5), steps=300, record_every=100)
    for name in whole:
        np.testing.assert_array_equal(parts[name], whole[name])
    assert whole["staleness_hist"].shape == (2, 5, 16) and whole["wall_time"].shape == (2, 5, 4)


# ------------------------------------------------------------ time stays exact
def test_wall_time_has_no_float32_drift_on_long_runs():
    """One worker for 2^19 updates: the time reaches ~5·10^5, where a float32 running sum rounds every
    addition of an O(1) compute time to 2^-5. Relative times plus compensated per-record sums keep the
    clock within 1e-6 of a float64 replay of the same draws (3e-10 measured); a plain float32 running
    sum is 2.6e-5 off."""
    steps, rec = 2**19, 2**16
    model = delays.workers("exponential")
    summary = delays.clock_summary(model, [1], [5], steps=steps, record_every=rec)

    @jax.jit  # one program for the draws, not one small compile per eager op
    def draws(seeds):
        key = aj._rng.stream_keys(seeds, aj._rng.DELAY_STREAM)[0]
        return aj._rng.uniforms(key, jax.numpy.arange(steps, dtype=np.int32), 2, np.float32)

    u = np.asarray(draws(np.array([5], np.int32)))[:, 1]
    dt64 = -np.log1p(-u.astype(np.float64))
    exact = np.concatenate([[0.0], np.cumsum(dt64)[rec - 1 :: rec]])
    np.testing.assert_allclose(summary["wall_time"][0, 0], exact, rtol=1e-6)
    naive = np.cumsum(dt64.astype(np.float32), dtype=np.float32)[-1]
    assert abs(naive - exact[-1]) / exact[-1] > 1e-5  # what the test guards against


# ------------------------------------------------------------ sweeps
def test_sweep_records_share_the_clock_across_points_and_chunks(pca):
    """The clock depends on (M, seed) only: chunking and the other axes do not change it."""
    grid = aj.Grid(momentum=[0.0, 0.8], seed=range(5), workers=[2, 6], lr=5e-3)
    kw = dict(
        steps=300, record_every=100, delay_model=delays.workers("lognormal", shape=0.7, bins=16)
    )
    a = aj.sweep(pca, grid, chunk_size=3, **kw)
    b = aj.sweep(pca, grid, **kw)
    for name in ("error", "wall_time", "staleness_hist", "staleness_mean"):
        np.testing.assert_array_equal(a[name], b[name])
    assert a.dims["staleness_hist"] == ("seed", "workers", "staleness")  # the grid's order
    assert (
        a["staleness_hist"].shape == (5, 2, 16)
        and a["staleness_hist"].sum(-1).tolist() == [[300, 300]] * 5
    )
    one = aj.simulate(
        pca,
        delay_model=kw["delay_model"],
        momentum=0.8,
        lr=5e-3,
        workers=6,
        seed=3,
        steps=300,
        record_every=100,
    )
    np.testing.assert_array_equal(one.error, a["error"][1, 3, 1])
    np.testing.assert_array_equal(one.wall_time, a["wall_time"][3, 1])
    assert a.attrs["delay"] == {
        "name": "workers",
        "law": "lognormal",
        "shape": 0.7,
        "speeds": None,
        "straggler": 1.0,
        "bins": 16,
    }


def test_sweep_results_with_the_worker_model_save_and_load(pca, tmp_path):
    res = aj.sweep(
        pca, aj.Grid(workers=[1, 3], seed=range(2), lr=5e-3), out=tmp_path / "w", **SMALL_WORKER_RUN
    )
    back = aj.Results.load(tmp_path / "w" / "results.npz")
    for name in ("wall_time", "staleness_hist", "staleness_max", "staleness_mean"):
        np.testing.assert_array_equal(back[name], res[name])
    assert back.coords["staleness"].size == 8 * 8 + 1  # the default bins: 8 per worker slot, + 1


# ------------------------------------------------------------ validation, before any compile
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(workers=[2, 2.5]), r"workers must be a positive integer; got 2\.5"),
        (dict(workers=[0, 2]), r"workers must be a positive integer; got 0$"),
        (dict(workers=[2, 9], buffer=4), r"workers=9 exceeds the 4 worker slots"),
    ],
)
def test_bad_worker_counts_fail_before_compiling(pca, kwargs, match):
    before = aj.compile_count()
    buffer = kwargs.pop("buffer", None)
    with pytest.raises(ValueError, match=match):
        aj.sweep(
            pca,
            aj.Grid(lr=1e-3, **kwargs),
            steps=10,
            record_every=5,
            delay_model="workers",
            buffer=buffer,
        )
    assert aj.compile_count() == before


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(law="weibull"), r"unknown compute-time law 'weibull'; choose one of constant"),
        (dict(law="lognormall"), r"'lognormall' \(did you mean 'lognormal'\?\)"),
        (dict(law="gamma", shape=0.0), r"gamma law needs shape \(k\) > 0; got 0\.0"),
        (dict(law="lognormal", shape=-1.0), r"lognormal law needs shape \(σ\) >= 0; got -1\.0"),
        (dict(speeds=[1.0, -2.0]), r"speeds must be positive; got speeds\[1\] = -2\.0"),
        (dict(straggler=0.0), r"straggler .* must be > 0; got 0\.0"),
        (dict(bins=1), r"bins must be >= 2"),
    ],
)
def test_bad_worker_options_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        delays.workers(**kwargs)


def test_more_workers_than_speeds_is_refused(pca):
    with pytest.raises(ValueError, match=r"workers=4 but speeds gives only 3 workers"):
        aj.sweep(
            pca,
            aj.Grid(workers=[2, 4], lr=1e-3),
            steps=10,
            record_every=5,
            delay_model=delays.workers(speeds=[1, 2, 3]),
        )
