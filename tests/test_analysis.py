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


def test_band_and_late_average(pca):
    res = aj.sweep(pca, aj.Grid(momentum=[0.5], lr=1e-2, seed=range(8)), steps=100, record_every=10)
    late = analysis.late_average(res, window=0.3)  # steps 70, 80, 90, 100
    np.testing.assert_allclose(late, res["error"][..., -4:].mean(axis=-1), rtol=1e-6)
    b = analysis.band(late, axis=-1)
    assert b.lo <= b.mean <= b.hi and b.stderr > 0
    np.testing.assert_array_equal(analysis.at_step(res, 50), res["error"][..., 5])
    assert analysis.diverged_fraction(res).shape == (1,)
