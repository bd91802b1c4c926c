"""Per-worker data: the splits' row assignments, the problems' shard sampling, bad input."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import asyncjax as aj
from asyncjax import splits
from asyncjax.config import ConfigError, parse_config
from asyncjax.problems import _data

# Ten classes of unequal sizes (40 … 130 rows), rows of a class scattered over the data set.
COUNTS = 40 + 10 * np.arange(10)
LABELS = np.random.default_rng(7).permutation(np.repeat(np.arange(10), COUNTS))
N = LABELS.size


def _every_row_once(shards, n):
    rows = np.concatenate([shards.rows(j) for j in range(shards.workers)])
    np.testing.assert_array_equal(np.sort(rows), np.arange(n))
    assert (shards.sizes >= 1).all() and shards.table.shape == (shards.workers, shards.sizes.max())


def _chi2_pvalue(observed, proportions):
    """Pearson χ² of per-worker class counts (W, C) against n_c · p_cj, every class's test summed.

    Within a class, workers expected to hold fewer than 5 rows are pooled into one cell (the
    usual validity rule for the χ² approximation); df = Σ_c (cells_c − 1).
    """
    stat, df = 0.0, 0
    for c in range(observed.shape[1]):
        O, E = observed[:, c].astype(float), observed[:, c].sum() * proportions[c]
        small = E < 5
        O = np.append(O[~small], O[small].sum())
        E = np.append(E[~small], E[small].sum())
        keep = E > 0
        stat += np.sum((O[keep] - E[keep]) ** 2 / E[keep])
        df += int(keep.sum()) - 1
    return stats.chi2.sf(stat, df)


# --------------------------------------------------------------------------- the splits
@pytest.mark.parametrize("alpha,workers,seed", [(0.5, 6, 0), (1.0, 8, 1), (10.0, 16, 2)])
def test_dirichlet_assigns_every_row_once_in_the_drawn_proportions(alpha, workers, seed):
    split = splits.dirichlet(workers, alpha, seed=seed)
    shards = split.shards(N, LABELS)
    _every_row_once(shards, N)
    counts = shards.label_counts(LABELS)  # (W, C)
    P = split.proportions(10)  # (C, W)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    # Level 1%: the realised label proportions agree with the drawn ones ...
    assert _chi2_pvalue(counts, P) > 0.01
    # ... and the test has power: another seed's proportions are rejected at the same level
    assert (
        _chi2_pvalue(counts, splits.dirichlet(workers, alpha, seed=seed + 100).proportions(10))
        < 0.01
    )
    # the same description gives the same shards (it is static structure)
    again = splits.dirichlet(workers, alpha, seed=seed).shards(N, LABELS)
    np.testing.assert_array_equal(again.table, shards.table)


def test_dirichlet_heterogeneity_follows_alpha():
    """Small α concentrates each class on few workers; large α spreads it evenly."""

    def top_share(alpha):
        counts = splits.dirichlet(8, alpha, seed=3).shards(N, LABELS).label_counts(LABELS)
        return float(np.mean(counts.max(axis=0) / counts.sum(axis=0)))

    assert top_share(0.3) > 0.4 > 0.2 > top_share(100.0)


def test_iid_shards_are_equal_and_by_label_workers_hold_only_their_classes():
    shards = splits.iid(7, seed=1).shards(N, None)
    _every_row_once(shards, N)
    assert shards.sizes.max() - shards.sizes.min() <= 1

    split = splits.by_label(7, 3, seed=2)
    shards = split.shards(N, LABELS)
    _every_row_once(shards, N)
    counts = shards.label_counts(LABELS)
    holders = split.holders(10)
    for j in range(7):
        held = {c for c in range(10) if j in holders[c]}
        assert len(held) == 3 and set(np.flatnonzero(counts[j])) == held
    for c in range(10):  # a class's rows are shared evenly by its holders
        share = counts[holders[c], c]
        assert share.sum() == COUNTS[c] and share.max() - share.min() <= 1


def test_a_worker_samples_only_its_shard_uniformly_and_never_the_padding():
    shards = splits.iid(3).shards(10)  # sizes 4, 3, 3: the last two rows are padded
    assert shards.sizes.tolist() == [4, 3, 3]
    ops = _data.shard_operands(shards)
    pick = jax.jit(jax.vmap(_data.shard_rows, (None, None, 0, 0)))
    below_one = np.nextafter(np.float32(1), np.float32(0))
    # u in the i-th of `size` equal bins picks row i of the shard (uniform over it); the ends
    # of [0, 1) pick its first and last row, never the padding
    u = [np.concatenate([(np.arange(4) + 0.5) / m, [0.0, below_one]]) for m in shards.sizes]
    rows = pick(ops["table"], ops["sizes"], jnp.asarray(u, jnp.float32), jnp.arange(3))
    for j, size in enumerate(shards.sizes):
        want = shards.rows(j)[[*range(size), 0, -1]]
        np.testing.assert_array_equal(np.delete(rows[j], np.s_[size:4]), want)


def test_one_worker_holding_every_row_draws_todays_rows():
    """iid(1)'s map is the shared draw's floor-and-clamp: the same rows for the same stream."""
    X, y = np.random.default_rng(0).normal(size=(2, 37, 3))
    plain = aj.LeastSquares(X, y[:, 0], batch=5)
    split = aj.LeastSquares(X, y[:, 0], batch=5, split=splits.iid(1))

    @jax.jit
    def draws(plain_ops, ops, key, ks):
        u = split.sample(ops, key, ks)
        mapped = _data.shard_rows(ops.table, ops.sizes, u.reshape(-1), jnp.int32(0))
        return plain.sample(plain_ops, key, ks), aj.rng.indices(key, ks, 5, 37), u, mapped

    key, ks = jnp.asarray([3, 4], jnp.uint32), jnp.arange(50, dtype=jnp.int32)
    rows, today, u, mapped = draws(plain.operands(), split.operands(), key, ks)
    assert rows.dtype == jnp.int32 and u.dtype == jnp.float32
    np.testing.assert_array_equal(rows, today)  # unchanged without a split
    np.testing.assert_array_equal(mapped.reshape(rows.shape), rows)


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_a_classifiers_worker_gradient_is_its_gradient_on_its_own_rows(kind):
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 14)
    ds = aj.datasets.Dataset(
        rng.normal(size=(42, 5)), y, rng.normal(size=(6, 5)), y[::7], np.arange(3)
    )
    split = splits.by_label(3, 1)  # worker j holds class j only
    make = {
        "logistic": aj.Logistic.from_dataset,
        "mlp": lambda d, **kw: aj.MLP(d, hidden=(4,), **kw),
    }
    prob, plain = make[kind](ds, batch=6, split=split), make[kind](ds, batch=6)
    assert prob.per_worker and not plain.per_worker
    ops, plain_ops = prob.operands(), plain.operands()
    key = jnp.asarray([5, 6], jnp.uint32)
    params = jax.jit(plain.init)(plain_ops, key) if kind == "mlp" else plain.default_init()
    u = jax.jit(prob.sample)(ops, key, jnp.arange(1, dtype=jnp.int32))[0]  # (6,) uniforms
    rows = np.stack(
        [
            prob.shards.rows(j)[np.floor(np.asarray(u) * prob.shards.sizes[j]).astype(int)]
            for j in range(3)
        ]
    )
    assert [set(y[r]) for r in rows] == [{0}, {1}, {2}]
    grads = jax.jit(jax.vmap(plain.grad, (None, None, 0, None)))
    worker_grads = jax.jit(jax.vmap(prob.worker_grad, (None, None, None, None, 0)))
    want = grads(plain_ops, params, jnp.asarray(rows, jnp.int32), {})
    got = worker_grads(ops, params, u, {}, jnp.arange(3, dtype=jnp.int32))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7)


def test_the_splits_shape_is_static_structure_and_its_rows_are_operands():
    """Splits of the same data over as many workers have one table shape (padded to every row),
    so they compare equal as compiled structure and share one compilation; their rows differ."""
    X, y = np.random.default_rng(0).normal(size=(2, 40, 2))
    make = lambda s: aj.LeastSquares(X, y[:, 0], batch=4, split=s, labels=np.arange(40) % 4)
    assert make(None).static_key() == ("least_squares", 40, 2, 4)  # as before splits existed
    assert "split" not in make(None).describe() and not make(None).per_worker
    a, b = make(splits.dirichlet(4, 1.0)), make(splits.dirichlet(4, 1.0))
    assert a == b and hash(a) == hash(b) and a.per_worker
    others = [make(splits.dirichlet(4, 0.5, seed=2)), make(splits.iid(4))]
    assert all(o == a and o.shards.table.shape == (4, 40) for o in others)
    assert a != make(splits.iid(5)) and a != make(None)
    assert a == make(splits.dirichlet(np.int64(4), np.float32(1.0), seed=np.int32(0)))
    json.dumps(make(splits.by_label(np.int64(2), np.int64(2))).describe())  # plain numbers
    assert a.describe()["split"] == {
        "kind": "dirichlet",
        "workers": 4,
        "seed": 0,
        "alpha": 1.0,
        "sizes": a.shards.sizes.tolist(),
    }
    kw = dict(steps=20, record_every=20, delay_model=aj.delays.workers("exponential"))
    grid = aj.Grid(lr=0.05, workers=4, seed=range(2))
    runs = [aj.sweep(a, grid, **kw)]
    before = aj.compile_count()
    runs += [aj.sweep(p, grid, **kw) for p in others]
    assert aj.compile_count() == before  # one compilation serves every split of this shape
    finals = [np.asarray(r["error"])[..., -1] for r in runs]
    assert not np.array_equal(finals[0], finals[1]) and not np.array_equal(finals[1], finals[2])


# ------------------------------------------------------------------ through the engine
def test_a_trajectory_with_unequal_shards_replays_in_numpy():
    """SGD on the worker clock: step k applies worker j_k's minibatch gradient, taken at the
    read point τ_k updates old on rows of j_k's own shard, as the clock's log and the data
    stream say."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    split = splits.dirichlet(3, 0.7, seed=4)
    prob = aj.LeastSquares(X, y, batch=4, split=split, labels=np.arange(60) % 5)
    assert len(set(prob.shards.sizes.tolist())) > 1  # unequal shards
    steps, lr, seed, clock = 40, 0.05, 2, "workers"
    tr = aj.simulate(
        prob,
        delay_model=clock,
        workers=3,
        seed=seed,
        lr=lr,
        momentum=0.0,
        steps=steps,
        record_every=1,
        record_params=True,
    )
    log = aj.delays.worker_schedule(clock, 3, seed, steps)
    u = aj.data_stream(prob, seed, steps)  # (steps, batch) float32 uniforms
    xs = [np.zeros(3)]
    for k in range(steps):
        j, size = log["worker"][k], prob.shards.sizes[log["worker"][k]]
        i = np.minimum(np.floor(u[k] * np.float32(size)).astype(int), size - 1)
        rows = prob.shards.rows(j)[i]
        w = xs[k - log["staleness"][k]]
        xs.append(xs[k] - lr * X[rows].T @ (X[rows] @ w - y[rows]) / 4)
    assert len(set(log["worker"].tolist())) == 3
    np.testing.assert_allclose(np.asarray(tr.params), np.array(xs), rtol=2e-5, atol=2e-6)


# Least squares whose noise classes (residual below -1, -1 … 0, 0 … 1, above 1) have
# unequal sizes: a by_label(4, 1) split then gives workers unequal shards with other optima.
_rng5 = np.random.default_rng(5)
XS = _rng5.normal(size=(256, 4))
RESIDUAL = _rng5.normal(size=256)
YS = XS @ np.array([1.0, -1.0, 0.5, 0.0]) + RESIDUAL
NOISE_CLASS = np.digitize(RESIDUAL, [-1.0, 0.0, 1.0])
SEEDS = 512


def _errors_and_finals(split):
    """Error curves (S, 7) and final iterates (S, 4) of a 4-worker sweep over 512 seeds."""
    prob = aj.LeastSquares(XS, YS, batch=1, split=split, labels=NOISE_CLASS)
    grid = aj.Grid(workers=4, lr=0.05, momentum=0.5, seed=range(SEEDS))
    res = aj.sweep(prob, grid, delay_model="workers", steps=300, record_every=50, progress=False)
    return np.asarray(res["error"]), np.asarray(res["final"])


def _z_scores(a, b):
    """Mean paired difference over seeds in units of its standard error (per column)."""
    d = a - b
    se = d.std(axis=0, ddof=1) / np.sqrt(d.shape[0])
    return d.mean(axis=0) / np.where(se > 0, se, np.inf)


@pytest.fixture(scope="module")
def shared_runs():
    return _errors_and_finals(None)


def test_iid_with_equal_shards_has_the_statistics_of_shared_data(shared_runs):
    """With equal exponential workers each arrival is a uniform worker, and a uniform row of a
    uniform one of equal shards is a uniform row: the mean error curve and the mean final
    iterate must match shared sampling's. Each of the 7 records and 4 coordinates is a paired
    difference over 512 seeds that must lie within 4 standard errors of 0 (two-sided 6e-5 under
    normality each, < 1e-3 for all 11); test_the_statistics_test_sees_a_biased_split shows
    that the same check rejects a split whose workers are not alike."""
    errors, finals = shared_runs
    iid_errors, iid_finals = _errors_and_finals(splits.iid(4))
    assert errors.shape == (SEEDS, 7) and finals.shape == (SEEDS, 4)
    z_error = _z_scores(iid_errors, errors)
    assert z_error[0] == 0 and np.isfinite(z_error[1:]).all()  # the same start, then other rows
    np.testing.assert_array_less(np.abs(z_error[1:]), 4.0)
    np.testing.assert_array_less(np.abs(_z_scores(iid_finals, finals)), 4.0)


@pytest.mark.slow
def test_the_statistics_test_sees_a_biased_split(shared_runs):
    """by_label(4, 1) on the noise classes: workers hold 25, 99, 90 and 42 rows with other
    optima, and equal workers weight them equally, not by size; the mean error curve lies far
    outside the 4-standard-error band (measured: z of 8 to 11 at every record)."""
    errors, finals = shared_runs
    biased_errors, biased_finals = _errors_and_finals(splits.by_label(4, 1))
    assert (_z_scores(biased_errors, errors)[1:] > 4.0).all()
    assert np.abs(_z_scores(biased_finals, finals)).max() > 4.0


# ---------------------------------------------------------------------------- bad input
X10, Y10 = np.random.default_rng(2).normal(size=(2, 10, 2))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: splits.dirichlet(4, 0.0), r"alpha must be > 0, got 0\.0"),
        (lambda: splits.dirichlet(4, -1), "alpha must be > 0, got -1"),
        (lambda: splits.iid(11).shards(10), r"more workers than the data set has rows \(10\)"),
        (
            lambda: aj.LeastSquares(X10, Y10[:, 0], batch=2, split=splits.iid(11)),
            r"iid\(workers=11, seed=0\) has more workers than the data set has rows \(10\)",
        ),
        (lambda: splits.by_label(4, 0), "classes_per_worker must be >= 1, got 0"),
        (
            lambda: splits.by_label(4, 11).shards(N, LABELS),
            "classes_per_worker=11 is more than the data set's 10 classes",
        ),
        (
            lambda: splits.by_label(2, 3).shards(N, LABELS),
            r"holds at most 6 of the 10 classes.*classes_per_worker >= 5 or at least 4 workers",
        ),
        (
            lambda: splits.dirichlet(40, 0.05).shards(N, LABELS),
            r"dirichlet\(workers=40, seed=0, alpha=0\.05\) leaves worker \d+ with no rows.*"
            "another seed, a larger alpha or fewer workers",
        ),
        (
            lambda: aj.LeastSquares(X10, Y10[:, 0], split=splits.by_label(2, 1), batch=2),
            r"needs the rows' class labels.*splits\.iid",
        ),
        (
            lambda: aj.LeastSquares(X10, Y10[:, 0], split="dirichlet", batch=2),
            "split must be made by asyncjax.splits",
        ),
        (lambda: splits.get_split("dirichlett", 4), "did you mean 'dirichlet'"),
        (lambda: splits.iid(0), "workers must be >= 1, got 0"),
    ],
)
def test_bad_splits_are_refused_naming_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_run_the_split_does_not_fit_is_refused_before_compiling():
    prob = aj.LeastSquares(X10, Y10[:, 0], batch=2, split=splits.iid(4))
    before = aj.compile_count()
    with pytest.raises(ValueError, match=r"made for 4 workers but the run has workers = 3"):
        aj.sweep(
            prob,
            aj.Grid(workers=3, lr=0.1, seed=range(2)),
            delay_model="workers",
            steps=4,
            record_every=2,
            progress=False,
        )
    with pytest.raises(ValueError, match="needs the worker clock"):
        aj.simulate(prob, delay_model="constant", delay=1, lr=0.1, steps=4)
    assert aj.compile_count() == before


def _toml(problem, split, workers=4):
    return {
        "problem": problem,
        "split": split,
        "delay": {"model": "workers"},
        "grid": {"workers": workers, "lr": 0.05, "seeds": 2},
        "run": {"steps": 10, "record_every": 5},
    }


DIGITS_MLP = {"kind": "mlp", "dataset": "digits", "hidden": [8]}


def test_toml_split_builds_the_problems_split():
    spec = parse_config(_toml(DIGITS_MLP, {"kind": "by_label", "classes_per_worker": 3, "seed": 2}))
    assert spec.problem.split == splits.by_label(4, 3, seed=2)
    spec = parse_config(_toml({"kind": "logistic", "dataset": "digits"}, {"kind": "iid"}, [5]))
    assert spec.problem.split == splits.iid(5)
    spec = parse_config(
        _toml(
            {"kind": "least_squares", "dataset": "digits"},
            {"kind": "dirichlet", "alpha": 2.0, "workers": 3},
            3,
        )
    )
    assert spec.problem.split == splits.dirichlet(3, 2.0)


@pytest.mark.parametrize(
    "problem,split,workers,match",
    [
        (
            {"kind": "streaming_pca", "eigenvalues": [2.0, 1.0]},
            {"kind": "iid"},
            4,
            r"\[split\] needs a problem with a data set .* problem.kind = 'streaming_pca' has none",
        ),
        (
            {"kind": "quadratic", "eigenvalues": [2.0, 1.0]},
            {"kind": "iid"},
            4,
            "problem.kind = 'quadratic' has none",
        ),
        (DIGITS_MLP, {"kind": "dirichlet", "alpha": 0}, 4, r"\[split\] alpha must be > 0, got 0"),
        (DIGITS_MLP, {"kind": "dirichlet", "alpha": 1.0}, [4, 8], "one number of workers"),
        (DIGITS_MLP, {"kind": "iid", "alpha": 1.0}, 4, r"kind = 'iid' unknown key\(s\) 'alpha'"),
        (DIGITS_MLP, {"kind": "shards"}, 4, "kind 'shards' is not known"),
        (
            DIGITS_MLP,
            {"kind": "iid", "workers": 3},
            4,
            "made for 3 workers but the run has workers = 4",
        ),
        (
            DIGITS_MLP,
            {"kind": "iid", "workers": 5000},
            5000,
            r"more workers than the data set has rows \(1437\)",
        ),
    ],
)
def test_bad_toml_splits_are_refused(problem, split, workers, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(_toml(problem, split, workers))
