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


# Values of one check, not features: the two whose boundary lies furthest out (τ* = 203 and 100,
# where the roots of the long scan's polynomials take seconds) run with the slow set; μ = 0.5,
# c = 0.01 keeps a far boundary (τ* near 50) in the default set.
SLOW_CASES = {(-0.3, 0.01), (0.0, 0.01)}
CASES = [
    pytest.param(mu, c, marks=pytest.mark.slow) if (mu, c) in SLOW_CASES else (mu, c)
    for mu in (-0.3, 0.0, 0.5, 0.8, 0.95)
    for c in (0.01, 0.05, 0.2, 0.7)
]


@pytest.mark.parametrize("mu,c", CASES)
def test_threshold_matches_brute_force_scan(mu, c):
    star = int(theory.stability_threshold(mu, c))
    # every delay within 40 of the boundary, and every 7th further below: the roots of a degree-τ
    # polynomial take O(τ³), and a full scan up to τ* = 203 (μ = -0.3, c = 0.01) took 19 s
    taus = np.union1d(np.arange(0, max(star - 40, 0), 7), np.arange(max(star - 40, 0), star + 30))
    radii = np.array([theory.spectral_radius(mu, c, int(t)) for t in taus])
    if star >= 0:
        assert np.all(radii[taus <= star] < 1.0 - 1e-9)
    assert radii[taus == star + 1][0] >= 1.0 - 1e-9
    # one crossing in this range: every larger delay stays unstable
    assert np.all(radii[taus > star] >= 1.0 - 1e-9)


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


# ----------------------------------------------------------------- Nesterov
@pytest.mark.parametrize("mu,c", [(0.5, 0.05), (0.8, 0.02), (0.9, 0.01), (0.3, 0.3)])
def test_nesterov_threshold_matches_brute_force(mu, c):
    star = int(theory.stability_threshold(mu, c, method="nesterov"))
    radii = np.array([theory.spectral_radius(mu, c, t, "nesterov") for t in range(star + 20)])
    assert np.all(radii[: star + 1] < 1.0 - 1e-9) and np.all(radii[star + 1 :] >= 1.0 - 1e-9)


def test_nesterov_recurrence_simulated():
    mu, c = 0.8, 0.02
    star = int(theory.stability_threshold(mu, c, method="nesterov"))

    def run(tau, steps=8000):
        x = np.full(steps + tau + 3, 1e-3)
        for k in range(tau + 2, steps + tau + 2):
            x[k + 1] = (
                (1 + mu) * x[k] - mu * x[k - 1] - c * ((1 + mu) * x[k - tau] - mu * x[k - tau - 1])
            )
        return np.abs(x[-500:]).max()

    assert run(star) < 1e-3 < run(star + 2)


def test_nesterov_shares_the_small_gain_asymptote():
    star = theory.stability_threshold(0.9, 2e-4, method="nesterov", verify=False)
    np.testing.assert_allclose(
        star / theory.stability_threshold_asymptote(0.9, 2e-4), 1.0, atol=0.02
    )


# ----------------------------------------------------------------- ODE
def _rk4_oja(lam, h0, times, mu, n=4000):
    """Independent check: integrate V' = (ΣV − VᵀΣV V)/(1 − μ) with RK4, n steps up to the last
    of ``times`` (each a whole number of steps), in one pass; V at each of ``times``.

    (dt = 1e-3 for t = 4: RK4's global error, O(dt⁴), is ~1e-12 at μ = 0.7 (4e-11 at dt = 2e-3),
    far below the 1e-8 asked.)"""
    lam = np.asarray(lam, float)
    f = lambda v: (lam * v - np.sum(lam * v * v) * v) / (1 - mu)  # noqa: E731
    v, dt = np.asarray(h0, float) / np.linalg.norm(h0), max(times) / n
    at = {int(round(t / dt)): t for t in times}
    assert all(np.isclose(k * dt, t) for k, t in at.items())
    out = {}
    for k in range(1, n + 1):
        k1 = f(v)
        k2 = f(v + dt / 2 * k1)
        k3 = f(v + dt / 2 * k2)
        k4 = f(v + dt * k3)
        v = v + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if k in at:
            out[at[k]] = v
    return [out[t] for t in times]


@pytest.mark.parametrize("mu", [0.0, 0.7])
def test_ode_solution_against_numerical_integration(mu):
    lam = [4.0, 3.0, 2.0, 1.0]
    h0 = [0.05, 0.9, 0.3, -0.2]
    times = (0.3, 1.5, 4.0)
    for t, want in zip(times, _rk4_oja(lam, h0, times, mu)):
        np.testing.assert_allclose(theory.ode_solution(lam, h0, [t], mu)[0], want, atol=1e-8)


def test_ode_long_times_do_not_overflow():
    err = theory.ode_error([4.0, 3.0, 2.0, 1.0], [1e-3, 1.0, 0.0, 0.0], [0.0, 1e4])
    assert (
        np.isfinite(err).all() and err[0] == pytest.approx(1 - 1e-6 / (1 + 1e-6)) and err[1] < 1e-12
    )


# ----------------------------------------------------------------- SDE
def test_stationary_error_matches_ou_variance_of_linear_model():
    """Simulate the OU process of Theorem 5 per mode with Euler–Maruyama; compare variances."""
    lam = np.array([4.0, 3.0, 2.0, 1.0])
    mu = 0.5
    a2 = theory.gaussian_fourth_moments(lam)
    var = theory.sde_stationary_variance(lam, mu)
    rng = np.random.default_rng(0)
    n_paths, dt, n_steps = 20000, 0.01, 300
    theta = (lam[0] - lam[1:]) / (1 - mu)
    sigma = np.sqrt(a2[1:, 0]) / (1 - mu)
    u = np.zeros((n_paths, 3))
    # t = 3: 12 relaxation times of the slowest variance (1/(2θ) = 0.25), so what is left of
    # the start (variance 0) is a fraction ~e⁻¹² ≈ 6e-6, far below the 5% tolerance; the step
    # (θ dt ≤ 0.06) enters only through the exact Euler–Maruyama variance below
    for _ in range(n_steps):
        u += -theta * u * dt + sigma * np.sqrt(dt) * rng.standard_normal(u.shape)
    # exact stationary variance of Euler–Maruyama is σ²/(2θ − θ²dt); tolerance 5 SE
    sim = u.var(axis=0)
    np.testing.assert_allclose(sim, var * 2 / (2 - theta * dt), rtol=5 * np.sqrt(2 / n_paths))
    np.testing.assert_allclose(theory.sde_stationary_error(lam, mu, 1e-3), 1e-3 * var.sum())


def test_fourth_moments_exact_and_estimated():
    lam = np.array([4.0, 2.0, 1.0])
    a2 = theory.gaussian_fourth_moments(lam)
    np.testing.assert_allclose(a2, [[48, 8, 4], [8, 12, 2], [4, 2, 3]])
    y = np.random.default_rng(1).standard_normal((400_000, 3)) * np.sqrt(lam)
    np.testing.assert_allclose(theory.fourth_moments_from_samples(y), a2, rtol=0.03)
    # a non-Gaussian model changes the prediction through α²
    import asyncjax as aj

    rad = aj.StreamingPCA(lam, "rademacher").fourth_moments()
    np.testing.assert_allclose(
        rad[1:, 0], a2[1:, 0]
    )  # off-diagonal λiλj for any unit-variance model


# ----------------------------------------------------------------- phases
def test_phase_scaling_in_momentum_and_step():
    lam = [4.0, 3.0, 2.0, 1.0]
    a = theory.phase_durations(lam, 0.0, 1e-3)
    b = theory.phase_durations(lam, 0.8, 1e-3)
    np.testing.assert_allclose(b["traverse"] / a["traverse"], 0.2)  # ∝ (1 − μ)
    # escape ~ (1−μ)/(2 gap) log(1/η) as η → 0: halving η adds (1−μ) log 2 / (2 gap)
    e1 = theory.phase_durations(lam, 0.5, 1e-7)["escape"]
    e2 = theory.phase_durations(lam, 0.5, 0.5e-7)["escape"]
    np.testing.assert_allclose(e2 - e1, 0.5 * np.log(2) / 2, rtol=1e-4)


def test_traverse_matches_ode_hitting_time():
    """Two modes: the ODE's time from sin² = 1 − δ to δ is exactly (1/κ) log((1 − δ)/δ)."""
    lam, mu, delta = [3.0, 1.0], 0.6, 0.1
    t = np.linspace(0, 10, 200_001)
    err = theory.ode_error(lam, [1e-3, 1.0], t, mu)
    t_hit = lambda level: t[np.argmax(err <= level)]  # noqa: E731
    measured = t_hit(delta) - t_hit(1 - delta)
    assert measured == pytest.approx(
        float(theory.phase_durations(lam, mu, 1e-3, delta=delta)["traverse"]), abs=1e-4
    )


def test_converge_matches_ode_relaxation():
    """With no noise (s∞ → 0), converge is the ODE's time from sin² = δ to ε (slow mode)."""
    lam, mu = [3.0, 1.0], 0.0
    t = np.linspace(0, 20, 400_001)
    err = theory.ode_error(lam, [1e-3, 1.0], t, mu)
    t_hit = lambda level: t[np.argmax(err <= level)]  # noqa: E731
    tiny = 1e-9
    pred = theory.phase_durations(lam, mu, tiny, delta=0.1, eps=1e-4)["converge"]
    # near q1, sin² ≈ tan², which decays exactly as e^{-2κt}; sin² differs from tan² by O(sin⁴)
    assert t_hit(1e-4) - t_hit(0.1) == pytest.approx(float(pred), rel=0.03)


def test_escape_matches_unstable_ou_mean_square():
    """E[U²] of dU = κU dt + s dB from 0 is s²(e^{2κt} − 1)/(2κ); check by simulation."""
    lam, mu, eta, delta = np.array([3.0, 1.0]), 0.0, 1e-3, 0.1
    t_escape = float(theory.phase_durations(lam, mu, eta, delta=delta)["escape"])
    kappa, s2 = (lam[0] - lam[1]) / (1 - mu), lam[0] * lam[1] / (1 - mu) ** 2
    rng = np.random.default_rng(0)
    u, dt = np.zeros(20000), t_escape / 2000
    for _ in range(2000):
        u += kappa * u * dt + np.sqrt(s2 * dt) * rng.standard_normal(u.size)
    # at the predicted escape time, η E[U²] = δ (Euler bias O(κ dt) ~ 0.3%; 5-SE band)
    assert eta * np.mean(u**2) == pytest.approx(delta, rel=5 * np.sqrt(2 / u.size) + 0.01)


# ----------------------------------------------------------------- queuing model
@pytest.mark.parametrize("workers", [2, 4, 8])
def test_worker_clock_staleness_is_geometric(workers):
    from asyncjax._reference.workers import simulate_worker_staleness

    tau = simulate_worker_staleness(workers, 200_000, seed=workers)
    lags = np.arange(12)
    hist = np.bincount(tau, minlength=lags.size)[: lags.size] / tau.size
    pmf = theory.staleness_pmf(lags, workers)
    se = np.sqrt(pmf * (1 - pmf) / tau.size)
    assert np.all(np.abs(hist - pmf) < 5 * se)
    assert tau.mean() == pytest.approx(
        theory.staleness_mean(workers), abs=5 * np.sqrt(workers**2 / tau.size)
    )
    assert theory.implicit_momentum(workers) == 1 - 1 / workers


def test_round_robin_staleness_is_m_minus_one():
    from asyncjax._reference.workers import simulate_worker_staleness

    tau = simulate_worker_staleness(5, 100, compute="constant")
    assert np.all(tau[5:] == 4)  # after the first round, every update is M − 1 old


def test_geometric_delay_model_histogram():
    """The simulator's geometric staleness stream follows the queuing law."""
    import asyncjax as aj

    taus = aj.delay_stream("geometric", 4.0, seed=3, steps=100_000, buffer=200)
    lags = np.arange(10)
    hist = np.bincount(taus, minlength=10)[:10] / taus.size
    pmf = theory.staleness_pmf(lags, 4)
    assert np.all(np.abs(hist - pmf) < 5 * np.sqrt(pmf * (1 - pmf) / taus.size))
