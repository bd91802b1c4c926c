"""The runner behind ``asyncjax reproduce NAME``: it runs a preset and writes what it found.

A preset is a TOML file in `asyncjax.experiments` (the sweeps) and a
module beside it (the analysis it reports), with one face (`Preset`):
``FIGURES``, the names of the figures it draws, ``run(cfg, out, progress,
meta)``, which runs its sweeps into ``out``, draws the figures there and
returns the summary, and ``headline(summary)``, its headline numbers as the
small table ``asyncjax reproduce`` ends with (`headline`). The runner applies ``--quick`` and ``--seeds`` to the
TOML, claims the output folder, calls the preset, and writes into the folder:
the saved sweep (``results.npz`` and its chunk checkpoints), the figures as
PNG, ``summary.json`` with the preset's headline numbers, and
``reproduce.json`` naming the preset and the exact settings the folder holds.
The presets never import the runner; what they share is in ``_common``.

A folder is only ever continued by the same preset with the same settings (a
killed run resumes from its chunks). One that holds anything else asyncjax
wrote -- another preset, the ``--quick`` or full version of this one, another
seed count, a sweep of ``asyncjax run`` -- is refused unless ``overwrite=True``
(``--overwrite``), which first deletes what asyncjax wrote there (sweeps,
figures, summaries) so that no stale figure is left beside the new ones.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

import jax

from asyncjax._io import ensure_dir, jsonable, write_json
from asyncjax._version import __version__
from asyncjax.datasets import require_scikit_learn
from asyncjax.experiments import (
    available,
    dirichlet_digits,
    heterogeneous_bias,
    liu2018_dnn,
    liu2018_fig1,
    liu2018_phase,
    liu2018_stationary,
    load_preset,
    maranjyan2025_ringmaster,
    mitliagkas2016,
    preset_text,
    ringmaster_momentum,
    tyurin2023_time,
    wang2020_speedup,
)
from asyncjax.sweep.checkpoint import remove_finished_chunks


class Preset(Protocol):
    """What the runner needs of a preset module."""

    FIGURES: tuple[str, ...]  # the figures ``run`` writes into ``out``

    def run(
        self, cfg: dict[str, Any], out: Path, progress: bool | None, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Runs the preset's sweeps into ``out``, draws its figures there, returns its summary."""
        ...

    def headline(self, summary: dict[str, Any]) -> str:
        """The summary's headline numbers as a small text table."""
        ...


PRESETS: dict[str, Preset] = {
    "liu2018-fig1": liu2018_fig1,
    "liu2018-stationary": liu2018_stationary,
    "liu2018-phase": liu2018_phase,
    "wang2020-speedup": wang2020_speedup,
    "mitliagkas2016": mitliagkas2016,
    "liu2018-dnn": liu2018_dnn,
    "tyurin2023-time": tyurin2023_time,
    "ringmaster-momentum": ringmaster_momentum,
    "maranjyan2025-ringmaster": maranjyan2025_ringmaster,
    "heterogeneous-bias": heterogeneous_bias,
    "dirichlet-digits": dirichlet_digits,
}

_MARK = "reproduce.json"
_MARK_FORMAT = "asyncjax-reproduce/1"
_SWEEP_FILES = (
    "results.npz",
    "sweep.json",
    "chunks",
    "error_vs_step.png",  # and `asyncjax plot` of a worker sweep:
    "error_vs_wallclock.png",
    "staleness.png",
    "speedup.png",
    "speedup.json",
)


# Tables of a sweep that a [quick] table may hold to change the quick run's settings.
_QUICK_TABLES = ("problem", "grid", "run", "delay", "server", "mitigation", "optimizer")


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s keys: tables merged key by key, any other value replaced."""
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else copy.deepcopy(value)
    return out


def _apply_overrides(cfg: dict[str, Any], *, quick: bool, seeds: int | None) -> dict[str, Any]:
    """A copy of a preset's configuration with ``--quick`` and ``--seeds`` applied.

    With ``--quick``, a ``[quick]`` table (the preset's, or a sweep's own) sets ``seeds``
    (at most that many), ``steps`` and ``record_every``; its tables ``[quick.analysis]``
    (the preset's analysis) and ``[quick.problem]``, ``[quick.grid]``, ``[quick.run]``, ...
    (a sweep's sections) replace only the keys they name, table by table.
    """
    cfg = copy.deepcopy(cfg)
    quick_cfg = cfg.pop("quick", {})
    sweeps = [cfg] if "grid" in cfg else list(cfg["sweep"].values())
    if seeds is not None and seeds < 2:
        raise ValueError(f"--seeds must be at least 2 (bands and intervals need them), got {seeds}")
    if quick and "analysis" in quick_cfg:  # [quick.analysis]: the quick run's own analysis settings
        cfg["analysis"] = _merged(cfg.get("analysis", {}), quick_cfg["analysis"])
    for sw in sweeps:
        own = {
            **quick_cfg,
            **sw.pop("quick", {}),
        }  # a sweep's own [quick] table wins over the preset's
        if quick:
            for table in _QUICK_TABLES:
                if isinstance(own.get(table), dict):
                    sw[table] = _merged(sw.get(table, {}), own[table])
            if "seeds" in own:
                sw["grid"]["seeds"] = min(own["seeds"], sw["grid"]["seeds"])
            for key in ("steps", "record_every"):
                if key in own:
                    sw["run"][key] = own[key]
        if seeds is not None:
            sw["grid"]["seeds"] = seeds
    return cfg


def _identity(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return {"preset": name, "config": jsonable(cfg)}


def _ours(path: Path) -> list[str]:
    """What asyncjax wrote in folder ``path`` (names relative to it)."""
    if not path.is_dir():
        return []
    figures = {f for preset in PRESETS.values() for f in preset.FIGURES}
    found = [
        p.name
        for p in path.iterdir()
        if p.name in figures or p.name in _SWEEP_FILES or p.name in ("summary.json", _MARK)
    ]
    for sub in path.iterdir():
        if sub.is_dir() and ((sub / "sweep.json").exists() or (sub / "chunks").is_dir()):
            found += [f"{sub.name}/{p.name}" for p in sub.iterdir() if p.name in _SWEEP_FILES]
    return sorted(found)


def _differences(old: Any, new: Any, prefix: str = "", limit: int = 3) -> str:
    """The first settings that differ between two preset configurations, as 'grid.seeds: 100 -> 16'."""
    found: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if len(found) >= limit or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        else:
            found.append(f"{path}: {a!r} -> {b!r}")

    walk(old, new, prefix)
    return "; ".join(found) or "settings recorded differently"


def _claim(out: Path, name: str, cfg: dict[str, Any], overwrite: bool, quick: bool) -> bool:
    """Makes ``out`` this run's folder: refuses (or, with ``overwrite``, clears) other results in it.

    Returns whether the folder was this run's mark alone: it held nothing of a
    run before (or was cleared), so `_release` may take the mark back.
    """
    ensure_dir(out)
    mark = out / _MARK
    found = _ours(out)
    old = None
    if mark.exists():
        try:
            old = json.loads(mark.read_text())
        except (OSError, ValueError):
            old = None
    same = (
        isinstance(old, dict)
        and old.get("format") == _MARK_FORMAT
        and {"preset": old.get("preset"), "config": old.get("config")} == _identity(name, cfg)
    )
    if found and not (same and not overwrite):
        if not overwrite:
            if isinstance(old, dict) and old.get("preset"):
                run = (
                    f"`asyncjax reproduce {old['preset']}{' --quick' if old.get('quick') else ''}`"
                )
                what = f"the results of {run}" + (
                    f" with other settings ({_differences(old.get('config'), _identity(name, cfg)['config'])})"
                    if old["preset"] == name
                    else ""
                )
            else:
                what = (
                    f"asyncjax results ({', '.join(found[:6])}) not recorded as a run of "
                    f"`asyncjax reproduce {name}` with these settings"
                )
            raise FileExistsError(
                f"{out} already holds {what}; pass --overwrite (overwrite=True) to replace them, "
                "or choose another --out"
            )
        for rel in found:
            target = out / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for sub in {(out / rel).parent for rel in found if "/" in rel}:
            if not any(sub.iterdir()):  # a sweep's folder that held nothing else
                sub.rmdir()
    write_json(
        mark,
        {
            "format": _MARK_FORMAT,
            "asyncjax_version": __version__,
            "quick": quick,
            **_identity(name, cfg),
        },
    )
    return not found or overwrite


def _release(out: Path, created: bool) -> None:
    """Takes back the mark of a run that stopped before it wrote anything else into ``out``.

    The folder is left as the run found it (removed if the run made it), so
    that a run with other settings may claim it; one holding anything of a run
    (a chunk, a sweep's record) keeps its mark.
    """
    if _ours(out) != [_MARK]:
        return
    (out / _MARK).unlink()
    if created and not any(out.iterdir()):
        out.rmdir()


def headline(name: str, summary: dict[str, Any]) -> str:
    """Preset ``name``'s headline table: the same numbers as its summary.json, 4 significant digits.

    Args:
      name: a preset.
      summary: what `reproduce` returned, or summary.json as read back.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    return PRESETS[name].headline(summary)


def reproduce(
    name: str,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    seeds: int | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    keep_chunks: bool = False,
) -> dict[str, Any]:
    """Runs preset ``name`` and writes its figures and ``summary.json`` into ``out``.

    Args:
      name: a preset (see `asyncjax.experiments.available`).
      out: output folder; default ``runs/NAME``. A folder holding this preset's
        run with the same settings is continued (finished chunks are reused);
        one holding other asyncjax results is refused unless ``overwrite``.
      quick: the preset's small smoke-run size.
      seeds: number of seeds (overrides the preset).
      progress: progress bar on stderr; default when stderr is a terminal.
      overwrite: delete the results asyncjax wrote in ``out`` first (sweeps,
        figures, summaries; nothing else), and run afresh.
      keep_chunks: keep the sweeps' chunk files once the preset has finished
        (by default they are deleted then; a run stopped earlier keeps them,
        and a rerun reuses them or the sweeps' results.npz).

    Returns:
      The summary that was written.
    """
    if name not in PRESETS or name not in available():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    if getattr(PRESETS[name], "NEEDS_DIGITS", False):  # before anything runs, not after a sweep
        require_scikit_learn(f"the {name} preset (an MLP on scikit-learn's digits)")
    cfg = _apply_overrides(load_preset(name), quick=quick, seeds=seeds)
    out = Path(out or Path("runs") / name)
    created = not out.exists()
    alone = _claim(out, name, cfg, overwrite, quick)
    meta = {"preset": name, "quick": quick, "seeds_override": seeds, "toml": preset_text(name)}
    t0 = time.perf_counter()
    try:
        summary = PRESETS[name].run(cfg, out, progress, meta)
    except BaseException:
        if alone:  # refused (too large, a bad value) before anything was computed
            _release(out, created)
        raise
    summary = {
        "preset": name,
        "quick": quick,
        **summary,
        "figures": list(PRESETS[name].FIGURES),
        "wall_s": time.perf_counter() - t0,
        "device": f"{jax.devices()[0].device_kind} x{len(jax.devices())}",
    }
    write_json(out / "summary.json", summary)
    if not keep_chunks:
        remove_finished_chunks(out)
    return summary
