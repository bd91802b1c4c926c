"""The worker's conditions on the clock: assignment, communication, outages, traces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import asyncjax as aj
from asyncjax import _rng
from asyncjax._reference.servers import simulate_conditions
from asyncjax.delays.conditions import STREAMS

QUAD = aj.Quadratic([1.0, 0.5, 0.1], noise=0.1)
RUN = dict(momentum=0.0, lr=0.1, steps=120, record_every=40, record_params=True, workers=4)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _tables(clock, n, seed, jobs):
    """The engine's draws for seed as (n, jobs) tables, float64: what the NumPy loop is given."""
    cd = clock.conditions

    def row(keys, c):
        counts = jnp.full(n, c, jnp.int32)
        out = {"compute": cd.compute_times(clock, keys, counts, jnp.float64)}
        out["download"], out["upload"] = cd.comm_times(keys, counts, jnp.float64)
        if cd.outages:
            out["up"] = cd.periods(keys, counts, True, jnp.float64)
            out["down"] = cd.periods(keys, counts, False, jnp.float64)
        return {k: v for k, v in out.items() if v is not None}

    @jax.jit  # one program, not one compile per eager operation
    def draws(seed):
        keys = cd.keys(_rng.stream_keys(seed[None], _rng.DELAY_STREAM)[0], n)
        return jax.vmap(lambda c: row(keys, c))(jnp.arange(jobs, dtype=jnp.int32)), keys

    tables, keys = draws(jnp.asarray(seed))
    fns = {k: (lambda t: lambda j, c: t[c, j])(np.asarray(v)) for k, v in tables.items()}
    return fns, keys


def _assign(clock, keys, n, events):
    """assign(e) as the engine draws it (value 0 of counter e of the assignment stream)."""
    a = clock.conditions.assignment
    if a == "pure":
        return None

    @jax.jit  # one program, not one compile per eager operation
    def draw(keys):
        ks = jnp.arange(events, dtype=jnp.int32)
        return _rng.uniforms(keys[len(STREAMS) - 1, 0], ks, 1, jnp.float64)

    u = np.asarray(draw(keys))
    if a == "random":
        return lambda e: int(min(np.floor(u[e, 0] * n), n - 1))
    order, left = [], []
    for e in range(events):  # the block's permutation, one place at a time
        if e % n == 0:
            left = list(range(n))
        r = min(int(np.floor(u[e, 0] * len(left))), len(left) - 1)
        order.append(left.pop(r))
    return lambda e: order[e]


def _compare(log, ref):
    for key in ("worker", "staleness", "applied", "step", "updates", "timed_out", "assigned"):
        assert np.array_equal(log[key], ref[key]), key
    np.testing.assert_allclose(log["time"], ref["time"], rtol=1e-9)


CASES = {
    "comm-random": dict(
        law="lognormal", shape=0.7, download="0.3 + 0.1 * i", upload=0.2, comm_law="exponential"
    ),
    "outage-paused": dict(
        law="gamma", shape=2.0, uptime="2 + i", downtime=1.5, outage_law="gamma", outage_shape=3.0
    ),
    "outage-lost": dict(
        law="exponential",
        base=0.2,
        uptime=3.0,
        downtime="0.5 + i",
        outage_mode="lost",
        outage_law="lognormal",
        outage_shape=0.5,
    ),
    "random": dict(law="lognormal", shape=0.5, speeds="1 + i", assignment="random"),
    "shuffle": dict(
        law="exponential", download=0.1, assignment="shuffle", uptime=4.0, downtime=1.0
    ),
    "all": dict(
        law="lognormal",
        shape=0.5,
        speeds="1 + i",
        download=0.2,
        upload="0.1 * i",
        comm_law="exponential",
        uptime=3.0,
        downtime=1.0,
        outage_mode="lost",
        assignment="random",
    ),
    "trace": dict(trace=np.linspace(0.5, 3.0, 35).reshape(7, 5), uptime=3.0, downtime=1.0),
}
RULES = {
    "asgd": (aj.servers.asgd(), {}, {}),
    "ringmaster-stops": (aj.servers.ringmaster(True), {"delay_threshold": 3}, {"stops": True}),
    "rennala": (aj.servers.rennala(False), {"batch": 3}, {"stops": False}),
    "msync": (aj.servers.msync(), {"batch": 2}, {}),
    "fedbuff": (aj.servers.fedbuff(), {"batch": 2}, {}),
    "ia2sgd": (aj.servers.ia2sgd(), {}, {}),
    "malenia": (aj.servers.malenia(False), {}, {"stops": False}),
    "malenia-stops": (aj.servers.malenia(True), {}, {"stops": True}),
    "ringleader-stops": (aj.servers.ringleader(True), {"delay_threshold": 3}, {"stops": True}),
}
PAIRS = [
    (c, r)
    for c in CASES
    for r in RULES
    if not (CASES[c].get("assignment") and (r.endswith("-stops") or r == "msync"))
]
# Two compilations in the default set: every condition at once with a rule that queues, and
# communication with a rule that stops workers and waits for all. The slow set (one compile
# each) has every condition with ASGD and with Ringleader with stops (where it may queue), and
# every rule under random communication and under lost jobs; the remaining pairs are marked
# `exhaustive` (run with `pytest -m exhaustive`), outside CI's time budget.
FAST = {("all", "fedbuff"), ("comm-random", "malenia-stops")}
SLOW = {(c, r) for c, r in PAIRS if r in ("asgd", "ringleader-stops")} | {
    (c, r) for c, r in PAIRS if c in ("comm-random", "outage-lost")
}


def _tier(pair):
    if pair in FAST:
        return ()
    return pytest.mark.slow if pair in SLOW else pytest.mark.exhaustive


@pytest.mark.parametrize("case,rule", [pytest.param(c, r, marks=_tier((c, r))) for c, r in PAIRS])
def test_event_log_equals_the_numpy_event_loop(x64, case, rule):
    n, events, seed = 5, 300, 4
    clock = aj.delays.workers(**CASES[case])
    server, hp, opts = RULES[rule]
    log = aj.servers.schedule(server, clock, workers=n, seed=seed, arrivals=events, **hp)
    fns, keys = _tables(clock, n, seed, 3 * events)
    ref = simulate_conditions(
        rule.split("-")[0],
        n,
        fns.pop("compute"),
        events=events,
        assign=_assign(clock, keys, n, events),
        outage_mode=clock.conditions.outage_mode,
        **fns,
        **hp,
        **opts,
    )
    _compare(log, ref)


@pytest.mark.slow
def test_time_outs_with_communication_follow_the_numpy_loop(x64):
    n, events, seed = 4, 300, 1
    clock = aj.delays.workers(
        "pareto",
        shape=1.2,
        base=0.2,
        timeouts="2 + i",
        download=0.3,
        upload="0.1 * i",
        assignment="random",
    )
    log = aj.servers.schedule(
        "asgd", clock, workers=n, seed=seed, arrivals=events, timeout_scale=0.5
    )
    fns, keys = _tables(clock, n, seed, 3 * events)
    ref = simulate_conditions(
        "asgd",
        n,
        fns.pop("compute"),
        events=events,
        assign=_assign(clock, keys, n, events),
        timeouts=0.5 * (2 + np.arange(n)),
        **fns,
    )
    assert 0 < log["timed_out"].sum() < events
    _compare(log, ref)


def test_pure_assignment_is_the_plain_clock():
    """assignment="pure" alone builds today's clock itself: the same jit key, so the same
    compiled code and bit-identical results (tests/test_workers.py checks that clock)."""
    for law in ("exponential", "lognormal", "constant"):
        clock = aj.delays.workers(law, speeds=[1.0, 2, 1, 3])
        same = aj.delays.workers(law, speeds=[1.0, 2, 1, 3], assignment="pure", outage_mode="lost")
        assert same == clock and hash(same) == hash(clock) and same.conditions is None
        assert same.describe() == clock.describe() and not same.needs_events
    a = aj.simulate(QUAD, delay_model=clock, **RUN)
    b = aj.simulate(QUAD, delay_model=aj.delays.workers("constant", speeds=[1.0, 2, 1, 3]), **RUN)
    assert np.array_equal(a.params, b.params)


def test_random_assignment_gives_uniform_job_counts():
    """χ² of the assigned jobs' counts against uniform over n = 8 workers, 4000 jobs.

    Seeds fixed; the test fails if the counts' p-value is below 0.001 (a fair assignment
    fails once in a thousand seeds; a worker favoured by 10% would fail almost always).
    """
    n, events = 8, 4000
    clock = aj.delays.workers("lognormal", speeds="1 + i", assignment="random")
    log = aj.servers.schedule(None, clock, workers=n, seed=5, arrivals=events)
    counts = np.bincount(log["assigned"], minlength=n)
    assert stats.chisquare(counts).pvalue > 1e-3
    # the finishers are not uniform: the fast workers' queues drain first
    assert not np.array_equal(log["worker"], log["assigned"])


def test_shuffle_gives_equal_counts_at_every_multiple_of_n():
    n, events = 6, 600
    clock = aj.delays.workers("exponential", speeds="1 + i", assignment="shuffle")
    log = aj.servers.schedule(None, clock, workers=n, seed=2, arrivals=events)
    for b in range(events // n):
        block = np.sort(log["assigned"][b * n : (b + 1) * n])
        assert np.array_equal(block, np.arange(n)), b
    assert len({tuple(log["assigned"][b * n : (b + 1) * n]) for b in range(10)}) > 1


def test_constant_compute_and_communication_give_the_closed_form_wall_time():
    """Worker j cycles every T_j = d_j + c_j + u_j, so updates come at rate Σ 1/T_j.

    T = (2, 3, 6): one update per unit of time; in every 6 units worker 0 delivers 3
    updates, worker 1 two, worker 2 one, so the (6q)-th update lands at time 6q exactly.
    """
    clock = aj.delays.workers(
        "constant", noise_scale=[1.0, 1.5, 4.0], download=[0.5, 1.0, 1.5], upload=[0.5, 0.5, 0.5]
    )
    log = aj.servers.schedule(None, clock, workers=3, arrivals=600)
    q = np.arange(1, 101)
    np.testing.assert_allclose(log["time"][6 * q - 1], 6.0 * q, rtol=1e-6)
    per_update = np.diff(log["time"][6 * q - 1]).mean() / 6
    assert per_update == pytest.approx(1 / (1 / 2 + 1 / 3 + 1 / 6), rel=1e-6)
    # the simulated run records the same wall time
    tr = aj.simulate(QUAD, delay_model=clock, **{**RUN, "workers": 3, "steps": 120})
    np.testing.assert_allclose(tr.wall_time[1:], log["time"][39:120:40], rtol=1e-6)


@pytest.mark.parametrize("mode", ["paused", pytest.param("lost", marks=pytest.mark.slow)])
def test_up_fraction_matches_the_law(mode):
    """Measured up-fraction against u / (u + d), per worker, exponential periods.

    Each worker's job takes a fixed c = 0.02, so (paused) its work done, 0.02 × its
    arrivals, is its time up, to within one job. Per worker and seed the run covers
    about 250 up/down cycles; the renewal-reward variance of the fraction is
    ((1 − p)²u² + p²d²) / ((u + d)² N) for N cycles, ≤ 6e-4 here, so over 8 seeds the mean's
    standard deviation is ≤ 0.009: the tolerance 0.035 is four of them. Lost jobs waste
    up time, so for "lost" the fraction is a lower bound that the same tolerance reaches.
    """
    up, down = np.array([2.0, 1.0, 1.0]), np.array([1.0, 1.0, 3.0])
    clock = aj.delays.workers(
        "constant", noise_scale=0.02, uptime=list(up), downtime=list(down), outage_mode=mode
    )
    frac = []
    for seed in range(8):
        log = aj.servers.schedule(None, clock, workers=3, seed=seed, arrivals=60_000)
        t = log["time"][-1]
        frac.append(np.bincount(log["worker"], minlength=3) * 0.02 / t)
    frac = np.mean(frac, axis=0)
    expect = up / (up + down)
    if mode == "paused":
        np.testing.assert_allclose(frac, expect, atol=0.035)
    else:  # a job lost going down costs at most c of its up time: ≤ 1% here
        np.testing.assert_allclose(frac, expect, atol=0.035)
        assert np.all(frac <= expect + 0.035)


def test_a_trace_replays_exactly():
    """Event log against a NumPy loop over the trace: worker j's c-th job takes trace[c mod T, j]."""
    # multiples of 1/8: every sum is exact, so ties (to the lower worker) are the same
    trace = np.array(
        [[1.0, 2.5, 0.75], [0.375, 1.125, 3.0], [2.25, 0.25, 0.875], [0.75, 1.5, 1.25]]
    )
    clock = aj.delays.workers(trace=trace)
    n, events = 3, 40
    log = aj.servers.schedule(None, clock, workers=n, arrivals=events)
    end = trace[0].copy()
    jobs = np.ones(n, int)
    times, who = [], []
    for _ in range(events):
        w = int(np.argmin(end))
        times.append(end[w])
        who.append(w)
        end[w] += trace[jobs[w] % len(trace), w]
        jobs[w] += 1
    assert np.array_equal(log["worker"], who)
    np.testing.assert_allclose(log["time"], times, rtol=1e-6)
    # no randomness left: every seed follows the same clock
    other = aj.servers.schedule(None, clock, workers=n, seed=9, arrivals=events)
    assert np.array_equal(other["time"], log["time"])


def test_a_trace_with_random_communication_differs_only_by_seed(tmp_path):
    trace = np.array([[1.0, 2.0], [1.5, 0.5]])
    np.save(tmp_path / "t.npy", trace)
    np.savetxt(tmp_path / "t.csv", trace, delimiter=",")
    a = aj.delays.workers(trace=tmp_path / "t.npy", download=0.2, comm_law="exponential")
    b = aj.delays.workers(trace=str(tmp_path / "t.csv"), download=0.2, comm_law="exponential")
    assert a == b
    l0 = aj.servers.schedule(None, a, workers=2, seed=0, arrivals=20)
    l1 = aj.servers.schedule(None, a, workers=2, seed=1, arrivals=20)
    assert not np.array_equal(l0["time"], l1["time"])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(trace=[[1.0, -2.0]]), r"trace\[0, 1\] = -2.0"),
        (dict(trace=[[1.0, np.nan]]), r"trace\[0, 1\] = nan"),
        (dict(uptime=0.0, downtime=1.0), "uptime must be > 0"),
        (dict(uptime=1.0, downtime=[1.0, -1.0]), "downtime must be > 0"),
        (dict(uptime=1.0), "both uptime and downtime"),
        (dict(assignment="randm"), "did you mean 'random'"),
        (dict(download=-0.5), "download must be >= 0"),
        (dict(upload="0.1 - i"), "upload must be >= 0"),
        (dict(outage_mode="drop", uptime=1.0, downtime=1.0), "outage_mode 'drop'"),
        (dict(trace=[[1.0]], speeds=[2.0]), "drop speeds"),
    ],
)
def test_bad_conditions_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        aj.delays.workers(**kwargs)


def test_bad_runs_are_refused_before_compiling():
    clock = aj.delays.workers(trace=[[1.0, 2.0]])
    with pytest.raises(ValueError, match="trace has 2 workers"):
        aj.servers.schedule(None, clock, workers=3, arrivals=5)
    queued = aj.delays.workers(assignment="random")
    with pytest.raises(ValueError, match="queues jobs"):
        aj.servers.schedule(aj.servers.msync(), queued, workers=3, arrivals=5, batch=2)
    with pytest.raises(ValueError, match="queues jobs"):
        aj.simulate(
            QUAD, delay_model=queued, server=aj.servers.ringmaster(True), delay_threshold=2, **RUN
        )


def test_the_delay_section_of_a_configuration(tmp_path):
    from asyncjax.config import ConfigError, parse_config

    np.savetxt(tmp_path / "times.csv", [[1.0, 2.0, 0.5], [0.5, 1.0, 2.0]], delimiter=",")
    delay = {
        "model": "workers",
        "compute_trace": "times.csv",
        "download": [0.25, 0.5, 0.0],
        "uptime": 4.0,
        "downtime": 1.0,
        "outage_law": "constant",
        "assignment": "shuffle",
    }
    cfg = {
        "problem": {"kind": "quadratic", "eigenvalues": [1.0, 0.5], "noise": 0.1},
        "delay": delay,
        "grid": {"lr": 0.1, "momentum": 0.0, "workers": 3, "seeds": 2},
        "run": {"steps": 60, "record_every": 30},
    }
    spec = parse_config(cfg, base_dir=tmp_path)
    clock = spec.sweep_kwargs()["delay_model"]
    assert clock.conditions.describe()["assignment"] == "shuffle"
    log = aj.servers.schedule(None, clock, workers=3, seed=1, arrivals=60)
    assert np.array_equal(np.sort(log["assigned"][:3]), np.arange(3))
    assert log["worker"][0] == 2 and log["time"][0] == 0.5  # worker 2: no download, trace 0.5
    bad = {**cfg, "delay": {"model": "trace", "values": [1, 2], "uptime": 2.0}}
    with pytest.raises(ConfigError, match='belong to model = "workers"'):
        parse_config(bad)
