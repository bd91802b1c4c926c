"""Time complexities with fixed compute times, against SCIENCE.md's worked example and brute force.

The brute-force checks minimise over every subset of workers, not only over the m fastest,
so they also check that sorting the times and taking prefixes is the right reduction; the
Ringmaster window is checked against a heap-based event loop of Ringmaster ASGD.
"""

import heapq
import itertools

import numpy as np
import pytest

from asyncjax import theory


def _sqrt_times(n):
    return np.sqrt(np.arange(1, n + 1))


# ------------------------------------------------------------------ the worked example
@pytest.mark.parametrize("n", [15, 16, 20, 50, 100, 1000, 10_000])
def test_best_m_is_15_for_every_n_from_15(n):
    """SCIENCE.md §8: τ_i = √i, s = 10: the optimal bound uses the 15 fastest workers."""
    assert theory.optimal_workers(_sqrt_times(n), 10.0) == 15


@pytest.mark.parametrize(
    "n,asgd,minibatch",
    [(100, 1.52, 2.8), (1000, 4.19, 8.2), (10_000, 12.9, 25.7)],
)
def test_worked_example_ratios(n, asgd, minibatch):
    """The ratios to the optimal bound that SCIENCE.md §8 quotes, to the digits it quotes."""
    taus = _sqrt_times(n)
    best = theory.time_complexity(taus, 10.0)
    assert best == pytest.approx(3.8977, abs=1e-4)  # the same for every n >= 15
    digits = lambda x: len(str(x).split(".")[1])  # noqa: E731
    ratio = theory.time_complexity(taus, 10.0, "asgd") / best
    assert round(ratio, digits(asgd)) == asgd
    ratio = theory.time_complexity(taus, 10.0, "minibatch") / best
    assert round(ratio, digits(minibatch)) == minibatch


def test_worked_example_msync():
    """m-Synchronous SGD waits for the 10 fastest there: 1.62x the optimal bound for every n >= 15."""
    for n in [15, 100, 10_000]:
        taus = _sqrt_times(n)
        assert theory.optimal_workers(taus, 10.0, "msync") == 10
        ratio = theory.time_complexity(taus, 10.0, "msync") / theory.time_complexity(taus, 10.0)
        assert ratio == pytest.approx(1.6226, abs=1e-4)


# ------------------------------------------------------------------------ brute force
def _subset_minimum(taus, s, per_round):
    """min over every non-empty subset S of per_round(S) (1 + s/|S|), and the best |S|."""
    best, best_m = np.inf, None
    for m in range(1, len(taus) + 1):
        for subset in itertools.combinations(taus, m):
            value = per_round(np.array(subset)) * (1.0 + s / m)
            if value < best:
                best, best_m = value, m
    return best, best_m


def _harmonic(t):
    return len(t) / np.sum(1.0 / t)


@pytest.mark.parametrize("seed", range(8))
def test_optimal_and_msync_minimise_over_every_subset(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    taus = rng.lognormal(0.0, 1.0, n)  # unsorted on purpose
    s = float(rng.choice([0.0, 0.3, 4.0, 50.0]))
    want, want_m = _subset_minimum(taus, s, _harmonic)
    assert theory.time_complexity(taus, s) == pytest.approx(want, rel=1e-12)
    assert theory.optimal_workers(taus, s) == want_m
    want, want_m = _subset_minimum(taus, s, np.max)
    assert theory.time_complexity(taus, s, "msync") == pytest.approx(want, rel=1e-12)
    assert theory.optimal_workers(taus, s, "msync") == want_m


@pytest.mark.parametrize("seed", range(4))
def test_each_formula_by_a_plain_loop(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 30))
    taus = rng.uniform(0.1, 5.0, n)
    s = float(rng.uniform(0.0, 20.0))
    t = sorted(taus)
    harmonic = [(m + 1) / sum(1.0 / x for x in t[: m + 1]) for m in range(n)]
    optimal = min(harmonic[m] * (1 + s / (m + 1)) for m in range(n))
    assert theory.time_complexity(taus, s, "optimal") == pytest.approx(optimal, rel=1e-12)
    assert theory.time_complexity(taus, s, "asgd") == pytest.approx(
        harmonic[-1] * (1 + s / n), rel=1e-12
    )
    assert theory.time_complexity(taus, s, "minibatch") == pytest.approx(
        t[-1] * (1 + s / n), rel=1e-12
    )
    for m in range(1, n + 1):
        assert theory.time_complexity(taus, s, "msync", m=m) == pytest.approx(
            t[m - 1] * (1 + s / m), rel=1e-12
        )
    window = min(2 * harmonic[m] * (1 + 6 / (m + 1)) for m in range(n))
    assert theory.ringmaster_window(taus, 6) == pytest.approx(window, rel=1e-12)


def test_orderings_between_methods():
    """optimal ≤ asgd, optimal ≤ msync ≤ minibatch = msync with m = n; equal times tie them all."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        taus = rng.lognormal(0.0, 1.5, int(rng.integers(1, 50)))
        s = float(rng.uniform(0.0, 100.0))
        opt = theory.time_complexity(taus, s)
        assert opt <= theory.time_complexity(taus, s, "asgd") * (1 + 1e-12)
        msync = theory.time_complexity(taus, s, "msync")
        minibatch = theory.time_complexity(taus, s, "minibatch")
        assert opt <= msync * (1 + 1e-12) and msync <= minibatch * (1 + 1e-12)
        assert theory.time_complexity(taus, s, "msync", m=taus.size) == minibatch
        assert theory.time_complexity(rng.permutation(taus), s) == pytest.approx(opt, rel=1e-12)
    equal = np.full(8, 2.0)
    values = [theory.time_complexity(equal, 3.0, m) for m in theory.TIME_METHODS]
    np.testing.assert_allclose(values, 2.0 * (1 + 3.0 / 8), rtol=1e-14)
    assert theory.optimal_workers(equal, 3.0) == 8
    # no noise: one worker is as good as eight, and ties go to the smaller m
    assert theory.optimal_workers(equal, 0.0) == 1


# ------------------------------------------------------------------ Ringmaster's window
def _ringmaster_update_times(taus, R, updates, stops):
    """Wall-clock times of the first ``updates`` applied updates of Ringmaster ASGD (time 0 first).

    A heap of (finish time, worker, version read); an arrival whose delay k − version is
    below R is applied, any other discarded; the finisher restarts at the current point, and
    with stops so does every worker whose delay has reached R.
    """
    n = len(taus)
    k, times = 0, [0.0]
    job = {i: (taus[i], 0) for i in range(n)}
    heap = [(taus[i], i, 0) for i in range(n)]
    heapq.heapify(heap)
    while len(times) <= updates:
        t, i, v = heapq.heappop(heap)
        if job[i] != (t, v):  # a stopped job
            continue
        if k - v < R:
            k += 1
            times.append(t)
            if stops:
                for j in range(n):
                    if j != i and k - job[j][1] >= R:
                        job[j] = (t + taus[j], k)
                        heapq.heappush(heap, (t + taus[j], j, k))
        job[i] = (t + taus[i], k)
        heapq.heappush(heap, (t + taus[i], i, k))
    return np.array(times)


@pytest.mark.parametrize("stops", [False, True])
def test_no_r_consecutive_ringmaster_updates_take_longer_than_the_window(stops):
    rng = np.random.default_rng(3)
    for trial in range(12):
        n = int(rng.integers(1, 30))
        taus = _sqrt_times(n) if trial % 2 else rng.lognormal(0.0, 1.5, n)
        taus = rng.permutation(taus)
        for R in [1, 2, 6, 17]:
            times = _ringmaster_update_times(taus, R, 200, stops)
            longest = np.max(times[R:] - times[:-R])
            assert longest <= theory.ringmaster_window(taus, R) * (1 + 1e-12)


def test_window_grows_with_r_and_is_twice_the_optimal_form():
    taus = _sqrt_times(100)
    windows = [theory.ringmaster_window(taus, R) for R in range(1, 40)]
    assert np.all(np.diff(windows) > 0)
    # t(R) is twice the optimal bound's form with s = R
    assert theory.ringmaster_window(taus, 10) == pytest.approx(
        2 * theory.time_complexity(taus, 10.0), rel=1e-14
    )
    assert theory.ringmaster_window([3.0], 1) == pytest.approx(2 * 3.0 * 2)


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: theory.time_complexity([], 1.0), r"taus must not be empty"),
        (lambda: theory.time_complexity([1.0, -2.0], 1.0), r"taus must be > 0.*got -2\.0"),
        (lambda: theory.time_complexity([1.0, 0.0], 1.0), r"taus must be > 0.*got 0\.0"),
        (lambda: theory.time_complexity([1.0, np.nan], 1.0), r"taus contains a non-finite"),
        (lambda: theory.time_complexity([1.0, np.inf], 1.0), r"taus contains a non-finite"),
        (lambda: theory.time_complexity([[1.0, 2.0]], 1.0), r"taus must have 1 dimension"),
        (lambda: theory.time_complexity(["1"], 1.0), r"taus must be numeric"),
        (lambda: theory.time_complexity([1.0], -0.5), r"s = sigma\^2/eps must be >= 0; got -0\.5"),
        (lambda: theory.time_complexity([1.0], np.nan), r"s contains a non-finite"),
        (lambda: theory.time_complexity([1.0], [1.0, 2.0]), r"s must have 0 dimension"),
        (
            lambda: theory.time_complexity([1.0], 1.0, "asdg"),
            r"got 'asdg' \(did you mean 'asgd'\?\)",
        ),
        (lambda: theory.time_complexity([1.0], 1.0, "rennala"), r"method must be one of 'optimal'"),
        (lambda: theory.time_complexity([1.0], 1.0, "asgd", m=1), r"m applies to method='msync'"),
        (
            lambda: theory.time_complexity([1.0, 2.0], 1.0, "msync", m=3),
            r"m must be <= .*\(2\); got 3",
        ),
        (lambda: theory.time_complexity([1.0], 1.0, "msync", m=0), r"m must be >= 1, got 0"),
        (lambda: theory.time_complexity([1.0], 1.0, "msync", m=1.5), r"m must be an integer"),
        (lambda: theory.optimal_workers([1.0], 1.0, "asgd"), r"one of 'optimal', 'msync'"),
        (lambda: theory.ringmaster_window([1.0], 0), r"R must be >= 1, got 0"),
        (lambda: theory.ringmaster_window([1.0], 2.5), r"R must be an integer, got 2\.5"),
        (lambda: theory.ringmaster_window([1.0], True), r"R must be an integer, got True"),
        (lambda: theory.ringmaster_window([-1.0], 2), r"taus must be > 0"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_numpy_integers_and_scalars_are_accepted():
    taus = np.array([1.0, 2.0, 4.0])
    assert theory.ringmaster_window(taus, np.int64(2)) == theory.ringmaster_window(taus, 2)
    assert theory.time_complexity(taus, np.float32(2.0), "msync", m=np.int32(2)) == 2.0 * 2
    assert isinstance(theory.time_complexity(taus, 1), float)
    assert isinstance(theory.optimal_workers(taus, 1), int)
