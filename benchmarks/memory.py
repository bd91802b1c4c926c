"""Memory per trajectory: XLA's own analysis beside what the ring and state strictly need.

    python benchmarks/memory.py [--json FILE] [--no-run]

1. The Fig. 1 workload (streaming PCA d = 4, 5 momenta × delays 0…150 step 5 ×
   100 seeds, 30 000 steps, records every 250) and a 10× larger one (1 000 seeds),
   compiled as one chunk with one ring of 151 read points:
   ``bytes_per_trajectory_measured`` (temporaries + arguments + outputs of the
   compiled executable, as ``compiled.memory_analysis()`` reports them, over the
   trajectories of the chunk), ``bytes_per_trajectory_needed`` (ring, parameters,
   optimizer state, read point, flags, records and final parameters, each once)
   and ``bytes_per_trajectory_planned`` (the planner's accounting).
2. Rings per bucket on Fig. 1: every trajectory at once with one ring against one
   ring per bucket (planned and measured), and, unless ``--no-run``, both sweeps
   run in full: the peak of each (the largest chunk, XLA's analysis) and whether
   the results agree bit for bit.
3. The largest number of Fig. 1 trajectories (τ ≤ 150, records every 250 steps)
   that fit in 80 GB (8e10 bytes) by the planner's accounting, with one ring and
   with the Fig. 1 delay grid in buckets.

Compiles only (no device memory is allocated for the analysis), so it runs on a
CPU as on an accelerator; the figures are per device kind.
"""

import argparse
import platform
from importlib import resources

import tomllib

from asyncjax import use_cpu_cores

use_cpu_cores()  # before JAX touches a device

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import asyncjax as aj  # noqa: E402
from asyncjax._io import write_json  # noqa: E402
from asyncjax.config import parse_config  # noqa: E402
from asyncjax.engine import jitted  # noqa: E402
from asyncjax.simulate import start_of  # noqa: E402
from asyncjax.sweep.memory import chunk_shared_bytes, fit_count, trajectory_bytes  # noqa: E402

MEMORY = 80e9  # bytes of the device the capacity question asks about


def fig1(seeds: int | None = None):
    """The Fig. 1 preset's sweep (full size; ``seeds`` to change the seed count)."""
    cfg = tomllib.loads(
        resources.files("asyncjax.experiments").joinpath("liu2018-fig1.toml").read_text()
    )
    cfg.pop("quick")
    if seeds is not None:
        cfg["grid"]["seeds"] = seeds
    return parse_config(cfg, "liu2018-fig1")


def measured_bytes(spec: aj.Spec, n_seeds: int, n_points: int, problem) -> int:
    """Bytes of one compiled chunk of n_seeds × n_points trajectories, as XLA's memory analysis reports them."""
    dtype = jnp.result_type(float)
    hp = {k: jax.ShapeDtypeStruct((n_points,), dtype) for k in ("momentum", "lr", "delay")}
    x0 = jnp.asarray(start_of(problem, None)[1], dtype)
    m = (
        jitted(spec)
        .lower(
            problem.operands(dtype),
            hp,
            jax.ShapeDtypeStruct((n_seeds,), jnp.int32),
            x0,
            jnp.asarray(1.0, dtype),
            None,
        )
        .compile()
        .memory_analysis()
    )
    return int(
        m.temp_size_in_bytes
        + m.argument_size_in_bytes
        + m.output_size_in_bytes
        - m.alias_size_in_bytes
    )


def per_trajectory(cfg) -> dict:
    plan = aj.sweep_plan(cfg.problem, cfg.grid, buckets=1, chunk_size=10**9, **cfg.sweep_kwargs())
    (b,) = plan.buckets
    s, h = plan.n_seeds, plan.n_points
    measured = measured_bytes(b.spec, s, h, cfg.problem)
    out = {
        "trajectories": s * h,
        "buffer": b.spec.buffer,
        "records": b.spec.n_records,
        "bytes_per_trajectory_measured": measured / (s * h),
        "bytes_per_trajectory_needed": b.bytes_needed,
        "bytes_per_trajectory_planned": b.bytes_per_trajectory,
        "chunk_bytes_measured": measured,
        "chunk_bytes_planned": b.peak_bytes,
    }
    out["measured_over_needed"] = out["bytes_per_trajectory_measured"] / b.bytes_needed
    out["planned_over_measured"] = b.peak_bytes / measured
    print(
        f"{s * h:>9,} trajectories: measured {out['bytes_per_trajectory_measured']:,.0f} B/trajectory, needed "
        f"{b.bytes_needed:,} ({out['measured_over_needed']:.3f}x), planned {b.bytes_per_trajectory:,} "
        f"(chunk planned/measured {out['planned_over_measured']:.3f})",
        flush=True,
    )
    return out


def buckets(cfg, run: bool) -> dict:
    kw = cfg.sweep_kwargs()
    one = aj.sweep_plan(cfg.problem, cfg.grid, buckets=1, **kw)
    many = aj.sweep_plan(cfg.problem, cfg.grid, buckets=6, **kw)
    s = many.n_seeds
    measured_one = measured_bytes(one.buckets[0].spec, s, one.n_points, cfg.problem)
    measured_many = sum(measured_bytes(b.spec, s, b.points.size, cfg.problem) for b in many.buckets)
    out = {
        "rings": [b.spec.buffer for b in many.buckets],
        "points_per_ring": [int(b.points.size) for b in many.buckets],
        "resident_bytes_planned_one_ring": one.resident_bytes,
        "resident_bytes_planned_buckets": many.resident_bytes,
        "resident_bytes_measured_one_ring": measured_one,
        "resident_bytes_measured_buckets": measured_many,
        "resident_ratio_planned": many.resident_bytes / one.resident_bytes,
        "resident_ratio_measured": measured_many / measured_one,
    }
    print(
        f"rings {out['rings']}: every trajectory at once {out['resident_ratio_measured']:.3f}x one ring "
        f"(measured; planned {out['resident_ratio_planned']:.3f}x)",
        flush=True,
    )
    if run:
        a = aj.sweep(cfg.problem, cfg.grid, buckets=1, **kw)
        b = aj.sweep(cfg.problem, cfg.grid, buckets=6, **kw)
        same = all(np.array_equal(a[k], b[k], equal_nan=True) for k in a.data)
        ta, tb = a.attrs["timing"], b.attrs["timing"]
        out.update(
            {
                "sweep_peak_bytes_measured_one_ring": ta["peak_bytes_measured"],
                "sweep_peak_bytes_measured_buckets": tb["peak_bytes_measured"],
                "sweep_peak_ratio": tb["peak_bytes_measured"] / ta["peak_bytes_measured"],
                "sweep_peak_bytes_planned_one_ring": ta["peak_bytes_planned"],
                "sweep_peak_bytes_planned_buckets": tb["peak_bytes_planned"],
                "sweep_wall_s_one_ring": ta["wall_s"],
                "sweep_wall_s_buckets": tb["wall_s"],
                "bit_identical": bool(same),
            }
        )
        print(
            f"full Fig. 1 sweep: peak {ta['peak_bytes_measured'] / 2**20:.1f} MiB with one ring, "
            f"{tb['peak_bytes_measured'] / 2**20:.1f} MiB in buckets ({out['sweep_peak_ratio']:.3f}x), "
            f"bit-identical: {same}; {ta['wall_s']:.1f} s vs {tb['wall_s']:.1f} s",
            flush=True,
        )
    return out


def capacity(cfg) -> dict:
    """Fig. 1 trajectories (τ ≤ 150, records every 250 steps) that fit in 80 GB by the planner's accounting."""
    kw = cfg.sweep_kwargs()
    one = aj.sweep_plan(cfg.problem, cfg.grid, buckets=1, **kw)
    many = aj.sweep_plan(cfg.problem, cfg.grid, buckets=6, **kw)
    b = one.buckets[0]
    per_one = b.bytes_per_trajectory
    per_many = many.resident_bytes / (many.n_seeds * many.n_points)
    shared = chunk_shared_bytes(b.spec, one.sizes, 10**6)  # operands and pre-drawn data (capped)
    out = {
        "memory_bytes": MEMORY,
        "bytes_per_trajectory_one_ring": per_one,
        "bytes_per_trajectory_buckets_mean": per_many,
        "trajectories_one_ring": fit_count(per_one, MEMORY, shared),
        "trajectories_buckets": fit_count(per_many, MEMORY, shared),
        "strict_bytes_per_trajectory": trajectory_bytes(b.spec, one.sizes, strict=True),
    }
    print(
        f"in 80 GB: {out['trajectories_one_ring']:,} trajectories with one ring of 151, "
        f"{out['trajectories_buckets']:,} with the Fig. 1 delays in buckets",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument(
        "--no-run", action="store_true", help="compile only: skip the two full Fig. 1 sweeps"
    )
    args = ap.parse_args()
    dev = jax.devices()[0]
    cfg = fig1()
    result = {
        "device": {
            "platform": dev.platform,
            "kind": getattr(dev, "device_kind", dev.platform),
            "count": jax.device_count(),
            "cpu": platform.processor() or platform.machine(),
        },
        "jax_version": jax.__version__,
        "fig1": per_trajectory(cfg),
        "fig1_x10": per_trajectory(fig1(seeds=1000)),
        "fig1_buckets": buckets(cfg, run=not args.no_run),
        "fig1_capacity_80GB": capacity(cfg),
        "notes": "measured = XLA's memory_analysis() of the compiled chunk (temp + arguments + outputs - aliased), "
        "divided by its trajectories; needed = ring + parameters + optimizer state + read point + flags "
        "+ records + final parameters; planned = asyncjax.sweep.memory's accounting (needed + the scan's copy "
        "of the carry + one gradient's and one metrics evaluation's temporaries).",
    }
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
