"""``asyncjax reproduce maranjyan2025-ringmaster``: the Ringmaster paper's quadratic, in wall-clock time.

Maranjyan, Tyurin & Richtárik (ICML 2025) compare, on f(x) = ½ xᵀAx − bᵀx with
A = ¼·tridiag(−1, 2, −1), d = 1729, and n = 6174 workers whose jobs take
1 + √i + √(i+1)·|z|, four server rules against wall-clock time up to 2000:
Ringmaster ASGD and Rennala SGD (both with calculation stops), delay-adaptive
ASGD and ASGD. For every method this preset

1. tunes its step (and R or B) on a grid containing the paper's values, one
   sweep over the whole grid on a few tuning seeds, scored by the mean f − f*
   at the horizon (a diverged trajectory counts as failed);
2. runs the tuned setting and the paper's own setting on the final seeds (one
   sweep, or one each when they differ in both the step and R or B), each as
   long as the events its slowest seed needs to pass the horizon (the methods
   differ 50-fold: ≈ 3 000 events for Ringmaster with R = 6, ≈ 166 000
   arrivals for ASGD);
3. reads f − f* and ‖∇f‖² against the recorded ``wall_time``: the value of a
   trajectory at time t is the one recorded last at or before t.

The event schedule does not depend on the iterates, so every setting of a
method sees the same arrivals for a seed (common random numbers).
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from asyncjax import analysis, plotting
from asyncjax._parts import hyperparameters
from asyncjax.experiments._common import divergence, drawing, headline_table, run_sweep
from asyncjax.results import Results
from asyncjax.servers import get_server

FIGURES = ("error_vs_time.png", "grad_sq_vs_time.png", "tuning.png")
METRICS = {"error": "f(x) − f*", "grad_sq": "‖∇f(x)‖²"}
ORDER_RULE = (
    "The paper's order at the horizon, Ringmaster ≲ Rennala ≪ delay-adaptive ASGD, is taken as "
    "reproduced when Ringmaster's mean f − f* is at most the upper end of Rennala's 95% interval "
    "and delay-adaptive ASGD's mean is at least 5 times Rennala's."
)
_COLORS = {
    "ringmaster": "#C00000",
    "rennala": "#006666",
    "delay_adaptive_asgd": "#B8860B",
    "asgd": "#4F4F9F",
}


# ----------------------------------------------------------------------------- configuration
def method_axis(method: dict[str, Any]) -> str | None:
    """The grid axis of a method's server besides the step (``delay_threshold``, ``batch``), or None."""
    sec = dict(method["server"])
    server = get_server(sec.pop("kind"), **sec)
    names = [h.name for h in hyperparameters(server)]
    if len(names) > 1:
        raise ValueError(f"{server.label} has several axes {names}; the preset tunes at most one")
    return names[0] if names else None


def sweep_config(
    cfg: dict[str, Any],
    method: dict[str, Any],
    values: dict[str, list[float]],
    seeds: list[int],
    events: int,
) -> dict[str, Any]:
    """The sweep configuration of one run of a method (TOML tables, as `asyncjax run` reads them).

    Args:
      cfg: the preset's configuration (``problem``, ``delay``, ``grid``, ``analysis``).
      method: the method's table (``server``, optionally ``mitigation``).
      values: the run's ``lr`` and R or B values.
      seeds: the run's seeds.
      events: at least this many events; the run records at most ``records`` times, evenly
        (every event when it is shorter).
    """
    every = max(1, math.ceil(events / int(cfg["analysis"]["records"])))
    grid = {k: v for k, v in cfg["grid"].items() if k not in ("seeds", "seed")}
    grid.update({k: [float(x) for x in v] for k, v in values.items()})
    grid["seed"] = [int(s) for s in seeds]
    out = {
        "problem": copy.deepcopy(cfg["problem"]),
        "delay": copy.deepcopy(cfg["delay"]),
        "server": dict(method["server"]),
        "grid": grid,
        "run": {"steps": every * math.ceil(events / every), "record_every": every},
    }
    if "mitigation" in method:
        out["mitigation"] = dict(method["mitigation"])
        if method["mitigation"].get("kind") == "delay_adaptive":
            grid.setdefault("adaptive_c", float(grid["workers"]))  # the paper's c = n
    return out


def final_events(needed: int) -> int:
    """Events for a final run: the most a tuning seed needed, with a margin for the other seeds.

    Across seeds the events to a fixed time spread like a renewal count, about
    1/√N relative; the margin 1% + 2/√N covered 64 seeds with room to spare.
    """
    return int(math.ceil(needed * (1.0 + 0.01 + 2.0 / math.sqrt(max(needed, 1)))))


# ----------------------------------------------------------------------------- reading a sweep
def _index(coord: np.ndarray, value: float) -> int:
    hit = np.flatnonzero(np.isclose(np.asarray(coord, float), value, rtol=1e-9, atol=0))
    if hit.size != 1:
        raise ValueError(f"value {value!r} is not on the sweep's axis {list(coord)}")
    return int(hit[0])


def laid_out(res: Results, var: str, axis: str | None, *, fail: bool = True) -> np.ndarray:
    """``var`` as (lr, [R or B,] seed, step).

    With ``fail``, a diverged trajectory's values are infinite from its divergence on
    (the clock's ``wall_time`` and ``updates`` go on regardless: read them with ``fail=False``).
    """
    dims = ("lr",) + ((axis,) if axis else ()) + ("seed", "step")
    values = analysis.laid_out(res, var, dims).astype(np.float64)
    if not fail:
        return values
    at = analysis.laid_out(res, "diverged_at", dims[:-1])[..., None]
    steps = np.asarray(res.coords["step"])
    return np.where((at >= 0) & (steps >= at), np.inf, values)


def at_times(values: np.ndarray, wall: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(..., T) the value of the last record at or before each time (records on the last axis).

    ``wall`` (same shape as ``values``) is non-decreasing along the records and starts at 0.
    """
    times = np.asarray(times, float)
    flat_w = wall.reshape(-1, wall.shape[-1])
    idx = np.stack([np.searchsorted(w, times, side="right") - 1 for w in flat_w])
    idx = np.maximum(idx, 0).reshape(wall.shape[:-1] + times.shape)
    return np.take_along_axis(values, idx, axis=-1)


def events_to(wall: np.ndarray, steps: np.ndarray, horizon: float) -> np.ndarray:
    """(...) events at the first record at or past the horizon (an upper bound on those needed)."""
    past = wall >= horizon
    return np.where(past.any(-1), np.asarray(steps)[np.argmax(past, axis=-1)], -1)


def check_reached(wall: np.ndarray, horizon: float, what: str) -> None:
    """Refuses a run in which some trajectory's clock stopped short of the horizon."""
    last = wall[..., -1]
    if np.any(last < horizon):
        raise ValueError(
            f"{what}: a trajectory reached only t = {float(last.min()):.6g} < horizon {horizon:g} "
            "after all its events; give the method more events (analysis.methods.<name>.events)"
        )


def interval(
    values: np.ndarray, level: float = 0.95, n_boot: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the last axis (seeds) and its seed-bootstrap percentile interval (..., 2).

    A few seeds of a setting near its stability edge can stray by orders of magnitude and
    come back; a t-interval would then reach below zero, a percentile interval stays within
    the seeds' values. An infinite mean (a diverged seed) has the interval [inf, inf].
    """
    values = np.asarray(values, np.float64)
    w = analysis.bootstrap_weights(values.shape[-1], n_boot, seed=0)  # (n_boot, S)
    with np.errstate(invalid="ignore"):
        mean = values.mean(axis=-1)
        boot = np.moveaxis(np.tensordot(w, values, axes=([1], [-1])), 0, -1)  # (..., n_boot)
        lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=-1)
    ci = np.stack([lo, hi], axis=-1)
    return mean, np.where(np.isfinite(mean)[..., None], ci, mean[..., None])


# ----------------------------------------------------------------------------- one method
def tuning_runs(method: dict[str, Any], axis: str | None) -> list[tuple[list[float], int]]:
    """The tuning sweeps of a method: (its R or B values, its events), one per ``tuning`` entry.

    A sweep lasts the events of its slowest trajectory, and the events to a fixed time grow
    with R or B (≈ 1 100 at R = 1, 3 000 at R = 6, 6 800 at R = 24 for the paper's clock), so
    values are run in groups, each as long as its largest value needs.
    """
    runs = []
    for entry in method["tuning"]:
        extra = set(entry) - {"events", *([axis] if axis else [])}
        if extra or "events" not in entry or (axis and axis not in entry):
            want = "events" + (f" and {axis}" if axis else "")
            raise ValueError(f"a tuning entry takes {want}; got {sorted(entry)}")
        runs.append(([float(v) for v in entry[axis]] if axis else [], int(entry["events"])))
    values = [v for vs, _ in runs for v in vs]
    if len(set(values)) != len(values):
        raise ValueError(f"the tuning entries repeat a value of {axis}: {values}")
    return runs


def _tune(
    cfg: dict[str, Any], name: str, out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Runs a method's tuning sweeps and picks its best setting."""
    a = cfg["analysis"]
    method = a["methods"][name]
    axis = method_axis(method)
    horizon = float(a["horizon"])
    seeds = [int(x) for x in method.get("tune_seeds", a["tune_seeds"])]
    lrs = np.asarray(sorted(method["lr"]), float)
    scores, needed, flags, grid_ax, results = [], [], [], [], []
    events, seconds = [], 0.0
    for j, (group, n_events) in enumerate(tuning_runs(method, axis)):
        values = {"lr": lrs.tolist(), **({axis: sorted(group)} if axis else {})}
        sub = f"{name}_tuning" + (f"_{j + 1}" if len(method["tuning"]) > 1 else "")
        t0 = time.perf_counter()
        res, _ = run_sweep(
            {"sweep": {sub: sweep_config(cfg, method, values, seeds, n_events)}},
            out,
            progress,
            meta,
            sub,
        )
        seconds += time.perf_counter() - t0
        wall = laid_out(res, "wall_time", axis, fail=False)
        check_reached(wall, horizon, f"{name}, tuning")
        final = at_times(laid_out(res, "error", axis), wall, np.array([horizon]))[..., 0]
        if not axis:  # one column
            final, wall = final[:, None], wall[:, None]
        scores.append(final.mean(axis=-1))  # (lr, group); inf where a seed diverged
        needed.append(events_to(wall, np.asarray(res.coords["step"]), horizon).max(axis=-1))
        div = analysis.laid_out(res, "diverged_at", ("lr",) + ((axis,) if axis else ()) + ("seed",))
        flags.append((div >= 0).mean(axis=-1).reshape(lrs.size, -1))
        grid_ax += np.asarray(res.coords[axis], float).tolist() if axis else [np.nan]
        events.append(int(res.attrs["steps"]))
        results.append(res)
    order = np.argsort(grid_ax) if axis else np.array([0])
    score = np.concatenate(scores, axis=1)[:, order]
    needed_all = np.concatenate(needed, axis=1)[:, order]
    diverged = np.concatenate(flags, axis=1)[:, order]
    grid_ax = np.asarray(grid_ax)[order]
    if not np.isfinite(score).any():
        raise ValueError(f"{name}: every setting of the tuning grid diverged")
    best = np.unravel_index(np.argmin(np.where(np.isfinite(score), score, np.inf)), score.shape)
    tuned = {"lr": float(lrs[best[0]])}
    edge = {"lr": bool(best[0] in (0, lrs.size - 1))}
    if axis:
        tuned[axis] = float(grid_ax[best[1]])
        edge[axis] = bool(best[1] in (0, grid_ax.size - 1))
    paper = {k: float(v) for k, v in method["paper"].items()}

    def at(p: dict[str, float]) -> tuple[int, int]:
        return _index(lrs, p["lr"]), (_index(grid_ax, p[axis]) if axis else 0)

    squeeze = (lambda x: x) if axis else (lambda x: x[:, 0])
    return {
        "axis": axis,
        "tuned": tuned,
        "paper": paper,
        "at_grid_edge": edge,
        "lr_grid": lrs.tolist(),
        "axis_grid": grid_ax.tolist() if axis else None,
        "score": squeeze(score),
        "diverged_fraction": squeeze(diverged),
        "needed_at": lambda p: int(needed_all[at(p)]),
        "events": events if axis else events[0],
        "seeds": seeds,
        "seconds": seconds,
        "results": results,
    }


def final_points(tuned: dict[str, float], paper: dict[str, float]) -> list[dict[str, list[float]]]:
    """The grids of a method's final runs: its tuned and the paper's settings, nothing else.

    One grid when the two settings differ in at most one value (their product is the two
    points), else one grid each (the product would add two settings nobody asked for).
    """
    differ = [k for k in tuned if tuned[k] != paper[k]]
    if len(differ) <= 1:
        return [{k: sorted({tuned[k], paper[k]}) for k in tuned}]
    return [{k: [tuned[k]] for k in tuned}, {k: [paper[k]] for k in paper}]


def _final(
    cfg: dict[str, Any],
    name: str,
    tuning: dict[str, Any],
    out: Path,
    progress: bool | None,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Runs a method's tuned and paper settings on the final seeds; curves against wall-clock time."""
    a = cfg["analysis"]
    method, axis = a["methods"][name], tuning["axis"]
    horizon = float(a["horizon"])
    times = np.linspace(0.0, horizon, int(a["time_points"]))
    keys = ["lr"] + ([axis] if axis else [])
    seeds = list(range(int(cfg["grid"]["seeds"])))
    grids = final_points(tuning["tuned"], tuning["paper"])
    found: dict[str, dict[str, Any]] = {}
    out_d: dict[str, Any] = {"results": [], "seconds": 0.0, "events": []}
    for j, values in enumerate(grids):
        sub = name if len(grids) == 1 else f"{name}_{('tuned', 'paper')[j]}"
        needed = max(tuning["needed_at"](dict(zip(keys, p))) for p in _product(values, keys))
        t0 = time.perf_counter()
        sweep = sweep_config(cfg, method, values, seeds, final_events(needed))
        res, _ = run_sweep({"sweep": {sub: sweep}}, out, progress, meta, sub)
        out_d["seconds"] += time.perf_counter() - t0
        out_d["results"].append(res)
        out_d["events"].append(int(res.attrs["steps"]))
        wall = laid_out(res, "wall_time", axis, fail=False)
        check_reached(wall, horizon, f"{name}, final run")
        curves = {var: at_times(laid_out(res, var, axis), wall, times) for var in METRICS}
        upd = at_times(laid_out(res, "updates", axis, fail=False), wall, times[-1:])[..., 0]
        arrivals = events_to(wall, np.asarray(res.coords["step"]), horizon)
        flags = analysis.laid_out(res, "diverged_at", tuple(keys) + ("seed",)) >= 0
        for which in ("tuned", "paper"):
            p = tuning[which]
            if which in found or not all(np.isclose(res.coords[k], p[k]).any() for k in keys):
                continue
            i = tuple(_index(res.coords[k], p[k]) for k in keys)
            found[which] = {
                **{var: c[i] for var, c in curves.items()},  # (seed, T)
                "updates": float(upd[i].mean()),
                "arrivals": float(arrivals[i].mean()),
                "diverged": float(flags[i].mean()),
            }
    for which, f in found.items():
        for var in METRICS:
            out_d[f"{which}_{var}"] = interval(f[var].T)  # (T,), (T, 2)
            out_d[f"{which}_{var}_quantiles"] = np.quantile(f[var], (0.1, 0.9), axis=0)
        for k in ("updates", "arrivals", "diverged"):
            out_d[f"{which}_{k}"] = f[k]
    out_d["events"] = out_d["events"][0] if len(out_d["events"]) == 1 else out_d["events"]
    return out_d


def _product(values: dict[str, list[float]], keys: list[str]) -> list[tuple[float, ...]]:
    grids = np.meshgrid(*(values[k] for k in keys), indexing="ij")
    return list(zip(*(g.ravel().tolist() for g in grids)))


# ----------------------------------------------------------------------------- figures
def curves_figure(
    times: np.ndarray,
    finals: dict[str, dict[str, Any]],
    labels: dict[str, str],
    var: str,
    *,
    title: str,
) -> Any:
    """Seed mean against wall-clock time per method at its tuned setting (95% interval, light:
    10–90% of the seeds), and at the paper's setting (dashed) where that differs."""
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    for name, f in finals.items():
        color = _COLORS.get(name, None)
        mean, ci = f[f"tuned_{var}"]
        quant = f[f"tuned_{var}_quantiles"]
        ax.fill_between(times, quant[0], quant[1], color=color, alpha=0.12, lw=0)
        ax.fill_between(times, ci[:, 0], ci[:, 1], color=color, alpha=0.35, lw=0)
        ax.plot(times, mean, color=color, lw=1.6, label=f"{labels[name]}, tuned")
        if f["paper_differs"]:
            ax.plot(
                times,
                f[f"paper_{var}"][0],
                "--",
                color=color,
                lw=1.1,
                label="  the paper's setting",
            )
    ax.set_yscale("log")
    ax.set_xlim(times[0], times[-1])
    ax.set_xlabel("wall-clock time (compute-time units)")
    ax.set_ylabel(METRICS[var])
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(
        fontsize=7,
        loc="upper right",
        title="seed mean, 95% CI; light: 10–90% of seeds",
        title_fontsize=7,
    )
    fig.tight_layout()
    return fig


def tuning_figure(tunings: dict[str, dict[str, Any]], labels: dict[str, str], *, title: str) -> Any:
    """f − f* at the horizon against the step, one panel per method, one line per R or B."""
    names = list(tunings)
    cols = 2
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(10.0, 3.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        t = tunings[name]
        lrs, score = np.asarray(t["lr_grid"]), np.asarray(t["score"], float)
        if t["axis"] is None:
            series = [(None, score)]
        else:
            series = [(v, score[:, j]) for j, v in enumerate(t["axis_grid"])]
        colors = plotting.distinct_colors(len(series))
        finite = score[np.isfinite(score)]
        top = float(finite.max()) * 3 if finite.size else 1.0
        for (v, s), c in zip(series, colors):
            lab = None if v is None else f"{'R' if t['axis'] == 'delay_threshold' else 'B'} = {v:g}"
            ok = np.isfinite(s)
            ax.plot(lrs[ok], s[ok], "o-", color=c, ms=3, lw=1, label=lab)
            ax.plot(lrs[~ok], np.full((~ok).sum(), top), "x", color=c, ms=5)
        tuned, paper = t["tuned"], t["paper"]
        ax.plot(tuned["lr"], t["tuned_score"], "*", color="k", ms=13, label="tuned", zorder=5)
        ax.plot(
            paper["lr"],
            t["paper_score"],
            "s",
            mfc="none",
            mec="r",
            ms=10,
            label="paper's",
            zorder=5,
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(labels[name], fontsize=9)
        ax.set_xlabel("step γ")
        ax.set_ylabel("f − f* at the horizon")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, ncol=2, loc="upper left")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(title + "  (×: diverged)", fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the preset
def _score_at(t: dict[str, Any], p: dict[str, float]) -> float:
    i = _index(t["lr_grid"], p["lr"])
    if t["axis"] is None:
        return float(t["score"][i])
    return float(t["score"][i, _index(t["axis_grid"], p[t["axis"]])])


def order_reproduced(final: dict[str, float], ci: dict[str, list[float]]) -> bool | None:
    """`ORDER_RULE` on the methods' means and intervals at the horizon (None: a method missing)."""
    need = ("ringmaster", "rennala", "delay_adaptive_asgd")
    if not all(k in final for k in need):
        return None
    return bool(
        final["ringmaster"] <= ci["rennala"][1]
        and final["delay_adaptive_asgd"] >= 5.0 * final["rennala"]
    )


def run(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """Tunes and runs every method; returns the summary (the documented keys, and more)."""
    a = cfg["analysis"]
    names = list(a["methods"])
    if int(cfg["grid"]["seeds"]) < 2:
        raise ValueError("maranjyan2025-ringmaster needs at least 2 seeds for its intervals")
    horizon = float(a["horizon"])
    times = np.linspace(0.0, horizon, int(a["time_points"]))
    labels = {k: a["methods"][k]["label"] for k in names}
    tunings, finals = {}, {}
    for name in names:
        tunings[name] = _tune(cfg, name, out, progress, meta)
        finals[name] = _final(cfg, name, tunings[name], out, progress, meta)
        finals[name]["paper_differs"] = tunings[name]["tuned"] != tunings[name]["paper"]
    drawing(FIGURES, progress)

    n_seeds = int(cfg["grid"]["seeds"])
    where = f"n = {cfg['grid']['workers']}, d = {cfg['problem']['d']}, {n_seeds} seeds"
    for var, fig_name in zip(METRICS, FIGURES[:2]):
        title = f"the Ringmaster paper's quadratic, {where}"
        plotting.save(curves_figure(times, finals, labels, var, title=title), out / fig_name)
    for k in names:
        tunings[k]["tuned_score"] = _score_at(tunings[k], tunings[k]["tuned"])
        tunings[k]["paper_score"] = _score_at(tunings[k], tunings[k]["paper"])
    plotting.save(
        tuning_figure(tunings, labels, title=f"tuning: mean over the tuning seeds, {where}"),
        out / FIGURES[2],
    )

    final_error = {k: float(finals[k]["tuned_error"][0][-1]) for k in names}
    final_ci = {k: finals[k]["tuned_error"][1][-1].tolist() for k in names}
    axes = {k: tunings[k]["axis"] for k in names}
    all_results = [r for t in tunings.values() for r in t["results"]]
    all_results += [r for f in finals.values() for r in f["results"]]

    def stacked(which: str, var: str, part: int) -> np.ndarray:
        return np.stack([finals[k][f"{which}_{var}"][part] for k in names])

    return {
        "methods": names,
        "labels": [labels[k] for k in names],
        "time": times,
        "error": stacked("tuned", "error", 0),
        "error_ci": stacked("tuned", "error", 1),
        "grad_sq": stacked("tuned", "grad_sq", 0),
        "grad_sq_ci": stacked("tuned", "grad_sq", 1),
        "final_error": [final_error[k] for k in names],
        "final_error_ci": [final_ci[k] for k in names],
        "final_grad_sq": [float(finals[k]["tuned_grad_sq"][0][-1]) for k in names],
        "final_grad_sq_ci": [finals[k]["tuned_grad_sq"][1][-1].tolist() for k in names],
        "paper_setting_error": stacked("paper", "error", 0),
        "paper_setting_grad_sq": stacked("paper", "grad_sq", 0),
        "tuned": {k: tunings[k]["tuned"] for k in names},
        "tuned_lr": [tunings[k]["tuned"]["lr"] for k in names],
        "tuned_R_or_B": [tunings[k]["tuned"].get(axes[k]) if axes[k] else None for k in names],
        "tuned_at_grid_edge": {k: tunings[k]["at_grid_edge"] for k in names},
        "asgd_step_at_grid_edge": (
            tunings["asgd"]["at_grid_edge"]["lr"] if "asgd" in tunings else None
        ),
        "paper_settings": {k: tunings[k]["paper"] for k in names},
        "paper_setting_final_error": {k: float(finals[k]["paper_error"][0][-1]) for k in names},
        "paper_setting_final_error_ci": {
            k: finals[k]["paper_error"][1][-1].tolist() for k in names
        },
        "paper_setting_final_grad_sq": {k: float(finals[k]["paper_grad_sq"][0][-1]) for k in names},
        "paper_setting_final_grad_sq_ci": {
            k: finals[k]["paper_grad_sq"][1][-1].tolist() for k in names
        },
        "updates_at_horizon": {k: finals[k]["paper_updates"] for k in names},
        "arrivals_at_horizon": {k: finals[k]["paper_arrivals"] for k in names},
        "updates_at_horizon_tuned": [finals[k]["tuned_updates"] for k in names],
        "order_at_horizon": sorted(names, key=lambda k: final_error[k]),
        "paper_order_reproduced": order_reproduced(final_error, final_ci),
        "order_rule": ORDER_RULE,
        "tuning": {
            k: {
                "lr": tunings[k]["lr_grid"],
                **({axes[k]: tunings[k]["axis_grid"]} if axes[k] else {}),
                "score": tunings[k]["score"],
                "diverged_fraction": tunings[k]["diverged_fraction"],
                "seeds": tunings[k]["seeds"],
                "events": tunings[k]["events"],
                "seconds": tunings[k]["seconds"],
            }
            for k in names
        },
        "final_events": {k: finals[k]["events"] for k in names},
        "final_seconds": {k: finals[k]["seconds"] for k in names},
        "diverged_fraction_tuned": [finals[k]["tuned_diverged"] for k in names],
        "diverged_fraction_paper": [finals[k]["paper_diverged"] for k in names],
        "horizon": horizon,
        "workers": int(cfg["grid"]["workers"]),
        "d": int(cfg["problem"]["d"]),
        "noise": float(cfg["problem"]["noise"]),
        "seeds": n_seeds,
        "tune_seeds": {k: tunings[k]["seeds"] for k in names},
        "divergence_rule": analysis.DIVERGENCE_RULE
        + " Here f − f* and ‖∇f‖² of a diverged trajectory are infinite from then on.",
        **divergence(*all_results),
        "simulation_s": sum(t["seconds"] for t in tunings.values())
        + sum(f["seconds"] for f in finals.values()),
    }


def headline(summary: dict[str, Any]) -> str:
    """Per method: f − f* at the horizon at its tuned setting (95% interval), and at the paper's."""
    names = summary["methods"]
    horizon = summary["horizon"]
    return headline_table(
        summary,
        f"f - f* at the horizon t = {horizon:g} per method, tuned setting ({summary['seeds']} seeds, "
        "95% interval); the paper's settings below:",
        (
            "methods",
            "final_error",
            "final_error_ci",
            "tuned_lr",
            "tuned_R_or_B",
            "updates_at_horizon_tuned",
        ),
        [f"paper_setting_final_error.{k}" for k in names]
        + [f"updates_at_horizon.{k}" for k in names]
        + ["paper_order_reproduced", "asgd_step_at_grid_edge"],
    )
