"""The maranjyan2025-ringmaster preset: its quick run end to end, and the full run (slow).

The quick run (256 workers, horizon 300, 8 seeds) runs once for the module; the tests check the
keys the issue names, their shapes, that the printed table is summary.json's, and properties
that could fail: the curves start at f(x₀) − f*, the recorded clock equals the event log of
`asyncjax.servers.schedule`, the tuned setting is the best of the saved tuning sweep, and the
paper's order holds.
"""

import json
import time

import numpy as np
import pytest
from _headline import check_headline, reproduce_quick

import asyncjax as aj
from asyncjax.experiments import load_preset
from asyncjax.experiments.maranjyan2025_ringmaster import (
    at_times,
    final_events,
    laid_out,
    method_axis,
    order_reproduced,
    sweep_config,
)
from asyncjax.experiments.runner import _apply_overrides
from asyncjax.results import Results

NAME = "maranjyan2025-ringmaster"
PRINTED = {}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp(NAME)
    PRINTED["quick"] = reproduce_quick(NAME, out)
    return out, json.loads((out / "summary.json").read_text())


def test_prints_its_headline_table_with_the_numbers_of_summary_json(quick):
    _, s = quick
    n = len(s["methods"])
    assert check_headline(PRINTED["quick"], s) == 6 * n + 2 * n + 2


def test_summary_keys_and_shapes(quick):
    out, s = quick
    assert s["methods"] == ["ringmaster", "rennala", "delay_adaptive_asgd", "asgd"]
    m, t = len(s["methods"]), len(s["time"])
    assert t == 61 and s["time"][0] == 0 and s["time"][-1] == s["horizon"] == 300
    for key in ("error", "grad_sq"):
        assert np.shape(s[key]) == (m, t) and np.shape(s[f"{key}_ci"]) == (m, t, 2)
    assert np.shape(s["final_error"]) == (m,) and np.shape(s["final_error_ci"]) == (m, 2)
    for key in ("tuned", "paper_setting_final_error", "updates_at_horizon", "tuned_at_grid_edge"):
        assert list(s[key]) == s["methods"], key
    assert set(s["tuned"]["ringmaster"]) == {"lr", "delay_threshold"}
    assert set(s["tuned"]["rennala"]) == {"lr", "batch"}
    assert set(s["tuned"]["asgd"]) == {"lr"} == set(s["tuned"]["delay_adaptive_asgd"])
    assert s["seeds"] == 8 and s["workers"] == 256 and s["d"] == 1729
    for fig in ("error_vs_time.png", "grad_sq_vs_time.png", "tuning.png"):
        assert (out / fig).stat().st_size > 10_000, fig


def test_curves_start_at_the_start_and_end_at_the_final_numbers(quick):
    _, s = quick
    quad = aj.problems.ringmaster_quadratic(d=s["d"])
    dx = quad.init_point - quad.x_star
    f0 = 0.5 * dx @ quad.to_dense() @ dx  # no worker has arrived at t = 0
    err, ci = np.array(s["error"]), np.array(s["error_ci"])
    assert err[:, 0] == pytest.approx(f0, rel=1e-5)
    assert err[:, -1] == pytest.approx(s["final_error"], rel=1e-12)
    assert np.all((ci[..., 0] <= err * (1 + 1e-9)) & (err <= ci[..., 1] * (1 + 1e-9)))
    assert np.all(np.isfinite(err)) and np.all(err[:, -1] < 0.01 * f0)  # every method made progress


def test_the_recorded_clock_is_the_event_log_of_schedule(quick):
    """The final runs' wall_time and updates at every record are those of the NumPy event log."""
    out, s = quick
    cfg = _apply_overrides(load_preset(NAME), quick=True, seeds=None)
    clock = aj.delays.workers(**{k: v for k, v in cfg["delay"].items() if k != "model"})
    for name in ("ringmaster", "rennala", "asgd"):
        method = cfg["analysis"]["methods"][name]
        axis = method_axis(method)
        folder = out / name if (out / name).is_dir() else out / f"{name}_tuned"
        res = Results.load(folder / "results.npz")
        steps = np.asarray(res.coords["step"])[1:]
        wall = laid_out(res, "wall_time", axis, fail=False)
        upd = laid_out(res, "updates", axis, fail=False)
        tuned = s["tuned"][name]
        i = [int(np.argmin(np.abs(res.coords[k] - tuned[k]))) for k in ("lr", axis) if k]
        opts = {k: v for k, v in method["server"].items() if k != "kind"}
        server = aj.servers.get_server(method["server"]["kind"], **opts)
        hp = {axis: tuned[axis]} if axis else {}
        for seed in (0, 5):
            log = aj.servers.schedule(
                server, clock, workers=s["workers"], seed=seed, arrivals=int(steps[-1]), **hp
            )
            assert np.array_equal(upd[(*i, seed)][1:], log["updates"][steps - 1]), name
            np.testing.assert_allclose(wall[(*i, seed)][1:], log["time"][steps - 1], rtol=1e-5)
        assert np.all(wall[..., -1] >= s["horizon"])  # every trajectory passed the horizon


def test_tuned_settings_are_the_best_of_the_saved_tuning_sweeps(quick):
    out, s = quick
    methods = load_preset(NAME)["analysis"]["methods"]
    for name in s["methods"]:
        axis = method_axis(methods[name])
        folders = sorted(out.glob(f"{name}_tuning*"))
        assert len(folders) == 1, folders  # the quick run tunes in one sweep per method
        score, values = [], []
        for folder in folders:
            res = Results.load(folder / "results.npz")
            wall = laid_out(res, "wall_time", axis, fail=False)
            err = at_times(laid_out(res, "error", axis), wall, np.array([s["horizon"]]))[..., 0]
            score.append(err.mean(axis=-1).reshape(len(res.coords["lr"]), -1))
            values += list(res.coords[axis]) if axis else [0]
        score = np.concatenate(score, axis=1)[:, np.argsort(values)]
        stored = np.array(s["tuning"][name]["score"], float).reshape(score.shape)
        assert stored == pytest.approx(score, rel=1e-12)
        best = np.unravel_index(np.argmin(score), score.shape)
        assert s["tuned"][name]["lr"] == s["tuning"][name]["lr"][best[0]]
        if axis:
            assert s["tuned"][name][axis] == sorted(values)[best[1]]
            assert s["tuning"][name][axis] == sorted(values)


def test_rennala_with_one_gradient_is_ringmaster_with_threshold_one_in_the_tuning(quick):
    """The identity of the two rules (B = 1, R = 1, both with stops) on the same tuning seeds:
    every step of the grid gives the same f − f* at the horizon (each event is recorded)."""
    _, s = quick
    ring, renn = s["tuning"]["ringmaster"], s["tuning"]["rennala"]
    r1 = np.array(ring["score"], float)[:, ring["delay_threshold"].index(1)]
    b1 = np.array(renn["score"], float)[:, renn["batch"].index(1)]
    lrs = [ring["lr"].index(x) for x in renn["lr"]]  # Ringmaster's grid adds γ = 0.25
    assert r1[lrs] == pytest.approx(b1, rel=1e-6)
    assert np.isfinite(b1).sum() >= 5


def test_the_order_of_the_paper_holds_in_the_quick_run(quick):
    """Ringmaster and Rennala end far below both ASGDs, as at full size (deterministic seeds)."""
    _, s = quick
    final = dict(zip(s["methods"], s["final_error"]))
    assert s["paper_order_reproduced"] is True
    assert max(final["ringmaster"], final["rennala"]) * 5 < final["delay_adaptive_asgd"]
    assert final["ringmaster"] < final["rennala"]


def test_sweep_configs_and_event_margins():
    cfg = load_preset(NAME)
    methods = cfg["analysis"]["methods"]
    assert {method_axis(m) for m in methods.values()} == {"delay_threshold", "batch", None}
    paper_lr = {5.0**i for i in range(-5, 5)}  # the paper's grid
    for name, m in methods.items():
        lrs = set(m["lr"])
        assert {v for v in lrs if any(np.isclose(v, p) for p in paper_lr)} and m["paper"][
            "lr"
        ] in lrs
        assert min(lrs) < 5.0**-5 and max(lrs) > 5.0**4, name  # past both ends of the paper's
    da = sweep_config(cfg, methods["delay_adaptive_asgd"], {"lr": [3.2e-4]}, [0, 1], 1000)
    assert da["grid"]["adaptive_c"] == 6174 and da["mitigation"] == {"kind": "delay_adaptive"}
    assert da["run"]["steps"] >= 1000 and da["run"]["steps"] % da["run"]["record_every"] == 0
    assert final_events(3000) == int(np.ceil(3000 * (1.01 + 2 / np.sqrt(3000))))
    assert order_reproduced({"ringmaster": 1.0}, {}) is None
    ci = {"rennala": [0.9, 1.1]}
    assert order_reproduced({"ringmaster": 1.05, "rennala": 1.0, "delay_adaptive_asgd": 5.0}, ci)
    assert not order_reproduced({"ringmaster": 1.2, "rennala": 1.0, "delay_adaptive_asgd": 9}, ci)


def test_quick_tables_change_only_the_keys_they_name():
    cfg = load_preset(NAME)
    quick = _apply_overrides(cfg, quick=True, seeds=None)
    full = _apply_overrides(cfg, quick=False, seeds=None)
    assert quick["grid"]["workers"] == 256 and full["grid"]["workers"] == 6174
    assert quick["grid"]["momentum"] == full["grid"]["momentum"] == 0.0
    q, f = quick["analysis"]["methods"], full["analysis"]["methods"]
    assert q["asgd"]["tuning"][0]["events"] < f["asgd"]["tuning"][0]["events"]
    assert q["asgd"]["tune_seeds"] == [1000]
    for name in q:  # the quick step grids: the middle of the full ones, the paper's step included
        assert set(q[name]["lr"]) < set(f[name]["lr"]) and q[name]["paper"]["lr"] in q[name]["lr"]
    assert len(q["ringmaster"]["tuning"]) == 1 and len(f["ringmaster"]["tuning"]) == 2
    assert _apply_overrides(cfg, quick=False, seeds=5)["grid"]["seeds"] == 5


# ----------------------------------------------------------------------------- full size
@pytest.mark.slow
def test_full_size_reproduces_the_order_within_six_minutes(tmp_path):
    """The issue's acceptance: four methods × 64 seeds at n = 6174, d = 1729, horizon 2000,
    within 6 minutes on the 2-core CPU, with Ringmaster ≲ Rennala ≪ delay-adaptive ASGD: the
    preset's rule at the tuned settings (Ringmaster's mean within Rennala's interval; its tuned
    step is at the edge of stability, so a few seeds stray and the means cross), and strictly at
    the paper's own settings, where the intervals are apart."""
    from asyncjax.cli import main

    t = time.perf_counter()
    assert main(["reproduce", NAME, "--out", str(tmp_path), "--no-progress"]) == 0
    wall = time.perf_counter() - t
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["seeds"] == 64 and s["workers"] == 6174 and s["d"] == 1729 and s["horizon"] == 2000
    assert s["paper_order_reproduced"] is True, s["final_error"]
    final = dict(zip(s["methods"], s["final_error"]))
    assert max(final["ringmaster"], final["rennala"]) < final["delay_adaptive_asgd"] / 5
    paper, ci = s["paper_setting_final_error"], s["paper_setting_final_error_ci"]
    assert (
        ci["ringmaster"][1] < ci["rennala"][0] and paper["rennala"] < paper["delay_adaptive_asgd"]
    )
    assert wall < 360.0, wall
