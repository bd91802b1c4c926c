"""Throughput benchmark: asyncjax against batched NumPy and a Python loop.

Unit: trajectory-steps per second (one trajectory advanced one iteration) on
the Figure-1 workload: streaming PCA, d = 4, Σ = diag(4, 3, 2, 1), η = 5e-4,
5 momenta × 16 delays (0…150) × S seeds, started at the saddle. Every timing is
the minimum of several repeats after a warm-up; asyncjax's compile time is
reported apart.

* ``asyncjax``: the sweep's compiled chunk function as ``sweep`` runs it
  (every seed meets every grid point; points sharing a seed share its data).
* ``asyncjax_independent``: one grid point and S·80 seeds, so every trajectory
  draws its own noise: the cost of not sharing the stream.
* ``numpy_batched``: eq. 5 vectorised over all trajectories with NumPy, each
  trajectory its own noise and its own (μ, τ), a ring buffer indexed with fancy
  indexing, as a user would write it; the faster of float32 and float64, with
  equal delays adjacent in memory and floating-point warnings off (both help it).
* ``python_loop``: one trajectory at a time, a Python ``for`` over steps.
* ``workers_constant``: the same grid with the worker model, M = τ + 1 workers
  with constant compute times (the same trajectories, bit for bit: round robin),
  its clock shared by the seeds of a point; ``workers_exponential``: M = τ + 1
  workers with exponential times, a clock and a gathered snapshot slot per
  trajectory. Both against ``asyncjax`` in the same run
  (``workers_*_vs_constant``); ``clock_pass_s`` is the clock-only pass a sweep
  adds for ``wall_time`` and the staleness records (once per (M, seed)), and
  ``traj_steps_per_s_with_clock`` the rate with it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asyncjax._io import write_json
from asyncjax._reference import eq5 as reference
from asyncjax.delays import clock_summary, get_delay_model, workers
from asyncjax.engine import Spec, jitted
from asyncjax.optim import heavy_ball
from asyncjax.problems import StreamingPCA
from asyncjax.sweep.devices import sharded

__all__ = ["run_benchmark"]

EIGENVALUES = (4.0, 3.0, 2.0, 1.0)
MOMENTA = (0.7, 0.8, 0.85, 0.9, 0.95)
DELAYS = tuple(range(0, 151, 10))
LR = 5e-4
BUFFER = 151


def _best_of(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _sharded_reference(cfg: Any, devices: tuple, axis: str | None):
    """The pre-engine eq. 5 simulator, compiled and split over devices like a sweep chunk."""
    if axis is None:
        return reference.jitted_batch(cfg)
    from functools import partial

    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    out_2d = P("dev", None)
    fn = jax.shard_map(
        partial(reference.simulate_batch, cfg),
        mesh=Mesh(np.array(devices), ("dev",)),
        in_specs=(P(), reference.Params(P(), P(), P()), P("dev"), P(), P()),
        out_specs=reference.Trace(out_2d, out_2d, out_2d, out_2d, None),
        check_vma=False,
    )
    return jax.jit(fn)


def _bench_asyncjax(
    n_seeds: int,
    n_hyper_points: int,
    steps: int,
    repeats: int,
    shared: bool,
    engine: str = "engine",
    law: str | None = None,
) -> dict[str, Any]:
    """``law``: None for constant delays, else the worker model's compute-time law with M = τ + 1."""
    problem = StreamingPCA(EIGENVALUES)
    mu, tau = np.meshgrid(MOMENTA, DELAYS, indexing="ij")
    model = get_delay_model("constant") if law is None else workers(law)
    if law is not None:
        hyper = {"momentum": mu.ravel(), "lr": np.full(mu.size, LR), "workers": tau.ravel() + 1.0}
        seeds = np.arange(n_seeds)
    elif shared:
        hyper = {"momentum": mu.ravel(), "lr": np.full(mu.size, LR), "delay": tau.ravel()}
        seeds = np.arange(n_seeds)
    else:  # one point, every trajectory its own seed
        hyper = {"momentum": np.array([0.9]), "lr": np.array([LR]), "delay": np.array([80.0])}
        seeds = np.arange(n_seeds * n_hyper_points)
    devices = tuple(jax.local_devices())
    axis = "seed" if len(devices) > 1 and seeds.size % len(devices) == 0 else None
    ops = problem.operands()
    dtype = ops.scale.dtype
    x0 = jnp.asarray(problem.default_init(), dtype)
    if engine == "engine":
        spec = Spec(problem, heavy_ball(), model, steps, steps // 10, BUFFER)
        fn = sharded(spec, devices if axis else devices[:1], axis)
        args = (
            ops,
            {k: jnp.asarray(v, dtype) for k, v in hyper.items()},
            jnp.asarray(seeds, jnp.int32),
            x0,
            jnp.asarray(1e3, dtype),
            None,  # delay operands (a trace's values)
            None,  # groups of points sharing a clock (server clocks only)
        )
    else:
        cfg = reference.SimConfig(
            "gaussian", steps, steps // 10, BUFFER, get_delay_model("constant")
        )
        fn = _sharded_reference(cfg, devices if axis else devices[:1], axis)
        params = reference.Params(
            *(jnp.asarray(hyper[k], dtype) for k in ("momentum", "lr", "delay"))
        )
        args = (ops, params, jnp.asarray(seeds, jnp.int32), x0, jnp.asarray(1e3, dtype))
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t
    best = _best_of(lambda: jax.block_until_ready(fn(*args)), repeats)
    n_traj = seeds.size * hyper["momentum"].size
    out = {
        "trajectories": int(n_traj),
        "steps": steps,
        "seconds": best,
        "traj_steps_per_s": n_traj * steps / best,
        "compile_s": max(first - best, 0.0),
        "devices": len(devices) if axis else 1,
    }
    if (
        law is not None
    ):  # a sweep also runs the clock alone once per (M, seed) for wall_time and staleness
        ms = np.unique(hyper["workers"])
        clock_summary(model, ms, seeds, steps=steps, record_every=steps // 10, slots=BUFFER)
        clock_s = _best_of(
            lambda: clock_summary(
                model, ms, seeds, steps=steps, record_every=steps // 10, slots=BUFFER
            ),
            repeats,
        )
        out.update(
            clock_pass_s=clock_s, traj_steps_per_s_with_clock=n_traj * steps / (best + clock_s)
        )
    return out


def _bench_mlp(quick: bool, repeats: int) -> dict[str, Any]:
    """An MLP on digits, batched, against the same trajectories one at a time.

    Workload: MLP(digits, hidden=(32,), batch 32), heavy ball at η = 0.05,
    5 momenta × 8 constant delays (0…7) × 32 seeds = 1280 trajectories, records
    every quarter of the run. The baseline runs trajectories of the same grid one
    at a time through the same engine compiled for a batch of one (a jitted
    single-trajectory scan), which is how one would loop over a grid without
    vmap; its rate is measured on a sample of them.
    """
    from asyncjax import datasets
    from asyncjax.problems import MLP

    problem = MLP(datasets.digits())
    steps = 100 if quick else 400
    momenta, delays, n_seeds = (0.0, 0.5, 0.7, 0.9, 0.95), tuple(range(8)), 32
    spec = Spec(
        problem, heavy_ball(), get_delay_model("constant"), steps, steps // 4, 8, fixed_init=False
    )
    ops = problem.operands()
    dtype = jnp.result_type(float)
    mu, tau = np.meshgrid(momenta, delays, indexing="ij")
    hyper = {
        "momentum": jnp.asarray(mu.ravel(), dtype),
        "lr": jnp.full(mu.size, 0.05, dtype),
        "delay": jnp.asarray(tau.ravel(), dtype),
    }
    devices = tuple(jax.local_devices())
    axis = "seed" if len(devices) > 1 and n_seeds % len(devices) == 0 else None
    fn = sharded(spec, devices if axis else devices[:1], axis)
    args = (ops, hyper, jnp.arange(n_seeds, dtype=jnp.int32), None, jnp.asarray(1e3, dtype))
    args += (None, None)  # no delay operands, no groups of points sharing a clock
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t
    best = _best_of(lambda: jax.block_until_ready(fn(*args)), repeats)
    n_traj = n_seeds * mu.size
    batched = n_traj * steps / best

    single = jitted(spec)  # the same engine, compiled for one trajectory
    sample = [(m, d, s) for m, d, s in zip((0.9, 0.5, 0.7, 0.0), (7, 3, 0, 5), (0, 1, 2, 3))]

    def one_by_one() -> None:
        for m, d, s in sample:
            hp = {
                "momentum": jnp.asarray([m], dtype),
                "lr": jnp.asarray([0.05], dtype),
                "delay": jnp.asarray([d], dtype),
            }
            jax.block_until_ready(
                single(ops, hp, jnp.asarray([s], jnp.int32), None, jnp.asarray(1e3, dtype), None)
            )

    one_by_one()  # compile
    single_best = _best_of(one_by_one, repeats)
    one_rate = len(sample) * steps / single_best
    return {
        "trajectories": n_traj,
        "steps": steps,
        "parameters": problem.n_params,
        "batched_traj_steps_per_s": batched,
        "one_at_a_time_traj_steps_per_s": one_rate,
        "batched_vs_one_at_a_time": batched / one_rate,
        "compile_s": max(first - best, 0.0),
        "one_at_a_time_sample": len(sample),
        "devices": len(devices) if axis else 1,
    }


# Peak memory bandwidth (bytes/s) of accelerators by JAX's device_kind, from the vendors' data sheets.
PEAK_BANDWIDTH = {
    "NVIDIA H200": 4.8e12,
    "NVIDIA H100 80GB HBM3": 3.35e12,
    "NVIDIA H100 PCIe": 2.0e12,
    "NVIDIA A100-SXM4-80GB": 2.039e12,
    "NVIDIA A100-SXM4-40GB": 1.555e12,
    "NVIDIA A100-PCIE-40GB": 1.555e12,
    "NVIDIA L4": 3.0e11,
    "Tesla V100-SXM2-16GB": 9.0e11,
    "Tesla T4": 3.2e11,
}
ACCELERATOR_SIZES = (10_000, 100_000, 1_000_000)


def step_bytes(problem: Any = None) -> int:
    """Bytes one trajectory-step must move at least: the stale point read from the ring, the new read
    point written to it, and the parameters and optimizer state read and written (eq. 5, float32)."""
    from asyncjax.sweep.memory import shapes

    problem = problem or StreamingPCA(EIGENVALUES)
    sh = shapes(
        problem,
        heavy_ball(),
        {"momentum": 0, "lr": 0, "delay": 0},
        problem.default_init(),
        True,
        working_set=False,
    )
    return 2 * sh.read_bytes + 2 * (sh.param_bytes + sh.opt_bytes)


def _bench_accelerator(quick: bool, repeats: int) -> list[dict[str, Any]]:
    """Trajectory-steps/s at 10⁴–10⁶ trajectories on the local accelerators, and the roofline fraction.

    The Fig. 1 grid (5 momenta × 16 delays) with as many seeds as the size
    needs, every chunk split over the local devices. The fraction is the
    bytes a step must move (`step_bytes`) times the rate, over the
    devices' peak memory bandwidth (``PEAK_BANDWIDTH``; None for an unknown
    kind).
    """
    n_points = len(MOMENTA) * len(DELAYS)
    steps = 200 if quick else 2000
    kind = jax.devices()[0].device_kind
    peak = PEAK_BANDWIDTH.get(kind)
    moved = step_bytes()
    out = []
    for n in ACCELERATOR_SIZES:
        n_dev = len(jax.local_devices())
        seeds = max(n_dev, -(-n // n_points // n_dev) * n_dev)
        r = _bench_asyncjax(seeds, n_points, steps, repeats, shared=True)
        bandwidth = r["traj_steps_per_s"] * moved
        r.update(
            bytes_per_traj_step=moved,
            bandwidth_bytes_per_s=bandwidth,
            roofline_fraction=None if peak is None else bandwidth / (peak * r["devices"]),
        )
        out.append(r)
    return out


def _numpy_run_fn(n_traj: int, dtype: Any, rng: np.random.Generator) -> Callable[[int], None]:
    """Batched NumPy eq. 5, started afresh from the saddle at every call.

    Trajectories are sorted by delay (equal delays adjacent), which makes
    the fancy-indexed buffer read cache-friendly; floating-point warnings from
    diverging trajectories are switched off. Both help NumPy.
    """
    d = len(EIGENVALUES)
    scale = np.sqrt(np.asarray(EIGENVALUES, dtype))
    # All trajectories of one delay form one contiguous block.
    tau = np.sort(np.resize(np.asarray(DELAYS), n_traj))
    mu = np.resize(np.asarray(MOMENTA, dtype), n_traj)[:, None]
    lr = dtype(LR)
    rows = np.arange(n_traj)

    def run(steps: int) -> None:
        v = np.zeros((n_traj, d), dtype)
        v[:, 1] = 1.0
        v_prev, buf = v.copy(), np.broadcast_to(v, (BUFFER, n_traj, d)).copy()
        with np.errstate(all="ignore"):
            for k in range(steps):
                x = rng.standard_normal((n_traj, d), dtype=dtype) * scale
                v_s = buf[(k - tau) % BUFFER, rows]
                s = np.einsum("bi,bi->b", x, v_s)[:, None]
                v_new = v + mu * (v - v_prev) + lr * (s * x - s * s * v_s)
                v_prev, v = v, v_new
                buf[(k + 1) % BUFFER] = v_new

    return run


def _bench_numpy(n_traj: int, steps: int, repeats: int) -> dict[str, Any]:
    per_dtype = {}
    for dtype in (np.float32, np.float64):
        run = _numpy_run_fn(n_traj, dtype, np.random.default_rng(0))
        run(5)  # warm-up
        best = _best_of(lambda run=run: run(steps), repeats)
        per_dtype[np.dtype(dtype).name] = n_traj * steps / best
    name = max(per_dtype, key=per_dtype.get)
    return {
        "trajectories": n_traj,
        "steps": steps,
        "traj_steps_per_s": per_dtype[name],
        "dtype": name,
        "per_dtype": per_dtype,
    }


def _bench_python_loop(steps: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    scale = np.sqrt(np.asarray(EIGENVALUES))
    mu, tau = 0.9, 20  # inside the stability region, so nothing overflows

    def run() -> None:
        v = np.array([0.0, 1.0, 0.0, 0.0])
        hist = [v] * (tau + 1)  # v_{-tau} … v_0, all equal to v_0
        v_prev = v
        for _ in range(steps):
            x = rng.standard_normal(4) * scale
            v_s = hist[-1 - tau]
            s = x @ v_s
            v_new = v + mu * (v - v_prev) + LR * (s * x - s * s * v_s)
            v_prev, v = v, v_new
            hist.append(v_new)
            if len(hist) > tau + 1:
                hist.pop(0)

    run()
    best = _best_of(run, repeats)
    return {"trajectories": 1, "steps": steps, "traj_steps_per_s": steps / best}


def run_benchmark(
    quick: bool = False, json_path: str | None = None, log: Callable[[str], None] = print
) -> dict:
    """Measures all four and returns (and optionally writes) the figures."""
    n_seeds = 20 if quick else 100
    n_points = len(MOMENTA) * len(DELAYS)
    size = {
        "asyncjax_steps": 1000 if quick else 5000,
        "numpy_steps": 100 if quick else 400,
        "loop_steps": 5000 if quick else 20000,
        "repeats": 3 if quick else 5,
    }
    log(
        f"workload: streaming PCA d=4, {len(MOMENTA)} momenta x {len(DELAYS)} delays x {n_seeds} seeds "
        f"= {n_seeds * n_points} trajectories; devices: {jax.local_devices()}"
    )
    out: dict[str, Any] = {
        "workload": {
            "problem": "streaming_pca",
            "eigenvalues": EIGENVALUES,
            "lr": LR,
            "momenta": MOMENTA,
            "delays": DELAYS,
            "seeds": n_seeds,
            "buffer": BUFFER,
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind,
            "devices": len(jax.local_devices()),
        },
        "device_kind": jax.devices()[0].device_kind,
        "quick": quick,
    }
    res = {}
    if jax.default_backend() != "cpu":
        res["accelerator"] = _bench_accelerator(quick, size["repeats"])
        for r in res["accelerator"]:
            frac = r["roofline_fraction"]
            log(
                f"{out['device_kind']}: {r['trajectories']:,} trajectories, {r['traj_steps_per_s']:.3g} traj-steps/s"
                f" on {r['devices']} device(s); memory-bandwidth roofline fraction "
                f"{'unknown (no peak for this kind)' if frac is None else f'{frac:.3f}'}"
            )
    res["asyncjax"] = _bench_asyncjax(
        n_seeds, n_points, size["asyncjax_steps"], size["repeats"], shared=True
    )
    log(
        f"asyncjax (shared stream per seed): {res['asyncjax']['traj_steps_per_s']:.3g} traj-steps/s "
        f"(compile {res['asyncjax']['compile_s']:.2f} s)"
    )
    res["eq5_reference"] = _bench_asyncjax(
        n_seeds, n_points, size["asyncjax_steps"], size["repeats"], shared=True, engine="reference"
    )
    log(
        f"pre-engine eq. 5 simulator, same workload: {res['eq5_reference']['traj_steps_per_s']:.3g} traj-steps/s"
    )
    for law in ("constant", "exponential"):
        key = f"workers_{law}"
        res[key] = _bench_asyncjax(
            n_seeds, n_points, size["asyncjax_steps"], size["repeats"], shared=True, law=law
        )
        log(
            f"worker model, M = tau + 1, {law} compute times: {res[key]['traj_steps_per_s']:.3g} traj-steps/s "
            f"({res[key]['traj_steps_per_s'] / res['asyncjax']['traj_steps_per_s']:.2f}x constant delay); "
            f"with the clock records {res[key]['traj_steps_per_s_with_clock']:.3g}"
        )
    res["asyncjax_independent"] = _bench_asyncjax(
        n_seeds, n_points, size["asyncjax_steps"], size["repeats"], shared=False
    )
    log(
        f"asyncjax (own noise per trajectory): {res['asyncjax_independent']['traj_steps_per_s']:.3g} traj-steps/s"
    )
    res["numpy_batched"] = _bench_numpy(
        n_seeds * n_points, size["numpy_steps"], max(2, size["repeats"] - 2)
    )
    log(
        f"numpy batched ({res['numpy_batched']['dtype']}): {res['numpy_batched']['traj_steps_per_s']:.3g} traj-steps/s"
    )
    res["python_loop"] = _bench_python_loop(size["loop_steps"], max(2, size["repeats"] - 2))
    log(f"python loop: {res['python_loop']['traj_steps_per_s']:.3g} traj-steps/s")
    try:
        res["mlp_digits"] = _bench_mlp(quick, max(2, size["repeats"] - 2))
    except ImportError as err:  # scikit-learn (the digits data) is an extra
        log(f"mlp workload skipped: {err}")
    else:
        m = res["mlp_digits"]
        log(
            f"mlp on digits ({m['parameters']} parameters, {m['trajectories']} trajectories): batched "
            f"{m['batched_traj_steps_per_s']:.3g} traj-steps/s, one at a time {m['one_at_a_time_traj_steps_per_s']:.3g} "
            f"({m['batched_vs_one_at_a_time']:.1f}x)"
        )
    np_rate, loop_rate = (
        res["numpy_batched"]["traj_steps_per_s"],
        res["python_loop"]["traj_steps_per_s"],
    )
    out["results"] = res
    out["speedup"] = {
        "asyncjax_vs_numpy": res["asyncjax"]["traj_steps_per_s"] / np_rate,
        "engine_vs_eq5_reference": res["asyncjax"]["traj_steps_per_s"]
        / res["eq5_reference"]["traj_steps_per_s"],
        "asyncjax_vs_python_loop": res["asyncjax"]["traj_steps_per_s"] / loop_rate,
        "asyncjax_independent_vs_numpy": res["asyncjax_independent"]["traj_steps_per_s"] / np_rate,
        "asyncjax_independent_vs_python_loop": res["asyncjax_independent"]["traj_steps_per_s"]
        / loop_rate,
        "workers_constant_vs_constant": res["workers_constant"]["traj_steps_per_s"]
        / res["asyncjax"]["traj_steps_per_s"],
        "workers_exponential_vs_constant": res["workers_exponential"]["traj_steps_per_s"]
        / res["asyncjax"]["traj_steps_per_s"],
    }
    for k, v in out["speedup"].items():
        log(f"{k}: {v:.1f}x")
    if json_path:
        write_json(json_path, out)
        log(f"wrote {json_path}")
    return out


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run_benchmark(quick=True), indent=1))
