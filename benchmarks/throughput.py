"""Throughput of asyncjax against batched NumPy and a Python loop (Figure-1 workload).

    python benchmarks/throughput.py [--quick] [--json FILE]

Uses one XLA CPU device per core, as the ``asyncjax`` command does. The
measurement itself lives in ``asyncjax.bench`` so that ``asyncjax bench`` runs
the same code.
"""

import argparse

from asyncjax import use_cpu_cores

use_cpu_cores()  # before JAX touches a device

from asyncjax.bench import run_benchmark  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few seconds")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()
    run_benchmark(quick=args.quick, json_path=args.json)
