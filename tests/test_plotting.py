"""Figures a paper could use: every curve told apart, nothing hidden, nothing overlapping."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

import asyncjax as aj  # noqa: E402
from asyncjax import analysis, plotting  # noqa: E402

MOMENTA = np.array([0.7, 0.8, 0.85, 0.9, 0.95])
DELAYS = np.arange(0.0, 151.0, 5.0)
THRESHOLDS = np.array([132.2, 85.8, 61.9, 37.6, 16.3])


def _fig1_band(with_divergence=True):
    """Curves shaped like Fig. 1: flat, then rising past each threshold, some seeds diverging."""
    rng = np.random.default_rng(0)
    base = np.array([0.014, 0.021, 0.029, 0.044, 0.092])
    per_seed = base[:, None, None] * np.exp(
        np.maximum(DELAYS[None, :, None] - THRESHOLDS[:, None, None], 0) / 8
    )
    per_seed = np.minimum(per_seed * rng.lognormal(0, 0.2, (5, DELAYS.size, 40)), 1.0)
    if not with_divergence:
        return analysis.band(per_seed, axis=-1)
    return analysis.band(per_seed, axis=-1, diverged=per_seed >= 1.0)


def _fig1(title="", with_divergence=True):
    ci = np.stack([THRESHOLDS - 0.9, THRESHOLDS + 1.1], axis=-1)
    band = _fig1_band(with_divergence)
    return plotting.error_vs_delay(
        DELAYS,
        MOMENTA,
        band,
        measured=THRESHOLDS,
        measured_ci=ci,
        predicted=np.array([115, 74, 53, 32, 13]),
        title=title,
    )


def _texts(fig):
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts] + [ax.get_title()]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    for leg in fig.legends:
        out += [t.get_text() for t in leg.get_texts()]
    return out


def tick_label_overlaps(fig):
    """Pairs of drawn tick labels that overlap, on every log-scaled axis of ``fig``."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    bad = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() != "log":
                continue
            labels = [
                t
                for t in axis.get_majorticklabels() + axis.get_minorticklabels()
                if t.get_visible() and t.get_text()
            ]
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            for (a, ba), (b, bb) in itertools.combinations(boxes, 2):
                if ba.overlaps(bb):
                    bad.append((a, b))
    return bad


def _distinct(colors):
    rgba = [tuple(np.round(to_rgba(c), 3)) for c in colors]
    return len(set(rgba)) == len(rgba)


def test_fig1_keeps_its_band_description_with_a_title():
    fig = _fig1(title="streaming PCA, η=5e-4, 100 seeds")
    texts = " | ".join(_texts(fig))
    assert "streaming PCA" in texts and "10–90% of seeds" in texts
    plt.close(fig)


def test_fig1_threshold_intervals_are_visible():
    fig = _fig1()
    ax, ax2 = fig.axes
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer) and c.has_xerr]
    assert len(bars) == len(MOMENTA)  # one interval bar with caps per momentum on the curves
    fig.canvas.draw()
    for bar in bars:
        caps = bar.lines[1]
        assert len(caps) == 2 and all(c.get_markersize() >= 4 for c in caps)
    numbers = " ".join(t.get_text() for t in ax2.texts)
    for thr in THRESHOLDS:  # the values with their intervals, written beside the points
        assert f"{thr:.1f} [{thr - 0.9:.1f}, {thr + 1.1:.1f}]" in numbers
    plt.close(fig)


def test_fig1_marks_divergence_dominated_points():
    band = _fig1_band()
    assert band.diverged_share.max() >= 0.5
    fig = _fig1()
    ax = fig.axes[0]
    crosses = sum(len(line.get_xdata()) for line in ax.lines if line.get_marker() == "x")
    assert crosses == int((band.diverged_share >= 0.5).sum()) > 0
    assert any("divergence-dominated" in t for t in _texts(fig))
    plt.close(fig)
    clean = plotting.error_vs_delay(DELAYS, MOMENTA, _fig1_band(with_divergence=False))
    assert not any(line.get_marker() == "x" for line in clean.axes[0].lines)
    plt.close(clean)


def _grid_results(momenta, delays, seeds=3, steps=5, diverge=None):
    rng = np.random.default_rng(1)
    shape = (len(momenta), len(delays), seeds, steps)
    div = np.full(shape[:3], -1, np.int32)
    if diverge is not None:
        div[diverge] = 2
    return aj.Results(
        data={"error": rng.uniform(0.01, 0.5, shape), "diverged_at": div},
        dims={
            "error": ("momentum", "delay", "seed", "step"),
            "diverged_at": ("momentum", "delay", "seed"),
        },
        coords={
            "momentum": np.asarray(momenta, float),
            "delay": np.asarray(delays),
            "step": np.arange(steps),
        },
        attrs={"problem": {"problem": "streaming_pca"}},
    )


def test_error_vs_step_shows_every_curve_of_a_small_grid_apart():
    res = _grid_results([0.5, 0.7, 0.9], [0, 3, 7, 9], diverge=(2, 3, 0))
    fig = plotting.error_vs_step(res)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 3  # one per momentum
    fig.canvas.draw()
    legend = fig.legends[0]
    box = legend.get_window_extent()
    for ax in panels:
        curves = [line for line in ax.lines if line.get_marker() in ("None", None, "")]
        assert len(curves) == 4  # every delay
        assert _distinct([c.get_color() for c in curves])
        assert box.x0 >= ax.get_window_extent().x1 - 1  # the legend is outside the panels
    assert [t.get_text() for t in legend.get_texts()] == ["0", "3", "7", "9"]
    assert legend.get_title().get_text() == "delay"
    assert any("momentum=0.9, delay=9: 33%" in t for t in _texts(fig))  # diverged share named
    assert not tick_label_overlaps(fig)
    plt.close(fig)


def test_error_vs_step_names_what_it_leaves_out_of_a_big_grid():
    res = _grid_results([0.5], list(range(31)))
    fig = plotting.error_vs_step(res.isel(momentum=0), max_curves=12)
    curves = [line for line in fig.axes[0].lines]
    assert len(curves) == 12
    shown = {float(t.get_text()) for t in fig.legends[0].get_texts()}
    note = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "12 of 31" in note
    for d in range(31):  # each delay is either drawn or named as left out
        assert (d in shown) != (f"delay={d};" in note or f"delay={d} " in note), d
    plt.close(fig)


def test_stationary_ratio_panel_is_scaled_to_the_data():
    momenta, lrs = np.array([0.0, 0.5, 0.7, 0.8, 0.9]), np.array([2.5e-4, 5e-4])
    theory_err = 8.667 * lrs[None, :] / (1 - momenta[:, None])
    simulated = theory_err * np.array(
        [[1.019, 1.016], [1.016, 1.016], [1.015, 1.017], [1.016, 1.020], [1.020, 1.030]]
    )
    stderr = simulated * 0.005
    fig = plotting.stationary_vs_theory(momenta, lrs, simulated, stderr, theory_err)
    ax2 = fig.axes[1]
    lo, hi = ax2.get_ylim()
    ratio = simulated / theory_err
    assert (
        lo < 1.0
        and lo < (ratio - 2 * stderr / theory_err).min()
        and hi > (ratio + 2 * stderr / theory_err).max()
    )
    assert hi - lo < 0.1  # the ±10% band (0.9–1.1) no longer sets the scale
    assert not tick_label_overlaps(fig)
    plt.close(fig)


def test_ode_overlay_tells_the_momenta_apart():
    t = np.linspace(-2, 6, 50)
    curves = []
    for mu in (0.0, 0.5, 0.7, 0.9):
        ode = 1 / (1 + np.exp((1 - mu) * 3 * t))
        curves.append((mu, t, ode + 0.01 * (1 + mu), ode, t + 2, ode))
    fig = plotting.ode_overlay(curves, 0.5)
    ax2 = fig.axes[1]
    solid = [line for line in ax2.lines if line.get_linestyle() == "-"]
    dashed = [line for line in ax2.lines if line.get_linestyle() == "--"]
    assert len(solid) == len(dashed) == 4
    assert _distinct([line.get_color() for line in solid])
    for s, d in zip(solid, dashed):  # each ODE has its μ's colour
        assert to_rgba(s.get_color())[:3] == to_rgba(d.get_color())[:3]
    labels = [t.get_text() for t in ax2.get_legend().get_texts()]
    assert sum("ODE" in lab for lab in labels) == 4
    assert not tick_label_overlaps(fig)
    plt.close(fig)


@pytest.mark.parametrize("title", ["", "a title"])
def test_fig1_log_ticks_do_not_overlap(title):
    fig = _fig1(title, with_divergence=False)
    assert not tick_label_overlaps(fig), tick_label_overlaps(fig)
    plt.close(fig)


def test_tidy_log_axis_on_narrow_and_wide_ranges():
    for lo, hi in [(13, 132), (0.05, 0.3), (0.5, 1.0), (1e-4, 1.0), (2.0, 2.6)]:
        fig, ax = plt.subplots(figsize=(3, 2.5))
        ax.plot([lo, hi], [lo, hi])
        ax.set_xscale("log")
        ax.set_yscale("log")
        plotting.tidy_log_axis(ax.xaxis)
        plotting.tidy_log_axis(ax.yaxis)
        assert not tick_label_overlaps(fig), (lo, hi, tick_label_overlaps(fig))
        fig.canvas.draw()
        assert len([t for t in ax.yaxis.get_majorticklabels() if t.get_text()]) >= 2, (lo, hi)
        plt.close(fig)
