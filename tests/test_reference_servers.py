"""The NumPy server-rule event loop (the oracle the engine's event log is compared against).

Logs written by hand for fixed compute times, the identities between rules, the
synchronous limit of m-sync, Ringmaster's window bound (Lemma 4.1 of Maranjyan
et al. 2025) and time-outs.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asyncjax._reference.servers import simulate_server

FIELDS = ("time", "worker", "staleness", "applied", "timed_out", "weight", "step", "updates")


def fixed(taus):
    """Worker j always takes taus[j] (a draws function)."""
    taus = [float(t) for t in taus]
    return lambda c, j, restart: taus[j]


def table_for(taus, workers):
    """The (E, n + 1) draws array of fixed times, given the log's worker of each event.

    Row r of column 1 + j is worker j's r-th restart: always taus[j].
    """
    taus = np.asarray(taus, np.float64)
    return np.column_stack([taus[np.asarray(workers)], np.tile(taus, (len(workers), 1))])


def run_fixed(rule, taus, events, **kw):
    return simulate_server(rule, taus, fixed(taus), events=events, **kw)


def check_log(log, **expected):
    for name, want in expected.items():
        np.testing.assert_array_equal(log[name], want, err_msg=name)


def assert_same_log(a, b, fields=FIELDS):
    for name in fields:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


T, F = True, False
R2 = 1 / np.sqrt(2)


# ------------------------------------------------------------------ logs written by hand
def test_asgd_times_1_2_3_ties_to_the_lower_index():
    log = run_fixed("asgd", [1, 2, 3], 8)
    check_log(
        log,
        time=[1, 2, 2, 3, 3, 4, 4, 5],
        worker=[0, 0, 1, 0, 2, 0, 1, 0],
        staleness=[0, 0, 2, 1, 4, 1, 3, 1],
        applied=[T] * 8,
        timed_out=[F] * 8,
        weight=[1.0] * 8,
        step=[T] * 8,
        updates=[1, 2, 3, 4, 5, 6, 7, 8],
    )
    # the array form of the same times gives the same log
    assert_same_log(simulate_server("asgd", [1, 2, 3], table_for([1, 2, 3], log["worker"])), log)


def test_ringmaster_without_stops_discards_delay_at_least_R():
    log = run_fixed("ringmaster", [1, 1.5, 4], 8, delay_threshold=2, stops=False)
    check_log(
        log,
        time=[1, 1.5, 2, 3, 3, 4, 4, 4.5],
        worker=[0, 1, 0, 0, 1, 0, 2, 1],
        staleness=[0, 1, 1, 0, 2, 0, 5, 1],
        applied=[T, T, T, T, F, T, F, T],
        weight=[1, 1, 1, 1, 0, 1, 0, 1],
        step=[T, T, T, T, F, T, F, T],
        updates=[1, 2, 3, 4, 4, 5, 5, 6],
    )


def test_ringmaster_with_stops_restarts_a_worker_whose_delay_reaches_R():
    # worker 2 is stopped at 1.5, 3 and 4.5 and never arrives; worker 1 is stopped at 3
    # (the tie at t = 3 goes to worker 0, whose step makes worker 1's delay 2) and restarts then
    taus = [1, 1.5, 4]
    log = run_fixed("ringmaster", taus, 8, delay_threshold=2, stops=True)
    check_log(
        log,
        time=[1, 1.5, 2, 3, 4, 4.5, 5, 6],
        worker=[0, 1, 0, 0, 0, 1, 0, 0],
        staleness=[0, 1, 1, 0, 0, 1, 1, 0],
        applied=[T] * 8,
        step=[T] * 8,
        updates=[1, 2, 3, 4, 5, 6, 7, 8],
    )
    table = table_for(taus, log["worker"])
    assert_same_log(simulate_server("ringmaster", taus, table, delay_threshold=2, stops=True), log)


def test_rennala_with_stops_restarts_everyone_at_each_step():
    log = run_fixed("rennala", [1, 1.5, 4], 8, batch=2, stops=True)
    check_log(
        log,
        time=[1, 1.5, 2.5, 3, 4, 4.5, 5.5, 6],
        worker=[0, 1, 0, 1, 0, 1, 0, 1],
        staleness=[0] * 8,
        applied=[T] * 8,
        weight=[1.0] * 8,
        step=[F, T, F, T, F, T, F, T],
        updates=[0, 1, 1, 2, 2, 3, 3, 4],
    )


def test_rennala_without_stops_discards_gradients_of_an_older_point():
    log = run_fixed("rennala", [1, 1.5, 4], 9, batch=2, stops=False)
    check_log(
        log,
        time=[1, 1.5, 2, 3, 3, 4, 4, 4.5, 5],
        worker=[0, 1, 0, 0, 1, 0, 2, 1, 0],
        staleness=[0, 0, 1, 0, 0, 1, 2, 0, 0],
        applied=[T, T, F, T, T, F, F, T, T],
        weight=[1, 1, 0, 1, 1, 0, 0, 1, 1],
        step=[F, T, F, F, T, F, F, F, T],
        updates=[0, 1, 1, 1, 2, 2, 2, 2, 3],
    )


def test_msync_waits_idle_and_restarts_every_worker():
    log = run_fixed("msync", [1, 1.5, 4], 6, batch=2)
    check_log(
        log,
        time=[1, 1.5, 2.5, 3, 4, 4.5],
        worker=[0, 1, 0, 1, 0, 1],
        staleness=[0] * 6,
        applied=[T] * 6,
        step=[F, T, F, T, F, T],
        updates=[0, 1, 1, 2, 2, 3],
    )
    log = run_fixed("msync", [1, 1.5, 4], 6, batch=3)
    check_log(
        log,
        time=[1, 1.5, 4, 5, 5.5, 8],
        worker=[0, 1, 2, 0, 1, 2],
        step=[F, F, T, F, F, T],
        updates=[0, 0, 1, 1, 1, 2],
    )


def test_fedbuff_weights_every_arrival_by_its_staleness():
    log = run_fixed("fedbuff", [1, 1.5, 4], 8, batch=2)
    check_log(
        log,
        time=[1, 1.5, 2, 3, 3, 4, 4, 4.5],
        worker=[0, 1, 0, 0, 1, 0, 2, 1],
        staleness=[0, 0, 1, 0, 1, 0, 3, 1],
        applied=[T] * 8,
        weight=[1, 1, R2, 1, R2, 1, 0.5, R2],
        step=[F, T, F, T, F, T, F, T],
        updates=[0, 1, 1, 2, 2, 3, 3, 4],
    )
    const = run_fixed("fedbuff", [1, 1.5, 4], 8, batch=2, weight=0.5)
    np.testing.assert_array_equal(const["weight"], 0.5)
    own = run_fixed("fedbuff", [1, 1.5, 4], 8, batch=2, weight=lambda tau: 1.0 + tau)
    np.testing.assert_array_equal(own["weight"], 1.0 + log["staleness"])


def test_iterates_by_hand_asgd_and_fedbuff():
    # f(x) = x²/2: the gradient at a worker's snapshot is the snapshot
    grad = lambda point, e: point
    log = run_fixed("asgd", [1, 2, 3], 4, grad=grad, x0=[1.0], lr=0.5)
    # e0: w0 at 1 → 0.5; e1: w0 at 0.5 → 0.25; e2: w1 at 1 → −0.25; e3: w0 at 0.25 → −0.375
    np.testing.assert_array_equal(log["x"][:, 0], [0.5, 0.25, -0.25, -0.375])
    log = run_fixed("fedbuff", [1, 1.5, 4], 4, batch=2, grad=grad, x0=[1.0], lr=1.0)
    # e0, e1 at 1 (τ 0, 0): step with (1 + 1)/2 → 0; e2 at 1 (τ 1), e3 at 0: step with (R2·1 + 0)/2
    np.testing.assert_allclose(log["x"][:, 0], [1.0, 0.0, 0.0, -R2 / 2], rtol=0, atol=1e-15)


def test_grad_is_called_only_for_accepted_arrivals_with_the_event_index():
    calls = []
    log = run_fixed(
        "rennala",
        [1, 1.5, 4],
        9,
        batch=2,
        stops=False,
        grad=lambda p, e: calls.append(e) or p,
        x0=[1.0, 2.0],
        lr=0.1,
    )
    assert calls == list(np.flatnonzero(log["applied"]))


def test_custom_update_sees_the_averaged_gradient():
    seen = []
    grad = lambda point, e: np.array([float(e)])
    run_fixed(
        "rennala",
        [1, 1.5, 4],
        4,
        batch=2,
        grad=grad,
        x0=[0.0],
        update=lambda x, g: seen.append(g.copy()) or x,
    )
    np.testing.assert_array_equal(np.concatenate(seen), [(0 + 1) / 2, (2 + 3) / 2])


# ------------------------------------------------------------------ identities between rules
def random_draws(rng, n, events, law):
    """(first, draws) for ``events`` events: an (E, n + 1) array, or a function of (c, j, restart)."""
    if law == "exponential":
        return rng.exponential(size=n), rng.exponential(size=(events, n + 1))
    if law == "half-normal":  # the Ringmaster paper's 1 + √j + √(j + 1)|z|, per worker j
        base, scale = 1.0 + np.sqrt(np.arange(n)), np.sqrt(np.arange(1, n + 1))
        z = np.abs(rng.normal(size=(2, events + 1, n)))  # [0, e]: after event e; [1, r]: restart r
        return base + scale * z[
            0, -1
        ], lambda c, j, restart: base[j] + scale[j] * z[int(restart), c, j]
    return np.ones(n), np.round(rng.uniform(0.5, 3.0, size=(events, n + 1)), 1)  # many ties


def job_time(draws, c, j, restart):
    """The time of worker j's job after its own event c, or of its c-th restart by the rule."""
    if callable(draws):
        return draws(c, j, restart)
    return draws[c, 1 + j] if restart else draws[c, 0]


LAWS = ["exponential", "half-normal", "rounded"]


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("stops", [False, True])
def test_rennala_batch_one_is_ringmaster_threshold_one(law, stops):
    rng = np.random.default_rng(1)
    first, draws = random_draws(rng, 7, 300, law)
    grad = lambda p, e: p + np.sin(e)
    kw = dict(stops=stops, grad=grad, x0=np.linspace(-1, 1, 3), lr=0.05)
    a = simulate_server("rennala", first, draws, events=300, batch=1, **kw)
    b = simulate_server("ringmaster", first, draws, events=300, delay_threshold=1, **kw)
    assert_same_log(a, b, FIELDS + ("x",))
    assert a["step"].sum() > 10 and (stops or not a["applied"].all())


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("stops", [False, True])
def test_ringmaster_with_an_unreached_threshold_is_asgd(law, stops):
    rng = np.random.default_rng(2)
    first, draws = random_draws(rng, 6, 300, law)
    kw = dict(grad=lambda p, e: 0.5 * p, x0=[1.0, -2.0], lr=0.1)
    a = simulate_server("asgd", first, draws, events=300, **kw)
    b = simulate_server(
        "ringmaster", first, draws, events=300, delay_threshold=10**9, stops=stops, **kw
    )
    assert_same_log(a, b, FIELDS + ("x",))


@pytest.mark.parametrize("law", LAWS)
def test_ringmaster_with_stops_never_discards(law):
    rng = np.random.default_rng(3)
    first, draws = random_draws(rng, 9, 400, law)
    log = simulate_server("ringmaster", first, draws, events=400, delay_threshold=3, stops=True)
    assert log["applied"].all() and log["staleness"].max() <= 2
    log = simulate_server("ringmaster", first, draws, events=400, delay_threshold=3, stops=False)
    assert not log["applied"].all()
    np.testing.assert_array_equal(log["applied"], log["staleness"] < 3)


@pytest.mark.parametrize("law", LAWS)
def test_msync_with_batch_n_is_synchronous_minibatch(law):
    rng = np.random.default_rng(4)
    n, rounds = 5, 30
    first, draws = random_draws(rng, n, n * rounds, law)
    log = simulate_server("msync", first, draws, events=n * rounds, batch=n)
    np.testing.assert_array_equal(log["step"], np.arange(n * rounds) % n == n - 1)
    np.testing.assert_array_equal(log["updates"], (np.arange(n * rounds) + 1) // n)
    assert (log["staleness"] == 0).all() and log["applied"].all()
    # every worker arrives once a round, and the round ends at the latest of its n jobs
    times = first
    end = 0.0
    restarts = np.zeros(n, int)  # each worker's restarts by the rule so far
    for r in range(rounds):
        sl = slice(r * n, (r + 1) * n)
        assert sorted(log["worker"][sl]) == list(range(n))
        np.testing.assert_array_equal(log["time"][sl], np.sort(end + times))
        end += times.max()
        e = r * n + n - 1  # the step's event: its worker's own job, the others' next restart
        w = log["worker"][e]
        times = np.array(
            [
                job_time(draws, e, j, False) if j == w else job_time(draws, restarts[j], j, True)
                for j in range(n)
            ]
        )
        restarts[np.arange(n) != w] += 1
    # fixed times: a step every max τ
    log = run_fixed("msync", [1, 2.5, 2, 0.5], 40, batch=4)
    np.testing.assert_array_equal(log["time"][log["step"]], 2.5 * np.arange(1, 11))


# ------------------------------------------------------------------ Ringmaster's window
def ringmaster_window(taus, R):
    """t(R) = 2 min_m (1/m Σ_{i≤m} 1/τ_i)^{-1} (1 + R/m) (Maranjyan et al. 2025, Lemma 4.1)."""
    taus = np.sort(np.asarray(taus, np.float64))
    m = np.arange(1, taus.size + 1)
    return float(np.min(2 * m / np.cumsum(1 / taus) * (1 + R / m)))


@pytest.mark.parametrize("stops", [False, True])
@pytest.mark.parametrize("n", [1, 3, 16, 60])
def test_ringmaster_any_R_consecutive_updates_fit_the_lemma_window(n, stops):
    rng = np.random.default_rng(n)
    laws = {
        "sqrt": np.sqrt(np.arange(1, n + 1)),
        "linear": np.arange(1.0, n + 1),
        "random": rng.uniform(0.1, 10.0, size=n),
        "one-straggler": np.r_[np.ones(n - 1), 100.0] if n > 1 else np.ones(1),
    }
    for name, taus in laws.items():
        for R in (1, 2, 5, 17):
            log = run_fixed("ringmaster", taus, 600, delay_threshold=R, stops=stops)
            steps = np.r_[0.0, log["time"][log["step"]]]  # time of update k, update 0 at t = 0
            assert steps.size > 3 * R
            span = np.max(steps[R:] - steps[:-R])  # time to make R updates from any update
            bound = ringmaster_window(taus, R)
            assert span <= bound, (name, R, span, bound)


# ------------------------------------------------------------------ time-outs
def test_a_job_longer_than_its_time_out_ends_as_a_time_out_event():
    log = run_fixed("asgd", [1, 5], 7, timeouts=[np.inf, 2.0])
    check_log(
        log,
        time=[1, 2, 2, 3, 4, 4, 5],
        worker=[0, 0, 1, 0, 0, 1, 0],
        staleness=[0, 0, 2, 0, 0, 2, 0],
        applied=[T, T, F, T, T, F, T],
        timed_out=[F, F, T, F, F, T, F],
        weight=[1, 1, 0, 1, 1, 0, 1],
        step=[T, T, F, T, T, F, T],
        updates=[1, 2, 2, 3, 4, 4, 5],
    )
    # a job exactly as long as its time-out arrives
    log = run_fixed("asgd", [1, 2], 3, timeouts=[np.inf, 2.0])
    assert not log["timed_out"].any() and log["worker"][2] == 1


@pytest.mark.parametrize("rule", ["asgd", "ringmaster", "rennala", "msync", "fedbuff"])
def test_time_outs_end_at_start_plus_time_out_under_every_rule(rule):
    rng = np.random.default_rng(5)
    n, events = 6, 400
    first, draws = random_draws(rng, n, events, "exponential")
    timeouts = np.full(n, 0.7)
    kw = dict(batch=3, delay_threshold=2, stops=rule != "ringmaster", timeouts=timeouts)
    log = simulate_server(rule, first, draws, **kw)
    assert 0 < log["timed_out"].sum() < events
    assert not (log["applied"] & log["timed_out"]).any()
    assert (log["weight"][log["timed_out"]] == 0).all() and not log["step"][log["timed_out"]].any()
    # each time-out lands exactly one time-out after its job began: replay the starts
    start = np.zeros(n)
    for e in range(events):
        w = log["worker"][e]
        if log["timed_out"][e]:
            assert log["time"][e] == start[w] + 0.7
        restarted = {w}
        if rule == "msync" and log["applied"][e] and not log["step"][e]:
            restarted = set()  # waits idle for the round's end
        if log["step"][e] and rule in ("rennala", "msync"):
            restarted = set(range(n))
        start[sorted(restarted)] = log["time"][e]
    # a job no longer than its time-out is not cut: with times capped at the time-out the run
    # is the same as without time-outs
    capped = dict(first=np.minimum(first, 0.7), draws=np.minimum(draws, 0.7))
    kw.pop("timeouts")
    assert_same_log(
        simulate_server(rule, **capped, **kw),
        simulate_server(rule, **capped, timeouts=timeouts, **kw),
    )


# ------------------------------------------------------------------ input checks
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(rule="rennal"), "unknown server rule 'rennal'; known: asgd, fedbuff"),
        (dict(batch=0), "batch must be an integer >= 1"),
        (dict(rule="msync", batch=4), r"msync needs batch <= workers \(3\)"),
        (dict(delay_threshold=0), "delay_threshold must be an integer >= 1"),
        (dict(draws=np.ones((5, 3))), r"draws must have shape \(E, 4\)"),
        (dict(draws=-np.ones((5, 4))), "draws must be finite and non-negative"),
        (dict(first=[1.0, -1.0, 1.0]), "first must be finite and non-negative"),
        (dict(timeouts=[1.0, np.nan, 1.0]), "timeouts must be non-negative"),
        (dict(timeouts=[1.0, 1.0]), r"timeouts must have shape \(3,\)"),
        (dict(weight="sqrt"), "weight must be None, a number or a function"),
        (dict(grad=lambda p, e: p), "grad needs x0"),
        (dict(grad=lambda p, e: p, x0=[0.0]), "grad needs lr"),
        (dict(draws=lambda c, j, restart: 1.0), "a function for draws needs events=E"),
        (dict(events=4), "events=4 disagrees with draws' 5 rows"),
        (dict(weight=float("inf")), "weight must be finite"),
    ],
)
def test_bad_input_is_one_line(kw, match):
    args = dict(rule="rennala", first=[1.0, 2.0, 3.0], draws=np.ones((5, 4)))
    args.update(kw)
    with pytest.raises(ValueError, match=match) as err:
        simulate_server(args.pop("rule"), args.pop("first"), args.pop("draws"), **args)
    assert "\n" not in str(err.value)


def test_the_oracle_runs_without_jax():
    path = Path(__file__).resolve().parents[1] / "asyncjax" / "_reference" / "servers.py"
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('servers', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "mod.simulate_server('asgd', [1.0], [[1.0, 1.0]])\n"
        "assert not any(m == 'jax' or m.startswith(('jax.', 'asyncjax')) for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
