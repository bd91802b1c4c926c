"""Full-size runs (deselected by default; `pytest -m slow`)."""

import json
import time

import numpy as np
import pytest

from asyncjax.cli import main

pytestmark = pytest.mark.slow


def test_fig1_full_size_under_a_minute_and_thresholds_fall(tmp_path):
    """The issue's acceptance run: 5 μ, 31 delays from 0 to 150, 100 seeds, 30k steps.

    Measured thresholds must fall as μ grows and sit between the linear
    stability boundary (below it the optimum is stable, so the error cannot
    take off) and 1.5x that boundary plus one grid step (past it the unstable
    mode grows geometrically and doubles the error well within the run).
    """
    t = time.perf_counter()
    assert main(["reproduce", "liu2018-fig1", "--out", str(tmp_path), "--no-progress"]) == 0
    wall = time.perf_counter() - t
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["seeds"] == 100 and len(s["delays"]) >= 16 and max(s["delays"]) == 150
    assert wall < 60.0, wall
    thr, pred = np.array(s["threshold"]), np.array(s["predicted"])
    assert np.all(np.diff(thr) < 0)
    assert np.all(thr >= pred) and np.all(thr <= 1.5 * pred + 5), (thr, pred)
