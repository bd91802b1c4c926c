"""The host arrays a sweep fills, chunk by chunk, and the `Results` they become."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax.engine import Trace
from asyncjax.results import Results
from asyncjax.sweep.prepare import Prepared


def allocate(prep: Prepared) -> dict[str, np.ndarray]:
    """Host arrays (S, H, ...) for every recorded variable."""
    S, H, n_rec = prep.n_seeds, next(iter(prep.hyper.values())).size, prep.spec.n_records
    fdt = np.dtype(jnp.result_type(float))
    store = {
        name: np.empty((S, H, n_rec), np.dtype(m.dtype)) for name, m in prep.probe.metrics.items()
    }
    store["diverged_at"] = np.empty((S, H), np.int32)
    if prep.single:
        d = jax.tree.leaves(prep.probe.params)[0].shape[0]
        store["final"] = np.empty((S, H, d), fdt)
        if prep.spec.record_params:
            store["iterates"] = np.empty((S, H, n_rec, d), fdt)
    return store


def flatten_trace(trace: Trace) -> dict[str, Any]:
    """A chunk's outputs as flat named arrays (S, H, ...): metrics, diverged_at, final, iterates."""
    out = dict(trace.metrics)
    out["diverged_at"] = trace.diverged_at
    if trace.final is not None:
        (out["final"],) = jax.tree.leaves(trace.final)
    if trace.params is not None:
        (out["iterates"],) = jax.tree.leaves(trace.params)
    return out


def assemble(grid, hyper_dims, spec, store, attrs) -> Results:
    """The filled host arrays, (S, H, ...), as `Results` laid out on the grid's axes."""
    S, H = store["diverged_at"].shape
    hyper_shape = tuple(grid.axes[n].size for n in hyper_dims)
    seed_pos = grid.dims.index("seed") if "seed" in grid.axes else None

    def arrange(a: np.ndarray) -> np.ndarray:
        a = a.reshape((S,) + hyper_shape + a.shape[2:])
        if seed_pos is None:
            return a[0]
        return np.moveaxis(a, 0, seed_pos)

    dims = grid.dims
    trailing = {"diverged_at": (), "final": ("component",), "iterates": ("step", "component")}
    coords = {k: v for k, v in grid.axes.items()}
    coords["step"] = spec.record_steps
    if "final" in store:  # the parameter vector's entries, 0..d-1 (final and iterates)
        coords["component"] = np.arange(store["final"].shape[-1])
    return Results(
        data={k: arrange(v) for k, v in store.items()},
        dims={k: dims + trailing.get(k, ("step",)) for k in store},
        coords=coords,
        attrs=attrs,
    )


def restore_results(
    path: Path, store: dict[str, np.ndarray], prep: Prepared, wanted: np.ndarray
) -> np.ndarray:
    """Copies the cells of a finished ``results.npz`` of this sweep into ``store``.

    The checkpoint has already checked that the folder holds this sweep (its
    ``sweep.json`` key). Returns the (S, H) mask of cells filled: ``wanted``, or
    nothing if there is no such file or it does not match the store (a warning).
    """
    S, H = store["diverged_at"].shape
    none = np.zeros((S, H), bool)
    if not path.exists():
        return none
    try:
        res = Results.load(path)
        grid = prep.grid
        seed_pos = grid.dims.index("seed") if "seed" in grid.axes else None
        loaded = {}
        for k, v in store.items():
            a = np.asarray(res[k])
            a = a[None] if seed_pos is None else np.moveaxis(a, seed_pos, 0)
            a = a.reshape((S, H) + v.shape[2:])
            if a.dtype != v.dtype:
                raise ValueError(f"variable {k!r} has dtype {a.dtype}, not {v.dtype}")
            loaded[k] = a
    except (OSError, ValueError, KeyError) as err:
        warnings.warn(
            f"{path} cannot be reused ({type(err).__name__}: {err}); its cells are recomputed",
            stacklevel=3,
        )
        return none
    for k, v in store.items():
        v[wanted] = loaded[k][wanted]
    return wanted.copy()
