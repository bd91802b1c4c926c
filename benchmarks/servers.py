"""What an arrival costs under each server rule, against the plain clock and a one-trajectory loop.

    python benchmarks/servers.py [--d 4 100 1729] [--seeds 512] [--workers 64] [--json FILE]

For each dimension d, on the Ringmaster paper's quadratic (tridiagonal A, one shared scalar noise;
compute times 1 + √i + √(i+1)·|z|) with n workers and S seeds:

1. trajectory-arrivals per second of the plain worker clock (no server: every arrival applied)
   and of every rule (asgd, rennala B = 6, msync B = 6, ringmaster R = 6, fedbuff B = 6), the
   compiled sweep timed on its second run (no compile), and each rule's cost per arrival
   relative to the plain clock;
2. the same for a single-trajectory heap-and-NumPy event loop written the way the public code
   writes its own (`event_loop_baseline.py`), in the same run, and the ratio;
3. what bounds the engine: per arrival it draws normals (the job's time, the noise; n more per
   event for rules that stop workers), computes the gradient (≈ 5d flops) and moves the stored
   point (2 × 4d bytes); each against this CPU's measured rate for that resource (normals from
   asyncjax's counter-based generator, a large float32 copy, a float32 matrix product).
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from asyncjax import use_cpu_cores

use_cpu_cores()  # before JAX touches a device

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import asyncjax as aj  # noqa: E402
from asyncjax import rng  # noqa: E402
from asyncjax._io import write_json  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import event_loop_baseline as baseline  # noqa: E402

RULES = {
    "plain clock": (None, {}),
    "asgd": (aj.servers.asgd(), {}),
    "rennala": (aj.servers.rennala(), {"batch": 6}),
    "msync": (aj.servers.msync(), {"batch": 6}),
    "ringmaster": (aj.servers.ringmaster(), {"delay_threshold": 6}),
    "fedbuff": (aj.servers.fedbuff(), {"batch": 6}),
}
STEPS = {"plain clock": 1e-3, "asgd": 1e-3, "fedbuff": 1e-3, "rennala": 0.25, "msync": 0.25}


def problem(d: int):
    return aj.problems.ringmaster_quadratic(d=d, noise=0.01)


def engine_rate(d: int, rule: str, seeds: int, workers: int, events: int) -> float:
    """Trajectory-arrivals per second of one compiled sweep, second run (no compile)."""
    server, hp = RULES[rule]
    clock = aj.delays.workers("halfnormal", base="1 + sqrt(i)", noise_scale="sqrt(i + 1)")
    grid = aj.Grid(lr=STEPS.get(rule, 0.25), momentum=0.0, workers=workers, seed=range(seeds), **hp)
    kw = dict(delay_model=clock, server=server, steps=events, record_every=events, progress=False)
    aj.sweep(problem(d), grid, **kw)
    start = time.perf_counter()
    aj.sweep(problem(d), grid, **kw)
    return seeds * events / (time.perf_counter() - start)


def cpu_limits() -> dict:
    """This CPU's measured rates: normals/s, copy bytes/s, float32 flops/s (all cores)."""
    normals = jax.jit(
        lambda k: rng.normals(k, jnp.arange(1 << 22, dtype=jnp.int32), 1, jnp.float32)
    )
    key = jnp.zeros(2, jnp.uint32)
    normals(key).block_until_ready()
    t = time.perf_counter()
    normals(key).block_until_ready()
    n_rate = (1 << 22) / (time.perf_counter() - t)
    a = jnp.ones(1 << 26, jnp.float32)
    copy = jax.jit(lambda x: x * 1.0001)
    copy(a).block_until_ready()
    t = time.perf_counter()
    copy(a).block_until_ready()
    b_rate = 2 * a.nbytes / (time.perf_counter() - t)
    m = jnp.ones((2048, 2048), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    mm(m).block_until_ready()
    t = time.perf_counter()
    mm(m).block_until_ready()
    f_rate = 2 * 2048**3 / (time.perf_counter() - t)
    return {"normals_per_s": n_rate, "bytes_per_s": b_rate, "flops_per_s": f_rate}


def bounds(rate: float, d: int, workers: int, stops: bool, limits: dict) -> dict:
    """Each resource's use per second at ``rate`` arrivals/s, as a fraction of the CPU's limit."""
    normals = 2 + (workers if stops else 0)
    return {
        "normals": rate * normals / limits["normals_per_s"],
        "bytes": rate * 8 * d / limits["bytes_per_s"],
        "flops": rate * 5 * d / limits["flops_per_s"],
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--d", type=int, nargs="+", default=[4, 100, 1729])
    p.add_argument("--seeds", type=int, default=512)
    p.add_argument("--workers", type=int, default=64)
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--baseline-arrivals", type=int, default=20_000)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    limits = cpu_limits()
    print(
        f"CPU limits: {limits['normals_per_s']:.3g} normals/s, {limits['bytes_per_s']:.3g} B/s, "
        f"{limits['flops_per_s']:.3g} flop/s"
    )
    rows = []
    for d in args.d:
        plain = None
        for rule in RULES:
            rate = engine_rate(d, rule, args.seeds, args.workers, args.events)
            plain = rate if rule == "plain clock" else plain
            row = {"d": d, "rule": rule, "arrivals_per_s": rate, "cost_vs_plain": plain / rate}
            if rule in ("asgd", "rennala", "ringmaster"):
                ref = baseline.measure(
                    rule, d, workers=args.workers, arrivals=args.baseline_arrivals, repeats=2
                )
                row["baseline_arrivals_per_s"] = ref["arrivals_per_s"]
                row["speedup_vs_baseline"] = rate / ref["arrivals_per_s"]
            stops = rule in ("rennala", "msync", "ringmaster")
            row["fraction_of_limit"] = bounds(rate, d, args.workers, stops, limits)
            rows.append(row)
            extra = (
                f"  baseline {row['baseline_arrivals_per_s']:.3g}/s ×{row['speedup_vs_baseline']:.0f}"
                if "speedup_vs_baseline" in row
                else ""
            )
            frac = row["fraction_of_limit"]
            print(
                f"d={d:5d} {rule:12s} {rate:10.3g} arrivals/s  cost {row['cost_vs_plain']:.2f}× plain"
                f"{extra}  [normals {frac['normals']:.0%}, bytes {frac['bytes']:.0%}, "
                f"flops {frac['flops']:.1%}]"
            )
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {jax.device_count()} CPU device(s)",
        "jax": jax.__version__,
        "seeds": args.seeds,
        "workers": args.workers,
        "events": args.events,
        "cpu_limits": limits,
        "rows": rows,
    }
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    print(json.dumps(main()["rows"][:1], indent=1)[:0])
