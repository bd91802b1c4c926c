"""Turning trajectories into curves, bands and threshold delays.

Functions take NumPy arrays (or `Results`) and never
run a simulation.

Diverged trajectories (`DIVERGENCE_RULE`): a trajectory that diverges is
frozen by the simulator, and the error it is frozen at depends on the norm
bound that tripped, not on the optimiser. So analysis counts it as *failed*:
from the step it diverged on, its error is the problem's worst value (sin² = 1
for streaming PCA) -- see `with_failures`. `late_average`,
`at_step` and the figures apply this rule; `band` and
`threshold_delays` take the divergence flags and report the diverged
fraction of every point beside the statistic, and `diverged_fraction`
gives it directly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from asyncjax.results import Results

__all__ = [
    "Band",
    "band",
    "late_average",
    "at_step",
    "diverged_fraction",
    "diverged_mask",
    "with_failures",
    "worst_value",
    "DIVERGENCE_RULE",
    "threshold_from_curve",
    "Thresholds",
    "threshold_delays",
    "THRESHOLD_RULE",
    "hitting_times",
    "phase_times",
    "aligned_mean",
    "ImplicitMomentum",
    "implicit_momentum_fit",
    "PowerLaw",
    "fit_power_law",
    "bootstrap_weights",
    "laid_out",
]


DIVERGENCE_RULE = (
    "A trajectory that diverged (its iterate turned non-finite or its norm passed norm_bound, and the "
    "simulator froze it) counts as failed: from the step it diverged on, its error is taken to be the "
    "problem's worst value (sin² = 1 for streaming PCA: orthogonal to the solution), not the value it "
    "was frozen at, which depends on the bound. Means, bands, thresholds and figures use that value; "
    "the fraction of diverged trajectories is reported beside each of them."
)


class _BandFields(NamedTuple):
    mean: np.ndarray
    stderr: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


class Band(_BandFields):
    """Mean over seeds with its standard error and a quantile band.

    A 4-tuple ``(mean, stderr, lo, hi)``; when `band` is given the
    divergence flags it also carries ``diverged`` (the fraction of diverged
    trajectories at each point) and ``diverged_share`` (the share of the mean
    that they contribute; a point is *divergence-dominated* where it is ≥ 1/2).
    Both are None otherwise.
    """

    diverged: np.ndarray | None = None
    diverged_share: np.ndarray | None = None

    def __new__(cls, mean, stderr, lo, hi, diverged=None, diverged_share=None):
        self = super().__new__(cls, mean, stderr, lo, hi)
        self.diverged = diverged
        self.diverged_share = diverged_share
        return self


def band(
    values: np.ndarray,
    axis: int = -1,
    quantiles: tuple[float, float] = (0.1, 0.9),
    *,
    diverged: np.ndarray | None = None,
) -> Band:
    """Mean, standard error and a (lo, hi) quantile band along ``axis`` (the seeds).

    Args:
      values: per-trajectory values, with diverged trajectories already counted
        as failed (as `late_average` does).
      axis: the seed axis.
      quantiles: the band's lower and upper quantiles.
      diverged: optional bool flags, same shape as ``values`` (e.g.
        `diverged_mask`); then the band reports ``diverged`` and
        ``diverged_share`` per point.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    with np.errstate(invalid="ignore"):  # inf worst values give inf means and NaN spreads
        mean = values.mean(axis=axis)
        stderr = values.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
        lo, hi = np.quantile(values, quantiles, axis=axis)
    frac = share = None
    if diverged is not None:
        flags = np.broadcast_to(np.asarray(diverged, bool), values.shape)
        frac = flags.mean(axis=axis)
        total = values.sum(axis=axis)
        failed = np.where(flags, values, 0.0).sum(axis=axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(failed > 0, failed / np.where(total > 0, total, 1.0), 0.0)
        share = np.where(np.isnan(share), 1.0, np.minimum(share, 1.0))  # inf / inf: all failure
    return Band(mean, stderr, lo, hi, frac, share)


def worst_value(results: Results, var: str = "error") -> float | None:
    """The worst value ``var`` can take (what a diverged trajectory counts as), or None.

    Read from the results' metadata (``attrs["variables"][var]["worst"]``);
    for results saved before that existed, sin² error of streaming PCA is 1.
    """
    info = results.attrs.get("variables", {}).get(var)
    if isinstance(info, dict) and "worst" in info:
        return None if info["worst"] is None else float(info["worst"])
    if var == "error" and results.attrs.get("problem", {}).get("problem") == "streaming_pca":
        return 1.0
    return None


def diverged_mask(results: Results, var: str | None = None) -> np.ndarray:
    """Bool flags of the diverged trajectories (axes of ``diverged_at``).

    With ``var``, the flags are laid out along ``var``'s axes other than
    ``step`` and ``component`` (for `band` of a per-trajectory value).
    """
    flags = results["diverged_at"] >= 0
    if var is None:
        return flags
    return _align(
        flags,
        results.dims["diverged_at"],
        [d for d in results.dims[var] if d not in ("step", "component")],
    )


def bootstrap_weights(n_seeds: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, n_seeds) resampling weights: row b is how often each seed is drawn in resample b, / n_seeds.

    A bootstrap mean over seeds is then ``weights @ values``; every statistic
    resampled with the same ``seed`` sees the same resamples.
    """
    draws = np.random.default_rng(seed).integers(0, n_seeds, size=(n_boot, n_seeds))
    return np.stack([np.bincount(row, minlength=n_seeds) for row in draws]) / n_seeds


def _align(arr: np.ndarray, dims: tuple[str, ...], target: list[str]) -> np.ndarray:
    """``arr`` (axes ``dims``) transposed and expanded to broadcast against axes ``target``."""
    dims = list(dims)
    missing = [d for d in dims if d not in target]
    if missing:
        raise ValueError(f"axes {missing} are not among {target}")
    order = [d for d in target if d in dims]
    arr = np.transpose(arr, [dims.index(d) for d in order])
    return arr.reshape([arr.shape[order.index(d)] if d in order else 1 for d in target])


def laid_out(results: Results, name: str, dims: tuple[str, ...] | list[str]) -> np.ndarray:
    """``results[name]`` with its axes in the order ``dims``, absent ones of size 1 (broadcastable).

    Args:
      results: a sweep's results.
      name: one of its variables; every axis of it must be among ``dims``.
      dims: the axes wanted, e.g. ``("seed", "workers", "step")``.
    """
    return _align(results[name], results.dims[name], list(dims))


def with_failures(results: Results, var: str = "error") -> np.ndarray:
    """``var`` with diverged trajectories counted as failed (`DIVERGENCE_RULE`).

    Every record at or after a trajectory's ``diverged_at`` step is replaced by
    `worst_value`. Variables without a known worst value (e.g. ``norm``)
    are returned as recorded.

    Returns:
      An array shaped like ``results[var]`` (float64).
    """
    values = np.asarray(results[var], dtype=np.float64)
    worst = worst_value(results, var)
    if worst is None or "diverged_at" not in results or "step" not in results.dims[var]:
        return values
    dims = list(results.dims[var])
    at = _align(results["diverged_at"], results.dims["diverged_at"], dims)  # step axis has size 1
    steps = _align(np.asarray(results.coords["step"]), ("step",), dims)
    failed = (at >= 0) & (steps >= at)
    return np.where(failed, worst, values)


def late_average(
    results: Results, var: str = "error", window: float = 0.25, *, diverged: str = "fail"
) -> np.ndarray:
    """Per-trajectory average of ``var`` over the last ``window`` fraction of the run.

    Averaging a stretch of late records instead of reading the last one lowers
    the noise of each trajectory's error without changing what it measures
    once the run has settled. Returns the array without its ``step`` axis.

    Args:
      results: a sweep's results.
      var: the variable (axes ..., step).
      window: the fraction of the run, at its end, to average over.
      diverged: ``"fail"`` (default) counts diverged trajectories as failed
        from their divergence on (`with_failures`); ``"frozen"`` uses
        the values they were frozen at.
    """
    if not 0 < window <= 1:
        raise ValueError(f"window must be in (0, 1], got {window!r}")
    values = _values(results, var, diverged)
    axis = results.axis(var, "step")
    steps = results.coords["step"]
    start = steps[-1] - window * steps[-1]
    keep = steps >= start
    return np.take(values, np.flatnonzero(keep), axis=axis).mean(axis=axis)


def _values(results: Results, var: str, diverged: str) -> np.ndarray:
    if diverged == "fail":
        return with_failures(results, var)
    if diverged == "frozen":
        return results[var]
    raise ValueError(f"diverged must be 'fail' or 'frozen', got {diverged!r}")


def at_step(
    results: Results, step: int, var: str = "error", *, diverged: str = "fail"
) -> np.ndarray:
    """``var`` at the recorded step nearest to ``step`` (the ``step`` axis dropped).

    ``diverged``: as in `late_average`.
    """
    steps = results.coords["step"]
    i = int(np.argmin(np.abs(steps - step)))
    return np.take(_values(results, var, diverged), i, axis=results.axis(var, "step"))


def diverged_fraction(results: Results, over: str = "seed") -> np.ndarray:
    """Fraction of trajectories flagged as diverged, along axis ``over``."""
    flags = results["diverged_at"] >= 0
    return flags.mean(axis=results.axis("diverged_at", over))


THRESHOLD_RULE = (
    "Each trajectory's sin² error is averaged over the last {window:.0%} of its recorded steps, a "
    "diverged trajectory counting as sin² = 1 (failed) from the step it diverged on; "
    "the curve is the mean of that over seeds, against the delay. The threshold delay is where "
    "the curve first exceeds {factor:g}× its value at the smallest delay, interpolated linearly in "
    "log(error) between the two grid delays that bracket the crossing. If it never does, the "
    "threshold is censored at the largest delay. CI: percentile bootstrap over seeds "
    "({n_boot} resamples; a seed's whole curve is resampled together)."
)


def threshold_from_curve(
    delays: Any, curve: Any, factor: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Threshold delay of error curves, under the rule of `THRESHOLD_RULE`.

    Args:
      delays: (T,) increasing delays.
      curve: (..., T) positive mean errors against the delays.
      factor: the rise over the smallest-delay error that marks the threshold.

    Returns:
      ``(threshold, censored)``, each of shape (...): the interpolated delay,
      and True where the curve never crossed (threshold = the largest delay).
    """
    delays = np.asarray(delays, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    if delays.ndim != 1 or delays.size < 2 or np.any(np.diff(delays) <= 0):
        raise ValueError(f"delays must be an increasing 1-D list of at least 2, got {delays}")
    if curve.shape[-1] != delays.size:
        raise ValueError(
            f"curve has {curve.shape[-1]} points along its last axis, delays {delays.size}"
        )
    if factor <= 1:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    log_c = np.log(np.maximum(curve, 1e-300))
    level = log_c[..., :1] + np.log(factor)
    above = log_c > level
    crossed = above.any(axis=-1)
    j = np.where(crossed, np.argmax(above, axis=-1), delays.size - 1)  # first point above
    j = np.maximum(j, 1)
    y0 = np.take_along_axis(log_c, (j - 1)[..., None], -1)[..., 0]
    y1 = np.take_along_axis(log_c, j[..., None], -1)[..., 0]
    lv = level[..., 0]
    frac = np.clip((lv - y0) / np.where(y1 > y0, y1 - y0, 1.0), 0.0, 1.0)
    thr = delays[j - 1] + frac * (delays[j] - delays[j - 1])
    return np.where(crossed, thr, delays[-1]), ~crossed


class _ThresholdFields(NamedTuple):
    threshold: np.ndarray  # (...,)
    ci_lo: np.ndarray  # (...,)
    ci_hi: np.ndarray  # (...,)
    censored: np.ndarray  # (...,) bool
    rule: str
    boot: np.ndarray  # (n_boot, ...) the bootstrap replicates


class Thresholds(_ThresholdFields):
    """Threshold delays per curve, with percentile-bootstrap intervals.

    Given divergence flags, `threshold_delays` also sets
    ``diverged_fraction`` ((..., T), per curve point) and
    ``diverged_below`` ((...,), the largest diverged fraction at the delays up
    to the first one past the threshold: where it is 0, divergence played no
    part in the threshold). Both are None otherwise.
    """

    diverged_fraction: np.ndarray | None = None
    diverged_below: np.ndarray | None = None

    def __new__(
        cls,
        threshold,
        ci_lo,
        ci_hi,
        censored,
        rule,
        boot,
        diverged_fraction=None,
        diverged_below=None,
    ):
        self = super().__new__(cls, threshold, ci_lo, ci_hi, censored, rule, boot)
        self.diverged_fraction = diverged_fraction
        self.diverged_below = diverged_below
        return self


def threshold_delays(
    per_seed: np.ndarray,
    delays: Any,
    *,
    factor: float = 2.0,
    n_boot: int = 1000,
    level: float = 0.95,
    window: float = 0.25,
    seed: int = 0,
    diverged: np.ndarray | None = None,
) -> Thresholds:
    """Measured threshold delays with bootstrap confidence intervals over seeds.

    Args:
      per_seed: (..., T, S) per-trajectory error (e.g. from `late_average`,
        which counts diverged trajectories as failed), delays on the
        second-to-last axis and seeds on the last.
      delays: (T,) the delays.
      factor: see `threshold_from_curve`.
      n_boot: bootstrap resamples.
      level: confidence level of the interval.
      window: the late-average window used to make ``per_seed`` (for the rule text).
      seed: seed of the resampling.
      diverged: optional (..., T, S) bool flags of diverged trajectories
        (`diverged_mask`), to report the diverged fractions.

    Returns:
      `Thresholds` with shape (...).
    """
    per_seed = np.asarray(per_seed, dtype=np.float64)
    n_seeds = per_seed.shape[-1]
    thr, censored = threshold_from_curve(delays, per_seed.mean(axis=-1), factor)
    weights = bootstrap_weights(n_seeds, n_boot, seed)  # (B, S)
    boot_curves = per_seed @ weights.T  # (..., T, B)
    boot, _ = threshold_from_curve(delays, np.moveaxis(boot_curves, -1, 0), factor)  # (B, ...)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    rule = THRESHOLD_RULE.format(window=window, factor=factor, n_boot=n_boot)
    frac = below = None
    if diverged is not None:
        frac = np.broadcast_to(np.asarray(diverged, bool), per_seed.shape).mean(axis=-1)  # (..., T)
        d = np.asarray(delays, dtype=np.float64)
        past = np.searchsorted(d, thr, side="right")  # first grid delay beyond the threshold
        upto = np.arange(d.size) <= np.minimum(past, d.size - 1)[..., None]
        below = np.where(upto, frac, 0.0).max(axis=-1)
    return Thresholds(thr, lo, hi, censored, rule, boot, frac, below)


# ------------------------------------------------------------------ phases, ODE
def hitting_times(error: np.ndarray, steps: np.ndarray, level: float) -> np.ndarray:
    """First step each trajectory's error falls to ``level`` (linear interpolation).

    Args:
      error: (..., T) errors at the recorded ``steps`` (T,).
      level: the level to reach from above.

    Returns:
      (...,) steps (float); NaN where the level is never reached.
    """
    error = np.asarray(error, float)
    steps = np.asarray(steps, float)
    below = error <= level
    hit = below.any(axis=-1)
    j = np.argmax(below, axis=-1)
    jp = np.maximum(j - 1, 0)
    e0 = np.take_along_axis(error, jp[..., None], -1)[..., 0]
    e1 = np.take_along_axis(error, j[..., None], -1)[..., 0]
    frac = np.where((j > 0) & (e0 > e1), (e0 - level) / np.where(e0 > e1, e0 - e1, 1.0), 0.0)
    t = steps[jp] + np.clip(frac, 0.0, 1.0) * (steps[j] - steps[jp])
    return np.where(hit, np.where(j == 0, steps[0], t), np.nan)


def phase_times(
    error: np.ndarray, steps: np.ndarray, *, delta: float = 0.1, eps: float
) -> dict[str, np.ndarray]:
    """Per-trajectory durations (in steps) of the three phases from a saddle.

    escape: from the start until sin² ≤ 1 − δ; traverse: until sin² ≤ δ;
    converge: from there until sin² ≤ ε. Matches `asyncjax.theory.phase_durations`
    (which is in ODE time: multiply it by 1/η).
    """
    t_escape = hitting_times(error, steps, 1.0 - delta)
    t_traverse = hitting_times(error, steps, delta)
    t_converge = hitting_times(error, steps, eps)
    return {
        "escape": t_escape - np.asarray(steps, float)[0],
        "traverse": t_traverse - t_escape,
        "converge": t_converge - t_traverse,
    }


def aligned_mean(
    error: np.ndarray, steps: np.ndarray, level: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Mean error after shifting each trajectory so that it crosses ``level`` at step 0.

    From a saddle, the escape happens at a random time (noise-driven), and an
    average of curves with random time shifts is flatter than any one of them.
    Aligning each trajectory at its own crossing removes that spread, leaving
    the deterministic traverse and convergence the ODE describes.

    Args:
      error: (S, T) trajectories on the record grid ``steps`` (T,).

    Returns:
      ``(lags, mean)``: lags (steps relative to the crossing) on the record grid
      spacing, and the mean over the trajectories that cover each lag.
    """
    error = np.asarray(error, float)
    steps = np.asarray(steps, float)
    cross = hitting_times(error, steps, level)
    ok = np.isfinite(cross)
    if not ok.any():
        raise ValueError(f"no trajectory reaches error {level}")
    dt = steps[1] - steps[0]
    lags = np.arange(-(steps[-1] - steps[0]), steps[-1] - steps[0] + dt / 2, dt)
    vals = np.full((int(ok.sum()), lags.size), np.nan)
    for row, (e, c) in enumerate(zip(error[ok], cross[ok])):
        vals[row] = np.interp(lags + c, steps, e, left=np.nan, right=np.nan)
    count = np.isfinite(vals).sum(axis=0)
    keep = count >= max(1, ok.sum() // 2)  # lags covered by at least half of them
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(np.isfinite(vals), vals, np.nan)[:, keep], axis=0)
    return lags[keep], mean


# ------------------------------------------------------------- implicit momentum
class ImplicitMomentum(NamedTuple):
    """Fit of E[Δx_{t+1}] = m E[Δx_t] + b η E[G(x_t)] (G: the expected update direction)."""

    momentum: float  # m; Mitliagkas et al. predict 1 − 1/M (+ explicit μ)
    gradient_scale: float  # b; predicted 1/M
    momentum_ci: tuple[float, float]
    gradient_scale_ci: tuple[float, float]


def implicit_momentum_fit(
    iterates: np.ndarray,
    direction,
    lr: float,
    *,
    constrained: bool = True,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> ImplicitMomentum:
    """Estimates the momentum that asynchrony implies, from simulated mean trajectories.

    Fits E[x_{t+1} − x_t] = m E[x_t − x_{t−1}] + b η E[G(x_t)] over steps t and
    coordinates, where E is the mean over seeds and G the expected update
    direction at x (for streaming PCA, G(v) = Σv − (vᵀΣv) v in the eigenbasis).
    Under the queuing model the relation holds exactly in expectation, with
    m = 1 − 1/M and b = 1/M (Mitliagkas et al. 2016).

    Two things make a plain least-squares fit of the seed means fail:

    * the regressors are nearly collinear (Δx_t ≈ η G(x_t) when the trajectory
      moves slowly), and b = 1 − m holds exactly under the queuing model (the
      ODE limit is unchanged by asynchrony). With ``constrained=True`` (the
      default) the fit imposes it: E[Δx_{t+1}] − ηE[G_t] = m (E[Δx_t] − ηE[G_t]);
    * the regressor is itself a noisy seed mean, which biases least squares
      towards m = 0 (errors in variables). The seeds are split into two fixed
      halves and each half's regressor is instrumented by the other half's,
      whose noise is independent; the two estimates are averaged.

    The interval is a bootstrap that resamples seeds within each half.

    Args:
      iterates: (S, T, d) iterates recorded at consecutive steps, for S seeds.
      direction: function (..., d) -> (..., d), G.
      lr: η.
      constrained: impose b = 1 − m (one regressor) or fit both.
    """
    x = np.asarray(iterates, float)
    if x.ndim != 3 or x.shape[1] < 4 or x.shape[0] < 4:
        raise ValueError(f"iterates must be (seeds >= 4, steps >= 4, d), got shape {x.shape}")
    dx = np.diff(x, axis=1)  # (S, T-1, d)
    g = lr * np.asarray(direction(x[:, 1:-1]))  # η G(x_t), t = 1 … T-2
    if constrained:  # columns: response, regressor
        cols = [dx[:, 1:] - g, dx[:, :-1] - g]
    else:  # columns: response, regressors Δx_t and η G_t
        cols = [dx[:, 1:], dx[:, :-1], g]
    per_seed = np.stack(cols, axis=-1).reshape(x.shape[0], -1, len(cols))  # (S, n, k)

    def iv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """IV estimate with a's regressors instrumented by b's."""
        return np.linalg.solve(b[:, 1:].T @ a[:, 1:], b[:, 1:].T @ a[:, 0])

    def fit(half_a: np.ndarray, half_b: np.ndarray) -> np.ndarray:
        a, b = per_seed[half_a].mean(axis=0), per_seed[half_b].mean(axis=0)
        coef = 0.5 * (iv(a, b) + iv(b, a))
        return np.array([coef[0], 1.0 - coef[0]]) if constrained else coef

    rng = np.random.default_rng(seed)
    perm = rng.permutation(x.shape[0])
    half_a, half_b = perm[: perm.size // 2], perm[perm.size // 2 :]
    m, b = fit(half_a, half_b)
    boot = np.array(
        [
            fit(rng.choice(half_a, half_a.size), rng.choice(half_b, half_b.size))
            for _ in range(n_boot)
        ]
    )
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    return ImplicitMomentum(
        float(m), float(b), (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))
    )


# ------------------------------------------------------------------ scaling fits
class PowerLaw(NamedTuple):
    """y ≈ prefactor · x^exponent, fitted by least squares on logs."""

    exponent: float
    prefactor: float
    exponent_ci: tuple[float, float]


def fit_power_law(x: Any, y: Any, y_boot: Any = None, level: float = 0.95) -> PowerLaw:
    """Fits log y = log C + p log x; the interval comes from ``y_boot``.

    Args:
      x: (n,) positive abscissae, e.g. 1 − μ or η.
      y: (n,) positive values, e.g. threshold delays.
      y_boot: (B, n) bootstrap replicates of y (e.g. `Thresholds.boot`); without
        them the interval is the slope ± t·SE of the regression (95% only).
    """
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if lx.size < 2:
        raise ValueError("need at least two points to fit a power law")
    p, c = np.polyfit(lx, ly, 1)
    alpha = (1 - level) / 2
    if y_boot is None and level != 0.95:
        raise ValueError("without bootstrap replicates only a 95% interval is available")
    if y_boot is not None:
        yb = np.log(np.asarray(y_boot, float))
        slopes = np.polyfit(lx, yb.T, 1)[0]
        lo, hi = np.quantile(slopes, [alpha, 1 - alpha])
    else:
        from math import sqrt

        resid = ly - (p * lx + c)
        dof = max(lx.size - 2, 1)
        se = sqrt(np.sum(resid**2) / dof / np.sum((lx - lx.mean()) ** 2))
        # Student-t 97.5% quantiles; between table entries the smaller dof is used (wider)
        table = {
            1: 12.706,
            2: 4.303,
            3: 3.182,
            4: 2.776,
            5: 2.571,
            6: 2.447,
            7: 2.365,
            8: 2.306,
            9: 2.262,
            10: 2.228,
            15: 2.131,
            20: 2.086,
            30: 2.042,
            60: 2.000,
            120: 1.980,
        }
        tq = table[max(k for k in table if k <= dof)]
        lo, hi = p - tq * se, p + tq * se
    return PowerLaw(float(p), float(np.exp(c)), (float(lo), float(hi)))
