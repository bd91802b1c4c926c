"""A single-trajectory heap-and-NumPy event loop, the way the public reference code runs servers.

    python benchmarks/event_loop_baseline.py [--d 4 100 1729] [--workers 64]
        [--arrivals 10000] [--json OUT]

The speed asyncjax's server rules are measured against (issue 16): one Python
loop over events per trajectory, ``heapq`` for the next finisher, a NumPy
stochastic gradient per arrival, one snapshot of the iterate per worker and a
compute time drawn per job with NumPy's ``Generator``, as vectozavr/ringmaster-lmo
and k3nfalt/optimal-decentralized-optimization write theirs (this is our own code
in that style, not theirs). Reported: trajectory-arrivals per second (the
minimum time of ``--repeats`` runs after a warm-up) for ASGD, Rennala and
Ringmaster at each dimension.

Workload (the Ringmaster paper's, SCIENCE.md §8): f(x) = ½ xᵀAx − bᵀx with
A = ¼ tridiag(−1, 2, −1), b = −¼ e₁, x₀ = √d e₁; the stochastic gradient is
∇f(x) + σ ξ·**1** with one ξ ~ N(0, 1) per gradient (σ = 0.01); worker
i = 0 … n−1 takes 1 + √i + √(i + 1)·|z|, z ~ N(0, 1) fresh per job. ``--matrix
dense`` multiplies by A as a dense (d, d) array instead of three slices.

* ASGD: every arrival steps, the finisher restarts at the new point.
* Rennala (with stops, as the public code runs it): a round starts every worker
  at x_k (n draws); each of the B arrivals that follow restarts its worker at
  x_k; the B-th steps with their average and starts the next round.
* Ringmaster (with stops): every arrival steps (with stops no delay reaches R);
  after a step, every worker whose delay in applied updates reaches R is
  stopped and restarted at the new point (its job is dropped from the heap
  lazily, by a per-worker job id).

Arrivals count finished jobs; a stopped job is a dispatch but not an arrival.
The gradient is computed when a job arrives, from its worker's snapshot (a
reference to the iterate it read: the loop rebinds x and never writes into it,
so a snapshot costs no copy). The public code instead computes the gradient
when a job is dispatched, so its stopped jobs cost a gradient each: this loop
is, if anything, faster than theirs.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import platform
import time

import numpy as np

METHODS = ("asgd", "rennala", "ringmaster")


class Quadratic:
    """The Ringmaster paper's quadratic, its stochastic gradient with one shared scalar noise."""

    def __init__(self, d: int, noise: float, rng: np.random.Generator, dense: bool = False):
        self.d, self.noise, self.rng = d, noise, rng
        self.x0 = np.zeros(d)
        self.x0[0] = math.sqrt(d)
        self.A = None
        if dense:
            self.A = 0.5 * np.eye(d) - 0.25 * (np.eye(d, k=1) + np.eye(d, k=-1))

    def grad(self, x: np.ndarray) -> np.ndarray:
        if self.A is not None:
            g = self.A @ x
        else:
            g = 0.5 * x
            g[1:] -= 0.25 * x[:-1]
            g[:-1] -= 0.25 * x[1:]
        g[0] += 0.25  # − b
        return g

    def stochastic_grad(self, x: np.ndarray) -> np.ndarray:
        return self.grad(x) + self.noise * self.rng.normal()


def compute_time_law(workers: int, rng: np.random.Generator):
    """Worker i's job takes 1 + √i + √(i + 1)·|z|, z ~ N(0, 1) drawn per job."""
    base = [1.0 + math.sqrt(i) for i in range(workers)]
    scale = [math.sqrt(i + 1) for i in range(workers)]
    return lambda i: base[i] + scale[i] * abs(rng.normal())


def asgd(problem: Quadratic, workers: int, arrivals: int, lr: float, seed: int) -> dict:
    job_time = compute_time_law(workers, np.random.default_rng(seed))
    x = problem.x0
    snap = [x] * workers
    heap = [(job_time(i), i) for i in range(workers)]
    heapq.heapify(heap)
    dispatches, updates = workers, 0
    for _ in range(arrivals):
        t, i = heapq.heappop(heap)
        x = x - lr * problem.stochastic_grad(snap[i])
        updates += 1
        snap[i] = x
        heapq.heappush(heap, (t + job_time(i), i))
        dispatches += 1
    return {"x": x, "time": t, "updates": updates, "dispatches": dispatches}


def rennala(
    problem: Quadratic, workers: int, arrivals: int, lr: float, batch: int, seed: int
) -> dict:
    job_time = compute_time_law(workers, np.random.default_rng(seed))
    x, t = problem.x0, 0.0
    dispatches, updates, done = 0, 0, 0
    while True:
        # a round: every worker starts at x (stops: the jobs in flight are dropped), so every
        # worker's snapshot is x and the round needs no table of them
        heap = [(t + job_time(i), i) for i in range(workers)]
        heapq.heapify(heap)
        dispatches += workers
        acc = np.zeros_like(x)
        for _ in range(batch):
            if done == arrivals:
                return {"x": x, "time": t, "updates": updates, "dispatches": dispatches}
            t, i = heapq.heappop(heap)
            done += 1
            acc += problem.stochastic_grad(x)
            heapq.heappush(heap, (t + job_time(i), i))
            dispatches += 1
        x = x - lr * (acc / batch)
        updates += 1


def ringmaster(
    problem: Quadratic, workers: int, arrivals: int, lr: float, threshold: int, seed: int
) -> dict:
    job_time = compute_time_law(workers, np.random.default_rng(seed))
    x, k = problem.x0, 0
    snap = [x] * workers
    read = [0] * workers  # the version each worker's live job read
    job = [0] * workers  # the id of each worker's live job; other heap entries are dropped
    readers = {0: list(range(workers))}  # version -> workers that started a job reading it
    heap = [(job_time(i), i, 0) for i in range(workers)]
    heapq.heapify(heap)
    dispatches, updates, done = workers, 0, 0

    def dispatch(w: int, t: float) -> None:
        job[w] += 1
        read[w], snap[w] = k, x
        readers.setdefault(k, []).append(w)
        heapq.heappush(heap, (t + job_time(w), w, job[w]))

    while done < arrivals:
        t, i, j = heapq.heappop(heap)
        if j != job[i]:
            continue  # a stopped job
        done += 1
        stepped = k - read[i] < threshold  # always true with stops; the rule, spelled out
        if stepped:
            x = x - lr * problem.stochastic_grad(snap[i])
            k += 1
            updates += 1
        dispatch(i, t)
        dispatches += 1
        if stepped:  # stops: whoever still computes on version k - R is restarted at x
            for w in readers.pop(k - threshold, ()):
                if read[w] == k - threshold:
                    dispatch(w, t)
                    dispatches += 1
    return {"x": x, "time": t, "updates": updates, "dispatches": dispatches}


# the paper's tuned steps (SCIENCE.md §8); ASGD's is its grid's smallest value
STEPS = {"asgd": 3.2e-4, "rennala": 1.0, "ringmaster": 0.25}


def measure(
    method: str,
    d: int,
    *,
    workers: int = 64,
    arrivals: int = 20_000,
    repeats: int = 3,
    matrix: str = "tridiagonal",
    noise: float = 0.01,
    batch: int = 6,
    threshold: int = 6,
    lr: float | None = None,
) -> dict:
    """Best-of-``repeats`` trajectory-arrivals per second of one method at dimension d."""
    problem = Quadratic(d, noise, np.random.default_rng(1), dense=matrix == "dense")
    lr = STEPS[method] if lr is None else lr

    def run(n_arrivals: int, seed: int) -> dict:
        if method == "asgd":
            return asgd(problem, workers, n_arrivals, lr, seed)
        if method == "rennala":
            return rennala(problem, workers, n_arrivals, lr, batch, seed)
        return ringmaster(problem, workers, n_arrivals, lr, threshold, seed)

    run(max(1, arrivals // 10), seed=0)  # warm-up
    best, out = math.inf, None
    for r in range(repeats):
        start = time.perf_counter()
        out = run(arrivals, seed=1 + r)
        best = min(best, time.perf_counter() - start)
    g = problem.grad(out["x"])
    return {
        "method": method,
        "d": d,
        "workers": workers,
        "arrivals": arrivals,
        "lr": lr,
        "seconds": best,
        "arrivals_per_s": arrivals / best,
        "us_per_arrival": 1e6 * best / arrivals,
        "updates_per_arrival": out["updates"] / arrivals,
        "dispatches_per_arrival": out["dispatches"] / arrivals,
        "simulated_time": out["time"],
        "final_grad_norm_sq": float(g @ g),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--d", type=int, nargs="+", default=[4, 100, 1729], help="dimensions")
    parser.add_argument("--workers", type=int, default=64, help="n")
    parser.add_argument("--arrivals", type=int, default=20_000, help="arrivals per run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (the best counts)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--matrix", choices=("tridiagonal", "dense"), default="tridiagonal")
    parser.add_argument("--noise", type=float, default=0.01, help="σ of the shared gradient noise")
    parser.add_argument("--batch", type=int, default=6, help="Rennala's B (the paper's 6)")
    parser.add_argument("--threshold", type=int, default=6, help="Ringmaster's R (the paper's 6)")
    parser.add_argument("--lr", type=float, help="step of every method (default: the paper's)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    for name in ("workers", "arrivals", "repeats", "batch", "threshold"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if min(args.d) < 2:
        parser.error(f"--d must be >= 2, got {min(args.d)}")

    rows = []
    for d in args.d:
        for method in args.methods:
            row = measure(
                method,
                d,
                workers=args.workers,
                arrivals=args.arrivals,
                repeats=args.repeats,
                matrix=args.matrix,
                noise=args.noise,
                batch=args.batch,
                threshold=args.threshold,
                lr=args.lr,
            )
            rows.append(row)
            print(
                f"d={d:5d} {method:10s} {row['arrivals_per_s']:10.3g} arrivals/s "
                f"({row['us_per_arrival']:.1f} µs each; {row['dispatches_per_arrival']:.2f} "
                f"dispatches and {row['updates_per_arrival']:.2f} updates per arrival)",
                flush=True,
            )
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "numpy": np.__version__,
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "results": rows,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
