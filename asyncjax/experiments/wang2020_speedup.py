"""``asyncjax reproduce wang2020-speedup``: linear speedup of asynchronous SGD near a strict saddle.

Wang, Shen & Zhao (arXiv 1910.06000) show that APSGD -- W workers, each
computing a minibatch gradient (size m) at a snapshot of the parameters, the
server applying x_{k+1} = x_k − η g(x_{k−τ_k}) with τ_k bounded and
proportional to W -- reaches an (ε, √ε)-second-order stationary point
(‖∇f‖ ≤ ε, ∇²f ⪰ −√ε I), and that the speedup is linear if
W ≤ Õ(K^{1/3} m^{−1/3}). That is a sufficient condition; this preset measures
where the speedup actually stops being linear.

What is measured, on `QuarticSaddle` from the saddle:

* **K_W**, an iteration count: the number of server updates (each applies one
  worker's minibatch gradient) until the iterate enters the SOSP set and stays
  in it to the end of the run (`sosp_steps`). Each of the W workers
  computes one gradient per unit of time, so W workers apply W updates per
  unit time and the wall-clock time to the SOSP is K_W / W (the sweep's clock
  records it too). The speedup in wall-clock time is therefore
  S(W) = K₁ / (K_W / W) = W·K₁/K_W: linear exactly when asynchrony costs no
  extra iterations.
* Not the first hit: a trajectory with too much staleness can pass through the
  set on its way out (and then diverge); the first hit would credit it.
* Per trajectory, then the median over seeds: the SOSP is a property of one
  iterate. A seed mean of ``min_hess_eig`` averages runs still at the saddle
  (−1) with runs at the minimum (+2) and crosses −√ε at a time no run has; the
  median K_W is the number of updates after which half of the runs have
  reached the set for good (null if fewer than half ever do).
* ε is tied to the noise, as in the paper's accuracy ε² ~ 1/√(mK) ~ η/m: ε² is
  ``eps_factor`` times the stationary E‖∇f‖² of synchronous SGD at the minimum
  (`gradient_noise_floor`), so every (η, m) asks for the accuracy its
  step can hold, with a margin that a synchronous run keeps.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from asyncjax import analysis, plotting, theory
from asyncjax.config import parse_config
from asyncjax.experiments._common import divergence, drawing, headline_table
from asyncjax.sweep import sweep

FIGURES = ("wang_speedup.png",)


# ----------------------------------------------------------------------------- the measurements
def gradient_noise_floor(hessian_eigenvalues: Any, lr: Any, noise: float, batch: Any) -> np.ndarray:
    """Stationary E‖∇f‖² of synchronous SGD at a minimum, from its linearisation.

    Each Hessian mode h follows x_{k+1} = (1 − ηh) x_k − η (σ/√m) z_k, whose
    stationary variance is η σ² / (m h (2 − ηh)); the gradient there is h x, so
    E‖∇f‖² = Σ_h η σ² h / (m (2 − ηh)).

    Args:
      hessian_eigenvalues: (d,) the Hessian's eigenvalues at the minimum, each in (0, 2/η).
      lr: η, any shape (broadcast against ``batch``).
      noise: σ, the single-sample gradient noise.
      batch: m.

    Returns:
      E‖∇f‖², the broadcast shape of ``lr`` and ``batch``.
    """
    h = np.asarray(hessian_eigenvalues, float)
    lr, batch = np.broadcast_arrays(np.asarray(lr, float), np.asarray(batch, float))
    eta = lr[..., None]
    if np.any(h <= 0) or np.any(eta * h >= 2):
        raise ValueError(
            f"need 0 < η·h < 2 for every Hessian eigenvalue h; got h = {h.tolist()}, "
            f"η up to {float(np.max(lr))!r}"
        )
    return np.sum(eta * noise**2 * h / (batch[..., None] * (2 - eta * h)), axis=-1)


def _inside(grad_norm: np.ndarray, min_hess_eig: np.ndarray, eps: Any) -> np.ndarray:
    """(..., R) whether each record is in the (ε, √ε)-SOSP set; ``eps`` broadcasts against (...)."""
    g = np.asarray(grad_norm, float)
    h = np.asarray(min_hess_eig, float)
    if g.shape != h.shape:
        raise ValueError(f"grad_norm {g.shape} and min_hess_eig {h.shape} must have the same shape")
    e = np.asarray(eps, float)
    if np.any(~(e > 0)):
        raise ValueError(f"eps must be > 0, got {e.ravel()[~(e.ravel() > 0)][0]!r}")
    e = e[..., None]
    return (g <= e) & (h >= -np.sqrt(e))


def _check_steps(steps: Any, n: int) -> np.ndarray:
    s = np.asarray(steps, float)
    if s.shape != (n,) or np.any(np.diff(s) <= 0):
        raise ValueError(f"steps must be {n} increasing record steps, got shape {s.shape}")
    return s


def sosp_steps(
    grad_norm: Any,
    min_hess_eig: Any,
    steps: Any,
    eps: Any,
    *,
    latest: float | None = None,
    diverged: Any = None,
) -> np.ndarray:
    """First recorded step after which a trajectory stays in the (ε, √ε)-SOSP set to the end of the run.

    The set is ‖∇f‖ ≤ ε and λ_min(∇²f) ≥ −√ε. A record outside it resets the
    clock, so a trajectory that passes through the set and leaves again (to
    diverge, or kicked out by stale updates) is not credited with its first
    hit (that is `first_hit_steps`).

    Args:
      grad_norm: (..., R) ‖∇f‖ at the records.
      min_hess_eig: (..., R) λ_min(∇²f) at the records.
      steps: (R,) the record steps, increasing.
      eps: ε > 0, broadcastable against (...).
      latest: a step found after this is not trusted (the run left too little
        time to see the trajectory stay) and counts as never reached.
      diverged: optional (...,) bool: diverged trajectories never count as reached.

    Returns:
      (...,) float steps; inf where the set is never reached for good.
    """
    inside = _inside(grad_norm, min_hess_eig, eps)
    s = _check_steps(steps, inside.shape[-1])
    n = s.size
    outside = ~inside
    last_out = np.where(outside.any(axis=-1), n - 1 - np.argmax(outside[..., ::-1], axis=-1), -1)
    start = last_out + 1  # first record of the final run of inside records (n: none)
    out = np.where(start < n, s[np.minimum(start, n - 1)], np.inf)
    if latest is not None:
        out = np.where(out <= latest, out, np.inf)
    if diverged is not None:
        out = np.where(np.asarray(diverged, bool), np.inf, out)
    return out


def first_hit_steps(grad_norm: Any, min_hess_eig: Any, steps: Any, eps: Any) -> np.ndarray:
    """First recorded step in the (ε, √ε)-SOSP set, whatever follows (inf: never); see `sosp_steps`."""
    inside = _inside(grad_norm, min_hess_eig, eps)
    s = _check_steps(steps, inside.shape[-1])
    return np.where(inside.any(axis=-1), s[np.argmax(inside, axis=-1)], np.inf)


def _check_workers(workers: Any) -> np.ndarray:
    w = np.asarray(workers, float)
    if w.ndim != 1 or w.size < 1 or w[0] != 1 or np.any(np.diff(w) <= 0):
        raise ValueError(
            f"workers must be increasing and start at 1 (the reference), got {w.tolist()}"
        )
    return w


def speedup(workers: Any, k: Any) -> np.ndarray:
    """S(W) = W·K₁/K_W along the last axis (workers); NaN where K_W or K₁ is not finite.

    Args:
      workers: (U,) increasing worker counts, the first 1.
      k: (..., U) updates to the SOSP (inf or NaN: never reached).
    """
    w = _check_workers(workers)
    k = np.asarray(k, float)
    if k.shape[-1] != w.size:
        raise ValueError(f"k has {k.shape[-1]} entries along its last axis, workers {w.size}")
    with np.errstate(invalid="ignore", divide="ignore"):
        s = w * k[..., :1] / k
    return np.where(np.isfinite(s) & (s > 0), s, np.nan)


def linear_until(workers: Any, s: Any, ratio: float = 0.8) -> np.ndarray:
    """The largest W with S(W)/W ≥ ``ratio`` (NaN where not even W = 1 qualifies), along the last axis."""
    w = _check_workers(workers)
    eff = np.nan_to_num(np.asarray(s, float) / w, nan=0.0)
    ok = eff >= ratio
    last = w.size - 1 - np.argmax(ok[..., ::-1], axis=-1)
    return np.where(ok.any(axis=-1), w[last], np.nan)


def crossing_workers(workers: Any, s: Any, ratio: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Where the efficiency S(W)/W falls through ``ratio``, interpolated linearly in log W.

    Between `linear_until`'s W and the next worker count, the efficiency
    (0 where K_W is never reached) is interpolated on log W: a finer reading of
    the grid value for fitting. Where the last W still qualifies, the crossing
    is censored at it.

    Returns:
      ``(crossing, censored)``, each of shape (...).
    """
    w = _check_workers(workers)
    eff = np.nan_to_num(np.asarray(s, float) / w, nan=0.0)
    lin = linear_until(w, s, ratio)
    i = np.where(np.isfinite(lin), np.searchsorted(w, np.nan_to_num(lin, nan=1.0)), 0)
    censored = np.isfinite(lin) & (i == w.size - 1)
    j = np.minimum(i + 1, w.size - 1)
    e0 = np.take_along_axis(eff, i[..., None], -1)[..., 0]
    e1 = np.take_along_axis(eff, j[..., None], -1)[..., 0]
    frac = np.clip((e0 - ratio) / np.where(e0 > e1, e0 - e1, 1.0), 0.0, 1.0)
    lw = np.log(w)
    cross = np.exp(lw[i] + frac * (lw[j] - lw[i]))
    return np.where(np.isfinite(lin), cross, np.nan), censored


def fit_scaling(linear: Any, k1: Any, batch: Any) -> np.ndarray:
    """Least squares of log W_lin = a log K₁ + b log m + c over budgets; returns (..., 2): (a, b).

    Budgets with a non-finite W_lin or K₁ are left out; NaN when fewer than
    three remain or the design is singular.

    Args:
      linear: (..., N) the crossing per budget (`crossing_workers`).
      k1: (..., N) K₁ per budget.
      batch: (N,) m per budget.
    """
    y = np.log(np.asarray(linear, float))
    x1 = np.log(np.asarray(k1, float))
    m = np.broadcast_to(np.log(np.asarray(batch, float)), y.shape)
    flat_y, flat_k = y.reshape(-1, y.shape[-1]), x1.reshape(-1, y.shape[-1])
    flat_m = m.reshape(-1, y.shape[-1])
    out = np.full((flat_y.shape[0], 2), np.nan)
    for r in range(flat_y.shape[0]):
        ok = np.isfinite(flat_y[r]) & np.isfinite(flat_k[r])
        if ok.sum() < 3:
            continue
        design = np.stack([flat_k[r, ok], flat_m[r, ok], np.ones(int(ok.sum()))], axis=-1)
        if np.linalg.matrix_rank(design) < 3:
            continue
        coef, *_ = np.linalg.lstsq(design, flat_y[r, ok], rcond=None)
        out[r] = coef[:2]
    return out.reshape(y.shape[:-1] + (2,))


# ----------------------------------------------------------------------------- the sweeps
def _sweep_configs(cfg: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    """One sweep configuration per step size: steps and record interval scaled by lr_ref / lr."""
    a = cfg.get("analysis", {})
    lrs, ref = a.get("lr"), a.get("lr_ref")
    if not isinstance(lrs, list) or not lrs or ref is None:
        raise ValueError("wang2020-speedup needs [analysis] lr = [...] (the step sizes) and lr_ref")
    for axis in ("workers", "batch"):
        if not isinstance(cfg["grid"].get(axis), list):
            raise ValueError(
                f"wang2020-speedup needs [grid] {axis} = [...], a list (an axis of the sweep)"
            )
    out = []
    for lr in lrs:
        scale = float(ref) / float(lr)
        c = copy.deepcopy(cfg)
        c["grid"]["lr"] = float(lr)
        for key in ("steps", "record_every"):
            v = c["run"][key] * scale
            if v < 1 or abs(v - round(v)) > 1e-9:
                raise ValueError(
                    f"[run] {key} = {c['run'][key]} times lr_ref/lr = {scale:g} is not a whole "
                    f"number of steps for lr = {lr}; choose step sizes lr_ref / (an integer)"
                )
            c["run"][key] = int(round(v))
        out.append((float(lr), c))
    return out


def _per_trajectory(res: Any, eps: np.ndarray, hold: float) -> dict[str, np.ndarray]:
    """SOSP and first-hit steps and wall times per trajectory, axes (batch, workers, seed)."""
    target = ["batch", "workers", "seed", "step"]

    g, h = (
        analysis.laid_out(res, "grad_norm", target),
        analysis.laid_out(res, "min_hess_eig", target),
    )
    div = analysis.laid_out(res, "diverged_at", target[:3]) >= 0
    steps = res.coords["step"].astype(float)
    e = eps[:, None, None]
    k = sosp_steps(g, h, steps, e, latest=(1.0 - hold) * steps[-1], diverged=div)
    wall = np.broadcast_to(
        analysis.laid_out(res, "wall_time", target), g.shape
    )  # the clock: (workers, seed, step)
    idx = np.searchsorted(steps, np.where(np.isfinite(k), k, steps[0]))
    t = np.take_along_axis(wall, idx[..., None], -1)[..., 0]
    return {
        "k": k,
        "first": first_hit_steps(g, h, steps, e),
        "wall": np.where(np.isfinite(k), t, np.inf),
        "diverged": div,
    }


def _budget_stats(k: np.ndarray, workers: np.ndarray, ratio: float) -> dict[str, np.ndarray]:
    """Median K_W over the last axis (seeds) and what follows from it; leading axes are kept."""
    med = np.median(k, axis=-1)  # inf where half or more never reach
    s = speedup(workers, med)
    cross, censored = crossing_workers(workers, s, ratio)
    return {
        "k": med,
        "speedup": s,
        "linear": linear_until(workers, s, ratio),
        "cross": cross,
        "censored": censored,
    }


def _bootstrap(
    k: np.ndarray,
    workers: np.ndarray,
    batches: np.ndarray,
    ratio: float,
    n_boot: int,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Percentile intervals (95%) of the crossings and the exponents, seeds resampled jointly."""
    rng = np.random.default_rng(seed)
    n_s = k.shape[-1]
    draws = rng.integers(0, n_s, size=(n_boot, n_s))
    st = _budget_stats(
        np.moveaxis(k[..., draws], -2, 0), workers, ratio
    )  # (n_boot, lr, batch, workers)
    k1 = st["k"][..., 0]  # (B, lr, batch)
    n_lr, n_b = k1.shape[1:]
    exps = fit_scaling(
        st["cross"].reshape(n_boot, -1), k1.reshape(n_boot, -1), np.tile(batches, n_lr)
    )
    lo, hi = np.nanquantile(st["cross"], [0.025, 0.975], axis=0)
    elo, ehi = np.nanquantile(exps, [0.025, 0.975], axis=0)
    return {"cross_ci": np.stack([lo, hi], -1), "exponent_ci": np.stack([elo, ehi], -1)}


# ----------------------------------------------------------------------------- the figure
def speedup_figure(
    workers: np.ndarray,
    lrs: np.ndarray,
    batches: np.ndarray,
    stats: dict[str, np.ndarray],
    reached: np.ndarray,
    first_reached: np.ndarray,
    cross_ci: np.ndarray,
    stability: np.ndarray,
    fit: np.ndarray,
    head_batch: int,
    title: str = "",
) -> Any:
    """Speedup against workers, the fraction of runs that reach the SOSP set, and W_lin against K₁.

    Args:
      workers: (U,); lrs: (L,); batches: (B,).
      stats: `_budget_stats` of the (L, B, U, S) SOSP steps.
      reached, first_reached: (L, B, U) fractions of seeds that stay in the set / ever enter it.
      cross_ci: (L, B, 2) intervals of the crossings; stability: (L,) the workers W* = τ* + 1 at
        which synchronous-to-delayed linear stability is lost at the minimum.
      fit: (2,) the fitted exponents (a, b); head_batch: the index of the m drawn in panels 1–2.
    """
    fig, axes = plt.subplots(1, 3, figsize=(16.5, 4.8))
    colors = plotting.distinct_colors(len(lrs))
    ax = axes[0]
    ax.plot(workers, workers, color="0.6", lw=1, label="linear, S = W")
    ax.plot(workers, 0.8 * workers, ":", color="0.4", lw=1, label="S = 0.8 W")
    for i, (lr, col) in enumerate(zip(lrs, colors)):
        s = stats["speedup"][i, head_batch]
        ax.plot(workers, s, "-o", ms=4, color=col, label=f"η = {lr:g}")
        lin = stats["linear"][i, head_batch]
        if np.isfinite(lin):
            j = int(np.searchsorted(workers, lin))
            ax.plot([lin], [s[j]], "s", ms=9, mfc="none", mec=col, mew=2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("workers W")
    ax.set_ylabel("speedup S(W) = W·K₁/K_W")
    ax.set_title(f"speedup to the SOSP set (m = {batches[head_batch]:g}; squares: W_lin)")
    ax.legend(fontsize=8)
    ax = axes[1]
    for i, (lr, col) in enumerate(zip(lrs, colors)):
        ax.plot(
            workers,
            reached[i, head_batch],
            "-o",
            ms=4,
            color=col,
            label=f"η = {lr:g}: stays in the set",
        )
        ax.plot(
            workers,
            first_reached[i, head_batch],
            "--",
            color=col,
            lw=1,
            label=f"η = {lr:g}: enters it",
        )
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("workers W")
    ax.set_ylabel("fraction of seeds")
    ax.set_title("runs that enter the set, and that stay")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[2]
    k1 = stats["k"][..., 0]
    markers = "os^Dv<>p"
    for i, col in enumerate(colors[: len(lrs)]):
        for b, m in enumerate(batches):
            y, lo, hi = stats["cross"][i, b], cross_ci[i, b, 0], cross_ci[i, b, 1]
            if np.isfinite(y) and np.isfinite(k1[i, b]):
                ax.errorbar(
                    [k1[i, b]],
                    [y],
                    yerr=[[max(y - lo, 0)], [max(hi - y, 0)]],
                    fmt=markers[b % 8],
                    color=col,
                    ms=6,
                    capsize=2,
                    label=f"m = {m:g}" if i == 0 else None,
                )
        ax.plot(k1[i], np.full(len(batches), stability[i]), "x", color=col, ms=7)
    ok = np.isfinite(stats["cross"]) & np.isfinite(k1)
    if ok.sum() >= 2 and np.all(np.isfinite(fit)):
        xs = np.geomspace(k1[ok].min(), k1[ok].max(), 20)
        y0, x0 = np.exp(np.mean(np.log(stats["cross"][ok]))), np.exp(np.mean(np.log(k1[ok])))
        ax.plot(
            xs,
            y0 * (xs / x0) ** fit[0],
            "-",
            color="k",
            lw=1,
            label=f"fit: W_lin ∝ K₁^{fit[0]:.2f} m^{fit[1]:.2f}",
        )
        ax.plot(
            xs,
            y0 * (xs / x0) ** (1 / 3),
            "--",
            color="0.5",
            lw=1,
            label="paper's sufficient K^{1/3} (slope)",
        )
    ax.plot([], [], "x", color="0.3", label="W* = τ*+1: linear instability")
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("K₁ (updates to the SOSP with one worker)")
    ax.set_ylabel("W_lin (efficiency crosses 0.8)")
    ax.set_title("where the speedup stops being linear")
    ax.legend(fontsize=7)
    for a in axes:
        a.xaxis.set_major_formatter(plt.FuncFormatter(plotting.plain_tick))
        a.yaxis.set_major_formatter(plt.FuncFormatter(plotting.plain_tick))
    plotting.tidy_log_axis(axes[2].xaxis)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the preset
def _nan_if_inf(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, np.nan)


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs the preset: one sweep per step size, the SOSP times, speedups, fits, figure and summary."""
    a = cfg.get("analysis", {})
    eps_factor, hold, ratio = (
        float(a.get("eps_factor", 9.0)),
        float(a.get("hold", 0.5)),
        float(a.get("ratio", 0.8)),
    )
    n_boot = int(a.get("bootstrap", 500))
    t0 = time.perf_counter()
    per_lr, results = [], []
    for lr, c in _sweep_configs(cfg):
        spec = parse_config(c, f"wang2020-speedup [lr = {lr:g}]")
        res = sweep(
            spec.problem,
            spec.grid,
            out=out / f"lr{lr:g}",
            resume=True,
            keep_chunks=True,  # until the preset has finished (the runner removes them then)
            progress=progress,
            metadata={**meta, "sweep": f"lr = {lr:g}"},
            **spec.sweep_kwargs(),
        )
        batches = res.coords["batch"].astype(float)
        floor = gradient_noise_floor(
            spec.problem.hessian_eigenvalues, lr, spec.problem.noise, batches
        )
        eps = np.sqrt(eps_factor * floor)  # (batch,)
        per_lr.append(
            {
                **_per_trajectory(res, eps, hold),
                "eps": eps,
                "steps": int(res.attrs["steps"]),
                "record_every": int(res.attrs["record_every"]),
            }
        )
        results.append(res)
    sim_s = time.perf_counter() - t0
    drawing(FIGURES, progress)
    problem = spec.problem
    workers = results[0].coords["workers"].astype(float)
    lrs = np.array([lr for lr, _ in _sweep_configs(cfg)])
    k = np.stack([p["k"] for p in per_lr])  # (lr, batch, workers, seed)
    first = np.stack([p["first"] for p in per_lr])
    wall = np.stack([p["wall"] for p in per_lr])
    stats = _budget_stats(k, workers, ratio)
    first_med = np.median(first, axis=-1)
    wall_med = np.median(wall, axis=-1)
    boot = _bootstrap(k, workers, batches, ratio, n_boot)
    k1 = stats["k"][..., 0]
    fit = fit_scaling(stats["cross"].reshape(-1), k1.reshape(-1), np.tile(batches, lrs.size))
    h_max = float(np.max(problem.hessian_eigenvalues))
    stability = (
        theory.stability_threshold(0.0, lrs * h_max) + 1
    )  # W* = τ* + 1 (round robin: τ = W − 1)
    reached, entered = np.isfinite(k).mean(axis=-1), np.isfinite(first).mean(axis=-1)

    head = a.get("headline", {"lr": float(lrs[0]), "batch": float(batches[0])})
    hi = (
        int(np.flatnonzero(np.isclose(lrs, head["lr"]))[0])
        if np.isclose(lrs, head["lr"]).any()
        else 0
    )
    hb = (
        int(np.flatnonzero(np.isclose(batches, head["batch"]))[0])
        if np.isclose(batches, head["batch"]).any()
        else 0
    )
    fig = speedup_figure(
        workers,
        lrs,
        batches,
        stats,
        reached,
        entered,
        boot["cross_ci"],
        stability,
        fit,
        hb,
        title=f"APSGD on a quartic saddle (d = {problem.d}, σ = {problem.noise:g}), "
        f"{k.shape[-1]} seeds, {cfg['delay'].get('law', 'exponential')} compute times",
    )
    plotting.save(fig, out / FIGURES[0])

    by_budget = []
    for i, lr in enumerate(lrs):
        for b, m in enumerate(batches):
            by_budget.append(
                {
                    "lr": float(lr),
                    "batch": float(m),
                    "K1": float(k1[i, b]) if np.isfinite(k1[i, b]) else None,
                    "linear_until": stats["linear"][i, b],
                    "linear_until_interpolated": stats["cross"][i, b],
                    "linear_until_interpolated_ci": boot["cross_ci"][i, b],
                    "censored": bool(stats["censored"][i, b]),
                    "eps": float(per_lr[i]["eps"][b]),
                    "steps_to_sosp": _nan_if_inf(stats["k"][i, b]),
                    "speedup": stats["speedup"][i, b],
                    "reached_fraction": reached[i, b],
                    "first_hit_steps": _nan_if_inf(first_med[i, b]),
                    "stability_workers": int(stability[i]),
                    "run_steps": per_lr[i]["steps"],
                    "record_every": per_lr[i]["record_every"],
                }
            )
    return {
        "workers": workers,
        "steps_to_sosp": _nan_if_inf(stats["k"][hi, hb]),
        "speedup": stats["speedup"][hi, hb],
        "linear_until": stats["linear"][hi, hb],
        "by_budget": by_budget,
        "scaling_exponent_K": fit[0],
        "scaling_exponent_m": fit[1],
        "scaling_exponent_ci": {"K": boot["exponent_ci"][0], "m": boot["exponent_ci"][1]},
        "paper_sufficient_exponents": {"K": 1 / 3, "m": -1 / 3},
        "headline": {
            "lr": float(lrs[hi]),
            "batch": float(batches[hb]),
            "eps": float(per_lr[hi]["eps"][hb]),
        },
        "wall_time_to_sosp": _nan_if_inf(wall_med[hi, hb]),
        "speedup_wall": _nan_if_inf(wall_med[hi, hb, 0] / _nan_if_inf(wall_med[hi, hb])),
        "first_hit_steps": _nan_if_inf(first_med[hi, hb]),
        "reached_fraction": reached[hi, hb],
        "entered_fraction": entered[hi, hb],
        "diverged_fraction": np.stack(
            [p["diverged"].mean(axis=-1) for p in per_lr]
        ),  # (lr, batch, workers)
        "diverged_fraction_axes": ["lr", "batch", "workers"],
        "divergence_rule": analysis.DIVERGENCE_RULE
        + " Here a diverged trajectory never reaches the SOSP set.",
        **divergence(*results),
        "rule": (
            "K_W counts server updates (iterations), each applying one worker's minibatch gradient; each of "
            "the W workers computes one gradient per unit time, so the wall-clock time is K_W/W and the "
            "speedup S(W) = W·K₁/K_W is the wall-clock speedup (speedup_wall measures it on the clock). "
            f"Per trajectory, the SOSP step is the first record after which every record has ‖∇f‖ ≤ ε and "
            f"λ_min(∇²f) ≥ −√ε; it must fall within the first {1 - hold:.0%} of the run (so the stay was "
            "seen for the rest), and a diverged trajectory never reaches it. K_W is the median over seeds (null when "
            f"fewer than half reach it). ε² = {eps_factor:g} × the stationary E‖∇f‖² of synchronous SGD at "
            f"the minimum for that η and m. linear_until: the largest W with S(W)/W ≥ {ratio:g}; "
            "linear_until_interpolated: where S(W)/W crosses it, interpolated in log W (used for the fits). "
            "Exponents: least squares of log W_lin on log K₁ and log m over the budgets; CIs: percentile "
            f"bootstrap over seeds ({n_boot} resamples, every budget and W resampled together)."
        ),
        "delay": {"model": "workers", "law": cfg["delay"].get("law", "exponential")},
        "noise": problem.noise,
        "hessian_at_minimum": problem.hessian_eigenvalues,
        "seeds": int(k.shape[-1]),
        "simulation_s": sim_s,
    }


def headline(summary: dict[str, Any]) -> str:
    """Steps to an SOSP and speedup per worker count at the headline budget; linear range per budget."""
    at = summary["headline"]
    return "\n".join(
        [
            headline_table(
                summary,
                f"per worker count at lr = {at['lr']:g}, batch = {at['batch']:g}: server steps to an "
                "SOSP (median over seeds; - where fewer than half reach it) and speedup:",
                ("workers", "steps_to_sosp", "speedup"),
                scalars=("linear_until", "scaling_exponent_K", "scaling_exponent_m"),
            ),
            headline_table(
                summary,
                "per budget: K1 (steps to an SOSP with one worker) and linear_until (largest W "
                "with S(W)/W >= the ratio):",
                ("by_budget.lr", "by_budget.batch", "by_budget.K1", "by_budget.linear_until"),
            ),
        ]
    )
