"""Workers with their own data: the arriving worker reaches the problem's gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import asyncjax as aj


class WorkerTagged(aj.Quadratic):
    """A per-worker problem whose gradient is the arriving worker's index (a probe).

    With plain SGD at lr = 1 from x0 = 0 the iterate after k steps is minus the sum of
    the first k arrivals' worker indices, whatever the staleness.
    """

    @property
    def per_worker(self):
        return True

    def worker_grad(self, ops, params, batch, hp, worker):
        return jnp.zeros_like(params) + worker.astype(params.dtype)

    def check_workers(self, n):
        if n > 5:
            raise ValueError(f"workers={n} is more than the probe's 5 workers")


PROBE = WorkerTagged([1.0], init=[0.0])
PROBE_RUN = dict(lr=1.0, momentum=0.0, steps=60, record_every=1, record_params=True)


@pytest.mark.parametrize(
    "clock",
    [
        aj.delays.workers("lognormal", shape=0.7, speeds="1 + i"),
        "workers",  # exponential: the finisher drawn directly
        aj.delays.workers("constant", base="1 + i", noise_scale=0),  # one clock per point
    ],
    ids=["lognormal", "exponential", "constant"],
)
def test_the_engine_hands_the_arriving_worker_to_the_problem(clock):
    n, seed = 4, 3
    tr = aj.simulate(PROBE, delay_model=clock, workers=n, seed=seed, **PROBE_RUN)
    log = aj.delays.worker_schedule(
        aj.delays.workers() if clock == "workers" else clock, n, seed, 60
    )
    assert len(set(log["worker"].tolist())) == n  # every worker arrives: the probe can fail
    expected = -np.cumsum(log["worker"]).astype(float)
    np.testing.assert_array_equal(tr.params[1:, 0], expected)


def test_a_server_hands_the_arriving_worker_to_the_problem():
    n, seed = 4, 1
    clock = aj.delays.workers("halfnormal", base="1 + i")
    server = aj.servers.ringmaster(stops=False)
    tr = aj.simulate(
        PROBE,
        delay_model=clock,
        server=server,
        workers=n,
        seed=seed,
        delay_threshold=2,
        **PROBE_RUN,
    )
    log = aj.servers.schedule(server, clock, workers=n, seed=seed, arrivals=60, delay_threshold=2)
    assert 0 < log["applied"].sum() < 60  # some arrivals are discarded: they must not count
    expected = -np.cumsum(np.where(log["applied"], log["worker"], 0)).astype(float)
    np.testing.assert_array_equal(tr.params[1:, 0], expected)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(delay_model="constant", delay=2), "needs the worker clock: delay_model=asyncjax"),
        (dict(delay_model="workers", workers=6), "workers=6 is more than the probe's 5 workers"),
    ],
)
def test_a_run_the_problem_cannot_serve_is_refused_before_compiling(kwargs, match):
    before = aj.compile_count()
    with pytest.raises(ValueError, match=match):
        aj.simulate(PROBE, lr=0.1, steps=10, **kwargs)
    grid = aj.Grid(lr=0.1, seed=range(2), **{k: v for k, v in kwargs.items() if k != "delay_model"})
    with pytest.raises(ValueError, match=match):
        aj.sweep(
            PROBE, grid, delay_model=kwargs["delay_model"], steps=10, record_every=5, progress=False
        )
    assert aj.compile_count() == before


# ------------------------------------------------------------ the per-worker quadratic
OPTIMA = np.array([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])
CURVATURES = np.array([[1.0, 0.5], [0.5, 1.0], [1.0, 1.0], [1.0, 0.5]])
TIMES = 1.0 + np.arange(4)  # worker j computes one gradient every j + 1 time units
FIXED = aj.delays.workers("constant", base="1 + i", noise_scale=0)
EXPONENTIAL = aj.delays.workers("exponential", speeds="1 / (1 + i)")  # mean times 1 … 4


def test_the_per_worker_quadratic_is_the_mean_of_the_workers_quadratics():
    q = aj.Quadratic(worker_optima=OPTIMA, worker_curvatures=CURVATURES, noise=0.3)
    assert q.per_worker and q.workers == 4 and q.d == 2
    np.testing.assert_allclose(q.eigenvalues, CURVATURES.mean(0))
    f = lambda x: np.mean([0.5 * np.sum(c * (x - b) ** 2) for b, c in zip(OPTIMA, CURVATURES)])
    x = np.array([0.3, -1.2])
    np.testing.assert_allclose(q.optimum, aj.theory.asgd_fixed_point(OPTIMA, CURVATURES))
    ops = q.operands(jnp.float32)
    m = jax.jit(q.metrics)(ops, np.float32(x))  # jitted: one compile, not one per operation
    np.testing.assert_allclose(m["error"], f(x) - f(q.optimum), rtol=1e-5)
    z = np.array([0.5, -1.0], np.float32)
    g = jax.jit(q.worker_grad)(ops, np.float32(x), z, {"noise": np.float32(0.3)}, np.int32(2))
    np.testing.assert_allclose(g, CURVATURES[2] * (x - OPTIMA[2]) + 0.3 * z, rtol=1e-6)
    again = aj.Quadratic(**{k: v for k, v in q.describe().items() if k != "problem"})
    assert again == q and np.array_equal(again.optimum, q.optimum)
    assert q != aj.Quadratic([0.75, 0.75]) and hash(q) != hash(aj.Quadratic([0.75, 0.75]))


def test_workers_that_share_one_optimum_are_the_shared_quadratic_bit_for_bit():
    """Per-worker gradients that all equal the shared one change nothing, event for event."""
    shared = aj.Quadratic([1.0, 0.5], noise=0.2)
    own = aj.Quadratic([1.0, 0.5], noise=0.2, worker_optima=np.zeros((4, 2)))
    run = dict(delay_model=EXPONENTIAL, workers=4, lr=0.1, momentum=0.5, steps=40, record_every=10)
    a = aj.simulate(shared, **run, record_params=True)
    b = aj.simulate(own, **run, record_params=True)
    assert own.per_worker and np.array_equal(a.params, b.params)


@pytest.mark.parametrize(
    "build,match",
    [
        (
            lambda: aj.Quadratic([1.0, 1.0], worker_optima=np.zeros((4, 3))),
            r"worker_optima must have shape \(n, 2\) .* got \(4, 3\)",
        ),
        (
            lambda: aj.Quadratic([1.0, 1.0], worker_optima=np.zeros(2)),
            "worker_optima must have 2 dimension",
        ),
        (
            lambda: aj.Quadratic(worker_optima=OPTIMA, worker_curvatures=CURVATURES[:3]),
            r"worker_curvatures must have worker_optima's shape \(4, 2\)",
        ),
        (
            lambda: aj.Quadratic(worker_optima=OPTIMA, worker_curvatures=-CURVATURES),
            "worker_curvatures must be > 0",
        ),
        (
            lambda: aj.Quadratic([1.0, 1.0], worker_optima=OPTIMA, worker_curvatures=CURVATURES),
            "eigenvalues must be the mean of worker_curvatures",
        ),
        (lambda: aj.Quadratic([1.0], worker_curvatures=[[1.0]]), "needs worker_optima"),
        (lambda: aj.Quadratic(), "give eigenvalues"),
    ],
)
def test_a_bad_per_worker_quadratic_is_refused_in_one_line(build, match):
    with pytest.raises(ValueError, match=match) as err:
        build()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(workers=5), "workers=5 but worker_optima gives 4 workers"),
        (dict(workers=3), "needs exactly workers=4"),
        (dict(delay_model="constant", delay=3), "needs the worker clock"),
        (dict(delay_model="uniform", max_delay=3), "needs the worker clock"),
    ],
)
def test_a_run_the_per_worker_quadratic_cannot_serve_is_refused_before_compiling(kwargs, match):
    q = aj.Quadratic([1.0, 1.0], worker_optima=OPTIMA)
    kw = {"delay_model": FIXED, "server": aj.servers.ia2sgd(), **kwargs}
    if kw["delay_model"] in ("constant", "uniform"):
        kw.pop("server")
    before = aj.compile_count()
    with pytest.raises(ValueError, match=match) as err:
        aj.simulate(q, lr=0.1, steps=10, **kw)
    assert "\n" not in str(err.value) and aj.compile_count() == before


def test_the_per_worker_quadratic_from_a_configuration():
    from asyncjax.config import parse_config

    cfg = {
        "problem": {
            "kind": "quadratic",
            "worker_optima": OPTIMA.tolist(),
            "worker_curvatures": CURVATURES.tolist(),
            "noise": 0.1,
        },
        "delay": {"model": "workers", "law": "constant", "base": "1 + i", "noise_scale": 0},
        "server": {"kind": "malenia", "stops": False},
        "grid": {"lr": 0.1, "workers": 4, "seeds": 2},
        "run": {"steps": 20, "record_every": 10},
    }
    spec = parse_config(cfg)
    assert spec.problem == aj.Quadratic(worker_optima=OPTIMA, worker_curvatures=CURVATURES)
    assert spec.sweep_kwargs()["server"] == aj.servers.malenia(stops=False)
    with pytest.raises(ValueError, match="workers=8 but worker_optima gives 4"):
        parse_config({**cfg, "grid": {**cfg["grid"], "workers": 8}})


# ------------------------------------------------------------ where each rule settles
def _late_mean(problem, clock, server, **hp):
    """Mean over seeds of each seed's time-averaged iterate over the second half of the run.

    Returns the mean and its standard error ((d,) each): the seeds are independent, so the
    standard error is their spread over √S. Records every 3 events: 3 is prime to the
    period of the fixed schedule (25 events), so every phase of its cycle is sampled alike.
    """
    S = 64
    res = aj.sweep(
        problem,
        aj.Grid(lr=0.1, momentum=0.0, workers=4, seed=range(S), **hp),
        delay_model=clock,
        server=server,
        steps=4200,
        record_every=3,
        record_iterates=True,
        init=problem.optimum,
        progress=False,
    )
    x = np.asarray(res["iterates"]).reshape(S, -1, problem.d)
    per_seed = x[:, x.shape[1] // 2 :].mean(axis=1)
    return per_seed.mean(axis=0), per_seed.std(axis=0, ddof=1) / np.sqrt(S)


# Equal curvatures: there the mean fixed point of asynchronous SGD is Σ_j p_j b_j up to
# 2e-4 of its distance to the optimum (theory.asgd_fixed_point's docstring), far below the
# standard error here; unequal ones add a correction of the order of the step.
ASGD_CASES = [
    pytest.param(FIXED, id="fixed"),
    pytest.param(EXPONENTIAL, id="exponential", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("clock", ASGD_CASES)
def test_asynchronous_sgd_settles_at_the_predicted_biased_point(clock):
    q = aj.Quadratic([1.0, 1.0], noise=0.5, worker_optima=OPTIMA)
    predicted = aj.theory.asgd_fixed_point(OPTIMA, shares=aj.theory.update_shares(times=TIMES))
    mean, se = _late_mean(q, clock, aj.servers.asgd())
    # 4 standard errors per coordinate: a false alarm has probability 6e-5 (normal means)
    assert np.all(np.abs(mean - predicted) <= 4 * se), (mean, predicted, se)
    assert np.linalg.norm(predicted - q.optimum) > 50 * se.max()  # the test tells them apart


@pytest.mark.parametrize(
    "server,hp",
    [
        (aj.servers.ia2sgd(), {}),
        (aj.servers.malenia(), {}),
        # R above the updates any job of the slowest worker spans (8 with these times)
        (aj.servers.ringleader(), {"delay_threshold": 16}),
    ],
    ids=["ia2sgd", "malenia", "ringleader"],
)
def test_the_unbiased_rules_settle_at_the_optimum(server, hp):
    q = aj.Quadratic(worker_optima=OPTIMA, worker_curvatures=CURVATURES, noise=0.5)
    mean, se = _late_mean(q, FIXED, server, **hp)
    assert np.all(np.abs(mean - q.optimum) <= 4 * se), (mean, q.optimum, se)
    biased = aj.theory.asgd_fixed_point(OPTIMA, CURVATURES, aj.theory.update_shares(times=TIMES))
    assert np.linalg.norm(biased - q.optimum) > 50 * se.max()


def test_ringleader_below_the_slowest_job_never_hears_the_slow_workers():
    """Documented limit: with R = 4 and times 1 … 4 only the two fastest workers get through."""
    log = aj.servers.schedule(
        aj.servers.ringleader(), FIXED, workers=4, arrivals=400, delay_threshold=4
    )
    heard = np.bincount(log["worker"][log["applied"]], minlength=4)
    assert heard[0] > 0 and heard[1] > 0 and heard[2] == heard[3] == 0


# ------------------------------------------------------------ theory
def test_update_shares():
    np.testing.assert_allclose(aj.theory.update_shares(times=[1, 2, 4]), [4 / 7, 2 / 7, 1 / 7])
    np.testing.assert_allclose(aj.theory.update_shares(rates=[3.0, 1.0]), [0.75, 0.25])
    np.testing.assert_allclose(
        aj.theory.update_shares(times=TIMES), aj.theory.update_shares(rates=1 / TIMES)
    )


def test_a_logged_schedule_applies_each_worker_its_predicted_share():
    """Fixed times 1 … 4: 25 arrivals per period of 12, 12 : 6 : 4 : 3 (ASGD applies all)."""
    log = aj.servers.schedule("asgd", FIXED, workers=4, arrivals=2500)
    counts = np.bincount(log["worker"], minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), aj.theory.update_shares(times=TIMES))


def test_asgd_fixed_point_solves_the_weighted_optimality_condition():
    rng = np.random.default_rng(0)
    n, d = 5, 3
    b = rng.normal(size=(n, d))
    p = aj.theory.update_shares(times=rng.uniform(1, 3, n))
    diag = rng.uniform(0.5, 2.0, (n, d))
    x = aj.theory.asgd_fixed_point(b, diag, p)
    np.testing.assert_allclose(np.sum(p[:, None] * diag * (x - b), axis=0), 0, atol=1e-12)
    mats = np.stack([np.diag(a) for a in diag])
    np.testing.assert_allclose(aj.theory.asgd_fixed_point(b, mats, p), x, rtol=1e-12)
    q = rng.normal(size=(n, d, d))
    full = np.einsum("jkl,jml->jkm", q, q) + np.eye(d)  # symmetric positive definite
    y = aj.theory.asgd_fixed_point(b, full, p)
    np.testing.assert_allclose(np.einsum("j,jkl,jl->k", p, full, y - b), 0, atol=1e-12)
    np.testing.assert_allclose(aj.theory.asgd_fixed_point(b, shares=p), p @ b, rtol=1e-12)
    np.testing.assert_allclose(aj.theory.asgd_fixed_point(b), b.mean(0), rtol=1e-12)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: aj.theory.update_shares(), "exactly one of times"),
        (lambda: aj.theory.update_shares(times=[1, 2], rates=[1, 2]), "exactly one of times"),
        (lambda: aj.theory.update_shares(times=[1, 0]), "times must be > 0"),
        (lambda: aj.theory.update_shares(rates=[]), "rates must not be empty"),
        (lambda: aj.theory.asgd_fixed_point([1.0, 2.0]), "optima must have 2 dimension"),
        (
            lambda: aj.theory.asgd_fixed_point(OPTIMA, shares=[1, 1]),
            r"shares must have shape \(4,\)",
        ),
        (lambda: aj.theory.asgd_fixed_point(OPTIMA, shares=[1, -1, 1, 1]), "shares must be >= 0"),
        (lambda: aj.theory.asgd_fixed_point(OPTIMA, np.ones((4, 3))), "curvatures must have shape"),
    ],
)
def test_theory_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
