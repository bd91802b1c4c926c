"""The asyncjax command, end to end."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asyncjax.cli import main

FIG1_KEYS = {"momentum", "threshold", "threshold_ci", "predicted", "rule"}


def test_reproduce_list(capsys):
    assert main(["reproduce", "--list"]) == 0
    assert "liu2018-fig1" in capsys.readouterr().out


def test_reproduce_fig1_quick(tmp_path, capsys):
    out = tmp_path / "fig1"
    assert main(["reproduce", "liu2018-fig1", "--quick", "--out", str(out), "--no-progress"]) == 0
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
    assert "predicted" in capsys.readouterr().out
    # a second run of the same preset resumes from its chunks
    assert main(["reproduce", "liu2018-fig1", "--quick", "--out", str(out), "--no-progress"]) == 0


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


def test_malformed_toml_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[problem\neigenvalues = [1, 2]\n")
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml is not valid TOML" in err and "line 1" in err


def test_plot_missing_folder(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _console_script():
    beside = Path(sys.executable).parent / "asyncjax"
    return str(beside) if beside.exists() else shutil.which("asyncjax")


@pytest.mark.skipif(_console_script() is None, reason="console script not installed")
def test_console_script():
    done = subprocess.run([_console_script(), "reproduce", "--list"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "liu2018-fig1" in done.stdout


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "asyncjax.cli", "reproduce", "--list"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "liu2018-fig1" in done.stdout


def test_bench_quick_writes_json(tmp_path):
    from asyncjax.bench import run_benchmark

    path = tmp_path / "bench.json"
    out = run_benchmark(quick=True, json_path=str(path), log=lambda _: None)
    saved = json.loads(path.read_text())
    for name in ("asyncjax", "asyncjax_independent", "numpy_batched", "python_loop"):
        assert saved["results"][name]["traj_steps_per_s"] > 0
    assert out["speedup"]["asyncjax_vs_python_loop"] > 1


def test_reproduce_stationary_quick(tmp_path):
    out = tmp_path / "stat"
    assert main(["reproduce", "liu2018-stationary", "--quick", "--out", str(out), "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert {"momentum", "lr", "simulated", "theory"} <= set(s)
    n = len(s["momentum"])
    assert n == 10 and len(set(s["lr"])) == 2 and 0.0 in s["momentum"]
    ratio = np.array(s["simulated"]) / np.array(s["theory"])
    assert np.all(np.abs(ratio - 1) < 0.1), ratio  # 200 seeds: SE about 2%, see the slow test for 1000
    for png in ("stationary_vs_theory.png", "ode_overlay.png"):
        assert (out / png).exists()
    assert len(s["ode_overlay"]) == 4


def test_use_cpu_cores_is_a_no_op_once_jax_is_running():
    import jax

    import asyncjax as aj

    before = len(jax.devices())
    aj.use_cpu_cores(7)  # backends are up (conftest asked for 4 devices): nothing changes
    assert len(jax.devices()) == before == 4
