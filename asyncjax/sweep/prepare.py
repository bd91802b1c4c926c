"""A sweep's inputs validated and laid out, before anything compiles: its points and metadata.

The hyperparameter points are every combination of the grid's non-seed axes in
grid order; the metadata (settings, what each variable is, the caller's notes)
is what the results and the checkpoint record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax._io import jsonable
from asyncjax._validate import check_int, check_positive
from asyncjax._version import __version__
from asyncjax.delays import DelayModel, get_delay_model
from asyncjax.engine import Spec
from asyncjax.mitigations import get_mitigation
from asyncjax.optim import get_optimizer, heavy_ball
from asyncjax.problems.base import Problem
from asyncjax.servers import Server, get_server
from asyncjax.servers.clock import attach, check_server_axes
from asyncjax.simulate import check_seeds, check_worker_data, resolve_hp, start_of
from asyncjax.sweep.chunks import seed_values
from asyncjax.sweep.grid import Grid
from asyncjax.sweep.memory import Shapes, shapes


@dataclass(frozen=True)
class Prepared:
    """A validated sweep before it runs: its static configuration, points and metadata."""

    problem: Problem
    grid: Grid
    spec: Spec  # with the ring of the grid's largest delay
    model: DelayModel
    seed_axis: np.ndarray | range  # (S,) the checked seeds; a range is built only when read
    hyper: dict  # name -> (H,) float64
    hyper_dims: tuple  # the grid's non-seed axes, in grid order
    x0: Any  # the start, in internal coordinates (used where spec.fixed_init)
    bound: float  # the norm bound
    probe: Shapes  # the sizes of one trajectory's parts
    single: bool  # parameters are one vector: final (and iterates) are recorded
    ring_fixed: bool  # the caller chose the buffer: one ring for every point
    source: dict | None = None  # the caller's notes (``metadata``), saved with the results

    @property
    def n_seeds(self) -> int:
        """S, the number of seeds (without building them)."""
        return len(self.seed_axis)

    @cached_property
    def seeds(self) -> np.ndarray:
        """(S,) int32 seed values (built on first use: a sweep refused for its size never does)."""
        return seed_values(self.seed_axis)

    @cached_property
    def attrs(self) -> dict[str, Any]:
        """The metadata saved with the results: settings (hashed as the sweep key), variables, notes.

        Built on first use, once the sweep is known to fit: the settings list
        every axis value (10^8 seeds would take seconds and gigabytes just to be
        refused).
        """
        spec = self.spec
        x0 = self.x0 if spec.fixed_init else None
        attrs = _settings(
            self.problem,
            spec.optimizer,
            self.model,
            spec.mitigation,
            self.grid,
            spec,
            self.bound,
            x0,
        )
        attrs["variables"] = _variables(self.problem)
        if self.model.recorded(jnp.result_type(float)):
            attrs["variables"].update(
                wall_time={
                    "description": "virtual time of the clock at each record (mean compute "
                    "times, or the units of the compute times given)"
                },
                updates={"description": "updates the server has applied at each record"},
            )
        if self.source is not None:
            attrs["source"] = self.source
        return attrs


def prepare(
    problem: Problem,
    grid: Grid,
    *,
    steps: int,
    record_every: int,
    optimizer: Any = None,
    delay_model: Any = "constant",
    mitigation: Any = None,
    server: Server | str | None = None,
    init: Any = None,
    buffer: int | None = None,
    norm_bound: float | None = None,
    record_iterates: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Prepared:
    """Validates a sweep's settings and lays out its points (nothing compiles)."""
    optimizer = heavy_ball() if optimizer is None else get_optimizer(optimizer)
    model = get_delay_model(delay_model)
    mit = get_mitigation(mitigation)
    mit = mit.bind(optimizer) if mit is not None else None
    ring_fixed = buffer is not None
    model, values, buffer, seeds = _check_grid(
        problem, grid, optimizer, model, mit, buffer, get_server(server), steps
    )
    bound = problem.default_norm_bound if norm_bound is None else norm_bound
    check_positive(bound, "norm_bound", allow_inf=True)
    model.check_run(seeds if isinstance(seeds, np.ndarray) else _ends(seeds), steps)
    fixed, x0 = start_of(problem, init)

    # Hyperparameter points: every combination of the non-seed axes, in grid order.
    hyper_dims = tuple(d for d in grid.dims if d != "seed")
    mesh = np.meshgrid(*(grid.axes[n] for n in hyper_dims), indexing="ij")
    n_hyper = int(np.prod([grid.axes[n].size for n in hyper_dims], dtype=np.int64))

    def column(name: str, vals: np.ndarray) -> np.ndarray:
        if name in hyper_dims:
            return mesh[hyper_dims.index(name)].reshape(-1).astype(np.float64)
        return np.full(n_hyper, float(vals[0]))

    hyper = {name: column(name, vals) for name, vals in values.items()}
    probe = shapes(problem, optimizer, hyper, x0, fixed)
    extra = model.recorded(jnp.result_type(float))
    if extra:  # the clock's own records (wall time, applied updates) beside the problem's
        metrics = {**probe.metrics, **extra}
        probe = probe._replace(metrics=metrics, n_metrics=len(metrics))
    single = (
        len(jax.tree.leaves(probe.params)) == 1 and len(jax.tree.leaves(probe.params)[0].shape) == 1
    )
    if record_iterates and not single:
        raise ValueError(
            "record_iterates needs parameters that are one vector; "
            f"{type(problem).__name__}'s are a pytree"
        )
    spec = Spec(
        problem,
        optimizer,
        model,
        steps,
        record_every,
        buffer,
        fixed_init=fixed,
        record_params=bool(record_iterates),
        keep_final=single,
        mitigation=mit,
    )
    return Prepared(
        problem,
        grid,
        spec,
        model,
        seeds,
        hyper,
        hyper_dims,
        x0,
        bound,
        probe,
        single,
        ring_fixed,
        None if metadata is None else jsonable(dict(metadata)),
    )


def check_grid(
    problem: Problem,
    grid: Grid,
    *,
    optimizer: Any = None,
    delay_model: Any = "constant",
    mitigation: Any = None,
    server: Server | str | None = None,
    buffer: int | None = None,
    steps: int = 1,
) -> None:
    """Checks the grid's values as `prepare` does, without laying anything out.

    Raises:
      ValueError: a value a part refuses, a missing axis, a delay beyond the
        ring, bad or repeated seeds.
    """
    optimizer = heavy_ball() if optimizer is None else get_optimizer(optimizer)
    mit = get_mitigation(mitigation)
    _check_grid(
        problem,
        grid,
        optimizer,
        get_delay_model(delay_model),
        mit.bind(optimizer) if mit is not None else None,
        buffer,
        get_server(server),
        steps,
    )


def _check_grid(
    problem, grid, optimizer, model, mit, buffer, server, steps
) -> tuple[DelayModel, dict, int, np.ndarray | range]:
    """The run's delay model (with its server), the grid's checked values, the ring, the seeds.

    Seeds given as a range stay one (checked at its ends; a range never repeats a value).
    """
    settings = {**grid.fixed, **{k: grid.axes[k] for k in grid.dims if k != "seed"}}
    settings.pop("seed", None)
    check_server_axes(problem, server)
    model = attach(model, server, settings, steps)
    if buffer is None:
        buffer = model.buffer_for(settings.get(model.axis))  # None: the model's default
    buffer = check_int(buffer, "buffer", minimum=1)
    values = resolve_hp(problem, optimizer, model, settings, buffer, mit)  # fills defaults
    check_worker_data(problem, model, values)
    if "seed" in grid.dims and isinstance(grid.given("seed"), range):
        seeds = grid.given("seed")  # checked at its ends, unique by construction: never built
        check_seeds(_ends(seeds))
    else:
        seeds = check_seeds(grid.values("seed", 0))
        _check_unique(seeds)
    return model, values, buffer, seeds


def _ends(seeds: range) -> np.ndarray:
    """The smallest and the largest seed of a non-empty range (what the checks of values read)."""
    return np.asarray(sorted((seeds[0], seeds[-1])), np.int64)


def results_bytes(prep: Prepared) -> int:
    """Host bytes of the assembled results (what `asyncjax.sweep.assemble.allocate` takes)."""
    S, H, n_rec = prep.n_seeds, next(iter(prep.hyper.values())).size, prep.spec.n_records
    per = sum(n_rec * np.dtype(m.dtype).itemsize for m in prep.probe.metrics.values()) + 4
    if prep.single:
        d = jax.tree.leaves(prep.probe.params)[0].shape[0]
        per += d * prep.probe.itemsize * (1 + (n_rec if prep.spec.record_params else 0))
    return int(S) * int(H) * int(per)


def _settings(problem, optimizer, model, mit, grid, spec, bound, x0) -> dict[str, Any]:
    """The sweep's settings as saved (their hash is the sweep key)."""
    x0_list = (
        None
        if x0 is None
        else jax.tree.map(lambda a: np.asarray(a).tolist(), problem.from_internal(x0))
    )
    attrs = {
        "asyncjax_version": __version__,
        "jax_version": jax.__version__,
        "problem": problem.describe(),
        "optimizer": optimizer.describe(),
        "grid": grid.describe(),
        "steps": spec.steps,
        "record_every": spec.record_every,
        "buffer": spec.buffer,
        "delay_model": model.name,
        **({"server": model.server.describe()} if hasattr(model, "server") else {}),
        "norm_bound": bound,
        "record_iterates": spec.record_params,
        "init": x0_list if x0 is not None else "random per seed (init stream)",
        "dtype": str(jnp.dtype(jnp.result_type(float))),
        "data_stream": "word m of step k = Threefry-2x32[fold_in(key(seed), stream)](k, m // 2)[m % 2]; "
        "stream 0: data, stream 1: delays, stream 2: random starts (asyncjax._rng)",
    }
    if (
        model.describe() != {"name": model.name} or mit is not None
    ):  # settings of the newer parts only
        attrs.update(delay=model.describe(), mitigation=None if mit is None else mit.describe())
    return attrs


def _check_unique(seeds: np.ndarray) -> None:
    """Seeds name data streams: a repeated seed would be the same trajectory twice."""
    if seeds.size < 2 or bool(np.all(seeds[1:] > seeds[:-1])):  # ascending (seeds = N): no sort
        return
    values, counts = np.unique(seeds, return_counts=True)
    if values.size != seeds.size:
        dup = values[counts > 1]
        raise ValueError(
            f"seed values must be unique; {dup[:5].tolist()} appear more than once "
            "(a repeated seed repeats the same data stream)"
        )


def _variables(problem: Any) -> dict[str, dict[str, Any]]:
    """What each saved variable is (stored in the results' metadata)."""
    worst = getattr(problem, "worst_error", None)
    docs = dict(getattr(problem, "metric_docs", {}) or {})
    out: dict[str, dict[str, Any]] = {}
    for name, doc in docs.items():
        out[name] = {
            "description": f"{doc}; recorded at steps 0, record_every, 2 record_every, ... "
            "(coordinate 'step')"
        }
    out.setdefault("error", {"description": "the problem's error metric (0 at the solution)"})
    out["error"]["description"] += (
        ". A diverged trajectory keeps the value it had when it was frozen; "
        "asyncjax.analysis counts it as failed (error = 'worst') from its "
        "divergence on."
    )
    out["error"]["worst"] = worst
    out["diverged_at"] = {
        "description": "first step at which the parameters became non-finite or their norm "
        "exceeded norm_bound; the trajectory is frozen from then on. "
        "-1: it never diverged"
    }
    out["final"] = {
        "description": "the last parameters (in the problem's simulated coordinates: the "
        "eigenbasis for streaming PCA); only for single-vector parameters"
    }
    out["iterates"] = {
        "description": "the parameters at every recorded step, same coordinates as 'final' "
        "(only with record_iterates=True)"
    }
    return out
