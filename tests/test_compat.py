"""Results saved before the package was reorganised still load, and equal today's, bit for bit.

``tests/data/v0_*.npz`` were written by asyncjax at commit 2dae83b (the layout before the parts
protocol, the delays/ and sweep/ packages) with the settings below.
"""

from pathlib import Path

import numpy as np
import pytest

import asyncjax as aj

DATA = Path(__file__).parent / "data"

CASES = {
    "v0_sweep.npz": lambda: aj.sweep(
        aj.StreamingPCA([3.0, 1.0, 0.5]),
        aj.Grid(momentum=[0.0, 0.5], delay=[0, 2], lr=0.01, seed=range(3)),
        steps=60,
        record_every=20,
        progress=False,
    ),
    "v0_workers.npz": lambda: aj.sweep(
        aj.Quadratic([1.0, 0.1], noise=0.1),
        aj.Grid(workers=[1, 3], lr=0.05, seed=range(2)),
        delay_model="workers",
        steps=60,
        record_every=20,
        progress=False,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_old_results_load_and_equal_todays(name):
    old = aj.Results.load(DATA / name)
    new = CASES[name]()
    assert old.dims == new.dims
    assert set(old.data) == set(new.data)
    for var in old.data:
        np.testing.assert_array_equal(old[var], new[var], err_msg=var)
    for dim in old.coords:
        np.testing.assert_array_equal(old.coords[dim], new.coords[dim], err_msg=dim)
