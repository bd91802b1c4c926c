"""Theory against independent checks: brute-force roots and simulated recurrences."""

import numpy as np
import pytest

from asyncjax import theory


def _simulate_recurrence(mu, c, tau, steps=6000):
    """max |x_k| over the last 500 steps of x_{k+1} = (1+μ)x_k − μx_{k−1} − c x_{k−τ}."""
    x = np.zeros(steps + tau + 2)
    x[: tau + 2] = 1e-3
    for k in range(tau + 1, steps + tau + 1):
        x[k + 1] = (1 + mu) * x[k] - mu * x[k - 1] - c * x[k - tau]
    return np.abs(x[-500:]).max()


CASES = [(mu, c) for mu in (-0.3, 0.0, 0.5, 0.8, 0.95) for c in (0.01, 0.05, 0.2, 0.7)]


@pytest.mark.parametrize("mu,c", CASES)
def test_threshold_matches_brute_force_scan(mu, c):
    star = int(theory.stability_threshold(mu, c))
    radii = np.array([theory.spectral_radius(mu, c, t) for t in range(star + 30)])
    if star >= 0:
        assert np.all(radii[: star + 1] < 1.0 - 1e-9)
    assert radii[star + 1] >= 1.0 - 1e-9
    # one crossing in this range: every larger delay stays unstable
    assert np.all(radii[star + 1 :] >= 1.0 - 1e-9)


def test_marginal_case_counts_as_unstable():
    """μ + c = 1 puts the τ = 1 roots exactly on the unit circle (their product is μ + c)."""
    assert theory.stability_threshold(0.95, 0.05) == 0
    np.testing.assert_allclose(theory.spectral_radius(0.95, 0.05, 1), 1.0, atol=1e-12)


@pytest.mark.parametrize("mu,c", [(0.5, 0.05), (0.8, 0.02), (0.0, 0.2)])
def test_threshold_matches_simulated_linear_recurrence(mu, c):
    star = int(theory.stability_threshold(mu, c))
    assert _simulate_recurrence(mu, c, star) < 1e-3  # decays
    assert _simulate_recurrence(mu, c, star + 2) > 1e-3  # grows


def test_unstable_without_delay():
    assert theory.stability_threshold(0.5, 3.5) == -1  # c > 2(1 + μ)


def test_small_gain_asymptote():
    mu = np.array([0.0, 0.5, 0.9])
    c = 1e-4
    star = theory.stability_threshold(mu, c, verify=False)
    ratio = star / theory.stability_threshold_asymptote(mu, c)
    np.testing.assert_allclose(ratio, 1.0, atol=0.02)


def test_threshold_decreases_with_gain_and_momentum():
    c = np.array([0.002, 0.005, 0.01, 0.03])
    t = theory.stability_threshold(0.7, c)
    assert np.all(np.diff(t) < 0)
    t_mu = theory.stability_threshold(np.array([0.5, 0.7, 0.9]), 0.004)
    assert np.all(np.diff(t_mu) < 0)


def test_pca_threshold_is_min_over_modes():
    lam = [4.0, 3.0, 2.0, 1.0]
    modes = theory.pca_modes(lam)
    np.testing.assert_allclose(modes, [1.0, 2.0, 3.0, 8.0])
    mu = np.array([0.7, 0.95])
    per_mode = theory.stability_threshold(mu[:, None], 5e-4 * modes, verify=False)
    np.testing.assert_array_equal(theory.pca_threshold(lam, mu, 5e-4), per_mode.min(axis=1))
    np.testing.assert_array_equal(theory.pca_threshold(lam, mu, 5e-4), [115, 13])


def test_bad_arguments():
    with pytest.raises(ValueError, match="momentum"):
        theory.stability_threshold(1.0, 0.1)
    with pytest.raises(ValueError, match="c = lr"):
        theory.stability_threshold(0.5, 0.0)
