"""Server rules on the worker clock: identities, the NumPy event loop, theory, bad input."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import asyncjax as aj
from asyncjax import _rng
from asyncjax._reference.servers import simulate_server
from asyncjax.servers.clock import attach

QUAD = aj.Quadratic([1.0, 0.5, 0.1], noise=0.1)
RUN = dict(momentum=0.0, lr=0.1, steps=240, record_every=40, record_params=True, workers=6)
CLOCKS = {
    "lognormal": aj.delays.workers("lognormal", shape=0.8),
    "additive": aj.delays.workers("halfnormal", base="1 + sqrt(i)", noise_scale="sqrt(i + 1)"),
    "pareto": aj.delays.workers("pareto", shape=1.5, base=0.5, speeds="1 + i"),
}


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# The identities below compare runs that recur across tests (ASGD on the additive clock serves
# two of them): each run is made once per module.
@functools.cache
def _run(clock, server=None, **hp):
    return aj.simulate(QUAD, delay_model=clock, server=server, **hp, **RUN)


# ASGD against the plain clock: the memoryless clock (finishers drawn directly) and the paper's
# additive law (end times kept) in the default set; two more laws in the slow set.
ASGD_CLOCKS = {
    "exponential": aj.delays.workers("exponential", speeds=[1.0, 2, 1, 3, 1, 1]),
    "additive": CLOCKS["additive"],
    "lognormal": aj.delays.workers("lognormal", speeds=[1.0, 2, 1, 3, 1, 1]),
    "constant": aj.delays.workers("constant", speeds=[1.0, 2, 1, 3, 1, 1]),
}


@pytest.mark.parametrize(
    "law",
    ["exponential", "additive"]
    + [pytest.param(law, marks=pytest.mark.slow) for law in ("lognormal", "constant")],
)
def test_asgd_is_bit_identical_to_the_plain_worker_clock(law):
    clock = ASGD_CLOCKS[law]
    plain = _run(clock)
    asgd = _run(clock, aj.servers.asgd())
    assert np.array_equal(plain.params, asgd.params)
    assert np.array_equal(asgd.updates, np.arange(0, 241, 40))
    np.testing.assert_allclose(asgd.wall_time, plain.wall_time, rtol=1e-5)


# The paper's additive law in the default set; the other two laws in the slow set (here and in
# the event-log test, where each law costs a compile per rule).
LAW_CASES = [
    pytest.param(law, marks=() if law == "additive" else pytest.mark.slow) for law in CLOCKS
]


@pytest.mark.parametrize("law", LAW_CASES)
def test_ringmaster_without_stops_above_every_delay_is_asgd(law):
    a = _run(CLOCKS[law], aj.servers.asgd())
    b = _run(CLOCKS[law], aj.servers.ringmaster(stops=False), delay_threshold=10**6)
    assert np.array_equal(a.params, b.params)


@pytest.mark.parametrize("stops", [True, False])
@pytest.mark.parametrize("law", LAW_CASES[:2])
def test_rennala_with_one_gradient_is_ringmaster_with_threshold_one(law, stops):
    a = _run(CLOCKS[law], aj.servers.rennala(stops), batch=1)
    b = _run(CLOCKS[law], aj.servers.ringmaster(stops), delay_threshold=1)
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.updates, b.updates)
    assert (a.updates[-1] == 240) == stops  # with stops no arrival is ever discarded


def _oracle_inputs(clock, n, seed, events, dtype=jnp.float64):
    """The JAX clock's job times for seed, as the NumPy loop takes them (in float64).

    Value 0 of counter e for a worker's own job after event e; value
    2 + 2j + (r mod 2) of counter ⌊r/2⌋ for worker j's r-th restart by the rule.
    ``dtype``: the float the clock drew its values in.
    """

    @jax.jit  # one program, not one compile per eager operation
    def values(seed):
        key = _rng.stream_keys(seed[None], _rng.DELAY_STREAM)[0]
        ks = jnp.arange(events, dtype=jnp.int32)
        law = aj.delays.compute.law_values(clock.law, clock.shape, key, ks, 2 * n + 2, dtype)
        return clock.first_draws(key, n, dtype), law

    first_x, x = (np.asarray(v, np.float64) for v in values(jnp.asarray(seed)))
    base, scale = clock.affine(n)
    speed = clock.speed(n)
    t = lambda j, v: (base[j] + scale[j] * v) / speed[j]
    first = np.array([t(j, first_x[j]) for j in range(n)])

    def draws(c, j, restart):
        return t(j, x[c // 2, 2 + 2 * j + c % 2] if restart else x[c, 0])

    return first, draws


# The NumPy event loop's tests share one setting: n workers, a seed and a log of EVENTS events
# (the run tests read its first events: a clock is causal, so they are the shorter log's).
N, SEED, EVENTS = 5, 2, 300


@functools.cache
def _oracle(clock):
    """`_oracle_inputs` in float64 for the shared setting (drawn once per clock)."""
    with jax.enable_x64(True):
        return _oracle_inputs(clock, N, SEED, EVENTS)


LAWS = [
    ("halfnormal", 1.0),
    pytest.param("exponential", 1.0, marks=pytest.mark.slow),
    pytest.param("lognormal", 0.8, marks=pytest.mark.slow),
    pytest.param("pareto", 1.5, marks=pytest.mark.slow),
    pytest.param("gamma", 2.0, marks=pytest.mark.slow),  # two words per value, as float64
    ("constant", 1.0),
]


@pytest.mark.parametrize("law,shape", LAWS)
def test_restart_draws_are_the_stream_s_values_at_their_counters(x64, law, shape):
    """law_pairs_at(k, p) gives values 2p and 2p + 1 of counter k as law_values lays them out,
    in float32 (both from one hash) and float64 (a hash each)."""
    key = _rng.stream_keys(jnp.asarray([5]), _rng.DELAY_STREAM)[0]
    counters = jnp.asarray([[0, 7, 3], [12, 12, 1]], jnp.int32)
    pairs = jnp.asarray([[1, 4, 2], [3, 1, 5]], jnp.int32)
    compute = aj.delays.compute
    for dtype in (jnp.float32, jnp.float64):
        table = jax.jit(lambda k, d=dtype: compute.law_values(law, shape, k, jnp.arange(13), 12, d))
        at = jax.jit(lambda k, c, p, d=dtype: compute.law_pairs_at(law, shape, k, c, p, d))
        got, want = at(key, counters, pairs), table(key)
        for t in range(2):
            assert np.array_equal(got[t], want[counters, 2 * pairs + t]), (dtype, t)


RULES = [
    ("asgd", aj.servers.asgd(), {}),
    ("ringmaster", aj.servers.ringmaster(True), {"delay_threshold": 3}),
    ("ringmaster", aj.servers.ringmaster(False), {"delay_threshold": 3}),
    ("rennala", aj.servers.rennala(True), {"batch": 4}),
    ("rennala", aj.servers.rennala(False), {"batch": 4}),
    ("msync", aj.servers.msync(), {"batch": 3}),
    ("fedbuff", aj.servers.fedbuff(), {"batch": 3}),
    ("ia2sgd", aj.servers.ia2sgd(), {}),
    ("malenia", aj.servers.malenia(True), {}),
    ("malenia", aj.servers.malenia(False), {}),
    ("ringleader", aj.servers.ringleader(True), {"delay_threshold": 3}),
    ("ringleader", aj.servers.ringleader(False), {"delay_threshold": 3}),
]
STOPPABLE = ("ringmaster", "rennala", "malenia", "ringleader")  # rules with a stops option


@functools.cache
def _log(rule, law="additive"):
    """The event log of RULES[rule] on CLOCKS[law] in the shared setting (float64)."""
    _, server, hp = RULES[rule]
    with jax.enable_x64(True):
        return aj.servers.schedule(server, CLOCKS[law], workers=N, seed=SEED, arrivals=EVENTS, **hp)


RULE_IDS = [f"{r[0]}-{i}" for i, r in enumerate(RULES)]


@pytest.mark.parametrize("law", LAW_CASES)
@pytest.mark.parametrize("rule", range(len(RULES)), ids=RULE_IDS)
def test_event_log_equals_the_numpy_event_loop(law, rule):
    name, server, hp = RULES[rule]
    log = _log(rule, law)
    first, draws = _oracle(CLOCKS[law])
    opts = {"stops": server.stops} if name in STOPPABLE else {}
    ref = simulate_server(name, first, draws, events=EVENTS, **hp, **opts)
    for key in ("worker", "staleness", "applied", "step", "updates", "timed_out"):
        assert np.array_equal(log[key], ref[key]), key
    np.testing.assert_allclose(log["weight"], ref["weight"], rtol=1e-12)
    np.testing.assert_allclose(log["time"], ref["time"], rtol=1e-9)


def test_time_outs_follow_the_numpy_event_loop(x64):
    n, events, seed = 5, 300, 1
    clock = aj.delays.workers("pareto", shape=1.2, base=0.2, timeouts="2 + i")
    log = aj.servers.schedule(
        aj.servers.rennala(False),
        clock,
        workers=n,
        seed=seed,
        arrivals=events,
        batch=2,
        timeout_scale=0.5,
    )
    first, draws = _oracle_inputs(clock, n, seed, events)
    ref = simulate_server(
        "rennala",
        first,
        draws,
        events=events,
        batch=2,
        stops=False,
        timeouts=0.5 * (2 + np.arange(n)),
    )
    assert 0 < log["timed_out"].sum() < events
    for key in ("worker", "staleness", "applied", "timed_out", "updates"):
        assert np.array_equal(log[key], ref[key]), key
    np.testing.assert_allclose(log["time"], ref["time"], rtol=1e-9)


# Rennala without stops (a compile) in the slow set: by default its schedule is checked against
# the NumPy loop (test_event_log_equals_the_numpy_event_loop) and its iterates against Ringmaster
# with threshold one (test_rennala_with_one_gradient_is_ringmaster_with_threshold_one).
@pytest.mark.parametrize(
    "name,server,hp",
    [
        pytest.param(*RULES[3], id="rennala-s"),
        pytest.param(*RULES[4], id="rennala", marks=pytest.mark.slow),
        pytest.param(*RULES[5], id="msync"),
        pytest.param(*RULES[6], id="fedbuff"),
    ],
)
def test_accumulated_steps_follow_the_numpy_loop(x64, name, server, hp):
    """Iterates after every event, noiseless quadratic, plain SGD: Σ weight·g / B per step."""
    events, lr = 120, 0.3
    quad = aj.Quadratic([1.0, 0.4], noise=0.0)
    clock = CLOCKS["additive"]
    tr = aj.simulate(
        quad,
        delay_model=clock,
        server=server,
        workers=N,
        seed=SEED,
        lr=lr,
        momentum=0.0,
        steps=events,
        record_every=1,
        record_params=True,
        **hp,
    )
    first, draws = _oracle(clock)
    opts = {"stops": server.stops} if name == "rennala" else {}
    ref = simulate_server(
        name,
        first,
        draws,
        events=events,
        grad=lambda x, e: np.array([1.0, 0.4]) * x,
        x0=np.ones(2),
        lr=lr,
        **hp,
        **opts,
    )
    np.testing.assert_allclose(tr.params[1:], ref["x"], rtol=1e-12, atol=1e-14)
    assert np.array_equal(tr.updates[1:], ref["updates"])


# Bytes of the clock's state per trajectory with n workers in float32, field by field: versions
# (int32) and the applied count, elapsed time, its compensation and Σ speed (12) for every clock;
# end times (float32) unless memoryless; a time-out flag per worker (bool); the round's count
# (int32) for a rule that accumulates; a restart pool of 2 × 2 values, its base and used counts
# (int32) and an empty flag for a rule that restarts workers on drawn times.
@pytest.mark.parametrize(
    "clock,server,expected",
    [
        (CLOCKS["additive"], aj.servers.ringmaster(), lambda n: 4 * n + 16 + 4 * n + 24 * n + 1),
        (
            aj.delays.workers("lognormal", timeouts=3.0),
            aj.servers.msync(),
            lambda n: 4 * n + 16 + 4 * n + n + 4 + 24 * n + 1,
        ),
        (aj.delays.workers("exponential"), aj.servers.ringmaster(), lambda n: 4 * n + 16),
        (CLOCKS["additive"], aj.servers.fedbuff(), lambda n: 4 * n + 16 + 4 * n + 4),
    ],
    ids=["pool", "pool-timeouts", "memoryless", "no-pool"],
)
def test_the_memory_plan_counts_every_byte_of_the_clock(clock, server, expected):
    """`state_bytes` (what the memory plan adds per trajectory) counts every field of the clock."""
    n = 300
    model = attach(clock, server, {"workers": n, **{h.name: 2 for h in server.hyperparameters}}, 50)
    assert model.state_bytes(model.buffer_for(), 4) == expected(n)
    assert model.pooled == (server.stops and clock.law != "exponential")


# The table rules on workers with their own data: each with stops in the default set, without
# them (one more compile each) in the slow set.
TABLE_RULES = [
    pytest.param(7, id="ia2sgd"),
    pytest.param(8, id="malenia-s"),
    pytest.param(9, id="malenia", marks=pytest.mark.slow),
    pytest.param(10, id="ringleader-s"),
    pytest.param(11, id="ringleader", marks=pytest.mark.slow),
]
SIGMA = 0.2


@functools.cache
def _own_data(events):
    """Per-worker optima and curvatures for N workers, their quadratic and its noise by event."""
    rng = np.random.default_rng(7)
    optima, curv = rng.normal(size=(N, 2)), rng.uniform(0.5, 1.5, size=(N, 2))
    quad = aj.Quadratic(worker_optima=optima, worker_curvatures=curv, noise=SIGMA)
    with jax.enable_x64(True):
        z = aj.data_stream(quad, SEED, events)  # the noise of event e, whoever computes it
    return quad, optima, curv, z


@pytest.mark.parametrize("rule", TABLE_RULES)
def test_table_rules_follow_the_numpy_loop_on_workers_with_their_own_data(x64, rule):
    """Iterates after every event: per-worker optima and curvatures, noisy gradients, plain SGD."""
    events, lr = 150, 0.3
    name, server, hp = RULES[rule]
    quad, optima, curv, z = _own_data(events)
    clock = CLOCKS["additive"]
    tr = aj.simulate(
        quad,
        delay_model=clock,
        server=server,
        workers=N,
        seed=SEED,
        lr=lr,
        momentum=0.0,
        steps=events,
        record_every=1,
        record_params=True,
        **hp,
    )
    log = {k: v[:events] for k, v in _log(rule).items()}
    first, draws = _oracle(clock)
    ref = simulate_server(
        name,
        first,
        draws,
        events=events,
        grad=lambda x, e, w: curv[w] * (x - optima[w]) + SIGMA * z[e],
        worker_grad=True,
        x0=np.ones(2),
        lr=lr,
        **hp,
        **({"stops": server.stops} if name in STOPPABLE else {}),
    )
    assert len(set(log["worker"][log["applied"]])) == N  # every worker's data enters the steps
    np.testing.assert_allclose(tr.params[1:], ref["x"], rtol=1e-12, atol=1e-13)
    assert np.array_equal(tr.updates[1:], ref["updates"])


# The largest n and R in the default set; the smaller ones (a compile each) in the slow set.
@pytest.mark.parametrize(
    "n,R",
    [pytest.param(n, R, marks=pytest.mark.slow) for n, R in [(8, 1), (16, 3), (64, 6)]]
    + [(128, 20)],
)
def test_ringmaster_never_exceeds_its_window_bound(n, R):
    """Fixed times τ_i = √(i+1): any R consecutive applied updates fit in theory.ringmaster_window."""
    clock = aj.delays.workers("constant", base="sqrt(i + 1)", noise_scale=0)
    log = aj.servers.schedule(
        aj.servers.ringmaster(True), clock, workers=n, arrivals=40 * R + 200, delay_threshold=R
    )
    t = np.concatenate([[0.0], log["time"][log["step"]]])
    spans = t[R:] - t[:-R]
    bound = aj.theory.ringmaster_window(np.sqrt(np.arange(1, n + 1)), R)
    assert spans.max() <= bound * (1 + 1e-6)


# One Ringmaster sweep for two tests: the API's (counted compiles) and, from a configuration
# file, the command line's (the same compiled program, so the same numbers).
SWEEP_TOML = (
    '[problem]\nkind = "quadratic"\neigenvalues = [1.0, 0.5, 0.1]\nnoise = 0.1\n'
    '[delay]\nmodel = "workers"\nlaw = "halfnormal"\nbase = "1 + sqrt(i)"\n'
    'noise_scale = "sqrt(i + 1)"\n'
    '[server]\nkind = "ringmaster"\n'
    "[grid]\nlr = [0.05, 0.1]\ndelay_threshold = [1, 2, 4]\nworkers = [4, 8]\nseeds = 3\n"
    "[run]\nsteps = 200\nrecord_every = 100\n"
)


@pytest.fixture(scope="module")
def ringmaster_sweep():
    """The sweep SWEEP_TOML describes, through the API, and the compiles it took."""
    grid = aj.Grid(lr=[0.05, 0.1], delay_threshold=[1, 2, 4], workers=[4, 8], seed=range(3))
    before = aj.compile_count()
    r = aj.sweep(
        QUAD,
        grid,
        delay_model=CLOCKS["additive"],
        server=aj.servers.ringmaster(),
        steps=200,
        record_every=100,
        progress=False,
    )
    return r, aj.compile_count() - before


def test_a_sweep_runs_every_rule_value_in_one_compilation(ringmaster_sweep):
    r, compiles = ringmaster_sweep
    assert compiles == 1
    assert r["updates"].shape == (2, 3, 2, 3, 3) and r["wall_time"].dtype.kind == "f"
    # every seed's clock ignores lr: same wall time and updates for both step sizes
    assert np.array_equal(r["updates"][0], r["updates"][1])
    # stops: nothing is discarded, one update per arrival
    assert np.all(r["updates"][..., -1] == 200)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,server,hp",
    [
        ("ringmaster", aj.servers.ringmaster(), {"delay_threshold": [1, 3]}),
        ("msync", aj.servers.msync(), {"batch": [1, 3]}),
    ],
)
def test_each_batched_clock_follows_its_own_seed_s_draws(name, server, hp):
    """The batch's restart pools are drawn again whenever one of its trajectories needs it, yet
    every trajectory's clock is the NumPy loop fed its own seed's draws (4 of 8 slots idle too)."""
    clock = CLOCKS["additive"]
    grid = aj.Grid(lr=0.1, momentum=0.0, **hp, workers=[4, 8], seed=range(4))
    kw = dict(delay_model=clock, server=server, steps=200, record_every=50, progress=False)
    r = aj.sweep(QUAD, grid, **kw)
    (axis, values), steps = next(iter(hp.items())), [49, 99, 149, 199]
    assert list(r.coords)[:3] == [axis, "workers", "seed"]
    for i, v in enumerate(values):
        for j, n in enumerate([4, 8]):
            for seed in range(4):
                first, draws = _oracle_inputs(clock, n, seed, 200, jnp.float32)
                ref = simulate_server(name, first, draws, events=200, **{axis: v})
                got = r["wall_time"][i, j, seed, 1:]
                np.testing.assert_allclose(got, ref["time"][steps], rtol=1e-5)
                assert np.array_equal(r["updates"][i, j, seed, 1:], ref["updates"][steps])


def test_setting_groups_name_each_point_s_distinct_setting():
    from asyncjax.delays.base import setting_groups

    values = {"batch": np.array([1, 1, 3, 3, 1, 2.0]), "workers": np.array([4, 4, 4, 4, 4, 6.0])}
    reps, member = setting_groups(values)
    assert reps.tolist() == [0, 2, 5] and member.tolist() == [0, 0, 1, 1, 0, 2]
    for v in values.values():  # each point's setting is its representative's
        assert np.array_equal(v[reps][member], v)
    assert setting_groups(values, 5)[0].tolist() == [0, 2, 5, 5, 5]
    with pytest.raises(ValueError, match="size=2 is fewer than the 3 settings"):
        setting_groups(values, 2)


@pytest.mark.slow
def test_points_that_share_a_clock_setting_share_one_clock(monkeypatch):
    """Points that differ only in the step keep one clock per setting (and seed), also when the
    points are split over devices: bit for bit what one clock per point gives."""
    from asyncjax.servers.clock import ServerClock

    grid = aj.Grid(batch=[1, 3], lr=[0.02, 0.05, 0.1, 0.2, 0.3, 0.4], workers=4, seed=range(2))
    kw = dict(delay_model=CLOCKS["additive"], server=aj.servers.rennala(), steps=40)
    groups, ring_io = [], ServerClock.ring_io
    monkeypatch.setattr(
        ServerClock, "ring_io", lambda m, ctx: groups.append(ctx.groups) or ring_io(m, ctx)
    )
    shared = aj.sweep(QUAD, grid, record_every=20, progress=False, **kw)
    assert [g[0].shape for g in groups] == [(2,)]  # two clocks (per device, if split)
    monkeypatch.setattr(ServerClock, "per_setting", False)
    own = aj.sweep(QUAD, grid, record_every=20, progress=False, **kw)
    for name in ("error", "wall_time", "updates"):
        assert np.array_equal(shared[name], own[name]), name


def test_momentum_and_mitigations_compose_with_a_rule():
    tr = aj.simulate(
        QUAD,
        delay_model=CLOCKS["lognormal"],
        server=aj.servers.fedbuff(),
        mitigation="delay_adaptive",
        batch=2,
        adaptive_c=2.0,
        momentum=0.5,
        lr=0.1,
        workers=6,
        steps=200,
        record_every=100,
    )
    assert np.isfinite(tr.error).all() and tr.error[-1] < tr.error[0]
    opt = aj.optim.from_optax(__import__("optax").adam)
    tr = aj.simulate(
        QUAD,
        optimizer=opt,
        delay_model=CLOCKS["lognormal"],
        server=aj.servers.rennala(),
        batch=2,
        lr=0.05,
        workers=6,
        steps=200,
        record_every=100,
    )
    assert tr.updates[-1] == 100 and tr.error[-1] < tr.error[0]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(delay_model="constant", server="asgd", delay=2), "needs the worker clock"),
        (dict(server="rennala", batch=0), "batch must be a whole number >= 1"),
        (dict(server="msync", batch=7), "batch=7 exceeds workers=6"),
        (
            dict(server="ringmaster", delay_threshold=0),
            "delay_threshold must be a whole number >= 1",
        ),
        (dict(server="ringmaster", delay_threshold=1.5), "delay_threshold must be a whole number"),
        (dict(server="ringmasterr", delay_threshold=2), "did you mean 'ringmaster'"),
        (dict(server="rennala"), "must set batch"),
        (dict(server="ringmaster", delay_threshold=2, timeout_scale=2.0), "set timeouts= in"),
        (dict(server=aj.servers.ringmaster, delay_threshold=2), "is the factory: call it"),
    ],
)
def test_bad_server_input_fails_before_compiling(kwargs, match):
    kw = {**dict(delay_model=CLOCKS["lognormal"], workers=6, lr=0.1, steps=10), **kwargs}
    before = aj.compile_count()
    with pytest.raises(ValueError, match=match):
        aj.simulate(QUAD, **kw)
    assert aj.compile_count() == before


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: aj.servers.fedbuff(weight=3.0), "must be 'sqrt', 'constant' or a function"),
        (lambda: aj.servers.fedbuff(weight="cube"), "unknown FedBuff weight"),
        (lambda: aj.delays.workers("lognormal", timeouts=-1.0), "timeouts must be > 0"),
        (lambda: aj.delays.workers("lognormal", timeouts=0), "timeouts must be > 0"),
        (lambda: aj.delays.workers("halfnormal", base=0, noise_scale=0), "would take no time"),
        (lambda: aj.servers.ringmaster(stops="false"), "stops must be true or false"),
        (
            lambda: aj.delays.workers("lognormal", timeouts=[1.0, float("nan")]),
            "timeouts contains a non-finite",
        ),
        (lambda: aj.delays.workers("constant", base=0, noise_scale=0), "would take no time"),
        (
            lambda: aj.delays.workers("halfnormal", base="1 + sqrt(j)"),
            "cannot read the worker rule",
        ),
        (lambda: aj.delays.workers("pareto", shape=0), "pareto law needs shape"),
        (lambda: aj.delays.workers("lognormal", timeouts=float("nan")), r"\(nan\); it must be"),
        (
            lambda: aj.servers.fedbuff(weight=lambda t: 1.0 if t > 2 else 0.5),
            "weight function failed on a staleness.*jnp.where instead of if",
        ),
        (lambda: aj.servers.fedbuff(weight=lambda t: jnp.ones(2) / (1 + t)), "one number per"),
        (lambda: aj.servers.fedbuff(weight=lambda t: 1 - t), r"weight\(2\) = -1.0"),
        (lambda: aj.servers.fedbuff(weight=lambda t: t * jnp.nan), r"weight\(0\) = nan"),
    ],
)
def test_bad_rule_and_clock_options_say_what_is_wrong(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_schedule_names_a_misspelled_value():
    with pytest.raises(ValueError, match=r"delay_treshold=2 \(did you mean 'delay_threshold'\?\)"):
        aj.servers.schedule(
            "ringmaster", CLOCKS["lognormal"], workers=4, arrivals=10, delay_treshold=2
        )


def test_a_misspelled_server_kind_in_toml_is_named_before_its_keys():
    from asyncjax.config import ConfigError, parse_config

    cfg = {"problem": {"kind": "quadratic", "eigenvalues": [1.0, 2.0]}, "run": {"steps": 10}}
    cfg["delay"] = {"model": "workers", "law": "exponential"}
    cfg["grid"] = {"lr": 0.1, "workers": 4, "delay_threshold": 2, "seeds": 2}
    cfg["server"] = {"kind": "ringmastr", "stops": True}
    with pytest.raises(
        ConfigError, match=r"kind 'ringmastr' is not known \(did you mean 'ringmaster'"
    ):
        parse_config(cfg)


def test_a_short_per_worker_list_names_the_run_s_workers():
    with pytest.raises(ValueError, match="workers=4 but base gives only 2 workers"):
        aj.simulate(
            QUAD,
            delay_model=aj.delays.workers("constant", base=[1, 2]),
            server=aj.servers.asgd(),
            workers=4,
            lr=0.1,
            steps=10,
        )


def test_rules_in_i_are_recorded_as_written():
    """A per-worker rule is saved as its text (a list of its characters before), and rebuilds."""
    model = aj.delays.workers("exponential", speeds="1 + i", base="sqrt(i)")
    desc = json.loads(json.dumps(model.describe()))
    assert desc["speeds"] == "1 + i" and desc["base"] == "sqrt(i)"
    listed = aj.delays.workers("exponential", speeds=[1, 2]).describe()
    assert listed["speeds"] == [1.0, 2.0]


def test_negative_timeout_scale_is_refused():
    with pytest.raises(ValueError, match="timeout_scale must be > 0"):
        aj.simulate(
            QUAD,
            delay_model=aj.delays.workers("lognormal", timeouts=3.0),
            workers=4,
            lr=0.1,
            steps=10,
            timeout_scale=-1.0,
        )


def test_the_server_section_of_a_configuration(tmp_path):
    from asyncjax.config import ConfigError, parse_config

    cfg = {
        "problem": {"kind": "quadratic", "eigenvalues": [1.0, 0.5], "noise": 0.1},
        "delay": {"model": "workers", "law": "halfnormal", "base": "1 + sqrt(i)"},
        "server": {"kind": "ringmaster", "stops": False},
        "grid": {"lr": 0.1, "momentum": 0.0, "workers": 4, "delay_threshold": [1, 3], "seeds": 2},
        "run": {"steps": 100, "record_every": 50},
    }
    spec = parse_config(cfg)
    kw = spec.sweep_kwargs()
    assert kw["server"] == aj.servers.ringmaster(stops=False)
    assert kw["delay_model"] == aj.delays.workers("halfnormal", base="1 + sqrt(i)")
    assert spec.grid.dims == ("delay_threshold", "seed") and spec.grid.shape == (2, 2)
    # what a run records of its rule (the command-line test runs one and reads it back)
    assert kw["server"].describe() == {"kind": "ringmaster", "stops": False}
    bad = {**cfg, "server": {"kind": "ringmaster", "stop": True}}
    with pytest.raises(ConfigError, match="did you mean 'stops'"):
        parse_config(bad)
    bad = {**cfg, "grid": {**cfg["grid"], "delay_threshold": 0}}
    with pytest.raises(ConfigError, match="delay_threshold must be a whole number >= 1"):
        parse_config(bad)


def test_run_and_plot_a_server_configuration_from_the_command_line(tmp_path, ringmaster_sweep):
    from asyncjax.cli import main

    cfg = tmp_path / "servers.toml"
    cfg.write_text(SWEEP_TOML)
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert (out / "error_vs_wallclock.png").exists() and not (out / "staleness.png").exists()
    assert main(["plot", str(out)]) == 0
    res = aj.Results.load(out / "results.npz")
    assert res["updates"].shape == (2, 3, 2, 3, 3) and np.all(res["updates"][..., -1] == 200)
    assert res.attrs["server"] == {"kind": "ringmaster", "stops": True}
    r, _ = ringmaster_sweep  # the configuration's run is the API's, number for number
    assert list(res.coords) == list(r.coords)
    for name in ("error", "wall_time", "updates"):
        assert np.array_equal(res[name], r[name]), name
