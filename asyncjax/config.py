"""Sweep configuration files (TOML), shared by ``asyncjax run`` and the presets.

Example::

    [problem]
    eigenvalues = [4.0, 3.0, 2.0, 1.0]   # or: covariance = [[...], ...]
    distribution = "gaussian"            # gaussian | rademacher | uniform
    init = [0.0, 1.0, 0.0, 0.0]          # optional; default the saddle q2

    [grid]                               # lists are axes, scalars are fixed
    momentum = [0.7, 0.8, 0.9]
    delay = { start = 0, stop = 150, step = 10 }   # inclusive range
    lr = 5e-4
    seeds = 100                          # seeds 0..99 (or: seed = [list])

    [run]
    steps = 30000
    record_every = 500
    delay_model = "constant"             # constant | uniform | geometric | workers

A ``[delay]`` section sets a delay model with options instead (then the grid
carries its axis, e.g. ``workers = [1, 2, 4, 8]``)::

    [delay]
    model = "workers"                    # or "trace" (then: file = "measured.npy", repeat = false)
    law = "exponential"                  # constant | exponential | lognormal | gamma
                                         #   | halfnormal | pareto
    shape = 1.0                          # σ (lognormal), k (gamma) or α (pareto)
    straggler = 10.0                     # worker 0 this many times slower (optional)
    speeds = [1.0, 2.0, ...]             # per-worker speeds (optional; or a rule in i)
    base = "1 + sqrt(i)"                 # a job takes (base + noise_scale·X) / speed
    noise_scale = "sqrt(i + 1)"          #   (numbers, lists or rules in the worker index i)
    timeouts = 5.0                       # per-worker time-outs (grid axis timeout_scale)
    assignment = "random"                # who computes the next job: pure | random | shuffle
    download = 0.2                       # per-worker communication before and after each job:
    upload = "0.1 * (i + 1)"             #   scale · X, X of comm_law (default "constant": X = 1)
    comm_law = "exponential"             #   (comm_shape: its shape)
    uptime = 50.0                        # outages: per-worker mean up and down periods,
    downtime = 5.0                       #   outage_law exponential | constant | lognormal | gamma
    outage_mode = "paused"               #   a job in flight when its worker goes down: paused | lost
    compute_trace = "times.csv"          # measured compute times (rows = jobs, columns = workers;
                                         #   .npy or CSV): worker j's c-th job takes trace[c mod T, j]

A ``[server]`` section puts a server rule on the worker clock (its axes,
``batch`` or ``delay_threshold``, go in ``[grid]``)::

    [server]
    kind = "ringmaster"                  # asgd | rennala | msync | ringmaster | fedbuff
                                         #   | ia2sgd | malenia | ringleader
    stops = true                         # rennala, ringmaster, malenia, ringleader
    weight = "sqrt"                      # fedbuff: "sqrt" (1/sqrt(1 + tau)) or "constant"

A ``[split]`` section gives each worker its own rows of the problem's data set
(``least_squares``, ``logistic`` or ``mlp``; it needs the worker clock, and
the split is made for the grid's one ``workers`` value unless it sets
``workers`` itself)::

    [split]
    kind = "dirichlet"                   # iid | by_label | dirichlet
    alpha = 0.1                          # dirichlet: label proportions ~ Dirichlet(alpha)
    classes_per_worker = 2               # by_label: classes each worker holds
    seed = 0                             # the split's own seed (default 0)

and ``[mitigation] kind = "delay_adaptive"`` (or ``dc_asgd``, ``drop_stale``;
``target = "gradient" | "update"`` for the first) a staleness mitigation, whose
parameter (``adaptive_c``, ``dc_lambda``, ``max_staleness``) goes in ``[grid]``.
A relative trace ``file`` is read from the configuration file's folder.

Other problems and optimizers (swept values stay in ``[grid]``)::

    [problem]
    kind = "mlp"                         # streaming_pca | quadratic | least_squares | logistic
    dataset = "digits"                   #   | quartic_saddle | mlp | quadratic_form
    hidden = [32]                        #   | ringmaster_quadratic; other keys: the class's options

    [optimizer]
    kind = "optax.adam"                  # heavy_ball | nesterov | optax.<name>
    # static options of the optimizer, e.g. nesterov = true for optax.sgd

Workers with their own data: a quadratic with one optimum per worker (n rows, d
columns; a run then needs exactly n workers and the worker clock)::

    [problem]
    kind = "quadratic"
    eigenvalues = [1.0, 0.5]
    noise = 0.1
    worker_optima = [[1.0, 0.0], [-1.0, 2.0], [0.0, -2.0]]
    # worker_curvatures = [[...], ...]   # each worker's Hessian diagonal (n, d); optional

A general quadratic, banded (or ``matrix = [[...], ...]``), or the Ringmaster paper's::

    [problem]
    kind = "quadratic_form"
    d = 100
    diagonals = [0.5, -0.25]             # main diagonal, then off-diagonals: numbers or lists
    noise = 0.01
    noise_kind = "shared"                # or "independent"
    # b = [...]                          # default zeros

    [problem]                            # or the paper's (A = tridiag(-1, 2, -1)/4, b = -e_1/4)
    kind = "ringmaster_quadratic"
    d = 1729
    noise = 0.01
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asyncjax import delays, mitigations
from asyncjax._toml import TOMLError, load_toml
from asyncjax._validate import did_you_mean
from asyncjax.delays import get_delay_model
from asyncjax.engine import check_steps
from asyncjax.optim import Optimizer, get_optimizer, heavy_ball
from asyncjax.problems import Problem, StreamingPCA
from asyncjax.servers import SERVERS, get_server
from asyncjax.servers.clock import with_server
from asyncjax.simulate import allowed_axes
from asyncjax.splits import Split, get_split
from asyncjax.sweep import Grid
from asyncjax.sweep.prepare import check_grid

__all__ = ["SweepSpec", "load_config", "parse_config"]

_RUN_KEYS = {"steps", "record_every", "delay_model", "buffer", "norm_bound", "chunk_size"}
_PROBLEM_KEYS = {"kind", "eigenvalues", "covariance", "distribution", "init"}
_PROBLEM_KINDS = (
    "streaming_pca",
    "quadratic",
    "least_squares",
    "logistic",
    "quartic_saddle",
    "mlp",
    "quadratic_form",
    "ringmaster_quadratic",
)
_SECTIONS = {
    "problem",
    "grid",
    "run",
    "analysis",
    "optimizer",
    "delay",
    "mitigation",
    "server",
    "split",
}  # tables of a sweep configuration
_TOP_KEYS = {"title"}  # plain top-level keys


def _unknown(kind: str, names: set[str], known: set[str], fmt: str = "{!r}") -> str:
    """A message naming unknown keys, each with the closest known name when one is close."""
    parts = []
    for name in sorted(names):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        parts.append(
            fmt.format(name) + (f" (did you mean {fmt.format(close[0])}?)" if close else "")
        )
    return f"unknown {kind} {', '.join(parts)}; known: {', '.join(fmt.format(k) for k in sorted(known))}"


def _check_numbers(name: str, value: Any) -> None:
    """Grid values must be TOML numbers, not strings (\"1e-3\" would be read as a number silently)."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ConfigError(
                f"grid.{name} must be a number or a list of numbers, got {item!r} "
                f"({type(item).__name__}){'; remove the quotes' if isinstance(item, str) else ''}"
            )


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message says where."""


@dataclass
class SweepSpec:
    """Everything `asyncjax.sweep` needs, plus the source settings."""

    problem: Problem
    grid: Grid
    run: dict[str, Any]
    init: Any = None
    analysis: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    optimizer: Optimizer | None = None

    def sweep_kwargs(self) -> dict[str, Any]:
        out = {**self.run, "init": self.init}
        if self.optimizer is not None:
            out["optimizer"] = self.optimizer
        return out


def _axis(name: str, value: Any) -> Any:
    if isinstance(value, dict):
        keys = set(value)
        if keys == {"start", "stop", "step"}:
            start, stop, step = value["start"], value["stop"], value["step"]
            if step <= 0:
                raise ConfigError(f"grid.{name}: step must be > 0, got {step!r}")
            n = int(np.floor((stop - start) / step + 1e-9)) + 1
            return (start + step * np.arange(n)).tolist()
        if keys == {"start", "stop", "num"}:
            return np.linspace(value["start"], value["stop"], int(value["num"])).tolist()
        raise ConfigError(
            f"grid.{name}: a range needs keys start, stop and step (or num); got {sorted(keys)}"
        )
    return value


_CONDITION_KEYS = (
    "assignment",
    "download",
    "upload",
    "comm_law",
    "comm_shape",
    "uptime",
    "downtime",
    "outage_law",
    "outage_shape",
    "outage_mode",
)

_DELAY_KEYS = {
    "model",
    "law",
    "shape",
    "speeds",
    "straggler",
    "bins",
    "base",
    "noise_scale",
    "timeouts",
    *_CONDITION_KEYS,
    "compute_trace",
    "file",
    "values",
    "repeat",
}
_SERVER_OPTIONS = {
    "rennala": {"stops"},
    "ringmaster": {"stops"},
    "fedbuff": {"weight"},
    "malenia": {"stops"},
    "ringleader": {"stops"},
}
_SPLIT_OPTIONS = {
    "iid": {"seed"},
    "by_label": {"classes_per_worker", "seed"},
    "dirichlet": {"alpha", "seed"},
}
_DATA_KINDS = ("least_squares", "logistic", "mlp")  # the problems a [split] can divide


def _conditions(sec: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """The worker's conditions of a ``[delay]`` section: `workers`' keyword arguments.

    ``compute_trace`` is a file (relative to the configuration's folder) or a
    table of numbers (rows = jobs, columns = workers).
    """
    out = {k: sec[k] for k in _CONDITION_KEYS if k in sec}
    trace = sec.get("compute_trace")
    if isinstance(trace, str):
        path = Path(trace)
        trace = path if path.is_absolute() or base_dir is None else base_dir / path
    if trace is not None:
        out["trace"] = trace
    return out


def _delay_section(sec: dict[str, Any], base_dir: Path | None) -> Any:
    """The ``[delay]`` section: a delay model with options (workers, trace) or a law by name."""
    unknown = set(sec) - _DELAY_KEYS
    if unknown:
        raise ConfigError(f"[delay] has {_unknown('key(s)', unknown, _DELAY_KEYS)}")
    model = sec.get("model")
    if model == "workers":
        extra = set(sec) & {"file", "values", "repeat"}
        if extra:
            raise ConfigError(f'[delay] keys {sorted(extra)} belong to model = "trace"')
        try:
            return delays.workers(
                sec.get("law", "exponential"),
                shape=sec.get("shape", 1.0),
                speeds=sec.get("speeds"),
                straggler=sec.get("straggler", 1.0),
                bins=sec.get("bins"),
                base=sec.get("base"),
                noise_scale=sec.get("noise_scale"),
                timeouts=sec.get("timeouts"),
                **_conditions(sec, base_dir),
            )
        except ValueError as err:
            raise ConfigError(f"[delay] {err}") from err
    if model == "trace":
        worker_keys = set(sec) & {*_CONDITION_KEYS, "compute_trace"}
        if worker_keys:
            raise ConfigError(f'[delay] keys {sorted(worker_keys)} belong to model = "workers"')
        if ("file" in sec) == ("values" in sec):
            raise ConfigError('[delay] model = "trace" needs exactly one of file or values')
        values = sec.get("values")
        if "file" in sec:
            path = Path(sec["file"])
            values = path if path.is_absolute() or base_dir is None else base_dir / path
        return delays.trace(values, repeat=bool(sec.get("repeat", False)))
    others = set(sec) - {"model"}
    if others:
        raise ConfigError(f"[delay] model = {model!r} takes no options, got {sorted(others)}")
    return delays.get_delay_model(model)


def parse_config(
    cfg: dict[str, Any], source: str = "<config>", base_dir: Path | None = None
) -> SweepSpec:
    """Builds a `SweepSpec` from a parsed TOML document (a dict).

    ``base_dir`` is where relative file names (a delay trace) are read from.
    """
    try:
        tables = {k for k, v in cfg.items() if isinstance(v, dict)}
        unknown = tables - _SECTIONS
        if unknown:
            raise ConfigError(_unknown("section(s)", unknown, _SECTIONS, "[{}]"))
        unknown = set(cfg) - tables - _TOP_KEYS
        if unknown:
            raise ConfigError(_unknown("top-level key(s)", unknown, _TOP_KEYS | _SECTIONS))
        for section in ("problem", "grid", "run"):
            if section not in cfg:
                raise ConfigError(f"missing [{section}] section")
        prob = dict(cfg["problem"])
        kind = prob.get("kind", "streaming_pca")
        if kind not in _PROBLEM_KINDS:
            raise ConfigError(_unknown_value("problem.kind", kind, _PROBLEM_KINDS))
        if "split" in cfg and kind not in _DATA_KINDS:
            _split_section(dict(cfg["split"]), cfg["grid"], kind)  # refuses it, naming the kind
        if kind == "streaming_pca":
            unknown = set(prob) - _PROBLEM_KEYS
            if unknown:
                raise ConfigError(f"[problem] has {_unknown('key(s)', unknown, _PROBLEM_KEYS)}")
            dist = prob.get("distribution", "gaussian")
            if ("eigenvalues" in prob) == ("covariance" in prob):
                raise ConfigError("[problem] needs exactly one of eigenvalues or covariance")
            problem = (
                StreamingPCA(prob["eigenvalues"], dist)
                if "eigenvalues" in prob
                else StreamingPCA.from_covariance(prob["covariance"], dist)
            )
        else:
            options = {k: v for k, v in prob.items() if k not in ("kind", "init")}
            if "split" in options:
                raise ConfigError("[problem] split: describe it in a [split] section (kind = ...)")
            if "split" in cfg:
                options["split"] = _split_section(dict(cfg["split"]), cfg["grid"], kind)
            problem = build_problem(kind, options)
        optimizer = None
        if "optimizer" in cfg:
            opt = dict(cfg["optimizer"])
            if "kind" not in opt:
                raise ConfigError(
                    '[optimizer] needs kind = "heavy_ball", "nesterov" or "optax.<name>"'
                )
            optimizer = get_optimizer(opt.pop("kind"), **opt)

        run = dict(cfg["run"])
        unknown = set(run) - _RUN_KEYS
        if unknown:
            raise ConfigError(f"[run] has {_unknown('key(s)', unknown, _RUN_KEYS)}")
        if "delay" in cfg:
            if "delay_model" in run:
                raise ConfigError(
                    "set the delay model once: [run] delay_model or a [delay] section"
                )
            run["delay_model"] = _delay_section(dict(cfg["delay"]), base_dir)
        if "mitigation" in cfg:
            mit = dict(cfg["mitigation"])
            if set(mit) - {"kind", "target"} or "kind" not in mit:
                raise ConfigError(f"[mitigation] takes kind (and target), got {sorted(mit)}")
            if "target" in mit and mit["kind"] != "delay_adaptive":
                raise ConfigError('[mitigation] target applies to kind = "delay_adaptive" only')
            run["mitigation"] = (
                mitigations.delay_adaptive(mit["target"])
                if "target" in mit
                else mitigations.get_mitigation(mit["kind"])
            )
        if "server" in cfg:
            run["server"] = _server_section(dict(cfg["server"]))
        delay_model = get_delay_model(run.get("delay_model", "constant"))
        if "server" in run or getattr(delay_model, "needs_events", False):
            try:
                delay_model = with_server(delay_model, run.get("server"))
            except ValueError as err:
                raise ConfigError(f"[server] {err}") from err
        grid_keys = set(
            allowed_axes(problem, optimizer or heavy_ball(), delay_model, run.get("mitigation"))
        )
        unknown = set(cfg["grid"]) - grid_keys - {"seed", "seeds"}
        if unknown:
            raise ConfigError(
                f"[grid] has {_unknown('key(s)', unknown, grid_keys | {'seed', 'seeds'})}"
            )
        grid_cfg = {k: _axis(k, v) for k, v in cfg["grid"].items()}
        for name in set(grid_cfg) - {"seed", "seeds"}:
            _check_numbers(name, grid_cfg[name])
        if "seed" in grid_cfg:
            seed = grid_cfg["seed"]
            items = seed if isinstance(seed, list) else [seed]
            if any(isinstance(v, bool) or not isinstance(v, int) for v in items):
                raise ConfigError(
                    f"grid.seed must be an integer or a list of integers, got {seed!r}"
                )
            dup = sorted({v for v in items if items.count(v) > 1})
            if dup:
                raise ConfigError(f"grid.seed lists {dup[:5]} more than once; seeds must be unique")
        if "seeds" in grid_cfg:
            if "seed" in grid_cfg:
                raise ConfigError("[grid] sets both seeds (a count) and seed (a list); keep one")
            n = grid_cfg.pop("seeds")
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(f"grid.seeds must be a positive integer count, got {n!r}")
            grid_cfg["seed"] = range(n)
        grid = Grid(**grid_cfg)
        for key in ("steps", "record_every"):
            if key not in run:
                raise ConfigError(f"[run] needs {key}")
        try:
            check_steps(run["steps"], run["record_every"])
        except ValueError as err:
            raise ConfigError(f"[run] {err}") from err
        try:  # the grid's values, as the sweep will check them, so the message names this file
            check_grid(
                problem,
                grid,
                optimizer=optimizer,
                delay_model=run.get("delay_model", "constant"),
                mitigation=run.get("mitigation"),
                server=run.get("server"),
                buffer=run.get("buffer"),
                steps=run["steps"],
            )
        except ValueError as err:
            raise ConfigError(f"[grid] {err}") from err

        return SweepSpec(
            problem, grid, run, prob.get("init"), dict(cfg.get("analysis", {})), cfg, optimizer
        )
    except (ConfigError, ValueError, TypeError) as err:
        raise ConfigError(f"{source}: {err}") from err


def _server_section(sec: dict[str, Any]) -> Any:
    """The ``[server]`` section: a rule by ``kind`` with its options."""
    kind = sec.pop("kind", None)
    if kind is None:
        raise ConfigError(f"[server] needs kind = one of {', '.join(map(repr, SERVERS))}")
    if not isinstance(kind, str) or kind not in SERVERS:  # before its keys: a typo
        raise ConfigError(f"[server] {_unknown_value('kind', kind, tuple(SERVERS))}")
    known = _SERVER_OPTIONS.get(kind, set())
    unknown = set(sec) - known
    if unknown:
        raise ConfigError(
            f"[server] kind = {kind!r} {_unknown('key(s)', unknown, known | {'kind'})}"
        )
    try:
        return get_server(kind, **sec)
    except ValueError as err:
        raise ConfigError(f"[server] {err}") from err


def _split_section(sec: dict[str, Any], grid: dict[str, Any], problem_kind: str) -> Split:
    """The ``[split]`` section: a split by ``kind`` for the grid's number of workers."""
    if problem_kind not in _DATA_KINDS:
        raise ConfigError(
            f"[split] needs a problem with a data set ({', '.join(_DATA_KINDS)}); "
            f"problem.kind = {problem_kind!r} has none"
        )
    kind = sec.pop("kind", None)
    if kind not in _SPLIT_OPTIONS:
        raise ConfigError(
            f"[split] {_unknown_value('kind', kind, tuple(_SPLIT_OPTIONS))}"
            if kind is not None
            else '[split] needs kind = "iid", "by_label" or "dirichlet"'
        )
    workers = sec.pop("workers", None)
    known = _SPLIT_OPTIONS[kind]
    unknown = set(sec) - known
    if unknown:
        raise ConfigError(
            f"[split] kind = {kind!r} {_unknown('key(s)', unknown, known | {'kind', 'workers'})}"
        )
    if workers is None:
        workers = grid.get("workers")
        if workers is None:
            raise ConfigError(
                "[split] gives each worker its own rows, so it needs the worker clock "
                '([delay] model = "workers") and a number of workers: set [grid] workers = M '
                "(one value) or [split] workers = M"
            )
        if isinstance(workers, list):
            if len(workers) != 1:
                raise ConfigError(
                    f"[split] is made for one number of workers, but grid.workers lists "
                    f"{workers}; run one worker count per configuration (or set [split] workers)"
                )
            (workers,) = workers
        if isinstance(workers, float) and workers.is_integer():
            workers = int(workers)  # the grid accepts 16.0 for 16 workers; so does its split
    try:
        return get_split(kind, workers, **sec)
    except ValueError as err:
        raise ConfigError(f"[split] {err}") from err


def _unknown_value(what: str, value: Any, choices: Any) -> str:
    return f"{what} {value!r} is not known{did_you_mean(value, choices)}; choose one of {', '.join(choices)}"


def _dataset(name: Any):
    """A data set named in TOML: "digits" (bundled with scikit-learn)."""
    from asyncjax import datasets

    if name == "digits":
        return datasets.digits()
    raise ConfigError(_unknown_value("problem.dataset", name, ("digits",)))


def build_problem(kind: str, options: dict[str, Any]) -> Problem:
    """A problem of ``kind`` from TOML options (the class's own keyword arguments).

    ``dataset = "digits"`` supplies the data of the data-driven problems.
    """
    from asyncjax import problems as P

    cls = {
        "quadratic": "Quadratic",
        "least_squares": "LeastSquares",
        "logistic": "Logistic",
        "quartic_saddle": "QuarticSaddle",
        "mlp": "MLP",
        "quadratic_form": "QuadraticForm",
        "ringmaster_quadratic": "ringmaster_quadratic",
    }[kind]
    cls = getattr(P, cls)
    options = dict(options)
    if kind in ("least_squares", "logistic", "mlp"):
        if "dataset" not in options:
            raise ConfigError(f'[problem] kind = {kind!r} needs dataset = "digits"')
        ds = _dataset(options.pop("dataset"))
        if kind == "mlp":
            make, args = cls, (ds,)
        else:
            make, args = cls.from_dataset, (ds,)
    else:
        make, args = cls, ()
    params = inspect.signature(make).parameters
    takes = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL][
        len(args) :
    ]
    unknown = [k for k in options if k not in takes]
    if unknown:
        raise ConfigError(
            f"[problem] kind = {kind!r} has unknown key(s) {unknown}; known: "
            f"{', '.join(['kind'] + (['dataset'] if args else []) + takes)}"
        )
    options = {
        k: tuple(v) if isinstance(v, list) and k == "hidden" else v for k, v in options.items()
    }
    return make(*args, **options)


def load_config(path: str | Path) -> SweepSpec:
    """Reads and validates a TOML sweep configuration."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from err
    try:
        cfg = load_toml(text)
    except TOMLError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from err
    return parse_config(cfg, str(path), base_dir=path.parent)
