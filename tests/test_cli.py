"""The asyncjax command, end to end."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from _headline import check_headline

from asyncjax.cli import main

FIG1_KEYS = {"momentum", "threshold", "threshold_ci", "predicted", "rule"}


def test_reproduce_list(capsys):
    assert main(["reproduce", "--list"]) == 0
    assert "liu2018-fig1" in capsys.readouterr().out


def test_reproduce_fig1_quick(tmp_path, capsys, quick_preset):
    run = quick_preset("liu2018-fig1")  # the session's `asyncjax reproduce liu2018-fig1 --quick`
    out = tmp_path / "fig1"
    shutil.copytree(run.out, out)  # the second run below writes into the folder
    summary = json.loads((out / "summary.json").read_text())
    assert FIG1_KEYS <= set(summary)
    n = len(summary["momentum"])
    assert n == 5 and all(len(summary[k]) == n for k in ("threshold", "threshold_ci", "predicted"))
    thr = np.array(summary["threshold"])
    assert np.all(np.diff(thr) < 0), thr  # more momentum tolerates less delay
    ci = np.array(summary["threshold_ci"])
    assert np.all(ci[:, 0] <= thr) and np.all(thr <= ci[:, 1])
    for png in ("fig1_error_vs_delay.png", "fig1_error_vs_step.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "results.npz").exists()
    assert "predicted" in run.printed
    assert check_headline(run.printed, summary) == 5 * 5  # the table: same numbers as summary.json
    # a second run of the same preset in its folder reads what the first wrote
    assert main(["reproduce", "liu2018-fig1", "--quick", "--out", str(out), "--no-progress"]) == 0
    timing = ("simulation_s", "wall_s")
    again = {k: v for k, v in _summary(out).items() if k not in timing}
    assert again == {k: v for k, v in summary.items() if k not in timing}


def test_unknown_preset_is_a_clear_error(capsys):
    assert main(["reproduce", "liu2019-nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'liu2019-nope'" in err and "liu2018-fig1" in err


CONFIG = """
[problem]
eigenvalues = [3.0, 1.0, 0.5]
[grid]
momentum = [0.0, 0.5]
delay = { start = 0, stop = 4, step = 2 }
lr = 0.01
seeds = 3
[run]
steps = 200
record_every = 50
"""


def test_run_plot_and_resume(tmp_path, capsys):
    cfg = tmp_path / "mine.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert (out / "results.npz").exists() and (out / "error_vs_step.png").exists()
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 2  # would overwrite
    assert "--resume" in capsys.readouterr().err
    assert main(["run", str(cfg), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "0 of 1 chunks computed" in capsys.readouterr().out
    (out / "error_vs_step.png").unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "error_vs_step.png").exists()


def test_refused_values_leave_no_empty_output_folder(tmp_path, capsys):
    cfg = tmp_path / "mine.toml"
    cfg.write_text(CONFIG.replace("momentum = [0.0, 0.5]", "momentum = [0.0, 1.0]"))
    out = tmp_path / "new" / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 2
    assert "momentum" in capsys.readouterr().err
    assert not out.exists()


def test_run_accepts_a_single_sweep_preset_toml_and_explains_a_multi_sweep_one(tmp_path, capsys):
    from asyncjax.experiments import preset_text

    text = (
        preset_text("liu2018-fig1")
        .replace("seeds = 100", "seeds = 2")
        .replace("steps = 30000", "steps = 500")
    )
    cfg = tmp_path / "fig1.toml"
    cfg.write_text(text.replace("record_every = 250", "record_every = 250\nchunk_size = 4000"))
    assert main(["run", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "reads only [analysis] target; ignoring" in err and "window" in err  # said, not silent
    multi = tmp_path / "stationary.toml"
    multi.write_text(preset_text("liu2018-stationary"))
    assert main(["run", str(multi), "--out", str(tmp_path / "m")]) == 2
    assert "holds several sweeps" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_malformed_toml_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[problem\neigenvalues = [1, 2]\n")
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml is not valid TOML" in err and "line 1" in err


def test_plot_missing_folder(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    unfinished = tmp_path / "killed"
    (unfinished / "chunks").mkdir(parents=True)  # what a sweep killed before its end leaves
    assert main(["plot", str(unfinished)]) == 2
    assert (
        f"its sweep did not finish: rerun it with --out {unfinished} --resume"
        in capsys.readouterr().err
    )


def _console_script():
    beside = Path(sys.executable).parent / "asyncjax"
    return str(beside) if beside.exists() else shutil.which("asyncjax")


@pytest.mark.skipif(_console_script() is None, reason="console script not installed")
def test_console_script():
    done = subprocess.run(
        [_console_script(), "reproduce", "--list"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "liu2018-fig1" in done.stdout


def test_module_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "asyncjax.cli", "reproduce", "--list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "liu2018-fig1" in done.stdout


def test_bench_parts_measure_and_the_report_is_written(tmp_path, monkeypatch):
    """The benchmark, small: the engine's measurement (one compiled workload, a few steps), the
    NumPy and Python baselines, and the report assembled from them. The quick benchmark itself
    compiles 23 programs (38 s) and runs with the slow set."""
    from asyncjax import bench

    engine = bench._bench_asyncjax(4, len(bench.MOMENTA) * len(bench.DELAYS), 20, 1, shared=True)
    assert engine["trajectories"] == 4 * len(bench.MOMENTA) * len(bench.DELAYS)
    assert engine["traj_steps_per_s"] > 0 and engine["compile_s"] >= 0
    numpy_rate = bench._bench_numpy(16, 20, 2)
    assert numpy_rate["dtype"] in ("float32", "float64") and numpy_rate["traj_steps_per_s"] > 0
    loop = bench._bench_python_loop(200, 2)
    assert loop["traj_steps_per_s"] > 0
    seen = []

    def measured(*args, **kwargs):
        seen.append(kwargs.get("engine", "engine") if kwargs.get("law") is None else kwargs["law"])
        return {**engine, "traj_steps_per_s_with_clock": engine["traj_steps_per_s"]}

    monkeypatch.setattr(bench, "_bench_asyncjax", measured)
    monkeypatch.setattr(bench, "_bench_numpy", lambda *a: numpy_rate)
    monkeypatch.setattr(bench, "_bench_python_loop", lambda *a: loop)
    monkeypatch.setattr(bench, "_bench_mlp", lambda *a: (_ for _ in ()).throw(ImportError("x")))
    path = tmp_path / "bench.json"
    out = bench.run_benchmark(quick=True, json_path=str(path), log=lambda _: None)
    assert sorted(seen) == ["constant", "engine", "engine", "exponential", "reference"]
    saved = json.loads(path.read_text())
    assert saved["speedup"] == out["speedup"]
    assert saved["speedup"]["asyncjax_vs_python_loop"] == pytest.approx(
        engine["traj_steps_per_s"] / loop["traj_steps_per_s"]
    )
    assert saved["device_kind"] == jax.devices()[0].device_kind


@pytest.mark.slow
def test_bench_quick_writes_json(tmp_path):
    from asyncjax.bench import run_benchmark

    path = tmp_path / "bench.json"
    out = run_benchmark(quick=True, json_path=str(path), log=lambda _: None)
    saved = json.loads(path.read_text())
    for name in ("asyncjax", "asyncjax_independent", "numpy_batched", "python_loop"):
        assert saved["results"][name]["traj_steps_per_s"] > 0
    assert out["speedup"]["asyncjax_vs_python_loop"] > 1
    assert saved["device_kind"] == jax.devices()[0].device_kind  # which device the figures are for


def test_reproduce_stationary_quick(tmp_path, capsys, quick_preset):
    run = quick_preset("liu2018-stationary")  # the session's `reproduce ... --quick`
    out = tmp_path / "stat"
    shutil.copytree(run.out, out)  # the export below writes into the folder
    s = json.loads((out / "summary.json").read_text())
    assert check_headline(run.printed, s) == 10 * 6  # its table = summary.json
    assert {"momentum", "lr", "simulated", "theory"} <= set(s)
    n = len(s["momentum"])
    assert n == 10 and len(set(s["lr"])) == 2 and 0.0 in s["momentum"]
    ratio = np.array(s["simulated"]) / np.array(s["theory"])
    assert np.all(np.abs(ratio - 1) < 0.1), (
        ratio
    )  # 200 seeds: SE about 2%, see the slow test for 1000
    for png in ("stationary_vs_theory.png", "ode_overlay.png"):
        assert (out / png).exists()
    assert len(s["ode_overlay"]) == 4
    if all(importlib.util.find_spec(m) for m in ("xarray", "h5netcdf", "h5py")):
        capsys.readouterr()
        assert main(["export", str(out), "--to", "netcdf"]) == 0  # a preset of two sweeps: each
        assert capsys.readouterr().out.split() == [
            "wrote",
            str(out / "ode" / "results.nc"),
            "wrote",
            str(out / "stationary" / "results.nc"),
        ]


def test_use_cpu_cores_is_a_no_op_once_jax_is_running():
    import jax

    import asyncjax as aj

    before = len(jax.devices())
    aj.use_cpu_cores(7)  # backends are up (conftest asked for 4 devices): nothing changes
    assert len(jax.devices()) == before == 4


# --------------------------------------------------------------- issue 7, items 2, 4, 5, 8
def test_version(capsys):
    import asyncjax as aj

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"asyncjax {aj.__version__}"


def _summary(path):
    return json.loads((path / "summary.json").read_text())


def test_a_reproduce_refused_before_computing_leaves_its_folder_free(tmp_path, capsys):
    """A refused run left reproduce.json behind, and the folder then refused a --quick run
    ("already holds the results ... grid.seeds: 100000000 -> 16") though it held none."""
    from asyncjax.experiments import load_preset
    from asyncjax.experiments.runner import _apply_overrides, _claim

    out = tmp_path / "fig1"
    argv = ["reproduce", "liu2018-fig1", "--seeds", str(10**8), "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 2
    assert "the results (100,000,000 seeds" in capsys.readouterr().err
    assert not out.exists()  # it made the folder, and took it back

    other = tmp_path / "mine"
    (other / "notes.txt").parent.mkdir()
    (other / "notes.txt").write_text("kept")
    assert main([*argv, "--out", str(other)]) == 2
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]  # as it was found

    quick = _apply_overrides(load_preset("liu2018-fig1"), quick=True, seeds=None)
    assert _claim(other, "liu2018-fig1", quick, overwrite=False, quick=True)
    assert json.loads((other / "reproduce.json").read_text())["config"]["grid"]["seeds"] == 16


def test_reproduce_refuses_a_folder_holding_another_run(tmp_path, capsys, quick_preset):
    """A run with other settings never silently replaces another (here a full run over a quick
    one, refused before it computes anything); --overwrite replaces it and leaves no stale file."""
    out = tmp_path / "fig1"
    shutil.copytree(quick_preset("liu2018-fig1").out, out)
    assert _summary(out)["steps"] == 12000 and _summary(out)["quick"]
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()

    assert (
        main(["reproduce", "liu2018-fig1", "--seeds", "2", "--out", str(out), "--no-progress"]) == 2
    )
    err = capsys.readouterr().err
    assert (
        f"asyncjax: error: {out} already holds the results of `asyncjax reproduce liu2018-fig1 "
        "--quick`" in err
    )
    assert "with other settings (" in err and "run.steps: 12000 -> 30000" in err  # what differs
    assert "--overwrite" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched

    assert (
        main(["reproduce", "liu2018-stationary", "--quick", "--out", str(out), "--no-progress"])
        == 2
    )
    assert "liu2018-fig1" in capsys.readouterr().err

    assert (
        main(
            [
                "reproduce",
                "liu2018-fig1",
                "--quick",
                "--seeds",
                "2",
                "--out",
                str(out),
                "--no-progress",
                "--overwrite",
            ]
        )
        == 0
    )
    quick = _summary(out)
    assert quick["quick"] and quick["steps"] == 12000
    assert aj_results(out).attrs["steps"] == 12000

    # another preset over it: the fig1 figures and sweep go, nothing of them is left beside the new ones
    (out / "notes.txt").write_text("mine")  # not asyncjax's: kept
    assert (
        main(
            [
                "reproduce",
                "liu2018-stationary",
                "--quick",
                "--seeds",
                "2",
                "--out",
                str(out),
                "--no-progress",
                "--overwrite",
            ]
        )
        == 0
    )
    names = {p.name for p in out.iterdir()}
    assert names == {
        "notes.txt",
        "reproduce.json",
        "summary.json",
        "stationary",
        "ode",
        "stationary_vs_theory.png",
        "ode_overlay.png",
    }
    assert _summary(out)["preset"] == "liu2018-stationary"


def aj_results(folder):
    from asyncjax.results import Results

    return Results.load(folder / "results.npz")


def test_reproduce_refuses_a_sweep_that_asyncjax_run_wrote(tmp_path, capsys):
    cfg = tmp_path / "mine.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["reproduce", "liu2018-fig1", "--quick", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert (
        "not recorded as a run of `asyncjax reproduce liu2018-fig1`" in err and "results.npz" in err
    )


@pytest.mark.parametrize("command", ["run", "reproduce"])
def test_out_naming_a_file_is_a_clear_error_before_any_compile(tmp_path, capsys, command):
    import asyncjax as aj

    cfg = tmp_path / "mine.toml"
    cfg.write_text(CONFIG)
    target = tmp_path / "taken"
    target.write_text("a file")
    before = aj.compile_count()
    args = ["run", str(cfg)] if command == "run" else ["reproduce", "liu2018-fig1", "--quick"]
    assert main(args + ["--out", str(target), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"asyncjax: error: output folder {target} is an existing file, not a folder"
    )
    assert "Traceback" not in err and aj.compile_count() == before
    assert target.read_text() == "a file"


def _unwritable_folder(tmp_path):
    import os

    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    if Path("/sys/kernel").is_dir():  # root may write anywhere except on sysfs
        return Path("/sys/kernel")
    pytest.skip("no unwritable folder available to root")


@pytest.mark.parametrize("command", ["run", "reproduce"])
def test_unwritable_out_is_a_clear_error(tmp_path, capsys, command):
    import asyncjax as aj

    cfg = tmp_path / "mine.toml"
    cfg.write_text(CONFIG)
    folder = _unwritable_folder(tmp_path)
    before = aj.compile_count()
    args = ["run", str(cfg)] if command == "run" else ["reproduce", "liu2018-fig1", "--quick"]
    assert main(args + ["--out", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"asyncjax: error: cannot write into output folder {folder}: ")
    assert "Traceback" not in err and aj.compile_count() == before
    sub = folder / "new"
    assert main(args + ["--out", str(sub), "--no-progress"]) == 2
    assert f"asyncjax: error: cannot create output folder {sub}: " in capsys.readouterr().err


def test_plot_a_truncated_or_foreign_npz_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "mine.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    path = out / "results.npz"
    path.write_bytes(path.read_bytes()[:300])
    capsys.readouterr()
    assert main(["plot", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"asyncjax: error: {path} cannot be read as asyncjax results")
        and "truncated" in err
    )
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.arange(3))
    assert main(["plot", str(foreign)]) == 2
    assert (
        f"asyncjax: error: {foreign} is not an asyncjax results file: it has no 'metadata' entry"
        in capsys.readouterr().err
    )
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    assert main(["plot", str(text)]) == 2
    assert f"asyncjax: error: {text} cannot be read" in capsys.readouterr().err


def test_plot_a_preset_folder_draws_each_sweep(tmp_path, capsys, quick_preset):
    out = tmp_path / "stat"
    shutil.copytree(quick_preset("liu2018-stationary").out, out)  # plot writes into the folder
    for png in out.rglob("error_vs_step.png"):
        png.unlink()  # drawn below
    assert main(["plot", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "holds the sweeps ode, stationary" in printed
    for sub in ("ode", "stationary"):
        assert (out / sub / "error_vs_step.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(out / "stationary" / "results.npz")]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plot", str(empty)]) == 2
    assert "holds no results.npz, nor do its subfolders" in capsys.readouterr().err


def test_progress_flags_work_without_a_terminal(tmp_path, capsys):
    cfg = tmp_path / "mine.toml"
    cfg.write_text(CONFIG)
    assert main(["run", str(cfg), "--out", str(tmp_path / "a"), "--progress"]) == 0
    err = capsys.readouterr().err  # stderr is captured: not a terminal, so plain lines
    assert "asyncjax: chunks: 100%" in err and "| 1/1 [" in err and "\r" not in err
    for stage in ("planning 18 trajectories", "compiling", "assembling", "compressing", "drawing"):
        assert f"asyncjax: {stage}" in err, err
    assert (
        main(["run", str(cfg), "--out", str(tmp_path / "b")]) == 0
    )  # on by default for the command
    assert "asyncjax: chunks: 100%" in capsys.readouterr().err
    assert main(["run", str(cfg), "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    assert "asyncjax:" not in capsys.readouterr().err  # quiet: no bar, no stage lines
    assert main(["run", str(cfg), "--out", str(tmp_path / "a"), "--resume", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "nothing to compute: every chunk is on disk already" in err and "nan" not in err


def test_progress_in_a_log_is_a_few_plain_lines_and_quiet_when_off(capsys):
    from asyncjax.sweep.progress import Progress

    bar = Progress(500, 1e3, True)  # stderr is captured: a log, not a terminal
    bar.stage("compiling for a ring of 5 slots")
    for n in range(501):
        bar.update(n, n)
    bar.update(500, 500)  # a late update after the end prints nothing more
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and 3 <= len(lines) <= 4, lines  # start, stage, (maybe one), end
    assert lines[1] == "asyncjax: compiling for a ring of 5 slots"
    assert lines[-1].startswith("asyncjax: chunks: 100%") and "500/500" in lines[-1]
    nothing = Progress(0, 1e3, True)
    nothing.update(0, 0)
    nothing.update(0, 0)
    assert capsys.readouterr().err == (
        "asyncjax: nothing to compute: every chunk is on disk already\n"
    )
    quiet = Progress(5, 1e3, False)
    quiet.stage("compiling")
    for n in range(6):
        quiet.update(n, n)
    assert capsys.readouterr().err == ""


def test_results_metadata_defines_variables_and_names_their_source(tmp_path, capsys):
    from asyncjax.experiments import preset_text

    cfg = tmp_path / "mine.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "diverged: 0 of 18 trajectories (0.0%)" in capsys.readouterr().out
    with np.load(out / "results.npz", allow_pickle=False) as f:  # readable without asyncjax
        attrs = json.loads(str(f["metadata"]))["attrs"]
    assert "sin^2" in attrs["variables"]["error"]["description"]
    assert "norm" in attrs["variables"]["norm"]["description"]
    assert "-1: it never diverged" in attrs["variables"]["diverged_at"]["description"]
    assert attrs["source"]["config"] == str(cfg.resolve()) and attrs["source"]["toml"] == CONFIG

    fig = tmp_path / "fig1"
    assert (
        main(
            [
                "reproduce",
                "liu2018-fig1",
                "--quick",
                "--seeds",
                "2",
                "--out",
                str(fig),
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    src = aj_results(fig).attrs["source"]
    assert (
        src["preset"] == "liu2018-fig1"
        and src["quick"]
        and src["toml"] == preset_text("liu2018-fig1")
    )
    s = _summary(fig)
    n = s["trajectories"]
    assert (
        n == 5 * 31 * 2 and f"diverged: {s['diverged_trajectories']} of {n} trajectories" in printed
    )
    div = np.array(s["diverged_fraction"])
    assert div.shape == (5, 31) and div[-1, -1] == 1.0  # μ = 0.95, τ = 150 always diverges
    assert len(s["diverged_fraction_below_threshold"]) == 5 and "sin² = 1" in s["divergence_rule"]


def test_documented_timings_agree_with_the_recorded_summary():
    import re

    root = Path(__file__).parent.parent
    fig1 = (root / "docs/reproductions/liu2018-fig1.md").read_text()
    s = json.loads((root / "benchmarks/results/liu2018-fig1/summary.json").read_text())
    sim, wall = re.search(
        r"([\d.]+) s of simulation and ([\d.]+) s for the\s+whole preset", fig1
    ).groups()
    assert float(sim) == round(s["simulation_s"], 1) and float(wall) == round(s["wall_s"], 1)
    for page in ("README.md", "docs/getting-started.md", "docs/reproductions/liu2018-fig1.md"):
        text = (root / page).read_text()
        about = float(re.search(r"It takes\s+about ([\d.]+) s on a 2-core CPU", text).group(1))
        assert abs(about - s["wall_s"]) <= 1.0, page
    st = json.loads((root / "benchmarks/results/liu2018-stationary/summary.json").read_text())
    stationary = (root / "docs/reproductions/liu2018-stationary.md").read_text()
    stat = float(re.search(r"liu2018-stationary` \(([\d.]+) s on the", stationary).group(1))
    assert stat == round(st["wall_s"], 1)


HIDE_TOMLLIB = """
import sys

class _NoTomllib:  # as on Python 3.10: there is no tomllib
    def find_spec(self, name, path=None, target=None):
        if name == "tomllib":
            raise ModuleNotFoundError("No module named 'tomllib'", name="tomllib")

sys.meta_path.insert(0, _NoTomllib())
from asyncjax.cli import main
from asyncjax import _toml
assert _toml.loads.__module__.startswith("tomli"), _toml.loads.__module__
assert "tomllib" not in sys.modules
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["plan", pytest.param("run", marks=pytest.mark.slow)])
def test_run_and_plan_read_toml_without_tomllib(tmp_path, command):
    """Python 3.10 has no tomllib: the tomli backport reads the same files (both commands read
    them through one loader; `run` also runs the sweep, so it is in the slow set)."""
    cfg = tmp_path / "mine.toml"
    cfg.write_text(CONFIG)
    args = [command, str(cfg)] + (
        ["--out", str(tmp_path / "o"), "--no-progress"] * (command == "run")
    )
    proc = subprocess.run(
        [sys.executable, "-c", HIDE_TOMLLIB, *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    if command == "run":
        assert (tmp_path / "o" / "results.npz").exists()
    else:
        assert "trajectories" in proc.stdout


def test_a_preset_that_needs_scikit_learn_says_so_before_anything_runs(
    tmp_path, capsys, monkeypatch
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    out = tmp_path / "dnn"
    assert main(["reproduce", "liu2018-dnn", "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the liu2018-dnn preset" in err and 'pip install "asyncjax[data]"' in err
    assert not out.exists()  # refused before the folder was claimed or a sweep ran


def test_output_cut_short_by_a_pipe_is_no_error():
    """`asyncjax plan … | head -1`: the reader closing the pipe is not an error."""
    proc = subprocess.run(
        f"{sys.executable} -m asyncjax reproduce --list | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.count("\n") == 1 and "Broken pipe" not in proc.stderr
