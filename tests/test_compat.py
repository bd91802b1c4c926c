"""Results saved before the package was reorganised still load, and equal today's, bit for bit.

``tests/data/v0_*.npz`` were written by asyncjax at commit 2dae83b (the layout before the parts
protocol, the delays/ and sweep/ packages) with the settings below. Today's are computed in a
child process at the library's default compile settings, as the stored ones were (the default
test set's workers compile without fused multiply-adds, whose sums differ in the last bits: see
conftest.py).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _child import child_env

import asyncjax as aj

DATA = Path(__file__).parent / "data"

TODAY = """
import sys
import asyncjax as aj

cases = {
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
for name, run in cases.items():
    run().save(f"{sys.argv[1]}/{name}")
"""
NAMES = ["v0_sweep.npz", "v0_workers.npz"]


@pytest.fixture(scope="module")
def todays(tmp_path_factory):
    """The folder of today's results, one file per stored one."""
    out = tmp_path_factory.mktemp("today")
    done = subprocess.run(
        [sys.executable, "-c", TODAY, str(out)],
        env=child_env(defaults=True),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("name", NAMES)
def test_old_results_load_and_equal_todays(name, todays):
    old = aj.Results.load(DATA / name)
    new = aj.Results.load(todays / name)
    assert old.dims == new.dims
    assert set(old.data) == set(new.data)
    for var in old.data:
        np.testing.assert_array_equal(old[var], new[var], err_msg=var)
    for dim in old.coords:
        np.testing.assert_array_equal(old.coords[dim], new.coords[dim], err_msg=dim)


def test_every_stored_file_is_checked():
    assert sorted(p.name for p in DATA.glob("v0_*.npz")) == NAMES
