"""The server presets tyurin2023-time and ringmaster-momentum: quick runs end to end, their helpers.

Each quick preset runs once per module (fixtures); the tests check the keys
the issue names, their shapes, that the headline numbers can be recomputed
from the saved sweeps and the theory, and one property of each that a wrong
server, clock or analysis would break.
"""

import json

import numpy as np
import pytest
from _headline import check_headline, reproduce_quick

import asyncjax as aj
from asyncjax import wallclock
from asyncjax.experiments._time_to_eps import tuned_time, with_grad_sq
from asyncjax.experiments.ringmaster_momentum import best_thresholds, divergence_edge
from asyncjax.experiments.runner import _apply_overrides
from asyncjax.experiments.tyurin2023_time import compute_times
from asyncjax.reproduce import PRESETS
from asyncjax.results import Results

PRINTED = {}


@pytest.fixture(scope="module")
def tyurin(tmp_path_factory):
    out = tmp_path_factory.mktemp("tyurin2023-time")
    PRINTED["tyurin2023-time"] = reproduce_quick("tyurin2023-time", out)
    return out, json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def momentum(tmp_path_factory):
    out = tmp_path_factory.mktemp("ringmaster-momentum")
    PRINTED["ringmaster-momentum"] = reproduce_quick("ringmaster-momentum", out)
    return out, json.loads((out / "summary.json").read_text())


def _written(out, summary, name):
    assert summary["preset"] == name and summary["quick"] is True
    assert summary["figures"] == list(PRESETS[name].FIGURES)
    for fig in PRESETS[name].FIGURES:
        assert (out / fig).stat().st_size > 10_000, fig


def _times(value):
    """A summary table with null (never reached) as inf."""
    return np.array(
        [[np.inf if v is None else float(v) for v in row] for row in value], dtype=float
    )


# --------------------------------------------------------------------- tyurin2023-time
def test_tyurin_prints_its_headline_with_the_numbers_of_summary_json(tyurin):
    _, s = tyurin
    m, n = len(s["methods"]), len(s["workers"])
    assert check_headline(PRINTED["tyurin2023-time"], s) == 3 * m + 4 + 4 * n


def test_tyurin_summary_keys_and_shapes(tyurin):
    out, s = tyurin
    _written(out, s, "tyurin2023-time")
    assert s["workers"] == [16, 64]  # the quick grid
    assert s["methods"] == ["asgd", "delay_adaptive", "minibatch", "rennala", "ringmaster"]
    m, n = len(s["methods"]), len(s["workers"])
    assert np.shape(s["time_to_eps"]) == (m, n) and np.shape(s["theory"]) == (m, n)
    assert np.shape(s["time_to_eps_ci"]) == (m, n, 2)
    assert s["eps"] == 0.008 and s["s"] == pytest.approx(10.0)
    assert len(s["asgd_to_ringmaster"]) == len(s["asgd_to_ringmaster_theory"]) == n
    for name in s["methods"]:
        assert len(s["tuned"][name]) == n and "lr" in s["tuned"][name][0]


def test_tyurin_theory_is_the_formula_times_one_constant(tyurin):
    _, s = tyurin
    for k, name in enumerate(s["methods"]):
        f = s["formula"][name]
        want = [
            s["theory_constant"] * aj.theory.time_complexity(compute_times(n), s["s"], f)
            for n in s["workers"]
        ]
        assert s["theory"][k] == pytest.approx(want, rel=1e-9)
    ratio = [
        aj.theory.time_complexity(compute_times(n), s["s"], "asgd")
        / aj.theory.time_complexity(compute_times(n), s["s"], "optimal")
        for n in s["workers"]
    ]
    assert s["asgd_to_ringmaster_theory"] == pytest.approx(ratio)


def test_tyurin_optimal_methods_are_flat_and_asgd_grows(tyurin):
    """The issue's acceptance on the quick grid: adding workers 17…64 (τ up to 8) leaves
    Rennala's and Ringmaster's time to ε where it was, and slows ASGD down.

    A server that let the slow workers' stale gradients through, or a clock that
    ignored the worker count, would break one or the other.
    """
    _, s = tyurin
    t = dict(zip(s["methods"], _times(s["time_to_eps"])))
    assert s["flat"]["rennala"] and s["flat"]["ringmaster"]
    assert t["ringmaster"][1] == pytest.approx(t["ringmaster"][0], rel=0.05)
    assert t["asgd"][1] > 1.3 * t["asgd"][0]
    assert np.all(t["ringmaster"] < t["asgd"])
    # minibatch steps once per round of τ_n = √n: its time is a whole number of rounds
    rounds = t["minibatch"] / np.sqrt(s["workers"])
    assert rounds == pytest.approx(np.round(rounds), abs=1e-4)


def test_tyurin_times_recomputed_from_the_saved_sweeps(tyurin):
    """The chunked first-crossing rule equals asyncjax.wallclock.time_to_target on the saved sweep."""
    out, s = tyurin
    k = s["methods"].index("ringmaster")
    res = Results.load(out / "ringmaster" / "results.npz")
    tt = wallclock.time_to_target(with_grad_sq(res), s["eps"], var="grad_sq", n_boot=50)
    wall = np.where(tt.reached, tt.wall, np.inf)  # (workers, lr, delay_threshold)
    best = wall.reshape(wall.shape[0], -1).min(axis=1)
    assert _times([s["time_to_eps"][k]])[0] == pytest.approx(best, rel=1e-6)
    mine = tuned_time(res, s["eps"], ("workers",), n_boot=50)
    assert np.array_equal(np.isfinite(mine.table), np.isfinite(wall))
    assert np.allclose(mine.table[np.isfinite(wall)], wall[np.isfinite(wall)], rtol=1e-6)
    boot = np.asarray(tt.boot_wall)
    assert np.allclose(mine.boot, boot.reshape(boot.shape[:2] + (-1,)).min(axis=-1), rtol=1e-6)


def test_minibatch_as_msync_of_the_fastest_n_is_minibatch_on_n_workers():
    """What tyurin2023-time relies on: with fixed times sorted fastest first, waiting for the
    fastest m of N workers is, event for event, waiting for all of m workers."""
    clock = aj.delays.workers("constant", base="sqrt(i + 1)", noise_scale=0)
    run = dict(
        delay_model=clock,
        server="msync",
        lr=0.3,
        momentum=0.0,
        steps=60,
        record_every=3,
        record_params=True,
        batch=3,
    )
    quad = aj.Quadratic([1.0, 0.5, 0.25], noise=0.2)
    a = aj.simulate(quad, workers=3, **run)
    b = aj.simulate(quad, workers=8, **run)
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.updates, b.updates) and np.array_equal(a.wall_time, b.wall_time)
    assert a.updates[-1] == 20


def test_quick_tables_may_set_grid_entries_and_the_record_interval():
    cfg = {
        "sweep": {
            "a": {
                "grid": {"seeds": 100, "workers": [16, 1024], "lr": 0.1},
                "run": {"steps": 50, "record_every": 5},
                "quick": {"grid": {"workers": [16]}, "record_every": 2, "steps": 10},
            },
        },
    }
    q = _apply_overrides(cfg, quick=True, seeds=None)["sweep"]["a"]
    assert q["grid"] == {"seeds": 100, "workers": [16], "lr": 0.1}
    assert q["run"] == {"steps": 10, "record_every": 2}
    full = _apply_overrides(cfg, quick=False, seeds=None)["sweep"]["a"]
    assert full["grid"]["workers"] == [16, 1024] and full["run"]["record_every"] == 5


# --------------------------------------------------------------------- ringmaster-momentum
def test_momentum_prints_its_headline_with_the_numbers_of_summary_json(momentum):
    _, s = momentum
    assert check_headline(PRINTED["ringmaster-momentum"], s) == 7 * len(s["momentum"]) + 2


def test_momentum_summary_keys_and_shapes(momentum):
    out, s = momentum
    _written(out, s, "ringmaster-momentum")
    mu, R = s["momentum"], s["delay_threshold"]
    assert mu == [0.0, 0.5, 0.8] and R == [1, 4, 16, 64]  # the quick corner of the plane
    assert np.shape(s["time_to_eps"]) == (len(mu), len(R))
    assert np.shape(s["diverged_fraction"]) == (len(mu), len(R))
    assert len(s["best_R"]) == len(s["predicted_R"]) == len(mu)
    assert np.shape(s["best_R_ci"]) == np.shape(s["near_best_R"]) == (len(mu), 2)


def test_momentum_prediction_and_best_recomputed(momentum):
    _, s = momentum
    L, lr = max(s["settings"]["eigenvalues"]), s["settings"]["lr"]
    tau = aj.theory.stability_threshold(s["momentum"], lr * L)
    assert s["predicted_R"] == (tau + 1).tolist()
    t = _times(s["time_to_eps"])
    assert s["best_R"] == np.array(s["delay_threshold"], float)[np.argmin(t, axis=1)].tolist()


def test_momentum_best_threshold_falls_as_momentum_rises(momentum):
    """More momentum tolerates less delay: the best R, the prediction and the divergence edge
    all fall with μ (a server that ignored R, or momentum that never reached it, would not)."""
    _, s = momentum
    best, pred = np.array(s["best_R"], float), np.array(s["predicted_R"], float)
    assert np.all(np.diff(best) < 0) and np.all(np.diff(pred) < 0)
    frac = np.array(s["diverged_fraction"])
    assert (
        frac[0].max() == 0 and frac[-1, -1] >= 0.5
    )  # μ = 0 is stable everywhere; μ = 0.8 at R = 64 is not


def test_best_thresholds_and_divergence_edge_by_hand():
    R = np.array([1.0, 2, 4, 8])
    table = np.array([[9.0, 5, 5.2, np.inf], [np.inf] * 4])
    boot = np.stack([table, table[:, [1, 0, 2, 3]]])
    out = best_thresholds(table, boot, R, near=0.05)
    assert out["best_R"][0] == 2 and np.isnan(out["best_R"][1])
    assert out["near_best_R"][0].tolist() == [2, 4] and out["best_R_ci"][0].tolist() == [1, 2]
    frac = np.array([[0, 0, 0.4, 0.6], [0, 0, 0, 0]])
    assert divergence_edge(frac, R)[0] == 8 and np.isnan(divergence_edge(frac, R)[1])
