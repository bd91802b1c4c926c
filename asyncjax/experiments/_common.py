"""What several presets share: running one of their sweeps, the divergence counts, Fig. 1's sweep,
the headline table each preset prints.

The presets import these; the runner (`asyncjax.experiments.runner`)
imports the presets, so nothing here may import the runner.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from asyncjax import analysis, theory
from asyncjax._io import jsonable
from asyncjax.config import SweepSpec, parse_config
from asyncjax.results import Results
from asyncjax.sweep import sweep
from asyncjax.sweep.progress import stage


def run_sweep(
    cfg: dict[str, Any],
    out: Path,
    progress: bool | None,
    meta: dict[str, Any],
    name: str | None = None,
    **extra: Any,
) -> tuple[Results, SweepSpec]:
    """Runs (or resumes) one sweep of a preset's configuration.

    Args:
      cfg: the preset's configuration (overrides applied).
      out: the preset's output folder.
      progress: progress on stderr (None: the default).
      meta: the preset's metadata, stored with the sweep.
      name: the sweep's table under ``[sweep]`` (its folder under ``out``);
        None for a preset whose configuration is one sweep (saved in ``out``).
      **extra: further `asyncjax.sweep` arguments (e.g. ``record_iterates``).

    Returns:
      The results and the parsed configuration.
    """
    sub = cfg if name is None else cfg["sweep"][name]
    spec = parse_config(sub, meta["preset"] + ("" if name is None else f" [{name}]"))
    res = sweep(
        spec.problem,
        spec.grid,
        out=out if name is None else out / name,
        resume=True,
        keep_chunks=True,  # until the preset has finished (the runner removes them then)
        progress=progress,
        metadata=meta if name is None else {**meta, "sweep": name},
        **extra,
        **spec.sweep_kwargs(),
    )
    return res, spec


def divergence(*results: Results) -> dict[str, int]:
    """How many trajectories the sweeps ran, and how many of them diverged (summary keys)."""
    flags = [np.asarray(r["diverged_at"]) >= 0 for r in results]
    return {
        "trajectories": int(sum(f.size for f in flags)),
        "diverged_trajectories": int(sum(f.sum() for f in flags)),
    }


class DelaySweep(NamedTuple):
    """A (momentum, delay) sweep of streaming PCA and its thresholds, measured as Fig. 1 does."""

    spec: SweepSpec
    results: Results
    momenta: np.ndarray  # (M,)
    delays: np.ndarray  # (T,)
    lr: float
    per_seed: np.ndarray  # (M, T, S) late-average error, diverged trajectories counted as failed
    thr: analysis.Thresholds  # measured threshold delays per momentum
    predicted: np.ndarray  # (M,) the stability boundary τ*(μ)
    bands: analysis.Band  # (M, T) over seeds, with diverged fractions
    simulation_s: float


def momentum_delay_sweep(
    cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
) -> DelaySweep:
    """Runs (or resumes) a preset's (momentum, delay) sweep and measures its thresholds.

    The ``[analysis]`` table may set ``window`` (late-average fraction, 0.25),
    ``factor`` (the error growth that marks a threshold, 2) and ``bootstrap``
    (resamples of the threshold intervals, 1000).
    """
    t0 = time.perf_counter()
    res, spec = run_sweep(cfg, out, progress, meta)
    sim_s = time.perf_counter() - t0
    a = spec.analysis
    window, factor, n_boot = a.get("window", 0.25), a.get("factor", 2.0), a.get("bootstrap", 1000)
    per_seed = analysis.late_average(res, "error", window)  # diverged = failed
    flags = analysis.diverged_mask(res)  # (momentum, delay, seed)
    delays = res.coords["delay"].astype(float)
    momenta = res.coords["momentum"].astype(float)
    lr = float(spec.grid.fixed["lr"])
    thr = analysis.threshold_delays(
        per_seed, delays, factor=factor, n_boot=n_boot, window=window, diverged=flags
    )
    return DelaySweep(
        spec=spec,
        results=res,
        momenta=momenta,
        delays=delays,
        lr=lr,
        per_seed=per_seed,
        thr=thr,
        predicted=theory.pca_threshold(spec.problem.eigenvalues, momenta, lr),
        bands=analysis.band(per_seed, axis=-1, diverged=flags),
        simulation_s=sim_s,
    )


def drawing(figures: Sequence[str], progress: bool | None) -> None:
    """Says that the sweeps are done and the analysis and figures start (a stage of the run)."""
    stage(f"analysing; drawing {', '.join(figures)}", progress)


def _cell(value: Any) -> str:
    """One number (or [lo, hi] pair) as the headline tables print it: 4 significant digits."""
    if value is None:
        return "-"  # null in summary.json: never reached, not measured
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _entry(summary: dict[str, Any], key: str) -> Any:
    """``summary[key]``; ``a.b`` is ``summary[a][b]``, or ``[e[b] for e in summary[a]]`` for a list."""
    value: Any = summary
    for part in key.split("."):
        value = [v[part] for v in value] if isinstance(value, list) else value[part]
    return value


def headline_table(
    summary: dict[str, Any], title: str, columns: Sequence[str], scalars: Sequence[str] = ()
) -> str:
    """A preset's headline numbers as a small text table, read from its summary.

    Every column is headed by its summary.json key and holds that key's list,
    one entry per row (``a.b``: key ``b`` of ``a``, or of each entry of ``a``
    where ``a`` is a list of tables, as wang2020-speedup's ``by_budget``) (an entry that is itself a list, such as an interval,
    prints as ``[lo, hi]``); each of ``scalars`` follows as a ``key = value``
    line. Numbers show 4 significant digits, null as ``-``, booleans as
    yes/no; columns are at least two spaces apart.

    Args:
      summary: the preset's summary (as returned or as read from summary.json).
      title: the first line.
      columns: summary keys of equal length, the first one naming the rows.
      scalars: summary keys of single values.
    """
    s = jsonable(summary)
    cells = [[key] + [_cell(v) for v in _entry(s, key)] for key in columns]
    if len({len(c) for c in cells}) > 1:
        raise ValueError(f"headline columns {list(columns)} are not aligned")
    widths = [max(len(x) for x in col) for col in cells]
    lines = [title]
    for row in zip(*cells):
        lines.append("  ".join(x.rjust(w) for x, w in zip(row, widths)).rstrip())
    lines += [f"{key} = {_cell(_entry(s, key))}" for key in scalars]
    return "\n".join(lines)
