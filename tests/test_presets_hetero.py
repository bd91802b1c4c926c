"""The per-worker-data presets heterogeneous-bias and dirichlet-digits: quick runs end to end
(the session's, shared with the notebooks), their headline tables, the acceptance of the issue on
the quick run, and the full runs (slow).

heterogeneous-bias's acceptance: ASGD's late mean agrees with `theory.asgd_fixed_point` within its
bootstrap interval (or within 2% of ‖predicted − optimum‖, whichever is larger), for fixed and for
exponential compute times, and the unbiased rules' late means hold the optimum in their
intervals. The intervals are 99% seed-bootstrap intervals, joint over the two coordinates, so
with five rules checked a correct simulator passes with probability ≈ 0.95; the seeds are fixed,
so a run passes or fails the same way every time, and the check still tells the two points apart
(they are ‖predicted − optimum‖ ≈ 0.50 apart, many interval widths).
"""

import json
import time

import numpy as np
import pytest
from _headline import check_headline

import asyncjax as aj
from asyncjax.experiments import load_preset
from asyncjax.experiments.dirichlet_digits import at_horizon, best_per_alpha, expanded
from asyncjax.experiments.heterogeneous_bias import agrees, late_means
from asyncjax.experiments.runner import _apply_overrides
from asyncjax.reproduce import PRESETS

OPTIMA = np.array([[3, 0], [2, 1], [1, 2], [0, 1], [-1, 0], [0, -1], [1, -2], [2, -1]], dtype=float)


def _written(run, name):
    s = run.summary
    assert s["preset"] == name and s["quick"] is True
    assert s["figures"] == list(PRESETS[name].FIGURES)
    for fig in PRESETS[name].FIGURES:
        assert (run.out / fig).stat().st_size > 10_000, fig


def _check_bias(s):
    """The issue's acceptance on a summary of heterogeneous-bias."""
    predicted, optimum = np.array(s["predicted_point"]), np.array(s["optimum"])
    gap = np.linalg.norm(predicted - optimum)
    for name, mean, ci in zip(s["methods"], s["late_mean"], s["late_mean_ci"]):
        mean, ci = np.array(mean), np.array(ci)
        if name.startswith("asgd"):
            inside = np.all((ci[:, 0] <= predicted) & (predicted <= ci[:, 1]))
            assert inside or np.linalg.norm(mean - predicted) <= 0.02 * gap, (name, mean, ci)
            assert not np.all((ci[:, 0] <= optimum) & (optimum <= ci[:, 1])), name
        else:
            assert np.all((ci[:, 0] <= optimum) & (optimum <= ci[:, 1])), (name, mean, ci)
            assert np.linalg.norm(mean - optimum) < 0.1 * gap, (name, mean)
    assert all(s["agrees"])


# ----------------------------------------------------------------- heterogeneous-bias
def test_bias_prints_its_headline_with_the_numbers_of_summary_json(quick_preset):
    run = quick_preset("heterogeneous-bias")
    m = len(run.summary["methods"])
    assert check_headline(run.printed, run.summary) == 5 * m + 3


def test_bias_summary_keys_and_the_prediction(quick_preset):
    run = quick_preset("heterogeneous-bias")
    _written(run, "heterogeneous-bias")
    s = run.summary
    assert s["methods"] == ["asgd_fixed", "asgd_exponential", "ia2sgd", "malenia", "ringleader"]
    assert np.shape(s["late_mean"]) == (5, 2) and np.shape(s["late_mean_ci"]) == (5, 2, 2)
    assert len(s["distance_to_optimum"]) == 5
    np.testing.assert_allclose(s["optimum"], OPTIMA.mean(axis=0), atol=1e-12)
    shares = aj.theory.update_shares(rates=np.arange(1.0, 9.0))  # speeds 1 … 8
    np.testing.assert_allclose(s["predicted_point"], shares @ OPTIMA, rtol=1e-12)
    np.testing.assert_allclose(s["predicted_point"], [7 / 9, -4 / 9], rtol=1e-12)


def test_bias_quick_run_meets_the_acceptance(quick_preset):
    _check_bias(quick_preset("heterogeneous-bias").summary)


def test_late_means_interval_covers_a_known_mean():
    """Seeds of i.i.d. normal time averages: the joint 99% interval holds the true mean, and a
    point 10 standard errors away is outside it and not within a small slack."""
    rng = np.random.default_rng(0)
    x = 0.3 + rng.normal(size=(400, 10, 2))
    mean, ci = late_means(x, window=0.5, level=0.99, n_boot=2000)
    np.testing.assert_allclose(mean, x[:, 5:].mean(axis=(0, 1)))
    se = 1 / np.sqrt(400 * 5)
    assert agrees(mean, ci, np.full(2, 0.3), 0.0)
    assert not agrees(mean, ci, mean + 10 * se, 0.0)
    assert agrees(mean, ci, mean + 10 * se, 20 * se)
    assert np.all(ci[:, 1] - ci[:, 0] < 8 * se)  # about 2 × 2.8 standard errors wide


# ----------------------------------------------------------------- dirichlet-digits
def test_digits_prints_its_headline_with_the_numbers_of_summary_json(quick_preset):
    run = quick_preset("dirichlet-digits")
    assert check_headline(run.printed, run.summary) == 6 * len(run.summary["alpha"]) + 1


def test_digits_summary_keys_and_shapes(quick_preset):
    run = quick_preset("dirichlet-digits")
    _written(run, "dirichlet-digits")
    s = run.summary
    assert s["alpha"] == [0.1, 100.0] and s["methods"] == ["malenia"]  # the quick set
    assert s["momentum"] == [0.0, 0.9]
    assert np.shape(s["accuracy"]) == (2, 1, 2) and np.shape(s["accuracy_ci"]) == (2, 1, 2, 2)
    acc, ci = np.array(s["accuracy"]), np.array(s["accuracy_ci"])
    assert np.all((ci[..., 0] <= acc) & (acc <= ci[..., 1]))
    assert np.all(acc > 0.1)  # every rule learns something in the quick budget (chance is 0.1)
    assert len(s["best"]) == 2
    for a, best in enumerate(s["best"]):
        method, mu = best.split(", mu=")
        k, j = s["methods"].index(method), s["momentum"].index(float(mu))
        assert acc[a, k, j] == pytest.approx(acc[a].max())
    sizes = s["settings"]["shard_sizes"]
    assert all(sum(v) == 1437 and len(v) == 16 for v in sizes.values())  # every row once


def test_digits_reads_each_trajectory_at_the_horizon():
    wall = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 0.5, 2.5, 4.0]])
    acc = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]])
    np.testing.assert_allclose(at_horizon(wall, acc, 2.2), [0.3, 0.6])
    np.testing.assert_allclose(at_horizon(wall, acc, 4.0), [0.4, 0.8])


def test_digits_best_lead_is_paired_over_seeds():
    """Two rules whose accuracies differ by 0.01 on every seed, under a large seed-to-seed
    spread: the paired lead is exactly 0.01 with a zero-width interval."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.9, size=32)
    acc = np.stack([base, base + 0.01])[None, :, None, :]  # (A=1, K=2, M=1, S)
    b = best_per_alpha(acc, ["a", "b"], np.array([0.0]), 500, 0.95)
    assert b["best"] == ["b, mu=0"] and b["runner_up"] == ["a, mu=0"]
    np.testing.assert_allclose(b["lead"], [0.01])
    np.testing.assert_allclose(b["lead_ci"], [[0.01, 0.01]])


def test_digits_expands_one_sweep_per_rule_and_alpha():
    cfg = _apply_overrides(load_preset("dirichlet-digits"), quick=False, seeds=None)
    full = expanded(cfg, list(cfg["sweep"]), cfg["analysis"]["alpha"])
    assert len(full["sweep"]) == 15
    assert full["sweep"]["malenia-alpha0.1"]["split"] == {
        "kind": "dirichlet",
        "seed": 0,
        "alpha": 0.1,
    }
    quick = _apply_overrides(load_preset("dirichlet-digits"), quick=True, seeds=None)
    assert quick["analysis"]["alpha"] == [0.1, 100.0]
    assert quick["sweep"]["asgd"]["grid"]["seeds"] == 8


# ----------------------------------------------------------------- full size
@pytest.mark.slow
@pytest.mark.parametrize("name", ["heterogeneous-bias", "dirichlet-digits"])
def test_full_size_runs_within_three_minutes(name, tmp_path):
    """The issue's acceptance on the full runs (2-core CPU: each under 3 minutes).

    Measured on the 2-core CPU while other jobs shared it (load average about 6):
    heterogeneous-bias 19 s; dirichlet-digits 84 s wall for 61 s of CPU (one compilation per
    rule serves its three splits).
    """
    from asyncjax.cli import main

    t = time.perf_counter()
    assert main(["reproduce", name, "--out", str(tmp_path), "--no-progress"]) == 0
    wall = time.perf_counter() - t
    s = json.loads((tmp_path / "summary.json").read_text())
    if name == "heterogeneous-bias":
        _check_bias(s)
    else:
        assert s["alpha"] == [0.1, 1.0, 100.0] and len(s["methods"]) == 5
        assert np.shape(s["accuracy"]) == (3, 5, 2)
    assert wall < 180.0, wall
