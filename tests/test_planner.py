"""The memory planner: rings grouped by the delay they need, accounting checked against XLA, `asyncjax plan`."""

import json
from importlib import resources

import numpy as np
import pytest
import tomllib

import asyncjax as aj
from asyncjax.cli import main
from asyncjax.config import parse_config
from asyncjax.sweep.memory import choose_buckets, ring_needs


def _fig1(seeds: int, steps: int):
    cfg = tomllib.loads(
        resources.files("asyncjax.experiments").joinpath("liu2018-fig1.toml").read_text()
    )
    cfg.pop("quick")
    cfg["grid"]["seeds"], cfg["run"]["steps"] = seeds, steps
    return parse_config(cfg, "liu2018-fig1")


def _assert_identical(a, b):
    assert set(a.data) == set(b.data)
    for name in a.data:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_buckets_minimise_memory_and_cover_every_point_once():
    needs = np.array([1, 151, 6, 151, 76, 11, 6])
    buckets = choose_buckets(needs, lambda ring: 1000 + 16 * ring, max_buckets=3)
    assert [b.buffer for b in buckets] == sorted(b.buffer for b in buckets)
    assert np.array_equal(
        np.sort(np.concatenate([b.points for b in buckets])), np.arange(needs.size)
    )
    for b in buckets:
        assert needs[b.points].max() == b.buffer  # no ring larger than its points need
    assert len(buckets) == 3 and buckets[-1].buffer == 151
    one = choose_buckets(needs, lambda ring: 1000 + 16 * ring, max_buckets=1)
    assert [b.buffer for b in one] == [151]
    # rings that cost almost nothing are not worth a compile each: one bucket
    assert len(choose_buckets(needs, lambda ring: 10**6 + ring, max_buckets=6)) == 1


def test_only_delay_laws_that_ignore_the_ring_are_bucketed():
    vals = np.array([0.0, 5.0, 9.0])
    assert ring_needs(aj.get_delay_model("constant"), vals, 10).tolist() == [1, 6, 10]
    assert ring_needs(aj.get_delay_model("uniform"), vals, 10).tolist() == [1, 6, 10]
    assert (
        ring_needs(aj.get_delay_model("geometric"), np.array([2.0]), 40) is None
    )  # truncated at the ring
    assert ring_needs(aj.delays.workers(), np.array([2.0]), 4) is None


def test_fig1_workload_bucketed_is_bit_identical_and_needs_less_memory():
    """Every delay 0-150 of Fig. 1 (all five momenta), rings per bucket vs one ring of 151: same bits."""
    spec = _fig1(seeds=3, steps=1500)
    kw = spec.sweep_kwargs()
    one = aj.sweep(spec.problem, spec.grid, buckets=1, **kw)
    many = aj.sweep(spec.problem, spec.grid, buckets=6, **kw)
    assert one.attrs["timing"]["buckets"] == [151]
    rings = many.attrs["timing"]["buckets"]
    assert len(rings) > 1 and rings[-1] == 151 and rings[0] < 40
    _assert_identical(one, many)
    assert (
        many.attrs["timing"]["peak_bytes_measured"]
        < 0.5 * one.attrs["timing"]["peak_bytes_measured"]
    )
    plan1 = aj.sweep_plan(spec.problem, spec.grid, buckets=1, **kw)
    plan6 = aj.sweep_plan(spec.problem, spec.grid, buckets=6, **kw)
    assert plan6.resident_bytes < 0.75 * plan1.resident_bytes


def test_uniform_delays_bucketed_are_bit_identical(pca, tmp_path):
    grid = aj.Grid(momentum=[0.5, 0.9], max_delay=[0, 2, 9, 30], lr=0.02, seed=range(3))
    kw = dict(steps=200, record_every=50, delay_model="uniform")
    one = aj.sweep(pca, grid, buckets=1, **kw)
    many = aj.sweep(pca, grid, buckets=4, out=tmp_path / "o", **kw)
    assert len(many.attrs["timing"]["buckets"]) > 1
    _assert_identical(one, many)
    # resume of a bucketed folder under the one-ring cut reuses every chunk (files hold seeds and points)
    again = aj.sweep(pca, grid, buckets=1, out=tmp_path / "o", resume=True, **kw)
    assert again.attrs["timing"]["chunks_computed"] == 0
    _assert_identical(again, one)


def test_explicit_buffer_keeps_one_ring(pca):
    grid = aj.Grid(delay=[0, 30], lr=0.02, seed=range(2))
    plan = aj.sweep_plan(pca, grid, steps=100, record_every=50, buffer=40, buckets=6)
    assert [b.spec.buffer for b in plan.buckets] == [40]


def _within(planned, measured, tol=0.25):
    return abs(planned - measured) <= tol * measured


def test_plan_peak_is_within_25_percent_of_xla_on_fig1_and_an_mlp():
    """The planner's peak (its own accounting) against XLA's analysis of the executable the run calls."""
    pytest.importorskip("sklearn")
    spec = _fig1(seeds=16, steps=1000)
    res = aj.sweep(spec.problem, spec.grid, **spec.sweep_kwargs())
    t = res.attrs["timing"]
    assert _within(t["peak_bytes_planned"], t["peak_bytes_measured"]), t
    mlp = aj.MLP(aj.datasets.digits(), hidden=(16,))
    grid = aj.Grid(momentum=[0.5, 0.9], delay=[0, 4, 16], lr=0.05, seed=range(4))
    res = aj.sweep(mlp, grid, steps=100, record_every=50)
    t = res.attrs["timing"]
    assert _within(t["peak_bytes_planned"], t["peak_bytes_measured"]), t


@pytest.mark.slow
def test_plan_peak_counts_a_server_clock_s_state():
    """2048 workers at d = 8: the clock's end times, versions and restart pools are most of a
    trajectory's memory (the ring of R + 1 = 7 points is 224 B), so the plan must count them."""
    clock = aj.delays.workers("halfnormal", base="1 + sqrt(i)", noise_scale="sqrt(i + 1)")
    grid = aj.Grid(lr=0.1, momentum=0.0, workers=2048, delay_threshold=6, seed=range(8))
    res = aj.sweep(
        aj.problems.ringmaster_quadratic(d=8),
        grid,
        delay_model=clock,
        server=aj.servers.ringmaster(),
        steps=40,
        record_every=20,
        progress=False,
    )
    t = res.attrs["timing"]
    assert _within(t["peak_bytes_planned"], t["peak_bytes_measured"]), t


def test_plan_command_prints_buckets_memory_and_time(tmp_path, capsys):
    path = resources.files("asyncjax.experiments").joinpath("liu2018-fig1.toml")
    out = tmp_path / "plan.json"
    assert main(["plan", str(path), "--quick", "--buckets", "4", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2,480 trajectories x 12,000 steps" in text
    assert "peak memory:" in text and "time estimate:" in text
    info = json.loads(out.read_text())
    assert 1 < len(info["buckets"]) <= 4 and info["buckets"][-1]["buffer"] == 151
    assert sum(b["points"] for b in info["buckets"]) == 155
    assert (
        info["calibration"]["rate"] > 0 and info["resident_bytes"] < info["resident_bytes_one_ring"]
    )


def test_calibration_runs_a_few_hundred_steps_however_rarely_the_sweep_records(tmp_path):
    """A sweep recording every 10^5 steps is timed on 500 steps (one interval of that length),
    not on a whole record interval run twice (which took the plan minutes on a large grid)."""
    sp = aj.sweep_plan(
        aj.StreamingPCA([2.0, 1.0]),
        aj.Grid(lr=0.01, delay=[0, 2], seed=range(2)),
        steps=1_000_000,
        record_every=100_000,
    )
    cal = sp.calibrate()
    assert cal["steps"] == 500 and cal["rate"] > 0
    assert cal["estimate_s"] > 4 * 1_000_000 / cal["rate"]  # the whole sweep, not the short run


def test_a_long_run_is_cut_into_chunks_of_bounded_work_for_progress_and_resume():
    """200 200 trajectories x 10^6 steps fit the memory budget in one chunk, which would run
    about 20 minutes on a 2-core CPU with no progress and nothing to resume: chunks hold at
    most CHUNK_WORK_CPU trajectory-steps."""
    from asyncjax.sweep.memory import CHUNK_WORK_CPU

    grid = aj.Grid(momentum=np.linspace(0, 0.999, 1001), lr=[1e-4, 2e-4], delay=10, seed=range(100))
    sp = aj.sweep_plan(aj.StreamingPCA([4.0, 3.0, 2.0, 1.0]), grid, steps=10**6, record_every=10**5)
    assert len(sp.work) > 1
    assert all(b.chunk_trajectories * sp.steps <= CHUNK_WORK_CPU for b in sp.buckets)
    small = aj.sweep_plan(aj.StreamingPCA([4.0, 3.0, 2.0, 1.0]), grid, steps=1000, record_every=100)
    assert len(small.work) == 1  # a short run stays one chunk


def test_plan_command_refuses_bad_input_clearly(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[problem]\neigenvalues = [2.0, 1.0]\n[grid]\nlr = 0.1\ndelay = [0, 2]\n"
        "[run]\nsteps = 100\nrecord_every = 50\n"
    )
    assert main(["plan", str(cfg), "--quick"]) == 2
    assert "no [quick] table" in capsys.readouterr().err
    assert main(["plan", str(cfg), "--buckets", "0", "--no-calibrate"]) == 2
    assert "buckets" in capsys.readouterr().err


def test_plan_command_takes_the_chunk_size_of_the_config_or_the_flag(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[problem]\neigenvalues = [2.0, 1.0]\n[grid]\nlr = 0.1\ndelay = [0, 2]\nseeds = 4\n"
        "[run]\nsteps = 100\nrecord_every = 50\nchunk_size = 2\n"
    )
    out = tmp_path / "p.json"
    assert main(["plan", str(cfg), "--no-calibrate", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["chunks"] == 4  # chunk_size = 2: one seed x both points
    assert main(["plan", str(cfg), "--no-calibrate", "--chunk-size", "8", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["chunks"] == 1


def test_a_server_s_gradient_table_is_planned_as_xla_holds_it():
    """IA²SGD keeps n gradients per trajectory beyond ASGD, updated in place: planned once.

    Same clock, problem and ring (one snapshot per worker) for both rules, so the difference
    of the two peaks is the table (and its running sum). Were the table copied at every event
    (as it was before its write was moved ahead of the event's reads) XLA would hold it twice.
    """
    n, d, S = 128, 100, 16
    q = aj.Quadratic(np.ones(d), worker_optima=np.zeros((n, d)))
    peaks = {}
    for server in ("asgd", "ia2sgd"):
        res = aj.sweep(
            q,
            aj.Grid(lr=0.1, workers=n, seed=range(S)),
            delay_model=aj.delays.workers("lognormal"),
            server=server,
            steps=40,
            record_every=20,
            progress=False,
        )
        t = res.attrs["timing"]
        peaks[server] = (t["peak_bytes_planned"], t["peak_bytes_measured"])
    table = S * (n + 1) * d * np.dtype(np.float32).itemsize
    planned = peaks["ia2sgd"][0] - peaks["asgd"][0]
    measured = peaks["ia2sgd"][1] - peaks["asgd"][1]
    assert planned == table
    assert _within(planned, measured, tol=0.05), (planned, measured)
