"""Wall-clock analysis of worker-model sweeps, and `asyncjax run` with a [delay] section."""

import json
import re

import numpy as np
import pytest

import asyncjax as aj
from asyncjax import delays, wallclock
from asyncjax.cli import main
from asyncjax.config import ConfigError, parse_config


def _fake(err, wall):
    """Results shaped like a worker sweep: error (workers, seed, step), wall_time (workers, seed, step)."""
    w, s, r = err.shape
    coords = {"workers": np.array([1, 2, 4][:w]), "seed": np.arange(s), "step": 10 * np.arange(r)}
    dims = {"error": ("workers", "seed", "step"), "wall_time": ("workers", "seed", "step")}
    return aj.Results({"error": err, "wall_time": wall}, dims, coords)


def test_time_to_target_is_the_first_record_of_the_seed_mean_below_it():
    err = np.array(
        [
            [[1.0, 0.6, 0.3, 0.1], [1.0, 0.8, 0.5, 0.1]],  # mean 1, .7, .4, .1
            [[1.0, 0.2, 0.1, 0.1], [1.0, 0.4, 0.1, 0.1]],
        ]
    )  # mean 1, .3, .1, .1
    wall = np.array([[[0, 5, 10, 15], [0, 7, 12, 17]], [[0, 2, 4, 6], [0, 3, 5, 7]]], float)
    tt = wallclock.time_to_target(_fake(err, wall), 0.35, n_boot=200)
    assert tt.dims == ("workers",)
    np.testing.assert_array_equal(tt.steps, [30.0, 10.0])
    np.testing.assert_array_equal(tt.wall, [16.0, 2.5])  # seed-mean time at that record
    assert tt.reached.all()
    assert np.all(tt.wall_ci[:, 0] <= tt.wall) and np.all(tt.wall <= tt.wall_ci[:, 1])
    sp = wallclock.speedup(_fake(err, wall), 0.35, n_boot=200)
    np.testing.assert_allclose(sp.speedup, [1.0, 16.0 / 2.5])
    never = wallclock.time_to_target(_fake(err, wall), 0.01, n_boot=50)
    assert not never.reached.any() and np.isnan(never.wall).all()


def test_default_target_ignores_points_that_diverge():
    """A step size that diverges ends at its worst value: the level stays on the others' descent."""
    coords = {"lr": np.array([0.1, 3.0]), "workers": np.array([1, 2]), "seed": np.arange(2)}
    coords["step"] = 10 * np.arange(3)
    dims = ("lr", "workers", "seed", "step")
    both = {"error": dims, "wall_time": dims}
    err = np.empty((2, 2, 2, 3))
    err[0] = [1.0, 0.3, 0.04]  # descends from 1 to 0.04: the level is sqrt(1 * 0.04) = 0.2
    err[1] = [1.0, 50.0, 1e4]  # diverges
    res = aj.Results({"error": err, "wall_time": np.ones_like(err)}, both, coords)
    assert wallclock.default_target(res) == pytest.approx(0.2)
    err[0] = [1.0, 2.0, 3.0]  # nothing descends: no level, and no speedup figure
    res = aj.Results({"error": err, "wall_time": np.ones_like(err)}, both, coords)
    assert np.isnan(wallclock.default_target(res))


def test_speedup_on_a_sweep_is_near_linear_while_staleness_is_harmless(pca):
    """Async-SGD (μ = 0), η = 5e-3, exponential workers: with M ≤ 8 the per-update progress barely changes
    (the staleness stays far below the delay threshold), so M workers reach the target about M times
    sooner in wall-clock time; every worker count shares the seeds' streams, so the intervals are tight."""
    res = aj.sweep(
        pca,
        aj.Grid(workers=[1, 2, 4, 8], momentum=0.0, lr=5e-3, seed=range(24)),
        steps=3000,
        record_every=30,
        delay_model="workers",
    )
    target = wallclock.default_target(res)
    assert 0.1 < target < 0.4  # on the descent from the saddle (error 1) to the noise floor (~0.04)
    sp = wallclock.speedup(res, target, n_boot=300)
    np.testing.assert_allclose(sp.speedup, [1, 2, 4, 8], rtol=0.2)
    assert np.all(sp.ci[:, 0] <= sp.speedup) and np.all(sp.speedup <= sp.ci[:, 1])
    ws, pmf = wallclock.staleness_pmf(res)
    np.testing.assert_array_equal(ws, [1, 2, 4, 8])
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0)
    np.testing.assert_allclose(pmf[2, :3], aj.theory.staleness_pmf(np.arange(3), 4), atol=0.01)


TOML = """
[problem]
eigenvalues = [4.0, 3.0, 2.0, 1.0]
[grid]
workers = [1, 2, 4]
lr = 5e-3
seeds = 6
[run]
steps = 600
record_every = 30
[delay]
model = "workers"
law = "lognormal"
shape = 0.5
straggler = 2.0
[mitigation]
kind = "delay_adaptive"
"""


def test_run_with_a_delay_section_writes_wall_clock_and_speedup_figures(tmp_path, capsys):
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        TOML.replace("[mitigation]", "[analysis]\ntarget = 0.5\n[mitigation]").replace(
            "lr = 5e-3", "lr = 5e-3\nadaptive_c = [4.0, 8.0]"
        )
    )
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    for png in ("error_vs_wallclock.png", "speedup.png", "staleness.png", "error_vs_step.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    table = json.loads((out / "speedup.json").read_text())
    assert table["workers"] == [1, 2, 4] and table["target"] == 0.5 and table["speedup"][0] == 1.0
    # the flat table is one point of the other axes, and says which; every point is kept
    assert table["at"] == {"adaptive_c": 4.0} and table["all"]["dims"] == ["adaptive_c", "workers"]
    assert np.asarray(table["all"]["speedup"]).shape == (2, 3)
    assert table["all"]["speedup"][0] == table["speedup"]
    res = aj.Results.load(out / "results.npz")
    assert res.attrs["delay"]["law"] == "lognormal" and res.attrs["delay"]["straggler"] == 2.0
    assert res.attrs["mitigation"] == {
        "name": "delay_adaptive",
        "axes": ["adaptive_c"],
        "target": "gradient",
    }
    assert (
        "speedup against M = 1 at adaptive_c=4 (every point: speedup.json)"
        in capsys.readouterr().out
    )
    assert main(["plot", str(out)]) == 0  # the saved sweep redraws


@pytest.mark.parametrize(
    "analysis,match",
    [
        ("tagret = 0.05", r"\[analysis\] has unknown key 'tagret' \(did you mean 'target'\?\)"),
        ('target = "low"', r"\[analysis\] target must be a positive number, got 'low'"),
        ("target = -1.0", r"target must be a positive number, got -1.0"),
    ],
)
def test_run_refuses_a_bad_analysis_section_before_running(tmp_path, capsys, analysis, match):
    cfg = tmp_path / "w.toml"
    valid = TOML.replace("lr = 5e-3", "lr = 5e-3\nadaptive_c = 5.0")  # all but [analysis]
    cfg.write_text(valid.replace("[mitigation]", f"[analysis]\n{analysis}\n[mitigation]"))
    before = aj.compile_count()
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert aj.compile_count() == before and not (tmp_path / "out").exists()


def test_trace_file_in_a_config_is_read_next_to_it(tmp_path):
    np.save(tmp_path / "measured.npy", np.array([0, 2, 1, 3]))
    cfg = {
        "problem": {"eigenvalues": [2.0, 1.0]},
        "grid": {"lr": 0.01},
        "run": {"steps": 8, "record_every": 4},
        "delay": {"model": "trace", "file": "measured.npy", "repeat": True},
    }
    spec = parse_config(cfg, "t.toml", base_dir=tmp_path)
    model = spec.run["delay_model"]
    assert (
        isinstance(model, delays.TraceDelay)
        and model.repeat
        and model.values.tolist() == [[0, 2, 1, 3]]
    )


@pytest.mark.parametrize(
    "section,match",
    [
        ({"model": "workers", "file": "x.npy"}, r"keys \['file'\] belong to model = \"trace\""),
        ({"model": "workers", "law": "weibull"}, r"\[delay\] unknown compute-time law 'weibull'"),
        (
            {"model": "workers", "law": "exponentiall"},
            r"\[delay\] unknown compute-time law 'exponentiall' \(did you mean 'exponential'\?\)",
        ),
        ({"model": "trace"}, r"needs exactly one of file or values"),
        ({"model": "constant", "law": "exponential"}, r"takes no options"),
        ({"model": "workers", "colour": 1}, r"unknown key\(s\) 'colour'"),
    ],
)
def test_bad_delay_sections_are_named(section, match):
    cfg = {
        "problem": {"eigenvalues": [2.0, 1.0]},
        "grid": {"lr": 0.01},
        "run": {"steps": 8, "record_every": 4},
        "delay": section,
    }
    with pytest.raises(ConfigError, match=match):
        parse_config(cfg)
