"""Where an event's time goes on the Ringmaster paper's quadratic (n = 6174 workers, d = 1729).

The preset maranjyan2025-ringmaster runs ≈ 166 000 arrivals per ASGD trajectory and ≈ 3 000
events per Ringmaster trajectory. This script measures, on one CPU device, the cost of one
trajectory-event of the whole engine for each method, and of the parts of an event on their
own, each batched over the same trajectories and run in a ``lax.scan`` as the engine runs them:

* the clock's search for the next finisher (``min`` and the first index of it over n workers);
* the clock's whole event (`ServerClock.event`): the search, the restart of the finisher (and,
  with stops, of every stopped worker, its time read from the worker's restart pool, and the
  pools' refills: one pair of values per worker whenever some worker has used its pool), the
  new finish times of all n workers;
* the draws made before the events: one half-normal per event (the finisher's next job), with
  or without stops;
* the stored points: reading and overwriting one (d,) row of a (n, d) snapshot buffer per
  trajectory (ASGD: 43 MB per trajectory in float32) or of a ring of R + 1 = 7 rows (Ringmaster);
* the gradient of the banded quadratic and the SGD step.

Timings are the minimum over repeats after a warm-up, in microseconds per trajectory-event,
both CPU time of the process and wall time (the machine may be shared: CPU time is the steadier
figure). Run::

    python benchmarks/ringmaster_profile.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import asyncjax as aj
from asyncjax import _rng
from asyncjax.servers.clock import attach

CLOCK = dict(law="halfnormal", base="1 + sqrt(i)", noise_scale="sqrt(i + 1)")
OUT = Path(__file__).parent / "results" / "maranjyan2025-ringmaster" / "profile_cpu.json"


def _timed(fn, *args, repeats: int = 3) -> tuple[float, float]:
    """(CPU s, wall s): the minimum over ``repeats`` calls after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    cpu = wall = np.inf
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        jax.block_until_ready(fn(*args))
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
    return cpu, wall


def _per(cpu_wall: tuple[float, float], units: int) -> dict[str, float]:
    return {"cpu_us": cpu_wall[0] / units * 1e6, "wall_us": cpu_wall[1] / units * 1e6}


def engine(method: str, n: int, d: int, seeds: int, events: int) -> dict[str, float]:
    """One trajectory-event of `asyncjax.sweep` (compile excluded), per method."""
    quad = aj.problems.ringmaster_quadratic(d=d)
    clock = aj.delays.workers(**CLOCK)
    kw: dict = dict(workers=n, momentum=0.0, seed=range(seeds))
    mit = None
    if method == "ringmaster":
        server, kw = aj.servers.ringmaster(), {**kw, "lr": 0.25, "delay_threshold": 6}
    elif method == "rennala":
        server, kw = aj.servers.rennala(), {**kw, "lr": 1.0, "batch": 6}
    else:
        server, kw = aj.servers.asgd(), {**kw, "lr": 3.2e-4}
        if method == "delay_adaptive_asgd":
            mit, kw = "delay_adaptive", {**kw, "adaptive_c": float(n)}
    grid = aj.Grid(**kw)
    run = lambda: aj.sweep(
        quad,
        grid,
        steps=events,
        record_every=events // 4,
        delay_model=clock,
        server=server,
        mitigation=mit,
        chunk_size=seeds,
    )
    run()  # compile
    cpu = wall = np.inf
    for _ in range(2):
        c0, w0 = time.process_time(), time.perf_counter()
        run()
        cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
    return _per((cpu, wall), seeds * events)


def clock_parts(n: int, seeds: int, events: int) -> dict[str, dict[str, float]]:
    """The clock's search alone, and its whole event with and without stops."""
    out = {}
    f = jax.random.uniform(jax.random.key(0), (seeds, n)) + 1.0
    i = jnp.arange(n, dtype=jnp.int32)

    def search(f):
        def one(f, _):
            dt = jnp.min(f, axis=-1, keepdims=True)
            w = jnp.min(jnp.where(f == dt, i, n), axis=-1, keepdims=True)
            return jnp.where(i == w, f + 1.0, f) - dt, w[:, 0]

        return jax.lax.scan(one, f, None, length=events)[1]

    out["argmin_search"] = _per(_timed(jax.jit(search), f), seeds * events)
    keys = _rng.stream_keys(jnp.arange(seeds, dtype=jnp.int32), _rng.DELAY_STREAM)
    dtype = jnp.result_type(float)
    m = jnp.full((1,), float(n), dtype)
    for name, server, hp in (
        ("event_asgd", aj.servers.asgd(), {}),
        ("event_ringmaster_stops", aj.servers.ringmaster(), {"delay_threshold": 6}),
    ):
        model = attach(aj.delays.workers(**CLOCK), server, {"workers": n, **hp}, events)
        hp_j = {k: jnp.full((1,), float(v), dtype) for k, v in hp.items()}
        state0, step, draws = model.batched(m, hp_j, keys, dtype)
        ks = jnp.arange(events, dtype=jnp.int32)
        ds = jax.jit(draws)(ks)  # drawn beforehand: this times the clock alone

        def clock_only(st, ds=ds, step=step):
            def one(s, d):
                s, ev = step(s, d)
                return s, ev.worker  # the finisher: nothing of the event can be left out

            st, workers = jax.lax.scan(one, st, ds)
            return st.total, jnp.sum(workers)

        out[name] = _per(_timed(jax.jit(clock_only), state0), seeds * events)
        out[name.replace("event", "draws")] = _per(_timed(jax.jit(draws), ks), seeds * events)
    return out


def ring_parts(n: int, d: int, seeds: int, events: int) -> dict[str, dict[str, float]]:
    """Reading and overwriting one (d,) row per trajectory-event of the engine's (1, L, S, d) ring."""
    out = {}
    for name, rows in (("snapshots_one_per_worker", n), ("ring_R_plus_1", 7)):
        ring = jnp.zeros((1, rows, seeds, d), jnp.float32)
        ws = jax.random.randint(jax.random.key(1), (events, 1, seeds), 0, rows)
        h, s = jnp.arange(1)[:, None], jnp.arange(seeds)[None, :]

        def io(ring, x, ws=ws, h=h, s=s):
            def one(c, w):
                ring, x = c
                x = x + 1e-3 * ring[h, w, s]
                return (ring.at[h, w, s].set(x), x), None

            return jax.lax.scan(one, (ring, x), ws)[0][1]

        x = jnp.ones((1, seeds, d), jnp.float32)
        out[name] = _per(_timed(jax.jit(io), ring, x), seeds * events)
        out[name]["bytes_per_trajectory"] = rows * d * 4
    return out


def gradient_part(d: int, seeds: int, events: int) -> dict[str, float]:
    """The banded gradient (with its shared noise) and the SGD step, per trajectory-event."""
    quad = aj.problems.ringmaster_quadratic(d=d)
    ops = quad.operands(jnp.float32)
    grad = jax.vmap(lambda x, z: quad.grad(ops, x, z, {"noise": jnp.float32(0.01)}))
    z = jax.random.normal(jax.random.key(2), (events, seeds, 1))

    def run(x):
        return jax.lax.scan(lambda x, zz: (x - 1e-4 * grad(x, zz), None), x, z)[0]

    return _per(_timed(jax.jit(run), jnp.ones((seeds, d), jnp.float32)), seeds * events)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer events (a smoke run)")
    p.add_argument("--json", type=Path, default=None, help=f"write the results (default {OUT})")
    args = p.parse_args(argv)
    n, d, seeds = 6174, 1729, 8
    events = 400 if args.quick else 2000
    res = {
        "what": "microseconds per trajectory-event on one CPU device, batched over 8 trajectories",
        "workers": n,
        "d": d,
        "seeds": seeds,
        "events": events,
        "engine": {
            m: engine(m, n, d, seeds, events)
            for m in ("asgd", "delay_adaptive_asgd", "ringmaster", "rennala")
        },
        "engine_small": {
            "asgd_n64_d1729": engine("asgd", 64, d, seeds, events),
            "asgd_n6174_d4": engine("asgd", n, 4, seeds, events),
            "ringmaster_n64_d1729": engine("ringmaster", 64, d, seeds, events),
        },
        "parts": {
            **clock_parts(n, seeds, events),
            **ring_parts(n, d, seeds, events),
            "gradient_and_step": gradient_part(d, seeds, events),
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average": os.getloadavg(),
            "jax": jax.__version__,
        },
    }
    path = args.json or (None if args.quick else OUT)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
