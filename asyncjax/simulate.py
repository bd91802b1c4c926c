"""One trajectory at a time, and the checks every entry point shares.

`simulate` runs the engine (`asyncjax.engine`) with a batch of one;
`asyncjax.sweep` runs grids of trajectories through the same compiled
code. `data_stream` and `delay_stream` give the exact data and
staleness a seed sees, to replay a trajectory outside JAX.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax import _rng
from asyncjax._parts import allowed_axes as parts_axes
from asyncjax._parts import resolve
from asyncjax._validate import check_int, check_positive
from asyncjax.delays import DelayModel, get_delay_model
from asyncjax.engine import Spec, Trace, jitted
from asyncjax.mitigations import Mitigation, get_mitigation
from asyncjax.optim import Optimizer, get_optimizer, heavy_ball
from asyncjax.problems.base import Problem
from asyncjax.servers import Server, get_server
from asyncjax.servers.clock import attach, check_server_axes


def run_parts(
    problem: Problem,
    optimizer: Optimizer,
    delay_model: DelayModel,
    mitigation: Mitigation | None = None,
) -> list[Any]:
    """The parts of a run, in the order their axes are listed."""
    return [optimizer, delay_model, problem, mitigation]


def allowed_axes(
    problem: Problem,
    optimizer: Optimizer,
    delay_model: DelayModel,
    mitigation: Mitigation | None = None,
) -> list[str]:
    """Every grid axis name a sweep of these parts accepts (besides ``seed``)."""
    return parts_axes(run_parts(problem, optimizer, delay_model, mitigation))


def resolve_hp(
    problem: Problem,
    optimizer: Optimizer,
    delay_model: DelayModel,
    values: Mapping[str, Any],
    buffer: int,
    mitigation: Mitigation | None = None,
) -> dict[str, np.ndarray]:
    """Validates swept values and fills in defaults, before anything is compiled.

    Args:
      values: name -> scalar or 1-D array of values.
      buffer: the delay buffer the values must fit.
      mitigation: the staleness mitigation, whose axes are then allowed (and required).

    Returns:
      name -> float64 array of values for every name the engine will receive.
    """
    parts = run_parts(problem, optimizer, delay_model, mitigation)
    return resolve(parts, values, buffer=buffer)


def check_worker_data(
    problem: Problem, delay_model: DelayModel, values: Mapping[str, np.ndarray]
) -> None:
    """Refuses a problem whose workers hold their own data on a run that cannot serve it.

    Such a problem (``problem.per_worker``) needs a delay model with workers
    (the worker clock), and each of the run's worker counts must suit it
    (``problem.check_workers``). Nothing to check for any other problem.

    Args:
      values: the run's checked values (`resolve_hp`), ``workers`` among them.
    """
    if not problem.per_worker:
        return
    if not delay_model.has_workers:
        raise ValueError(
            f"{problem.label} gives each worker its own data, so it needs the worker clock: "
            f'delay_model=asyncjax.delays.workers(...) (in TOML: [delay] model = "workers"), '
            f"not {delay_model.label}"
        )
    counts = np.unique(values["workers"])
    if counts.size > 1:
        raise ValueError(
            f"{problem.label} gives each worker its own data, made for one number of workers, "
            f"but the run has workers = {[int(n) for n in counts]}; run one worker count per sweep"
        )
    for n in counts:
        problem.check_workers(int(n))


def check_seeds(seeds: Any) -> np.ndarray:
    """Seeds are integers in [0, 2**31): a scalar or a 1-D list."""
    arr = np.asarray(seeds)
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise ValueError(f"seeds must be integers (a scalar or a 1-D list), got {seeds!r}")
    if arr.size and (arr.min() < 0 or arr.max() >= 2**31):
        raise ValueError(f"seeds must lie in [0, 2**31), got {arr.min()}..{arr.max()}")
    return arr.astype(np.int32).reshape(-1)


def start_of(problem: Problem, init: Any) -> tuple[bool, Any]:
    """(fixed_init, x0): a user-given or the problem's fixed start, or a random start per seed."""
    if init is not None:
        return True, problem.to_internal(init)
    x0 = problem.default_init()
    return (x0 is not None), x0


def simulate(
    problem: Problem,
    *,
    optimizer: Optimizer | str | None = None,
    delay_model: str | DelayModel = "constant",
    mitigation: str | Mitigation | None = None,
    server: Server | str | None = None,
    seed: int = 0,
    steps: int,
    record_every: int = 1,
    init: Any = None,
    buffer: int | None = None,
    norm_bound: float | None = None,
    record_params: bool = False,
    **hyperparameters: float,
) -> Trace:
    """Simulates one trajectory and returns its `Trace` (NumPy).

    For grids of trajectories use `asyncjax.sweep`, which batches, chunks
    and shards; this is the same compiled code with a batch of one.

    Args:
      problem: the problem, e.g. `StreamingPCA`.
      optimizer: default `asyncjax.optim.heavy_ball` (eq. 5).
      delay_model: ``"constant"`` (axis ``delay``), ``"uniform"`` (``max_delay``),
        ``"geometric"`` or ``"workers"`` (``workers``; or
        `asyncjax.delays.workers` with options), or a trace
        (`asyncjax.delays.trace`, no axis).
      mitigation: a staleness mitigation (`asyncjax.mitigations`) by
        name or object; its parameters go in ``**hyperparameters``.
      server: a server rule (`asyncjax.servers`) on the worker clock: a step
        is then an event, and the metrics hold ``wall_time`` and ``updates``.
      seed: integer seed of the trajectory's data, delay and init streams.
      steps: iterations; a multiple of ``record_every``.
      record_every: record metrics every this many steps.
      init: start in the problem's coordinates; default the problem's own.
      buffer: delay-buffer length; default just large enough for the delay.
      norm_bound: a trajectory whose parameter norm exceeds it is frozen and
        flagged; default the problem's.
      record_params: also record the parameters at every record (``params``).
      **hyperparameters: one value per swept name, e.g. ``momentum=0.9,
        lr=5e-4, delay=10``. ``delay=`` also names the parameter of the other
        delay models (``max_delay``, ``workers``).

    Returns:
      The trajectory's `Trace`; with the worker model
      its metrics also hold ``wall_time`` (n_records,), the virtual time at
      each record.

    Example::

        tr = aj.simulate(aj.StreamingPCA([4., 3, 2, 1]), momentum=0.9, lr=5e-4, delay=10, steps=10_000)
        tr.error  # (n_records,)
    """
    optimizer = heavy_ball() if optimizer is None else get_optimizer(optimizer)
    model = get_delay_model(delay_model)
    mit = get_mitigation(mitigation)
    mit = mit.bind(optimizer) if mit is not None else None
    if "delay" in hyperparameters and model.axis != "delay" and model.axis is not None:
        if model.axis in hyperparameters:
            raise ValueError(
                f"give the {model.name} delay model's parameter once: {model.axis}= or delay="
            )
        # delay= names any model's parameter
        hyperparameters[model.axis] = hyperparameters.pop("delay")
    server = get_server(server)
    check_server_axes(problem, server)
    model = attach(model, server, hyperparameters, check_int(steps, "steps", minimum=1))
    delay_val = hyperparameters.get(model.axis)  # None: the model's default
    buffer = (
        model.buffer_for(delay_val) if buffer is None else check_int(buffer, "buffer", minimum=1)
    )
    hp = resolve_hp(problem, optimizer, model, hyperparameters, buffer, mit)
    check_worker_data(problem, model, hp)
    for name, v in hp.items():
        if v.size != 1:
            raise ValueError(
                f"simulate runs one trajectory: {name} must be a scalar (use sweep for lists)"
            )
    seeds = check_seeds(seed)
    model.check_run(seeds, steps)
    fixed, x0 = start_of(problem, init)
    bound = problem.default_norm_bound if norm_bound is None else norm_bound
    check_positive(bound, "norm_bound", allow_inf=True)
    spec = Spec(
        problem,
        optimizer,
        model,
        steps,
        record_every,
        model.ring_for_run(buffer, steps, mitigated=mit is not None),
        fixed_init=fixed,
        record_params=bool(record_params),
        mitigation=mit,
    )
    dtype = jnp.result_type(float)
    out = jitted(spec)(
        problem.operands(dtype),
        {k: jnp.asarray(v, dtype) for k, v in hp.items()},
        jnp.asarray(seeds),
        x0,
        jnp.asarray(bound, dtype),
        model.operands(dtype),
    )
    out = jax.tree.map(lambda a: np.asarray(a)[0, 0], out)
    extra = model.trajectory_metrics(
        hp.get(model.axis), seeds, steps=steps, record_every=record_every, slots=buffer
    )
    return out._replace(metrics={**out.metrics, **extra}) if extra else out


def data_stream(problem: Problem, seed: int, steps: int) -> Any:
    """The data Y_0 … Y_{steps−1} that trajectories with ``seed`` see (as ``problem.sample`` draws it).

    For streaming PCA these are observations in the eigenbasis (X_k = Q Y_k in
    the original basis); use them to replay a trajectory outside JAX.

    Returns:
      A pytree of NumPy arrays with leading axis ``steps``.
    """
    (seed_arr,) = check_seeds(seed)
    key = _rng.stream_keys(jnp.asarray([seed_arr]), _rng.DATA_STREAM)[0]
    ks = jnp.arange(check_int(steps, "steps", minimum=1), dtype=jnp.int32)
    out = problem.sample(problem.operands(jnp.result_type(float)), key, ks)
    return jax.tree.map(np.asarray, out)


def delay_stream(
    delay_model: str | DelayModel, param: float, seed: int, steps: int, buffer: int
) -> np.ndarray:
    """The staleness τ_0 … τ_{steps−1} a trajectory with ``seed`` and delay parameter ``param`` sees.

    For the worker model ``param`` is M (and ``buffer`` is ignored: the clock
    does not depend on the slots); for a trace it is ignored.

    Returns:
      (steps,) int array.
    """
    model = get_delay_model(delay_model)
    (seed_arr,) = check_seeds(seed)
    steps = check_int(steps, "steps", minimum=1)
    return model.delay_stream(param, int(seed_arr), steps, buffer)
