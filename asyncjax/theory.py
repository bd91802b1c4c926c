"""What theory predicts, as plain vectorised NumPy functions (SCIENCE.md §1–2).

Delay-stability boundary
------------------------
Linearising eq. 5 at the optimum gives one scalar recurrence per mode,

    x_{k+1} = (1 + μ) x_k − μ x_{k−1} − c x_{k−τ},      c = η a,

with a = λ1 − λi for the tangential modes (i ≥ 2) and a = 2 λ1 for the radial
mode (the length of the unnormalised iterate). Its characteristic equation,
for every τ ≥ 0, is

    z^{τ−1} (z − 1)(z − μ) + c = 0.

A root on the unit circle z = e^{iθ} needs |e^{iθ} − 1| |e^{iθ} − μ| = c (which
fixes the crossing frequencies θ) and a phase condition that gives the delays
at which it happens. :func:`stability_threshold` takes the first such delay and
then *checks* the answer with the companion-matrix spectral radius on both
sides of it, so a non-monotone case is caught rather than assumed away.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "characteristic_coefficients",
    "spectral_radius",
    "stability_threshold",
    "stability_threshold_asymptote",
    "pca_modes",
    "pca_threshold",
]

_VERIFY_MAX = 600  # companion matrices up to this degree are checked (< 0.1 s each)
_MARGIN = 1e-9  # a spectral radius within this of 1 counts as on the circle (unstable)


def characteristic_coefficients(momentum: float, c: float, delay: int) -> np.ndarray:
    """Coefficients (highest power first) of z^{τ+1} − (1+μ) z^τ + μ z^{τ−1} + c.

    For τ = 0 the polynomial is z² − (1 + μ − c) z + μ.
    """
    if delay == 0:
        return np.array([1.0, -(1.0 + momentum - c), momentum])
    coef = np.zeros(delay + 2)
    coef[0], coef[1] = 1.0, -(1.0 + momentum)
    coef[2] += momentum
    coef[-1] += c
    return coef


def spectral_radius(momentum: float, c: float, delay: int) -> float:
    """Largest root modulus of the characteristic polynomial (companion matrix)."""
    return float(np.max(np.abs(np.roots(characteristic_coefficients(momentum, c, delay)))))


def _gain(theta: np.ndarray, mu: float) -> np.ndarray:
    """|e^{iθ} − 1| |e^{iθ} − μ|."""
    return 2.0 * np.sin(theta / 2.0) * np.sqrt(1.0 - 2.0 * mu * np.cos(theta) + mu * mu)


def _crossing_frequencies(mu: float, c: float) -> np.ndarray:
    """All θ in (0, π] with |e^{iθ} − 1||e^{iθ} − μ| = c (bisection on sign changes)."""
    grid = np.unique(np.concatenate([np.pi * np.logspace(-12, 0, 3000), np.linspace(0, np.pi, 3000)[1:]]))
    f = _gain(grid, mu) - c
    idx = np.flatnonzero(np.sign(f[:-1]) != np.sign(f[1:]))
    roots = []
    for i in idx:
        lo, hi = grid[i], grid[i + 1]
        flo = f[i]
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            fm = _gain(np.array(mid), mu) - c
            if np.sign(fm) == np.sign(flo):
                lo, flo = mid, fm
            else:
                hi = mid
        roots.append(0.5 * (lo + hi))
    if abs(f[-1]) < 1e-15:
        roots.append(np.pi)
    return np.array(roots)


def _first_crossing_delay(mu: float, c: float) -> float:
    """Smallest real τ ≥ 0 at which a characteristic root lies on the unit circle."""
    best = math.inf
    for theta in _crossing_frequencies(mu, c):
        # arg(e^{iθ} − 1) = π/2 + θ/2 on (0, 2π); phase condition:
        # (τ − 1) θ + π/2 + θ/2 + arg(e^{iθ} − μ) = π (mod 2π)
        phi = math.atan2(math.sin(theta), math.cos(theta) - mu)
        tau0 = 1.0 + (math.pi / 2 - theta / 2 - phi) / theta
        period = 2.0 * math.pi / theta
        if tau0 < 0:
            tau0 += period * math.ceil(-tau0 / period)
        best = min(best, tau0)
    return best


def _threshold_one(mu: float, c: float, verify: bool) -> int:
    if not (-1.0 < mu < 1.0) or not c > 0:
        raise ValueError(f"need -1 < momentum < 1 and c = lr * a > 0; got momentum={mu!r}, c={c!r}")
    if spectral_radius(mu, c, 0) >= 1.0:
        return -1  # unstable even without delay
    tau_c = _first_crossing_delay(mu, c)
    if not math.isfinite(tau_c):  # pragma: no cover - c > 0 always crosses below 2(1+μ)
        raise RuntimeError(f"no stability crossing found for momentum={mu}, c={c}")
    star = int(math.ceil(tau_c)) - 1
    if not verify or star + 1 > _VERIFY_MAX:
        return star
    # Check with the companion roots; a crossing that lands on an integer delay
    # (a root exactly on the circle) can be misplaced by rounding, so let the
    # roots move τ* by a step or two. A root on the circle counts as unstable.
    for _ in range(3):
        below_stable = star < 0 or spectral_radius(mu, c, star) < 1.0 - _MARGIN
        above_stable = spectral_radius(mu, c, star + 1) < 1.0 - _MARGIN
        if below_stable and not above_stable:
            return star
        star += 1 if above_stable else -1
    raise RuntimeError(
        f"stability boundary check failed for momentum={mu}, c={c}: the companion roots do "
        f"not confirm a boundary near τ={star}"
    )


def stability_threshold(momentum: Any, c: Any, *, verify: bool = True) -> np.ndarray:
    """τ*(μ, c): the largest delay for which the linearised mode is stable.

    Every delay 0 ≤ τ ≤ τ* is stable; τ* + 1 is not. Returns -1 where even
    τ = 0 is unstable (c ≥ 2(1 + μ)).

    Args:
      momentum: μ, any shape, in (-1, 1).
      c: the mode's gain η·a > 0, broadcastable against ``momentum``.
      verify: check each answer with companion-matrix roots at τ* and τ* + 1.

    Returns:
      Integer array of the broadcast shape.
    """
    mu, cc = np.broadcast_arrays(np.asarray(momentum, float), np.asarray(c, float))
    out = np.empty(mu.shape, dtype=np.int64)
    for idx in np.ndindex(mu.shape):
        out[idx] = _threshold_one(float(mu[idx]), float(cc[idx]), verify)
    return out


def stability_threshold_asymptote(momentum: Any, c: Any) -> np.ndarray:
    """Small-gain limit π (1 − μ) / (2 c) of τ* (delayed feedback ẋ = −c x(t − τ)/(1−μ))."""
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
