"""Curves, bands and the threshold rule on inputs whose answer is known."""

import numpy as np
import pytest

import asyncjax as aj
from asyncjax import analysis


def test_threshold_interpolates_the_crossing_in_log_error():
    delays = np.array([0.0, 10.0, 20.0, 30.0])
    curve = np.array([0.01, 0.012, 0.04, 0.5])  # 2x baseline = 0.02 between 10 and 20
    thr, censored = analysis.threshold_from_curve(delays, curve, factor=2.0)
    expected = 10 + 10 * (np.log(0.02) - np.log(0.012)) / (np.log(0.04) - np.log(0.012))
    assert not censored
    np.testing.assert_allclose(thr, expected)


def test_threshold_censored_and_batched():
    delays = np.arange(5.0)
    curves = np.array([[1.0, 1.1, 1.2, 1.3, 1.4], [1.0, 1.0, 5.0, 9.0, 9.0]])
    thr, censored = analysis.threshold_from_curve(delays, curves, factor=2.0)
    np.testing.assert_array_equal(censored, [True, False])
    assert thr[0] == 4.0 and 1.0 < thr[1] < 2.0


def test_threshold_input_checks():
    with pytest.raises(ValueError, match="increasing"):
        analysis.threshold_from_curve([0, 0, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="factor must be > 1"):
        analysis.threshold_from_curve([0, 1], [1, 2], factor=1.0)


def test_bootstrap_interval_covers_truth():
    """Synthetic seeds: the mean curve doubles at delay 25 exactly; noise is per seed."""
    rng = np.random.default_rng(0)
    delays = np.arange(0.0, 51.0, 5.0)
    truth = np.exp(np.log(2) * delays / 25.0) * 0.01  # crosses 2x baseline at 25
    per_seed = truth[:, None] * rng.lognormal(0.0, 0.1, size=(delays.size, 400))
    per_seed /= np.exp(0.1**2 / 2)  # unbiased mean
    res = analysis.threshold_delays(per_seed, delays, n_boot=500)
    assert res.ci_lo < 25.0 < res.ci_hi
    assert res.ci_hi - res.ci_lo < 5.0
    assert "bootstrap" in res.rule


@pytest.fixture(scope="module")
def small_sweep():
    """One small sweep (one compiled program) for the two tests below: at μ = 0.99 and delay 7
    some trajectories diverge; at μ = 0.5 and no delay none does."""
    return aj.sweep(
        aj.StreamingPCA([4.0, 3.0, 2.0, 1.0]),
        aj.Grid(momentum=[0.5, 0.99], delay=[0, 7], lr=0.02, seed=range(8)),
        steps=100,
        record_every=10,
    )


def test_band_and_late_average(small_sweep):
    res = small_sweep.sel(momentum=[0.5], delay=0)
    assert (res["diverged_at"] == -1).all()
    late = analysis.late_average(res, window=0.3)  # steps 70, 80, 90, 100
    np.testing.assert_allclose(late, res["error"][..., -4:].mean(axis=-1), rtol=1e-6)
    b = analysis.band(late, axis=-1)
    assert b.lo <= b.mean <= b.hi and b.stderr > 0
    np.testing.assert_array_equal(analysis.at_step(res, 50), res["error"][..., 5])
    assert analysis.diverged_fraction(res).shape == (1,)


def test_hitting_times_interpolate():
    steps = np.array([0.0, 10.0, 20.0, 30.0])
    err = np.array([[1.0, 0.8, 0.4, 0.1], [1.0, 0.9, 0.9, 0.9]])
    t = analysis.hitting_times(err, steps, 0.6)
    assert t[0] == pytest.approx(15.0) and np.isnan(t[1])


def test_aligned_mean_undoes_random_shifts():
    """Shifted copies of one sigmoid average to a flat curve; aligned, they give it back."""
    steps = np.arange(0.0, 400.0, 1.0)
    shape = lambda t: 1.0 / (1.0 + np.exp((t - 200.0) / 10.0))  # noqa: E731
    shifts = np.random.default_rng(0).uniform(-60, 60, size=50)
    err = np.stack([shape(steps - s) for s in shifts])
    lags, mean = analysis.aligned_mean(err, steps, level=0.5)
    np.testing.assert_allclose(mean, shape(lags + 200.0), atol=2e-3)


def test_phase_times_of_a_clean_trajectory():
    steps = np.arange(0.0, 100.0)
    err = np.clip(1.0 - steps / 50.0, 0.001, 1.0)  # linear descent
    ph = analysis.phase_times(err[None], steps, delta=0.1, eps=0.05)
    assert ph["escape"][0] == pytest.approx(5.0) and ph["traverse"][0] == pytest.approx(40.0)
    assert ph["converge"][0] == pytest.approx(2.5)


def test_power_law_fit_recovers_exponent():
    x = np.array([0.05, 0.1, 0.2, 0.3])
    y = 3.0 * x**1.5
    fit = analysis.fit_power_law(x, y)
    assert fit.exponent == pytest.approx(1.5) and fit.prefactor == pytest.approx(3.0)
    boot = y[None] * np.exp(np.random.default_rng(0).normal(0, 0.02, size=(300, 4)))
    fit_b = analysis.fit_power_law(x, y, boot)
    assert fit_b.exponent_ci[0] < 1.5 < fit_b.exponent_ci[1]


def test_threshold_exponent_from_a_sweep(pca):
    """Measured thresholds scale in (1 − μ) like the exact stability boundary, not like (1 − μ)².

    (At η = 1e-3 and μ ≥ 0.8 the boundary's own local exponent is about 1.27:
    the small-gain asymptote, exponent 1, needs ηa ≪ 1 − μ.)"""
    from asyncjax import theory

    mus = np.array([0.8, 0.9, 0.95])
    res = aj.sweep(
        pca,
        aj.Grid(momentum=mus, delay=range(0, 101, 5), lr=1e-3, seed=range(12)),
        steps=8000,
        record_every=200,
    )
    thr = analysis.threshold_delays(analysis.late_average(res), res.coords["delay"], n_boot=200)
    fit = analysis.fit_power_law(1 - mus, thr.threshold, thr.boot)
    pred = analysis.fit_power_law(1 - mus, theory.pca_threshold(pca.eigenvalues, mus, 1e-3))
    assert abs(fit.exponent - pred.exponent) < 0.25
    assert (
        fit.exponent_ci[1] < 1.6
    )  # the paper's sufficient condition τ ∝ (1 − μ)² is far from tight


@pytest.mark.slow  # 8 s (a 16,000-trajectory sweep and two bootstraps); by default the same fit
# and claim run on the mitliagkas2016 quick preset (test_presets_mitliagkas_dnn)
def test_implicit_momentum_from_simulated_mean_trajectories():
    """Async-SGD with geometric staleness behaves like momentum 1 − 1/M (Mitliagkas et al.).

    8000 seeds, fixed; the assertion is on the seed-bootstrap interval. The
    start lies off q1 along the fast mode q4 so the mean trajectory bends
    within a few steps; that is what lets the fit tell momentum from step size.
    """
    lam = np.array([4.0, 3.0, 2.0, 1.0])
    direction = lambda v: v * lam - np.sum(v * v * lam, -1, keepdims=True) * v  # noqa: E731
    v0 = np.array([1.0, 0.0, 0.0, 0.5]) / np.sqrt(1.25)
    res = aj.sweep(
        aj.StreamingPCA(lam),
        aj.Grid(workers=[4.0, 8.0], lr=0.01, seed=range(8000)),
        steps=100,
        record_every=1,
        init=v0,
        delay_model="geometric",
        record_iterates=True,
    )
    fits = [
        analysis.implicit_momentum_fit(res["iterates"][i], direction, 0.01, n_boot=100)
        for i in range(2)
    ]
    for fit, m in zip(fits, (4, 8)):
        assert fit.momentum_ci[0] < 1 - 1 / m < fit.momentum_ci[1]
        assert fit.gradient_scale == pytest.approx(1 - fit.momentum)
    assert fits[1].momentum_ci[0] > 0.5  # clearly momentum, not plain SGD


def test_implicit_momentum_input_check():
    with pytest.raises(ValueError, match="iterates must be"):
        analysis.implicit_momentum_fit(np.zeros((10, 2, 3)), lambda v: v, 0.1)


def test_power_law_regression_interval_only_at_95():
    x, y = np.array([1.0, 2.0, 4.0, 8.0]), np.array([1.0, 2.1, 3.9, 8.2])
    fit = analysis.fit_power_law(x, y)
    assert fit.exponent_ci[0] < fit.exponent < fit.exponent_ci[1]
    with pytest.raises(ValueError, match="95%"):
        analysis.fit_power_law(x, y, level=0.9)


# ------------------------------------------------------- divergence (issue 7, item 5)
def _results(error, diverged_at, steps, delays):
    """Hand-made results: error (delay, seed, step), diverged_at (delay, seed)."""
    return aj.Results(
        data={"error": np.asarray(error, float), "diverged_at": np.asarray(diverged_at, np.int32)},
        dims={"error": ("delay", "seed", "step"), "diverged_at": ("delay", "seed")},
        coords={"delay": np.asarray(delays, float), "step": np.asarray(steps)},
        attrs={"problem": {"problem": "streaming_pca"}},
    )


def test_diverged_trajectories_count_as_failed_from_their_divergence_on():
    steps = np.array([0, 10, 20, 30])
    error = np.full((1, 2, 4), 0.01)  # both frozen at a small error
    res = _results(error, [[-1, 15]], steps, [0.0])
    filled = analysis.with_failures(res)
    np.testing.assert_array_equal(filled[0, 0], 0.01)
    np.testing.assert_array_equal(filled[0, 1], [0.01, 0.01, 1.0, 1.0])  # records at steps >= 15
    late = analysis.late_average(res, window=0.5)  # steps 20 and 30
    np.testing.assert_allclose(late, [[0.01, 1.0]])
    np.testing.assert_allclose(
        analysis.late_average(res, window=0.5, diverged="frozen"), [[0.01, 0.01]]
    )
    np.testing.assert_allclose(analysis.at_step(res, 10), [[0.01, 0.01]])
    np.testing.assert_allclose(analysis.at_step(res, 30), [[0.01, 1.0]])
    b = analysis.band(late, axis=-1, diverged=analysis.diverged_mask(res, "error"))
    np.testing.assert_allclose(b.mean, [0.505])
    np.testing.assert_allclose(b.diverged, [0.5])
    np.testing.assert_allclose(b.diverged_share, [1.0 / 1.01])
    mean, stderr, lo, hi = b  # still a 4-tuple
    assert mean == b.mean
    with pytest.raises(ValueError, match="'fail' or 'frozen'"):
        analysis.late_average(res, diverged="drop")


def test_divergence_drives_the_threshold_where_frozen_errors_hide_it():
    """Past delay 20 every seed diverges and is frozen at its baseline error: averaged as frozen,
    the curve never rises (censored); counted as failed, it crosses between 10 and 20."""
    steps = np.arange(0, 101, 10)
    delays = [0.0, 10.0, 20.0, 30.0]
    error = np.full((4, 6, steps.size), 0.02)
    div = np.full((4, 6), -1)
    div[2:] = 5
    res = _results(error, div, steps, delays)
    frozen = analysis.threshold_delays(
        analysis.late_average(res, diverged="frozen"), delays, n_boot=50
    )
    assert frozen.censored
    thr = analysis.threshold_delays(
        analysis.late_average(res), delays, n_boot=50, diverged=analysis.diverged_mask(res, "error")
    )
    assert not thr.censored and 10.0 < thr.threshold < 20.0
    np.testing.assert_allclose(thr.diverged_fraction, [0, 0, 1, 1])
    assert thr.diverged_below == 1.0  # the crossing's upper bracket is all divergence
    assert "sin² = 1" in thr.rule


def test_a_real_sweep_follows_the_rule(small_sweep):
    res = small_sweep
    assert res.attrs["variables"]["error"]["worst"] == 1.0
    flags = res["diverged_at"] >= 0
    assert flags.any() and not flags.all()
    late = analysis.late_average(res, window=0.01)  # the last record only
    np.testing.assert_array_equal(late[flags], 1.0)
    np.testing.assert_array_equal(late[~flags], res["error"][..., -1][~flags])
    assert np.all(res["error"][..., -1][flags] < 1.0)  # frozen values differ: the rule matters
    np.testing.assert_allclose(analysis.diverged_fraction(res), flags.mean(axis=-1))


def test_unknown_worst_value_leaves_values_as_recorded():
    res = _results(np.full((1, 1, 2), 3.0), [[0]], [0, 10], [0.0])
    res.attrs = {"problem": {"problem": "something_else"}}
    np.testing.assert_array_equal(analysis.with_failures(res), 3.0)
    res.attrs["variables"] = {"error": {"worst": "inf"}}
    assert np.all(np.isinf(analysis.with_failures(res)))
    b = analysis.band(analysis.late_average(res)[..., None][0], axis=-1)
    assert np.isinf(b.mean).all()
