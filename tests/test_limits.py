"""What cannot fit is refused before it compiles, in one line naming the size and the remedy.

Issue 18: the planner's budget is honoured, a ring is never longer than the run
can fill, memory, disk and int32 counters are checked up front, an allocation
failure mid-run becomes one line, and chunk files go once the results are written.
"""

import re

import jax
import numpy as np
import pytest

import asyncjax as aj
from asyncjax.cli import main
from asyncjax.delays.laws import Constant, Geometric, Uniform


def _assert_identical(a, b):
    assert set(a.data) == set(b.data)
    for name in a.data:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize(
    ("law", "model", "axis", "values"),
    [
        (Constant, "constant", "delay", [0, 7, 150, 10**8]),
        (Uniform, "uniform", "max_delay", [3, 150, 10**5]),
        (Geometric, "geometric", "workers", [2, 400]),
    ],
)
def test_ring_is_cut_to_what_the_steps_fill_and_results_are_bit_identical(
    pca, monkeypatch, law, model, axis, values
):
    """A ring of steps + 1 reads the same iterates as the whole one (τ_k > k reads the start)."""
    grid = aj.Grid(momentum=[0.5, 0.9], lr=0.02, seed=range(3), **{axis: values})
    kw = dict(steps=100, record_every=25, delay_model=model)
    plan = aj.sweep_plan(pca, grid, **kw)
    assert max(b.spec.buffer for b in plan.buckets) <= 101
    cut = aj.sweep(pca, grid, **kw)
    assert cut.attrs["buffer"] == aj.get_delay_model(model).buffer_for(values)  # the setting stays
    with monkeypatch.context() as m:  # the whole ring, as before the cut
        m.setattr(law, "ring_limit", lambda self, steps: None)
        # a constant delay of 10^8 and one of 2000 both read the start at every step
        same = [min(v, 2000) for v in values] if model == "constant" else values
        whole = aj.sweep(
            pca, aj.Grid(momentum=[0.5, 0.9], lr=0.02, seed=range(3), **{axis: same}), **kw
        )
    assert max(whole.attrs["timing"]["buckets"]) > 1000
    for name in cut.data:
        np.testing.assert_array_equal(cut[name], whole[name], err_msg=name)


def test_a_mitigation_keeps_the_whole_ring(pca):
    grid = aj.Grid(delay=[0, 300], lr=0.02, adaptive_c=1.0, seed=range(2))
    plan = aj.sweep_plan(pca, grid, steps=100, record_every=50, mitigation="delay_adaptive")
    assert max(b.spec.buffer for b in plan.buckets) == 301


# ------------------------------------------------------------------ the budget and free memory
def test_the_budget_is_honoured_or_the_run_refused_naming_the_trajectory(pca, monkeypatch):
    """Chunks shrink until their peak fits the budget; a trajectory beyond it is refused."""
    grid = aj.Grid(momentum=[0.5, 0.9], delay=[0, 40], lr=0.02, seed=range(64))
    kw = dict(steps=400, record_every=1)
    monkeypatch.setenv("ASYNCJAX_CPU_BUDGET_MB", "0.05")
    plan = aj.sweep_plan(pca, grid, **kw)
    for b in plan.buckets:
        assert b.peak_bytes <= plan.budget * b.n_shards
    monkeypatch.setenv("ASYNCJAX_CPU_BUDGET_MB", "0.001")
    with pytest.raises(
        ValueError, match=r"one trajectory needs .* MiB .*budget of 0\.0 MiB"
    ) as err:
        aj.sweep(pca, grid, **kw)
    assert "\n" not in str(err.value)


def test_a_delay_of_1e8_in_1000_steps_plans_small_chunks_within_the_budget(pca):
    """Issue 18: it planned 1.5 GB chunks against 256 MiB; the ring is now cut to 1 001."""
    grid = aj.Grid(momentum=0.5, delay=[0, 10**8], lr=5e-4, seed=range(4))
    plan = aj.sweep_plan(pca, grid, steps=1000, record_every=100)
    assert max(b.spec.buffer for b in plan.buckets) == 1001
    assert plan.peak_bytes <= plan.budget * len(plan.devices)


def _fake_free(monkeypatch, host=None, device=None):
    from asyncjax.sweep import limits

    if host is not None:
        monkeypatch.setattr(limits, "host_available_bytes", lambda: host)
    if device is not None:
        monkeypatch.setattr(limits, "device_free_bytes", lambda d: device)


def test_a_chunk_beyond_free_memory_is_refused_before_compiling(pca, monkeypatch):
    from asyncjax import engine

    grid = aj.Grid(delay=[0, 3], lr=0.02, seed=range(8))
    _fake_free(monkeypatch, device=1000)
    before = engine.compile_count()
    with pytest.raises(
        ValueError,
        match=r"a chunk of 16 trajectories needs .* but .* has 1,000 B free; pass chunk_size=",
    ):
        aj.sweep(pca, grid, steps=100, record_every=50, chunk_size=16)
    assert engine.compile_count() == before


def test_results_beyond_host_memory_are_refused_naming_the_size(pca, monkeypatch):
    grid = aj.Grid(delay=[0, 3], lr=0.02, seed=range(8))
    _fake_free(monkeypatch, host=500, device=10**12)
    with pytest.raises(
        ValueError,
        match=r"the results \(8 seeds x 2 points x 3 records\) need 704 B of host memory but 500 B is available",
    ):
        aj.sweep(pca, grid, steps=100, record_every=50)


def test_results_that_fit_only_without_the_chunk_name_both_and_a_smaller_chunk(pca, monkeypatch):
    """On the CPU a chunk is computed in host memory beside the results: the line says so."""
    grid = aj.Grid(delay=[0, 3], lr=0.02, seed=range(8))
    sp = aj.sweep_plan(pca, grid, steps=100, record_every=50)
    _fake_free(monkeypatch, host=704 + sp.peak_bytes // 2, device=10**12)
    with pytest.raises(ValueError) as err:
        aj.sweep(pca, grid, steps=100, record_every=50)
    msg = str(err.value)
    assert "need 704 B of host memory and the largest chunk" in msg and "pass chunk_size=" in msg


def test_worker_counts_beyond_the_clock_or_the_budget_name_the_workers(pca, monkeypatch):
    clock = aj.delays.workers("exponential")
    grid = aj.Grid(lr=0.01, workers=10**10, seed=range(2))
    with pytest.raises(ValueError, match=r"workers=10,000,000,000 is more than a run can simulate"):
        aj.sweep_plan(pca, grid, delay_model=clock, steps=100, record_every=50)
    monkeypatch.setenv("ASYNCJAX_CPU_BUDGET_MB", "1")
    grid = aj.Grid(lr=0.01, workers=10**6, seed=range(2))
    with pytest.raises(ValueError, match=r"1,000,000 worker slots.*\(fewer workers\)"):
        aj.sweep_plan(pca, grid, delay_model=clock, steps=100, record_every=50)


def test_host_memory_counts_an_address_space_limit_and_a_container_limit(monkeypatch, tmp_path):
    """`ulimit -v` and a cgroup's memory.max bound what a run may allocate, not only MemAvailable."""
    import resource

    from asyncjax.sweep import memory

    used = memory._proc_kib("/proc/self/status", "VmSize")
    free = memory.host_available_bytes()
    monkeypatch.setattr(resource, "getrlimit", lambda which: (used + (100 << 20), -1))
    assert memory.host_available_bytes() <= min(free, 101 << 20)
    (tmp_path / "memory.max").write_text("3000000000\n")
    (tmp_path / "memory.current").write_text("1000000000\n")
    assert memory._cgroup_left(str(tmp_path)) == 2_000_000_000
    (tmp_path / "memory.max").write_text("max\n")
    assert memory._cgroup_left(str(tmp_path)) is None


def test_the_issue_grid_of_728_TiB_is_refused_in_one_line_without_allocating(pca):
    """10^6 seeds x 2002 points x 100 001 records: NumPy's 'Unable to allocate 728 TiB' before."""
    grid = aj.Grid(momentum=np.linspace(0, 0.9, 2002), lr=5e-4, seed=range(10**6))
    with pytest.raises(ValueError, match=r"need 1\.4 PiB of host memory") as err:
        aj.sweep(pca, grid, steps=100_000, record_every=1)
    assert "\n" not in str(err.value)


def test_1e8_seeds_are_refused_without_building_the_seeds_or_the_settings(pca, monkeypatch):
    """The settings listed 10^8 seeds (12 s, 5.4 GB) before the refusal; a range is never built."""
    import importlib
    import time

    prepare_mod = importlib.import_module("asyncjax.sweep.prepare")

    def built(*args, **kwargs):
        raise AssertionError("built before the refusal")

    monkeypatch.setattr(aj.Grid, "describe", built)
    monkeypatch.setattr(prepare_mod, "seed_values", built)
    grid = aj.Grid(momentum=[0.7, 0.9], lr=5e-4, seed=range(10**8))
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"the results \(100,000,000 seeds x 2 points"):
        aj.sweep(pca, grid, steps=30_000, record_every=250)
    assert time.perf_counter() - t0 < 10  # building 10^8 seeds alone took longer on 2 cores
    assert isinstance(grid.given("seed"), range)


def test_seeds_as_a_range_or_a_list_are_the_same_sweep(pca):
    """The saved settings (their hash resumes a folder) do not depend on how seeds were given."""
    from asyncjax.sweep.checkpoint import sweep_key
    from asyncjax.sweep.prepare import prepare

    def prep(seeds):
        return prepare(pca, aj.Grid(delay=[0, 3], lr=0.02, seed=seeds), steps=100, record_every=50)

    a, b = prep(range(2, 14, 3)), prep([2, 5, 8, 11])
    assert a.attrs == b.attrs and sweep_key(a.attrs) == sweep_key(b.attrs)
    np.testing.assert_array_equal(a.seeds, b.seeds)
    assert a.seeds.dtype == b.seeds.dtype


def test_output_beyond_free_disk_is_refused_naming_the_folder(pca, monkeypatch, tmp_path):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 100))
    grid = aj.Grid(delay=[0, 3], lr=0.02, seed=range(8))
    with pytest.raises(ValueError, match=rf"on disk .* but {tmp_path} has 100 B free"):
        aj.sweep(pca, grid, steps=100, record_every=50, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_steps_beyond_int32_are_refused(pca):
    grid = aj.Grid(lr=0.02, seed=range(2))
    with pytest.raises(ValueError, match=r"steps=3,000,000,000 overflows .*at most 2,147,483,646"):
        aj.sweep(pca, grid, steps=3_000_000_000, record_every=1_000_000_000)


@pytest.mark.parametrize(
    "error",
    [
        MemoryError("Unable to allocate 728. TiB for an array with shape (10, 10)"),
        jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 1.50GiB"),
    ],
)
def test_an_allocation_failure_mid_run_is_one_line_naming_the_chunk(
    monkeypatch, tmp_path, capsys, error
):
    from asyncjax.sweep import run

    def exhausted(self, todo):
        raise error

    monkeypatch.setattr(run._Runner, "all", exhausted)
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[problem]\neigenvalues = [2.0, 1.0]\n[grid]\nlr = 0.1\ndelay = [0, 3]\nseeds = 8\n"
        "[run]\nsteps = 100\nrecord_every = 50\nchunk_size = 16\n"
    )
    assert main(["run", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("asyncjax: error: ran out of memory with chunks")
    assert "16 trajectories" in err and str(error).split(":")[0] in err
    assert "chunk_size=4" in err and "--resume" in err


def test_the_plan_command_warns_of_what_does_not_fit(tmp_path, capsys):
    """Issue 18: `asyncjax plan` printed 1,558,222,086 MiB 'at once' and warned of nothing."""
    cfg = tmp_path / "big.toml"
    cfg.write_text(
        "[problem]\neigenvalues = [4.0, 3.0, 2.0, 1.0]\n[grid]\nlr = 5e-4\n"
        "momentum = { start = 0.0, stop = 0.9, num = 2002 }\nseeds = 1000000\n"
        "[run]\nsteps = 100000\nrecord_every = 1\n"
    )
    assert main(["plan", str(cfg)]) == 0
    captured = capsys.readouterr()
    assert "results in host memory:" in captured.out and "time estimate: none" in captured.out
    assert "asyncjax: warning: the results (1,000,000 seeds x 2,002 points" in captured.err
    assert "PiB of host memory" in captured.err


def test_a_long_run_prints_its_plan_before_it_starts(pca, monkeypatch, capsys):
    from asyncjax.sweep import limits

    monkeypatch.setattr(limits, "ANNOUNCE_CHUNKS", 2)
    # the chunks of the disk tests below (one compiled engine)
    grid = aj.Grid(delay=[0, 3], lr=0.02, seed=range(8))
    aj.sweep(pca, grid, steps=100, record_every=50, chunk_size=4)
    err = capsys.readouterr().err
    assert "asyncjax: plan: 16 trajectories x 100 steps" in err and "4 chunk(s)" in err
    aj.sweep(pca, grid, steps=100, record_every=50, chunk_size=4, progress=False)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ disk
def test_chunks_go_after_assembly_unless_kept_and_resume_reuses_the_results(pca, tmp_path):
    grid = aj.Grid(delay=[0, 3], lr=0.02, seed=range(8))
    kw = dict(steps=100, record_every=50, chunk_size=4)
    res = aj.sweep(pca, grid, out=tmp_path / "a", **kw)
    assert not (tmp_path / "a" / "chunks").exists() and (tmp_path / "a" / "results.npz").exists()
    again = aj.sweep(pca, grid, out=tmp_path / "a", resume=True, **kw)
    assert again.attrs["timing"]["chunks_computed"] == 0
    _assert_identical(res, again)
    kept = aj.sweep(pca, grid, out=tmp_path / "b", keep_chunks=True, **kw)
    assert (
        len(list((tmp_path / "b" / "chunks").glob("chunk-*.npz"))) == kept.attrs["timing"]["chunks"]
    )


def test_a_resumed_run_removes_what_a_killed_writer_left(pca, tmp_path):
    """kill -9 while a file is written leaves its scratch file (the file itself stays whole):
    the next run into the folder removes the scratch of asyncjax's files, and nothing else."""
    grid = aj.Grid(delay=[0, 3], lr=0.02, seed=range(8))
    kw = dict(steps=100, record_every=50, chunk_size=4, keep_chunks=True)
    out = tmp_path / "run"
    aj.sweep(pca, grid, out=out, **kw)
    stale = [out / ".sweep.json.x1.tmp", out / ".results.npz.x2.tmp", out / "chunks" / ".c.x3.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    (out / ".results.npz.x4.tmp").mkdir()  # results are replaced through a scratch folder
    (out / ".results.npz.x4.tmp" / "results.npz").write_bytes(b"half")
    mine = out / ".my-notes.tmp"
    mine.write_text("the user's")
    aj.sweep(pca, grid, out=out, resume=True, **kw)
    assert not any(p.exists() for p in [*stale, out / ".results.npz.x4.tmp"])
    assert mine.read_text() == "the user's"


def test_a_full_disk_names_the_path(pca, monkeypatch, tmp_path):
    import errno

    from asyncjax import _io

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_io.os, "fsync", full)
    grid = aj.Grid(delay=[0, 3], lr=0.02, seed=range(4))
    with pytest.raises(
        OSError, match=rf"cannot write {tmp_path}/\S+: No space left on device"
    ) as err:
        aj.sweep(pca, grid, steps=100, record_every=50, out=tmp_path)
    assert err.value.errno == errno.ENOSPC
    assert not list(tmp_path.rglob("*.tmp"))


# ------------------------------------------------------------------ messages
def _toml(tmp_path, grid, run="steps = 100\nrecord_every = 10\n"):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[problem]\neigenvalues = [2.0, 1.0]\n[grid]\n{grid}\n[run]\n{run}")
    return cfg


@pytest.mark.parametrize(
    ("grid", "run", "message"),
    [
        (
            "lr = 0.1\nmomentum = [0.5, 1.5]",
            "",
            r"c\.toml: \[grid\] momentum must lie in \(-1, 1\); got 1\.5",
        ),
        ("lr = 0.1", 'delay_model = "geometric"\n', r"c\.toml: \[grid\] the grid must set workers"),
        (
            "lr = 0.1\ndelay = 10000000000",
            "",
            r"c\.toml: \[grid\] delay=10,000,000,000 is beyond the largest delay a ring holds "
            r"\(2,147,483,646: .*set delay to `steps` for the same run",
        ),
        (
            "lr = 0.1\ndelay = 50",
            "buffer = 10\n",
            r"\[grid\] delay=50 does not fit the delay buffer of 10 .*raise `buffer` to at least 51",
        ),
    ],
)
def test_grid_errors_of_a_config_name_the_file_the_table_and_what_works(
    tmp_path, capsys, grid, run, message
):
    cfg = _toml(tmp_path, grid, "steps = 100\nrecord_every = 10\n" + run)
    assert main(["run", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(message, err), err


def test_steps_beyond_int32_in_a_config_are_refused_naming_the_file(tmp_path, capsys):
    cfg = _toml(tmp_path, "lr = 0.1", "steps = 3000000000\nrecord_every = 1000000000\n")
    assert main(["plan", str(cfg), "--no-calibrate"]) == 2
    assert "c.toml: [run] steps=3,000,000,000 overflows" in capsys.readouterr().err


def test_the_final_line_names_the_bytes_written(tmp_path, capsys):
    cfg = _toml(tmp_path, "lr = 0.1\ndelay = [0, 2]\nseeds = 4")
    assert main(["run", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.search(rf"\d KiB in {tmp_path / 'o'}\)$", last), last
    assert not (tmp_path / "o" / "chunks").exists()


def test_simulate_cuts_the_ring_too(pca, monkeypatch):
    """One trajectory with a delay of 10^8 over 200 steps (a ring of 201) is the run of delay
    1000 with its whole ring of 1001."""
    kw = dict(momentum=0.5, lr=0.02, seed=3, steps=200, record_every=50)
    far = aj.simulate(pca, delay=10**8, **kw)
    monkeypatch.setattr(Constant, "ring_limit", lambda self, steps: None)
    near = aj.simulate(pca, delay=1000, **kw)
    np.testing.assert_array_equal(far.error, near.error)
    np.testing.assert_array_equal(far.final, near.final)


def test_a_preset_folder_loses_only_the_chunks_of_finished_sweeps(pca, tmp_path):
    """What `asyncjax reproduce` does once a preset has finished (unless --keep-chunks)."""
    from asyncjax.sweep.checkpoint import remove_finished_chunks

    grid = aj.Grid(delay=[0, 3], lr=0.02, seed=range(4))
    kw = dict(steps=100, record_every=50, chunk_size=4, keep_chunks=True)
    aj.sweep(pca, grid, out=tmp_path / "done", **kw)
    aj.sweep(pca, grid, out=tmp_path / "killed", **kw)
    (tmp_path / "killed" / "results.npz").unlink()  # as a run stopped before assembly leaves it
    remove_finished_chunks(tmp_path)
    assert not (tmp_path / "done" / "chunks").exists()
    assert len(list((tmp_path / "killed" / "chunks").glob("chunk-*.npz"))) == 2
