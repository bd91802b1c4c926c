"""What theory predicts, as plain vectorised NumPy functions (Liu et al. 2018; Mitliagkas et al. 2016).

* ODE limit (Liu et al., Theorem 3): `ode_solution`, `ode_error`.
* SDE near the optimum (Theorem 5): `sde_stationary_variance`,
  `sde_stationary_error`, with fourth moments exact or estimated.
* The three phases from a saddle (Props. 10, 8, 6): `phase_durations`.
* The exact delay-stability boundary: `stability_threshold`,
  `pca_threshold`, `stability_threshold_asymptote`.
* The queuing model (Mitliagkas et al.): `staleness_pmf`,
  `implicit_momentum`.
* Time to an ε-stationary point with n workers of fixed compute times
  (Tyurin & Richtárik 2023; Maranjyan, Tyurin & Richtárik 2025; Begunov &
  Tyurin 2026): `time_complexity`, `optimal_workers`, `ringmaster_window`.
* Workers with their own data: how often asynchronous SGD
  applies each worker's gradient, `update_shares`, and the biased point it
  settles at on quadratics, `asgd_fixed_point`.

Delay-stability boundary
------------------------
Linearising eq. 5 at the optimum gives one scalar recurrence per mode,

    x_{k+1} = (1 + μ) x_k − μ x_{k−1} − c x_{k−τ},      c = η a,

with a = λ1 − λi for the tangential modes (i ≥ 2) and a = 2 λ1 for the radial
mode (the length of the unnormalised iterate). Its characteristic equation,
for every τ ≥ 0, is z^τ A(z) + c B(z) = 0 with A(z) = (z − 1)(z − μ) and
B(z) = z (Nesterov's look-ahead gradient gives B(z) = (1 + μ) z − μ).

A root on the unit circle z = e^{iθ} needs |A(e^{iθ})| = c |B(e^{iθ})| (which
fixes the crossing frequencies θ) and a phase condition that gives the delays
at which it happens. `stability_threshold` takes the first such delay and
then *checks* the answer with the companion-matrix spectral radius on both
sides of it, so a non-monotone case is caught rather than assumed away.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from asyncjax._validate import as_float_array, check_int, did_you_mean, py

__all__ = [
    "METHODS",
    "ode_solution",
    "ode_error",
    "gaussian_fourth_moments",
    "fourth_moments_from_samples",
    "sde_stationary_variance",
    "sde_stationary_error",
    "phase_durations",
    "staleness_pmf",
    "staleness_mean",
    "implicit_momentum",
    "characteristic_coefficients",
    "spectral_radius",
    "stability_threshold",
    "stability_threshold_asymptote",
    "pca_modes",
    "pca_threshold",
    "TIME_METHODS",
    "time_complexity",
    "optimal_workers",
    "ringmaster_window",
    "update_shares",
    "asgd_fixed_point",
]

_VERIFY_MAX = 600  # companion matrices up to this degree are checked (< 0.1 s each)
_MARGIN = 1e-9  # a spectral radius within this of 1 counts as on the circle (unstable)


METHODS = ("heavy_ball", "nesterov")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def characteristic_coefficients(
    momentum: float, c: float, delay: int, method: str = "heavy_ball"
) -> np.ndarray:
    """Coefficients (highest power first) of z^τ A(z) + c B(z), A(z) = (z − 1)(z − μ).

    Heavy ball (eq. 5), x_{k+1} = (1+μ)x_k − μx_{k−1} − c x_{k−τ}: B(z) = z.
    Nesterov, gradient at the stale look-ahead y = x + μ(x − x_prev):
    x_{k+1} = (1+μ)x_k − μx_{k−1} − c[(1+μ)x_{k−τ} − μx_{k−τ−1}]: B(z) = (1+μ)z − μ.
    (The heavy-ball polynomial carries an extra root at z = 0, harmless for stability.)
    """
    _check_method(method)
    coef = np.zeros(delay + 3)
    coef[:3] = [1.0, -(1.0 + momentum), momentum]  # z^τ (z² − (1+μ) z + μ)
    if method == "heavy_ball":
        coef[-2] += c
    else:
        coef[-2] += c * (1.0 + momentum)
        coef[-1] -= c * momentum
    return coef


def spectral_radius(momentum: float, c: float, delay: int, method: str = "heavy_ball") -> float:
    """Largest root modulus of the characteristic polynomial (companion matrix)."""
    roots = np.roots(characteristic_coefficients(momentum, c, delay, method))
    return float(np.max(np.abs(roots))) if roots.size else 0.0


def _a_abs(theta: np.ndarray, mu: float) -> np.ndarray:
    """|A(e^{iθ})| = |e^{iθ} − 1| |e^{iθ} − μ|."""
    return 2.0 * np.sin(theta / 2.0) * np.sqrt(1.0 - 2.0 * mu * np.cos(theta) + mu * mu)


def _b_abs(theta: np.ndarray, mu: float, method: str) -> np.ndarray:
    if method == "heavy_ball":
        return np.ones_like(theta)
    return np.abs((1.0 + mu) * np.exp(1j * theta) - mu)


def _crossing_frequencies(mu: float, c: float, method: str) -> np.ndarray:
    """All θ in (0, π] with |A(e^{iθ})| = c |B(e^{iθ})| (bisection on sign changes)."""
    grid = np.unique(
        np.concatenate([np.pi * np.logspace(-12, 0, 3000), np.linspace(0, np.pi, 3000)[1:]])
    )

    def gap(theta):
        return _a_abs(theta, mu) - c * _b_abs(theta, mu, method)

    f = gap(grid)
    idx = np.flatnonzero(np.sign(f[:-1]) != np.sign(f[1:]))
    roots = []
    for i in idx:
        lo, hi, flo = grid[i], grid[i + 1], f[i]
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            fm = gap(np.array(mid))
            if np.sign(fm) == np.sign(flo):
                lo, flo = mid, fm
            else:
                hi = mid
        roots.append(0.5 * (lo + hi))
    return np.array(roots)


def _first_crossing_delay(mu: float, c: float, method: str) -> float:
    """Smallest real τ ≥ 0 at which a characteristic root lies on the unit circle.

    On z = e^{iθ}: z^τ A(z) = −c B(z), so τθ + arg A = π + arg B (mod 2π).
    """
    best = math.inf
    for theta in _crossing_frequencies(mu, c, method):
        z = complex(math.cos(theta), math.sin(theta))
        arg_a = math.pi / 2 + theta / 2 + math.atan2(math.sin(theta), math.cos(theta) - mu)
        arg_b = (
            theta
            if method == "heavy_ball"
            else math.atan2(((1 + mu) * z - mu).imag, ((1 + mu) * z - mu).real)
        )
        tau0 = (math.pi + arg_b - arg_a) / theta
        period = 2.0 * math.pi / theta
        tau0 -= period * math.floor(tau0 / period)  # smallest non-negative solution
        best = min(best, tau0)
    return best


def _threshold_one(mu: float, c: float, verify: bool, method: str) -> int:
    if not (-1.0 < mu < 1.0) or not c > 0:
        raise ValueError(f"need -1 < momentum < 1 and c = lr * a > 0; got momentum={mu!r}, c={c!r}")
    if spectral_radius(mu, c, 0, method) >= 1.0 - _MARGIN:
        return -1  # unstable even without delay
    tau_c = _first_crossing_delay(mu, c, method)
    if not math.isfinite(tau_c):  # pragma: no cover - c > 0 always crosses below 2(1+μ)
        raise RuntimeError(f"no stability crossing found for momentum={mu}, c={c}")
    star = int(math.ceil(tau_c)) - 1
    if not verify or star + 1 > _VERIFY_MAX:
        return star
    # Check with the companion roots; a crossing that lands on an integer delay
    # (a root exactly on the circle) can be misplaced by rounding, so let the
    # roots move τ* by a step or two. A root on the circle counts as unstable.
    for _ in range(3):
        below_stable = star < 0 or spectral_radius(mu, c, star, method) < 1.0 - _MARGIN
        above_stable = spectral_radius(mu, c, star + 1, method) < 1.0 - _MARGIN
        if below_stable and not above_stable:
            return star
        star += 1 if above_stable else -1
    raise RuntimeError(
        f"stability boundary check failed for momentum={mu}, c={c}: the companion roots do "
        f"not confirm a boundary near τ={star}"
    )


def stability_threshold(
    momentum: Any, c: Any, *, method: str = "heavy_ball", verify: bool = True
) -> np.ndarray:
    """τ*(μ, c): the largest delay for which the linearised mode is stable.

    Every delay 0 ≤ τ ≤ τ* is stable; τ* + 1 is not. Returns -1 where even
    τ = 0 is unstable (c ≥ 2(1 + μ)).

    Args:
      momentum: μ, any shape, in (-1, 1).
      c: the mode's gain η·a > 0, broadcastable against ``momentum``.
      method: ``"heavy_ball"`` (eq. 5) or ``"nesterov"`` (stale look-ahead gradient).
      verify: check each answer with companion-matrix roots at τ* and τ* + 1.

    Returns:
      Integer array of the broadcast shape.
    """
    _check_method(method)
    mu, cc = np.broadcast_arrays(np.asarray(momentum, float), np.asarray(c, float))
    out = np.empty(mu.shape, dtype=np.int64)
    for idx in np.ndindex(mu.shape):
        out[idx] = _threshold_one(float(mu[idx]), float(cc[idx]), verify, method)
    return out


def stability_threshold_asymptote(momentum: Any, c: Any) -> np.ndarray:
    """Small-gain limit π (1 − μ) / (2 c) of τ*, for heavy ball and Nesterov alike.

    As c → 0 the crossing frequency θ ≈ c/(1 − μ) → 0 and both recurrences tend
    to delayed feedback ẋ = −c x(t − τ)/(1 − μ), stable iff cτ/(1 − μ) < π/2.
    """
    return np.pi * (1.0 - np.asarray(momentum, float)) / (2.0 * np.asarray(c, float))


def pca_modes(eigenvalues: Any) -> np.ndarray:
    """Curvatures a of streaming PCA's modes at q1: λ1 − λi (i ≥ 2), then 2 λ1 (radial)."""
    lam = np.asarray(eigenvalues, float)
    return np.concatenate([lam[0] - lam[1:], [2.0 * lam[0]]])


def pca_threshold(eigenvalues: Any, momentum: Any, lr: float, *, verify: bool = True) -> np.ndarray:
    """Predicted threshold delay of streaming PCA: the minimum of τ* over its modes.

    τ* decreases in c, so the minimum is attained by the stiffest mode,
    a = max(2 λ1, λ1 − λd) = 2 λ1.

    Args:
      eigenvalues: (d,) spectrum, decreasing.
      momentum: μ, any shape.
      lr: η.
    """
    a = pca_modes(eigenvalues)
    mu = np.asarray(momentum, float)
    per_mode = stability_threshold(mu[..., None], lr * a, verify=False)
    if verify:  # the prediction rests on the minimising mode: check that one
        stiff = np.argmin(per_mode, axis=-1)
        stability_threshold(mu, lr * a[stiff], verify=True)
    return per_mode.min(axis=-1)


# ---------------------------------------------------------------------------- ODE
def ode_solution(eigenvalues: Any, h0: Any, t: Any, momentum: float = 0.0) -> np.ndarray:
    """Theorem 3's ODE limit V̇ = (ΣV − VᵀΣV V)/(1 − μ), solved in the eigenbasis.

    h_i(t) = h_i(0) e^{λ_i t/(1−μ)} / (Σ_j h_j(0)² e^{2 λ_j t/(1−μ)})^{1/2}, with t = kη
    (ODE time) and the start normalised to the unit sphere. Computed in log
    space, so long times do not overflow.

    Args:
      eigenvalues: (d,) spectrum.
      h0: (d,) start in the eigenbasis (non-zero).
      t: (T,) ODE times.
      momentum: μ.

    Returns:
      (T, d) the direction h(t).
    """
    lam = np.asarray(eigenvalues, float)
    h0 = np.asarray(h0, float)
    h0 = h0 / np.linalg.norm(h0)
    t = np.atleast_1d(np.asarray(t, float))
    log_w = np.where(h0 != 0, np.log(np.abs(h0) + (h0 == 0)), -np.inf)[None, :] + t[:, None] * lam[
        None, :
    ] / (1 - momentum)
    top = np.max(log_w, axis=1, keepdims=True)
    w = np.exp(log_w - top)
    return np.sign(h0)[None, :] * w / np.sqrt(np.sum(w * w, axis=1, keepdims=True))


def ode_error(eigenvalues: Any, h0: Any, t: Any, momentum: float = 0.0) -> np.ndarray:
    """sin²∠(h(t), q1) = 1 − h_1(t)² along the ODE solution; shape (T,)."""
    return 1.0 - ode_solution(eigenvalues, h0, t, momentum)[:, 0] ** 2


# ---------------------------------------------------------------------------- SDE
def gaussian_fourth_moments(eigenvalues: Any) -> np.ndarray:
    """α²_ij = E[Y_i² Y_j²] for Gaussian data: λ_i λ_j off the diagonal, 3 λ_i² on it."""
    lam = np.asarray(eigenvalues, float)
    alpha = np.outer(lam, lam)
    np.fill_diagonal(alpha, 3 * lam**2)
    return alpha


def fourth_moments_from_samples(samples: Any) -> np.ndarray:
    """Plug-in estimate of α²_ij = E[Y_i² Y_j²] from (n, d) samples in the eigenbasis."""
    y2 = np.asarray(samples, float) ** 2
    return y2.T @ y2 / y2.shape[0]


def sde_stationary_variance(eigenvalues: Any, momentum: Any, alpha2: Any = None) -> np.ndarray:
    """Theorem 5: stationary Var(U_i) = α²_{i1} / (2 (1 − μ)(λ1 − λi)) for modes i ≥ 2.

    U_i = h_i/√η follows dU_i = −(λ1 − λi)/(1−μ) U_i dt + α_{i1}/(1−μ) dB near q1.

    Args:
      eigenvalues: (d,) spectrum with λ1 > λ2.
      momentum: μ, any shape.
      alpha2: (d, d) fourth moments α²_ij; default Gaussian (λ_i λ_j).

    Returns:
      (..., d − 1) variances for modes 2 … d.
    """
    lam = np.asarray(eigenvalues, float)
    a2 = gaussian_fourth_moments(lam) if alpha2 is None else np.asarray(alpha2, float)
    mu = np.asarray(momentum, float)[..., None]
    return a2[1:, 0] / (2.0 * (1.0 - mu) * (lam[0] - lam[1:]))


def sde_stationary_error(
    eigenvalues: Any, momentum: Any, lr: Any, alpha2: Any = None
) -> np.ndarray:
    """Stationary E[sin²∠(v, q1)] ≈ η Σ_{i≥2} α²_{i1} / (2 (1 − μ)(λ1 − λi)).

    ``momentum`` and ``lr`` broadcast against each other.
    """
    var = sde_stationary_variance(eigenvalues, momentum, alpha2).sum(axis=-1)
    return np.asarray(lr, float) * var


# -------------------------------------------------------------------------- phases
def phase_durations(
    eigenvalues: Any,
    momentum: Any,
    lr: Any,
    *,
    delta: float = 0.1,
    eps: float | None = None,
    alpha2: Any = None,
) -> dict[str, np.ndarray]:
    """ODE-time durations of the three phases from the saddle q2 (Props. 10, 8, 6).

    With κ = (λ1 − λ2)/(1 − μ), the slowest rate, and s∞ the stationary error:

    * escape, sin² from 1 to 1 − δ. Near q2 the q1-coordinate U = h1/√η is an
      unstable OU process, dU = κ U dt + α12/(1−μ) dB, from U = 0. Its
      variance reaches δ/η after (1/2κ) log(1 + 2δ(1−μ)(λ1−λ2)/(η α²_12)).
    * traverse, sin² from 1 − δ to δ, along the ODE restricted to (q1, q2):
      tan²∠ shrinks as e^{−2κt}, so (1/κ) log((1 − δ)/δ).
    * converge, sin² from δ down to ε > s∞, for the slowest mode relaxing to
      its stationary level: (1/2κ) log((δ − s∞)/(ε − s∞)); default ε = 2 s∞.

    Each is (1 − μ)/(2(λ1 − λ2)) times a logarithm (of 1/η for escape and
    convergence), so momentum shortens escape and traverse in ODE time t = kη,
    while the number of steps to converge to ε ∝ η barely changes. Divide by η for steps.

    Returns:
      dict with ``escape``, ``traverse``, ``converge`` and ``total`` (ODE time).
    """
    lam = np.asarray(eigenvalues, float)
    mu = np.asarray(momentum, float)
    eta = np.asarray(lr, float)
    a2 = gaussian_fourth_moments(lam) if alpha2 is None else np.asarray(alpha2, float)
    gap = lam[0] - lam[1]
    kappa = gap / (1.0 - mu)
    s_inf = sde_stationary_error(lam, mu, eta, a2)
    eps_ = 2.0 * s_inf if eps is None else np.asarray(eps, float)
    if not 0 < delta < 0.5 + 1e-12:
        raise ValueError(f"delta must be in (0, 0.5], got {delta!r}")
    if np.any(eps_ <= s_inf) or np.any(eps_ >= delta):
        raise ValueError("eps must lie between the stationary error and delta")
    escape = np.log1p(2.0 * delta * (1.0 - mu) * gap / (eta * a2[1, 0])) / (2.0 * kappa)
    traverse = np.log((1.0 - delta) / delta) / kappa
    converge = np.log((delta - s_inf) / (eps_ - s_inf)) / (2.0 * kappa)
    return {
        "escape": escape,
        "traverse": np.broadcast_to(traverse, np.shape(escape)).copy(),
        "converge": converge,
        "total": escape + traverse + converge,
    }


# ------------------------------------------------------------------ queuing model
def staleness_pmf(lags: Any, workers: Any) -> np.ndarray:
    """P(τ = l) = (1/M)(1 − 1/M)^l: staleness under M workers with exponential times."""
    lags = np.asarray(lags, float)
    m = np.asarray(workers, float)
    return (1.0 / m) * (1.0 - 1.0 / m) ** lags


def staleness_mean(workers: Any) -> np.ndarray:
    """Mean staleness M − 1 of the queuing model."""
    return np.asarray(workers, float) - 1.0


def implicit_momentum(workers: Any) -> np.ndarray:
    """Mitliagkas et al.: asynchrony with M workers acts like momentum 1 − 1/M.

    In expectation, E[x_{t+1} − x_t] = (1 − 1/M) E[x_t − x_{t−1}] − (η/M) E∇f(x_t).
    """
    return 1.0 - 1.0 / np.asarray(workers, float)


# ------------------------------------------------------- time with fixed compute times
TIME_METHODS = ("optimal", "asgd", "minibatch", "msync")


def _compute_times(taus: Any) -> np.ndarray:
    """The workers' compute times, checked and sorted ascending (τ_1 ≤ … ≤ τ_n)."""
    t = as_float_array("taus", taus, ndim=1)
    if t.size < 1:
        raise ValueError("taus must not be empty: give one compute time per worker")
    low = t[t <= 0]
    if low.size:
        raise ValueError(f"taus must be > 0 (seconds per gradient); got {py(low[0])!r}")
    return np.sort(t)


def _noise_ratio(s: Any) -> float:
    value = float(as_float_array("s", s, ndim=0))
    if value < 0:
        raise ValueError(f"s = sigma^2/eps must be >= 0; got {value!r}")
    return value


def _check_time_method(method: Any, allowed: tuple[str, ...] = TIME_METHODS) -> str:
    if not isinstance(method, str) or method not in allowed:
        names = ", ".join(repr(m) for m in allowed)
        raise ValueError(
            f"method must be one of {names}; got {method!r}{did_you_mean(method, allowed)}"
        )
    return method


def _harmonic_prefix(t: np.ndarray) -> np.ndarray:
    """(n,) h_m = (1/m Σ_{i≤m} 1/τ_i)^{-1} for m = 1 … n: the m fastest workers' harmonic mean."""
    return np.arange(1, t.size + 1) / np.cumsum(1.0 / t)


def _candidates(t: np.ndarray, s: float, method: str) -> np.ndarray:
    """(n,) the time with the m fastest workers, m = 1 … n, for a method that picks m."""
    m = np.arange(1, t.size + 1)
    per_round = _harmonic_prefix(t) if method == "optimal" else t
    return per_round * (1.0 + s / m)


def time_complexity(taus: Any, s: float, method: str = "optimal", *, m: int | None = None) -> float:
    """Time to an ε-stationary point with n workers of fixed compute times, up to constants.

    The fixed computation model of Tyurin & Richtárik (NeurIPS 2023, "Optimal time
    complexities of parallel stochastic optimization methods under a fixed computation
    model"): worker i needs τ_i seconds per stochastic gradient, f is L-smooth with
    f(x_0) − inf f = Δ, the gradient noise has variance σ², and the goal is E‖∇f(x)‖² ≤ ε.
    With s = σ²/ε, the times sorted, τ_1 ≤ … ≤ τ_n, and h_m = (1/m Σ_{i≤m} 1/τ_i)^{-1} the
    harmonic mean of the m fastest:

    * ``"optimal"``: min over m of h_m (1 + s/m). The lower bound for every method of the
      model (Tyurin & Richtárik 2023, Table 1, row "Lower bound"), attained by their
      Rennala SGD (same table) and by Ringmaster ASGD (Maranjyan, Tyurin & Richtárik,
      ICML 2025, their main theorem with R = max(1, ⌈σ²/ε⌉)). `optimal_workers` gives the
      minimising m; workers slower than τ_m do not help.
    * ``"asgd"``: h_n (1 + s/n). Asynchronous SGD with its best constant step (Koloskova et
      al. 2022; Mishchenko et al. 2022), as Table 1 of Tyurin & Richtárik 2023 lists it:
      every worker counts, the slowest included.
    * ``"minibatch"``: τ_n (1 + s/n). Minibatch SGD, which waits for all n workers every
      step (Table 1 of Tyurin & Richtárik 2023).
    * ``"msync"``: τ_m (1 + s/m), with the best m unless ``m`` is given. m-Synchronous SGD
      (Begunov & Tyurin 2026, "Do we need asynchronous SGD?", arXiv 2602.03802): each
      round every worker starts at x_k, the server waits for the fastest m of n and cancels
      the rest. That paper analyses random compute times and partial participation; the
      fixed-time form here is derived, not quoted (we could not read its fixed-time
      statement): with fixed times a round lasts τ_m, and minibatch SGD with batch m needs
      (1 + s/m) LΔ/ε rounds (the same count that gives the ``"minibatch"`` row, which is
      m = n).

    Every value is in units of LΔ/ε and holds up to a constant factor, so compare methods
    by ratios; the constants are not the same in every bound.

    Example::

        taus = np.sqrt(np.arange(1, 1001))  # τ_i = √i, n = 1000
        best = aj.theory.time_complexity(taus, 10.0)  # 3.90, with m = 15 workers
        aj.theory.time_complexity(taus, 10.0, "asgd") / best  # 4.19
        aj.theory.time_complexity(taus, 10.0, "minibatch") / best  # 8.19

    Args:
      taus: (n,) compute times τ_i > 0, in any order (they are sorted first).
      s: σ²/ε ≥ 0, the noise-to-accuracy ratio.
      method: ``"optimal"``, ``"asgd"``, ``"minibatch"`` or ``"msync"``.
      m: for ``"msync"`` only, the number of workers waited for, 1 ≤ m ≤ n; default the
        best one (`optimal_workers` with ``method="msync"``).

    Returns:
      The time, in units of LΔ/ε (the same units as ``taus`` times LΔ/ε).
    """
    t = _compute_times(taus)
    s = _noise_ratio(s)
    method = _check_time_method(method)
    n = t.size
    if m is not None:
        if method != "msync":
            raise ValueError(f"m applies to method='msync' only, not method={method!r}")
        m = check_int(m, "m", minimum=1)
        if m > n:
            raise ValueError(f"m must be <= the number of workers ({n}); got {m}")
        return float(t[m - 1] * (1.0 + s / m))
    if method == "asgd":
        return float(_harmonic_prefix(t)[-1] * (1.0 + s / n))
    if method == "minibatch":
        return float(t[-1] * (1.0 + s / n))
    return float(_candidates(t, s, method).min())


def optimal_workers(taus: Any, s: float, method: str = "optimal") -> int:
    """The m that `time_complexity` minimises over: how many of the fastest workers to use.

    For ``"optimal"`` the minimiser of h_m (1 + s/m) (Tyurin & Richtárik 2023, Table 1; the
    m* of Ringmaster ASGD's "Naive Optimal ASGD", Maranjyan, Tyurin & Richtárik 2025); for
    ``"msync"`` the minimiser of τ_m (1 + s/m). Ties go to the smaller m.

    Example::

        aj.theory.optimal_workers(np.sqrt(np.arange(1, 101)), 10.0)  # 15, for every n >= 15

    Args:
      taus: (n,) compute times τ_i > 0, in any order.
      s: σ²/ε ≥ 0.
      method: ``"optimal"`` or ``"msync"``.

    Returns:
      m, 1 ≤ m ≤ n, counted among the workers sorted fastest first.
    """
    t = _compute_times(taus)
    s = _noise_ratio(s)
    method = _check_time_method(method, ("optimal", "msync"))
    return int(np.argmin(_candidates(t, s, method))) + 1


def ringmaster_window(taus: Any, R: int) -> float:
    """Longest wall-clock time any R consecutive applied updates of Ringmaster ASGD can take.

    t(R) = 2 min over m of (1/m Σ_{i≤m} 1/τ_i)^{-1} (1 + R/m), for fixed compute times
    (Maranjyan, Tyurin & Richtárik, "Ringmaster ASGD: the first asynchronous SGD with
    optimal time complexity", ICML 2025, Lemma 4.1), with R the delay threshold (an
    arrival with delay ≥ R, counted in applied updates, is discarded). A bound, not an
    estimate: every window of R consecutive updates in a simulation with fixed times must
    fit inside it.

    Example::

        aj.theory.ringmaster_window(np.sqrt(np.arange(1, 101)), 6)  # 6.37

    Args:
      taus: (n,) compute times τ_i > 0, in any order (they are sorted first).
      R: the delay threshold, an integer ≥ 1.

    Returns:
      t(R), in the units of ``taus``.
    """
    t = _compute_times(taus)
    R = check_int(R, "R", minimum=1)
    m = np.arange(1, t.size + 1)
    return float(2.0 * np.min(_harmonic_prefix(t) * (1.0 + R / m)))


# ------------------------------------------------------- workers with their own data
def update_shares(times: Any = None, rates: Any = None) -> np.ndarray:
    """p_j: the fraction of asynchronous SGD's updates that are worker j's gradients.

    Each worker computes back to back and the server applies every arrival, so in
    the long run worker j delivers one gradient per mean compute time (the renewal
    theorem): p_j = (1/τ_j) / Σ_i 1/τ_i for compute times τ_j (fixed times, or the
    mean of random ones), and p_j = r_j / Σ_i r_i for exponential times of rates r_j.
    With data that differ across
    workers these shares weight the problem asynchronous SGD actually solves
    (`asgd_fixed_point`) instead of the uniform 1/n.

    Example::

        aj.theory.update_shares(times=[1, 2, 4])  # [4/7, 2/7, 1/7]
        aj.theory.update_shares(rates=[3, 1])  # [0.75, 0.25]

    Args:
      times: (n,) compute times τ_j > 0 (seconds per gradient).
      rates: (n,) rates r_j > 0 (gradients per second); give exactly one of the two.

    Returns:
      (n,) shares p_j ≥ 0 summing to 1.
    """
    if (times is None) == (rates is None):
        raise ValueError("give exactly one of times= (compute times) or rates= (exponential rates)")
    name, value = ("times", times) if times is not None else ("rates", rates)
    v = as_float_array(name, value, ndim=1)
    if v.size < 1:
        raise ValueError(f"{name} must not be empty: give one value per worker")
    low = v[v <= 0]
    if low.size:
        raise ValueError(f"{name} must be > 0, one per worker; got {py(low[0])!r}")
    per = 1.0 / v if times is not None else v
    return per / per.sum()


def asgd_fixed_point(optima: Any, curvatures: Any = None, shares: Any = None) -> np.ndarray:
    """The point asynchronous SGD settles at on per-worker quadratics: Σ_j p_j A_j (x − b_j) = 0.

    With f_j(x) = ½ (x − b_j)ᵀ A_j (x − b_j) held by worker j and f = (1/n) Σ_j f_j,
    asynchronous SGD applies worker j's gradient a fraction p_j of the time
    (`update_shares`), so its mean fixed point solves Σ_j p_j A_j (x − b_j) = 0: for
    equal A_j it is Σ_j p_j b_j, not f's optimum (1/n) Σ_j b_j. This is the bias towards
    the fast workers' data that Malenia SGD (Tyurin & Richtárik, NeurIPS 2023) and
    Ringleader ASGD (Maranjyan & Richtárik 2025, arXiv 2509.22860) are built to remove;
    the equation is derived here for quadratics. Uniform shares (p_j = 1/n) give the
    optimum.

    How exact: the equation holds for the mean of the points the arriving gradients
    were computed at; the mean iterate differs from it by a correction of the order of
    the step, because a worker reads its next point just after its own gradient was
    applied. Measured with `asyncjax.sweep` (4 workers of mean times 1 … 4, d = 2,
    8 400 events, the second half averaged; 2-core CPU): with equal A_j the late mean
    is within 2·10⁻⁴ ‖x̄ − x*‖ of x̄ for fixed times and within its standard error
    (256 seeds) for exponential times; with unequal A_j it is off by 2% (fixed) and
    2.5% (exponential) of ‖x̄ − x*‖ at step 0.1, and by half that at step 0.05.

    Example::

        B = [[1.0, 0.0], [-1.0, 0.0]]
        aj.theory.asgd_fixed_point(B, shares=aj.theory.update_shares(times=[1, 3]))
        # [0.5, 0.]: three of every four updates pull towards the fast worker's b_0

    Args:
      optima: (n, d) b_j, worker j's optimum.
      curvatures: A_j: None (the identity for every worker), (n, d) the diagonals
        of diagonal A_j (`asyncjax.Quadratic`'s ``worker_curvatures``), or
        (n, d, d) symmetric matrices; Σ_j p_j A_j must be invertible.
      shares: (n,) p_j ≥ 0, normalised to sum 1; None: uniform (f's optimum).

    Returns:
      (d,) the fixed point x̄.
    """
    b = as_float_array("optima", optima, ndim=2)
    n, d = b.shape
    if n < 1 or d < 1:
        raise ValueError(f"optima must have shape (n, d) with n, d >= 1, got {b.shape}")
    if shares is None:
        p = np.full(n, 1.0 / n)
    else:
        p = as_float_array("shares", shares, ndim=1)
        if p.shape != (n,):
            raise ValueError(f"shares must have shape ({n},) (one per worker), got {p.shape}")
        if (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"shares must be >= 0 with a positive sum; got {p.tolist()}")
        p = p / p.sum()
    if curvatures is None:
        return p @ b
    a = as_float_array("curvatures", curvatures)
    if a.shape == (n, d):
        mean = p @ a
        if (mean <= 0).any():
            raise ValueError("the share-weighted curvature Σ_j p_j A_j must be > 0 everywhere")
        return (p @ (a * b)) / mean
    if a.shape != (n, d, d):
        raise ValueError(
            f"curvatures must have shape ({n}, {d}) (diagonals) or ({n}, {d}, {d}) "
            f"(matrices), got {a.shape}"
        )
    lhs = np.einsum("j,jkl->kl", p, a)
    rhs = np.einsum("j,jkl,jl->k", p, a, b)
    try:
        return np.linalg.solve(lhs, rhs)
    except np.linalg.LinAlgError as err:
        raise ValueError("the share-weighted curvature Σ_j p_j A_j is singular") from err
