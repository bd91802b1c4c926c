"""On a real accelerator: the sharded path, the planner's budget and the accelerator benchmark.

Marked ``gpu`` and skipped where JAX's default backend is the CPU (the last test
runs the accelerator benchmark's code path, small, on any backend).
"""

import jax
import numpy as np
import pytest

import asyncjax as aj


def accelerator(fn):
    """Marks ``fn`` as needing an accelerator; skipped on the CPU backend."""
    fn = pytest.mark.skipif(
        jax.default_backend() == "cpu", reason="needs an accelerator (JAX's default backend is cpu)"
    )(fn)
    return pytest.mark.gpu(fn)


def _assert_identical(a, b):
    for name in a.data:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@accelerator
def test_sharded_sweep_on_the_accelerators_matches_one_device_and_any_chunking(pca):
    grid = aj.Grid(momentum=[0.7, 0.9], delay=[0, 10, 40, 150], lr=5e-4, seed=range(64))
    kw = dict(steps=2000, record_every=250)
    devices = jax.local_devices()
    assert devices[0].platform != "cpu"
    one = aj.sweep(pca, grid, devices=devices[:1], **kw)
    every = aj.sweep(pca, grid, devices=devices, chunk_size=96, **kw)
    bucketed = aj.sweep(pca, grid, devices=devices, buckets=4, **kw)
    _assert_identical(one, every)
    _assert_identical(one, bucketed)
    assert len(bucketed.attrs["timing"]["buckets"]) > 1


@accelerator
def test_planner_budget_comes_from_the_device_and_matches_xla(pca):
    from asyncjax.sweep.memory import device_budget

    dev = jax.local_devices()[0]
    stats = dev.memory_stats()
    if stats and "bytes_limit" in stats:
        free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
        assert (
            0.5 * free <= device_budget(dev) <= 0.7 * free
        )  # in use changes a little between the calls
    grid = aj.Grid(momentum=[0.7, 0.9], delay=list(range(0, 151, 10)), lr=5e-4, seed=range(256))
    t = aj.sweep(pca, grid, steps=1000, record_every=250).attrs["timing"]
    assert (
        abs(t["peak_bytes_planned"] - t["peak_bytes_measured"]) <= 0.25 * t["peak_bytes_measured"]
    ), t


@accelerator
def test_accelerator_benchmark_reports_rates_and_roofline():
    from asyncjax.bench import ACCELERATOR_SIZES, PEAK_BANDWIDTH, _bench_accelerator

    rows = _bench_accelerator(quick=True, repeats=2)
    assert [r["trajectories"] >= n for r, n in zip(rows, ACCELERATOR_SIZES)] == [True] * len(
        ACCELERATOR_SIZES
    )
    assert all(r["traj_steps_per_s"] > 0 for r in rows)
    if jax.devices()[0].device_kind in PEAK_BANDWIDTH:
        assert all(0 < r["roofline_fraction"] < 1.5 for r in rows)


def test_accelerator_benchmark_path_runs_small_anywhere(monkeypatch):
    """The GPU benchmark's code, at 160 trajectories: rates, bytes per step, no roofline for an unknown kind."""
    from asyncjax import bench

    monkeypatch.setattr(bench, "ACCELERATOR_SIZES", (100,))
    monkeypatch.setattr(bench, "PEAK_BANDWIDTH", {})
    (row,) = bench._bench_accelerator(quick=True, repeats=1)
    assert row["trajectories"] >= 100 and row["traj_steps_per_s"] > 0
    assert row["bytes_per_traj_step"] == 2 * 16 + 2 * (
        16 + 16
    )  # d = 4 float32: ring read + write, x and v
    assert row["roofline_fraction"] is None
