"""What each of the worker's conditions costs per arrival, against the clock without them.

    python benchmarks/worker_conditions.py [--d 100] [--seeds 256] [--workers 64] [--events 2048]
                                           [--json FILE]

ASGD on the Ringmaster paper's quadratic (tridiagonal A, one shared scalar noise) with compute
times 1 + √i + √(i+1)·|z| and n workers, S seeds: the compiled sweep's second run (no compile),
timed in CPU seconds of this process (other jobs share the host, so wall time would count
theirs), per trajectory-arrival, for the clock alone and with each condition added: random
communication, outages (paused, lost), random and shuffled assignment, a measured trace (the
paper's law drawn once into a (64, n) table).
"""

import argparse
import platform
import time

from asyncjax import use_cpu_cores

use_cpu_cores()  # before JAX touches a device

import jax  # noqa: E402
import numpy as np  # noqa: E402

import asyncjax as aj  # noqa: E402
from asyncjax._io import write_json  # noqa: E402

PAPER = dict(law="halfnormal", base="1 + sqrt(i)", noise_scale="sqrt(i + 1)")


def options(workers: int) -> dict[str, dict]:
    i = np.arange(workers)
    trace = (
        1
        + np.sqrt(i)
        + np.sqrt(i + 1) * np.abs(np.random.default_rng(0).normal(size=(64, workers)))
    )
    return {
        "clock alone": PAPER,
        "communication (exponential)": {
            **PAPER,
            "download": 0.5,
            "upload": 0.5,
            "comm_law": "exponential",
        },
        "outages (paused)": {**PAPER, "uptime": 50.0, "downtime": 5.0},
        "outages (lost)": {**PAPER, "uptime": 50.0, "downtime": 5.0, "outage_mode": "lost"},
        "assignment random": {**PAPER, "assignment": "random"},
        "assignment shuffle": {**PAPER, "assignment": "shuffle"},
        "trace": {"trace": trace},
    }


def cpu_seconds_per_arrival(d: int, clock_kw: dict, seeds: int, workers: int, events: int) -> float:
    clock = aj.delays.workers(**clock_kw)
    grid = aj.Grid(lr=1e-3, momentum=0.0, workers=workers, seed=range(seeds))
    kw = dict(
        delay_model=clock,
        server=aj.servers.asgd(),
        steps=events,
        record_every=events,
        progress=False,
    )
    prob = aj.problems.ringmaster_quadratic(d=d, noise=0.01)
    aj.sweep(prob, grid, **kw)
    start = time.process_time()
    aj.sweep(prob, grid, **kw)
    return (time.process_time() - start) / (seeds * events)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=256)
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--events", type=int, default=2048)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    out = {}
    for name, kw in options(a.workers).items():
        out[name] = cpu_seconds_per_arrival(a.d, kw, a.seeds, a.workers, a.events)
        ratio = out[name] / out["clock alone"]
        print(f"{name:30s} {out[name] * 1e6:8.3f} µs CPU per arrival  ({ratio:.2f}x)", flush=True)
    if a.json:
        write_json(
            a.json,
            {
                "d": a.d,
                "seeds": a.seeds,
                "workers": a.workers,
                "events": a.events,
                "cpu_seconds_per_arrival": out,
                "machine": platform.processor() or platform.machine(),
                "jax": jax.__version__,
            },
        )


if __name__ == "__main__":
    main()
