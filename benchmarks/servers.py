"""What an arrival costs under each server rule, against the plain clock and a one-trajectory loop.

    python benchmarks/servers.py [--d 4 100 1729] [--seeds 512] [--workers 64] [--repeats 3]
        [--json FILE]

For each dimension d, on the Ringmaster paper's quadratic (tridiagonal A, one shared scalar noise;
compute times 1 + √i + √(i+1)·|z|) with n workers and S seeds:

1. the cost of one trajectory-arrival of the plain worker clock (no server: every arrival
   applied) and of every rule (asgd, rennala B = 6, msync B = 6, ringmaster R = 6, fedbuff
   B = 6): each compiled sweep is run once to compile, then ``--repeats`` times, the rules taking
   turns, and the fastest run of each counts. The host is shared, so a rule's cost relative to
   the plain clock and to asgd is taken from CPU time (both XLA CPU devices' threads), which
   other jobs disturb less than wall time; trajectory-arrivals per second are wall time;
2. the same for a single-trajectory heap-and-NumPy event loop written the way the public code
   writes its own (`event_loop_baseline.py`), in the same run, and the ratio;
3. what bounds the engine: per arrival it draws normals (the job's time and the noise, plus the
   restarted workers' times for rules that stop workers: counted here as the values the clock's
   restart pools actually drew, beside the restarts themselves), computes the gradient
   (≈ 5d flops) and moves the stored point in and out of a store beyond the caches (2 × 4d
   bytes); each against this CPU's measured rate
   for that resource, every XLA device at once (normals from asyncjax's counter-based generator,
   passes over a float32 array far beyond the caches, a float32 matrix product).
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
from asyncjax import _rng, rng  # noqa: E402
from asyncjax._io import write_json  # noqa: E402
from asyncjax.servers.clock import attach  # noqa: E402

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
CLOCK = dict(law="halfnormal", base="1 + sqrt(i)", noise_scale="sqrt(i + 1)")


def problem(d: int):
    return aj.problems.ringmaster_quadratic(d=d, noise=0.01)


def engine_runs(d: int, seeds: int, workers: int, events: int) -> dict:
    """rule -> a function running its sweep once (compiled by a first call here)."""
    runs = {}
    for rule, (server, hp) in RULES.items():
        grid = aj.Grid(
            lr=STEPS.get(rule, 0.25), momentum=0.0, workers=workers, seed=range(seeds), **hp
        )
        kw = dict(
            delay_model=aj.delays.workers(**CLOCK),
            server=server,
            steps=events,
            record_every=events,
            progress=False,
        )
        runs[rule] = lambda grid=grid, kw=kw: aj.sweep(problem(d), grid, **kw)
        runs[rule]()  # compile
    return runs


def best_times(runs: dict, repeats: int) -> dict:
    """rule -> (wall s, CPU s) of its fastest run, the rules taking turns ``repeats`` times."""
    best = {rule: (float("inf"), float("inf")) for rule in runs}
    for _ in range(repeats):
        for rule, run in runs.items():
            c0, w0 = time.process_time(), time.perf_counter()
            run()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            best[rule] = (min(best[rule][0], wall), min(best[rule][1], cpu))
    return best


def restart_draws(rule: str, seeds: int, workers: int, events: int) -> dict:
    """Restarts by the rule and restart values drawn (the pools' refills), per arrival.

    Runs the batched clock of the benchmark's seeds alone, counting each refill of the
    batch's pools (each draws one pair of values for every worker of every trajectory).
    """
    server, hp = RULES[rule]
    if server is None or not server.stops:
        return {"restarts_per_arrival": 0.0, "restart_draws_per_arrival": 0.0}
    model = attach(aj.delays.workers(**CLOCK), server, {"workers": workers, **hp}, events)
    dtype = jnp.float32
    keys = _rng.stream_keys(jnp.arange(seeds, dtype=jnp.int32), _rng.DELAY_STREAM)
    m = jnp.full((1,), float(workers), dtype)
    state0, step, draws = model.batched(
        m, {k: jnp.full((1,), float(v)) for k, v in hp.items()}, keys, dtype
    )

    def run(st):
        def one(carry, d):
            st, refills = carry
            refills = refills + jnp.any(st.pool.empty).astype(jnp.int32)  # restocked before it
            st, _ = step(st, d)
            return (st, refills), None

        (st, refills), _ = jax.lax.scan(one, (st, 0), draws(jnp.arange(events, dtype=jnp.int32)))
        return refills, jnp.sum(st.pool.base + st.pool.used)

    refills, restarts = jax.jit(run)(state0)
    arrivals = seeds * events
    return {
        "restarts_per_arrival": float(restarts) / arrivals,
        "restart_draws_per_arrival": float(refills) * 2 * workers / events,  # a pair per worker
    }


def _fastest(fn, *args, repeats: int = 5) -> float:
    """Wall seconds of the fastest of ``repeats`` calls after a compiling one."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def cpu_limits() -> dict:
    """This CPU's measured rates, every XLA CPU device at once: normals/s, bytes/s, flops/s.

    Normals one per counter, as the engine draws its noise and the finisher's time, and two per
    counter (one Threefry hash), as the restart pools draw theirs; bytes read and written by
    passes over a float32 array far larger than the caches; flops of a float32 matrix product.
    """
    n_dev, n = jax.local_device_count(), 1 << 22
    keys = jnp.zeros((n_dev, 2), jnp.uint32)
    ks = jnp.arange(n, dtype=jnp.int32)
    one = jax.pmap(lambda k: rng.normals(k, ks, 1, jnp.float32))
    two = jax.pmap(lambda k: rng.normals(k, ks[: n // 2], 2, jnp.float32))
    a = jnp.ones((n_dev, 1 << 25), jnp.float32)  # 128 MiB per device: far beyond the caches
    # Memory traffic: passes over the array inside one program, so the buffers are reused
    # (one pass in a fresh output measured page faults on its first touch: 2 GB/s, not 29).
    passes = 16
    stream = jax.pmap(lambda x: jax.lax.fori_loop(0, passes, lambda i, y: y * 1.0001, x))
    m = jnp.ones((n_dev, 2048, 2048), jnp.float32)
    return {
        "normals_per_s": n_dev * n / _fastest(one, keys),
        "normals_two_per_hash_per_s": n_dev * n / _fastest(two, keys),
        "bytes_per_s": 2 * passes * a.nbytes / _fastest(stream, a),
        "flops_per_s": n_dev * 2 * 2048**3 / _fastest(jax.pmap(lambda x: x @ x), m),
    }


def bounds(rate: float, d: int, restart_draws: float, limits: dict) -> dict:
    """Each resource's use per second at ``rate`` arrivals/s, as a fraction of the CPU's limit.

    Per arrival: 2 normals (the noise, the finisher's next job) plus the restart values drawn
    (two per hash); bytes: the stored point in and out (8d in float32), the memory traffic
    beyond the caches (at 512 seeds and d = 1729 the store is 226 MB, while the iterates, the
    momentum and a rule's accumulator, 3.5 MB each, stay cached: counting them too gives more
    than the measured streaming rate); the gradient (≈ 5d flops).
    """
    return {
        "normals": rate
        * (2 / limits["normals_per_s"] + restart_draws / limits["normals_two_per_hash_per_s"]),
        "bytes": rate * 8 * d / limits["bytes_per_s"],
        "flops": rate * 5 * d / limits["flops_per_s"],
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--d", type=int, nargs="+", default=[4, 100, 1729])
    p.add_argument("--seeds", type=int, default=512)
    p.add_argument("--workers", type=int, default=64)
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline-arrivals", type=int, default=20_000)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    limits = cpu_limits()
    print(
        f"CPU limits: {limits['normals_per_s']:.3g} normals/s "
        f"({limits['normals_two_per_hash_per_s']:.3g} two per hash), "
        f"{limits['bytes_per_s']:.3g} B/s, {limits['flops_per_s']:.3g} flop/s"
    )
    draws = {rule: restart_draws(rule, args.seeds, args.workers, args.events) for rule in RULES}
    rows = []
    for d in args.d:
        runs = engine_runs(d, args.seeds, args.workers, args.events)
        best = best_times(runs, args.repeats)
        arrivals = args.seeds * args.events
        cpu_ns = {rule: best[rule][1] / arrivals * 1e9 for rule in RULES}
        for rule in RULES:
            rate = arrivals / best[rule][0]
            row = {
                "d": d,
                "rule": rule,
                "arrivals_per_s": rate,
                "cpu_ns_per_arrival": cpu_ns[rule],
                "cost_vs_plain": cpu_ns[rule] / cpu_ns["plain clock"],
                "cost_vs_asgd": cpu_ns[rule] / cpu_ns["asgd"],
                **draws[rule],
            }
            if rule in ("asgd", "rennala", "ringmaster"):
                ref = baseline.measure(
                    rule, d, workers=args.workers, arrivals=args.baseline_arrivals, repeats=2
                )
                row["baseline_arrivals_per_s"] = ref["arrivals_per_s"]
                row["speedup_vs_baseline"] = rate / ref["arrivals_per_s"]
            row["fraction_of_limit"] = bounds(rate, d, row["restart_draws_per_arrival"], limits)
            rows.append(row)
            extra = (
                f"  baseline {row['baseline_arrivals_per_s']:.3g}/s ×{row['speedup_vs_baseline']:.0f}"
                if "speedup_vs_baseline" in row
                else ""
            )
            frac = row["fraction_of_limit"]
            print(
                f"d={d:5d} {rule:12s} {rate:10.3g} arrivals/s {cpu_ns[rule]:8.0f} CPU ns  "
                f"restarts {row['restarts_per_arrival']:5.2f} drawn {row['restart_draws_per_arrival']:5.2f}  "
                f"cost {row['cost_vs_plain']:.2f}× plain {row['cost_vs_asgd']:.2f}× asgd{extra}  "
                f"[normals {frac['normals']:.0%}, bytes {frac['bytes']:.0%}, "
                f"flops {frac['flops']:.1%}]"
            )
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {jax.device_count()} CPU device(s)",
        "jax": jax.__version__,
        "seeds": args.seeds,
        "workers": args.workers,
        "events": args.events,
        "repeats": args.repeats,
        "cpu_limits": limits,
        "rows": rows,
    }
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    print(json.dumps(main()["rows"][:1], indent=1)[:0])
